"""Missed sessions follow the J&J guidance (clinical.md §2.1); moving a session respects hours, closures and
capacity; closures and nurse capacity shape a new course; a booked session opens the chairside session."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from typing import Any

import pytest
from django.test import Client

from ketaclinic.accounts.models import SiteClosure
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession

from .test_plans import next_monday, plan_data


@pytest.fixture
def esk_plan(nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any) -> Any:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    return services.create_plan(
        user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label", amount=56)
    )


def test_missed_in_the_first_four_weeks_continues_the_schedule(esk_plan: Any, nurse: Any) -> None:
    second = esk_plan.sessions.get(number=2)
    later = list(esk_plan.sessions.filter(number__gt=2).values_list("start", flat=True))
    advice = services.mark_session_missed(user=nurse, session=second, worsening=False, reason="Flu")
    assert str(advice.action) == "continue_schedule" and "first 4 weeks" in advice.message
    assert (
        list(esk_plan.sessions.filter(number__gt=2).values_list("start", flat=True)) == later
    )  # nothing moved
    second.refresh_from_db()
    assert second.status == "missed" and "Flu" in second.notes[-1]


def test_missed_maintenance_with_worsening_suggests_the_previous_frequency(
    esk_plan: Any, nurse: Any, prescriber: Any, setup: Any
) -> None:
    setup.continue_into_maintenance(prescriber, esk_plan)
    maintenance = esk_plan.sessions.filter(phase_kind="maintenance").order_by("number").last()
    advice = services.mark_session_missed(user=nurse, session=maintenance, worsening=True, reason="Away")
    assert str(advice.action) == "consider_revert_frequency"
    assert "consider going back" in advice.message


def test_a_session_moves_only_into_open_free_time(esk_plan: Any, nurse: Any, site: Any) -> None:
    session = esk_plan.sessions.get(number=3)
    saturday = datetime.combine(next_monday() + timedelta(days=12), time(10), tzinfo=site.zone)
    with pytest.raises(services.PlanValidationError, match="closed on Saturdays"):
        services.reschedule_session(user=nurse, session=session, new_start=saturday)
    booked_days = {s.start.astimezone(site.zone).date() for s in esk_plan.sessions.all()}
    free_day = next(
        d
        for d in (next_monday() + timedelta(days=n) for n in range(7, 21))
        if d.weekday() < 5 and d not in booked_days
    )
    SiteClosure.objects.create(organization=site.organization, site=site, day=free_day, reason="Training day")
    closed = datetime.combine(free_day, time(10), tzinfo=site.zone)
    with pytest.raises(services.PlanValidationError, match="closure"):
        services.reschedule_session(user=nurse, session=session, new_start=closed)
    open_day = next(
        d
        for d in (next_monday() + timedelta(days=n) for n in range(7, 28))
        if d.weekday() < 5 and d != free_day and d not in booked_days
    )
    late = datetime.combine(open_day, time(17), tzinfo=site.zone)
    with pytest.raises(services.PlanValidationError, match="outside opening hours"):
        services.reschedule_session(user=nurse, session=session, new_start=late)
    ok = datetime.combine(open_day, time(9), tzinfo=site.zone)
    # (whether this day keeps the phase spacing depends on the calendar: the reason covers it either way)
    services.reschedule_session(
        user=nurse, session=session, new_start=ok, spacing_override_reason="Patient's only free day"
    )
    session.refresh_from_db()
    assert session.start == ok


def test_a_move_closer_than_the_phase_spacing_needs_a_reason(esk_plan: Any, nurse: Any, site: Any) -> None:
    """Induction is twice weekly (sessions at least 2 days apart, protocols.py; at most 2 in any 7 days):
    moving session 3 to the day after session 2 is refused with the rules, then done with a reason that is
    audited and noted on the session."""
    from ketaclinic.audit.models import AuditEntry

    second, third = esk_plan.sessions.get(number=2), esk_plan.sessions.get(number=3)
    next_day = second.start + timedelta(days=1)
    with pytest.raises(services.PlanValidationError) as refused:
        services.reschedule_session(user=nurse, session=third, new_start=next_day)
    message = refused.value.errors["spacing_override_reason"]
    assert "session 3 would be 1 d after session 2" in message
    assert "at least 2 days apart" in message and "give the reason" in message
    assert "would make 3 sessions in the 7 days" in message and "allows 2 in any 7 days" in message
    third.refresh_from_db()
    assert third.start != next_day  # nothing changed

    services.reschedule_session(
        user=nurse, session=third, new_start=next_day, spacing_override_reason="Travelling from Saturday"
    )
    third.refresh_from_db()
    assert third.start == next_day
    assert any("Travelling from Saturday" in n and "at least 2 days apart" in n for n in third.notes)
    entry = (
        AuditEntry.objects.filter(object_type="PlanSession", object_id=str(third.pk)).order_by("-seq").first()
    )
    assert entry is not None
    assert json.loads(entry.after)["spacing_override_reason"] == "Travelling from Saturday"


def test_a_move_onto_a_day_the_patient_has_a_session_is_refused_whatever_the_reason(
    esk_plan: Any, nurse: Any
) -> None:
    second, third = esk_plan.sessions.get(number=2), esk_plan.sessions.get(number=3)
    afternoon = second.start + timedelta(hours=4)
    with pytest.raises(services.PlanValidationError) as refused:
        services.reschedule_session(
            user=nurse, session=third, new_start=afternoon, spacing_override_reason="Travelling from Friday"
        )
    assert "already has a session on" in refused.value.errors["start"]
    assert (
        "course session 2" in refused.value.errors["start"]
        and "one session a day" in refused.value.errors["start"]
    )
    third.refresh_from_db()
    assert third.start != afternoon


def test_the_plan_page_moves_a_session_with_the_spacing_reason(
    esk_plan: Any, nurse: Any, sign_in: Any
) -> None:
    second, third = esk_plan.sessions.get(number=2), esk_plan.sessions.get(number=3)
    next_day = second.start.astimezone(esk_plan.site.zone) + timedelta(days=1)
    url = f"/plan-sessions/{third.pk}/move/"
    client = sign_in(Client(), nurse)
    refused = client.post(url, {"start": next_day.strftime("%Y-%m-%dT%H:%M")}, follow=True)
    assert "at least 2 days apart" in refused.content.decode()
    third.refresh_from_db()
    assert third.start != next_day
    client.post(url, {"start": next_day.strftime("%Y-%m-%dT%H:%M"), "spacing_override_reason": "Travelling"})
    third.refresh_from_db()
    assert third.start == next_day


def test_closures_and_nurse_capacity_shape_a_new_course(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, make_patient: Any
) -> None:
    setup.open_site(site, chairs=4)
    site.nurse_capacity = 1
    site.save()
    SiteClosure.objects.create(organization=site.organization, site=site, day=next_monday(), reason="Holiday")
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(
        user=prescriber, patient=patient, data=plan_data(protocol="esk-trd-label", amount=56)
    )
    assert all(s.start.astimezone(site.zone).date() != next_monday() for s in plan.sessions.all())
    other = make_patient(nurse, given_name="Second", family_name="Nursecap")
    setup.screened(nurse, prescriber, other)
    second = services.create_plan(
        user=prescriber, patient=other, data=plan_data(protocol="esk-trd-label", amount=56)
    )
    mine = [(s.start, s.end) for s in plan.sessions.all()]
    for s in second.sessions.all():  # one nurse-monitored patient at a time: no overlap with the first course
        assert all(not (s.start < end and s.end > start) for start, end in mine)


def test_a_booked_session_opens_its_chairside_session_once(
    esk_plan: Any, nurse: Any, sign_in: Any, time_machine: Any
) -> None:
    first = esk_plan.sessions.get(number=1)
    time_machine.move_to(first.start - timedelta(hours=1), tick=False)
    client = sign_in(Client(), nurse)
    response = client.post(f"/plan-sessions/{first.pk}/start/")
    session = TreatmentSession.objects.get(planned_session_id=first.pk)
    assert response["Location"] == f"/sessions/{session.pk}/"
    assert float(session.planned_dose_mg) == esk_plan.dose_mg and session.protocol_id == "esk-trd-label"
    again = client.post(f"/plan-sessions/{first.pk}/start/")
    assert again["Location"] == f"/sessions/{session.pk}/"
    assert TreatmentSession.objects.filter(planned_session_id=first.pk).count() == 1
    assert PlanSession.objects.get(pk=first.pk).status == "booked"


def test_a_plan_queues_a_self_report_link_the_day_before_each_session(
    esk_plan: Any, nurse: Any, settings: Any, patient: Any
) -> None:
    from django.core import mail
    from django.utils import timezone

    from ketaclinic.core import jobs
    from ketaclinic.core.models import Job
    from ketaclinic.measures.models import SelfReportLink

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    queued = Job.objects.filter(kind="measures.pre_session_link")
    assert queued.count() == esk_plan.sessions.count()
    first = esk_plan.sessions.order_by("start").first()
    job = queued.get(payload__plan_session_id=str(first.pk))
    assert job.run_after == first.start - timedelta(days=1) and job.payload["instruments"] == ["phq9", "gad7"]
    patient.email = "testa@example.invalid"
    patient.save()
    Job.objects.exclude(pk=job.pk).update(run_after=timezone.now() + timedelta(days=365))
    Job.objects.filter(pk=job.pk).update(run_after=timezone.now())
    assert jobs.run_due_jobs() >= 1
    [link] = SelfReportLink.objects.filter(patient=patient)
    assert link.instruments == ["phq9", "gad7"]
    assert len(mail.outbox) == 1


def test_a_missed_session_sends_no_link(esk_plan: Any, nurse: Any, settings: Any, patient: Any) -> None:
    from django.utils import timezone

    from ketaclinic.core import jobs
    from ketaclinic.core.models import Job
    from ketaclinic.measures.models import SelfReportLink

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    patient.email = "testa@example.invalid"
    patient.save()
    second = esk_plan.sessions.get(number=2)
    services.mark_session_missed(user=nurse, session=second, worsening=False, reason="Away")
    Job.objects.update(run_after=timezone.now() + timedelta(days=365))
    Job.objects.filter(payload__plan_session_id=str(second.pk)).update(run_after=timezone.now())
    jobs.run_due_jobs()
    assert not SelfReportLink.objects.exists()
