"""Course rules at the front desk and the chair (pure: no Django, no I/O).

Issue 14 found one patient with three active courses booked at the same hour in three chairs, a course
session five months ahead opened and checked in today, and two patients in "Chair 1" on the live board.
Each rule here is one decision every path shares (plan booking, moving a session, scheduling at the chair,
opening a course session, checking in, the front desk's calendar):

* **One active course per patient** (``second_course_problem``), unless a prescriber gives the reason: doses,
  spacing, the missed-session rule and the end-of-induction review all refer to one course.
* **One session a day per patient** (``same_day_problem``): every schedule in the reference gives at most one
  a day. No one decides past it: a second session that day is a different plan, made by moving one.
* **One patient per chair** (``chair_problem``): a chair holding a session under way (checked in until
  discharged or stopped) takes no one else. The message names the chair and the times, never the patient.
* **A course session opens only within its window** (``open_window_problem``): from ``before_minutes``
  before its booked time to the end of its booked day, in the site's zone (clinic setting, unconfirmed:
  the reference gives no window). A session booked for another day is moved first, so the course's spacing
  is checked.

Reasons a prescriber gives are at least ``MIN_REASON_CHARS`` long, as for doses (dose_check.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from ketaclinic.clinical.dose_check import MIN_REASON_CHARS

ONE_COURSE_SOURCE: Final = (
    "clinic rule, unconfirmed: one active course per patient, so that the doses, the spacing, the "
    "missed-session rule (clinical.md §2.1) and the end-of-induction review (§11) refer to one course"
)
ONE_A_DAY_SOURCE: Final = (
    "derived rule: every schedule in clinical.md (§1.3, §1.4, §2.1, §3.2, §4, §5.1) gives at most one "
    "session a day"
)
ONE_PER_CHAIR_SOURCE: Final = "clinic rule: a chair holds one patient at a time (one monitored place)"
OPEN_WINDOW_SOURCE: Final = (
    "clinic default, unconfirmed: the reference gives no window for opening a booked session; setting "
    "KETACLINIC_COURSE_OPEN_BEFORE_MIN"
)
OPEN_BEFORE_MIN_DEFAULT: Final = 120


def reason_ok(text: str) -> bool:
    return len(text.strip()) >= MIN_REASON_CHARS


def day_text(d: date) -> str:
    return f"{d:%a} {d.day} {d:%b %Y}"


def _hours_text(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


# --- one active course -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActiveCourse:
    """A course the patient is on: booked sessions still to come, or an end-of-induction review pending."""

    name: str
    first: date
    to_come: int


def second_course_problem(*, active: Sequence[ActiveCourse], reason: str) -> str | None:
    """Why a new course may not start (None when it may): the patient is on another course and no reason
    was given."""
    if not active or reason_ok(reason):
        return None
    courses = "; ".join(
        f"{c.name} from {day_text(c.first)} ({c.to_come} session{'s' if c.to_come != 1 else ''} to come)"
        for c in active
    )
    return (
        f"The patient is already on a course: {courses}. Stop it first, or give the reason for a second "
        f"course at the same time (at least {MIN_REASON_CHARS} characters; {ONE_COURSE_SOURCE})."
    )


# --- one session a day ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookedSession:
    """A session the patient already has: when, and what it is ("course session 3"), never who."""

    start: datetime
    what: str


def same_day_problem(*, start: datetime, zone: ZoneInfo, others: Sequence[BookedSession]) -> str | None:
    """Why a session at ``start`` may not be booked (None when it may): the patient has another that day."""
    day = start.astimezone(zone).date()
    clash = sorted((o for o in others if o.start.astimezone(zone).date() == day), key=lambda o: o.start)
    if not clash:
        return None
    held = ", ".join(f"{o.start.astimezone(zone):%H:%M} {o.what}" for o in clash)
    return f"The patient already has a session on {day_text(day)} ({held}): one session a day ({ONE_A_DAY_SOURCE})."


# --- one patient per chair --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occupant:
    """A session under way in a chair: since when, and until when it is expected to hold it (at least now)."""

    since: datetime
    until: datetime


def chair_problem(
    *, chair: str, start: datetime, occupants: Sequence[Occupant], zone: ZoneInfo
) -> str | None:
    """Why a session from ``start`` may not take ``chair`` (None when it may): another session is under way
    in it and is expected to hold it past ``start``. Names the chair and the times, not the patient."""
    busy = [o for o in occupants if start < o.until]
    if not busy:
        return None
    o = min(busy, key=lambda b: b.since)
    return (
        f"{chair} is occupied by a session under way (since {o.since.astimezone(zone):%H:%M}, expected until "
        f"{o.until.astimezone(zone):%H:%M}): a chair holds one patient at a time ({ONE_PER_CHAIR_SOURCE}). "
        f"Choose another chair, or wait until {chair} is free."
    )


# --- when a course session may be opened ------------------------------------------------------------------


@dataclass(frozen=True)
class OpenWindow:
    before_minutes: int = OPEN_BEFORE_MIN_DEFAULT
    source: str = OPEN_WINDOW_SOURCE
    confirmed: bool = False

    def describe(self) -> str:
        text = f"from {_hours_text(self.before_minutes)} before its booked time to the end of its booked day"
        return text if self.confirmed else f"{text} (clinic setting, unconfirmed)"


def open_window(booked_start: datetime, zone: ZoneInfo, window: OpenWindow) -> tuple[datetime, datetime]:
    """[opens, closes): from ``before_minutes`` before the booked time to midnight ending the booked day."""
    day = booked_start.astimezone(zone).date()
    closes = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return booked_start - timedelta(minutes=window.before_minutes), closes


def open_window_problem(
    *, number: int, booked_start: datetime, now: datetime, zone: ZoneInfo, window: OpenWindow
) -> str | None:
    """Why course session ``number`` may not be opened at ``now`` (None when it may)."""
    opens, closes = open_window(booked_start, zone, window)
    if opens <= now < closes:
        return None
    booked = booked_start.astimezone(zone)
    when = f"{day_text(booked.date())} {booked:%H:%M}"
    if now < opens:
        local_open = opens.astimezone(zone)
        return (
            f"Session {number} is booked for {when}: it can be opened from {day_text(local_open.date())} "
            f"{local_open:%H:%M} ({window.describe()}). To give it sooner, move it first, so the course's "
            "spacing is checked."
        )
    return (
        f"Session {number} was booked for {when} and its day is over: it can no longer be opened. Mark it "
        "missed, or move it to a new time."
    )
