"""The demo clinic: two sites, staff for every role, 40 plainly fictional patients. Idempotent."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts import services as accounts
from ketaclinic.accounts.cosign import Signature
from ketaclinic.accounts.models import Chair, Organization, Site, User
from ketaclinic.clinical.dose_check import planned_devices
from ketaclinic.core.access import ADMIN, FRONT_DESK, NURSE, PRESCRIBER, ROLE_LABELS
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient

ORG_SLUG = "demo"
DEMO_PASSWORD = "ketaclinic-demo-2026"  # noqa: S105 - published demo credential, demo organization only

SITES = [
    {
        "code": "harbor",
        "name": "Harbor Street Clinic",
        "time_zone": "America/New_York",
        "opening_hours": {d: [["08:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        | {"sat": [["09:00", "13:00"]]},
        "address_line1": "1 Example Harbor Street",
        "city": "Demo City",
        "state": "MA",
        "zip_code": "02101",
        "phone": "(617) 555-0100",
        # Fictional, but with a valid check digit (clinical/identifiers.py); certified, so the pre-dose
        # gate's "setting certified" item reads the site record.
        "dea_registration": "BH2345672",
        "rems_certified": True,
        "rems_certification_id": "DEMO-REMS-0001",
        "rems_certified_on": date(2026, 1, 5),
        "crisis_resources": "If you are in danger now, call 911. Suicide & Crisis Lifeline: call or text 988. "
        "Harbor Street Clinic on-call clinician: 555-0100.",
        "chairs": 6,
    },
    {
        "code": "juniper",
        "name": "Juniper Hill Clinic",
        "time_zone": "America/Chicago",
        "opening_hours": {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
        "address_line1": "22 Sample Juniper Hill Road",
        "city": "Demo Town",
        "state": "IL",
        "zip_code": "60601",
        "phone": "(312) 555-0200",
        "dea_registration": "BJ3456781",
        "crisis_resources": "If you are in danger now, call 911. Suicide & Crisis Lifeline: call or text 988. "
        "Juniper Hill Clinic on-call clinician: 555-0200.",
        "chairs": 4,
    },
]

STAFF = [
    ("demo.admin", ADMIN, "Ada", "Adminton", [], True),
    ("demo.prescriber", PRESCRIBER, "Priya", "Prescott", ["harbor", "juniper"], False),
    ("demo.nurse", NURSE, "Noor", "Nightingale-Demo", ["harbor"], False),
    ("demo.frontdesk", FRONT_DESK, "Felix", "Frontdeskson", ["harbor"], False),
    ("demo.nurse.juniper", NURSE, "June", "Juniperson", ["juniper"], False),
]

#: Demo clinicians' identifiers: fictional, with valid check digits (NPI 1234567893 is CMS's own example).
IDENTIFIERS: dict[str, dict[str, str]] = {
    "demo.prescriber": {
        "npi": "1234567893",
        "dea_number": "AP1234563",
        "licence_number": "MD-000123",
        "licence_state": "MA",
        "phone": "(617) 555-0110",
    },
    "demo.nurse": {"npi": "1987654328", "licence_number": "RN-000456", "licence_state": "MA"},
}

GIVEN = ["Marigold", "Bartholomew", "Zephyrine", "Quillon", "Ottoline"]
SEX_OF = {
    "Marigold": "female",
    "Bartholomew": "male",
    "Zephyrine": "female",
    "Quillon": "male",
    "Ottoline": "female",
}
FAMILY = [
    "Sampleton",
    "Demoworth",
    "Testington",
    "Fakenham-Example",
    "Mockridge",
    "Specimen",
    "Dummett",
    "Placeholder",
]


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str
    sites: str
    password: str
    totp_secret: str
    current_code: str


def _key_for(username: str) -> str:
    return hashlib.sha1(f"ketaclinic-demo-totp:{username}".encode()).hexdigest()  # noqa: S324 - seed, not security


def current_code(username: str) -> str:
    key = bytes.fromhex(_key_for(username))
    return f"{TOTP(key).token():06d}"


def _patient_data(index: int, site: Site) -> dict[str, Any]:
    given = GIVEN[index % len(GIVEN)]
    family = FAMILY[index // len(GIVEN) % len(FAMILY)]
    sex = SEX_OF[given]
    return {
        "mrn": f"DEMO-{index + 1:04d}",
        "given_name": given,
        "family_name": family,
        "date_of_birth": date(1950, 1, 1) + timedelta(days=379 * index + 17),
        "sex": sex,
        "site": site,
        "phone": f"555-01{index:02d}",
        "email": f"{given.lower()}.{family.lower()}@example.invalid",
        "weight_kg": 55 + (index * 7) % 60,
        "height_cm": 155 + (index * 3) % 35,
        "escort_name": f"{GIVEN[(index + 2) % len(GIVEN)]} {family}",
        "escort_phone": f"555-02{index:02d}",
        "emergency_contact_name": f"{GIVEN[(index + 3) % len(GIVEN)]} {family}",
        "emergency_contact_phone": f"555-03{index:02d}",
        "emergency_contact_relation": "relative",
    }


@transaction.atomic
def load_demo() -> tuple[bool, list[DemoLogin]]:
    """Create the demo organization if missing. Returns (created anything, logins)."""
    changed = False
    org, created = Organization.objects.get_or_create(
        slug=ORG_SLUG, defaults={"name": "Demo Ketamine Clinics"}
    )
    changed |= created
    sites: dict[str, Site] = {}
    for spec in SITES:
        data = {k: v for k, v in spec.items() if k not in ("code", "chairs")}
        site, created = Site.objects.get_or_create(organization=org, code=spec["code"], defaults=data)
        changed |= created
        sites[site.code] = site
        for n in range(1, int(spec["chairs"]) + 1):  # type: ignore[call-overload]
            _, created = Chair.objects.get_or_create(organization=org, site=site, label=f"Chair {n}")
            changed |= created
        _, created = Chair.objects.get_or_create(
            organization=org, site=site, label="Quiet room", defaults={"kind": "room"}
        )
        changed |= created
    logins = []
    for username, role, first, last, site_codes, all_sites in STAFF:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = accounts.create_account(
                organization=org,
                username=username,
                password=DEMO_PASSWORD,
                role=role,
                sites=[sites[c] for c in site_codes],
                first_name=first,
                last_name=last,
                all_sites=all_sites,
                email=f"{username}@example.invalid",
            )
            extra = IDENTIFIERS.get(username, {})
            if extra:
                for name, value in extra.items():
                    setattr(user, name, value)
                user.save(update_fields=list(extra))
            TOTPDevice.objects.create(
                user=user, name="Demo authenticator", key=_key_for(username), confirmed=True
            )
            changed = True
        logins.append(
            DemoLogin(
                username=username,
                role=ROLE_LABELS[role],
                sites="all" if all_sites else ", ".join(sites[c].name for c in site_codes),
                password=DEMO_PASSWORD,
                totp_secret=base64.b32encode(bytes.fromhex(_key_for(username))).decode(),
                current_code=current_code(username),
            )
        )
    loader = accounts.system_user("demo-loader", org)
    if not loader.all_sites:
        loader.all_sites = True
        loader.save(update_fields=["all_sites"])
    site_list = [sites["harbor"], sites["juniper"]]
    for index in range(40):
        data = _patient_data(index, site_list[index % 2])
        if not Patient.objects.filter(organization=org, mrn=data["mrn"]).exists():
            patients.create_patient(user=loader, data=data)
            changed = True
    changed |= _demo_holidays(org)
    changed |= _demo_scales(org)
    changed |= _demo_assessments(org)
    changed |= _demo_plans(org)
    changed |= _demo_stock(org)  # before the sessions: every dose is drawn from a lot of the site's stock
    changed |= _demo_sessions(org)
    changed |= _demo_monitors(org)
    return changed, logins


def _demo_holidays(org: Organization) -> bool:
    """Each demo site closed on the US federal holidays of this year and the next, added by the demo
    administrator as a clinic would (accounts/sites.add_public_holidays), before the demo courses are
    planned: the calendar shows them and no course session lands on them."""
    from django.utils import timezone

    from ketaclinic.accounts.models import ClosureKind
    from ketaclinic.accounts.sites import add_public_holidays

    admin = User.objects.get(organization=org, username="demo.admin")
    changed = False
    for site in Site.objects.filter(organization=org):
        year = timezone.localdate(timezone.now(), site.zone).year
        for y in (year, year + 1):
            if not site.closures.filter(kind=ClosureKind.PUBLIC_HOLIDAY, day__year=y).exists():
                add_public_holidays(admin=admin, site=site, year=y)
                changed = True
    return changed


# PHQ-9 courses for a few demo patients: one responder who remits, one partial responder, one non-responder.
PHQ9_COURSES = {
    "DEMO-0001": [21, 17, 12, 9, 6, 4],
    "DEMO-0003": [18, 15, 12, 10, 9, 8],
    "DEMO-0005": [16, 15, 16, 14, 15, 14],
}


def _phq9_answers(total: int) -> dict[str, int]:
    answers, left = {}, total
    for item in range(1, 9):
        answers[str(item)] = min(3, left)
        left -= answers[str(item)]
    answers["9"] = 0
    return answers


def _demo_scales(org: Organization) -> bool:
    from django.utils import timezone

    from ketaclinic.measures.models import ScaleAdministration
    from ketaclinic.measures.services import record_administration

    prescriber = User.objects.get(username="demo.prescriber")
    loader = accounts.system_user("demo-loader", org)
    changed = False
    start = timezone.now() - timedelta(days=35)
    for mrn, totals in PHQ9_COURSES.items():
        patient = Patient.objects.get(organization=org, mrn=mrn)
        if patient.prescriber_id is None:
            patients.update_patient(
                user=loader, patient=patient, data={"prescriber": prescriber.pk}, expected_version=None
            )
            changed = True
        if ScaleAdministration.objects.filter(patient=patient).exists():
            continue
        for week, total in enumerate(totals):
            record_administration(
                user=loader,
                patient=patient,
                instrument="phq9",
                answers=_phq9_answers(total),
                administered_at=start + timedelta(days=week * 6),
            )
        changed = True
    return changed


# Patients with a signed intake and a signed eligibility screening (nothing found): today's three chairs at
# Harbor Street, and the patients whose courses start next week.
ASSESSED = ("DEMO-0001", "DEMO-0003", "DEMO-0005", "DEMO-0007", "DEMO-0009", "DEMO-0002")
# Courses booked from the next working day: (MRN, protocol, preferred time).
COURSES = (
    ("DEMO-0007", "iv-trd-elektd", "09:00"),
    ("DEMO-0009", "esk-trd-label", "11:00"),
    ("DEMO-0002", "iv-trd-elektd", "10:00"),
)


def _demo_intake(today: date, sex: str) -> dict[str, Any]:
    """A complete intake in which the screening engine finds nothing: treatment-resistant depression after
    two adequate antidepressant trials, normal ECG, labs and blood pressure, REMS enrolment done."""
    from ketaclinic.assessment.intake_data import ANSWER_FIELDS

    trial = {
        "dose_adequate": "yes",
        "weeks": 8,
        "adherence_adequate": "yes",
        "outcome": "no_response",
        "current_episode": "yes",
    }
    data: dict[str, Any] = {k: "no" for k in ANSWER_FIELDS}
    checked = (today - timedelta(days=14)).isoformat()
    data.update(
        assessed_on=(today - timedelta(days=7)).isoformat(),
        indication="trd",
        diagnoses=["trd"],
        hepatic_impairment="none",
        rems_enrolled="yes",
        ecg_done="yes",
        ecg_date=checked,
        liver_function_tested="yes",
        renal_function_tested="yes",
        labs_tested_on=checked,
        systolic_bp=124,
        diastolic_bp=78,
        heart_rate=70,
        stop_bang_score=1,
        moca_score=28,
        medications=[],
        prior_trials=[dict(trial, drug="sertraline"), dict(trial, drug="venlafaxine")],
        baseline_scales={"phq9": 18},
        # The demo's patients were born in the 1950s: none can become pregnant (so the gate needs no test).
        childbearing_potential="no",
        childbearing_potential_reason="male_at_birth" if sex == "male" else "post_menopausal",
    )
    return data


def _site_nurse(patient: Patient) -> User:
    return User.objects.get(username="demo.nurse" if patient.site.code == "harbor" else "demo.nurse.juniper")


def _demo_assessments(org: Organization) -> bool:
    from ketaclinic.assessment import services as assessment
    from ketaclinic.assessment.models import Intake

    prescriber = User.objects.get(username="demo.prescriber")
    changed = False
    for mrn in ASSESSED:
        patient = Patient.objects.get(organization=org, mrn=mrn)
        if Intake.objects.filter(patient=patient).exists():
            continue
        staff = _site_nurse(patient)
        intake = assessment.save_intake(
            user=staff,
            patient=patient,
            data=_demo_intake(patient.site.today(), patient.sex),
            base_version=None,
        )
        assessment.sign_intake(user=prescriber, intake=intake)
        screening = assessment.run_screening(user=staff, patient=patient)
        assessment.sign_screening(user=prescriber, screening=screening)
        changed = True
    return changed


def _demo_plans(org: Organization) -> bool:
    """Courses booked from the next working day, so the calendar, the charts and the plan pages show them."""
    from ketaclinic.treatment import services as treatment
    from ketaclinic.treatment.models import Plan

    prescriber = User.objects.get(username="demo.prescriber")
    changed = False
    for mrn, protocol, at in COURSES:
        patient = Patient.objects.get(organization=org, mrn=mrn)
        if Plan.objects.filter(patient=patient).exists():
            continue
        start = patient.site.today() + timedelta(days=1)  # the next working day at the patient's site
        while start.weekday() >= 5:
            start += timedelta(days=1)
        plan = treatment.create_plan(
            user=prescriber,
            patient=patient,
            data={"protocol": protocol, "start": start.isoformat(), "preferred_time": at},
        )
        if plan.second_person_required:
            treatment.verify_dose(user=_site_nurse(patient), plan=plan)
        changed = True
    return changed


def _demo_consent(nurse: User, patient: Patient, *, drug: str, route: str, now: datetime) -> None:
    """The patient signed the clinic's current consent form on the tablet a week ago, the nurse witnessing:
    recorded through the same use case as the signing page (consent.services.record_consent)."""
    from ketaclinic.consent import services as consents
    from ketaclinic.consent.sample import drawn_signature

    form = consents.current_template(organization_id=patient.organization_id, drug=drug, route=route)
    week_ago = now - timedelta(days=7)
    consents.record_consent(
        user=nurse,
        patient=patient,
        template=form,
        signed_on=timezone.localdate(week_ago, patient.site.zone),
        evidence=consents.DrawnSignature(
            signer_name=patient.display_name, png=drawn_signature(patient.display_name)
        ),
        witness=nurse,
        now=week_ago,
    )


def _demo_sessions(org: Organization) -> bool:
    """Three chairs in use at Harbor Street now, so the live board and the session pages have something to show."""

    from django.utils import timezone

    from ketaclinic.chairside import services as chairside
    from ketaclinic.chairside.models import TreatmentSession
    from ketaclinic.clinical.vitals import VitalReading
    from ketaclinic.ledger.models import StockLot

    if TreatmentSession.objects.filter(organization=org).exists():
        return False
    nurse = User.objects.get(username="demo.nurse")
    prescriber = User.objects.get(username="demo.prescriber")
    harbor = Site.objects.get(organization=org, code="harbor")
    chairs = list(Chair.objects.filter(site=harbor, kind="chair").order_by("label"))
    now = timezone.now().replace(second=0, microsecond=0)
    answers = {
        "escort_confirmed": True,
        "ride_home_confirmed": True,
        # No pregnancy test: the signed intakes record that none of these patients can become pregnant.
        "rems_patient_enrolled": True,
        "rems_setting_certified": True,
        "hours_since_food": 3.0,
        "minutes_since_liquids": 60.0,
        "nasal_steroid_or_decongestant_today": False,
    }
    plans = [  # (patient, protocol, dose, course session number, first dose minutes ago)
        ("DEMO-0001", "esk-trd-label", 84, 5, 70),  # week 3 of induction: 84 mg (label: 56 or 84)
        ("DEMO-0003", "iv-trd-elektd", 35, 1, 25),  # 0.5 mg/kg of 69 kg, over 40 min
        ("DEMO-0005", "esk-trd-label", 56, 1, None),  # day 1: 56 mg
    ]
    for index, (mrn, protocol_id, dose, number, minutes_ago) in enumerate(plans):
        patient = Patient.objects.get(organization=org, mrn=mrn)
        drug = "esketamine" if protocol_id.startswith("esk") else "ketamine"
        _demo_consent(
            nurse, patient, drug=drug, route="intranasal" if drug == "esketamine" else "iv", now=now
        )
        start = now - timedelta(minutes=(minutes_ago or 0) + 20)
        session = chairside.schedule_session(
            user=nurse,
            patient=patient,
            protocol_id=protocol_id,
            scheduled_at=start,
            planned_dose_mg=dose,
            chair=chairs[index],
            session_number=number,
        )
        chairside.transition(user=nurse, session=session, to="checked_in", at=start)
        chairside.record_observation(
            user=nurse,
            session=session,
            reading=VitalReading(
                taken_at=start + timedelta(minutes=5),
                sbp_mmhg=126 + 4 * index,
                dbp_mmhg=80,
                hr_bpm=72,
                spo2_pct=98,
                rr_per_min=14,
                moaas=5,
                cadss_total=0,
            ),
        )
        if minutes_ago is None:
            continue  # checked in, waiting for the gate
        # The morning is replayed through the same rules as at the chair: the gate opens before the first
        # dose, each dose is entered when it happens (entered_at), the second person signs with password
        # and code. The patient's signed screening (_demo_assessments) clears the gate's screening item.
        first = now - timedelta(minutes=minutes_ago)
        chairside.evaluate_gate(
            user=nurse, session=session, answers=answers, now=first - timedelta(minutes=3)
        )
        lot = StockLot.objects.get(site=harbor, lot="DEMO-LOT" if drug == "esketamine" else "DEMO-K")
        if drug == "esketamine":
            for n in range(planned_devices(dose)):
                at = first + timedelta(minutes=5 * n)
                chairside.record_administration(
                    user=nurse, session=session, kind="nasal_device", at=at, entered_at=at, lot_id=lot.pk
                )
        else:
            # 35 mg from lot DEMO-K (50 mg/mL) = 0.7 mL into a 100 mL bag; 1 mL was drawn, 0.3 mL wasted,
            # witnessed by the prescriber who checks the dose (one signature).
            with _signing(prescriber) as code:
                chairside.record_administration(
                    user=nurse,
                    session=session,
                    kind="infusion_start",
                    at=first,
                    entered_at=first,
                    lot_id=lot.pk,
                    given="0.7",
                    wasted="0.3",
                    container_volume_ml=100,
                    dose_mg=dose,
                    rate_ml_per_h=150,  # 35 mg in 100 mL over 40 min = 52.5 mg/h
                    verifier=Signature(prescriber, DEMO_PASSWORD, code),
                )
        for m, (sbp, dbp, cadss) in enumerate([(138, 86, 6), (152, 92, 14), (146, 90, 10)]):
            at = first + timedelta(minutes=10 + 15 * m)
            if at < now:
                chairside.record_observation(
                    user=nurse,
                    session=session,
                    reading=VitalReading(
                        taken_at=at,
                        sbp_mmhg=sbp,
                        dbp_mmhg=dbp,
                        hr_bpm=80,
                        spo2_pct=97,
                        rr_per_min=14,
                        moaas=4 if m == 0 else 5,
                        cadss_total=cadss,
                    ),
                )
    return True


@contextmanager
def _signing(user: User) -> Iterator[str]:
    """The current authenticator code of a demo login, for a signature the demo makes; afterwards the device
    forgets that use, so the code the demo prints still signs in during these 30 seconds."""
    device = TOTPDevice.objects.get(user=user)
    last_t = device.last_t
    try:
        yield current_code(user.username)
    finally:
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=last_t)


def _demo_stock(org: Organization) -> bool:
    """Harbor Street's controlled-drug stock, through the same use cases as the Controlled drugs pages:
    ketamine vials (50 mg/mL, counted in mL) and SPRAVATO devices (28 mg, whole devices) received a week ago,
    and today's initial inventory (21 CFR 1304.11), taken by the nurse with the prescriber signing. The
    sessions' doses then draw from these lots (``_demo_sessions``)."""
    from ketaclinic.ledger import inventory
    from ketaclinic.ledger import services as ledger
    from ketaclinic.ledger.models import StockLot

    if StockLot.objects.filter(organization=org).exists():
        return False
    nurse = User.objects.get(username="demo.nurse")
    prescriber = User.objects.get(username="demo.prescriber")
    harbor = Site.objects.get(organization=org, code="harbor")
    received = (harbor.today() - timedelta(days=7)).isoformat()
    expiry = (harbor.today() + timedelta(days=500)).isoformat()
    supplier = {
        "supplier_name": "Demo Pharma Distribution",
        "supplier_address": "100 Wholesale Way, Springfield",
        "supplier_dea": "RD0000000",
        "received_on": received,
        "expiry": expiry,
    }
    lots = [
        ledger.receive(
            user=nurse,
            site=harbor,
            data={
                "drug": "ketamine",
                "product": "Ketamine HCl 50 mg/mL, 10 mL vial",
                "lot": "DEMO-K",
                "unit": "mL",
                "mg_per_unit": "50",
                "quantity": "100",
                "containers": "10",
                **supplier,
            },
        ).lot,
        ledger.receive(
            user=nurse,
            site=harbor,
            data={
                "drug": "esketamine",
                "product": "Spravato 28 mg nasal spray device",
                "lot": "DEMO-LOT",
                "unit": "device",
                "mg_per_unit": "28",
                "quantity": "24",
                "containers": "24",
                **supplier,
            },
        ).lot,
    ]
    with _signing(prescriber) as code:
        inventory.take_inventory(
            user=nurse,
            site=harbor,
            kind="initial",
            count_time="opening",
            counts={
                str(lot.pk): inventory.LotCount(
                    counted=ledger.balance(lot), containers=10 if lot.unit == "mL" else 24
                )
                for lot in lots
            },
            witness=Signature(prescriber, DEMO_PASSWORD, code),
        )
    return True


def _demo_monitors(org: Organization) -> bool:
    """Bedside monitors on Harbor Street's chairs, with the ids `ketaclinic monitor-sim` uses for chairs 1–6."""
    from ketaclinic.monitoring.models import MonitorDevice
    from ketaclinic.monitoring.simulate import device_eui64

    harbor = Site.objects.get(organization=org, code="harbor")
    changed = False
    for n, chair in enumerate(Chair.objects.filter(site=harbor, kind="chair").order_by("label")[:6], start=1):
        _, created = MonitorDevice.objects.get_or_create(
            organization=org, identifier=device_eui64(n), defaults={"site": harbor, "chair": chair}
        )
        changed |= created
    return changed
