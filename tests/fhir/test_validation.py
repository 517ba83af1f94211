"""Every document the API emits validates against the fhir.resources R4B models (interop.md §2.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import management
from django.test import Client
from fhir.resources.R4B.adverseevent import AdverseEvent
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.careplan import CarePlan
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.medicationadministration import MedicationAdministration
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from tests.fhir.conftest import at

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import profiles
from ketaclinic.interop.fhir.resources import REGISTRY

MODELS: dict[str, Any] = {
    "Patient": Patient,
    "Condition": Condition,
    "Observation": Observation,
    "QuestionnaireResponse": QuestionnaireResponse,
    "MedicationAdministration": MedicationAdministration,
    "Encounter": Encounter,
    "CarePlan": CarePlan,
    "AdverseEvent": AdverseEvent,
    "Consent": Consent,
    "Questionnaire": Questionnaire,
    "Device": Device,
}


def test_every_registered_type_has_a_model_here() -> None:
    assert set(REGISTRY) == set(MODELS)


@pytest.fixture
def full_patient(nurse: Any, make_patient: Any, record_scale: Any) -> Any:
    """A patient with every optional field filled and one administration of every instrument."""
    patient = make_patient(
        nurse,
        phone="555-0100",
        email="testa@example.org",
        address="1 Main Street",
        emergency_contact_name="Robin",
        emergency_contact_phone="555-0199",
        emergency_contact_relation="sister",
    )
    for n, code in enumerate(INSTRUMENTS):
        record_scale(nurse, patient, code, _lowest_valid_answers(code), at(1 + n))
    return patient


def _lowest_valid_answers(code: str) -> dict[str, int]:
    """Every item that is always asked at its lowest value (skip-logic items stay unasked)."""
    return {item.id: item.low for item in INSTRUMENTS[code].items if item.asked_if is None}


@pytest.fixture
def monitored(org: Any, site: Any, nurse: Any, make_patient: Any) -> Any:
    """A registered monitor and a patient it measured: every stored kind, one value implausible
    (tests/fhir/device_feed.py): the Device and the monitor Observations (issue 16 point 3)."""
    from tests.fhir.device_feed import EUI, feed, message
    from tests.monitoring.conftest import register_monitor

    patient = make_patient(nurse, mrn="V1", given_name="Vera")
    register_monitor(org, EUI, label="Bay 1")
    feed(org, site, message(at=at(2), mrn="V1"))
    return patient


def _validate(doc: dict[str, Any]) -> None:
    model = {**MODELS, "Bundle": Bundle, "OperationOutcome": OperationOutcome}[doc["resourceType"]]
    model.model_validate(doc)
    assert profiles.check(doc) == [], doc["id"]


def test_resources_and_bundles_validate(
    org: Any, full_patient: Any, clinic: Any, courses: Any, bearer: Any, monitored: Any
) -> None:
    """Every resource of every type, searched and read, including each session state and reading kind
    (tests/fhir/sessions.py) and the intakes' Conditions and the plans (tests/fhir/courses.py)."""
    headers = bearer(org)
    seen: set[str] = set()
    for name in REGISTRY:
        bundle = Client().get(f"/fhir/{name}?_count=100", **headers).json()
        Bundle.model_validate(bundle)
        assert bundle["entry"], name
        for entry in bundle["entry"]:
            resource = entry["resource"]
            _validate(resource)
            single = Client().get(f"/fhir/{name}/{resource['id']}", **headers).json()
            _validate(single)
            seen.add(name)
    assert seen == set(REGISTRY)
    everything = Client().get(f"/fhir/Patient/{full_patient.pk}/$everything", **headers).json()
    Bundle.model_validate(everything)
    # 13 instruments: 13 QuestionnaireResponses; C-SSRS screener and BPI-SF have no total → 11 scores.
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert (kinds.count("QuestionnaireResponse"), kinds.count("Observation")) == (13, 11)
    for patient in (clinic.ann, clinic.ben, courses.cara, courses.dan, monitored):
        everything = Client().get(f"/fhir/Patient/{patient.pk}/$everything", **headers).json()
        Bundle.model_validate(everything)
        for entry in everything["entry"]:
            _validate(entry["resource"])


def test_r4_elements_survive_the_r4b_model(org: Any, clinic: Any, bearer: Any) -> None:
    """The R4 elements the mapping relies on are real R4B elements (not silently dropped on validation)."""
    headers = bearer(org)
    start = Client().get(f"/fhir/MedicationAdministration/{clinic.doses['slower'].pk}", **headers).json()
    model = MedicationAdministration.model_validate(start)
    assert model.context is not None and model.context.reference == f"Encounter/{clinic.sessions['iv'].pk}"
    assert model.effectivePeriod is not None and model.dosage is not None
    assert model.dosage.rateQuantity is not None and model.dosage.rateQuantity.code == "mL/h"
    encounter = Encounter.model_validate(
        Client().get(f"/fhir/Encounter/{clinic.sessions['iv'].pk}", **headers).json()
    )
    assert encounter.class_fhir.code == "AMB"
    assert encounter.extension is not None and encounter.extension[0].valueString
    event = AdverseEvent.model_validate(
        Client().get(f"/fhir/AdverseEvent/{clinic.events['dissociation'].pk}", **headers).json()
    )
    assert event.suspectEntity is not None and event.actuality == "actual"
    consent = Consent.model_validate(
        Client().get(f"/fhir/Consent/{clinic.consents['ann_ket'].pk}", **headers).json()
    )
    assert consent.policyRule is not None and consent.provision is not None


def test_condition_and_care_plan_elements_survive_the_r4b_model(
    org: Any, courses: Any, bearer: Any, nurse: Any
) -> None:
    from tests.fhir.test_care_plan import sessions, start_treatment

    headers = bearer(org)
    trd = Condition.model_validate(
        Client().get(f"/fhir/Condition/{courses.cara_intake.pk}-trd", **headers).json()
    )
    assert trd.recordedDate is not None and trd.verificationStatus is not None
    assert trd.code is not None and [c.code for c in trd.code.coding or []] == ["370143000", "trd"]
    first = start_treatment(nurse, sessions(courses.plan)[0])
    plan = CarePlan.model_validate(Client().get(f"/fhir/CarePlan/{courses.plan.pk}", **headers).json())
    assert plan.period is not None and plan.addresses is not None and plan.activity is not None
    activity = plan.activity[0]
    assert activity.outcomeReference is not None
    assert activity.outcomeReference[0].reference == f"Encounter/{first.pk}"
    detail = activity.detail
    assert detail is not None and detail.kind == "Appointment" and detail.scheduledPeriod is not None
    assert detail.productCodeableConcept is not None and detail.description


def test_capability_statement_and_outcomes_validate(db: Any) -> None:
    capability = Client().get("/fhir/metadata").json()
    CapabilityStatement.model_validate(capability)
    assert capability["fhirVersion"] == "4.0.1"
    rest = capability["rest"][0]
    assert [r["type"] for r in rest["resource"]] == list(REGISTRY)
    observation = next(r for r in rest["resource"] if r["type"] == "Observation")
    assert {p["name"] for p in observation["searchParam"]} == {
        "_id",
        "_lastUpdated",
        "patient",
        "subject",
        "code",
        "date",
        "category",
        "component-code",
        "combo-code",
        "device",
        "encounter",  # issue 16: reference parameters for _include/_revinclude
        "derived-from",
    }
    assert "Observation:patient" in observation["searchInclude"]
    assert "Observation:encounter" in observation["searchInclude"]
    assert {i["code"] for i in observation["interaction"]} == {"read", "search-type"}
    for url in ("/fhir/Patient", "/fhir/Nothing"):
        OperationOutcome.model_validate(Client().get(url).json())


def test_error_outcomes_validate(org: Any, bearer: Any) -> None:
    headers = bearer(org, "system/Patient.rs")
    for url, status in (("/fhir/Patient?bogus=1", 400), ("/fhir/Observation", 403), ("/fhir/Patient/x", 404)):
        response = Client().get(url, **headers)
        assert response.status_code == status
        OperationOutcome.model_validate(response.json())


def test_ndjson_lines_validate(
    org: Any, full_patient: Any, clinic: Any, courses: Any, monitored: Any, tmp_path: Any
) -> None:
    management.call_command("fhir_export", str(tmp_path), org="owner", json=True)
    for name, model in MODELS.items():
        if REGISTRY[name].definitions is not None:  # Questionnaire: definitions, not exported
            assert not (tmp_path / f"{name}.ndjson").exists()
            continue
        lines = (tmp_path / f"{name}.ndjson").read_text().splitlines()
        assert lines, name
        for line in lines:
            model.model_validate(json.loads(line))
