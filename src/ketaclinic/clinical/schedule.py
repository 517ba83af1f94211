"""Course scheduling: dated induction and maintenance sessions at a site, with conflicts explained.

Pure: no Django, no I/O. Times are aware datetimes in the site's zone (zoneinfo); durations are added in
UTC so a clock change never stretches or shrinks a session, and a wall-clock time that does not exist on a
clock-change day is skipped.

This module holds the shapes (site calendar, planned sessions, the course plan), the slot finder (opening
hours, closures, chair and nurse capacity) and the checks used when staff move a session by hand
(``slot_problem``, ``spacing_problems``). How a course is laid out on the calendar — never compressed, a
session on a closure moved within its phase's spacing or dropped per the missed-session rule, optional
phases proposed rather than booked — is ``schedule_layout.py`` (``plan_course``, ``continue_course``),
re-exported here.

The rhythm of a phase (derived rules, ``PER_SEVEN_DAYS_SOURCE``): two sessions of a phase are at least its
``min_spacing_days`` apart, and no 7 consecutive days hold more sessions than the phase's cadence gives
(twice weekly: 2; three times: 3; every N days: ceil(7 / N), so weekly and every 2 weeks: 1).

Missed sessions (J&J guidance, clinical.md §2.1) are handled in ``schedule_missed.py``.
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

from ketaclinic.clinical.protocols import Cadence, DoseRule, PhaseKind, Protocol

SEARCH_DAYS: Final = 60  # how far ahead a course's first session may move before it is reported unscheduled
PER_SEVEN_DAYS_SOURCE: Final = (
    "derived rule: no 7 consecutive days hold more of a phase's sessions than its cadence gives (twice "
    "weekly = 2, every N days = ceil(7/N)); the schedules of clinical.md §1.3, §1.4, §2.1 and §4 are "
    "stated per week or per interval, and a closure never packs them closer"
)


def per_seven_days(cadence: Cadence) -> int:
    """The most sessions of a phase with this cadence in any 7 consecutive days (``PER_SEVEN_DAYS_SOURCE``)."""
    if cadence.per_week:
        return cadence.per_week
    return math.ceil(7 / (cadence.every_days or 7))


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
class PhaseProposal:
    """A phase of the protocol that is proposed, not booked (maintenance, optional phases): the prescriber
    books it at the end-of-induction review."""

    index: int
    name: str
    kind: PhaseKind
    cadence: str
    sessions: int | None  # None: open-ended
    dose_text: str
    optional: bool
    source: str
    note: str = ""
    alternatives: tuple[str, ...] = ()  # other cadences the phase allows (e.g. "weekly")


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
    proposals: tuple[PhaseProposal, ...] = ()  # phases not booked: offered at the end-of-induction review

    @property
    def first_date(self) -> date | None:
        return self.sessions[0].start.date() if self.sessions else None


def day_text(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b}"


def moment_text(dt: datetime) -> str:
    return f"{day_text(dt.date())} {dt:%H:%M}"


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
    crowded = seven_day_problem(protocol, number, start, others, zone)
    if crowded:
        out.append(crowded)
    return out


def seven_day_problem(
    protocol: Protocol,
    number: int,
    start: datetime,
    others: Sequence[tuple[int, datetime]],
    zone: ZoneInfo | None = None,
) -> str | None:
    """Why session ``number`` at ``start`` would put more sessions in some 7 consecutive days than the phase
    ending those days allows (``per_seven_days``; None when it would not). Days are counted in ``zone``."""

    def local(dt: datetime) -> date:
        return (dt.astimezone(zone) if zone else dt).date()

    moved = local(start)
    entries = sorted([(local(s), n) for n, s in others] + [(moved, number)])
    for day, n in entries:
        if not moved <= day <= moved + timedelta(days=6):
            continue
        inside = [e for e in entries if day - timedelta(days=6) <= e[0] <= day]
        phase = protocol.dose_for_session(n)[0]
        limit = per_seven_days(phase.cadence)
        if len(inside) > limit:
            first = inside[0][0]
            return (
                f"session {number} would make {len(inside)} sessions in the 7 days {day_text(first)} – "
                f"{day_text(first + timedelta(days=6))}; '{phase.name}' ({phase.cadence.describe()}) allows "
                f"{limit} in any 7 days ({PER_SEVEN_DAYS_SOURCE})"
            )
    return None


def _gap_text(gap: timedelta) -> str:
    hours = int(gap.total_seconds() // 3600)
    days, hours = divmod(hours, 24)
    if days and hours:
        return f"{days} d {hours} h"
    return f"{days} d" if days else f"{hours} h"


class SlotFinder:
    def __init__(
        self,
        site: SiteCalendar,
        chair_minutes: int,
        preferred_time: time | None,
        busy_days: Mapping[date, str] | None = None,
    ) -> None:
        self.site = site
        self.busy_days: Mapping[date, str] = busy_days or {}  # the patient's days taken, with why
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
        if d in self.busy_days:
            return self.busy_days[d]
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


def check_common(site: SiteCalendar, open_ended_sessions: int) -> None:
    errors = validate_site(site)
    if open_ended_sessions < 1:
        errors["open_ended_sessions"] = "must be 1 or more"
    if errors:
        raise ScheduleInputError(errors)


def adjunct_appointments(
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


# The layout engine builds on the shapes above; re-exported so callers keep one entry point.
from ketaclinic.clinical.schedule_layout import (  # noqa: E402
    PhaseRun as PhaseRun,
)
from ketaclinic.clinical.schedule_layout import continue_course as continue_course  # noqa: E402
from ketaclinic.clinical.schedule_layout import plan_course as plan_course  # noqa: E402
from ketaclinic.clinical.schedule_layout import proposals_for as proposals_for  # noqa: E402
from ketaclinic.clinical.schedule_layout import rhythm_problems as rhythm_problems  # noqa: E402
from ketaclinic.clinical.schedule_layout import run_phases as run_phases  # noqa: E402
