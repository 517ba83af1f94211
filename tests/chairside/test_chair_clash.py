"""A session scheduled at the chair outside a plan may not take a chair that a course session or another chair
session holds at that time, unless the nurse says why (audited); a course session opening in its own booked
chair is never refused."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client
from tests.treatment.conftest import open_site, screened
from tests.treatment.test_plans import next_monday, plan_data

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.treatment import services as treatment


@pytest.fixture
def booked(nurse: Any, prescriber: Any, patient: Any, site: Any) -> Any:
    """Two chairs; a course whose session 1 holds C1 on Monday 09:00–10:10 (site time)."""
    chairs = open_site(site)
    screened(nurse, prescriber, patient)
    plan = treatment.create_plan(user=prescriber, patient=patient, data=plan_data())
    return plan, chairs


def _monday(site: Any, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(next_monday(), time(hour, minute), tzinfo=site.zone)


def _schedule(nurse: Any, patient: Any, when: datetime, chair: Any, reason: str = "") -> Any:
    return services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=when,
        planned_dose_mg=56,
        chair=chair,
        chair_override_reason=reason,
    )


def test_a_taken_chair_is_refused_naming_what_holds_it(
    booked: Any, nurse: Any, make_patient: Any, site: Any
) -> None:
    _plan, (c1, c2) = booked
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    with pytest.raises(services.SessionInputError) as err:
        _schedule(nurse, walk_in, _monday(site, 8, 30), c1)  # its chair time runs into 09:00
    message = err.value.errors["chair_override_reason"]
    assert message.startswith("C1 is taken then (09:00–10:10 course session)")
    assert "Examplesson" not in message  # what holds it, not who
    assert not TreatmentSession.objects.filter(patient=walk_in).exists()
    first = _schedule(nurse, walk_in, _monday(site, 8, 30), c2)  # the other chair is free
    other = make_patient(nurse, given_name="Olga", family_name="Otherly")
    with pytest.raises(
        services.SessionInputError, match=r"C2 is taken then \(08:30–\d\d:\d\d session at the chair\)"
    ):
        _schedule(nurse, other, _monday(site, 9), c2)
    later = _monday(site, 8, 30) + timedelta(minutes=get_protocol("esk-trd-label").chair_minutes())
    assert _schedule(nurse, other, later, c2).chair == c2  # free again when the first one's chair time ends
    assert first.chair == c2


def test_with_a_reason_the_chair_is_used_and_the_override_audited(
    booked: Any, nurse: Any, make_patient: Any, site: Any
) -> None:
    _plan, (c1, _c2) = booked
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    session = _schedule(nurse, walk_in, _monday(site, 9, 30), c1, reason="Course patient cancelled by phone")
    entry = AuditEntry.objects.get(object_type="TreatmentSession", object_id=str(session.pk), action="add")
    after = json.loads(entry.after)
    assert after["chair_override_reason"] == "Course patient cancelled by phone"
    assert after["chair_taken_by"] == ["09:00–10:10 course session"]


def test_a_course_session_opens_in_its_own_chair(booked: Any, nurse: Any, patient: Any) -> None:
    plan, (c1, _c2) = booked
    first = plan.sessions.get(number=1)
    session = services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id=plan.protocol_key,
        scheduled_at=first.start,
        planned_dose_mg=plan.dose_mg,
        chair=c1,
        planned_session_id=first.pk,
    )
    assert session.chair == c1


def test_api_and_chart_form_name_the_field(
    booked: Any, nurse: Any, make_patient: Any, site: Any, sign_in: Any
) -> None:
    _plan, (c1, _c2) = booked
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    client = sign_in(Client(), nurse)
    body = {
        "patient_id": str(walk_in.pk),
        "protocol_id": "esk-trd-label",
        "planned_dose_mg": "56",
        "scheduled_at": _monday(site, 9, 30).isoformat(),
        "chair_id": c1.pk,
    }
    refused = client.post("/api/sessions", data=json.dumps(body), content_type="application/json")
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "chair_override_reason"]
    ok = client.post(
        "/api/sessions",
        data=json.dumps({**body, "chair_override_reason": "Agreed with the charge nurse"}),
        content_type="application/json",
    )
    assert ok.status_code == 201
    # The same patient again that day: one session a day (issue 14), whatever the chair.
    again = client.post(
        "/api/sessions",
        data=json.dumps({**body, "chair_id": _c2.pk, "scheduled_at": _monday(site, 14).isoformat()}),
        content_type="application/json",
    )
    assert again.status_code == 422
    assert again.json()["detail"][0]["loc"] == ["body", "scheduled_at"]
    assert "already has a session on Mon" in again.json()["detail"][0]["msg"]
    other = make_patient(nurse, given_name="Olga", family_name="Otherly")
    page = client.post(
        f"/patients/{other.pk}/sessions/new/",
        {
            "protocol_id": "esk-trd-label",
            "planned_dose_mg": "56",
            "scheduled_at": _monday(site, 9, 45).strftime("%Y-%m-%dT%H:%M"),
            "chair": c1.pk,
        },
        follow=True,
    ).content.decode()
    assert "C1 is taken then" in page
