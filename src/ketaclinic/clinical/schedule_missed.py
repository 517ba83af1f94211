"""Missed sessions: advice and rescheduling after a missed session (pure, no Django, no I/O).

J&J Medical Information for esketamine (clinical.md §2.1): during the first 4 weeks continue the current
schedule; during maintenance with worsening consider reverting to the previous schedule (e.g. weekly →
twice weekly). For racemic ketamine the same handling is applied by analogy (``confirmed=False``); §1.4 adds
"return to every 2 weeks on relapse" (PMC7265624). Without worsening the reference says nothing: the
default is to continue the schedule, marked unconfirmed.

The app calls ``advise_missed_session`` to show the advice, then ``mark_missed`` (continue the schedule:
nothing else moves, no session is added) or ``revert_to_previous_frequency`` (the prescriber chooses how
many weeks; the reference gives no length).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import date, time
from enum import StrEnum
from typing import Final

from ketaclinic.clinical.conditions import Drug
from ketaclinic.clinical.protocols import Cadence, PhaseKind, Protocol
from ketaclinic.clinical.schedule import (
    CoursePlan,
    PhaseRun,
    PlannedSession,
    ScheduleInputError,
    SessionStatus,
    SiteCalendar,
    SlotFinder,
    check_common,
    day_text,
    run_phases,
)

MISSED_SOURCE: Final = (
    "clinical.md §2.1: missed sessions (J&J Medical Information, 10/2025): during the first 4 weeks continue "
    "the current schedule; during maintenance with worsening consider reverting to the previous schedule"
)
FIRST_WEEKS_DAYS: Final = 28  # "first 4 weeks" (clinical.md §2.1)


class MissedAction(StrEnum):
    CONTINUE_SCHEDULE = "continue_schedule"
    CONSIDER_REVERT_FREQUENCY = "consider_revert_frequency"


@dataclass(frozen=True)
class MissedSessionAdvice:
    action: MissedAction
    message: str
    source: str
    confirmed: bool
    revert_to: Cadence | None = None  # the previous phase's cadence, when reverting is advised


def _session(plan: CoursePlan, number: int) -> PlannedSession:
    for s in plan.sessions:
        if s.number == number:
            return s
    raise ScheduleInputError({"number": f"session {number} is not in this course"})


def advise_missed_session(
    *, protocol: Protocol, plan: CoursePlan, missed_number: int, worsening: bool
) -> MissedSessionAdvice:
    """What to do after a missed session (J&J guidance, clinical.md §2.1)."""
    missed = _session(plan, missed_number)
    first = plan.first_date or missed.start.date()
    in_first_weeks = (missed.start.date() - first).days < FIRST_WEEKS_DAYS
    by_analogy = protocol.drug is not Drug.ESKETAMINE
    source = MISSED_SOURCE + ("; applied to racemic ketamine by analogy" if by_analogy else "")
    if in_first_weeks or missed.phase_kind is PhaseKind.INDUCTION:
        return MissedSessionAdvice(
            MissedAction.CONTINUE_SCHEDULE,
            "Missed session in the first 4 weeks: continue the current schedule (do not restart the course).",
            source,
            confirmed=not by_analogy,
        )
    if worsening and missed.phase_index > 0:
        previous = protocol.phases[missed.phase_index - 1].cadence
        extra = " (§1.4: return to every 2 weeks on relapse)" if by_analogy else ""
        return MissedSessionAdvice(
            MissedAction.CONSIDER_REVERT_FREQUENCY,
            f"Missed maintenance session with worsening: consider going back from "
            f"{protocol.phases[missed.phase_index].cadence.describe()} to {previous.describe()}{extra}.",
            source + ("; clinical.md §1.4 (PMC7265624)" if by_analogy else ""),
            confirmed=not by_analogy,
            revert_to=previous,
        )
    return MissedSessionAdvice(
        MissedAction.CONTINUE_SCHEDULE,
        "Missed maintenance session without worsening: continue the current schedule.",
        source + "; no specific guidance without worsening (derived default)",
        confirmed=False,
    )


def mark_missed(*, plan: CoursePlan, number: int) -> CoursePlan:
    """Continue the current schedule: the session is recorded as missed, nothing else moves."""
    missed = _session(plan, number)
    sessions = tuple(
        replace(s, status=SessionStatus.MISSED, notes=(*s.notes, "missed; schedule continues"))
        if s.number == missed.number
        else s
        for s in plan.sessions
    )
    return replace(plan, sessions=sessions)


def revert_to_previous_frequency(
    *,
    protocol: Protocol,
    plan: CoursePlan,
    site: SiteCalendar,
    from_date: date,
    weeks: int,
    preferred_time: time | None = None,
    open_ended_sessions: int = 4,
) -> CoursePlan:
    """Replan from ``from_date``: ``weeks`` weeks at the previous phase's frequency, then resume.

    The prescriber decides ``weeks`` (the reference gives no length). Sessions before ``from_date`` are
    kept; the current phase's remaining sessions and every later phase follow the reverted block.
    """
    check_common(site, open_ended_sessions)
    errors: dict[str, str] = {}
    if weeks < 1:
        errors["weeks"] = "must be 1 week or more"
    upcoming = [s for s in plan.sessions if s.start.date() >= from_date and s.status is SessionStatus.PLANNED]
    if not upcoming:
        errors["from_date"] = "no planned session on or after this date"
    elif upcoming[0].phase_kind is not PhaseKind.MAINTENANCE or upcoming[0].phase_index == 0:
        errors["from_date"] = "reverting applies to a maintenance phase that follows another phase"
    if errors:
        raise ScheduleInputError(errors)
    current_index = upcoming[0].phase_index
    current = protocol.phases[current_index]
    previous = protocol.phases[current_index - 1]
    prev_cad = previous.cadence
    count = (
        weeks * prev_cad.per_week if prev_cad.per_week else math.ceil(weeks * 7 / (prev_cad.every_days or 7))
    )
    reverted = replace(
        current,
        name=f"{current.name} — back to {prev_cad.describe()} for {weeks} week(s)",
        cadence=prev_cad,
        sessions=count,
        min_spacing_days=previous.min_spacing_days,
        first_dose=None,
    )
    remaining_current = sum(1 for s in upcoming if s.phase_index == current_index)
    if current.sessions is None:
        remaining_current = open_ended_sessions
    runs = [
        PhaseRun(current_index, reverted, prev_cad, count, previous.min_spacing_days, first_dose=False),
        PhaseRun(current_index, current, current.cadence, remaining_current, current.min_spacing_days, False),
    ]
    for i in range(current_index + 1, len(protocol.phases)):
        later = protocol.phases[i]
        runs.append(
            PhaseRun(i, later, later.cadence, later.sessions or open_ended_sessions, later.min_spacing_days)
        )
    kept = [s for s in plan.sessions if s not in upcoming]
    given = [s for s in kept if s.status is SessionStatus.PLANNED]
    sched = SlotFinder(site, protocol.chair_minutes(), preferred_time)
    new_sessions, unscheduled, notes = run_phases(
        runs,
        sched=sched,
        anchor=from_date,
        prev=None,
        next_number=max((s.number for s in kept), default=0) + 1,
        course_start=plan.first_date,
        history=[s.start.date() for s in given],
        prev_number=given[-1].number if given else None,
        not_before=from_date,
    )
    note = f"From {day_text(from_date)}: back to {prev_cad.describe()} for {weeks} week(s) ({MISSED_SOURCE})."
    return replace(
        plan,
        sessions=(*kept, *new_sessions),
        conflicts=(*plan.conflicts, *sched.conflicts),
        notes=(*plan.notes, note, *notes),
        unscheduled=(*plan.unscheduled, *unscheduled),
    )
