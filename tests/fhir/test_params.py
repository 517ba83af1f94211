"""Search-parameter parsing (pure): date intervals and prefixes, tokens, references, paging controls."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ketaclinic.interop.fhir.params import (
    MAX_COUNT,
    ParamType,
    SearchError,
    Sort,
    Token,
    parse_date,
    parse_reference,
    parse_search,
    parse_token,
)

PARAMS = {"date": ParamType.DATE, "code": ParamType.TOKEN, "patient": ParamType.REFERENCE}
SORTS = ("_id", "date")


@pytest.mark.parametrize(
    "text,prefix,start,end",
    [
        # A year is the whole year: [2024-01-01, 2025-01-01).
        ("2024", "eq", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        # December rolls the year: [2024-12-01, 2025-01-01).
        ("ge2024-12", "ge", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("lt2024-02-29", "lt", datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        # 10:15 at +02:00 is 08:15 UTC; a minute's precision spans one minute.
        (
            "gt2024-03-05T10:15+02:00",
            "gt",
            datetime(2024, 3, 5, 8, 15, tzinfo=UTC),
            datetime(2024, 3, 5, 8, 16, tzinfo=UTC),
        ),
        (
            "le2024-03-05T10:15:30Z",
            "le",
            datetime(2024, 3, 5, 10, 15, 30, tzinfo=UTC),
            datetime(2024, 3, 5, 10, 15, 31, tzinfo=UTC),
        ),
    ],
)
def test_dates_are_intervals_at_their_precision(
    text: str, prefix: str, start: datetime, end: datetime
) -> None:
    value = parse_date(text)
    assert (value.prefix, value.start, value.end) == (prefix, start, end)


@pytest.mark.parametrize("text", ["xy2024", "2024-13", "2024-02-30", "24-01-01", "2024-01-01T10", ""])
def test_bad_dates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_tokens() -> None:
    assert parse_token("http://loinc.org|44261-6") == Token("http://loinc.org", "44261-6")
    assert parse_token("44261-6") == Token(None, "44261-6")
    assert parse_token("|local") == Token("", "local")
    assert parse_token("http://loinc.org|") == Token("http://loinc.org", None)
    for bad in ("", "|", "a|b|c"):
        with pytest.raises(ValueError):
            parse_token(bad)


def test_references() -> None:
    ident = "0b5a3c1e-4d7a-4a53-9c8e-0d1f2a3b4c5d"
    assert parse_reference(f"Patient/{ident}") == ident
    assert parse_reference(ident) == ident
    assert parse_reference(f"http://host/fhir/Patient/{ident}") == ident
    with pytest.raises(ValueError):
        parse_reference(f"Group/{ident}")
    with pytest.raises(ValueError):
        parse_reference("not an id!")


def test_search_defaults_and_controls() -> None:
    search = parse_search([], PARAMS, SORTS)
    assert (search.count, search.offset, search.sort, search.filters) == (20, 0, None, ())
    search = parse_search([("_count", "500"), ("_offset", "40"), ("_sort", "-date")], PARAMS, SORTS)
    assert (search.count, search.offset, search.sort) == (MAX_COUNT, 40, Sort("date", True))
    assert parse_search([("_count", "0")], PARAMS, SORTS).count == 0


def test_repeated_parameters_are_and_and_commas_are_or() -> None:
    search = parse_search([("date", "ge2024"), ("date", "lt2025"), ("code", "a|1,b|2")], PARAMS, SORTS)
    assert [len(v) for v in search.values("date")] == [1, 1]
    assert search.values("code") == [(Token("a", "1"), Token("b", "2"))]


def test_every_bad_parameter_is_named_at_once() -> None:
    with pytest.raises(SearchError) as caught:
        parse_search(
            [
                ("bogus", "1"),
                ("_count", "-1"),
                ("_sort", "name"),
                ("date", "2024-99"),
                ("code:text", "x"),
                ("patient", "Group/1"),
                ("_format", "xml"),
                ("_total", "maybe"),
            ],
            PARAMS,
            SORTS,
        )
    assert set(caught.value.errors) == {
        "bogus",
        "_count",
        "_sort",
        "date",
        "code:text",
        "patient",
        "_format",
        "_total",
    }
    assert "is not a search parameter" in caught.value.errors["bogus"]


def test_controls_may_not_repeat() -> None:
    with pytest.raises(SearchError) as caught:
        parse_search([("_count", "5"), ("_count", "6")], PARAMS, SORTS)
    assert caught.value.errors == {"_count": "is given more than once"}
