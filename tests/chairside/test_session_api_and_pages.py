"""The session API (idempotent reading batches, 422s, isolation) and the session page for each role."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from ketaclinic.chairside.models import Observation, SessionAlert


def _post(client: Client, path: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json", **headers)


def test_a_resent_batch_stores_nothing_twice(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    at = timezone.now() - timedelta(minutes=2)
    body = {
        "readings": [
            {
                "observed_at": at.isoformat(),
                "sbp_mmhg": 181,
                "dbp_mmhg": 92,
                "hr_bpm": 80,
                "spo2_pct": 97,
                "rr_per_min": 14,
            },
            {"observed_at": (at + timedelta(seconds=60)).isoformat(), "sbp_mmhg": 130, "dbp_mmhg": 80},
        ]
    }
    before = Observation.objects.count()
    first = _post(
        client, f"/api/sessions/{esk_session.pk}/observations", body, HTTP_IDEMPOTENCY_KEY="monitor-7-0001"
    )
    assert first.status_code == 201 and first.json() == {
        "batch": "monitor-7-0001",
        "stored": 2,
        "duplicate": False,
    }
    again = _post(
        client, f"/api/sessions/{esk_session.pk}/observations", body, HTTP_IDEMPOTENCY_KEY="monitor-7-0001"
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert Observation.objects.count() == before + 2
    assert SessionAlert.objects.filter(session=esk_session, code="sbp_high").count() == 1


def test_a_bad_reading_answers_422_naming_it_and_stores_none(
    esk_session: Any, nurse: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), nurse)
    at = timezone.now().isoformat()
    body = {
        "idempotency_key": "k1",
        "readings": [
            {"observed_at": at, "sbp_mmhg": 120, "dbp_mmhg": 80},
            {"observed_at": at, "sbp_mmhg": 400, "dbp_mmhg": 80, "spo2_pct": 140},
        ],
    }
    before = Observation.objects.count()
    response = _post(client, f"/api/sessions/{esk_session.pk}/observations", body)
    assert response.status_code == 422
    fields = {d["loc"][1] for d in response.json()["detail"]}
    assert {"readings.1.sbp", "readings.1.spo2"} <= fields
    assert Observation.objects.count() == before
    retry = _post(
        client, f"/api/sessions/{esk_session.pk}/observations", dict(body, readings=body["readings"][:1])
    )
    assert retry.status_code == 201  # the refused key was not burnt


def test_a_missing_idempotency_key_is_refused(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    body = {"readings": [{"observed_at": timezone.now().isoformat(), "hr_bpm": 70}]}
    response = _post(client, f"/api/sessions/{esk_session.pk}/observations", body)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["body", "idempotency_key"]


def test_another_organization_cannot_reach_the_session(esk_session: Any, outsider: Any, sign_in: Any) -> None:
    client = sign_in(Client(), outsider)
    assert client.get(f"/api/sessions/{esk_session.pk}").status_code == 404
    assert client.get(f"/sessions/{esk_session.pk}/").status_code == 404
    body = {"idempotency_key": "x", "readings": [{"observed_at": timezone.now().isoformat(), "hr_bpm": 70}]}
    assert _post(client, f"/api/sessions/{esk_session.pk}/observations", body).status_code == 404


def test_front_desk_has_no_session_access(esk_session: Any, front_desk: Any, sign_in: Any) -> None:
    client = sign_in(Client(), front_desk)
    assert client.get(f"/sessions/{esk_session.pk}/").status_code == 403
    assert client.get(f"/api/sessions/{esk_session.pk}").status_code == 403


def test_stale_transition_answers_409(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    version = esk_session.version
    ok = _post(
        client,
        f"/api/sessions/{esk_session.pk}/transition",
        {"to": "stopped", "version": version, "reason": "Patient unwell today"},
    )
    assert ok.status_code == 200
    stale = _post(
        client, f"/api/sessions/{esk_session.pk}/transition", {"to": "pre_dose", "version": version}
    )
    assert stale.status_code == 409


def test_chairside_line_entry_records_a_reading(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    page = client.get(f"/sessions/{esk_session.pk}/")
    assert page.status_code == 200 and b'id="line"' in page.content and b"autofocus" in page.content
    client.post(f"/sessions/{esk_session.pk}/observe/", {"line": "142/88 76 97 14 moaas 5"})
    obs = Observation.objects.filter(session=esk_session).latest("observed_at")
    assert (obs.sbp_mmhg, obs.dbp_mmhg, obs.hr_bpm, obs.spo2_pct, obs.rr_per_min, obs.moaas) == (
        142,
        88,
        76,
        97,
        14,
        5,
    )
    bad = client.post(f"/sessions/{esk_session.pk}/observe/", {"line": "420/88 76"}, follow=True)
    assert "SBP 420 is outside" in bad.content.decode()


def test_gate_form_offers_only_valid_pregnancy_answers(esk_session: Any, nurse: Any, sign_in: Any) -> None:
    from ketaclinic.clinical.gate import PregnancyTest

    client = sign_in(Client(), nurse)
    html = client.get(f"/sessions/{esk_session.pk}/").content.decode()
    offered = set(html.split('name="pregnancy_test"')[1].split("</select>")[0].split('value="')[1:])
    assert {v.split('"')[0] for v in offered} - {""} <= {p.value for p in PregnancyTest}
    bad = client.post(f"/sessions/{esk_session.pk}/gate/", {"pregnancy_test": "maybe"}, follow=True)
    assert "is not one of" in bad.content.decode()


def test_session_list_names_the_patients_at_your_sites_and_is_audited(
    esk_session: Any, nurse: Any, outsider: Any, sign_in: Any
) -> None:
    from ketaclinic.audit.models import AuditEntry

    page = sign_in(Client(), nurse).get("/sessions/").content.decode()
    patient = esk_session.patient
    assert f"{patient.family_name}, {patient.given_name}" in page and patient.mrn in page
    entry = AuditEntry.objects.filter(user=nurse, object_type="TreatmentSession", action="query").latest("id")
    assert entry.detail == "session list: 1 scheduled or active session(s)"
    other = sign_in(Client(), outsider).get("/sessions/").content.decode()
    assert patient.family_name not in other and "No scheduled or active sessions" in other
