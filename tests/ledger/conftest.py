"""Stock and sessions ready to dose, for the register's tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from tests.clock import clinic_today
from tests.consent.helpers import consent_on_file
from tests.ledger.stock import receive

from ketaclinic.chairside import services as chairside
from ketaclinic.clinical.vitals import VitalReading

# No intake in these tests records that the patient cannot become pregnant: a negative test taken today.
IV_ANSWERS = {
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
    "pregnancy_test_on": clinic_today(),
}
ESK_ANSWERS = IV_ANSWERS | {
    "rems_patient_enrolled": True,
    "rems_setting_certified": True,
    "hours_since_food": 3.0,
    "minutes_since_liquids": 45.0,
    "nasal_steroid_or_decongestant_today": False,
}


@pytest.fixture
def stocked(nurse: Any, site: Any) -> Any:
    """Lot K2026A: ketamine HCl 50 mg/mL, 100 mL in 10 vials."""
    return receive(
        nurse,
        site,
        strength="50",
        quantity="100",
        lot="K2026A",
        product="Ketamine HCl 50 mg/mL, 10 mL vial",
        containers=10,
        ndc="0409-2051-05",
    )


def ready_to_dose(
    nurse: Any, prescriber: Any, patient: Any, protocol: str = "iv-trd-elektd", dose: int = 35, **extra: Any
) -> Any:
    """A session of ``patient`` in pre-dose with the gate open (consent, baseline, screening decided by the
    prescriber), so that a dose may be recorded now."""
    drug = "esketamine" if protocol.startswith("esk") else "ketamine"
    now = timezone.now().replace(microsecond=0)
    route = {"esk": "intranasal", "sl-": "sublingual", "im-": "im"}.get(protocol[:3], "iv")
    consent_on_file(nurse, patient, drug, route)
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id=protocol,
        scheduled_at=now - timedelta(minutes=20),
        planned_dose_mg=dose,
        **extra,
    )
    chairside.transition(user=nurse, session=session, to="checked_in", at=now - timedelta(minutes=15))
    chairside.record_observation(
        user=nurse,
        session=session,
        reading=VitalReading(
            taken_at=now - timedelta(minutes=12),
            sbp_mmhg=124,
            dbp_mmhg=78,
            hr_bpm=70,
            spo2_pct=98,
            rr_per_min=14,
        ),
    )
    answers = ESK_ANSWERS if drug == "esketamine" else IV_ANSWERS
    chairside.evaluate_gate(user=nurse, session=session, answers=answers, now=now - timedelta(minutes=10))
    chairside.override_gate_item(
        user=prescriber,
        session=session,
        item_key="screening",
        reason="Screening signed on paper at intake",
        now=now - timedelta(minutes=9),
    )
    session.refresh_from_db()
    return session


@pytest.fixture
def iv_ready(nurse: Any, prescriber: Any, patient: Any) -> Any:
    """An IV session (ELEKT-D, 35 mg) with the gate open."""
    return ready_to_dose(nurse, prescriber, patient)
