"""Property tests: whatever the protocol, the opening days and the closures, the scheduler never packs a course.

Every generated course keeps each phase's minimum spacing and never puts more of a phase's sessions in 7
consecutive days than its cadence gives (schedule.per_seven_days); every session lands on an open day that
is not a closure; every slot of the protocol is either booked or reported as dropped; the numbers are the
protocol's slots, so each session keeps its phase and dose rule. The same holds when later phases are booked
after the sessions already given (continue_course, as at the end-of-induction review)."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.clinical.protocols import Cadence, Phase, PhaseKind, Protocol, derived_min_spacing_days
from ketaclinic.clinical.schedule import (
    OpeningHours,
    SiteCalendar,
    continue_course,
    plan_course,
    rhythm_problems,
)

BASE = get_protocol("iv-trd-elektd")
DOSE = BASE.phases[0].dose
FIRST = date(2026, 3, 2)

cadences = st.one_of(
    st.builds(Cadence, per_week=st.integers(1, 3)),
    st.builds(Cadence, every_days=st.sampled_from([1, 2, 3, 7, 14, 28])),
)


@st.composite
def phases(draw: st.DrawFn) -> tuple[Phase, ...]:
    count = draw(st.integers(1, 3))
    out = []
    for i in range(count):
        cadence = draw(cadences)
        derived = derived_min_spacing_days(cadence)
        out.append(
            Phase(
                name=f"phase {i + 1}",
                kind=PhaseKind.INDUCTION if i == 0 else PhaseKind.MAINTENANCE,
                cadence=cadence,
                sessions=draw(st.integers(1, 8)),
                min_spacing_days=draw(st.integers(1, derived)),
                dose=DOSE,
                source="generated",
            )
        )
    return tuple(out)


@st.composite
def sites(draw: st.DrawFn) -> SiteCalendar:
    weekdays = draw(st.sets(st.integers(0, 6), min_size=1))
    closures = draw(st.sets(st.integers(0, 200), max_size=40))
    return SiteCalendar(
        zone=ZoneInfo("Europe/London"),
        opening_hours={d: OpeningHours(time(8), time(18)) for d in weekdays},
        closures=frozenset(FIRST + timedelta(days=n) for n in closures),
    )


def _open(site: SiteCalendar, d: date) -> bool:
    return d.weekday() in site.opening_hours and d not in site.closures


def _check(protocol: Protocol, site: SiteCalendar, plan: object, expected_numbers: set[int]) -> None:
    sessions = plan.sessions  # type: ignore[attr-defined]
    days = [(s.number, s.start.date()) for s in sessions]
    assert rhythm_problems(protocol, days) == []
    assert all(_open(site, d) for _n, d in days)
    assert [d for _n, d in days] == sorted(d for _n, d in days)
    assert len({d for _n, d in days}) == len(days)  # never two the same day
    for s in sessions:
        phase = protocol.dose_for_session(s.number)[0]
        assert s.phase_name == phase.name
    dropped = {int(u.split(" ")[1]) for u in plan.unscheduled}  # type: ignore[attr-defined]
    assert {n for n, _d in days} | dropped == expected_numbers
    assert not {n for n, _d in days} & dropped


@settings(max_examples=300, deadline=None)
@given(phases=phases(), site=sites(), start=st.integers(0, 13))
def test_no_generated_course_is_ever_packed(
    phases: tuple[Phase, ...], site: SiteCalendar, start: int
) -> None:
    protocol = replace(BASE, phases=phases, adjuncts=())
    plan = plan_course(protocol=protocol, start=FIRST + timedelta(days=start), site=site)
    total = sum(p.sessions or 0 for p in phases)
    _check(protocol, site, plan, set(range(1, total + 1)))


@settings(max_examples=200, deadline=None)
@given(phases=phases(), site=sites(), start=st.integers(0, 13), late=st.integers(0, 20))
def test_later_phases_booked_after_the_induction_keep_the_rhythm(
    phases: tuple[Phase, ...], site: SiteCalendar, start: int, late: int
) -> None:
    protocol = replace(BASE, phases=phases, adjuncts=())
    induction = plan_course(protocol=protocol, start=FIRST + timedelta(days=start), site=site, phases=[0])
    if not induction.sessions or len(phases) == 1:
        return
    given_days = [(s.number, s.start.date()) for s in induction.sessions]
    not_before = given_days[-1][1] + timedelta(days=late)
    later = continue_course(
        protocol=protocol,
        site=site,
        phases=range(1, len(phases)),
        given=given_days,
        course_start=given_days[0][1],
        not_before=not_before,
    )
    assert all(s.start.date() >= not_before for s in later.sessions)
    whole = replace(later, sessions=(*induction.sessions, *later.sessions))
    dropped_in_induction = {int(u.split(" ")[1]) for u in induction.unscheduled}
    total = sum(p.sessions or 0 for p in phases)
    _check(protocol, site, whole, set(range(1, total + 1)) - dropped_in_induction)
    # The first session of the next phase keeps that phase's spacing after the last induction session.
    if later.sessions:
        gap = (later.sessions[0].start.date() - given_days[-1][1]).days
        assert gap >= phases[later.sessions[0].phase_index].min_spacing_days


def test_a_christmas_closure_drops_esketamine_sessions_instead_of_packing_them() -> None:
    # Issue 14: after a closure the old layout gave esketamine induction at 3 a week and a first maintenance
    # dose 2 days after the last induction dose.
    esk = get_protocol("esk-trd-label")
    closed = {date(2026, 12, d) for d in (24, 25, 28, 29, 30, 31)} | {date(2027, 1, 1)}
    site = SiteCalendar(
        zone=ZoneInfo("Europe/London"),
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)},
        closures=frozenset(closed),
    )
    plan = plan_course(protocol=esk, start=date(2026, 12, 14), site=site)
    days = [(s.number, s.start.date()) for s in plan.sessions]
    assert rhythm_problems(esk, days) == []
    induction = [d for n, d in days if n <= 8]
    assert induction == [
        date(2026, 12, 14),
        date(2026, 12, 17),
        date(2026, 12, 21),
        date(2027, 1, 4),
        date(2027, 1, 7),
    ]
    assert [u.split(" ")[1] for u in plan.unscheduled] == ["4", "5", "6"]
    first_weekly = next(d for n, d in days if n == 9)
    assert (first_weekly - induction[-1]).days == 7


def test_a_christmas_closure_never_packs_elektd_into_january() -> None:
    # Issue 14: after a closure the old layout gave ELEKT-D one session in 14 days, then three a week. Now the
    # induction keeps twice a week: the sessions the closure swallows are dropped (the missed-session rule),
    # never crowded into the days after it.
    elektd = get_protocol("iv-trd-elektd")
    closed = {date(2026, 12, d) for d in (24, 25, 28, 29, 30, 31)} | {date(2027, 1, 1)}
    site = SiteCalendar(
        zone=ZoneInfo("America/New_York"),
        opening_hours={d: OpeningHours(time(8), time(18)) for d in range(5)},
        closures=frozenset(closed),
    )
    plan = plan_course(protocol=elektd, start=date(2026, 12, 14), site=site, phases=[0])
    days = [(s.number, s.start.date()) for s in plan.sessions]
    assert days == [(1, date(2026, 12, 14)), (2, date(2026, 12, 17)), (3, date(2026, 12, 21))]
    assert [u.split(" (")[0] for u in plan.unscheduled] == ["Session 4", "Session 5", "Session 6"]
    assert all("dropped: clinic closed" in u and "The schedule continues" in u for u in plan.unscheduled)
    assert rhythm_problems(elektd, days) == []
    for _, day in days:  # never more than the phase's two sessions in any 7 days
        assert sum(day <= d < day + timedelta(days=7) for _, d in days) <= 2
