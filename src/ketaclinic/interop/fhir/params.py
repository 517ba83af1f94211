"""Parsing FHIR search parameters (R4 search.html; interop.md §2.4). Pure: no Django, no I/O.

Every bad parameter is reported at once in ``SearchError.errors`` ({parameter: reason}); the edge answers
400 with one OperationOutcome issue per entry.

Dates are refused outside the years 1800-2999 (a year-1 or year-9999 search gave a server error).
Dates follow the FHIR rule that a value is an interval at its precision: ``2024`` is all of 2024,
``2024-03-05T10:15`` is that minute. A value without a time zone is read as UTC (the server's storage zone).
For a point in time ``t`` (R4 search.html §3.1.1.4.3):
``eq``: start ≤ t < end; ``ge``: t ≥ start; ``gt``: t ≥ end; ``le``: t < end; ``lt``: t < start.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

DEFAULT_COUNT: Final = 20
MAX_COUNT: Final = 100
DATE_PREFIXES: Final = ("eq", "ge", "le", "gt", "lt")
# The years a date parameter may name (issue 15 H2): year 1 or 9999 cannot be moved to UTC or widened to
# its interval without leaving the calendar, and no record here lies outside these years.
EARLIEST_YEAR: Final = 1800
LATEST_YEAR: Final = 2999
# Parameters every search accepts (besides the type's own). ``_offset`` is our paging cursor in links.
# ``_total`` (R4) and ``_totalMethod`` (an Aidbox extension that fhirpy's ``count()`` sends) are accepted
# and checked; the total is always counted exactly.
CONTROL: Final = frozenset({"_count", "_sort", "_offset", "_format", "_total", "_totalMethod"})
TOTAL_VALUES: Final = {
    "_total": frozenset({"none", "estimate", "accurate"}),
    "_totalMethod": frozenset({"count", "estimate", "none"}),
}
FORMATS_JSON: Final = frozenset({"json", "application/json", "application/fhir+json"})


class ParamType(StrEnum):
    TOKEN = "token"  # noqa: S105 (the FHIR search parameter type)
    DATE = "date"
    REFERENCE = "reference"
    URI = "uri"


class SearchError(ValueError):
    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": no system
    code: str | None  # None: any code in the system


@dataclass(frozen=True)
class DateRange:
    prefix: str
    start: datetime  # inclusive, UTC
    end: datetime  # exclusive, UTC


@dataclass(frozen=True)
class Filter:
    """One occurrence of a parameter; ``values`` are OR-ed, occurrences of the same name are AND-ed."""

    name: str
    type: ParamType
    values: tuple[Token | DateRange | str, ...]


@dataclass(frozen=True)
class Sort:
    key: str
    descending: bool


@dataclass(frozen=True)
class Search:
    filters: tuple[Filter, ...]
    count: int
    offset: int
    sort: Sort | None

    def values(self, name: str) -> list[tuple[Token | DateRange | str, ...]]:
        return [f.values for f in self.filters if f.name == name]


_DATE: Final = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?P<frac>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _add_months(moment: datetime, months: int) -> datetime:
    total = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=total // 12, month=total % 12 + 1)


def parse_date(text: str) -> DateRange:
    """``[prefix]YYYY[-MM[-DD[Thh:mm[:ss[.fff]][Z|±hh:mm]]]]`` → the interval it denotes, in UTC."""
    prefix = "eq"
    if text[:2].isalpha():
        prefix, text = text[:2], text[2:]
        if prefix not in DATE_PREFIXES:
            raise ValueError(f"prefix {prefix!r} is not supported (use one of {', '.join(DATE_PREFIXES)})")
    match = _DATE.match(text)
    if match is None:
        raise ValueError("not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss][Z|±hh:mm])")
    g = match.groupdict()
    if not EARLIEST_YEAR <= int(g["y"]) <= LATEST_YEAR:
        raise ValueError(
            f"year {g['y']} is outside {EARLIEST_YEAR}-{LATEST_YEAR}, the years this server searches"
        )
    if g["tz"] and g["tz"] != "Z" and (int(g["tz"][1:3]) > 14 or int(g["tz"][4:6]) > 59):
        raise ValueError(f"time zone offset {g['tz']} is not a real offset (-12:00 to +14:00)")
    try:
        start = datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise ValueError(f"not a real date: {exc}") from None
    if g["frac"]:
        start = start.replace(microsecond=int((g["frac"][1:] + "000000")[:6]))
    try:
        return DateRange(prefix, *_interval(start, match.groupdict()))
    except (OverflowError, ValueError):
        # Year 1 at +14:00 is before year 1 in UTC; a year-9999 interval ends in year 10000.
        raise ValueError(
            "is outside the dates this server can search (within years 0001-9999 in UTC)"
        ) from None


def _interval(start: datetime, g: Mapping[str, str | None]) -> tuple[datetime, datetime]:
    """The value's interval in UTC: ``start`` moved by its offset, ``end`` one unit of precision later."""
    tz = g["tz"]
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        start -= sign * timedelta(hours=hours, minutes=minutes)
    if g["frac"]:
        end = start + timedelta(microseconds=1)
    elif g["s"]:
        end = start + timedelta(seconds=1)
    elif g["mi"]:
        end = start + timedelta(minutes=1)
    elif g["d"]:
        end = start + timedelta(days=1)
    elif g["mo"]:
        end = _add_months(start, 1)
    else:
        end = _add_months(start, 12)
    return start, end


def parse_token(text: str) -> Token:
    """``system|code``, ``|code`` (no system), ``system|`` (any code in system) or ``code`` (any system)."""
    if not text:
        raise ValueError("is empty")
    if "|" not in text:
        return Token(None, text)
    system, _, code = text.partition("|")
    if "|" in code:
        raise ValueError("has more than one '|' (expected system|code)")
    if not system and not code:
        raise ValueError("names neither a system nor a code")
    return Token(system, code or None)


def parse_reference(text: str, target: str = "Patient") -> str:
    """``Patient/<id>``, ``<id>`` or an absolute URL ending ``Patient/<id>`` → ``<id>``."""
    parts = text.rstrip("/").split("/")
    if len(parts) >= 2:
        if parts[-2] != target:
            raise ValueError(f"must refer to a {target} (e.g. {target}/<id>)")
        ident = parts[-1]
    else:
        ident = parts[0]
    if not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", ident):
        raise ValueError("is not a resource id")
    return ident


# Reference parameters that point at something other than a Patient (Observation?device=Device/<id>).
REFERENCE_TARGETS: Final[Mapping[str, str]] = {"device": "Device"}


def _parse_value(kind: ParamType, text: str, name: str = "") -> Token | DateRange | str:
    if kind is ParamType.TOKEN:
        return parse_token(text)
    if kind is ParamType.DATE:
        return parse_date(text)
    if kind is ParamType.REFERENCE:
        return parse_reference(text, REFERENCE_TARGETS.get(name, "Patient"))
    if not text:
        raise ValueError("is empty")
    return text


def _int(text: str, *, minimum: int) -> int:
    if not re.fullmatch(r"\d+", text):
        raise ValueError("must be a whole number")
    value = int(text)
    if value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def parse_search(
    pairs: Iterable[tuple[str, str]],
    params: Mapping[str, ParamType],
    sort_keys: Sequence[str],
) -> Search:
    """Parse the query pairs of a search against the type's parameters and sort keys.

    ``_count`` above MAX_COUNT is lowered to MAX_COUNT (the server may return fewer, R4 search.html);
    ``_count=0`` asks for the total only.
    """
    errors: dict[str, str] = {}
    filters: list[Filter] = []
    count, offset, sort = DEFAULT_COUNT, 0, None
    seen_control: set[str] = set()
    for raw_name, raw_value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in CONTROL:
            if name in seen_control:
                errors[name] = "is given more than once"
                continue
            seen_control.add(name)
            try:
                if modifier:
                    raise ValueError("takes no modifier")
                if name == "_count":
                    count = min(_int(raw_value, minimum=0), MAX_COUNT)
                elif name == "_offset":
                    offset = _int(raw_value, minimum=0)
                elif name in TOTAL_VALUES:
                    if raw_value not in TOTAL_VALUES[name]:
                        raise ValueError(f"must be one of {', '.join(sorted(TOTAL_VALUES[name]))}")
                elif name == "_format":
                    if raw_value not in FORMATS_JSON:
                        raise ValueError("only JSON is served (json, application/fhir+json)")
                else:
                    sort = _parse_sort(raw_value, sort_keys)
            except ValueError as exc:
                errors[name] = str(exc)
            continue
        kind = params.get(name)
        if kind is None:
            errors[raw_name] = "is not a search parameter of this resource type"
            continue
        if modifier:
            errors[raw_name] = f"the modifier :{modifier} is not supported"
            continue
        values: list[Token | DateRange | str] = []
        for part in raw_value.split(","):
            try:
                values.append(_parse_value(kind, part, name))
            except ValueError as exc:
                errors[name] = f"{part!r} {exc}" if not str(exc).startswith(("not", "prefix")) else str(exc)
        if name not in errors:
            filters.append(Filter(name, kind, tuple(values)))
    if errors:
        raise SearchError(errors)
    return Search(tuple(filters), count, offset, sort)


def _parse_sort(text: str, sort_keys: Sequence[str]) -> Sort:
    keys = [k for k in text.split(",") if k]
    if len(keys) != 1:
        raise ValueError("exactly one sort key is supported")
    key = keys[0]
    descending = key.startswith("-")
    key = key.removeprefix("-")
    if key not in sort_keys:
        raise ValueError(f"{key!r} cannot be sorted on (use one of {', '.join(sort_keys)})")
    return Sort(key, descending)
