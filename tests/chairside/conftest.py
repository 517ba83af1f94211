from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from tests.clock import clinic_today
from tests.consent.helpers import consent_on_file

from ketaclinic.chairside import services
from ketaclinic.clinical.vitals import VitalReading

GOOD_ESK_ANSWERS = {
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


@pytest.fixture
def t0() -> Any:
    """The first dose, 3 hours ago (so every later event in a test is in the past)."""
    return timezone.now().replace(microsecond=0) - timedelta(hours=3)


@pytest.fixture
def consented(patient: Any, nurse: Any) -> Any:
    three_days_ago = timezone.localdate(timezone.now(), patient.site.zone) - timedelta(days=3)
    consent_on_file(nurse, patient, "esketamine", signed_on=three_days_ago)
    for route in ("iv", "im", "sublingual"):
        consent_on_file(nurse, patient, "ketamine", route, signed_on=three_days_ago)
    return patient


def reading(
    at: Any, sbp: int, dbp: int, hr: int = 72, spo2: int = 98, rr: int = 14, **extra: Any
) -> VitalReading:
    return VitalReading(
        taken_at=at, sbp_mmhg=sbp, dbp_mmhg=dbp, hr_bpm=hr, spo2_pct=spo2, rr_per_min=rr, **extra
    )


@pytest.fixture
def esk_session(consented: Any, nurse: Any, t0: Any) -> Any:
    session = services.schedule_session(
        user=nurse,
        patient=consented,
        protocol_id="esk-trd-label",
        scheduled_at=t0 - timedelta(minutes=30),
        planned_dose_mg=84,
        session_number=3,  # induction, after day 1: 56 or 84 mg (label)
    )
    services.transition(user=nurse, session=session, to="checked_in", at=t0 - timedelta(minutes=25))
    services.record_observation(
        user=nurse,
        session=session,
        reading=reading(t0 - timedelta(minutes=10), 128, 82, moaas=5, cadss_total=0),
    )
    return session


@pytest.fixture
def open_gate(esk_session: Any, nurse: Any, prescriber: Any, t0: Any) -> Any:
    """The gate opened 5 minutes before the first dose (t0); the morning is replayed with ``now``."""
    services.evaluate_gate(
        user=nurse, session=esk_session, answers=GOOD_ESK_ANSWERS, now=t0 - timedelta(minutes=6)
    )
    # No signed screening exists in these tests: the prescriber records the decision to proceed.
    services.override_gate_item(
        user=prescriber,
        session=esk_session,
        item_key="screening",
        reason="Screening signed on paper today; entry pending in the system",
        now=t0 - timedelta(minutes=5),
    )
    esk_session.refresh_from_db()
    return esk_session
