"""FHIR fixtures: API clients of the owner organization and of the outsider, tokens, and rating scales."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client

FORM = "application/x-www-form-urlencoded"


def phq9(total_first: int = 0, *, rest: int = 0) -> dict[str, int]:
    """PHQ-9 answers: item 1 = total_first, items 2-9 = rest (item 9 kept 0 to avoid safety flags)."""
    return {"1": total_first, **{str(i): rest for i in range(2, 9)}, "9": 0}


@pytest.fixture
def make_client(db: Any) -> Callable[..., tuple[Any, str]]:
    def create(org: Any, scopes: str = "system/*.rs", **extra: Any) -> tuple[Any, str]:
        from ketaclinic.interop.fhir import auth

        return auth.create_client(organization=org, name="Test EHR", scopes=scopes, **extra)

    return create


def live_token(live_server: Any, client_id: str, secret: str) -> str:
    """A bearer token from the running server's token endpoint, over real HTTP (HTTP Basic)."""
    import requests

    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    response = requests.post(
        f"{live_server.url}/fhir/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def get_token(http: Client, client_id: str, secret: str, scope: str | None = None) -> Any:
    data = {"grant_type": "client_credentials"}
    if scope is not None:
        data["scope"] = scope
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return http.post("/fhir/token", urlencode(data), content_type=FORM, HTTP_AUTHORIZATION=f"Basic {basic}")


@pytest.fixture
def bearer(make_client: Callable[..., tuple[Any, str]]) -> Callable[..., dict[str, str]]:
    """Headers with a fresh token for a new client of ``org`` with ``scopes``."""

    def make(org: Any, scopes: str = "system/*.rs", **extra: Any) -> dict[str, str]:
        api_client, secret = make_client(org, scopes, **extra)
        response = get_token(Client(), api_client.client_id, secret)
        assert response.status_code == 200, response.content
        return {"HTTP_AUTHORIZATION": f"Bearer {response.json()['access_token']}"}

    return make


@pytest.fixture
def record_scale(db: Any) -> Callable[..., Any]:
    def record(user: Any, patient: Any, instrument: str, answers: dict[str, int], when: datetime) -> Any:
        from ketaclinic.measures import services

        return services.record_administration(
            user=user, patient=patient, instrument=instrument, answers=answers, administered_at=when
        )

    return record


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 3, day, hour, 0, tzinfo=UTC)


@pytest.fixture
def clinic(
    nurse: Any, prescriber: Any, make_patient: Any, outsider: Any, make_user: Any, other_site: Any
) -> Any:
    """Treatment sessions of two patients and of another organization (tests/fhir/sessions.py)."""
    from tests.fhir.sessions import build

    outsider_prescriber = make_user("outsider_rx", outsider.organization, "prescriber", [other_site])
    return build(nurse, prescriber, make_patient, outsider, outsider_prescriber)


def search(headers: dict[str, str], url: str) -> dict[str, Any]:
    """GET a search and return the Bundle (asserting 200)."""
    response = Client().get(url, **headers)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def ids(headers: dict[str, str], url: str) -> list[str]:
    """The ids of a search's first page, in the server's order."""
    return [e["resource"]["id"] for e in search(headers, url).get("entry", [])]


def read(headers: dict[str, str], path: str) -> dict[str, Any]:
    response = Client().get(f"/fhir/{path}", **headers)
    assert response.status_code == 200, response.content
    body: dict[str, Any] = response.json()
    return body


def iso(moment: datetime) -> str:
    """The server's instant format (UTC, seconds, Z): what to expect and what to search with."""
    from ketaclinic.interop.fhir.resources.base import instant

    return instant(moment)


@pytest.fixture
def courses(
    nurse: Any,
    prescriber: Any,
    site: Any,
    make_patient: Any,
    outsider: Any,
    make_user: Any,
    other_site: Any,
) -> Any:
    """Intakes and treatment plans of two patients and of another organization (tests/fhir/courses.py)."""
    from tests.fhir.courses import build

    outsider_prescriber = make_user("outsider_plan_rx", outsider.organization, "prescriber", [other_site])
    return build(
        nurse=nurse,
        prescriber=prescriber,
        site=site,
        make_patient=make_patient,
        outsider=outsider,
        outsider_prescriber=outsider_prescriber,
        other_site=other_site,
    )
