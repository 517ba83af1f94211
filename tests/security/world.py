"""A clinic world for access tests: organization A with two sites (the demo's Harbor Street and Juniper
Hill, with their patients, sessions, courses, consents, stock and monitors) and organization B with one site
and a patient; a signed-in account of every role at each site (owner at Harbor Street, colleague at Juniper
Hill, outsider in organization B).

The objects every route is asked about belong to one Harbor Street patient (the *target*); the words a
reader would recognise them by (name, MRN, date of birth) are what must never reach another site or
organization.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.test import Client
from django.utils import timezone

from ketaclinic.core.access import ADMIN, FRONT_DESK, NURSE, PRESCRIBER

ROLES = (ADMIN, PRESCRIBER, NURSE, FRONT_DESK)
PASSWORD = "correct horse battery staple"


@dataclass
class World:
    org_a: Any
    org_b: Any
    harbor: Any
    juniper: Any
    elsewhere: Any
    users: dict[tuple[str, str], Any]  # (place, role) → user; place ∈ owner, colleague, outsider
    target: Any  # the Harbor Street patient whose records every route is asked about
    objects: dict[str, Any] = field(default_factory=dict)  # URL keyword → value
    phi: list[str] = field(default_factory=list)  # words that identify the target patient

    def user(self, place: str, role: str) -> Any:
        return self.users[(place, role)]


def _account(org: Any, site: Any, role: str, username: str) -> Any:
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.accounts import services as accounts

    user = accounts.create_account(
        organization=org,
        username=username,
        password=PASSWORD,
        role=role,
        sites=[site],
        first_name=username.split(".")[0].title(),
        last_name="Matrix",
        email=f"{username}@example.invalid",
    )
    TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    return user


def signed_in(user: Any | None) -> Client:
    """A client that enforces CSRF, signed in with a verified second factor (or anonymous for ``None``)."""
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.core.middleware import SESSION_LAST_SEEN, SESSION_STARTED

    client = Client(enforce_csrf_checks=True, raise_request_exception=False)
    if user is None:
        return client
    client.force_login(user)
    session = client.session
    device = TOTPDevice.objects.get(user=user)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    now = timezone.now().isoformat()
    session[SESSION_STARTED] = now
    session[SESSION_LAST_SEEN] = now
    session.save()
    return client


def build_world() -> World:
    from ketaclinic.accounts.models import Organization, Site
    from ketaclinic.assessment.models import Intake, Screening
    from ketaclinic.chairside.models import SessionAlert, TreatmentSession
    from ketaclinic.consent.models import Consent, ConsentTemplate
    from ketaclinic.core import demo
    from ketaclinic.core.models import Notification
    from ketaclinic.ledger.models import Inventory, LedgerEntry, StockLot
    from ketaclinic.measures import services as measures
    from ketaclinic.measures.models import SafetyAlert
    from ketaclinic.patients import services as patients
    from ketaclinic.treatment.models import Plan, PlanSession

    demo.load_demo()
    org_a = Organization.objects.get(slug=demo.ORG_SLUG)
    harbor = Site.objects.get(organization=org_a, code="harbor")
    juniper = Site.objects.get(organization=org_a, code="juniper")
    org_b = Organization.objects.create(name="Elsewhere Clinics", slug="elsewhere")
    elsewhere = Site.objects.create(
        organization=org_b, code="harbor", name="Elsewhere Harbor", time_zone="UTC"
    )
    users: dict[tuple[str, str], Any] = {}
    for place, org, site in (
        ("owner", org_a, harbor),
        ("colleague", org_a, juniper),
        ("outsider", org_b, elsewhere),
    ):
        for role in ROLES:
            users[(place, role)] = _account(org, site, role, f"{place}.{role}")

    # The target: a Harbor Street patient with a chair session today (the demo's sessions are at Harbor).
    session = (
        TreatmentSession.objects.filter(patient__site=harbor, patient__organization=org_a)
        .select_related("patient")
        .order_by("scheduled_at")
        .first()
    )
    assert session is not None, "the demo has a session at Harbor Street"
    target = session.patient
    # Words nobody else in the demo carries (the demo's contact names reuse patients' names).
    type(target).objects.filter(pk=target.pk).update(
        given_name="Wilhelmina", family_name="Quarrystone-Target", mrn="TGT-77123"
    )
    target.refresh_from_db()
    nurse = users[("owner", NURSE)]
    # A suicidality alert for the target (PHQ-9 item 9 answered), raised the way the clinic raises it.
    phq9 = {str(i): 1 for i in range(1, 10)}
    measures.record_administration(user=nurse, patient=target, instrument="phq9", answers=phq9)
    safety_alert = SafetyAlert.objects.filter(patient=target).order_by("-pk").first()
    assert safety_alert is not None, "item 9 answered raises a safety alert"
    chair_alert = SessionAlert.objects.filter(session__patient__site=harbor).order_by("pk").first()
    chair_session = chair_alert.session if chair_alert is not None else session

    plan = Plan.objects.filter(patient__site=harbor).select_related("patient").first()
    plan_session = PlanSession.objects.filter(plan=plan).first() if plan else None
    intake = Intake.objects.filter(patient__site=harbor).first()
    screening = Screening.objects.filter(patient__site=harbor).first()
    consent = (
        Consent.objects.filter(patient=target).first() or Consent.objects.filter(patient__site=harbor).first()
    )
    template = ConsentTemplate.objects.filter(organization=org_a).first()
    lot = StockLot.objects.filter(site=harbor).first()
    entry = LedgerEntry.objects.filter(lot__site=harbor).first()
    inventory = Inventory.objects.filter(site=harbor).first()
    notification = Notification.objects.create(
        organization=org_a, recipient=nurse, kind="matrix", message="A notification for the owner nurse."
    )

    # Organization B has a patient of its own: lists seen from B must still not show A's patients.
    patients.create_patient(
        user=users[("outsider", NURSE)],
        data={
            "given_name": "Other",
            "family_name": "Orgpatient",
            "date_of_birth": date(1979, 3, 4),
            "sex": "female",
            "weight_kg": 70,
            "height_cm": 165,
        },
    )
    world = World(org_a, org_b, harbor, juniper, elsewhere, users, target)
    world.objects = {
        "patient_id": target.pk,
        "session_id": session.pk,
        "alert_id": safety_alert.pk,
        "plan_id": getattr(plan, "pk", None),
        "plan_session_id": getattr(plan_session, "pk", None),
        "intake_id": getattr(intake, "pk", None),
        "screening_id": getattr(screening, "pk", None),
        "consent_id": getattr(consent, "pk", None),
        "consent_patient_id": getattr(consent, "patient_id", None),
        "template_id": getattr(template, "pk", None),
        "lot_id": getattr(lot, "pk", None),
        "entry_id": getattr(entry, "pk", None),
        "inventory_id": getattr(inventory, "pk", None),
        "notification_id": notification.pk,
        "user_id": nurse.pk,
        "site_id": harbor.pk,
        "site_code": harbor.code,
        "chair_session_id": chair_session.pk,
        "chair_alert_id": getattr(chair_alert, "pk", None),
        "key": "esk-trd-label",
        "instrument": "phq9",
        "drug": "ketamine",
        "route": "iv",
        "kind": "course",
        "booking_id": getattr(plan_session, "pk", None),
        "token": "not-a-real-link-token",
        "export_id": "00000000-0000-4000-8000-000000000000",
        "rtype": "Patient",
        "rest": "NoSuchThing",
        "fhir_id": str(target.pk),
        "plan_patient_id": getattr(plan, "patient_id", None),
    }
    world.phi = [
        target.mrn,
        target.family_name,
        target.date_of_birth.isoformat(),
        target.date_of_birth.strftime("%m/%d/%Y"),
    ]
    return world
