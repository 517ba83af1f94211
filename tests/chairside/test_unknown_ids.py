"""Issue 15 Lows: an unknown session state, an unknown protocol id or an unknown chair is answered with
404 or 422 naming it — never a server error, never silently ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from tests.chairside.journey import Api

from ketaclinic.chairside import services
from ketaclinic.chairside.models import TreatmentSession


def _client(user: Any, sign_in: Any) -> Client:
    client = Api(user, sign_in).client
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_an_unknown_state_is_refused_naming_it(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    response = _post(
        _client(nurse, sign_in),
        f"/api/sessions/{esk_session.pk}/transition",
        {"to": "teleported", "version": esk_session.version},
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "to"
    with pytest.raises(services.SessionInputError) as refused:
        services.transition(user=nurse, session=esk_session, to="teleported")
    assert "'teleported' is not a session state" in refused.value.errors["to"]


def test_the_session_page_refuses_an_unknown_state(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    url = f"/sessions/{esk_session.pk}/"
    client.get(url)
    response = client.post(
        f"{url}transition/",
        {"to": "teleported", "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value},
    )
    assert response.status_code in (302, 409, 422)
    esk_session.refresh_from_db()
    assert esk_session.status == "checked_in"


def test_an_unknown_protocol_is_refused(patient: Any, nurse: Any, prescriber: Any, sign_in: Any) -> None:
    booking = _post(
        _client(nurse, sign_in),
        "/api/sessions",
        {
            "patient_id": str(patient.pk),
            "protocol_id": "no-such-protocol",
            "planned_dose_mg": "50",
            "scheduled_at": "2026-01-01T10:00:00Z",
        },
    )
    assert booking.status_code == 422
    plan = _post(
        _client(prescriber, sign_in),
        f"/api/treatment/patients/{patient.pk}/plans",
        {"protocol": "no-such-protocol", "start": "2030-01-01"},
    )
    assert plan.status_code == 422, plan.content
    page = sign_in(Client(), prescriber)
    for url in (
        "/treatment/protocols/no-such-protocol/",
        "/treatment/protocols/no-such-protocol/edit/",
        "/treatment/protocols/no-such-protocol/copy/",
        "/treatment/protocols/no-such-protocol/session-settings/",
    ):
        assert page.get(url).status_code in (403, 404), url


def test_an_unknown_chair_is_refused_naming_it(patient: Any, nurse: Any, sign_in: Any) -> None:
    from django.utils import timezone

    response = _post(
        _client(nurse, sign_in),
        "/api/sessions",
        {
            "patient_id": str(patient.pk),
            "protocol_id": "esk-trd-label",
            "planned_dose_mg": "56",
            "scheduled_at": (timezone.now()).isoformat(),
            "chair_id": 999999,
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == "chair_id"
    assert not TreatmentSession.objects.exists()


@pytest.mark.parametrize("chair", ["999999", "window-seat", "²", "9" * 40])
def test_the_chart_does_not_book_without_the_chair_asked_for(
    patient: Any, nurse: Any, sign_in: Any, chair: str
) -> None:
    from tests.pages import visible

    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    client.get(f"/patients/{patient.pk}/")
    response = client.post(
        f"/patients/{patient.pk}/sessions/new/",
        {
            "protocol_id": "esk-trd-label",
            "planned_dose_mg": "56",
            "chair": chair,
            "csrfmiddlewaretoken": client.cookies[settings.CSRF_COOKIE_NAME].value,
        },
        follow=True,
    )
    assert f"Chair '{chair}' is not a chair at Main Street" in visible(response.content.decode())
    assert not TreatmentSession.objects.exists()
