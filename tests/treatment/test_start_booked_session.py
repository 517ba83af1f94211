"""Starting a booked course session is one service (issue 17, point 2): treatment/opening.start_booked_session,
called by the plan page / Today ("Open session") and by POST /api/treatment/plan-sessions/{id}/open. One
transaction, audited once; starting twice gives the session already opened; another organization's or another
site's course session is not found; a cancelled session, or a chair not at the session's site, is refused and
nothing is written. The database holds one treatment session per course session (a one-to-one key)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction
from tests.conftest import _make_user

from ketaclinic.accounts.models import Chair, Site
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession
from ketaclinic.treatment.opening import NoSuchCourseSession, UnknownChair, start_booked_session

from .conftest import FormClient, at
from .test_plans import plan_data


@pytest.fixture
def first(clinic: Any, prescriber: Any, patient: Any, time_machine: Any) -> PlanSession:
    """Session 1 of an ELEKT-D course, booked Monday 14 December 09:00 in C1; the clock at 08:00 that day."""
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    time_machine.move_to(at(0, 8), tick=False)
    return plan.sessions.get(number=1)


def _openings() -> int:
    return AuditEntry.objects.filter(object_type="TreatmentSession", action="add").count()


def test_starting_twice_gives_the_session_already_opened(nurse: Any, prescriber: Any, first: Any) -> None:
    opened, new = start_booked_session(user=nurse, session=first)
    assert new and opened.planned_session == first and opened.planned_session_id == first.pk
    assert opened.chair is not None and opened.chair.label == "C1"
    assert first.treatment_session == opened  # the reverse side of the one-to-one key
    assert _openings() == 1  # audited once, as before
    again, new_again = start_booked_session(user=prescriber, session=first)
    assert (again.pk, new_again) == (opened.pk, False)
    assert TreatmentSession.objects.count() == 1 and _openings() == 1


def test_the_database_refuses_a_second_treatment_session_for_one_course_session(
    nurse: Any, first: Any
) -> None:
    opened, _new = start_booked_session(user=nurse, session=first)
    with pytest.raises(IntegrityError), transaction.atomic():
        TreatmentSession.objects.create(
            organization=opened.organization,
            patient=opened.patient,
            site=opened.site,
            protocol_id=opened.protocol_id,
            drug=opened.drug,
            route=opened.route,
            planned_dose_mg=opened.planned_dose_mg,
            planned_session=first,
            scheduled_at=opened.scheduled_at,
            created_by=nurse,
        )
    assert TreatmentSession.objects.filter(planned_session=first).count() == 1


def test_another_organizations_or_sites_course_session_is_not_found(
    org: Any, outsider: Any, first: Any
) -> None:
    elsewhere = Site.objects.create(organization=org, code="north", name="North Street", time_zone="UTC")
    north_nurse = _make_user("northnurse", org, "nurse", [elsewhere])
    for user in (outsider, north_nurse):
        with pytest.raises(NoSuchCourseSession, match="No such session"):
            start_booked_session(user=user, session=first)
    assert not TreatmentSession.objects.exists() and _openings() == 0


def test_a_cancelled_course_session_is_refused(nurse: Any, first: Any) -> None:
    PlanSession.objects.filter(pk=first.pk).update(status="cancelled")
    with pytest.raises(services.TreatmentError, match="Session 1 is cancelled"):
        start_booked_session(user=nurse, session=first)
    assert not TreatmentSession.objects.exists() and _openings() == 0


def test_a_chair_not_at_the_sessions_site_is_refused(org: Any, nurse: Any, first: Any) -> None:
    elsewhere = Site.objects.create(organization=org, code="north", name="North Street", time_zone="UTC")
    far = Chair.objects.create(organization=org, site=elsewhere, label="N1")
    for raw in (str(far.pk), "nine", far.pk, "²", "9" * 40):
        with pytest.raises(UnknownChair) as refused:
            start_booked_session(user=nurse, session=first, chair_id=raw)
        assert refused.value.errors["chair"] == f"chair {str(raw)!r} is not a chair at Main Street."
    assert not TreatmentSession.objects.exists()
    c2 = Chair.objects.get(site=first.site, label="C2")
    opened, _new = start_booked_session(user=nurse, session=first, chair_id=f" {c2.pk} ")
    first.refresh_from_db()
    assert opened.chair == c2 and first.chair == c2  # the course session follows the chosen chair


def test_the_page_and_the_api_keep_their_answers(nurse: Any, first: Any, sign_in: Any) -> None:
    page = FormClient(sign_in, nurse)
    refused = page.post(f"/plan-sessions/{first.pk}/start/", {"chair": "nine"}).content.decode()
    assert "Not opened: chair &#x27;nine&#x27; is not a chair at Main Street." in refused
    api = page.api(f"/api/treatment/plan-sessions/{first.pk}/open", {"chair_id": 999999})
    assert api.status_code == 422 and api.json()["detail"][0]["loc"] == ["body", "chair_id"]
    assert api.json()["detail"][0]["msg"] == "is not a chair at the session's site"
    assert not TreatmentSession.objects.exists()
    opened = page.post(f"/plan-sessions/{first.pk}/start/", follow=False)
    session = TreatmentSession.objects.get(planned_session=first)
    assert opened.status_code == 302 and opened["Location"] == f"/sessions/{session.pk}/"
    again = page.api(f"/api/treatment/plan-sessions/{first.pk}/open")
    assert again.status_code == 200 and again.json()["session_id"] == str(session.pk)
