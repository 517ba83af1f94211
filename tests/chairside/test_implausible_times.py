"""Issue 15 H2: times outside a plausible window are refused on every path, and a row already stored with
one (before this rule) does not break the pages that show it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from tests.chairside.journey import Api

from ketaclinic.chairside.models import Administration, Observation, TreatmentSession

EDGES = [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)]


@pytest.mark.parametrize("moment", EDGES, ids=["year-1", "year-9999"])
def test_pages_that_show_a_stored_implausible_time_still_answer(
    open_gate: Any, nurse: Any, sign_in: Any, moment: datetime, t0: Any
) -> None:
    from tests.chairside.conftest import reading
    from tests.ledger.stock import lot_for

    from ketaclinic.chairside import services

    services.record_administration(
        user=nurse, session=open_gate, kind="nasal_device", lot_id=lot_for(open_gate).pk
    )
    obs = services.record_observation(
        user=nurse, session=open_gate, reading=reading(t0 + timedelta(minutes=1), 120, 80)
    )
    Observation.objects.filter(pk=obs.pk).update(observed_at=moment)
    Administration.objects.filter(session=open_gate).update(at=moment)
    TreatmentSession.objects.filter(pk=open_gate.pk).update(scheduled_at=moment)
    client = sign_in(Client(), nurse)
    for url in (
        reverse("chairside:session", args=[open_gate.pk]),
        reverse("chairside:list"),
        reverse("chairside:session_report_pdf", args=[open_gate.pk]),
        reverse("chairside:rems_form", args=[open_gate.pk]),
        reverse("chairside:board", args=[open_gate.site.code]),
        reverse("patients:chart", args=[open_gate.patient_id]),
        "/",
    ):
        assert client.get(url).status_code == 200, url


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def _fields(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.content
    return {d["loc"][-1]: d["msg"] for d in response.json()["detail"]}


@pytest.mark.parametrize("moment", EDGES, ids=["year-1", "year-9999"])
def test_the_api_refuses_readings_doses_and_bookings_at_an_implausible_time(
    open_gate: Any, nurse: Any, sign_in: Any, moment: datetime
) -> None:
    client = Api(nurse, sign_in).client
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    at = moment.isoformat()
    readings = _post(
        client,
        f"/api/sessions/{open_gate.pk}/observations",
        {"idempotency_key": "k-1", "readings": [{"observed_at": at, "sbp_mmhg": 120, "dbp_mmhg": 80}]},
    )
    assert "observed_at" in _fields(readings)
    dose = _post(
        client,
        f"/api/sessions/{open_gate.pk}/administrations",
        {"kind": "nasal_device", "at": at, "late_entry_reason": "typed late from the paper chart"},
    )
    assert "2000-01-01" in _fields(dose)["at"] or "clock difference" in _fields(dose)["at"]
    booking = _post(
        client,
        "/api/sessions",
        {
            "patient_id": str(open_gate.patient_id),
            "protocol_id": "esk-trd-label",
            "planned_dose_mg": "84",
            "scheduled_at": at,
        },
    )
    assert "scheduled_at" in _fields(booking)
    assert Observation.objects.filter(session=open_gate).count() == 1  # the fixture's reading only
    assert not Administration.objects.filter(session=open_gate).exists()
    assert TreatmentSession.objects.filter(patient=open_gate.patient).count() == 1


def test_a_reading_before_the_patient_was_born_or_minutes_ahead_is_refused(
    open_gate: Any, nurse: Any
) -> None:
    from tests.chairside.conftest import reading

    from ketaclinic.chairside import services
    from ketaclinic.patients.models import Patient

    Patient.objects.filter(pk=open_gate.patient_id).update(date_of_birth=date(2005, 6, 1))
    open_gate.patient.refresh_from_db()
    before_birth = datetime(2004, 12, 24, tzinfo=UTC)
    with pytest.raises(services.SessionInputError) as refused:
        services.record_observation(user=nurse, session=open_gate, reading=reading(before_birth, 120, 80))
    assert "date of birth" in refused.value.errors["observed_at"]
    ahead = timezone.now() + timedelta(minutes=20)
    with pytest.raises(services.SessionInputError) as refused:
        services.record_observation(user=nurse, session=open_gate, reading=reading(ahead, 120, 80))
    assert "5 minute(s) of clock difference" in refused.value.errors["observed_at"]
    # Within the clock difference (a monitor's clock a little ahead) the reading is kept as given.
    services.record_observation(
        user=nurse, session=open_gate, reading=reading(timezone.now() + timedelta(minutes=3), 120, 80)
    )


def test_a_session_booked_years_ahead_is_refused(consented: Any, nurse: Any) -> None:
    from ketaclinic.chairside import services

    with pytest.raises(services.SessionInputError) as refused:
        services.schedule_session(
            user=nurse,
            patient=consented,
            protocol_id="esk-trd-label",
            scheduled_at=timezone.now() + timedelta(days=3 * 365),
            planned_dose_mg=56,
        )
    assert "days ahead" in refused.value.errors["scheduled_at"]
