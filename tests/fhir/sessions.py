"""Treatment-session data for the FHIR tests, built through the chairside services (as a clinic would).

Times are relative to ``t0`` (the first esketamine device, six hours ago, whole minutes), so every event is
in the past and the consent dates are real dates around today.

Ann (owner organization):
  * ``esk``: esketamine 84 mg, scheduled t0-30, checked in t0-25, devices at t0, t0+5, t0+10, readings at
    t0-10 (all seven kinds), t0+40 (six kinds), t0+60, t0+85, t0+118 (BP, HR, MOAA/S, CADSS), adverse events
    at t0+20 (Dissociation) and t0+40 (Blood pressure increased), discharged at t0+121.
  * ``iv``: IV ketamine, checked in t1-15 (t1 = t0+180), reading t1-5 (BP, HR, SpO2, RR), infusion started
    at t1 at 150 mL/h, slowed to 100 mL/h at t1+15, stopped t1+45, session stopped at t1+50.
  * ``planned``: esketamine in two days. ``cancelled``: stopped a day before t0, never checked in.
  * consents (signed on the clinic tablet, consent.services): esketamine and ketamine IV (active, the
    former lasting the clinic's 365 days, the latter expiring in 90), an older ketamine IV consent signed 400
    days ago that expired 35 days ago.
Ben (owner organization): ``running``: IV ketamine infusing since 20 minutes ago (120 mL/h), one reading;
  consents: ketamine (active), esketamine withdrawn yesterday.
Theirs (another organization): a whole IV session with a reading, an infusion, an adverse event, a consent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone
from tests.clock import clinic_today
from tests.conftest import sign
from tests.consent.helpers import consent_on_file
from tests.ledger.stock import lot_for

from ketaclinic.chairside import services
from ketaclinic.clinical.vitals import VitalReading
from ketaclinic.consent.services import withdraw_consent

ESK_ANSWERS = {
    "rems_patient_enrolled": True,
    "rems_setting_certified": True,
    "hours_since_food": 3.0,
    "minutes_since_liquids": 45.0,
    "nasal_steroid_or_decongestant_today": False,
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
    "pregnancy_test_on": clinic_today(),
}
IV_ANSWERS = {
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
    "pregnancy_test_on": clinic_today(),
}


@dataclass
class Clinic:
    t0: datetime
    t1: datetime
    t2: datetime
    ann: Any
    ben: Any
    theirs_patient: Any
    sessions: dict[str, Any] = field(default_factory=dict)
    readings: dict[str, Any] = field(default_factory=dict)
    doses: dict[str, Any] = field(default_factory=dict)
    events: dict[str, Any] = field(default_factory=dict)
    consents: dict[str, Any] = field(default_factory=dict)


def _reading(user: Any, session: Any, at: datetime, **values: Any) -> Any:
    return services.record_observation(
        user=user, session=session, reading=VitalReading(taken_at=at, **values)
    )


def _open_gate(nurse: Any, prescriber: Any, session: Any, answers: dict[str, Any], at: datetime) -> None:
    """The gate opens at ``at`` (the morning is replayed through the services with ``now``); the pregnancy
    test was taken that day (in the site's zone), not on the day the test suite runs."""
    answers = answers | {"pregnancy_test_on": timezone.localdate(at, session.site.zone)}
    services.evaluate_gate(user=nurse, session=session, answers=answers, now=at)
    services.override_gate_item(
        user=prescriber,
        session=session,
        item_key="screening",
        reason="Screening signed on paper today",
        now=at,
    )
    session.refresh_from_db()


def _infusion(nurse: Any, prescriber: Any, session: Any, at: datetime, dose: int, rate: int) -> Any:
    """``dose`` mg diluted to 100 mL (10 mg/mL vial), started at ``rate`` mL/h, checked by ``prescriber``."""
    return services.record_administration(
        user=nurse,
        session=session,
        kind="infusion_start",
        at=at,
        entered_at=at,
        lot_id=lot_for(session).pk,  # 10 mg/mL
        given=str(Decimal(dose) / 10),
        container_volume_ml=100,
        dose_mg=dose,
        rate_ml_per_h=rate,
        verifier=sign(prescriber),
    )


def build(nurse: Any, prescriber: Any, make_patient: Any, outsider: Any, outsider_prescriber: Any) -> Clinic:
    now = timezone.now().replace(second=0, microsecond=0)
    # Ann's esketamine session the day before her IV session: one session a day (issue 14); 27 hours apart,
    # so always on different days.
    t0 = now - timedelta(hours=30)
    today = timezone.localdate()
    ann = make_patient(nurse, given_name="Ann")
    ben = make_patient(nurse, given_name="Ben", sex="male")
    theirs = make_patient(outsider, given_name="Other", family_name="Orgpatient")
    c = Clinic(
        t0=t0,
        t1=now - timedelta(hours=3),
        t2=now - timedelta(minutes=20),
        ann=ann,
        ben=ben,
        theirs_patient=theirs,
    )

    def consent(
        key: str, user: Any, patient: Any, drug: str, signed: int, expires: int | None = None
    ) -> None:
        c.consents[key] = consent_on_file(
            user,
            patient,
            drug,
            signed_on=today - timedelta(days=signed),
            expires_on=today + timedelta(days=expires) if expires is not None else None,
        )

    consent("ann_esk", nurse, ann, "esketamine", 3)
    consent("ann_ket", nurse, ann, "ketamine", 3, 90)
    consent("ann_old", nurse, ann, "ketamine", 400)  # the clinic's 365 days ended 35 days ago
    consent("ben_ket", nurse, ben, "ketamine", 3)
    consent("ben_esk", nurse, ben, "esketamine", 3)
    withdraw_consent(
        user=nurse,
        consent=c.consents["ben_esk"],
        withdrawn_on=today - timedelta(days=1),
        reason="Patient asked to stop esketamine",
    )
    consent("theirs", outsider, theirs, "ketamine", 3)

    # Ann, esketamine, discharged.
    m = timedelta(minutes=1)
    esk = services.schedule_session(
        user=nurse,
        patient=ann,
        protocol_id="esk-trd-label",
        scheduled_at=t0 - 30 * m,
        planned_dose_mg=84,
        session_number=3,
    )
    c.sessions["esk"] = esk
    services.transition(user=nurse, session=esk, to="checked_in", at=t0 - 25 * m)
    c.readings["pre"] = _reading(
        nurse,
        esk,
        t0 - 10 * m,
        sbp_mmhg=128,
        dbp_mmhg=82,
        hr_bpm=72,
        spo2_pct=98,
        rr_per_min=14,
        temp_c=36.6,
        moaas=5,
        cadss_total=0,
    )
    _open_gate(nurse, prescriber, esk, ESK_ANSWERS, t0 - 5 * m)
    for n in range(3):
        c.doses[f"d{n + 1}"] = services.record_administration(
            user=nurse,
            session=esk,
            kind="nasal_device",
            at=t0 + 5 * n * m,
            entered_at=t0 + 5 * n * m,
            lot_id=lot_for(esk).pk,
        )
    c.events["dissociation"] = services.record_adverse_event(
        user=nurse,
        session=esk,
        term="Dissociation",
        severity="moderate",
        serious=False,
        onset_at=t0 + 20 * m,
        action_taken="Reassurance, lights dimmed",
        outcome="resolved",
        description="Felt detached from surroundings",
    )
    c.readings["r40"] = _reading(
        nurse,
        esk,
        t0 + 40 * m,
        sbp_mmhg=150,
        dbp_mmhg=80,
        hr_bpm=88,
        spo2_pct=97,
        rr_per_min=16,
        moaas=5,
        cadss_total=12,
    )
    c.events["bp"] = services.record_adverse_event(
        user=nurse,
        session=esk,
        term="Blood pressure increased",
        severity="mild",
        serious=False,
        onset_at=t0 + 40 * m,
        action_taken="",
        outcome="resolving",
    )
    for minute, sbp in ((60, 136), (85, 130), (118, 126)):
        c.readings[f"r{minute}"] = _reading(
            nurse, esk, t0 + minute * m, sbp_mmhg=sbp, dbp_mmhg=80, hr_bpm=74, moaas=5, cadss_total=0
        )
    esk.refresh_from_db()
    services.discharge(
        user=nurse,
        session=esk,
        now=t0 + 121 * m,
        clinician_confirms_stable=True,
        escort_present=True,
        driving_advice_given=True,
    )

    # Ann, IV ketamine with a rate change, then the session is stopped.
    t1 = c.t1
    iv = services.schedule_session(
        user=nurse, patient=ann, protocol_id="iv-trd-elektd", scheduled_at=t1 - 20 * m, planned_dose_mg=35
    )
    c.sessions["iv"] = iv
    services.transition(user=nurse, session=iv, to="checked_in", at=t1 - 15 * m)
    c.readings["iv_pre"] = _reading(
        nurse, iv, t1 - 5 * m, sbp_mmhg=122, dbp_mmhg=78, hr_bpm=70, spo2_pct=99, rr_per_min=12
    )
    _open_gate(nurse, prescriber, iv, IV_ANSWERS, t1 - 3 * m)
    c.doses["start"] = _infusion(nurse, prescriber, iv, t1, 35, 150)
    c.doses["slower"] = services.record_administration(
        user=nurse,
        session=iv,
        kind="rate_change",
        at=t1 + 15 * m,
        entered_at=t1 + 15 * m,
        rate_ml_per_h=100,
        note="BP 168/98",
        verifier=sign(prescriber),
    )
    c.doses["stop"] = services.record_administration(
        user=nurse, session=iv, kind="infusion_stop", at=t1 + 45 * m, entered_at=t1 + 45 * m
    )
    iv.refresh_from_db()
    services.transition(
        user=nurse, session=iv, to="stopped", reason="Patient felt unwell, left with escort", at=t1 + 50 * m
    )

    # Ann: one planned, one cancelled before arrival.
    c.sessions["planned"] = services.schedule_session(
        user=nurse,
        patient=ann,
        protocol_id="esk-trd-label",
        scheduled_at=now + timedelta(days=2),
        planned_dose_mg=84,
        session_number=4,
    )
    cancelled = services.schedule_session(
        user=nurse,
        patient=ann,
        protocol_id="esk-trd-label",
        scheduled_at=t0 - timedelta(days=1),
        planned_dose_mg=56,
    )
    services.transition(
        user=nurse,
        session=cancelled,
        to="stopped",
        reason="Patient cancelled by phone",
        at=t0 - timedelta(days=1, hours=2),
    )
    c.sessions["cancelled"] = cancelled

    # Ben, IV infusion running now.
    t2 = c.t2
    running = services.schedule_session(
        user=nurse, patient=ben, protocol_id="iv-trd-elektd", scheduled_at=t2 - 15 * m, planned_dose_mg=40
    )
    c.sessions["running"] = running
    services.transition(user=nurse, session=running, to="checked_in", at=t2 - 10 * m)
    c.readings["ben"] = _reading(nurse, running, t2 - 5 * m, sbp_mmhg=118, dbp_mmhg=76)
    _open_gate(nurse, prescriber, running, IV_ANSWERS, t2 - 2 * m)
    c.doses["running"] = _infusion(nurse, prescriber, running, t2, 40, 120)

    # Another organization.
    other = services.schedule_session(
        user=outsider, patient=theirs, protocol_id="iv-trd-elektd", scheduled_at=t0, planned_dose_mg=35
    )
    c.sessions["theirs"] = other
    services.transition(user=outsider, session=other, to="checked_in", at=t0 + 5 * m)
    c.readings["theirs"] = _reading(
        outsider, other, t0 + 10 * m, sbp_mmhg=120, dbp_mmhg=80, hr_bpm=70, spo2_pct=98, rr_per_min=14
    )
    _open_gate(outsider, outsider_prescriber, other, IV_ANSWERS, t0 + 12 * m)
    c.doses["theirs"] = _infusion(outsider, outsider_prescriber, other, t0 + 15 * m, 35, 150)
    c.events["theirs"] = services.record_adverse_event(
        user=outsider,
        session=other,
        term="Nausea",
        severity="mild",
        serious=False,
        onset_at=t0 + 30 * m,
        action_taken="Ondansetron per protocol",
        outcome="resolved",
    )
    return c
