"""Per-session dose titration (issue 14, third bullet): a plan reused the day-1 dose for every session, so
esketamine could not be titrated 56 ↔ 84 mg.

Now a prescriber sets a booked session's dose (or that one's and every later one's) with a reason; it goes
through the one dose check for that session's own dose rule (clinical/dose_check.py): an amount the label
does not allow is refused, one outside the usual range stands on the prescriber's reason; the session opens
with that dose; the plan page shows each session's dose; audited. From an empty clinic, time frozen."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.opening import open_course_session
from ketaclinic.treatment.titration import set_session_dose

from .conftest import FormClient
from .test_plans import plan_data

WHY = "Partial response at 56 mg after two weeks"


@pytest.fixture
def esk(clinic: Any, prescriber: Any, patient: Any) -> Any:
    return services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label"))


def _doses(plan: Any) -> list[float]:
    return [s.planned_dose_mg for s in plan.sessions.select_related("plan").order_by("number")]


def test_esketamine_is_titrated_56_to_84_from_the_plan_page(
    esk: Any, nurse: Any, prescriber: Any, sign_in: Any
) -> None:
    assert _doses(esk) == [56.0] * 8
    third = esk.sessions.get(number=3)
    nurse_page = FormClient(sign_in, nurse)
    assert "Change dose" not in nurse_page.get(f"/plans/{esk.pk}/").content.decode()
    url = f"/plan-sessions/{third.pk}/dose/"
    assert nurse_page.post(url, {"dose_mg": "84", "reason": WHY}, follow=False).status_code == 403

    page = FormClient(sign_in, prescriber)
    text = page.post(url, {"dose_mg": "84", "reason": WHY, "later": "yes"}).content.decode()
    assert "Dose 84 mg set for sessions 3, 4, 5, 6, 7, 8." in text
    assert _doses(esk) == [56.0, 56.0] + [84.0] * 6
    plan_page = page.get(f"/plans/{esk.pk}/").content.decode()
    assert plan_page.count("<strong>84 mg</strong>") == 6 and plan_page.count("<strong>56 mg</strong>") == 2
    assert f"“{WHY}”" in plan_page
    refused = page.post(url, {"dose_mg": "70", "reason": WHY}).content.decode()
    assert (
        "Dose not changed: Session 3: 70 mg cannot be given: the allowed doses are 28, 56, 84 mg" in refused
    )
    assert _doses(esk)[2] == 84.0
    entries = AuditEntry.objects.filter(detail="session dose titrated").order_by("seq")
    assert entries.count() == 6 and json.loads(entries.first().before) == {"dose_mg": 56.0}
    assert json.loads(entries.first().after) == {"dose_mg": 84.0, "reason": WHY, "session": 3}


def test_outside_the_usual_range_needs_the_reason_and_a_hard_limit_refuses(esk: Any, prescriber: Any) -> None:
    first, second = esk.sessions.get(number=1), esk.sessions.get(number=2)
    with pytest.raises(services.PlanValidationError) as short:
        set_session_dose(user=prescriber, session=second, dose_mg=28, reason="tired")
    assert "at least 10 characters" in short.value.errors["reason"]
    set_session_dose(user=prescriber, session=second, dose_mg=28, reason="Sedation at 56 mg last time")
    # Day 1 is 56 mg on the label: 84 stands only on a reason; 70 mg is no esketamine dose at all.
    set_session_dose(
        user=prescriber, session=first, dose_mg=84, reason="Transferred from another clinic on 84"
    )
    with pytest.raises(services.PlanValidationError) as hard:
        set_session_dose(user=prescriber, session=first, dose_mg=70, reason=WHY)
    assert hard.value.errors["dose_mg"].startswith("Session 1: 70 mg cannot be given")
    assert _doses(esk)[:2] == [84.0, 28.0]


def test_the_session_opens_with_its_titrated_dose(
    esk: Any, nurse: Any, prescriber: Any, sign_in: Any, time_machine: Any
) -> None:
    second = esk.sessions.get(number=2)
    reason = "Sedation at 56 mg last time"
    set_session_dose(user=prescriber, session=second, dose_mg=28, reason=reason)
    time_machine.move_to(second.start - timedelta(hours=1), tick=False)
    opened, _new = open_course_session(user=nurse, session=second)
    assert float(opened.planned_dose_mg) == 28 and opened.session_number == 2
    assert opened.dose_override_reason == reason and opened.dose_decided_by == prescriber
    with pytest.raises(services.PlanValidationError, match="already open at the chair"):
        set_session_dose(user=prescriber, session=second, dose_mg=56, reason=WHY)
    assert TreatmentSession.objects.count() == 1


def test_api_and_an_iv_dose_within_its_limits(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())  # 0.5 mg/kg × 70 kg
    assert _doses(plan) == [35.0] * 6
    url = f"/api/treatment/plan-sessions/{plan.sessions.get(number=4).pk}/dose"
    api = FormClient(sign_in, prescriber)
    over = api.api(url, {"dose_mg": 80, "reason": WHY})  # 1.14 mg/kg: past the 1.0 mg/kg hard limit
    assert over.status_code == 422 and over.json()["detail"][0]["loc"] == ["body", "dose_mg"]
    assert "Session 4: " in over.json()["detail"][0]["msg"] and "1 mg/kg" in over.json()["detail"][0]["msg"]
    ok = api.api(url, {"dose_mg": 52.5, "reason": WHY, "later": True})  # 0.75 mg/kg: community upper dose
    assert ok.status_code == 200 and [s["number"] for s in ok.json()] == [4, 5, 6]
    assert {s["dose_mg"] for s in ok.json()} == {52.5}
    assert FormClient(sign_in, nurse).api(url, {"dose_mg": 40, "reason": WHY}).status_code == 403
