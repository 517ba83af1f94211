"""AdverseEvent and Consent: mapping and search parameters."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
import time_machine
from django.utils import timezone
from tests.fhir.conftest import ids, iso, read

from ketaclinic.chairside import services

AE_LOCAL = "https://ketaclinic.org/fhir/CodeSystem/adverse-event"
SERIOUSNESS = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
ACTION = "https://ketaclinic.org/fhir/StructureDefinition/adverse-event-action-taken"
CONSENT_CATEGORY = "https://ketaclinic.org/fhir/CodeSystem/consent-category|treatment-informed-consent"
M = timedelta(minutes=1)


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def ae(clinic: Any, *keys: str) -> list[str]:
    return [str(clinic.events[k].pk) for k in keys]


def cons(clinic: Any, *keys: str) -> list[str]:
    return [str(clinic.consents[k].pk) for k in keys]


def test_adverse_event_content(clinic: Any, h: dict[str, str], nurse: Any) -> None:
    event = read(h, f"AdverseEvent/{clinic.events['dissociation'].pk}")
    assert event["actuality"] == "actual"
    assert event["event"] == {
        "text": "Dissociation: Felt detached from surroundings",
        "coding": [{"system": AE_LOCAL, "code": "dissociation", "display": "Dissociation"}],
    }
    assert event["subject"] == {"reference": f"Patient/{clinic.ann.pk}"}
    assert event["encounter"] == {"reference": f"Encounter/{clinic.sessions['esk'].pk}"}
    assert event["date"] == iso(clinic.t0 + 20 * M)
    assert event["recordedDate"] == iso(clinic.events["dissociation"].recorded_at)
    assert event["seriousness"]["coding"][0] == {
        "system": SERIOUSNESS,
        "code": "Non-serious",
        "display": "Non-serious",
    }
    assert event["severity"]["coding"][0]["code"] == "moderate"
    assert event["outcome"]["coding"][0]["code"] == "resolved"
    assert event["recorder"] == {"display": nurse.display_name}
    # Onset at t0+20: the first device (t0) is the suspect.
    assert event["suspectEntity"] == [
        {"instance": {"reference": f"MedicationAdministration/{clinic.doses['d1'].pk}"}}
    ]
    assert event["extension"] == [{"url": ACTION, "valueString": "Reassurance, lights dimmed"}]
    bp = read(h, f"AdverseEvent/{clinic.events['bp'].pk}")
    assert bp["event"]["coding"][0]["code"] == "blood-pressure-increased"
    assert bp["outcome"] == {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/adverse-event-outcome",
                "code": "recovering",  # the clinic's "resolving"
                "display": "Recovering",
            }
        ],
        "text": "resolving",
    }
    assert "extension" not in bp  # no action recorded


def test_free_text_serious_event_before_any_dose(clinic: Any, h: dict[str, str], nurse: Any) -> None:
    session = clinic.sessions["running"]
    before = services.record_adverse_event(
        user=nurse,
        session=session,
        term="Panic attack",
        severity="severe",
        serious=True,
        onset_at=clinic.t2 - 8 * M,  # before the infusion started at t2
        action_taken="",
        outcome="referred",
        description="Hyperventilating in the waiting area",
    )
    event = read(h, f"AdverseEvent/{before.pk}")
    assert event["event"] == {"text": "Panic attack: Hyperventilating in the waiting area"}  # no local code
    assert event["seriousness"]["coding"][0]["code"] == "Serious"
    assert event["outcome"]["coding"][0]["code"] == "unknown" and event["outcome"]["text"] == "referred"
    assert "suspectEntity" not in event
    assert ids(h, "/fhir/AdverseEvent?seriousness=Serious") == [str(before.pk)]
    assert ids(h, f"/fhir/AdverseEvent?patient={clinic.ben.pk}") == [str(before.pk)]


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"event": f"{AE_LOCAL}|dissociation"}, ["dissociation"]),
        ({"event": "blood-pressure-increased"}, ["bp"]),
        ({"event": f"{AE_LOCAL}|nausea"}, []),
        ({"severity": "mild"}, ["bp"]),
        ({"severity": "mild,moderate"}, ["dissociation", "bp"]),
        ({"seriousness": f"{SERIOUSNESS}|Non-serious"}, ["dissociation", "bp"]),
        ({"seriousness": "Serious"}, []),
        ({"date": "ge{t0+30}"}, ["bp"]),
        ({"subject": "Patient/{ann}"}, ["dissociation", "bp"]),
    ],
)
def test_adverse_event_search(
    clinic: Any, h: dict[str, str], query: dict[str, str], expected: list[str]
) -> None:
    values = {"t0+30": iso(clinic.t0 + 30 * M), "ann": str(clinic.ann.pk)}
    params = {k: v.format(**values) for k, v in query.items()}
    assert ids(h, f"/fhir/AdverseEvent?{urlencode({**params, '_sort': 'date'})}") == ae(clinic, *expected)


def test_consent_content_and_status(clinic: Any, h: dict[str, str]) -> None:
    today = timezone.localdate()
    esk = read(h, f"Consent/{clinic.consents['ann_esk'].pk}")
    assert esk["status"] == "active"
    assert esk["scope"]["coding"][0]["code"] == "treatment"
    assert esk["scope"]["coding"][0]["system"] == "http://terminology.hl7.org/CodeSystem/consentscope"
    assert esk["category"][0]["coding"][0]["code"] == "treatment-informed-consent"
    assert esk["patient"] == {"reference": f"Patient/{clinic.ann.pk}"}
    signed = (today - timedelta(days=3)).isoformat()
    assert esk["dateTime"] == signed
    assert esk["policyRule"]["coding"][0]["code"] == "esketamine"
    # The clinic's validity period (365 days, a clinic default) ends the permission.
    expires = (today - timedelta(days=3) + timedelta(days=365)).isoformat()
    assert esk["provision"] == {"type": "permit", "period": {"start": signed, "end": expires}}
    # The form version signed is the policy; what was signed (the tablet record) is the source.
    form = clinic.consents["ann_esk"].template
    assert esk["policy"] == [{"uri": f"http://127.0.0.1:8000/consent-forms/{form.pk}/"}]
    assert "nasal spray" in esk["policyRule"]["text"] and "version 1" in esk["policyRule"]["text"]
    source = esk["sourceAttachment"]
    assert source["contentType"] == "text/html" and source["creation"] == signed
    assert source["url"].endswith(f"/patients/{clinic.ann.pk}/consents/{clinic.consents['ann_esk'].pk}/")
    assert "drawn signature" in source["title"]
    assert esk["performer"] == [{"reference": f"Patient/{clinic.ann.pk}"}]
    ket = read(h, f"Consent/{clinic.consents['ann_ket'].pk}")
    assert ket["status"] == "active"
    assert ket["provision"]["period"]["end"] == (today + timedelta(days=90)).isoformat()
    expired = read(h, f"Consent/{clinic.consents['ann_old'].pk}")
    assert expired["status"] == "inactive"  # expired 35 days ago
    withdrawn = read(h, f"Consent/{clinic.consents['ben_esk'].pk}")
    assert withdrawn["status"] == "inactive"
    assert withdrawn["provision"]["period"]["end"] == (today - timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    "query,expected",
    [
        ({"status": "active"}, ["ann_esk", "ann_ket", "ben_ket"]),
        ({"status": "http://hl7.org/fhir/consent-state-codes|inactive"}, ["ann_old", "ben_esk"]),
        ({"status": "active,inactive"}, ["ann_old", "ann_esk", "ann_ket", "ben_ket", "ben_esk"]),
        ({"patient": "{ben}"}, ["ben_ket", "ben_esk"]),
        ({"date": "lt{today-30}"}, ["ann_old"]),
        ({"category": CONSENT_CATEGORY}, ["ann_old", "ann_esk", "ann_ket", "ben_ket", "ben_esk"]),
        ({"scope": "treatment"}, ["ann_old", "ann_esk", "ann_ket", "ben_ket", "ben_esk"]),
        ({"scope": "research"}, []),
    ],
)
def test_consent_search(clinic: Any, h: dict[str, str], query: dict[str, str], expected: list[str]) -> None:
    values = {"ben": str(clinic.ben.pk), "today-30": (timezone.localdate() - timedelta(days=30)).isoformat()}
    params = {k: v.format(**values) for k, v in query.items()}
    # Sorted by signing date, then id: the old consent first, then the four signed 3 days ago in entry order.
    assert ids(h, f"/fhir/Consent?{urlencode({**params, '_sort': 'date'})}") == cons(clinic, *expected)


def test_consent_has_no_subject_parameter(clinic: Any, h: dict[str, str]) -> None:
    from django.test import Client

    response = Client().get(f"/fhir/Consent?subject={clinic.ben.pk}", **h)
    assert response.status_code == 400  # R4 Consent is searched by patient


def test_a_scanned_consent_points_at_its_form_version_and_scan_and_a_withdrawal_moves_last_updated(
    h: dict[str, str], nurse: Any, prescriber: Any, patient: Any
) -> None:
    from fhir.resources.R4B.consent import Consent as FhirConsent

    from ketaclinic.consent import services as consents

    form = consents.current_template(
        organization_id=patient.organization_id, drug="ketamine", route="sublingual"
    )
    pdf = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
    signed_on = timezone.localdate(timezone.now(), patient.site.zone) - timedelta(days=2)
    row = consents.record_consent(
        user=nurse,
        patient=patient,
        template=form,
        signed_on=signed_on,
        evidence=consents.SignedScan(data=pdf, content_type="application/pdf", filename="paper.pdf"),
        witness=prescriber,
    )
    resource = read(h, f"Consent/{row.pk}")
    FhirConsent.model_validate(resource)  # valid R4 (ppc-1: policy and policyRule)
    assert resource["status"] == "active"
    assert resource["policy"] == [{"uri": f"http://127.0.0.1:8000/consent-forms/{form.pk}/"}]
    assert "under the tongue (sublingual)" in resource["policyRule"]["text"]
    assert resource["sourceAttachment"] == {
        "contentType": "application/pdf",
        "url": f"http://127.0.0.1:8000/patients/{patient.pk}/consents/{row.pk}/document/",
        "size": len(pdf),
        "title": f"Signed consent form ({form.title}, version 1)",
        "creation": signed_on.isoformat(),
    }
    before = resource["meta"]["lastUpdated"]
    with time_machine.travel(timezone.now() + timedelta(minutes=5)):
        consents.withdraw_consent(
            user=nurse,
            consent=row,
            withdrawn_on=signed_on + timedelta(days=1),
            reason="Patient wants to stop",
        )
    resource = read(h, f"Consent/{row.pk}")
    assert resource["status"] == "inactive" and resource["meta"]["lastUpdated"] > before
    assert resource["provision"]["period"]["end"] == (signed_on + timedelta(days=1)).isoformat()
