"""CarePlan from treatment plans: course mapping, activity and plan statuses, search parameters, isolation.

Data: tests/fhir/courses.py (Cara's IV ketamine plan ``iv-trd-elektd`` from next Monday; another
organization's plan).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.core import management
from django.test import Client
from django.utils import timezone
from tests.fhir.conftest import ids, iso, read, search
from tests.treatment.conftest import complete_intake

from ketaclinic.assessment import services as assessment
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.core import jobs
from ketaclinic.interop.fhir.resources.care_plan import activity_status, plan_status
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.models import Plan, PlanSession

PROTOCOL = "https://ketaclinic.org/fhir/CodeSystem/protocol"


@pytest.fixture
def h(org: Any, bearer: Any) -> dict[str, str]:
    return bearer(org)


def sessions(plan: Any) -> list[Any]:
    return list(PlanSession.objects.filter(plan=plan).order_by("number"))


def start_treatment(nurse: Any, row: Any) -> Any:
    """The chairside session for a course session, as the plan page's "start" button opens it."""
    return chairside.schedule_session(
        user=nurse,
        patient=row.patient,
        protocol_id=row.plan.protocol_key,
        scheduled_at=row.start,
        planned_dose_mg=row.plan.dose_mg,
        chair=row.chair,
        planned_session_id=row.pk,
    )


@pytest.mark.parametrize(
    "session_status,treatment,expected",
    [
        ("booked", None, ("scheduled", "")),
        ("cancelled", None, ("cancelled", "")),
        ("missed", None, ("cancelled", "Missed")),
        ("booked", ("scheduled", False, ""), ("scheduled", "")),
        ("booked", ("checked_in", False, ""), ("in-progress", "")),
        ("booked", ("recovery", True, ""), ("in-progress", "")),
        ("booked", ("discharged", True, ""), ("completed", "")),
        ("booked", ("stopped", True, "Felt unwell"), ("stopped", "Felt unwell")),
        ("booked", ("stopped", False, "No escort"), ("cancelled", "No escort")),
    ],
)
def test_activity_status(session_status: str, treatment: Any, expected: tuple[str, str]) -> None:
    linked = None
    if treatment is not None:
        status, dosed, reason = treatment
        linked = SimpleNamespace(
            status=status, dose_started_at=timezone.now() if dosed else None, stop_reason=reason
        )
    assert activity_status(session_status, linked) == expected


@pytest.mark.parametrize(
    "status,has_open,expected",
    [("cancelled", True, "revoked"), ("active", True, "active"), ("active", False, "completed")],
)
def test_plan_status(status: str, has_open: bool, expected: str) -> None:
    assert plan_status(status, has_open) == expected


def test_plan_maps_to_a_care_plan(courses: Any, h: dict[str, str], site: Any) -> None:
    plan, rows = courses.plan, sessions(courses.plan)
    body = read(h, f"CarePlan/{plan.pk}")
    assert body["status"] == "active" and body["intent"] == "plan"
    assert body["meta"] == {
        "versionId": "1",
        "lastUpdated": iso(plan.created_at),
        "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan"],
    }
    # US Core CarePlan: the assess-plan category and a generated narrative (issue 16 point 5).
    assert body["category"] == [
        {
            "coding": [
                {
                    "system": "http://hl7.org/fhir/us/core/CodeSystem/careplan-category",
                    "code": "assess-plan",
                    "display": "Assessment and Plan of Treatment",
                }
            ]
        }
    ]
    assert body["text"]["status"] == "generated"
    div = body["text"]["div"]
    assert div.startswith('<div xmlns="http://www.w3.org/1999/xhtml">') and body["title"] in div
    assert div.count("<li>") == len(rows) and courses.cara.family_name not in div
    assert body["subject"] == {"reference": f"Patient/{courses.cara.pk}"}
    assert body["title"] == f"{plan.protocol.name} (protocol iv-trd-elektd, version 1)"
    assert f"{len(rows)} sessions" in body["description"]
    assert f"{plan.dose_mg:g} mg" in body["description"]
    assert body["period"] == {"start": iso(rows[0].start), "end": iso(rows[-1].end)}
    assert body["created"] == iso(plan.created_at)
    assert body["author"] == {"display": plan.created_by.display_name}
    # Cara's indication is TRD: the plan addresses her TRD Condition, which resolves.
    assert body["addresses"] == [{"reference": f"Condition/{courses.cara_intake.pk}-trd"}]
    read(h, body["addresses"][0]["reference"])
    assert len(body["activity"]) == len(rows) > 1
    for activity, row in zip(body["activity"], rows, strict=True):
        detail = activity["detail"]
        assert detail["kind"] == "Appointment"
        assert detail["status"] == "scheduled"
        assert detail["scheduledPeriod"] == {"start": iso(row.start), "end": iso(row.end)}
        assert detail["code"]["coding"][0]["system"] == PROTOCOL
        assert detail["code"]["coding"][0]["code"] == "iv-trd-elektd"
        assert detail["description"].startswith(f"Session {row.number} of {len(rows)}: {row.phase_name}")
        assert row.dose_text in detail["description"]
        assert detail["location"] == {"display": site.name}
        assert detail["productCodeableConcept"]["coding"][-1]["code"] == "ketamine"
        assert "outcomeReference" not in activity


def test_addresses_follow_the_latest_intake(
    courses: Any, h: dict[str, str], nurse: Any, make_patient: Any
) -> None:
    # A test device: the plan is moved to other patients to see its addresses follow their intakes.
    Plan.objects.filter(pk=courses.plan.pk).update(patient=courses.dan)
    body = read(h, f"CarePlan/{courses.plan.pk}")
    assert body["addresses"] == [{"reference": f"Condition/{courses.dan_intake.pk}-128200000"}]  # CRPS
    # An intake naming no indication: every Condition of it.
    v3 = assessment.save_intake(
        user=nurse,
        patient=courses.dan,
        data=complete_intake(indication=None, diagnoses=["ptsd", "fibromyalgia"]),
        base_version=2,
    )
    body = read(h, f"CarePlan/{courses.plan.pk}")
    assert body["addresses"] == [
        {"reference": f"Condition/{v3.pk}-47505003"},
        {"reference": f"Condition/{v3.pk}-203082005"},
    ]
    Plan.objects.filter(pk=courses.plan.pk).update(patient=make_patient(nurse, given_name="Eve"))
    assert "addresses" not in read(h, f"CarePlan/{courses.plan.pk}")  # no intake, no Condition


def test_activities_follow_the_sessions(courses: Any, h: dict[str, str], nurse: Any) -> None:
    rows = sessions(courses.plan)
    first = start_treatment(nurse, rows[0])
    body = read(h, f"CarePlan/{courses.plan.pk}")
    assert body["activity"][0]["detail"]["status"] == "scheduled"
    assert body["activity"][0]["outcomeReference"] == [{"reference": f"Encounter/{first.pk}"}]
    read(h, f"Encounter/{first.pk}")
    checked_in = timezone.now().replace(microsecond=0) + timedelta(minutes=5)
    chairside.transition(user=nurse, session=first, to="checked_in", at=checked_in)
    body = read(h, f"CarePlan/{courses.plan.pk}")
    assert body["activity"][0]["detail"]["status"] == "in-progress"
    assert body["meta"]["lastUpdated"] == iso(checked_in)  # the linked session's last change
    treatment.mark_session_missed(user=nurse, session=rows[1], worsening=False, reason="Car broke down")
    first.refresh_from_db()
    chairside.transition(user=nurse, session=first, to="stopped", reason="No escort arrived")
    body = read(h, f"CarePlan/{courses.plan.pk}")
    assert body["activity"][0]["detail"]["status"] == "cancelled"  # stopped before any dose
    assert body["activity"][0]["detail"]["statusReason"] == {"text": "No escort arrived"}
    assert body["activity"][1]["detail"]["status"] == "cancelled"
    assert body["activity"][1]["detail"]["statusReason"] == {"text": "Missed"}
    assert {a["detail"]["status"] for a in body["activity"][2:]} == {"scheduled"}
    assert body["status"] == "active"  # sessions 3.. remain


def test_plan_status_and_status_search(courses: Any, h: dict[str, str], nurse: Any, prescriber: Any) -> None:
    plan = courses.plan
    assert ids(h, "/fhir/CarePlan?status=active") == [str(plan.pk)]
    assert ids(h, "/fhir/CarePlan?status=completed,revoked") == []
    # Every booked session carried out (discharged): completed. A shortcut: the discharge checklist is
    # tested in tests/chairside; here only the linked status matters.
    for row in sessions(plan):
        start_treatment(nurse, row)
    TreatmentSession.objects.filter(planned_session_id__in=[r.pk for r in sessions(plan)]).update(
        status="discharged"
    )
    assert read(h, f"CarePlan/{plan.pk}")["status"] == "completed"
    assert {a["detail"]["status"] for a in read(h, f"CarePlan/{plan.pk}")["activity"]} == {"completed"}
    assert ids(h, "/fhir/CarePlan?status=completed") == [str(plan.pk)]
    assert ids(h, "/fhir/CarePlan?status=active") == []
    stopped = treatment.stop_course(
        user=prescriber, plan=Plan.objects.get(pk=plan.pk), reason="Remission; patient moving away"
    )
    assert stopped.cancelled == [] and len(stopped.open_at_chair) == len(sessions(plan))
    body = read(h, f"CarePlan/{plan.pk}")
    assert body["status"] == "revoked"
    assert body["note"] == [
        {"time": iso(stopped.plan.stopped_at), "text": "Course stopped: Remission; patient moving away"}
    ]
    assert body["meta"]["lastUpdated"] == iso(stopped.plan.stopped_at)
    assert ids(h, "/fhir/CarePlan?status=http://hl7.org/fhir/request-status|revoked") == [str(plan.pk)]
    assert ids(h, "/fhir/CarePlan?status=completed") == []


def test_date_patient_id_and_last_updated_searches(courses: Any, h: dict[str, str]) -> None:
    plan, rows = courses.plan, sessions(courses.plan)
    first, last = rows[0].start, rows[-1].end
    me = [str(plan.pk)]
    day_before = (first - timedelta(days=1)).date().isoformat()
    day_after_last = (last + timedelta(days=1)).date().isoformat()
    # eq: the searched interval must contain the whole course.
    assert ids(h, f"/fhir/CarePlan?date={first.date().isoformat()}") == []
    assert ids(h, f"/fhir/CarePlan?date=ge{day_before}&date=le{day_after_last}") == me
    # ge/gt: the course overlaps the time from the value on; le/lt: up to the value.
    assert ids(h, f"/fhir/CarePlan?date=ge{iso(last - timedelta(minutes=1))}") == me
    assert ids(h, f"/fhir/CarePlan?date=gt{day_after_last}") == []
    # le (issue 16: the R4 table): the range before the day, or the day containing the course; the course
    # starts within that day, so neither: le the day after the first session's day reaches it.
    assert ids(h, f"/fhir/CarePlan?date=le{first.date().isoformat()}") == []
    assert ids(h, f"/fhir/CarePlan?date=le{(first + timedelta(days=1)).date().isoformat()}") == me
    assert ids(h, f"/fhir/CarePlan?date=lt{iso(first)}") == []
    assert ids(h, f"/fhir/CarePlan?patient={courses.cara.pk}") == me
    assert ids(h, f"/fhir/CarePlan?subject=Patient/{courses.dan.pk}") == []
    assert ids(h, f"/fhir/CarePlan?_id={plan.pk}") == me
    hour_ago = iso(timezone.now() - timedelta(hours=1))
    assert ids(h, f"/fhir/CarePlan?_lastUpdated=ge{hour_ago}") == me
    assert ids(h, f"/fhir/CarePlan?_lastUpdated=lt{hour_ago}") == []
    assert ids(h, "/fhir/CarePlan?intent=plan&_sort=-date") == me
    assert ids(h, "/fhir/CarePlan?intent=order") == []


def test_another_organizations_plans_are_invisible(
    courses: Any, h: dict[str, str], other_org: Any, bearer: Any, org: Any
) -> None:
    theirs = str(courses.theirs_plan.pk)
    assert Client().get(f"/fhir/CarePlan/{theirs}", **h).status_code == 404
    assert ids(h, f"/fhir/CarePlan?_id={theirs}") == []
    assert ids(h, f"/fhir/CarePlan?patient={courses.theirs_patient.pk}") == []
    assert ids(h, "/fhir/CarePlan") == [str(courses.plan.pk)]
    other = bearer(other_org)
    assert ids(other, "/fhir/CarePlan") == [theirs]
    body = read(other, f"CarePlan/{theirs}")
    assert body["addresses"] == [{"reference": f"Condition/{courses.theirs_intake.pk}-trd"}]
    assert Client().get(f"/fhir/CarePlan/{courses.plan.pk}", **other).status_code == 404
    dan = bearer(org, "patient/*.rs", patient=courses.dan)
    assert ids(dan, "/fhir/CarePlan") == []
    assert Client().get(f"/fhir/CarePlan/{courses.plan.pk}", **dan).status_code == 404


ASYNC = {"HTTP_PREFER": "respond-async"}


def test_everything_includes_conditions_and_plans(courses: Any, h: dict[str, str]) -> None:
    body = search(h, f"/fhir/Patient/{courses.cara.pk}/$everything")
    # Cara: 4 Conditions (MDD, suicidal ideation, PTSD, TRD) and her plan; no sessions or scales yet.
    assert Counter(e["resource"]["resourceType"] for e in body["entry"]) == {
        "Patient": 1,
        "Condition": 4,
        "CarePlan": 1,
    }
    body = search(h, f"/fhir/Patient/{courses.dan.pk}/$everything")
    assert Counter(e["resource"]["resourceType"] for e in body["entry"]) == {"Patient": 1, "Condition": 3}


def test_export_includes_conditions_and_plans(
    courses: Any, org: Any, h: dict[str, str], bearer: Any, tmp_path: Any
) -> None:
    expected = {
        "Patient": 2,
        "Condition": 7,  # Cara 4 + Dan 3 (his latest intake only); the other organization's: none
        "Observation": 0,
        "QuestionnaireResponse": 0,
        "MedicationAdministration": 0,
        "Encounter": 0,
        "CarePlan": 1,
        "AdverseEvent": 0,
        "Consent": 0,
        "Device": 0,  # no monitor registered here (tests/fhir/test_device_data.py)
    }
    kickoff = Client().get("/fhir/$export", **h, **ASYNC)
    assert kickoff.status_code == 202
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **h).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == expected
    plan_file = next(o["url"] for o in manifest["output"] if o["type"] == "CarePlan")
    lines = Client().get(plan_file, **h).content.decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [str(courses.plan.pk)]
    out = StringIO()
    management.call_command("fhir_export", str(tmp_path), org="owner", json=True, stdout=out)
    assert json.loads(out.getvalue()) == expected
    later = iso(timezone.now() + timedelta(minutes=1))
    kickoff = Client().get(f"/fhir/$export?_type=Condition,CarePlan&_since={later}", **h, **ASYNC)
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **h).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Condition": 0, "CarePlan": 0}
    dan = bearer(org, "patient/*.rs", patient=courses.dan)
    kickoff = Client().get("/fhir/Patient/$export?_type=Condition,CarePlan", **dan, **ASYNC)
    jobs.run_due_jobs()
    manifest = Client().get(kickoff["Content-Location"], **dan).json()
    assert {o["type"]: o["count"] for o in manifest["output"]} == {"Condition": 3, "CarePlan": 0}


def test_each_patient_disclosed_is_audited(courses: Any, h: dict[str, str]) -> None:
    for url, expected in (
        ("/fhir/Condition", {courses.cara.pk, courses.dan.pk}),
        ("/fhir/CarePlan", {courses.cara.pk}),
    ):
        before = AuditEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        search(h, url)
        rows = list(AuditEntry.objects.filter(seq__gt=before))
        assert {r.patient_id for r in rows} == expected and len(rows) == len(expected), url
        assert all(r.action == "query" and r.client == "fhir" for r in rows)


@pytest.mark.parametrize(
    "rtype,params",
    [
        (
            "Condition",
            {
                "_id",
                "_lastUpdated",
                "patient",
                "subject",
                "code",
                "category",
                "clinical-status",
                "verification-status",
                "recorded-date",
            },
        ),
        ("CarePlan", {"_id", "_lastUpdated", "patient", "subject", "date", "status", "intent", "category"}),
    ],
)
def test_capability_statement_lists_them(db: Any, rtype: str, params: set[str]) -> None:
    rest = Client().get("/fhir/metadata").json()["rest"][0]
    entry = next(r for r in rest["resource"] if r["type"] == rtype)
    assert {p["name"] for p in entry["searchParam"]} == params
    assert {i["code"] for i in entry["interaction"]} == {"read", "search-type"}
    scopes = Client().get("/fhir/.well-known/smart-configuration").json()["scopes_supported"]
    assert f"system/{rtype}.rs" in scopes
