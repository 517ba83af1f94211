"""FHIR search under fuzz (issue 15, point 5): dates at every precision and edge (years 0000-9999, offsets up
to ±15:59, impossible months and days), every prefix the standard names (all nine served since issue 16:
eq/ne/ge/le/gt/lt/sa/eb/ap), malformed values, unknown parameters and modifiers, and _count/_offset from
negative to absurd. Whatever is asked, the server never answers 500: a search that can run answers a
Bundle, anything else a 4xx OperationOutcome naming the problem.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketaclinic.interop.fhir.resources import REGISTRY
from ketaclinic.interop.fhir.resources.base import ParamType

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

PREFIXES = ["", "eq", "ge", "le", "gt", "lt", "ne", "sa", "eb", "ap", "xx", "EQ", "g"]


@st.composite
def fhir_dates(draw: Any) -> str:
    """A date-shaped value: well formed or nearly so, at any precision, with edge years and offsets."""
    year = draw(st.sampled_from([0, 1, 2, 1900, 1969, 1970, 2024, 2026, 9998, 9999]) | st.integers(0, 9999))
    text = f"{year:04d}"
    precision = draw(st.integers(0, 5))
    if precision >= 1:
        text += f"-{draw(st.integers(0, 13)):02d}"
    if precision >= 2:
        text += f"-{draw(st.integers(0, 32)):02d}"
    if precision >= 3:
        text += f"T{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}"
        if precision >= 4:
            text += f":{draw(st.integers(0, 61)):02d}"
            if draw(st.booleans()):
                text += "." + "9" * draw(st.integers(1, 9))
        tz = draw(st.sampled_from(["", "Z", "+", "-"]))
        if tz in "+-" and tz:
            tz += f"{draw(st.integers(0, 15)):02d}:{draw(st.integers(0, 59)):02d}"
        text += tz
    return draw(st.sampled_from(PREFIXES)) + text


junk = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=24
)  # anything a client might type, NUL and control characters included
numbers = st.one_of(
    st.integers(-10, 10**30).map(str), st.sampled_from(["", "1e3", "0x10", " 5", "5.0", "-0", "١٢"])
)


@st.composite
def searches(draw: Any) -> tuple[str, list[tuple[str, str]]]:
    rtype = draw(st.sampled_from(sorted(REGISTRY)))
    resource = REGISTRY[rtype]
    names = sorted(resource.params)
    pairs: list[tuple[str, str]] = []
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["date", "param", "control", "unknown", "modifier"]))
        if kind == "date":
            dated = [n for n in names if resource.params[n].type is ParamType.DATE] or ["_lastUpdated"]
            values = draw(st.lists(fhir_dates() | junk, min_size=1, max_size=3))
            pairs.append((draw(st.sampled_from(dated)), ",".join(values)))
        elif kind == "param":
            pairs.append((draw(st.sampled_from(names)), draw(junk | fhir_dates())))
        elif kind == "control":
            name = draw(st.sampled_from(["_count", "_offset", "_sort", "_total", "_format", "_totalMethod"]))
            value = (
                draw(numbers)
                if name in ("_count", "_offset")
                else draw(
                    junk
                    | st.sampled_from(
                        [
                            *resource.sort_keys,
                            *("-" + k for k in resource.sort_keys),
                            "json",
                            "accurate",
                            "count",
                        ]
                    )
                )
            )
            pairs.append((name, value))
        elif kind == "unknown":
            pairs.append((draw(junk.filter(lambda s: s not in resource.params)), draw(junk)))
        else:
            modifier = draw(st.sampled_from(["missing", "exact", "not", "above", "", "text"]) | junk)
            pairs.append((f"{draw(st.sampled_from(names))}:{modifier}", draw(junk)))
    return rtype, pairs


def _check(response: Any) -> None:
    assert response.status_code < 500, response.content[:500]
    body = response.json()
    if response.status_code >= 400:
        assert body["resourceType"] == "OperationOutcome", body
        assert body["issue"], body
        for issue in body["issue"]:
            assert issue["severity"] in ("fatal", "error", "warning", "information"), issue
            assert isinstance(issue["code"], str) and issue["code"], issue
            assert issue.get("diagnostics") or issue.get("details"), issue
    else:
        assert body["resourceType"] == "Bundle", body


@pytest.fixture
def headers(org: Any, bearer: Any, clinic: Any) -> dict[str, str]:
    return bearer(org)  # type: ignore[no-any-return]


def test_fuzzed_searches_never_fail_the_server(headers: dict[str, str]) -> None:
    http = Client()

    @FUZZ
    @given(searches(), st.booleans())
    def run(search: tuple[str, list[tuple[str, str]]], by_post: bool) -> None:
        rtype, pairs = search
        if by_post:
            response = http.post(
                f"/fhir/{rtype}/_search",
                urlencode(pairs),
                content_type="application/x-www-form-urlencoded",
                **headers,
            )
        else:
            response = http.get(f"/fhir/{rtype}?{urlencode(pairs)}", **headers)
        _check(response)

    run()


@pytest.mark.parametrize(
    "query",
    [
        "_lastUpdated=ge0001-01-01T00:00+14:00",  # before year 1 once moved to UTC
        "_lastUpdated=le9999-12-31T23:59-12:00",  # after year 9999 once moved to UTC
        "_lastUpdated=9999",  # the interval's end is in year 10000
        "_lastUpdated=9999-12",
        "_lastUpdated=9999-12-31",
        "_lastUpdated=0000",
        "_lastUpdated=ne2024",
        "_lastUpdated=2024-02-30",
        "_offset=99999999999999999999999999",
        "_count=99999999999999999999999999",
        "_count=-1",
        "_sort=nonsense",
        "nonsense=1",
        "_lastUpdated:missing=true",
    ],
)
def test_edge_dates_and_controls_answer_an_operation_outcome(headers: dict[str, str], query: str) -> None:
    """The probe's seven FHIR 500s were date edges: each answers 4xx with an OperationOutcome now, or a
    Bundle where the value is a valid search."""
    for rtype in ("Patient", "Observation", "Encounter"):
        name, _, value = query.partition("=")
        response = Client().get(f"/fhir/{rtype}?{urlencode({name: value})}", **headers)
        _check(response)
        if "9999" in query or "0001" in query or "0000" in query or "99999" in query:
            assert response.status_code in (200, 400), (rtype, query, response.status_code)
