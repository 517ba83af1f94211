"""Course scheduling: label schedule for every start weekday, closures (moved within the phase's spacing or
dropped, never packed), capacity, DST, adjuncts, optional phases proposed, missed sessions. 2 March 2026 is a
Monday; UK clocks go forward on Sunday 29 March 2026."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.clinical.protocols import Cadence, PhaseKind
from ketaclinic.clinical.schedule import (
    CoursePlan,
    OpeningHours,
    ScheduleInputError,
    SessionStatus,
    SiteCalendar,
    SlotLoad,
    default_site,
    plan_course,
    rhythm_problems,
)
from ketaclinic.clinical.schedule_missed import (
    MissedAction,
    advise_missed_session,
    mark_missed,
    revert_to_previous_frequency,
)

LONDON = ZoneInfo("Europe/London")
ESK = get_protocol("esk-trd-label")
ELEKTD = get_protocol("iv-trd-elektd")
MON = date(2026, 3, 2)


def every_day_site(**kwargs: object) -> SiteCalendar:
    return SiteCalendar(
        zone=LONDON,
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(7)},
        **kwargs,  # type: ignore[arg-type]
    )


def day_offsets(plan: CoursePlan) -> list[int]:
    first = plan.sessions[0].start.date()
    return [(s.start.date() - first).days for s in plan.sessions]


@pytest.mark.parametrize("weekday", range(7))
def test_esketamine_label_schedule_for_every_start_weekday(weekday: int) -> None:
    start = MON + timedelta(days=weekday)
    plan = plan_course(protocol=ESK, start=start, site=every_day_site())
    assert plan.sessions[0].start.date() == start and plan.conflicts == ()
    # weeks 1–4 twice weekly (days 0,3 of each week); weeks 5–8 weekly, the first a week after the last
    # induction dose (the maintenance cadence, issue 14); then every 2 weeks, 2 weeks after the last weekly
    # dose (4 shown)
    assert day_offsets(plan) == [0, 3, 7, 10, 14, 17, 21, 24, 31, 38, 45, 52, 66, 80, 94, 108]
    assert [s.week for s in plan.sessions[:12]] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8]
    assert plan.sessions[12].week == 10
    assert rhythm_problems(ESK, [(s.number, s.start.date()) for s in plan.sessions]) == []
    assert plan.sessions[0].dose_text == "56 mg"  # day 1: 56 mg
    assert all(s.dose_text == "56 or 84 mg" for s in plan.sessions[1:])
    assert [s.phase_kind for s in plan.sessions[7:9]] == [PhaseKind.INDUCTION, PhaseKind.MAINTENANCE]


@pytest.mark.parametrize("weekday", range(7))
def test_esketamine_label_weeks_hold_at_a_weekday_clinic(weekday: int) -> None:
    start = MON + timedelta(days=weekday)
    plan = plan_course(protocol=ESK, start=start, site=default_site())
    first = plan.sessions[0].start.date()
    # a weekend start moves to Monday; otherwise the first session is on the start day
    assert first == (start if weekday < 5 else MON + timedelta(days=7))
    assert all(s.start.weekday() < 5 for s in plan.sessions)
    offsets = day_offsets(plan)
    per_week = [sum(1 for o in offsets if 7 * w <= o < 7 * (w + 1)) for w in range(8)]
    assert per_week == [2, 2, 2, 2, 1, 1, 1, 1]  # label: twice weekly weeks 1–4, weekly weeks 5–8
    assert offsets[8] - offsets[7] == 7  # the first weekly dose a week after the last induction dose
    assert offsets[12] - offsets[11] == 14  # every 2 weeks from the last weekly dose
    gaps = [b - a for a, b in pairwise(offsets[:8])]
    assert min(gaps) >= 2  # derived twice-weekly spacing
    assert rhythm_problems(ESK, [(s.number, s.start.date()) for s in plan.sessions]) == []


def test_week_9_can_be_weekly() -> None:
    plan = plan_course(
        protocol=ESK, start=MON, site=every_day_site(), cadence_choices={2: Cadence(every_days=7)}
    )
    assert day_offsets(plan)[12:] == [59, 66, 73, 80]


def test_cadence_choice_must_be_allowed() -> None:
    with pytest.raises(ScheduleInputError) as info:
        plan_course(
            protocol=ESK, start=MON, site=every_day_site(), cadence_choices={1: Cadence(every_days=14)}
        )
    assert "cadence_choices[1]" in info.value.errors


def test_elektd_twice_weekly_then_maintenance() -> None:
    plan = plan_course(protocol=ELEKTD, start=MON, site=default_site())
    dates = [s.start.date().isoformat() for s in plan.sessions]
    # Mon/Thu for 3 weeks, then weekly ×4 from Thu 26 Mar (a week after the last infusion), every 2 weeks ×4,
    # every 28 days ×3, each phase one of its own intervals after the last session of the one before
    assert dates[:6] == ["2026-03-02", "2026-03-05", "2026-03-09", "2026-03-12", "2026-03-16", "2026-03-19"]
    assert dates[6:10] == ["2026-03-26", "2026-04-02", "2026-04-09", "2026-04-16"]
    assert dates[10:14] == ["2026-04-30", "2026-05-14", "2026-05-28", "2026-06-11"]
    assert dates[14:] == ["2026-07-09", "2026-08-06", "2026-09-03"]
    assert all(s.start.tzinfo == LONDON and s.start.hour == 8 for s in plan.sessions)
    assert plan.proposals == ()


def test_optional_and_later_phases_are_proposed_not_booked() -> None:
    plan = plan_course(protocol=ELEKTD, start=MON, site=default_site(), phases=[0])
    assert len(plan.sessions) == 6 and [s.number for s in plan.sessions] == [1, 2, 3, 4, 5, 6]
    assert [(p.index, p.optional, p.cadence, p.sessions) for p in plan.proposals] == [
        (1, True, "weekly", 4),
        (2, True, "every 2 weeks", 4),
        (3, True, "every 4 weeks", 3),
    ]
    assert all("PMC7265624" in p.source for p in plan.proposals)
    esk = plan_course(protocol=ESK, start=MON, site=default_site(), phases=[0])
    assert [(p.index, p.optional, p.sessions, p.alternatives) for p in esk.proposals] == [
        (1, False, 4, ()),
        (2, False, None, ("weekly",)),
    ]


def test_maintenance_can_be_left_out() -> None:
    plan = plan_course(protocol=ELEKTD, start=MON, site=default_site(), include_optional=False)
    assert len(plan.sessions) == 6


def test_closure_moves_a_session_and_says_why() -> None:
    murrough = get_protocol("iv-trd-murrough")
    site = SiteCalendar(
        zone=LONDON,
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)},
        closures=frozenset({date(2026, 3, 4)}),
    )
    plan = plan_course(protocol=murrough, start=MON, site=site, include_optional=False)
    days = [s.start.day for s in plan.sessions]
    # Mon 2, (Wed 4 closed → Tue 3: Thu 5 would make 5, 6, 9, 11 four sessions in 7 days), Fri 6, Mon 9,
    # Wed 11, Fri 13: 12 days, within Murrough's 12
    assert days == [2, 3, 6, 9, 11, 13]
    assert plan.conflicts == ("Wed 4 Mar: clinic closed (closure); moved to Tue 3 Mar 08:00",)
    assert rhythm_problems(murrough, [(s.number, s.start.date()) for s in plan.sessions]) == []


def test_a_closed_week_drops_its_sessions_instead_of_packing_them() -> None:
    # Issue 14: the old layout pushed the week-2 sessions into week 3 (Mon 16, Tue 17, Wed 18: three days in
    # a row). Now they cannot move within the phase's spacing, so they are dropped and the course continues.
    murrough = get_protocol("iv-trd-murrough")
    closed = frozenset(date(2026, 3, d) for d in range(9, 14))  # the whole second week
    site = SiteCalendar(
        zone=LONDON, opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)}, closures=closed
    )
    plan = plan_course(protocol=murrough, start=MON, site=site, include_optional=False)
    assert [s.start.day for s in plan.sessions] == [2, 4, 6]
    assert [u.split(" (")[0] for u in plan.unscheduled] == ["Session 4", "Session 5", "Session 6"]
    assert plan.unscheduled[0].startswith(
        "Session 4 (Induction: up to 6 infusions 3× weekly over 12 days) on Mon 9 Mar dropped: clinic closed "
        "(closure). Every day it could move to without crowding the sessions around it (Mon 9 Mar – Tue 10 Mar)"
    )
    assert all("continue the current schedule" in u and "§2.1" in u for u in plan.unscheduled)


def test_span_and_week_overflow_are_reported() -> None:
    elektd = get_protocol("iv-trd-elektd")
    # A clinic open on Mondays only: twice weekly cannot be kept, so the sessions go to the next Mondays
    # that keep the rhythm, each week's second session outside its week.
    site = SiteCalendar(zone=LONDON, opening_hours={0: OpeningHours(time(8), time(18))})
    plan = plan_course(protocol=elektd, start=MON, site=site, include_optional=False)
    assert [s.start.date() for s in plan.sessions] == [MON + timedelta(days=7 * k) for k in range(6)]
    assert any("outside week 1" in c for c in plan.conflicts)
    murrough = get_protocol("iv-trd-murrough")
    plan = plan_course(protocol=murrough, start=MON, site=site, include_optional=False)
    assert any("span 36 days" in c and "up to 12 days" in c for c in plan.conflicts)  # 2 Mar → 6 Apr


def test_full_chairs_move_the_time_the_same_day() -> None:
    booked = {
        datetime(2026, 3, 3, h, m, tzinfo=LONDON): SlotLoad(chairs=4)
        for h, m in [(9, 0), (9, 30), (10, 0), (10, 30)]
    }
    site = SiteCalendar(
        zone=LONDON,
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)},
        chairs=4,
        booked=booked,
    )
    plan = plan_course(protocol=ELEKTD, start=date(2026, 3, 3), site=site, preferred_time=time(9))
    # 70-min chair time: 09:00, 09:30, 10:00, 10:30 all overlap a full slot; 11:00–12:10 is free
    assert plan.sessions[0].start == datetime(2026, 3, 3, 11, 0, tzinfo=LONDON)
    assert plan.sessions[0].end == datetime(2026, 3, 3, 12, 10, tzinfo=LONDON)
    assert plan.conflicts == ("Tue 3 Mar 09:00: all 4 chairs booked; moved to 11:00",)
    assert plan.sessions[1].start.hour == 9


def test_bookings_in_another_zone_count() -> None:
    # 09:00 London in March = 09:00 UTC = 04:00 New York
    booked = {datetime(2026, 3, 3, 4, 0, tzinfo=ZoneInfo("America/New_York")): SlotLoad(chairs=1)}
    site = SiteCalendar(
        zone=LONDON, opening_hours={1: OpeningHours(time(9), time(12))}, chairs=1, booked=booked
    )
    plan = plan_course(protocol=ELEKTD, start=date(2026, 3, 3), site=site, include_optional=False)
    assert plan.sessions[0].start.time() == time(9, 30)


def test_nurse_capacity() -> None:
    booked = {datetime(2026, 3, 3, 8, 0, tzinfo=LONDON): SlotLoad(nurses=2)}
    site = SiteCalendar(
        zone=LONDON, opening_hours={1: OpeningHours(time(8), time(18))}, nurse_capacity=2, booked=booked
    )
    plan = plan_course(protocol=ELEKTD, start=date(2026, 3, 3), site=site, include_optional=False)
    assert plan.sessions[0].start.time() == time(8, 30)
    assert plan.conflicts[0] == "Tue 3 Mar 08:00: nurse capacity (2 patients at once) reached; moved to 08:30"


def test_a_full_day_moves_to_the_next_open_day() -> None:
    booked = {
        datetime(2026, 3, 3, 8, 0, tzinfo=LONDON) + timedelta(minutes=30 * i): SlotLoad(chairs=2)
        for i in range(20)
    }
    site = SiteCalendar(
        zone=LONDON,
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)},
        chairs=2,
        booked=booked,
    )
    plan = plan_course(protocol=ELEKTD, start=date(2026, 3, 3), site=site, include_optional=False)
    assert plan.sessions[0].start.date() == date(2026, 3, 4)
    assert (
        plan.conflicts[0] == "Tue 3 Mar: no free slot (all 2 chairs booked all day); moved to Wed 4 Mar 08:00"
    )


def test_session_that_never_fits_is_unscheduled() -> None:
    site = SiteCalendar(zone=LONDON, opening_hours={d: OpeningHours(time(8), time(9)) for d in range(5)})
    plan = plan_course(protocol=ELEKTD, start=MON, site=site, include_optional=False)
    assert plan.sessions == () and len(plan.unscheduled) == 6
    assert "no free slot within 60 days" in plan.unscheduled[0]


def test_clock_change_keeps_wall_time_and_real_duration() -> None:
    plan = plan_course(protocol=ESK, start=date(2026, 3, 23), site=default_site(), preferred_time=time(9))
    before, after = plan.sessions[0], plan.sessions[2]  # Mon 23 Mar (GMT), Mon 30 Mar (BST)
    assert (before.start.hour, after.start.hour) == (9, 9)
    assert before.start.utcoffset() == timedelta(0) and after.start.utcoffset() == timedelta(hours=1)
    assert after.end.astimezone(UTC) - after.start.astimezone(UTC) == timedelta(minutes=120)


def test_nonexistent_time_on_clock_change_day_is_skipped() -> None:
    site = SiteCalendar(zone=LONDON, opening_hours={6: OpeningHours(time(0, 30), time(23))})
    plan = plan_course(
        protocol=ELEKTD, start=date(2026, 3, 29), site=site, preferred_time=time(1, 0), include_optional=False
    )
    first = plan.sessions[0]
    # 01:00–01:59 does not exist on 29 Mar 2026 in London; next candidate 01:30 neither; 02:00 BST exists
    assert first.start == datetime(2026, 3, 29, 2, 0, tzinfo=LONDON)
    assert first.end.astimezone(UTC) - first.start.astimezone(UTC) == timedelta(minutes=70)
    assert plan.conflicts[0] == "Sun 29 Mar 01:00: time does not exist (clock change); moved to 02:00"


def test_new_york_site() -> None:
    ny = ZoneInfo("America/New_York")
    plan = plan_course(
        protocol=ELEKTD, start=MON, site=default_site("America/New_York"), include_optional=False
    )
    assert plan.zone == "America/New_York"
    assert plan.sessions[0].start == datetime(2026, 3, 2, 8, 0, tzinfo=ny)
    assert plan.sessions[0].start.astimezone(UTC).hour == 13  # EST = UTC−5


def test_ptsd_written_exposure_therapy_on_non_infusion_days() -> None:
    plan = plan_course(protocol=get_protocol("iv-ptsd-feder"), start=MON, site=default_site())
    assert [s.start.day for s in plan.sessions] == [2, 4, 6, 9, 11, 13]  # 3× weekly for 2 weeks
    # after the 4th infusion (Mon 9), on open non-infusion days: Tue 10, Thu 12, Mon 16, Tue 17, Wed 18
    assert [a.start.day for a in plan.adjuncts] == [10, 12, 16, 17, 18]
    assert [a.number for a in plan.adjuncts] == [1, 2, 3, 4, 5]


def test_crps_daily_skips_the_weekend() -> None:
    plan = plan_course(
        protocol=get_protocol("iv-crps-cohen"), start=MON, site=default_site(), preferred_time=time(9)
    )
    assert [s.start.day for s in plan.sessions] == [2, 3, 4, 5, 6, 9, 10, 11, 12, 13]
    assert plan.sessions[0].end.time() == time(13, 30)  # 4 h infusion + 30 min observation
    assert plan.conflicts == (
        "Sat 7 Mar: clinic closed on Saturdays; Sun 8 Mar: clinic closed on Sundays; moved to Mon 9 Mar 09:00",
    )


def test_site_validation_names_every_problem() -> None:
    site = SiteCalendar(
        zone=LONDON,
        opening_hours={0: OpeningHours(time(18), time(8)), 9: OpeningHours(time(8), time(9))},
        chairs=0,
        slot_minutes=0,
        booked={datetime(2026, 3, 2, 9): SlotLoad(chairs=1)},
    )
    with pytest.raises(ScheduleInputError) as info:
        plan_course(protocol=ELEKTD, start=MON, site=site)
    assert set(info.value.errors) == {
        "opening_hours[0]",
        "opening_hours[9]",
        "chairs",
        "slot_minutes",
        "booked",
    }


# --- missed sessions --------------------------------------------------------------------------------------


def esk_plan() -> CoursePlan:
    return plan_course(protocol=ESK, start=MON, site=every_day_site())


def test_missed_in_first_four_weeks_continue_schedule() -> None:
    plan = esk_plan()
    advice = advise_missed_session(protocol=ESK, plan=plan, missed_number=3, worsening=True)
    assert advice.action is MissedAction.CONTINUE_SCHEDULE and advice.confirmed is True
    assert "J&J" in advice.source
    marked = mark_missed(plan=plan, number=3)
    assert marked.sessions[2].status is SessionStatus.MISSED
    assert [s.start for s in marked.sessions] == [s.start for s in plan.sessions]  # nothing else moves


def test_missed_in_maintenance_with_worsening_consider_reverting() -> None:
    plan = esk_plan()
    advice = advise_missed_session(protocol=ESK, plan=plan, missed_number=10, worsening=True)
    assert advice.action is MissedAction.CONSIDER_REVERT_FREQUENCY
    assert advice.revert_to == Cadence(per_week=2) and "weekly to twice weekly" in advice.message


def test_missed_in_maintenance_without_worsening() -> None:
    advice = advise_missed_session(protocol=ESK, plan=esk_plan(), missed_number=10, worsening=False)
    assert advice.action is MissedAction.CONTINUE_SCHEDULE and advice.confirmed is False


def test_racemic_missed_handling_is_by_analogy() -> None:
    plan = plan_course(protocol=ELEKTD, start=MON, site=default_site())
    advice = advise_missed_session(protocol=ELEKTD, plan=plan, missed_number=12, worsening=True)
    # session 12 is in "every 2 weeks"; the previous phase is weekly (§1.4 and J&J by analogy)
    assert advice.action is MissedAction.CONSIDER_REVERT_FREQUENCY and advice.revert_to == Cadence(
        every_days=7
    )
    assert advice.confirmed is False and "by analogy" in advice.source and "§1.4" in advice.source


def test_revert_to_twice_weekly_then_resume() -> None:
    plan = esk_plan()  # weekly maintenance on Thu 2, 9, 16, 23 Apr
    reverted = revert_to_previous_frequency(
        protocol=ESK, plan=plan, site=every_day_site(), from_date=date(2026, 4, 9), weeks=2
    )
    dates = [s.start.date().isoformat() for s in reverted.sessions]
    assert dates[:9] == [s.start.date().isoformat() for s in plan.sessions[:9]]  # up to 2 Apr kept
    # 2 weeks twice weekly from Thu 9 Apr (days 0, 3, 7, 10), then the 3 remaining weekly sessions a week
    # after the last twice-weekly one, then every 2 weeks
    assert dates[9:13] == ["2026-04-09", "2026-04-12", "2026-04-16", "2026-04-19"]
    assert dates[13:16] == ["2026-04-26", "2026-05-03", "2026-05-10"]
    assert dates[16] == "2026-05-24"
    assert [s.number for s in reverted.sessions[9:11]] == [10, 11]
    assert all(s.dose_text == "56 or 84 mg" for s in reverted.sessions[9:])
    assert "back to twice weekly" in reverted.sessions[9].phase_name


def test_revert_input_errors() -> None:
    with pytest.raises(ScheduleInputError) as info:
        revert_to_previous_frequency(
            protocol=ESK, plan=esk_plan(), site=every_day_site(), from_date=MON, weeks=0
        )
    assert set(info.value.errors) == {"weeks", "from_date"}


def test_slot_problem_explains_closures_hours_and_capacity() -> None:
    from datetime import date as _date
    from datetime import datetime as _dt
    from datetime import time as _time
    from datetime import timedelta as _td
    from zoneinfo import ZoneInfo

    from ketaclinic.clinical.schedule import OpeningHours, SiteCalendar, SlotLoad, slot_problem

    zone = ZoneInfo("America/New_York")
    monday = _date(2027, 3, 1)
    site = SiteCalendar(
        zone=zone,
        opening_hours={0: OpeningHours(_time(8), _time(18))},
        chairs=1,
        slot_minutes=30,
        closures=frozenset({_date(2027, 3, 8)}),
        booked={_dt(2027, 3, 1, 10, 0, tzinfo=zone): SlotLoad(chairs=1, nurses=1)},
    )
    at = lambda d, h, m=0: _dt.combine(d, _time(h, m), tzinfo=zone)  # noqa: E731
    assert slot_problem(site, at(monday, 12), at(monday, 13)) is None
    assert "outside opening hours" in slot_problem(site, at(monday, 17), at(monday, 19))
    assert "all 1 chairs booked" in slot_problem(site, at(monday, 10), at(monday, 11))
    assert "closure" in slot_problem(site, at(monday + _td(days=7), 12), at(monday + _td(days=7), 13))
    assert "closed on Tuesdays" in slot_problem(
        site, at(monday + _td(days=1), 12), at(monday + _td(days=1), 13)
    )
