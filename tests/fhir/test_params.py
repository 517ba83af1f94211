"""Search-parameter parsing (pure): date intervals and prefixes, tokens, references, paging controls."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from ketaclinic.interop.fhir.params import (
    MAX_COUNT,
    Include,
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


# --- issue 16: includes, modifiers, lenient handling, _summary/_elements ----------------------------------

OPTIONS = (
    Include("Observation", "patient", reverse=False),
    Include("Observation", "encounter", reverse=False),
    Include("Observation", "patient", reverse=True),
)
TYPED = {**PARAMS, "name": ParamType.STRING}


def test_includes_and_wildcards() -> None:
    search = parse_search([("_include", "Observation:patient")], PARAMS, SORTS, include_options=OPTIONS)
    assert search.includes == (OPTIONS[0],)
    star = parse_search([("_include", "*")], PARAMS, SORTS, include_options=OPTIONS)
    assert star.includes == OPTIONS[:2]
    typed = parse_search([("_include", "Observation:*")], PARAMS, SORTS, include_options=OPTIONS)
    assert typed.includes == OPTIONS[:2]
    rev = parse_search([("_revinclude", "Observation:patient")], PARAMS, SORTS, include_options=OPTIONS)
    assert rev.includes == (OPTIONS[2],)
    with pytest.raises(SearchError) as caught:
        parse_search([("_include", "Observation:performer")], PARAMS, SORTS, include_options=OPTIONS)
    assert list(caught.value.errors) == ["_include=Observation:performer"]


def test_modifiers_by_type() -> None:
    search = parse_search([("code:not", "a|1"), ("name:exact", "Zoë")], TYPED, SORTS)
    assert [(f.name, f.modifier) for f in search.filters] == [("code", "not"), ("name", "exact")]
    with pytest.raises(SearchError) as caught:
        parse_search([("date:not", "2024"), ("name:text", "x"), ("code:text", "x")], TYPED, SORTS)
    assert set(caught.value.errors) == {"date:not", "name:text", "code:text"}


def test_lenient_ignores_unknown_and_unsupported_but_not_invalid_values() -> None:
    search = parse_search(
        [("bogus", "1"), ("code:text", "x"), ("_include", "X:y"), ("code", "a|1")],
        PARAMS,
        SORTS,
        include_options=OPTIONS,
        lenient=True,
    )
    assert [f.name for f in search.filters] == ["code"]
    assert [name for name, _reason in search.ignored] == ["bogus", "code:text", "_include=X:y"]
    with pytest.raises(SearchError):
        parse_search([("date", "2024-13")], PARAMS, SORTS, lenient=True)


def test_summary_and_elements_controls() -> None:
    assert parse_search([("_summary", "count")], PARAMS, SORTS).summary == "count"
    assert parse_search([("_elements", "value,subject")], PARAMS, SORTS).elements == ("value", "subject")
    with pytest.raises(SearchError) as caught:
        parse_search([("_summary", "maybe"), ("_elements", "a b")], PARAMS, SORTS)
    assert set(caught.value.errors) == {"_summary", "_elements"}
    with pytest.raises(SearchError):
        parse_search([("_summary", "true"), ("_elements", "a")], PARAMS, SORTS)


def test_cursor_is_checked_as_text() -> None:
    assert parse_search([("_cursor", "abc.def-_")], PARAMS, SORTS).cursor == "abc.def-_"
    with pytest.raises(SearchError):
        parse_search([("_cursor", "not a cursor!")], PARAMS, SORTS)


def test_the_summary_tables_match_the_r4_definitions() -> None:
    """subset.SUMMARY lists R4's summary elements (Σ) per type; fhir.resources' R4B models carry the same
    flags for these types."""
    import importlib

    from ketaclinic.interop.fhir.subset import SUMMARY

    for name, expected in SUMMARY.items():
        model = getattr(importlib.import_module(f"fhir.resources.R4B.{name.lower()}"), name)
        flagged = set()
        for field_name, info in model.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if extra.get("summary_element_property"):
                choice = extra.get("one_of_many")
                flagged.add(f"{choice}[x]" if choice else info.alias or field_name)
        assert flagged - {"id", "meta", "implicitRules"} == expected, name


def test_subsets_keep_mandatory_elements_and_say_so() -> None:
    from ketaclinic.interop.fhir.subset import SUBSETTED, elements, summarize

    obs = {
        "resourceType": "Observation",
        "id": "x",
        "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
        "status": "final",
        "category": [{"text": "c"}],
        "code": {"text": "t"},
        "effectiveDateTime": "2026-01-01T00:00:00Z",
        "valueQuantity": {"value": 1},
        "text": {"status": "generated", "div": "<div/>"},
    }
    summary = summarize(obs, "true")
    assert "category" not in summary and "text" not in summary and summary["valueQuantity"] == {"value": 1}
    assert summary["meta"]["tag"] == [SUBSETTED] and "tag" not in obs["meta"]  # the original is untouched
    assert set(summarize(obs, "text")) == {"resourceType", "id", "meta", "text", "status", "code"}
    assert "text" not in summarize(obs, "data") and summarize(obs, "false") == obs
    assert set(elements(obs, ["effective"])) == {
        "resourceType",
        "id",
        "meta",
        "status",
        "code",
        "effectiveDateTime",
    }
    whole = {"resourceType": "Observation", "id": "y", "status": "final", "code": {}}
    assert "meta" not in elements(whole, ["status"])  # nothing left out: no tag


def test_cursors_round_trip_and_refuse_tampering(settings: Any) -> None:
    from datetime import date as day

    from ketaclinic.interop.fhir import paging

    moment = datetime(2026, 12, 7, 12, 30, 0, 600000, tzinfo=UTC)
    for value in (moment, day(1970, 1, 15), None, "x"):
        cursor = paging.Cursor("-date", value, "score-1", moment, forward=False)
        text = paging.encode(cursor)
        assert "1970" not in text and "score" not in text
        assert paging.decode(text, Sort("date", True)) == cursor
    text = paging.encode(paging.Cursor("date", moment, "a", moment, forward=True))
    with pytest.raises(SearchError):
        paging.decode(text, Sort("date", True))  # another _sort
    with pytest.raises(SearchError):
        paging.decode(text[:-2] + ("AA" if not text.endswith("AA") else "BB"), Sort("date", False))
    settings.SECRET_KEY = "another key entirely, long enough to be a real one"
    with pytest.raises(SearchError):
        paging.decode(text, Sort("date", False))  # a cursor from another server
