"""The home page's "Today" list: the course sessions and chair sessions booked today at the user's sites, in
start order, each with what is happening at the chair; a nurse opens a booked course session from it; front
desk sees who comes when and where, not the treatment; the read is audited."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.test import Client
from django.utils import timezone

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services
from ketaclinic.treatment.models import PlanSession

from .test_plans import plan_data


def _today_at(site: Any, hour: int) -> datetime:
    return datetime.combine(timezone.localdate(timezone.now(), site.zone), time(hour), tzinfo=site.zone)


def _section(html: str) -> str:
    return html.split('id="today"', 1)[1].split("</section>", 1)[0]


def test_today_lists_course_and_chair_sessions_and_opens_a_booked_one(
    nurse: Any,
    prescriber: Any,
    front_desk: Any,
    admin: Any,
    patient: Any,
    make_patient: Any,
    site: Any,
    second_site: Any,
    setup: Any,
    sign_in: Any,
    time_machine: Any,
) -> None:
    # 13:00 on a Wednesday: the course session booked for 14:00 today can be opened (from 2 h before).
    time_machine.move_to(datetime(2027, 3, 3, 13, 0, tzinfo=site.zone), tick=False)
    chairs = setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    # Session 3 of the course moved to today at 14:00 (as a reschedule would), the rest stay next week.
    booked = plan.sessions.get(number=3)
    PlanSession.objects.filter(pk=booked.pk).update(
        start=_today_at(site, 14), end=_today_at(site, 14) + timedelta(minutes=70), chair=chairs[1]
    )
    walk_in = make_patient(nurse, given_name="Walter", family_name="Inman")
    chair_session = chairside.schedule_session(
        user=nurse,
        patient=walk_in,
        protocol_id="esk-trd-label",
        scheduled_at=_today_at(site, 8),
        planned_dose_mg=56,
        chair=chairs[0],
    )
    elsewhere = make_patient(admin, site=second_site, given_name="Nora", family_name="Northcote")
    chairside.schedule_session(
        user=admin,
        patient=elsewhere,
        protocol_id="esk-trd-label",
        scheduled_at=_today_at(second_site, 9),
        planned_dose_mg=56,
    )

    client = sign_in(Client(), nurse)
    today = _section(client.get("/").content.decode())
    assert "Northcote" not in today  # a site the nurse does not cover
    assert today.index("Inman, Walter") < today.index("Examplesson, Testa")  # 08:00 before 14:00
    assert f"/sessions/{chair_session.pk}/" in today and "Scheduled" in today
    assert "session 3</a>" in today and "0.5 mg/kg over 40 min" in today
    assert "dose check pending" in today  # IV: the second person has not checked the dose
    assert f"/plan-sessions/{booked.pk}/start/" in today
    entry = AuditEntry.objects.filter(user=nurse, category="calendar").latest("id")
    assert entry.detail.startswith("today ") and entry.detail.endswith(": 2 session(s)")

    opened = client.post(f"/plan-sessions/{booked.pk}/start/")
    session = TreatmentSession.objects.get(planned_session_id=booked.pk)
    assert opened["Location"] == f"/sessions/{session.pk}/"
    today = _section(client.get("/").content.decode())
    assert f"/plan-sessions/{booked.pk}/start/" not in today and f"/sessions/{session.pk}/" in today

    desk = _section(sign_in(Client(), front_desk).get("/").content.decode())
    assert "Inman, Walter" in desk and "Examplesson, Testa" in desk
    assert "mg" not in desk and "/sessions/" not in desk and "Open session" not in desk


def test_no_sessions_today_says_so(nurse: Any, sign_in: Any) -> None:
    today = _section(sign_in(Client(), nurse).get("/").content.decode())
    assert "No sessions booked today at your sites." in today
