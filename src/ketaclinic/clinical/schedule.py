"""Course scheduling: dated induction and maintenance sessions at a site, with conflicts explained.

Pure: no Django, no I/O. Times are aware datetimes in the site's zone (zoneinfo); durations are added in
UTC so a clock change never stretches or shrinks a session, and a wall-clock time that does not exist on a
clock-change day is skipped.

How a course is laid out (``plan_course``):

* The first session goes on the start date, or the first open day with a free slot after it. Course
  weeks (and esketamine label weeks) count from that first session: week 1 = days 0–6.
* A per-week phase ("twice weekly") fills each 7-day week of the phase with its sessions at target
  offsets floor(i × 7 / n) days (twice weekly: days 0 and 3; three times: 0, 2, 4). An interval phase
  ("every 2 weeks") targets anchor + j × interval. Each phase starts where the previous one's weeks end,
  so esketamine weeks 5–8 begin on day 28 and week 9 on day 56 whatever the weekday of the first session.
* A target that falls on a closed day, or whose preferred time is full, moves forward to the next free
  slot, never closer to the previous session than the phase's ``min_spacing_days`` (derived rule, see
  protocols.py); at a phase boundary the shorter of the two phases' spacings applies. Every move is explained ("Tue 3 Mar 09:00: all 4 chairs booked; moved to 11:00").
* Capacity per slot: ``chairs`` and ``nurse_capacity`` (patients the nurses can monitor at once); existing
  bookings give the load per slot. ``None`` means unlimited. A session occupies every slot its chair time
  (dose + observation, ``Protocol.chair_minutes``) touches, and must end by closing time.
* Adjunct sessions (e.g. Written Exposure Therapy after the 4th infusion, on non-infusion days) go on open
  non-dosing days at the preferred time; rooms/therapists are not capacity-checked.

Missed sessions (J&J guidance, clinical.md §2.1) are handled in ``schedule_missed.py``, which reuses
``PhaseRun``, ``SlotFinder`` and ``run_phases`` from here (internal to the two modules).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Final
from zoneinfo import ZoneInfo

from ketaclinic.clinical.protocols import (
    Cadence,
    DoseRule,
    Phase,
    PhaseKind,
    Protocol,
    derived_min_spacing_days,
)

SEARCH_DAYS: Final = 60  # how far ahead a session may move before it is reported as unscheduled


class ScheduleInputError(ValueError):
    """Invalid site or scheduling input. ``errors`` maps every bad field to its reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{name}: {reason}" for name, reason in self.errors.items())
        super().__init__(f"Cannot plan this course: {detail}")
        self.message = str(self)


@dataclass(frozen=True)
class OpeningHours:
    opens: time
    closes: time


@dataclass(frozen=True)
class SlotLoad:
    chairs: int = 0
    nurses: int = 0  # patients already under nurse monitoring in the slot


@dataclass(frozen=True)
class SiteCalendar:
    zone: ZoneInfo
    opening_hours: Mapping[int, OpeningHours]  # weekday (0 = Monday) -> hours; absent = closed
    closures: frozenset[date] = frozenset()
    chairs: int | None = None  # None = unlimited
    nurse_capacity: int | None = None  # patients the nurses on shift can monitor at once; None = unlimited
    slot_minutes: int = 30
    booked: Mapping[datetime, SlotLoad] = field(default_factory=dict)  # aware slot start -> existing load


DEFAULT_OPENING: Final = OpeningHours(time(8, 0), time(18, 0))
DEFAULT_SITE_NOTE: Final = "No site given: default opening Mon–Fri 08:00–18:00, unlimited capacity."


def default_site(zone: str = "Europe/London") -> SiteCalendar:
    """Mon–Fri 08:00–18:00, no closures, unlimited capacity (the CLI default)."""
    return SiteCalendar(zone=ZoneInfo(zone), opening_hours={d: DEFAULT_OPENING for d in range(5)})


def validate_site(site: SiteCalendar) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not site.opening_hours:
        errors["opening_hours"] = "the site is never open"
    for day, hours in site.opening_hours.items():
        if day not in range(7):
            errors[f"opening_hours[{day}]"] = "weekday must be 0 (Monday) to 6 (Sunday)"
        elif hours.opens >= hours.closes:
            errors[f"opening_hours[{day}]"] = "opening time must be before closing time"
    if site.slot_minutes < 1:
        errors["slot_minutes"] = "must be 1 minute or more"
    for name in ("chairs", "nurse_capacity"):
        value = getattr(site, name)
        if value is not None and value < 1:
            errors[name] = "must be 1 or more (or leave empty for unlimited)"
    if any(key.tzinfo is None for key in site.booked):
        errors["booked"] = "booking times must include a time zone"
    return errors


class SessionStatus(StrEnum):
    PLANNED = "planned"
    MISSED = "missed"


@dataclass(frozen=True)
class PlannedSession:
    number: int
    phase_index: int
    phase_name: str
    phase_kind: PhaseKind
    start: datetime
    end: datetime
    week: int  # course week, counted from the first session (week 1 = days 0–6)
    dose: DoseRule
    dose_text: str
    status: SessionStatus = SessionStatus.PLANNED
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdjunctAppointment:
    kind: str
    label: str
    number: int
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class CoursePlan:
    protocol_id: str
    protocol_version: int
    zone: str
    sessions: tuple[PlannedSession, ...]
    adjuncts: tuple[AdjunctAppointment, ...] = ()
    conflicts: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    unscheduled: tuple[str, ...] = ()

    @property
    def first_date(self) -> date | None:
        return self.sessions[0].start.date() if self.sessions else None


def day_text(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


def moment_text(dt: datetime) -> str:
    return f"{day_text(dt.date())} {dt:%H:%M}"


@dataclass(frozen=True)
class PhaseRun:
    index: int
    phase: Phase
    cadence: Cadence
    count: int
    min_spacing: int
    first_dose: bool = True


def slot_problem(site: SiteCalendar, start: datetime, end: datetime) -> str | None:
    """Why a session from ``start`` to ``end`` cannot take place at ``site`` (None when it can): a closed
    day, outside opening hours, or no chair / nurse capacity left. Used when staff reschedule by hand."""
    local_start, local_end = start.astimezone(site.zone), end.astimezone(site.zone)
    finder = SlotFinder(site, int((end - start).total_seconds() // 60), None)
    d = local_start.date()
    closed = finder.closed_reason(d)
    if closed:
        return f"{day_text(d)}: {closed}"
    hours = site.opening_hours[d.weekday()]
    if local_start.time() < hours.opens or local_end.date() != d or local_end.time() > hours.closes:
        return f"{day_text(d)}: outside opening hours {hours.opens:%H:%M}–{hours.closes:%H:%M}"
    full = finder._full_reason(start, end)
    return f"{day_text(d)} {local_start:%H:%M}: {full}" if full else None


def spacing_problems(
    protocol: Protocol,
    number: int,
    start: datetime,
    others: Sequence[tuple[int, datetime]],
    zone: ZoneInfo | None = None,
) -> list[str]:
    """Why session ``number`` at ``start`` is closer to the nearest other session before or after it than
    its phases allow (empty when it is not). ``others``: (number, start) of the course's other sessions
    that still take place. The minimum spacing is the phase's ``min_spacing_days`` (derived rule, editable
    per phase: protocols.py); at a phase boundary the shorter of the two applies, as when the course was
    planned (``run_phases``). Used when staff move a session by hand: a move closer than this needs a
    reason (the software flags, the clinician decides)."""
    phase_of = {n: protocol.dose_for_session(n)[0] for n in (number, *(o[0] for o in others))}
    before = max((o for o in others if o[1] <= start), key=lambda o: o[1], default=None)
    after = min((o for o in others if o[1] > start), key=lambda o: o[1], default=None)
    out: list[str] = []
    for other, later in ((before, False), (after, True)):
        if other is None:
            continue
        a, b = phase_of[number], phase_of[other[0]]
        days = min(a.min_spacing_days, b.min_spacing_days)
        gap = other[1] - start if later else start - other[1]
        if gap >= timedelta(days=days):
            continue
        phases = f"'{a.name}'" if a.name == b.name else f"'{a.name}' and '{b.name}'"
        when = moment_text(other[1].astimezone(zone) if zone else other[1])
        out.append(
            f"session {number} would be {_gap_text(gap)} {'before' if later else 'after'} session "
            f"{other[0]} ({when}); {phases} keep{'s' if a.name == b.name else ''} sessions at least "
            f"{days} day{'s' if days != 1 else ''} apart (derived rule, editable per phase)"
        )
    return out


def _gap_text(gap: timedelta) -> str:
    hours = int(gap.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    if days and hours:
        return f"{days} d {hours} h"
    return f"{days} d" if days else f"{hours} h"


class SlotFinder:
    def __init__(self, site: SiteCalendar, chair_minutes: int, preferred_time: time | None) -> None:
        self.site = site
        self.zone = site.zone
        self.chair_minutes = chair_minutes
        self.preferred_time = preferred_time
        self.booked = [
            (key.astimezone(UTC), key.astimezone(UTC) + timedelta(minutes=site.slot_minutes), load)
            for key, load in site.booked.items()
        ]
        self.conflicts: list[str] = []

    def closed_reason(self, d: date) -> str | None:
        if d in self.site.closures:
            return "clinic closed (closure)"
        if d.weekday() not in self.site.opening_hours:
            return f"clinic closed on {d:%A}s"
        return None

    def _aware(self, d: date, t: time) -> datetime | None:
        local = datetime.combine(d, t, tzinfo=self.zone)
        if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != local.replace(tzinfo=None):
            return None  # this wall-clock time does not exist today (clock change)
        return local

    def _full_reason(self, start: datetime, end: datetime) -> str | None:
        s, e = start.astimezone(UTC), end.astimezone(UTC)
        overlapping = [load for (b0, b1, load) in self.booked if b0 < e and b1 > s]
        chairs = max((load.chairs for load in overlapping), default=0)
        nurses = max((load.nurses for load in overlapping), default=0)
        if self.site.chairs is not None and chairs + 1 > self.site.chairs:
            return f"all {self.site.chairs} chairs booked"
        if self.site.nurse_capacity is not None and nurses + 1 > self.site.nurse_capacity:
            return f"nurse capacity ({self.site.nurse_capacity} patients at once) reached"
        return None

    def _candidates(self, d: date) -> list[time]:
        hours = self.site.opening_hours[d.weekday()]
        step = timedelta(minutes=self.site.slot_minutes)
        latest = datetime.combine(d, hours.closes) - timedelta(minutes=self.chair_minutes)
        preferred = self.preferred_time or hours.opens
        if preferred < hours.opens:
            preferred = hours.opens
        times: list[time] = []
        t = datetime.combine(d, preferred)
        while t <= latest:
            times.append(t.time())
            t += step
        t = datetime.combine(d, hours.opens)
        while t < datetime.combine(d, preferred) and t <= latest:
            times.append(t.time())
            t += step
        return times

    def try_day(self, d: date) -> tuple[datetime, datetime, str | None] | str:
        """A free slot on ``d`` (start, end, note about a moved time) or the reason there is none."""
        closed = self.closed_reason(d)
        if closed:
            return closed
        first_problem: str | None = None
        first_time: time | None = None
        for t in self._candidates(d):
            start = self._aware(d, t)
            if start is None:
                first_problem, first_time = (
                    first_problem or "time does not exist (clock change)",
                    first_time or t,
                )
                continue
            end = (start.astimezone(UTC) + timedelta(minutes=self.chair_minutes)).astimezone(self.zone)
            if end.date() != d or end.time() > self.site.opening_hours[d.weekday()].closes:
                continue
            problem = self._full_reason(start, end)
            if problem is None:
                note = None
                if first_problem is not None and first_time is not None:
                    note = f"{day_text(d)} {first_time:%H:%M}: {first_problem}; moved to {t:%H:%M}"
                return start, end, note
            if first_problem is None:
                first_problem, first_time = problem, t
        if first_problem is None:
            return f"the {self.chair_minutes}-minute session does not fit in the opening hours"
        return f"no free slot ({first_problem} all day)"

    def place(self, target: date, earliest: date) -> tuple[datetime, datetime] | None:
        day = max(target, earliest)
        skipped: list[str] = []
        for offset in range(SEARCH_DAYS + 1):
            d = day + timedelta(days=offset)
            result = self.try_day(d)
            if isinstance(result, str):
                skipped.append(f"{day_text(d)}: {result}")
                continue
            start, end, note = result
            if skipped:
                shown = "; ".join(skipped[:3]) + ("; …" if len(skipped) > 3 else "")
                self.conflicts.append(f"{shown}; moved to {moment_text(start)}")
            elif note:
                self.conflicts.append(note)
            return start, end
        return None


def _dose_rule(run: PhaseRun, position: int) -> DoseRule:
    if position == 0 and run.first_dose and run.phase.first_dose is not None:
        return run.phase.first_dose
    return run.phase.dose


def run_phases(
    runs: Sequence[PhaseRun],
    *,
    sched: SlotFinder,
    anchor: date,
    prev: date | None,
    next_number: int,
    course_start: date | None,
) -> tuple[list[PlannedSession], list[str], list[str]]:
    sessions: list[PlannedSession] = []
    unscheduled: list[str] = []
    notes: list[str] = []
    number = next_number

    def add(run: PhaseRun, position: int, target: date, earliest: date) -> date | None:
        nonlocal number, course_start, prev
        placed = sched.place(target, earliest)
        if placed is None:
            unscheduled.append(
                f"Session {number} ({run.phase.name}): no free slot within {SEARCH_DAYS} days of {day_text(target)}"
            )
            number += 1
            return None
        start, end = placed
        if course_start is None:
            course_start = start.date()
        rule = _dose_rule(run, position)
        sessions.append(
            PlannedSession(
                number=number,
                phase_index=run.index,
                phase_name=run.phase.name,
                phase_kind=run.phase.kind,
                start=start,
                end=end,
                week=(start.date() - course_start).days // 7 + 1,
                dose=rule,
                dose_text=rule.describe(),
            )
        )
        number += 1
        prev = start.date()
        return prev

    previous_spacing: int | None = None
    for run in runs:
        # At a phase boundary the shorter of the two spacings applies (twice weekly -> weekly keeps the
        # label's week 5 on day 28 even when the last induction session was late in week 4).
        boundary = timedelta(days=min(run.min_spacing, previous_spacing or run.min_spacing))
        previous_spacing = run.min_spacing
        placed_dates: list[date] = []

        within = timedelta(days=run.min_spacing)

        if run.cadence.per_week:
            per_week = run.cadence.per_week
            offsets = [math.floor(i * 7 / per_week) for i in range(per_week)]
            for w in range(math.ceil(run.count / per_week)):
                for i in range(min(per_week, run.count - w * per_week)):
                    target = anchor + timedelta(days=7 * w + offsets[i])
                    earliest = target if prev is None else prev + (within if placed_dates else boundary)
                    got = add(run, len(placed_dates), target, earliest)
                    if got is None:
                        continue
                    if len(sessions) == 1 and got != target:
                        anchor = got  # weeks count from the first session actually given
                    placed_dates.append(got)
                    if got >= anchor + timedelta(days=7 * (w + 1)):
                        sched.conflicts.append(
                            f"{day_text(got)}: session {number - 1} falls outside week {w + 1} of "
                            f"'{run.phase.name}' (no earlier free slot)"
                        )
            anchor = anchor + timedelta(days=7 * math.ceil(run.count / per_week))
        else:
            every = run.cadence.every_days or 1
            for j in range(run.count):
                target = anchor + timedelta(days=j * every)
                earliest = target if prev is None else prev + (within if placed_dates else boundary)
                got = add(run, len(placed_dates), target, earliest)
                if got is None:
                    continue
                if len(sessions) == 1 and got != target:
                    anchor = got  # the grid starts at the first session actually given
                placed_dates.append(got)
            anchor = anchor + timedelta(days=run.count * every)
        span = run.phase.max_span_days
        if span is not None and placed_dates and (placed_dates[-1] - placed_dates[0]).days + 1 > span:
            sched.conflicts.append(
                f"'{run.phase.name}': the sessions span {(placed_dates[-1] - placed_dates[0]).days + 1} days; "
                f"the protocol allows up to {span} days"
            )
        if run.phase.sessions is None:
            notes.append(
                f"'{run.phase.name}' continues until stopped; the first {run.count} sessions are shown."
            )
        if run.phase.optional:
            notes.append(f"'{run.phase.name}': optional. {run.phase.note}".strip())
        if run.phase.may_stop_early:
            notes.append(
                f"'{run.phase.name}': up to {run.count} sessions; may stop early ({run.phase.source})."
            )
    return sessions, unscheduled, notes


def _runs_for(
    protocol: Protocol,
    *,
    cadence_choices: Mapping[int, Cadence],
    include_optional: bool,
    open_ended_sessions: int,
) -> list[PhaseRun]:
    errors: dict[str, str] = {}
    runs: list[PhaseRun] = []
    for i, phase in enumerate(protocol.phases):
        if phase.optional and not include_optional:
            continue
        cadence = cadence_choices.get(i, phase.cadence)
        if cadence != phase.cadence and cadence not in phase.alternative_cadences:
            allowed = ", ".join(c.describe() for c in (phase.cadence, *phase.alternative_cadences))
            errors[f"cadence_choices[{i}]"] = f"'{phase.name}' can be scheduled {allowed}"
            continue
        spacing = phase.min_spacing_days if cadence == phase.cadence else derived_min_spacing_days(cadence)
        runs.append(PhaseRun(i, phase, cadence, phase.sessions or open_ended_sessions, spacing))
    if errors:
        raise ScheduleInputError(errors)
    return runs


def check_common(site: SiteCalendar, open_ended_sessions: int) -> None:
    errors = validate_site(site)
    if open_ended_sessions < 1:
        errors["open_ended_sessions"] = "must be 1 or more"
    if errors:
        raise ScheduleInputError(errors)


def _adjuncts(
    protocol: Protocol, sessions: Sequence[PlannedSession], sched: SlotFinder
) -> list[AdjunctAppointment]:
    out: list[AdjunctAppointment] = []
    dosing_days = {s.start.date() for s in sessions if s.status is SessionStatus.PLANNED}
    for spec in protocol.adjuncts:
        if len(sessions) < spec.start_after_session:
            continue
        d = (
            sessions[spec.start_after_session - 1].start.date()
            if spec.start_after_session
            else sessions[0].start.date()
        )
        count = 0
        for _ in range(SEARCH_DAYS):
            d += timedelta(days=1)
            if sched.closed_reason(d) or (spec.non_dosing_days_only and d in dosing_days):
                continue
            hours = sched.site.opening_hours[d.weekday()]
            start = sched._aware(d, max(sched.preferred_time or hours.opens, hours.opens))
            if start is None:
                continue
            count += 1
            end = None
            if spec.duration_min:
                end = (start.astimezone(UTC) + timedelta(minutes=spec.duration_min)).astimezone(sched.zone)
            out.append(AdjunctAppointment(spec.kind, spec.label, count, start, end))
            if count == spec.count:
                break
    return out


def plan_course(
    *,
    protocol: Protocol,
    start: date,
    site: SiteCalendar,
    preferred_time: time | None = None,
    cadence_choices: Mapping[int, Cadence] | None = None,
    include_optional: bool = True,
    open_ended_sessions: int = 4,
    chair_minutes: int | None = None,
) -> CoursePlan:
    """Dated sessions for ``protocol`` from ``start`` at ``site`` (see module docstring for the rules).

    ``cadence_choices`` maps a phase index to one of its allowed cadences (e.g. esketamine week 9+: weekly
    instead of every 2 weeks). ``open_ended_sessions`` is how many sessions of an open-ended phase to show
    (a display choice, not a clinical number).
    """
    check_common(site, open_ended_sessions)
    runs = _runs_for(
        protocol,
        cadence_choices=cadence_choices or {},
        include_optional=include_optional,
        open_ended_sessions=open_ended_sessions,
    )
    sched = SlotFinder(site, chair_minutes or protocol.chair_minutes(), preferred_time)
    sessions, unscheduled, notes = run_phases(
        runs, sched=sched, anchor=start, prev=None, next_number=1, course_start=None
    )
    return CoursePlan(
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        zone=site.zone.key,
        sessions=tuple(sessions),
        adjuncts=tuple(_adjuncts(protocol, sessions, sched)),
        conflicts=tuple(sched.conflicts),
        notes=tuple(notes),
        unscheduled=tuple(unscheduled),
    )
