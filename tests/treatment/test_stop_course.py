"""Stopping a course: a prescriber stops a plan with a reason; the sessions still to come are cancelled and
their chairs freed; nothing recorded is rewritten (a session open at the chair stays, a past session nobody
opened is left to be marked missed); the stop is audited, shown on the plan and the chart, refused without
a reason or to anyone but a prescriber, and a stopped course's sessions can no longer be moved or opened."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Plan, PlanSession

from .test_plans import plan_data


@pytest.fixture
def course(nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any) -> Any:
    """An IV course starting next Monday: session 1 opened at the chair, session 2 booked in the past
    (a session booked earlier that nobody opened), the rest still to come."""
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    first = plan.sessions.get(number=1)
    chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id=plan.protocol_key,
        scheduled_at=first.start,
        planned_dose_mg=plan.dose_mg,
        chair=first.chair,
        planned_session_id=first.pk,
    )
    yesterday = timezone.now() - timedelta(days=1)
    PlanSession.objects.filter(plan=plan, number=2).update(
        start=yesterday, end=yesterday + timedelta(hours=1)
    )
    return Plan.objects.get(pk=plan.pk)


def _statuses(plan: Any) -> dict[int, str]:
    return dict(plan.sessions.order_by("number").values_list("number", "status"))


def test_stopping_cancels_the_sessions_to_come_and_frees_their_chairs(
    course: Any, prescriber: Any, site: Any
) -> None:
    to_come = list(course.sessions.filter(number__gt=2).order_by("number"))
    slot = to_come[0]
    load_before = services.booked_load(site, timezone.now())
    assert any(load.chairs for key, load in load_before.items() if slot.start <= key < slot.end)

    result = services.stop_course(user=prescriber, plan=course, reason="Patient withdrew consent")

    assert result.cancelled == [s.number for s in to_come]
    assert result.open_at_chair == [1] and result.past_unrecorded == [2]
    statuses = _statuses(course)
    assert statuses[1] == "booked" and statuses[2] == "booked"
    assert {statuses[s.number] for s in to_come} == {"cancelled"}
    slot.refresh_from_db()
    assert "course was stopped (Patient withdrew consent)" in slot.notes[-1]
    # The opened chairside session is untouched: it is finished or stopped at the chair.
    assert (
        TreatmentSession.objects.get(planned_session_id=course.sessions.get(number=1).pk).status
        == "scheduled"
    )
    load_after = services.booked_load(site, timezone.now())
    assert not any(load.chairs for key, load in load_after.items() if slot.start <= key < slot.end)
    course.refresh_from_db()
    assert course.status == "cancelled" and course.stopped_by == prescriber
    assert course.stop_reason == "Patient withdrew consent" and course.stopped_at is not None
    entry = AuditEntry.objects.filter(
        object_type="Plan", object_id=str(course.pk), detail="course stopped"
    ).get()
    assert entry.user_id == prescriber.pk and entry.patient_id == course.patient_id
    after = json.loads(entry.after)
    assert after["sessions_cancelled"] == result.cancelled and after["reason"] == "Patient withdrew consent"


def test_refused_without_a_reason_to_a_nurse_and_twice_and_nothing_changes(
    course: Any, prescriber: Any, nurse: Any
) -> None:
    before = _statuses(course)
    with pytest.raises(services.PlanValidationError) as err:
        services.stop_course(user=prescriber, plan=course, reason="  ")
    assert set(err.value.errors) == {"reason"}
    with pytest.raises(services.TreatmentError, match="Only a prescriber"):
        services.stop_course(user=nurse, plan=course, reason="Nurse thinks so")
    course.refresh_from_db()
    assert course.status == "active" and _statuses(course) == before
    assert not AuditEntry.objects.filter(detail="course stopped").exists()
    services.stop_course(user=prescriber, plan=course, reason="Adverse event")
    course.refresh_from_db()
    with pytest.raises(services.TreatmentError, match="already stopped"):
        services.stop_course(user=prescriber, plan=course, reason="Again")
    assert AuditEntry.objects.filter(detail="course stopped").count() == 1


def test_a_stopped_courses_sessions_cannot_move_or_open(
    course: Any, prescriber: Any, nurse: Any, sign_in: Any
) -> None:
    services.stop_course(user=prescriber, plan=course, reason="Cardiac findings")
    past = course.sessions.get(number=2)
    with pytest.raises(services.TreatmentError, match="course was stopped"):
        services.reschedule_session(user=nurse, session=past, new_start=timezone.now() + timedelta(days=3))
    client = sign_in(Client(), nurse)
    page = client.post(f"/plan-sessions/{past.pk}/start/", follow=True).content.decode()
    assert "The course was stopped" in page
    assert not TreatmentSession.objects.filter(planned_session_id=past.pk).exists()
    # What happened to a past session is still recorded.
    services.mark_session_missed(user=nurse, session=past, worsening=False, reason="Never came")
    assert _statuses(course)[2] == "missed"


def test_plan_page_form_chart_and_roles(
    course: Any, prescriber: Any, nurse: Any, front_desk: Any, patient: Any, sign_in: Any
) -> None:
    doctor = sign_in(Client(), prescriber)
    assert 'id="stop-course"' in doctor.get(f"/plans/{course.pk}/").content.decode()
    assert 'id="stop-course"' not in sign_in(Client(), nurse).get(f"/plans/{course.pk}/").content.decode()
    assert sign_in(Client(), nurse).post(f"/plans/{course.pk}/stop/", {"reason": "x" * 10}).status_code == 403
    empty = doctor.post(f"/plans/{course.pk}/stop/", {"reason": ""}, follow=True).content.decode()
    assert "Not stopped: say why the course is stopped" in empty
    done = doctor.post(
        f"/plans/{course.pk}/stop/", {"reason": "Mania emerging"}, follow=True
    ).content.decode()
    assert "Course stopped." in done and "Open at the chair, finish or stop there: 1." in done
    assert "mark them missed: 2." in done
    assert 'id="course-stopped"' in done and "Mania emerging" in done and 'id="stop-course"' not in done
    # The past session nobody opened can only be marked missed now: no Open session, no Move.
    assert "Mark missed" in done and "Open session" not in done
    assert "open at the chair: finish or stop it there" in done  # session 1
    assert f"/plan-sessions/{course.sessions.get(number=2).pk}/move/" not in done
    chart = doctor.get(f"/patients/{patient.pk}/").content.decode()
    section = chart.split('class="card treatment-section"', 1)[1].split("</section>", 1)[0]
    assert "stopped " in section and "Mania emerging" in section and "Cancelled" in section
    desk = sign_in(Client(), front_desk).get(f"/patients/{patient.pk}/").content.decode()
    desk_section = desk.split('class="card treatment-section"', 1)[1].split("</section>", 1)[0]
    assert "stopped " in desk_section and "Cancelled" in desk_section
    assert "Mania emerging" not in desk_section  # the reason is clinical


def test_api_stop_422_409_403(course: Any, prescriber: Any, nurse: Any, sign_in: Any) -> None:
    def post(client: Client, body: dict[str, Any]) -> Any:
        return client.post(
            f"/api/treatment/plans/{course.pk}/stop", data=json.dumps(body), content_type="application/json"
        )

    api = sign_in(Client(), prescriber)
    assert post(sign_in(Client(), nurse), {"reason": "Nurse"}).status_code == 403
    missing = post(api, {})
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "reason"
    blank = post(api, {"reason": " "})
    assert blank.status_code == 422 and blank.json()["detail"][0]["loc"] == ["body", "reason"]
    assert Plan.objects.get(pk=course.pk).status == "active"
    ok = post(api, {"reason": "Hypertension not controlled"})
    assert ok.status_code == 200
    body = ok.json()
    assert (
        body["plan"]["status"] == "cancelled" and body["plan"]["stop_reason"] == "Hypertension not controlled"
    )
    assert body["plan"]["stopped_by"] == prescriber.get_username()
    assert body["sessions_open_at_chair"] == [1] and body["sessions_past_unrecorded"] == [2]
    assert body["sessions_cancelled"] == [s["number"] for s in body["plan"]["sessions"] if s["number"] > 2]
    assert post(api, {"reason": "Again"}).status_code == 409
