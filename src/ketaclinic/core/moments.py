"""When a recorded time is plausible (issue 15 H2). Pure: no Django, no I/O.

A reading, a dose or a session at 0001-01-01 or 9999-12-31 was accepted from the API and from an HL7
message; every page that showed it then failed (a time that far out cannot even be shown in a site's
zone), and there was no way to remove the row. So every time a person or a device records is judged by
one rule before it is stored:

- never before :data:`EARLIEST` (2000-01-01: this clinic software did not exist before; a setting can move
  it), nor before the patient was born, nor before the record it belongs to began (``not_before``);
- an event that has happened (a reading, a dose, a score) not later than now plus the clock-skew allowance
  (a monitor's or a tablet's clock a few minutes ahead of the server's);
- a planned event (a session's booked time) not more than ``horizon`` ahead.

The judgement never does arithmetic on a time before it has found it in a sane year, so that the check
itself cannot overflow (``datetime(1, 1, 1, tzinfo=+05:00)`` cannot even be converted to UTC).
Dates (a birth date, a signature date, a lot's expiry) have their own window in :func:`implausible_date`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Final

#: The earliest time any record may carry (clinic default, an operational bound, not a clinical value).
EARLIEST: Final = datetime(2000, 1, 1, tzinfo=UTC)
EARLIEST_DATE: Final = EARLIEST.date()
#: How far ahead of the server's clock a device's or a browser's clock may be.
DEFAULT_CLOCK_SKEW: Final = timedelta(minutes=5)
#: How far ahead a session may be booked.
DEFAULT_HORIZON: Final = timedelta(days=2 * 366)
#: The earliest birth date the registry accepts (no one alive was born before it).
EARLIEST_BIRTH: Final = date(1900, 1, 1)


@dataclass(frozen=True)
class Bound:
    """A lower bound with what it is, for the refusal ("before the patient's date of birth")."""

    moment: datetime
    what: str


@dataclass(frozen=True)
class TimeWindow:
    """The settings' part of the window: the earliest time, the clock skew, the booking horizon."""

    earliest: datetime = EARLIEST
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW
    horizon: timedelta = DEFAULT_HORIZON
    extra: tuple[Bound, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.earliest.tzinfo is None:
            raise ValueError("earliest must be an aware time")
        if self.clock_skew < timedelta(0) or self.horizon < timedelta(0):
            raise ValueError("clock_skew and horizon must not be negative")


DEFAULT_WINDOW: Final = TimeWindow()


def _shown(moment: datetime) -> str:
    return moment.isoformat(sep=" ", timespec="minutes")


def _birth_bound(born: date | None) -> list[Bound]:
    if born is None:
        return []
    return [Bound(datetime(born.year, born.month, born.day, tzinfo=UTC), "the patient's date of birth")]


def implausible_time(
    moment: datetime,
    *,
    now: datetime,
    window: TimeWindow = DEFAULT_WINDOW,
    born: date | None = None,
    not_before: Sequence[Bound] = (),
    planned: bool = False,
    now_label: str = "now",
) -> str | None:
    """Why ``moment`` cannot be right, or ``None`` when it is plausible.

    ``planned``: a booked time may lie up to ``window.horizon`` ahead; otherwise the event has happened
    and may lie at most ``window.clock_skew`` ahead of ``now`` (``now_label`` names that clock: "the time
    it was received" for a monitor's message).

    >>> now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    >>> implausible_time(datetime(1, 1, 1, tzinfo=UTC), now=now)
    'is before 2000-01-01, the earliest time this system accepts'
    >>> implausible_time(datetime(2026, 12, 7, 12, 30, tzinfo=UTC), now=now)
    'is later than now (2026-12-07 12:00 UTC) plus 5 minute(s) of clock difference'
    >>> implausible_time(datetime(2026, 12, 9, 9, 0, tzinfo=UTC), now=now, planned=True) is None
    True
    """
    if moment.tzinfo is None or now.tzinfo is None:
        raise ValueError("the time window compares aware times")
    lower = [Bound(window.earliest, "2000-01-01"), *window.extra, *_birth_bound(born), *not_before]
    # Years first, without arithmetic: within a year of a bound the comparison itself is safe.
    if moment.year < window.earliest.year - 1 or (moment.year <= now.year + 1 and moment < window.earliest):
        return f"is before {window.earliest:%Y-%m-%d}, the earliest time this system accepts"
    ahead = window.horizon if planned else window.clock_skew
    if moment.year > now.year + 1 + ahead.days // 365 or moment > now + ahead:
        if planned:
            days = window.horizon.days
            return f"is more than {days} days ahead (after {_shown(now + ahead)} UTC): book it nearer the day"
        minutes = int(window.clock_skew.total_seconds() // 60)
        return (
            f"is later than {now_label} ({now.astimezone(UTC):%Y-%m-%d %H:%M} UTC) plus {minutes} minute(s) "
            "of clock difference"
        )
    for bound in lower[1:]:
        if moment < bound.moment:
            return f"is before {bound.what} ({bound.moment:%Y-%m-%d})"
    return None


def implausible_date(
    day: date,
    *,
    today: date,
    earliest: date = EARLIEST_DATE,
    born: date | None = None,
    latest: date | None = None,
    what_latest: str = "today",
) -> str | None:
    """Why a calendar date cannot be right, or ``None``. ``latest`` defaults to ``today`` (an event that
    has happened); a date that may lie ahead (an expiry) passes its own ``latest``.

    >>> implausible_date(date(1, 1, 1), today=date(2026, 12, 7))
    'is before 2000-01-01, the earliest date this system accepts'
    >>> implausible_date(date(2027, 1, 1), today=date(2026, 12, 7))
    'is after today (2026-12-07)'
    """
    if day < earliest:
        return f"is before {earliest:%Y-%m-%d}, the earliest date this system accepts"
    if born is not None and day < born:
        return f"is before the patient's date of birth ({born:%Y-%m-%d})"
    limit = today if latest is None else latest
    if day > limit:
        return f"is after {what_latest} ({limit:%Y-%m-%d})"
    return None


def birth_date_problem(born: date, *, today: date) -> str | None:
    """A date of birth no living patient can have (before 1900, or after today)."""
    return implausible_date(born, today=today, earliest=EARLIEST_BIRTH)


def displayable(moment: datetime) -> bool:
    """Whether ``moment`` can be converted to any time zone (a year-1 or year-9999 row stored before this
    rule cannot: the page shows it in UTC instead of failing)."""
    return 2 <= moment.year <= 9998
