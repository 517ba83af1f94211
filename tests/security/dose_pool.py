"""The sessions the SIGKILL harness gives doses in (tests/security/crash_harness.py, issue 15 point 5).

Run inside the clinic's own ``manage.py shell`` before the first kill: ``count`` esketamine sessions at
Harbor Street, each for a new patient with a signed consent, scheduled, checked in, a baseline reading, the
gate answered and the screening decided by the prescriber, so the gate is open; and one lot of Spravato
devices with enough stock for every planned device. The writer then gives each session's planned devices
through the JSON API (no second person: a planned esketamine device needs no co-signature), moving to the
next session when one is full.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

#: esk-trd-label, induction after day 1: 84 mg = 3 devices of 28 mg (the label's allowed doses).
PLANNED_MG = 84
DEVICES_PER_SESSION = 3
LOT = "POOL-ESK-DEVICES"  # not SOAK-…: the receipts check reads those as receipt-only lots
FAMILY = "Soakpool"

GATE = {
    "rems_patient_enrolled": True,
    "rems_setting_certified": True,
    "hours_since_food": 3.0,
    "minutes_since_liquids": 45.0,
    "nasal_steroid_or_decongestant_today": False,
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
}


def _letters(n: int) -> str:
    """0 → 'Aa', 1 → 'Ab', …: a name made of letters only."""
    first, second = divmod(n, 26)
    return chr(ord("A") + first % 26) + chr(ord("a") + second) + ("x" * (first // 26))


def make(count: int) -> dict[str, Any]:
    from django.db import transaction
    from django.utils import timezone

    from ketaclinic.accounts.models import Organization, Site, User
    from ketaclinic.chairside import services
    from ketaclinic.clinical.vitals import VitalReading
    from ketaclinic.consent import services as consents
    from ketaclinic.consent.sample import drawn_signature
    from ketaclinic.ledger import services as ledger
    from ketaclinic.patients import services as patients

    org = Organization.objects.get(slug="demo")
    site = Site.objects.get(organization=org, code="harbor")
    nurse = User.objects.get(username="demo.nurse")
    prescriber = User.objects.get(username="demo.prescriber")
    now = timezone.now().replace(microsecond=0)
    today = timezone.localdate(now, site.zone)
    lot = ledger.receive(
        user=nurse,
        site=site,
        data={
            "drug": "esketamine",
            "product": "Spravato 28 mg",
            "lot": LOT,
            "ndc": "",
            "expiry": (today + timedelta(days=400)).isoformat(),
            "unit": "device",
            "mg_per_unit": "28",
            "quantity": str(count * DEVICES_PER_SESSION),
            "containers": str(count * DEVICES_PER_SESSION),
            "received_on": today.isoformat(),
            "supplier_name": "Demo Pharma Distribution",
            "supplier_address": "100 Wholesale Way, Springfield",
            "supplier_dea": "RD0000000",
        },
    ).lot
    week_ago = now - timedelta(days=7)
    form = consents.current_template(organization_id=org.pk, drug="esketamine", route="intranasal")
    sessions: list[str] = []
    for n in range(count):
        with transaction.atomic():
            patient = patients.create_patient(
                user=nurse,
                data={
                    "given_name": _letters(n),
                    "family_name": FAMILY,
                    "date_of_birth": "1980-05-17",
                    "sex": "female",
                    "weight_kg": 70,
                    "height_cm": 165,
                    "site": site.pk,
                },
            )
            consents.record_consent(
                user=nurse,
                patient=patient,
                template=form,
                signed_on=timezone.localdate(week_ago, site.zone),
                evidence=consents.DrawnSignature(
                    signer_name=patient.display_name, png=drawn_signature(patient.display_name)
                ),
                witness=nurse,
                now=week_ago,
            )
            session = services.schedule_session(
                user=nurse,
                patient=patient,
                protocol_id="esk-trd-label",
                scheduled_at=now - timedelta(minutes=20),
                planned_dose_mg=PLANNED_MG,
                session_number=3,
            )
            services.transition(user=nurse, session=session, to="checked_in", at=now - timedelta(minutes=15))
            services.record_observation(
                user=nurse,
                session=session,
                reading=VitalReading(
                    taken_at=now - timedelta(minutes=10),
                    sbp_mmhg=124,
                    dbp_mmhg=78,
                    hr_bpm=72,
                    spo2_pct=98,
                    rr_per_min=14,
                    moaas=5,
                    cadss_total=0,
                ),
            )
            services.evaluate_gate(
                user=nurse,
                session=session,
                answers=GATE | {"pregnancy_test_on": today},
                now=now - timedelta(minutes=6),
            )
            services.override_gate_item(
                user=prescriber,
                session=session,
                item_key="screening",
                reason="Screening signed on paper today; entry pending in the system",
                now=now - timedelta(minutes=5),
            )
            session.refresh_from_db()
            assert session.gate_opened_at is not None, f"the gate of pool session {n} did not open"
            sessions.append(str(session.pk))
    return {"lot": str(lot.pk), "sessions": sessions}
