"""The plausible-time rule (core/moments.py) with this clinic's settings: what services call before they
store a time a person or a device gave (issue 15 H2)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from ketaclinic.core import moments
from ketaclinic.core.moments import Bound, TimeWindow


def window() -> TimeWindow:
    return TimeWindow(
        earliest=datetime(settings.KETACLINIC_EARLIEST_YEAR, 1, 1, tzinfo=UTC),
        clock_skew=timedelta(minutes=settings.KETACLINIC_CLOCK_SKEW_MIN),
        horizon=timedelta(days=settings.KETACLINIC_BOOKING_HORIZON_DAYS),
    )


def time_problem(
    moment: datetime,
    *,
    born: date | None = None,
    not_before: Sequence[Bound] = (),
    planned: bool = False,
    now: datetime | None = None,
) -> str | None:
    """Why ``moment`` cannot be right (before the earliest time, the patient's birth or ``not_before``; in
    the future beyond the clock skew, or for ``planned`` beyond the booking horizon), or ``None``."""
    if moment.tzinfo is None:  # judged as Django stores it: in the server's zone (UTC)
        moment = moment.replace(tzinfo=UTC)
    return moments.implausible_time(
        moment, now=now or timezone.now(), window=window(), born=born, not_before=not_before, planned=planned
    )


def date_problem(
    day: date,
    *,
    today: date,
    born: date | None = None,
    latest: date | None = None,
    what_latest: str = "today",
) -> str | None:
    """:func:`moments.implausible_date` from the clinic's earliest year."""
    return moments.implausible_date(
        day,
        today=today,
        earliest=date(settings.KETACLINIC_EARLIEST_YEAR, 1, 1),
        born=born,
        latest=latest,
        what_latest=what_latest,
    )
