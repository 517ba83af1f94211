"""Laying a course out on the calendar without ever packing it (pure: no Django, no I/O).

Issue 14 found the old layout pushing every session after a closure forward, so that they bunched up: an
esketamine induction at three a week, a first maintenance dose two days after the last induction dose,
ELEKT-D at one session in 14 days and then three a week. The rules now:

* **The rhythm holds.** Two sessions of a phase are at least its ``min_spacing_days`` apart, and no 7
  consecutive days hold more sessions than the phase's cadence gives (``schedule.per_seven_days``:
  twice weekly = 2, every N days = ceil(7/N)). Every placement checks both, so nothing here can compress.
* **Targets.** A per-week phase puts its sessions at floor(i × 7 / n) days into each 7-day week (twice
  weekly: days 0 and 3); an interval phase every N days. The grid starts at the phase's first session
  actually given. The course's first session goes on the start date or the first open day with a free
  slot after it (up to ``SEARCH_DAYS``); course weeks count from it.
* **A phase after another** starts on its nominal week (esketamine weeks 5–8 after weeks 1–4) but never
  sooner than its own cadence after the previous phase's last session (a weekly phase: 7 days; every 2
  weeks: 14 days), so the first maintenance dose respects the maintenance cadence.
* **A session whose day is closed or full moves within the phase's spacing**: to a day no closer to the
  session before than the spacing and the 7-day count allow, and no later than the next session's target
  minus the spacing (so the schedule after it continues unchanged). Among those days it prefers the target,
  then the day that keeps the next sessions on their days, then the nearest, later before earlier. If no
  such day is open, the session is **dropped** and reported: per the missed-session rule (clinical.md §2.1,
  J&J: continue the current schedule) the rest of the course keeps its days; a prescriber may make a
  dropped induction session up at the end-of-induction review. The one exception is a weekday the site is
  never open (a daily course at a Monday–Friday clinic): the session goes to the next open day that keeps
  the rhythm, as a clinic would lay it out.
* **Numbers.** Session numbers are the protocol's slots (``Protocol.dose_for_session``), so a dropped
  session leaves a gap and every dose rule stays with its session.
* **Only chosen phases are booked** (``plan_course(phases=...)``); the others come back as
  ``PhaseProposal``s. ``continue_course`` books later phases (or make-up induction sessions) after the
  sessions already given, from a given day on.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from ketaclinic.clinical.protocols import Cadence, DoseRule, Phase, Protocol, derived_min_spacing_days
from ketaclinic.clinical.schedule import (
    PER_SEVEN_DAYS_SOURCE,
    SEARCH_DAYS,
    CoursePlan,
    PhaseProposal,
    PlannedSession,
    ScheduleInputError,
    SiteCalendar,
    SlotFinder,
    adjunct_appointments,
    check_common,
    day_text,
    moment_text,
    per_seven_days,
)

DROPPED_SOURCE: Final = (
    "clinical.md §2.1: missed sessions (J&J Medical Information, 10/2025): continue the current schedule"
)


@dataclass(frozen=True)
class PhaseRun:
    index: int
    phase: Phase
    cadence: Cadence
    count: int
    min_spacing: int
    first_dose: bool = True
    numbers: tuple[int, ...] | None = None  # course numbers of its sessions (default: the next ones)

    @property
    def limit(self) -> int:
        return per_seven_days(self.cadence)


def phase_days(cadence: Cadence, count: int) -> int:
    """The nominal length of a phase in days (a per-week phase in whole weeks)."""
    if cadence.per_week:
        return 7 * math.ceil(count / cadence.per_week)
    return count * (cadence.every_days or 1)


def boundary_gap_days(run: PhaseRun) -> int:
    """How long after the previous phase's last session this phase's first session is aimed: its own
    cadence (weekly: 7 days; twice weekly: 3), never less than its spacing."""
    return max(run.min_spacing, math.floor(run.cadence.interval_days()))


def _grid(anchor: date, cadence: Cadence, count: int) -> list[date]:
    if cadence.per_week:
        n = cadence.per_week
        offsets = [math.floor(i * 7 / n) for i in range(n)]
        return [anchor + timedelta(days=7 * (j // n) + offsets[j % n]) for j in range(count)]
    every = cadence.every_days or 1
    return [anchor + timedelta(days=j * every) for j in range(count)]


def _dose_rule(run: PhaseRun, position: int) -> DoseRule:
    if position == 0 and run.first_dose and run.phase.first_dose is not None:
        return run.phase.first_dose
    return run.phase.dose


class _Layout:
    """The state carried from phase to phase: what is already placed (dates in the site's zone)."""

    def __init__(
        self,
        sched: SlotFinder,
        *,
        history: Sequence[date],
        prev_number: int | None,
        course_start: date | None,
        not_before: date | None,
    ) -> None:
        self.sched = sched
        self.history = sorted(history)
        self.prev_number = prev_number
        self.course_start = course_start
        self.not_before = not_before
        self.sessions: list[PlannedSession] = []
        self.unscheduled: list[str] = []
        self.notes: list[str] = []

    @property
    def prev(self) -> date | None:
        return self.history[-1] if self.history else None

    def run(self, run: PhaseRun, nominal: date, numbers: Sequence[int]) -> date:
        """Lay ``run`` out from its nominal start; returns the next phase's nominal start."""
        anchor = nominal
        if self.prev is not None:
            anchor = max(anchor, self.prev + timedelta(days=boundary_gap_days(run)))
        if self.not_before is not None:
            anchor = max(anchor, self.not_before)
        targets = _grid(anchor, run.cadence, run.count)
        placed: list[date] = []
        for j in range(run.count):
            got = self._session(run, j, targets, numbers[j])
            if got is None:
                continue
            if j == 0 and got != targets[0]:
                shift = got - targets[0]  # the grid starts at the phase's first session actually given
                targets = [t + shift for t in targets]
                anchor += shift
            placed.append(got)
            per_week = run.cadence.per_week
            if per_week and got >= anchor + timedelta(days=7 * (j // per_week + 1)):
                self.sched.conflicts.append(
                    f"{day_text(got)}: session {numbers[j]} falls outside week {j // per_week + 1} of "
                    f"'{run.phase.name}' (no earlier day keeps the spacing)"
                )
        self._phase_notes(run, placed)
        return anchor + timedelta(days=phase_days(run.cadence, run.count))

    def _phase_notes(self, run: PhaseRun, placed: list[date]) -> None:
        span = run.phase.max_span_days
        if span is not None and placed and (placed[-1] - placed[0]).days + 1 > span:
            self.sched.conflicts.append(
                f"'{run.phase.name}': the sessions span {(placed[-1] - placed[0]).days + 1} days; "
                f"the protocol allows up to {span} days"
            )
        if run.phase.sessions is None:
            self.notes.append(
                f"'{run.phase.name}' continues until stopped; the first {run.count} sessions are shown."
            )
        if run.phase.may_stop_early:
            self.notes.append(
                f"'{run.phase.name}': up to {run.phase.sessions} sessions; may stop early ({run.phase.source})."
            )

    # --- one session ---------------------------------------------------------------------------------

    def _earliest(self, run: PhaseRun) -> date | None:
        if self.prev is None:
            return None
        earliest = self.prev + timedelta(days=run.min_spacing)
        if len(self.history) >= run.limit:
            earliest = max(earliest, self.history[-run.limit] + timedelta(days=7))
        if self.not_before is not None:
            earliest = max(earliest, self.not_before)
        return earliest

    def _displaced(self, run: PhaseRun, j: int, targets: list[date], day: date) -> int:
        """How many of the next sessions of the phase would have to leave their target if this one took
        ``day`` (closures ignored): the tie-break that keeps a twice-weekly rhythm on its weekdays."""
        history = [*self.history, day]
        prev = day
        moved = 0
        for target in targets[j + 1 : j + 1 + run.limit]:
            earliest = prev + timedelta(days=run.min_spacing)
            if len(history) >= run.limit:
                earliest = max(earliest, history[-run.limit] + timedelta(days=7))
            at = max(target, earliest)
            moved += at != target
            history.append(at)
            prev = at
        return moved

    def _too_soon(self, run: PhaseRun, target: date) -> str:
        assert self.prev is not None
        if target < self.prev + timedelta(days=run.min_spacing):
            return (
                f"within {run.min_spacing} day{'s' if run.min_spacing != 1 else ''} of session "
                f"{self.prev_number} ({day_text(self.prev)})"
            )
        return (
            f"would make {run.limit + 1} sessions in 7 days ('{run.phase.name}' allows {run.limit}; "
            f"{PER_SEVEN_DAYS_SOURCE})"
        )

    def _session(self, run: PhaseRun, j: int, targets: list[date], number: int) -> date | None:
        target = targets[j]
        earliest = self._earliest(run)
        if earliest is None:  # the course's first session: the first open day with a free slot
            slot = self.sched.place(target, target)
            if slot is None:
                self.unscheduled.append(
                    f"Session {number} ({run.phase.name}): no free slot within {SEARCH_DAYS} days of "
                    f"{day_text(target)}"
                )
                return None
            return self._add(run, j, number, slot)
        following = (
            targets[j + 1]
            if j + 1 < run.count
            else target + timedelta(days=math.floor(run.cadence.interval_days()))
        )
        latest = max(following - timedelta(days=run.min_spacing), earliest)
        days = [earliest + timedelta(days=k) for k in range((latest - earliest).days + 1)]
        days.sort(
            key=lambda d: (
                d != target,
                self._displaced(run, j, targets, d),
                abs((d - target).days),
                d < target,
            )
        )
        # A target before ``earliest`` follows from an earlier move (already explained): it is named only
        # when the session has to be dropped.
        skipped: list[tuple[date, str]] = []
        for d in days:
            result = self.sched.try_day(d)
            if isinstance(result, str):
                skipped.append((d, result))
                continue
            start, end, note = result
            if skipped:
                self._moved(skipped, start)
            elif note:
                self.sched.conflicts.append(note)
            return self._add(run, j, number, (start, end))

        def routine(d: date) -> bool:
            return d.weekday() not in self.sched.site.opening_hours

        if routine(target) or all(routine(d) for d, _why in skipped):
            # Only weekdays the site never opens stand in the way: the next open day that keeps the rhythm.
            for offset in range(1, SEARCH_DAYS + 1):
                d = latest + timedelta(days=offset)
                result = self.sched.try_day(d)
                if isinstance(result, str):
                    skipped.append((d, result))
                    continue
                start, end, _note = result
                self._moved(skipped, start)
                return self._add(run, j, number, (start, end))
        reasons = dict(skipped)
        why = reasons.pop(target, None) or self._too_soon(run, target)
        nearest = sorted(reasons.items(), key=lambda r: (abs((r[0] - target).days), r[0]))
        shown = "; ".join(f"{day_text(d)}: {w}" for d, w in nearest[:3]) + ("; …" if len(nearest) > 3 else "")
        self.unscheduled.append(
            f"Session {number} ({run.phase.name}) on {day_text(target)} dropped: {why}. Every day it could "
            f"move to without crowding the sessions around it ({day_text(earliest)} – {day_text(latest)}) is "
            f"closed or full{f' ({shown})' if shown else ''}. The schedule continues ({DROPPED_SOURCE})."
        )
        return None

    def _moved(self, skipped: list[tuple[date, str]], start: datetime) -> None:
        ordered = sorted(skipped)
        shown = "; ".join(f"{day_text(d)}: {why}" for d, why in ordered[:3])
        self.sched.conflicts.append(
            f"{shown}{'; …' if len(ordered) > 3 else ''}; moved to {moment_text(start)}"
        )

    def _add(self, run: PhaseRun, j: int, number: int, slot: tuple[datetime, datetime]) -> date:
        start, end = slot
        day = start.date()
        if self.course_start is None:
            self.course_start = day
        rule = _dose_rule(run, j)
        self.sessions.append(
            PlannedSession(
                number=number,
                phase_index=run.index,
                phase_name=run.phase.name,
                phase_kind=run.phase.kind,
                start=start,
                end=end,
                week=(day - self.course_start).days // 7 + 1,
                dose=rule,
                dose_text=rule.describe(),
            )
        )
        self.history.append(day)
        self.prev_number = number
        return day


def run_phases(
    runs: Sequence[PhaseRun],
    *,
    sched: SlotFinder,
    anchor: date,
    prev: date | None,
    next_number: int,
    course_start: date | None,
    history: Sequence[date] = (),
    prev_number: int | None = None,
    not_before: date | None = None,
) -> tuple[list[PlannedSession], list[str], list[str]]:
    """Lay ``runs`` out one after the other from ``anchor`` (see the module text). ``history``: the dates of
    the course's sessions already given or booked (``prev`` is added to it); returns (sessions, unscheduled,
    notes) and adds moves to ``sched.conflicts``."""
    past = sorted({*history, *((prev,) if prev is not None else ())})
    layout = _Layout(
        sched, history=past, prev_number=prev_number, course_start=course_start, not_before=not_before
    )
    number = next_number
    for run in runs:
        numbers = run.numbers or tuple(range(number, number + run.count))
        number = max(numbers, default=number - 1) + 1
        anchor = layout.run(run, anchor, numbers)
    return layout.sessions, layout.unscheduled, layout.notes


# --- choosing phases -----------------------------------------------------------------------------------


def _first_number(protocol: Protocol, index: int, open_ended_sessions: int) -> int:
    return 1 + sum(p.sessions or open_ended_sessions for p in protocol.phases[:index])


def _runs_for(
    protocol: Protocol,
    chosen: Sequence[int],
    *,
    cadence_choices: Mapping[int, Cadence],
    open_ended_sessions: int,
    numbers: Mapping[int, Sequence[int]] | None = None,
) -> list[PhaseRun]:
    errors: dict[str, str] = {}
    runs: list[PhaseRun] = []
    for i in chosen:
        if not 0 <= i < len(protocol.phases):
            errors[f"phases[{i}]"] = f"the protocol has phases 0 to {len(protocol.phases) - 1}"
            continue
        phase = protocol.phases[i]
        cadence = cadence_choices.get(i, phase.cadence)
        if cadence != phase.cadence and cadence not in phase.alternative_cadences:
            allowed = ", ".join(c.describe() for c in (phase.cadence, *phase.alternative_cadences))
            errors[f"cadence_choices[{i}]"] = f"'{phase.name}' can be scheduled {allowed}"
            continue
        spacing = phase.min_spacing_days if cadence == phase.cadence else derived_min_spacing_days(cadence)
        given = tuple(numbers[i]) if numbers is not None and i in numbers else None
        if given is not None:
            runs.append(PhaseRun(i, phase, cadence, len(given), spacing, first_dose=False, numbers=given))
            continue
        count = phase.sessions or open_ended_sessions
        first = _first_number(protocol, i, open_ended_sessions)
        runs.append(PhaseRun(i, phase, cadence, count, spacing, numbers=tuple(range(first, first + count))))
    for i in cadence_choices:
        if i not in chosen:
            errors.setdefault(f"cadence_choices[{i}]", "that phase is not being booked")
    if errors:
        raise ScheduleInputError(errors)
    return runs


def proposals_for(protocol: Protocol, booked: Collection[int]) -> tuple[PhaseProposal, ...]:
    """The protocol's phases that are not booked, as proposals for the end-of-induction review."""
    return tuple(
        PhaseProposal(
            index=i,
            name=p.name,
            kind=p.kind,
            cadence=p.cadence.describe(),
            sessions=p.sessions,
            dose_text=p.dose.describe(),
            optional=p.optional,
            source=p.source,
            note=p.note,
            alternatives=tuple(c.describe() for c in p.alternative_cadences),
        )
        for i, p in enumerate(protocol.phases)
        if i not in booked
    )


def _chosen(protocol: Protocol, phases: Collection[int] | None, include_optional: bool) -> list[int]:
    if phases is None:
        return [i for i, p in enumerate(protocol.phases) if include_optional or not p.optional]
    return sorted(set(phases))


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
    phases: Collection[int] | None = None,
    busy_days: Mapping[date, str] | None = None,
) -> CoursePlan:
    """Dated sessions for ``protocol`` from ``start`` at ``site`` (see the module text).

    ``phases``: the phase indexes to book (default: every phase, without the optional ones when
    ``include_optional`` is false); the rest come back as ``proposals``. ``cadence_choices`` maps a phase
    index to one of its allowed cadences (esketamine week 9+: weekly instead of every 2 weeks).
    ``busy_days``: days the patient already has a session (with why), never used again.
    ``open_ended_sessions`` is how many sessions of an open-ended phase to book (a display choice).
    """
    check_common(site, open_ended_sessions)
    chosen = _chosen(protocol, phases, include_optional)
    runs = _runs_for(
        protocol, chosen, cadence_choices=cadence_choices or {}, open_ended_sessions=open_ended_sessions
    )
    sched = SlotFinder(site, chair_minutes or protocol.chair_minutes(), preferred_time, busy_days)
    sessions, unscheduled, notes = run_phases(
        runs, sched=sched, anchor=start, prev=None, next_number=1, course_start=None
    )
    return CoursePlan(
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        zone=site.zone.key,
        sessions=tuple(sessions),
        adjuncts=tuple(adjunct_appointments(protocol, sessions, sched)),
        conflicts=tuple(sched.conflicts),
        notes=tuple(notes),
        unscheduled=tuple(unscheduled),
        proposals=proposals_for(protocol, chosen),
    )


def continue_course(
    *,
    protocol: Protocol,
    site: SiteCalendar,
    phases: Sequence[int],
    given: Sequence[tuple[int, date]],
    course_start: date,
    not_before: date,
    preferred_time: time | None = None,
    cadence_choices: Mapping[int, Cadence] | None = None,
    open_ended_sessions: int = 4,
    chair_minutes: int | None = None,
    busy_days: Mapping[date, str] | None = None,
    numbers: Mapping[int, Sequence[int]] | None = None,
) -> CoursePlan:
    """Book ``phases`` of a course already under way, after its sessions ``given`` ((number, date in the
    site's zone) of the sessions given or still booked), never before ``not_before``.

    Used at the end-of-induction review: maintenance phases (each on its nominal week, and at least its
    cadence after the last session given), or make-up sessions of the induction (``numbers`` maps the
    phase to the slots to book, e.g. those dropped for a closure or missed)."""
    check_common(site, open_ended_sessions)
    errors: dict[str, str] = {}
    if not phases:
        errors["phases"] = "choose at least one phase"
    if not given:
        errors["given"] = "no session of the course was given or booked yet"
    if errors:
        raise ScheduleInputError(errors)
    chosen = sorted(set(phases))
    runs = _runs_for(
        protocol,
        chosen,
        cadence_choices=cadence_choices or {},
        open_ended_sessions=open_ended_sessions,
        numbers=numbers,
    )
    nominal = course_start + timedelta(
        days=sum(
            phase_days(p.cadence, p.sessions or open_ended_sessions) for p in protocol.phases[: chosen[0]]
        )
    )
    last_number, _last_day = max(given, key=lambda g: (g[1], g[0]))
    sched = SlotFinder(site, chair_minutes or protocol.chair_minutes(), preferred_time, busy_days)
    sessions, unscheduled, notes = run_phases(
        runs,
        sched=sched,
        anchor=nominal,
        prev=None,
        next_number=_first_number(protocol, chosen[0], open_ended_sessions),
        course_start=course_start,
        history=[d for _n, d in given],
        prev_number=last_number,
        not_before=not_before,
    )
    return CoursePlan(
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        zone=site.zone.key,
        sessions=tuple(sessions),
        conflicts=tuple(sched.conflicts),
        notes=tuple(notes),
        unscheduled=tuple(unscheduled),
    )


# --- the invariant --------------------------------------------------------------------------------------


def rhythm_problems(
    protocol: Protocol,
    sessions: Sequence[tuple[int, date]],
    cadence_choices: Mapping[int, Cadence] | None = None,
) -> list[str]:
    """Every place where a course's sessions ((number, date)) break the rhythm: two sessions closer than
    the later one's phase spacing, or more sessions in 7 consecutive days than the phase ending them
    allows. Empty for every course the layout produces (tested with generated protocols and closures)."""
    choices = cadence_choices or {}
    ordered = sorted(sessions, key=lambda s: (s[1], s[0]))
    out: list[str] = []
    for k, (number, day) in enumerate(ordered):
        phase = protocol.dose_for_session(number)[0]
        cadence = choices.get(protocol.phases.index(phase), phase.cadence)
        spacing = phase.min_spacing_days if cadence == phase.cadence else derived_min_spacing_days(cadence)
        if k > 0:
            gap = (day - ordered[k - 1][1]).days
            if gap < spacing:
                out.append(
                    f"session {number} ({day_text(day)}) is {gap} day(s) after session {ordered[k - 1][0]}; "
                    f"'{phase.name}' keeps {spacing}"
                )
        inside = [s for s in ordered[: k + 1] if s[1] > day - timedelta(days=7)]
        limit = per_seven_days(cadence)
        if len(inside) > limit:
            out.append(
                f"{len(inside)} sessions in the 7 days to {day_text(day)}; '{phase.name}' allows {limit}"
            )
    return out
