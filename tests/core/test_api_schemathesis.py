"""Issue 15 point 5: schemathesis over the whole OpenAPI document, with real ids.

A clinic is seeded (a patient with consent on file, a checked-in esketamine session with a reading and an
alert) and a prescriber signed in (every operation is open to the role or answers a documented 403). Each
operation gets a few generated requests, valid and invalid (schemathesis' positive and negative phases);
path ids are swapped for the seeded records' ids so that requests reach the rules behind the 404. The
checks: no server error, no status code the document does not state, no invalid request accepted, and
responses that match their schema. Sized for CI on 2 cores (``MAX_EXAMPLES`` per operation).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.test import Client
from django.utils import timezone
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from ketaclinic.core.api import api

MAX_EXAMPLES = 6
# The coverage phase's hundreds of boundary cases per operation do not fit CI's 2 cores; the fuzzing phase
# (positive and negative data, MAX_EXAMPLES each) and the schema's own examples run.
CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
SCHEMA = schemathesis.openapi.from_dict(api.get_openapi_schema(path_prefix="/api/"), config=CONFIG)
APP = get_wsgi_application()
CHECKS = [not_a_server_error, status_code_conformance, negative_data_rejection, response_schema_conformance]


@pytest.fixture
def _connection_kept(clinic: dict[str, Any]) -> Iterator[None]:
    """Django closes the database connection when a request starts and finishes; in a test (one
    transaction) that would drop the seeded clinic on PostgreSQL. Django's test client does the same as
    this around its own requests (and connects the handlers again, so this runs after the clinic's)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def clinic(prescriber: Any, nurse: Any, patient: Any, sign_in: Any) -> dict[str, Any]:
    from tests.chairside.conftest import reading
    from tests.consent.helpers import consent_on_file

    from ketaclinic.chairside import services

    today = timezone.localdate(timezone.now(), patient.site.zone)
    consent = consent_on_file(nurse, patient, "esketamine", signed_on=today - timedelta(days=3))
    session = services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=timezone.now() - timedelta(minutes=40),
        planned_dose_mg=56,
    )
    services.transition(user=nurse, session=session, to="checked_in")
    services.record_observation(
        user=nurse, session=session, reading=reading(timezone.now() - timedelta(minutes=5), 182, 95)
    )
    alert = session.alerts.first()
    client = sign_in(Client(), prescriber)
    client.get("/")
    cookies = {name: morsel.value for name, morsel in client.cookies.items()}
    return {
        "ids": {
            "patient_id": str(patient.pk),
            "session_id": str(session.pk),
            "alert_id": alert.pk if alert else 1,
            "consent_id": getattr(consent, "pk", 1),
        },
        "cookies": cookies,
        "headers": {"X-CSRFToken": cookies[settings.CSRF_COOKIE_NAME]},
    }


@SCHEMA.parametrize()
@hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_documented_promises(
    case: Any, clinic: dict[str, Any], _connection_kept: None
) -> None:
    for name in list(case.path_parameters or {}):
        if name in clinic["ids"]:
            case.path_parameters[name] = clinic["ids"][name]
    # The session cookie is a parameter of every operation (ninja's cookie auth). A generated one is
    # replaced by the signed-in session's; when the negative phase leaves it out, it stays out.
    real = clinic["cookies"]
    session_cookie = settings.SESSION_COOKIE_NAME
    if case.cookies and session_cookie in case.cookies:
        case.cookies[session_cookie] = real[session_cookie]
    others = {k: v for k, v in real.items() if k != session_cookie}
    case.call_and_validate(app=APP, headers=clinic["headers"], cookies=others, checks=CHECKS)
