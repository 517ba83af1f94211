"""The demo clinic loads once and is idempotent; the job queue hands each job to exactly one worker."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.test import Client
from django.utils import timezone

from ketaclinic.accounts.models import Chair, Site, User
from ketaclinic.audit.models import AuditEntry
from ketaclinic.core import demo, jobs
from ketaclinic.core.models import Job
from ketaclinic.patients.models import Patient


def test_demo_creates_two_sites_every_role_and_40_patients(db: Any) -> None:
    changed, logins = demo.load_demo()
    assert changed
    assert Site.objects.filter(organization__slug="demo").count() == 2
    roles = set(
        User.objects.filter(organization__slug="demo", is_service=False).values_list("role", flat=True)
    )
    assert roles == {"admin", "prescriber", "nurse", "front_desk"}
    assert Patient.objects.filter(organization__slug="demo").count() == 40
    assert Chair.objects.filter(site__code="harbor").count() == 7
    assert {x.role for x in logins} == {"Administrator", "Prescriber", "Nurse", "Front desk"}
    assert all(len(x.totp_secret) == 32 and len(x.current_code) == 6 for x in logins)


def test_demo_sessions_pass_the_gate_on_signed_screenings_and_courses_are_booked(db: Any) -> None:
    """Today's demo chairs passed the pre-dose gate on the patients' signed screenings (no override), and
    three patients have courses booked from the next working day, which the calendar shows."""
    from ketaclinic.chairside.models import GateCheck, TreatmentSession
    from ketaclinic.treatment.models import Plan

    demo.load_demo()
    dosed = TreatmentSession.objects.filter(status__in=["dosing", "monitoring"])
    assert dosed.count() == 2
    checks = GateCheck.objects.filter(session__in=dosed)
    assert checks.count() == 2 and all(c.passed and c.overrides == [] for c in checks)
    plans = Plan.objects.filter(organization__slug="demo")
    assert sorted(plans.values_list("patient__mrn", flat=True)) == ["DEMO-0002", "DEMO-0007", "DEMO-0009"]
    # Each course's induction is booked, except a session that falls on a closure (the demo closes the sites
    # on public holidays) with no day it could move to: that one is listed as not booked, with why.
    for plan in plans:
        induction = plan.protocol.data["phases"][0]["sessions"]
        assert plan.sessions.filter(status="booked").count() + len(plan.unscheduled) == induction
        assert all("closed" in note for note in plan.unscheduled)
    first = min(p.sessions.order_by("start").first().start for p in plans)  # type: ignore[union-attr]
    assert first > timezone.now() and first.weekday() < 5
    client = Client()
    client.post("/accounts/login/", {"username": "demo.nurse", "password": demo.DEMO_PASSWORD})
    client.post("/accounts/mfa/", {"token": demo.current_code("demo.nurse")})
    harbor = Site.objects.get(code="harbor")
    monday = first.astimezone(harbor.zone).date() - timedelta(days=first.astimezone(harbor.zone).weekday())
    week = client.get(f"/calendar/?site={harbor.pk}&week={monday.isoformat()}").content.decode()
    assert week.count("session 1</a>") == 2  # the two Harbor Street courses
    # Controlled-drug stock: each dose drew from its lot with the dose (the IV waste witnessed by the
    # prescriber who checked the dose), an initial inventory was taken, the chain checks out.
    from ketaclinic.ledger.models import Inventory, LedgerEntry
    from ketaclinic.ledger.services import verify_chain

    devices = LedgerEntry.objects.filter(kind="use", lot__unit="device")
    assert devices.count() == 3 and all((u.drawn, u.wasted) == (1, 0) and u.administration for u in devices)
    vial = LedgerEntry.objects.get(kind="use", lot__unit="mL")
    assert (vial.drawn, vial.administered, vial.wasted) == (1, Decimal("0.7"), Decimal("0.3"))
    assert vial.administration is not None and vial.administration.dose_mg == 35
    assert vial.administration.concentration_mg_ml == vial.lot.mg_per_unit == 50  # the lot's, not typed
    assert vial.witness == vial.administration.verified_by is not None
    initial = Inventory.objects.get(site=harbor)
    assert initial.kind == "initial" and initial.counts.count() == 2
    assert verify_chain(harbor.organization_id) is None


def test_demo_twice_changes_nothing(db: Any) -> None:
    demo.load_demo()
    counts = (
        Patient.objects.count(),
        User.objects.count(),
        AuditEntry.objects.count(),
        Chair.objects.count(),
    )
    changed, _ = demo.load_demo()
    assert not changed
    assert (
        Patient.objects.count(),
        User.objects.count(),
        AuditEntry.objects.count(),
        Chair.objects.count(),
    ) == counts


def test_demo_login_signs_in_with_the_printed_code(db: Any) -> None:
    demo.load_demo()
    client = Client()
    client.post("/accounts/login/", {"username": "demo.frontdesk", "password": demo.DEMO_PASSWORD})
    response = client.post("/accounts/mfa/", {"token": demo.current_code("demo.frontdesk")})
    assert response["Location"] == "/"
    page = client.post("/patients/", {"name": ""})
    # Front desk at Harbor Street sees Harbor Street's 20 patients, not Juniper Hill's.
    assert page.context["result"].total == 20


def test_demo_patient_shows_a_phq9_trajectory_with_response_and_remission(db: Any) -> None:
    demo.load_demo()
    client = Client()
    client.post("/accounts/login/", {"username": "demo.prescriber", "password": demo.DEMO_PASSWORD})
    client.post("/accounts/mfa/", {"token": demo.current_code("demo.prescriber")})
    patient = Patient.objects.get(mrn="DEMO-0001")
    html = client.get(f"/patients/{patient.pk}/").content.decode()
    section = html.split('id="trajectory-phq9"')[1]
    assert "<svg" in section and "baseline 21" in section
    # 21 → 4: −81 % is a response and below 5 is a remission (clinical.md §0)
    assert 'class="tag ok">response' in section and 'class="tag ok">remission' in section


def test_a_due_job_runs_once_and_a_future_job_waits(db: Any) -> None:
    seen: list[int] = []
    jobs.HANDLERS["test.count"] = lambda payload: seen.append(payload["n"])
    try:
        jobs.enqueue("test.count", {"n": 1})
        jobs.enqueue("test.count", {"n": 2}, run_after=timezone.now() + timedelta(hours=1))
        assert jobs.run_due_jobs() == 1
        assert jobs.run_due_jobs() == 0
        assert seen == [1]
        assert Job.objects.filter(finished_at__isnull=False).count() == 1
    finally:
        del jobs.HANDLERS["test.count"]


def test_a_failing_job_is_retried_later_not_lost(db: Any) -> None:
    def boom(payload: dict[str, Any]) -> None:
        raise ValueError("printer on fire")

    jobs.HANDLERS["test.boom"] = boom
    try:
        job = jobs.enqueue("test.boom")
        assert jobs.run_due_jobs() == 1
        job.refresh_from_db()
        assert job.finished_at is None and job.attempts == 1 and "printer on fire" in job.error
        assert job.run_after > timezone.now() and job.claimed_at is None
    finally:
        del jobs.HANDLERS["test.boom"]


def test_a_claimed_job_is_not_claimed_again(db: Any) -> None:
    jobs.HANDLERS["test.noop"] = lambda payload: None
    try:
        job = jobs.enqueue("test.noop")
        Job.objects.filter(pk=job.pk).update(claimed_at=timezone.now(), claimed_by="other-worker")
        assert jobs.run_due_jobs() == 0
    finally:
        del jobs.HANDLERS["test.noop"]


def _demo_client(username: str) -> Client:
    """Signed in as a demo login through the sign-in pages, with CSRF enforced as in a browser."""
    from django.conf import settings

    client = Client(enforce_csrf_checks=True)
    client.get("/accounts/login/")
    for path, data in (
        ("/accounts/login/", {"username": username, "password": demo.DEMO_PASSWORD}),
        ("/accounts/mfa/", {"token": demo.current_code(username)}),
    ):
        token = client.cookies[settings.CSRF_COOKIE_NAME].value
        assert client.post(path, data | {"csrfmiddlewaretoken": token}).status_code == 302
    return client


def test_demo_consents_were_signed_through_the_use_case_and_show_on_the_chart(db: Any) -> None:
    """README: the patients in today's chairs signed on the tablet a week ago (chart → Consent → View the
    signed consent); a patient booked from the next working day has none yet and the chart offers the tablet."""
    from ketaclinic.chairside.models import TreatmentSession
    from ketaclinic.consent.models import Consent

    demo.load_demo()
    in_chairs = {s.patient_id for s in TreatmentSession.objects.filter(patient__organization__slug="demo")}
    consents = Consent.objects.filter(patient_id__in=in_chairs)
    assert consents.count() == len(in_chairs) == 3
    for consent in consents:
        assert (consent.method, consent.witness.username) == ("tablet", "demo.nurse")  # type: ignore[union-attr]
        assert consent.template is not None and consent.signer_name
        # Recorded by the consent use case, which audits the signing in the same transaction.
        assert AuditEntry.objects.filter(
            object_type="Consent", object_id=str(consent.pk), action="add"
        ).exists()
    nurse = _demo_client("demo.nurse")
    signed = consents.get(patient__mrn="DEMO-0003")
    chart = nurse.get(f"/patients/{signed.patient_id}/").content.decode()
    assert 'id="chart-consents"' in chart and "View the signed consent" in chart and ">current<" in chart
    page = nurse.get(f"/patients/{signed.patient_id}/consents/{signed.pk}/")
    assert page.status_code == 200 and signed.signer_name in page.content.decode()
    from ketaclinic.treatment.models import Plan

    booked = Plan.objects.filter(organization__slug="demo", site__code="harbor").first().patient  # type: ignore[union-attr]
    chart = nurse.get(f"/patients/{booked.pk}/").content.decode()
    assert "No consent recorded yet" in chart and "Sign on this tablet" in chart


def test_demo_administration_pages_show_staff_and_site_identifiers(db: Any) -> None:
    """README: as demo.admin, Staff accounts lists the prescriber's NPI, DEA number and licence and offers the
    invitation; Sites → Settings shows Harbor Street's address, DEA registration and REMS certification."""
    demo.load_demo()
    admin = _demo_client("demo.admin")
    home = admin.get("/").content.decode()
    assert "Staff accounts" in home and ">Sites<" in home
    users = admin.get("/accounts/users/").content.decode()
    assert "1234567893" in users and "AP1234563" in users
    assert admin.get("/accounts/users/invite/").status_code == 200
    harbor = Site.objects.get(organization__slug="demo", code="harbor")
    settings_page = admin.get(f"/accounts/sites/{harbor.pk}/").content.decode()
    assert "1 Example Harbor Street" in settings_page and "BH2345672" in settings_page
    assert 'id="site-identifiers"' in settings_page and 'value="yes" selected' in settings_page
