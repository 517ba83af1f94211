"""Parsing FHIR search parameters (R4 search.html; interop.md §2.4). Pure: no Django, no I/O.

Every bad parameter is reported at once in ``SearchError.errors`` ({parameter: reason}); the edge answers
400 with one OperationOutcome issue per entry.

Dates are refused outside the years 1800-2999 (a year-1 or year-9999 search gave a server error).
Dates follow the FHIR rule that a value is an interval at its precision: ``2024`` is all of 2024,
``2024-03-05T10:15`` is that minute. A value without a time zone is read as UTC (the server's storage zone).

The resource's value is an interval too (R4 search.html §3.1.1.4.3 "date"): a Period is [start, end]
(an absent end is ongoing: +infinity), and a point is the interval its rendered precision denotes (this
server writes instants to the second, so a stored moment t is the second [t, t + 1 s); a date is its day).
``date_matches`` is the R4 table over the search interval S = [s_lo, s_hi) and the target T = [t_lo, t_hi):

===== ============================================================================ ==========================
eq    S fully contains T                                                           s_lo ≤ t_lo, t_hi ≤ s_hi
ne    S does not fully contain T                                                   not eq
gt    the range above S overlaps T                                                 t_hi > s_hi
lt    the range below S overlaps T                                                 t_lo < s_lo
ge    gt, or eq                                                                    t_hi > s_hi or eq
le    lt, or eq                                                                    t_lo < s_lo or eq
sa    T starts after S (no overlap, and the range above S contains T)              t_lo ≥ s_hi
eb    T ends before S (no overlap, and the range below S contains T)               t_hi ≤ s_lo
ap    the ranges overlap (R4 leaves the margin of "approximately" to the server)   t_lo < s_hi, s_lo < t_hi
===== ============================================================================ ==========================

So ``Encounter?date=ge2026-12-07T12:47`` finds a session that began at 12:02 and is still running.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

DEFAULT_COUNT: Final = 20
MAX_COUNT: Final = 100
DATE_PREFIXES: Final = ("eq", "ne", "ge", "le", "gt", "lt", "sa", "eb", "ap")
# The years a date parameter may name (issue 15 H2): year 1 or 9999 cannot be moved to UTC or widened to
# its interval without leaving the calendar, and no record here lies outside these years.
EARLIEST_YEAR: Final = 1800
LATEST_YEAR: Final = 2999
# Parameters every search accepts (besides the type's own). ``_cursor`` is the opaque keyset cursor of
# ``next``/``previous`` links (services.py); ``_offset`` is still read (old links) but no longer written.
# ``_total`` (R4) and ``_totalMethod`` (an Aidbox extension that fhirpy's ``count()`` sends) are accepted
# and checked; the total is always counted exactly.
CONTROL: Final = frozenset(
    {"_count", "_sort", "_offset", "_cursor", "_format", "_total", "_totalMethod", "_summary", "_elements"}
)
# _include / _revinclude may repeat; each value is checked against what the type exposes.
INCLUDES: Final = frozenset({"_include", "_revinclude"})
SUMMARY_VALUES: Final = frozenset({"true", "false", "count", "data", "text"})
# Modifiers served per parameter type (R4 search.html §3.1.1.5); anything else is refused (strict) or
# ignored and reported (lenient).
MODIFIERS: Final[dict[str, frozenset[str]]] = {
    "token": frozenset({"not"}),
    "string": frozenset({"exact", "contains"}),
}
TOTAL_VALUES: Final = {
    "_total": frozenset({"none", "estimate", "accurate"}),
    "_totalMethod": frozenset({"count", "estimate", "none"}),
}
FORMATS_JSON: Final = frozenset({"json", "application/json", "application/fhir+json"})


class ParamType(StrEnum):
    TOKEN = "token"  # noqa: S105 (the FHIR search parameter type)
    DATE = "date"
    STRING = "string"
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


def date_matches(
    prefix: str, s_lo: datetime, s_hi: datetime, t_lo: datetime | None, t_hi: datetime | None
) -> bool:
    """The R4 date rule (module docstring) for a search interval [s_lo, s_hi) and a target [t_lo, t_hi);
    ``t_lo`` None is an open start (-infinity), ``t_hi`` None an ongoing end (+infinity)."""
    eq = t_lo is not None and t_hi is not None and s_lo <= t_lo and t_hi <= s_hi
    above = t_hi is None or t_hi > s_hi  # the range above S overlaps T
    below = t_lo is None or t_lo < s_lo  # the range below S overlaps T
    rules = {
        "eq": eq,
        "ne": not eq,
        "gt": above,
        "lt": below,
        "ge": above or eq,
        "le": below or eq,
        "sa": t_lo is not None and t_lo >= s_hi,
        "eb": t_hi is not None and t_hi <= s_lo,
        "ap": (t_lo is None or t_lo < s_hi) and (t_hi is None or s_lo < t_hi),
    }
    return rules[prefix]


@dataclass(frozen=True)
class Filter:
    """One occurrence of a parameter; ``values`` are OR-ed, occurrences of the same name are AND-ed.
    ``modifier`` is the served modifier (``not`` on tokens, ``exact``/``contains`` on strings) or ""."""

    name: str
    type: ParamType
    values: tuple[Token | DateRange | str, ...]
    modifier: str = ""


@dataclass(frozen=True)
class Include:
    """``_include=Source:param`` or ``_revinclude=Source:param``: follow ``param`` of ``source`` (a
    reference search parameter) from the matches (include) or back to them (revinclude)."""

    source: str
    param: str
    reverse: bool

    def __str__(self) -> str:
        return f"{self.source}:{self.param}"


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
    includes: tuple[Include, ...] = ()
    summary: str = ""  # "", true, false, count, data, text
    elements: tuple[str, ...] = ()
    cursor: str = ""
    # Lenient handling: parameters ignored, with the reason ({parameter: reason}); reported back.
    ignored: tuple[tuple[str, str], ...] = ()

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


def _parse_value(kind: ParamType, text: str, target: str) -> Token | DateRange | str:
    if kind is ParamType.TOKEN:
        return parse_token(text)
    if kind is ParamType.DATE:
        return parse_date(text)
    if kind is ParamType.REFERENCE:
        return parse_reference(text, target)
    if not text.strip():
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
    *,
    targets: Mapping[str, str] | None = None,
    include_options: Collection[Include] = (),
    lenient: bool = False,
) -> Search:
    """Parse the query pairs of a search against the type's parameters and sort keys.

    ``targets`` names the resource type each reference parameter points to (default Patient);
    ``include_options`` are the ``_include``/``_revinclude`` values the type serves. ``lenient``
    (``Prefer: handling=lenient``) ignores unknown parameters, unsupported modifiers and unsupported
    includes and lists them in ``Search.ignored``; invalid values of known parameters are errors either way.
    ``_count`` above MAX_COUNT is lowered to MAX_COUNT (the server may return fewer, R4 search.html);
    ``_count=0`` asks for the total only.
    """
    errors: dict[str, str] = {}
    ignored: dict[str, str] = {}
    filters: list[Filter] = []
    includes: list[Include] = []
    count, offset, sort = DEFAULT_COUNT, 0, None
    summary, cursor = "", ""
    elements: tuple[str, ...] = ()
    seen_control: set[str] = set()

    def unsupported(name: str, reason: str) -> None:
        (ignored if lenient else errors)[name] = reason

    for raw_name, raw_value in pairs:
        name, _, modifier = raw_name.partition(":")
        if name in INCLUDES:
            if modifier:  # :iterate / :recurse
                unsupported(raw_name, f"the modifier :{modifier} is not supported")
                continue
            for part in raw_value.split(","):
                found = _includes(part, reverse=name == "_revinclude", options=include_options)
                if not found:
                    unsupported(f"{name}={part}", f"{part!r} is not an {name} this type serves")
                includes += [i for i in found if i not in includes]
            continue
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
                elif name == "_cursor":
                    if not re.fullmatch(r"[A-Za-z0-9_\-.]{1,1000}", raw_value):
                        raise ValueError("is not a cursor of this server (follow the Bundle's links)")
                    cursor = raw_value
                elif name in TOTAL_VALUES:
                    if raw_value not in TOTAL_VALUES[name]:
                        raise ValueError(f"must be one of {', '.join(sorted(TOTAL_VALUES[name]))}")
                elif name == "_format":
                    # An unencoded "+" in a query string reads as a space: "application/fhir json".
                    if raw_value.split(";")[0].strip().lower().replace(" ", "+") not in FORMATS_JSON:
                        raise ValueError("only JSON is served (json, application/fhir+json)")
                elif name == "_summary":
                    if raw_value not in SUMMARY_VALUES:
                        raise ValueError(f"must be one of {', '.join(sorted(SUMMARY_VALUES))}")
                    summary = raw_value
                elif name == "_elements":
                    elements = tuple(dict.fromkeys(e.strip() for e in raw_value.split(",") if e.strip()))
                    if not elements or not all(
                        re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\[x\])?", e) for e in elements
                    ):
                        raise ValueError("must be a comma-separated list of top-level element names")
                else:
                    sort = _parse_sort(raw_value, sort_keys)
            except ValueError as exc:
                errors[name] = str(exc)
            continue
        kind = params.get(name)
        if kind is None:
            unsupported(raw_name, "is not a search parameter of this resource type")
            continue
        if modifier and modifier not in MODIFIERS.get(kind.value, frozenset()):
            unsupported(raw_name, f"the modifier :{modifier} is not supported")
            continue
        target = (targets or {}).get(name, "Patient")
        values: list[Token | DateRange | str] = []
        for part in raw_value.split(","):
            try:
                values.append(_parse_value(kind, part, target))
            except ValueError as exc:
                errors[name] = f"{part!r} {exc}" if not str(exc).startswith(("not", "prefix")) else str(exc)
        if name not in errors:
            filters.append(Filter(name, kind, tuple(values), modifier))
    if summary and elements:
        errors["_elements"] = "cannot be combined with _summary"
    if errors:
        raise SearchError(errors)
    return Search(
        tuple(filters),
        count,
        offset,
        sort,
        includes=tuple(includes),
        summary=summary,
        elements=elements,
        cursor=cursor,
        ignored=tuple(ignored.items()),
    )


def _includes(text: str, *, reverse: bool, options: Collection[Include]) -> list[Include]:
    """The includes ``text`` names among ``options``: ``Type:param``, ``Type:param:Target``, ``Type:*``
    or ``*`` (every include of that direction)."""
    served = [o for o in options if o.reverse is reverse]
    if text == "*":
        return served
    parts = text.split(":")
    if len(parts) not in (2, 3):
        return []
    source, param = parts[0], parts[1]
    return [o for o in served if o.source == source and param in ("*", o.param)]


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
