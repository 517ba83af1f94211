"""The ages a clinic treats, checked when a patient is registered (issue 14: "a 2-year-old registered in an
adult clinic without a word"). Pure: no Django.

The reference gives every dose for adults: esketamine "Dosing (adults)" (clinical.md §2.1), whose trials
enrolled adults, including TRANSFORM-3 at 65 and over (§9.2); the racemic ketamine series of §1, §3 and §9.1
are adult series; no source covers anyone under 18. The default range is therefore "18 and over", a clinic
default, unconfirmed: a clinic that treats other ages sets its own range (``KETACLINIC_PATIENT_MIN_AGE``,
``KETACLINIC_PATIENT_MAX_AGE``), which then is its own documented decision. Outside the range a
registration is refused unless the person registering says why (the reason is kept on the record, audited
and shown on the chart), as with a possible duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

ADULTS_SOURCE: Final = (
    "clinic default, unconfirmed: clinical.md gives doses for adults only (§2.1 esketamine 'Dosing (adults)'; "
    "the series of §1, §3 and §9 enrolled adults) and no source for patients under 18"
)
CLINIC_SETTING_SOURCE: Final = (
    "this clinic's setting (KETACLINIC_PATIENT_MIN_AGE, KETACLINIC_PATIENT_MAX_AGE)"
)
#: A reason is a sentence someone can check later, not "ok" (as for other overrides).
MIN_REASON_CHARS: Final = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class AgeRange:
    """Inclusive, in whole years on the day of the check; ``max_years`` None: no upper limit."""

    min_years: int
    max_years: int | None
    source: str
    confirmed: bool

    def describe(self) -> str:
        """'18 and over', '16–65', 'up to 65'."""
        if self.max_years is None:
            return f"{self.min_years} and over"
        if self.min_years <= 0:
            return f"up to {self.max_years}"
        return f"{self.min_years}–{self.max_years}"

    def contains(self, age: int) -> bool:
        return age >= self.min_years and (self.max_years is None or age <= self.max_years)


DEFAULT_AGE_RANGE: Final = AgeRange(min_years=18, max_years=None, source=ADULTS_SOURCE, confirmed=False)


def clinic_age_range(*, min_years: int, max_years: int | None) -> AgeRange:
    """The range a clinic set (the default when it set the default)."""
    if (min_years, max_years) == (DEFAULT_AGE_RANGE.min_years, DEFAULT_AGE_RANGE.max_years):
        return DEFAULT_AGE_RANGE
    if max_years is not None and max_years < min_years:
        raise ValueError(f"the age range's upper limit {max_years} is below its lower limit {min_years}")
    return AgeRange(min_years=min_years, max_years=max_years, source=CLINIC_SETTING_SOURCE, confirmed=True)


def age_in_years(born: date, on: date) -> int:
    """Completed years on ``on`` (a birthday on 29 February counts on 1 March in other years)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def outside_range(born: date, on: date, age_range: AgeRange = DEFAULT_AGE_RANGE) -> str | None:
    """Why a patient born on ``born`` is outside ``age_range`` on ``on``, or ``None`` when inside.

    >>> outside_range(date(2024, 5, 1), date(2026, 12, 7))
    "aged 2: outside this clinic's age range, 18 and over"
    """
    age = age_in_years(born, on)
    if age_range.contains(age):
        return None
    return f"aged {age}: outside this clinic's age range, {age_range.describe()}"
