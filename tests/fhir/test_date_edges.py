"""Issue 15 H2: FHIR date search parameters at the edges of the calendar, or malformed, answer 400 with an
OperationOutcome naming the parameter — never 500 (the probe found 7 server errors)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ketaclinic.interop.fhir.params import parse_date
from ketaclinic.interop.fhir.resources import REGISTRY
from ketaclinic.interop.fhir.resources.base import COMMON_PARAMS

EDGES = [
    "0001-01-01",
    "ge0001-01-01",
    "lt0001-01-01T00:00+05:00",
    "9999-12-31",
    "ge9999-12-31",
    "gt9999-12-31T23:59:59-05:00",
    "le9999",
    "9999-12",
    "0001",
    "2024-02-30",
    "2024-13",
    "2024-01-01T25:00",
    "2024-01-01T10:00+99:00",
    "xx2024",
    "",
]


@pytest.mark.parametrize("text", EDGES)
def test_parse_date_refuses_edges_with_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_date(text)


def test_parse_date_still_reads_ordinary_dates() -> None:
    assert parse_date("ge1900").start.year == 1900
    assert parse_date("lt2999-12-31").start.year == 2999
    assert parse_date("2024-03-05T10:15+01:00").start.hour == 9


def test_every_date_parameter_answers_400_for_an_edge(org: Any, bearer: Any, patient: Any) -> None:
    headers = bearer(org)
    client = Client()
    seen = 0
    for name, rtype in REGISTRY.items():
        dates = [p for p, d in {**COMMON_PARAMS, **rtype.params}.items() if d.type.value == "date"]
        for param in dates:
            for text in EDGES:
                response = client.get(f"/fhir/{name}", {param: text}, **headers)
                seen += 1
                assert response.status_code == 400, (name, param, text, response.status_code)
                body = response.json()
                assert body["resourceType"] == "OperationOutcome"
                assert any(param in (i.get("diagnostics") or "") for i in body["issue"]), body
    assert seen > 100
