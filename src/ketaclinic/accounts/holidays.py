"""US federal public holidays of a calendar year, for a site's closures. Pure: no Django, no I/O.

The rules are statute, so they are computed here rather than taken from a holiday library: eleven dates
(5 U.S.C. § 6103(a)), each a fixed date or the n-th weekday of a month, plus the observed-day rule for the fixed
ones (5 U.S.C. § 6103(b) and Executive Order 11582: a holiday on a Saturday is observed on the Friday before,
one on a Sunday on the Monday after). The Monday holidays date from the Uniform Monday Holiday Act (in force
1971); Juneteenth from 2021 (Pub. L. 117-17). Inauguration Day (every fourth 20 January, for the Washington,
D.C. area only) is not included: a clinic there adds it as a local closure.

``us_federal_holidays(year)`` lists every closure date that falls in ``year``: a New Year's Day on a Saturday
is observed on 31 December of the year before, so it belongs to that year's list.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

SOURCE = "5 U.S.C. § 6103 (federal holidays) and Executive Order 11582 (observed days)"
FIRST_YEAR, LAST_YEAR = 1971, 2199


@dataclass(frozen=True)
class Holiday:
    day: date
    name: str
    observed_for: date | None = None  # set on the weekday that stands in for a weekend holiday

    @property
    def label(self) -> str:
        if self.observed_for is None:
            return self.name
        d = self.observed_for
        return f"{self.name} (observed; the holiday is {d:%A} {d.day} {d:%B})"


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th ``weekday`` (0 = Monday) of the month; n = -1 is the last."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _holidays_of(year: int) -> list[tuple[date, str, bool]]:
    """(date, name, fixed date?) of the holidays that law dates in ``year``."""
    monday, thursday = 0, 3
    rules = [
        (date(year, 1, 1), "New Year's Day", True),
        (_nth_weekday(year, 1, monday, 3), "Birthday of Martin Luther King, Jr.", False),
        (_nth_weekday(year, 2, monday, 3), "Washington's Birthday", False),
        (_nth_weekday(year, 5, monday, -1), "Memorial Day", False),
        (date(year, 7, 4), "Independence Day", True),
        (_nth_weekday(year, 9, monday, 1), "Labor Day", False),
        (_nth_weekday(year, 10, monday, 2), "Columbus Day", False),
        (date(year, 11, 11), "Veterans Day", True),
        (_nth_weekday(year, 11, thursday, 4), "Thanksgiving Day", False),
        (date(year, 12, 25), "Christmas Day", True),
    ]
    if year < 1986:  # the King holiday was first observed in 1986 (Pub. L. 98-144)
        rules = [r for r in rules if not r[1].startswith("Birthday of Martin")]
    if year >= 2021:
        rules.append((date(year, 6, 19), "Juneteenth National Independence Day", True))
    return rules


def _observed(day: date) -> date | None:
    if day.weekday() == 5:
        return day - timedelta(days=1)
    if day.weekday() == 6:
        return day + timedelta(days=1)
    return None


def us_federal_holidays(year: int, *, observed: bool = True) -> list[Holiday]:
    """The federal holidays falling in ``year`` by date, with the weekdays that stand in for those on a
    weekend when ``observed`` (closing on both: the holiday itself and its observed day)."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValueError(f"choose a year from {FIRST_YEAR} to {LAST_YEAR}")
    found: list[Holiday] = []
    for holiday_year in (year, year + 1):
        for day, name, fixed in _holidays_of(holiday_year):
            if day.year == year:
                found.append(Holiday(day, name))
            stand_in = _observed(day) if fixed and observed else None
            if stand_in is not None and stand_in.year == year:
                found.append(Holiday(stand_in, name, observed_for=day))
    return sorted(found, key=lambda h: h.day)
