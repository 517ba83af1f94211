"""Course rules (issue 14, first bullet): one patient held three active courses booked at the same hour in
three chairs; a course session five months ahead could be opened and checked in today; opening a session early
put the patient in Chair 1 while another patient occupied it (two "Chair 1" cards on the live board).

Now: a second course needs a prescriber's reason (audited) and never books a day the patient already has a
session; one session a day on every path; a course session opens only within its window (2 h before to the
end of its booked day: clinic default, unconfirmed); a chair holds one patient at a time, at opening and at
check-in, and the refusal names the chair, not the other patient. From an empty clinic, time frozen."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import ACTIVE_STATUSES, TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Plan, PlanSession
from ketaclinic.treatment.opening import open_course_session

from .conftest import MONDAY, NY, FormClient, at
from .test_plans import plan_data

REASON = "Esketamine started while the IV course winds down, agreed with the patient"


def test_a_second_course_needs_a_prescribers_reason_and_never_shares_a_day(
    clinic: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    first = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    with pytest.raises(services.PlanValidationError) as refused:
        services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="iv-trd-murrough"))
    message = refused.value.errors["concurrent_course_reason"]
    assert message.startswith("The patient is already on a course: IV ketamine 0.5 mg/kg, 6 infusions")
    assert "from Mon 14 Dec 2026 (6 sessions to come)" in message and "Stop it first" in message
    with pytest.raises(services.PlanValidationError, match="at least 10 characters"):
        services.create_plan(
            user=prescriber,
            patient=patient,
            data=plan_data(protocol="iv-trd-murrough", concurrent_course_reason="because"),
        )
    assert Plan.objects.count() == 1
    # Three courses at the same preferred hour, each with a reason: they never share a day.
    second = services.create_plan(
        user=prescriber,
        patient=patient,
        data=plan_data(protocol="iv-trd-murrough", concurrent_course_reason=REASON),
    )
    third = services.create_plan(
        user=prescriber,
        patient=patient,
        data=plan_data(protocol="esk-trd-label", concurrent_course_reason=REASON),
    )
    days = [
        s.start.astimezone(NY).date() for s in PlanSession.objects.filter(patient=patient, status="booked")
    ]
    assert len(days) == len(set(days))
    assert any("the patient already has a session that day (course session 1)" in c for c in second.conflicts)
    assert second.concurrent_reason == REASON and first.concurrent_reason == ""
    entry = AuditEntry.objects.get(object_type="Plan", object_id=str(third.pk), action="add")
    after = json.loads(entry.after)
    assert after["concurrent_course_reason"] == REASON
    assert set(after["concurrent_with"]) == {str(first.pk), str(second.pk)}
    # The plan form says so before anything is typed, and a refusal names the field.
    form = FormClient(sign_in, prescriber)
    page = form.get(f"/patients/{patient.pk}/plans/new/").content.decode()
    assert "Already on a course:" in page and "one course at a time" in page.lower()
    response = form.post(
        f"/patients/{patient.pk}/plans/new/",
        {"protocol": "sl-clinic-template", "start": MONDAY.isoformat(), "basis": "actual"},
    )
    assert response.status_code == 422 and "concurrent_course_reason" in response.content.decode()
    assert Plan.objects.count() == 3


def test_a_finished_or_stopped_course_does_not_count(
    clinic: Any, prescriber: Any, patient: Any, time_machine: Any
) -> None:
    first = services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="iv-ptsd-feder"))
    services.stop_course(user=prescriber, plan=first, reason="Moved to another clinic")
    second = services.create_plan(user=prescriber, patient=patient, data=plan_data(protocol="iv-ptsd-feder"))
    assert second.concurrent_reason == ""
    # Feder has no maintenance: once its last session is over, the course no longer counts as active.
    last = second.sessions.order_by("start").last()
    time_machine.move_to(last.end + timedelta(days=1), tick=False)
    third = services.create_plan(
        user=prescriber,
        patient=patient,
        data=plan_data(protocol="iv-ptsd-feder", start=(last.end + timedelta(days=3)).date().isoformat()),
    )
    assert third.concurrent_reason == ""


def test_one_session_a_day_at_the_chair_too(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    services.create_plan(user=prescriber, patient=patient, data=plan_data())  # Mon 14 Dec 09:00 …
    with pytest.raises(chairside.SessionInputError) as refused:
        chairside.schedule_session(
            user=nurse,
            patient=patient,
            protocol_id="esk-trd-label",
            scheduled_at=at(0, 15),
            planned_dose_mg=56,
        )
    assert refused.value.errors["scheduled_at"].startswith(
        "The patient already has a session on Mon 14 Dec 2026 (09:00 course session 1): one session a day"
    )
    tuesday = chairside.schedule_session(
        user=nurse, patient=patient, protocol_id="esk-trd-label", scheduled_at=at(1, 9), planned_dose_mg=56
    )
    # Stopped before any dose (the gate did not open), the day is free again; a dosed one keeps it.
    chairside.transition(user=nurse, session=tuesday, to="stopped", reason="BP 182/112 at the gate")
    chairside.schedule_session(
        user=nurse, patient=patient, protocol_id="esk-trd-label", scheduled_at=at(1, 15), planned_dose_mg=56
    )
    api = FormClient(sign_in, nurse)
    response = api.api(
        "/api/sessions",
        {
            "patient_id": str(patient.pk),
            "protocol_id": "esk-trd-label",
            "planned_dose_mg": "56",
            "scheduled_at": at(1, 16).isoformat(),
        },
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "scheduled_at"]


def test_a_course_session_opens_only_within_its_window(
    clinic: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any, time_machine: Any
) -> None:
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first, last = plan.sessions.get(number=1), plan.sessions.get(number=6)
    # The last session moved five months ahead (a Monday in May): it cannot be opened today.
    services.reschedule_session(user=nurse, session=last, new_start=datetime(2027, 5, 10, 9, tzinfo=NY))
    with pytest.raises(services.PlanValidationError) as refused:
        open_course_session(user=nurse, session=last)
    assert refused.value.errors["start"].startswith(
        "Session 6 is booked for Mon 10 May 2027 09:00: it can be opened from Mon 10 May 2027 07:00 (from 2 h "
        "before its booked time to the end of its booked day (clinic setting, unconfirmed))"
    )
    nurse_page = FormClient(sign_in, nurse)
    plan_page = nurse_page.get(f"/plans/{plan.pk}/").content.decode()
    assert "opens Mon 14 Dec 07:00" in plan_page and f"/plan-sessions/{first.pk}/start/" not in plan_page
    page = nurse_page.post(f"/plan-sessions/{last.pk}/start/").content.decode()
    assert "Not opened: Session 6 is booked for Mon 10 May 2027 09:00" in page
    refused_api = nurse_page.api(f"/api/treatment/plan-sessions/{first.pk}/open")
    assert refused_api.status_code == 422 and refused_api.json()["detail"][0]["loc"] == ["body", "start"]
    assert not TreatmentSession.objects.exists()  # nothing opened, so nothing can be checked in

    time_machine.move_to(at(0, 6, 59), tick=False)
    assert nurse_page.api(f"/api/treatment/plan-sessions/{first.pk}/open").status_code == 422
    time_machine.move_to(at(0, 7, 0), tick=False)
    opened = nurse_page.api(f"/api/treatment/plan-sessions/{first.pk}/open")
    assert opened.status_code == 201 and opened.json()["chair"] == "C1"
    again = nurse_page.api(f"/api/treatment/plan-sessions/{first.pk}/open")
    assert again.status_code == 200 and again.json()["session_id"] == opened.json()["session_id"]
    # Session 2 (Thursday) was never opened: on Friday its day is over.
    second = plan.sessions.get(number=2)
    time_machine.move_to(at(4, 8), tick=False)
    with pytest.raises(services.PlanValidationError, match="its day is over: it can no longer be opened"):
        open_course_session(user=nurse, session=second)


def test_a_chair_holds_one_patient_at_a_time(
    clinic: Any,
    nurse: Any,
    prescriber: Any,
    patient: Any,
    make_patient: Any,
    sign_in: Any,
    time_machine: Any,
) -> None:
    c1, c2 = clinic
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first = plan.sessions.get(number=1)
    assert first.chair == c1 and first.start == at(0, 9)
    time_machine.move_to(at(0, 8), tick=False)
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    early = chairside.schedule_session(
        user=nurse,
        patient=walk_in,
        protocol_id="esk-trd-label",
        scheduled_at=at(0, 8),
        planned_dose_mg=56,
        chair=c1,
        chair_override_reason="Walk-in agreed with the charge nurse",
    )
    chairside.transition(user=nurse, session=early, to="checked_in")
    # 08:30: opening session 1 in its booked chair, which the walk-in occupies until 10:00, is refused.
    time_machine.move_to(at(0, 8, 30), tick=False)
    nurse_page = FormClient(sign_in, nurse)
    page = nurse_page.post(f"/plan-sessions/{first.pk}/start/", {"chair": str(c1.pk)}).content.decode()
    assert "Not opened: C1 is occupied by a session under way (since 08:00, expected until 10:00)" in page
    assert "Inman" not in page.split('class="msg', 1)[1].split("</", 1)[0]  # the chair, not the patient
    assert not TreatmentSession.objects.filter(planned_session_id=first.pk).exists()
    # In the other chair it opens, and the booking follows it.
    response = nurse_page.post(f"/plan-sessions/{first.pk}/start/", {"chair": str(c2.pk)}, follow=False)
    opened = TreatmentSession.objects.get(planned_session_id=first.pk)
    assert response["Location"] == f"/sessions/{opened.pk}/" and opened.chair == c2
    first.refresh_from_db()
    assert first.chair == c2
    # Check-in is the other door: a second walk-in checked into C2 first keeps the course patient out.
    other = make_patient(nurse, given_name="Olga", family_name="Otherly")
    squeezed = chairside.schedule_session(
        user=nurse,
        patient=other,
        protocol_id="iv-trd-elektd",
        scheduled_at=at(0, 8, 35),
        planned_dose_mg=35,
        chair=c2,
        chair_override_reason="Short infusion before the course patient",
    )
    chairside.transition(user=nurse, session=squeezed, to="checked_in")
    with pytest.raises(
        chairside.SessionError, match=r"Not checked in: C2 is occupied by a session under way"
    ):
        chairside.transition(user=nurse, session=opened, to="checked_in")
    assert TreatmentSession.objects.filter(chair=c2, status__in=ACTIVE_STATUSES).count() == 1
    # And nobody is opened into a chair under way, from any path.
    third = make_patient(nurse, given_name="Thea", family_name="Third")
    with pytest.raises(chairside.SessionInputError) as occupied:
        chairside.schedule_session(
            user=nurse,
            patient=third,
            protocol_id="esk-trd-label",
            scheduled_at=at(0, 8, 40),
            planned_dose_mg=56,
            chair=c1,
            chair_override_reason="No other chair free",
        )
    assert occupied.value.errors["chair"].startswith("C1 is occupied by a session under way")
