"""Stated limits for typed values, and the refusal that names them (issue 14: "no silent loss").

A value that does not fit is refused with the field's name and the limit; it is never cut to a column's
length, rounded to the column's places or turned into a blank. Pure: no Django, so the pure intake module
and every service can share the same wording.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal


def too_long(value: str, *, label: str, limit: int, hint: str = "") -> str | None:
    """The refusal for ``value`` longer than ``limit`` characters, or ``None`` when it fits.

    >>> too_long("abcd", label="Lot", limit=3)
    'Lot is 4 characters, more than the 3 it may have: nothing was saved'
    """
    if len(value) <= limit:
        return None
    tail = f": {hint}" if hint else ": nothing was saved"
    return f"{label} is {len(value):,} characters, more than the {limit:,} it may have{tail}"


def too_many_places(value: Decimal, *, label: str, places: int, unit: str = "") -> str | None:
    """The refusal for a number with more decimals than the record keeps, or ``None``.

    The record would round 35.125 mg to 35.13 mg without a word; the person typing decides instead.

    >>> too_many_places(Decimal("35.125"), label="Dose", places=2, unit="mg")
    'Dose 35.125 mg has more decimals than the record keeps (2): round it yourself, e.g. 35.13 mg'
    >>> too_many_places(Decimal("35.10"), label="Dose", places=2) is None
    True
    """
    exponent = value.normalize().as_tuple().exponent
    if not isinstance(exponent, int) or -exponent <= places:
        return None
    suffix = f" {unit}" if unit else ""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    head = f"{label} " if label else ""
    return (
        f"{head}{value.normalize():f}{suffix} has more decimals than the record keeps ({places}): "
        f"round it yourself, e.g. {rounded}{suffix}"
    )
