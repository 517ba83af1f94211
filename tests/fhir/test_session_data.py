"""Session resources under the same rules as the rest: organizations never cross, scopes narrow, every
disclosure is audited per patient, ``$everything`` and ``$export`` include them."""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO
from typing import Any

import pytest
from django.core import management
from django.test import Client
from tests.fhir.conftest import ids, iso, search

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core import jobs

SESSION_TYPES = ("Encounter", "MedicationAdministration", "AdverseEvent", "Consent")
ASYNC = {"HTTP_PREFER": "respond-async"}


def theirs(clinic: Any) -> dict[str, str]:
    """One id of each session type belonging to the other organization."""
    return {
        "Encounter": str(clinic.sessions["theirs"].pk),
        "Observation": f"vs-{clinic.readings['theirs'].pk}-bp",
        "MedicationAdministration": str(clinic.doses["theirs"].pk),
        "AdverseEvent": str(clinic.events["theirs"].pk),
        "Consent": str(clinic.consents["theirs"].pk),
    }


def test_another_organizations_sessions_are_invisible(
    clinic: Any, org: Any, other_org: Any, bearer: Any
) -> None:
    ours = bearer(org)
    for rtype, fhir_id in theirs(clinic).items():
        assert Client().get(f"/fhir/{rtype}/{fhir_id}", **ours).status_code == 404, rtype
        assert fhir_id not in ids(ours, f"/fhir/{rtype}?_count=100"), rtype
        assert ids(ours, f"/fhir/{rtype}?_id={fhir_id}") == [], rtype
        assert ids(ours, f"/fhir/{rtype}?patient={clinic.theirs_patient.pk}") == [], rtype
    # And the other way round: their token sees their session data only.
    other = bearer(other_org)
    assert ids(other, "/fhir/Encounter") == [str(clinic.sessions["theirs"].pk)]
    assert ids(other, "/fhir/MedicationAdministration") == [str(clinic.doses["theirs"].pk)]
    assert ids(other, "/fhir/AdverseEvent") == [str(clinic.events["theirs"].pk)]
    assert ids(other, "/fhir/Consent") == [str(clinic.consents["theirs"].pk)]
    # Their reading: BP, HR, SpO2, RR.
    assert len(ids(other, "/fhir/Observation")) == 4
    assert Client().get(f"/fhir/Encounter/{clinic.sessions['esk'].pk}", **other).status_code == 404


def test_a_patient_token_sees_its_own_sessions_only(clinic: Any, org: Any, bearer: Any) -> None:
    ben = bearer(org, "patient/*.rs", patient=clinic.ben)
    assert ids(ben, "/fhir/Encounter") == [str(clinic.sessions["running"].pk)]
    assert ids(ben, "/fhir/Observation") == [f"vs-{clinic.readings['ben'].pk}-bp"]
    assert ids(ben, "/fhir/MedicationAdministration") == [str(clinic.doses["running"].pk)]
    assert ids(ben, "/fhir/AdverseEvent") == []
    assert sorted(ids(ben, "/fhir/Consent")) == sorted(
        str(clinic.consents[k].pk) for k in ("ben_ket", "ben_esk")
    )
    for path in (
        f"Encounter/{clinic.sessions['esk'].pk}",
        f"MedicationAdministration/{clinic.doses['d1'].pk}",
        f"AdverseEvent/{clinic.events['bp'].pk}",
        f"Consent/{clinic.consents['ann_esk'].pk}",
        f"Observation/vs-{clinic.readings['pre'].pk}-hr",
    ):
        assert Client().get(f"/fhir/{path}", **ben).status_code == 404, path


def test_scopes_narrow_by_type_and_user_role(
    clinic: Any, org: Any, bearer: Any, nurse: Any, front_desk: Any
) -> None:
    encounters_only = bearer(org, "system/Encounter.rs")
    assert len(ids(encounters_only, "/fhir/Encounter")) == 5
    for rtype in ("MedicationAdministration", "AdverseEvent", "Consent", "Observation"):
        assert Client().get(f"/fhir/{rtype}", **encounters_only).status_code == 403, rtype
    as_nurse = bearer(org, "user/*.rs", acting_user=nurse)
    assert len(ids(as_nurse, "/fhir/MedicationAdministration")) == 6
    as_front_desk = bearer(org, "user/*.rs", acting_user=front_desk)
    for rtype in SESSION_TYPES:
        assert Client().get(f"/fhir/{rtype}", **as_front_desk).status_code == 403, rtype  # clinicians only


def test_each_patient_disclosed_is_audited(clinic: Any, org: Any, make_client: Any) -> None:
    from tests.fhir.conftest import get_token

    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    for rtype, expected in (
        ("Observation?category=vital-signs", {clinic.ann.pk, clinic.ben.pk}),
        ("MedicationAdministration", {clinic.ann.pk, clinic.ben.pk}),
        ("Encounter?status=finished", {clinic.ann.pk}),
        ("AdverseEvent", {clinic.ann.pk}),
        ("Consent?patient=" + str(clinic.ben.pk), {clinic.ben.pk}),
    ):
        before = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        search(headers, f"/fhir/{rtype}")
        rows = list(AuditEntry.objects.filter(seq__gt=before))
        assert {r.patient_id for r in rows} == expected, rtype
        assert len(rows) == len(expected)  # one row per patient, not per resource
        assert all(
            r.action == "query" and r.client == "fhir" and api_client.client_id in r.detail for r in rows
        )
    before = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
    Client().get(f"/fhir/MedicationAdministration/{clinic.doses['slower'].pk}", **headers)
    (row,) = AuditEntry.objects.filter(seq__gt=before)
    assert row.patient_id == clinic.ann.pk and row.object_type == "MedicationAdministration"


def test_everything_includes_the_sessions(clinic: Any, org: Any, bearer: Any) -> None:
    body = search(bearer(org), f"/fhir/Patient/{clinic.ann.pk}/$everything")
    kinds = Counter(e["resource"]["resourceType"] for e in body["entry"])
    # Ann: 4 sessions; readings 7 + 6 + 4 + 4 + 4 + 4 = 29 Observations; 3 devices + 2 infusion segments;
    # 2 adverse events; 3 consents.
    assert kinds == {
        "Patient": 1,
        "Observation": 29,
        "MedicationAdministration": 5,
        "Encounter": 4,
        "AdverseEvent": 2,
        "Consent": 3,
    }
    assert body["total"] == 44
    refs = {
        e["resource"].get("subject", e["resource"].get("patient", {})).get("reference")
        for e in body["entry"][1:]
    }
    assert refs == {f"Patient/{clinic.ann.pk}"}


def test_export_includes_the_sessions(clinic: Any, org: Any, bearer: Any, tmp_path: Any) -> None:
    expected = {
        "Patient": 2,
        "Observation": 30,
        "QuestionnaireResponse": 0,
        "MedicationAdministration": 6,
        "Encounter": 5,
        "AdverseEvent": 2,
        "Consent": 5,
        "Condition": 0,  # no intakes here (tests/fhir/test_care_plan.py)
        "CarePlan": 0,
        "Device": 0,  # no monitor registered here (tests/fhir/test_device_data.py)
    }
    headers = bearer(org)
    kickoff = Client().get("/fhir/$export", **headers, **ASYNC)
    assert kickoff.status_code == 202
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **headers).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == expected  # the other organization's: none
    encounter_file = next(o["url"] for o in manifest["output"] if o["type"] == "Encounter")
    lines = Client().get(encounter_file, **headers).content.decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(
        str(clinic.sessions[k].pk) for k in ("esk", "iv", "planned", "cancelled", "running")
    )
    rows = AuditEntry.objects.filter(action="export", category="fhir", patient__isnull=False)
    assert {r.patient_id for r in rows} == {clinic.ann.pk, clinic.ben.pk}
    out = StringIO()
    management.call_command("fhir_export", str(tmp_path), org="owner", json=True, stdout=out)
    assert json.loads(out.getvalue()) == expected


def test_export_type_since_and_patient_filters(clinic: Any, org: Any, bearer: Any) -> None:
    headers = bearer(org)
    # _since compares the entry time: every dose was charted before t1 except the rate change and Ben's
    # infusion, charted after it.
    from datetime import timedelta

    from ketaclinic.chairside.models import Administration

    Administration.objects.update(recorded_at=clinic.t1 - timedelta(minutes=1))
    for key, entered in (("slower", clinic.t1 + timedelta(minutes=15)), ("running", clinic.t2)):
        Administration.objects.filter(pk=clinic.doses[key].pk).update(recorded_at=entered)
    kickoff = Client().get(
        f"/fhir/$export?_type=MedicationAdministration,Consent&_since={iso(clinic.t1)}", **headers, **ASYNC
    )
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **headers).json()
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {"MedicationAdministration": 2, "Consent": 5}  # consents were entered just now
    ben = bearer(org, "patient/*.rs", patient=clinic.ben)
    kickoff = Client().get("/fhir/Patient/$export", **ben, **ASYNC)
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **ben).json()
    counts = {o["type"]: o["count"] for o in manifest["output"]}
    assert counts == {
        "Patient": 1,
        "Observation": 1,
        "QuestionnaireResponse": 0,
        "MedicationAdministration": 1,
        "Encounter": 1,
        "AdverseEvent": 0,
        "Consent": 2,
        "Condition": 0,
        "CarePlan": 0,
        "Device": 0,  # no monitor registered here (tests/fhir/test_device_data.py)
    }


@pytest.mark.parametrize("rtype", SESSION_TYPES)
def test_capability_statement_lists_the_session_types(db: Any, rtype: str) -> None:
    rest = Client().get("/fhir/metadata").json()["rest"][0]
    entry = next(r for r in rest["resource"] if r["type"] == rtype)
    names = {p["name"] for p in entry["searchParam"]}
    assert {"_id", "_lastUpdated", "patient"} <= names
    assert {i["code"] for i in entry["interaction"]} == {"read", "search-type"}
