"""Conformance with third-party clients as the peer (issue 16 point 7).

A live server (``live_server``) holds a clinic built from an empty organization through the services
(tests/fhir/sessions.py, tests/fhir/courses.py and one administration of every rating scale): no demo
records. Two independent clients talk to it with a bearer token from the token endpoint:

* **fhirpy** (beda-software ``SyncFHIRClient``) searches every resource type the CapabilityStatement lists,
  following ``next`` links, runs the US Core 6.1.0 SHALL search combinations, and resolves every literal
  reference it finds;
* **fhirclient** (smart-on-fhir client-py 4.4, its ``FHIRServer`` with the token on its requests session)
  reads every resource by id and runs the same searches, parsing each one strictly with its own R4 (4.0.1)
  model classes (an unknown element, a wrong type or a missing required element raises).

Every resource returned is validated four ways: fhir.resources R4B (pydantic), fhirclient's R4 models, the
US Core checker (ketaclinic.interop.fhir.profiles) and the FHIRPath invariants of its profiles and base type
(``profiles.INVARIANTS``, the published expressions) evaluated by fhirpathpy; and its ``meta.profile`` must
be exactly the profiles of the CapabilityStatement's ``supportedProfile`` list for its type that it meets.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhirclient.server import FHIRServer
from fhirpathpy import evaluate
from fhirpathpy.models import models
from fhirpy import SyncFHIRClient
from tests.fhir.conftest import at, live_token

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import profiles

# The types this clinic has data for (a type added later is searched and validated too, empty or not).
WITH_DATA = {
    "Patient",
    "Condition",
    "Observation",
    "QuestionnaireResponse",
    "MedicationAdministration",
    "Encounter",
    "CarePlan",
    "AdverseEvent",
    "Consent",
    "Questionnaire",
}


@dataclass
class Peer:
    base: str
    fhirpy: SyncFHIRClient
    fhirclient: FHIRServer
    capability: dict[str, Any]

    @property
    def supported(self) -> dict[str, set[str]]:
        rest = self.capability["rest"][0]["resource"]
        return {r["type"]: set(r.get("supportedProfile", [])) for r in rest}


def _fhirclient_class(name: str) -> Any:
    return getattr(importlib.import_module(f"fhirclient.models.{name.lower()}"), name)


@pytest.fixture
def peer(live_server: Any, org: Any, make_client: Any) -> Peer:
    api_client, secret = make_client(org)
    token = live_token(live_server, api_client.client_id, secret)
    base = f"{live_server.url}/fhir"
    fhirpy_client = SyncFHIRClient(base, authorization=f"Bearer {token}")
    server = FHIRServer(None, base_uri=base)
    server.session.headers["Authorization"] = f"Bearer {token}"
    capability = fhirpy_client.execute("metadata", method="get")
    return Peer(base, fhirpy_client, server, capability)


@pytest.fixture
def clinic_data(clinic: Any, courses: Any, nurse: Any, record_scale: Any) -> Any:
    """The sessions and courses, and every rating scale answered once by Ann (lowest answers)."""
    for n, code in enumerate(INSTRUMENTS):
        answers = {i.id: i.low for i in INSTRUMENTS[code].items if i.asked_if is None}
        record_scale(nurse, clinic.ann, code, answers, at(1 + n))
    return clinic


def invariant_failures(resource: dict[str, Any]) -> list[str]:
    """The FHIRPath invariants (profiles.INVARIANTS, as published) that ``resource`` breaks, by fhirpathpy."""
    return [
        inv.key
        for inv in profiles.invariants_for(resource)
        if evaluate(resource, f"{inv.context}.all({inv.expression})", {}, models["r4"]) != [True]
    ]


def validate(resource: dict[str, Any], supported: dict[str, set[str]]) -> None:
    """fhir.resources R4B, fhirclient R4 (strict), US Core claims met and exactly the ones met, and the
    FHIRPath invariants of the claimed profiles and the base type true."""
    name = resource["resourceType"]
    get_fhir_model_class(name).model_validate(resource)
    parsed = _fhirclient_class(name)(resource, strict=True)
    assert parsed.id == resource["id"]
    claims = set(resource.get("meta", {}).get("profile", []))
    assert claims <= supported[name], (resource["id"], claims - supported[name])
    assert profiles.check(resource) == [], resource["id"]
    met = {p for p in supported[name] if not profiles.check_profile(resource, p)}
    assert claims == met, (resource["id"], claims, met)
    assert invariant_failures(resource) == [], resource["id"]


def _without_primitive_extensions(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_primitive_extensions(v) for k, v in node.items() if not k.startswith("_")}
    if isinstance(node, list):
        return [_without_primitive_extensions(v) for v in node]
    return node


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            yield from _references(value)
    elif isinstance(node, list):
        for value in node:
            yield from _references(value)


def test_capability_statement_parses_in_both_clients(live_server: Any, peer: Peer) -> None:
    get_fhir_model_class("CapabilityStatement").model_validate(peer.capability)
    statement = _fhirclient_class("CapabilityStatement")(peer.capability, strict=True)
    assert statement.fhirVersion == "4.0.1"
    assert statement.implementationGuide == [f"{profiles.US_CORE_IG}|{profiles.US_CORE_VERSION}"]
    assert set(peer.supported) >= {"Patient", "Observation", "QuestionnaireResponse", "Questionnaire"}


def test_every_listed_type_searched_and_read_by_both_clients(
    live_server: Any, peer: Peer, clinic_data: Any
) -> None:
    supported = peer.supported
    counts: dict[str, int] = {}
    for name in supported:
        # fhirpy: the whole search, page after page (pages of 7 so that most types span several pages)
        found = [r.serialize() for r in peer.fhirpy.resources(name).limit(7).fetch_all()]
        ids = [r["id"] for r in found]
        assert len(set(ids)) == len(ids), name
        assert found or name not in WITH_DATA, name
        # fhirclient: the same search through its own paging, parsed strictly into its R4 models
        cls = _fhirclient_class(name)
        pages = cls.where(struct={"_count": "7"}).perform_resources_iter(peer.fhirclient)
        assert sorted(r.id for r in pages) == sorted(ids), name
        for resource in found:
            validate(resource, supported)
            single = cls.read(resource["id"], peer.fhirclient)  # strict parse of the read
            # the same resource after fhirclient's round trip (which drops primitive extensions, _questionnaire)
            assert single.as_json() == _without_primitive_extensions(resource), (name, resource["id"])
        counts[name] = len(found)
    # 13 scales: 13 responses, 13 Questionnaires
    assert counts["QuestionnaireResponse"] >= 13 and counts["Questionnaire"] == 13
    assert set(counts) >= WITH_DATA


def test_us_core_shall_searches_through_fhirpy(live_server: Any, peer: Peer, clinic_data: Any) -> None:
    """The search combinations US Core 6.1.0 marks SHALL for the profiles claimed (Inferno 6.1.0 metadata),
    each answering only matching resources, each resource valid."""
    ann = f"Patient/{clinic_data.ann.pk}"
    client = peer.fhirpy
    patient = client.reference("Patient", str(clinic_data.ann.pk)).to_resource().serialize()
    identifier = patient["identifier"][0]
    by_identifier = client.resources("Patient").search(
        identifier=f"{identifier['system']}|{identifier['value']}"
    )
    assert [p["id"] for p in by_identifier.fetch_all()] == [patient["id"]]
    checks: list[tuple[str, dict[str, str], str]] = [
        ("Observation", {"patient": ann, "category": "vital-signs"}, "vital-signs"),
        ("Observation", {"patient": ann, "category": "survey"}, "survey"),
        ("Observation", {"patient": ann, "category": "vital-signs", "date": "ge2000-01-01"}, "vital-signs"),
        ("Observation", {"patient": ann, "code": "http://loinc.org|59408-5"}, "59408-5"),
        ("Observation", {"patient": ann, "code": "http://loinc.org|85354-9"}, "85354-9"),
        ("Observation", {"patient": ann, "code": "http://loinc.org|44261-6"}, "44261-6"),
        ("Encounter", {"patient": ann}, ""),
        ("Encounter", {"patient": ann, "date": "ge2000-01-01"}, ""),
        ("QuestionnaireResponse", {"patient": ann}, ""),
    ]
    courses_patient = f"Patient/{clinic_data.ann.pk}"
    for name, params, needle in checks:
        found = [r.serialize() for r in client.resources(name).search(**params).fetch_all()]
        assert found, (name, params)
        for resource in found:
            assert resource["subject"]["reference"] == courses_patient
            assert needle in str(resource), (name, params, resource["id"])
            validate(resource, peer.supported)


def test_us_core_shall_searches_for_conditions_and_care_plans(
    live_server: Any, peer: Peer, courses: Any
) -> None:
    cara = f"Patient/{courses.cara.pk}"
    care = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category|assess-plan"
    for name, params in (
        ("Condition", {"patient": cara, "category": "problem-list-item"}),
        ("Condition", {"patient": cara}),
        ("CarePlan", {"patient": cara, "category": care}),
    ):
        found = [r.serialize() for r in peer.fhirpy.resources(name).search(**params).fetch_all()]
        assert found, (name, params)
        for resource in found:
            assert resource["subject"]["reference"] == cara
            validate(resource, peer.supported)
    plans = peer.fhirpy.resources("CarePlan").search(patient=cara, category="assess-plan").fetch_all()
    assert [p["id"] for p in plans] == [str(courses.plan.pk)]


def test_every_reference_resolves(live_server: Any, peer: Peer, clinic_data: Any) -> None:
    """Every literal reference in every resource reads with fhirpy, and every questionnaire canonical is
    found by url with fhirclient (Inferno's reference-resolution step, in-repo)."""
    supported = peer.supported
    seen: set[str] = set()
    canonicals: set[str] = set()
    for name in supported:
        for resource in peer.fhirpy.resources(name).limit(100).fetch_all():
            data = resource.serialize()
            seen |= set(_references(data))
            if name == "QuestionnaireResponse":
                canonicals.add(data["questionnaire"])
    assert any(ref.startswith("QuestionnaireResponse/") for ref in seen)  # derivedFrom of the scores
    for ref in sorted(seen):
        target_type, _, target_id = ref.partition("/")
        target = peer.fhirpy.reference(target_type, target_id).to_resource().serialize()
        assert target["id"] == target_id
        validate(target, supported)
    questionnaire = _fhirclient_class("Questionnaire")
    for canonical in sorted(canonicals):
        url, _, version = canonical.partition("|")
        [found] = list(questionnaire.where(struct={"url": url}).perform_resources_iter(peer.fhirclient))
        assert (found.url, found.version) == (url, version)
    assert len(canonicals) == len(INSTRUMENTS)
