"""Monitor readings reach the treatment session active in the monitor's chair: the session's readings,
its alert engine (with baseline and dose time) and therefore the live board (issue: interoperability)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from hl7.client import MLLPClient
from tests.consent.helpers import consent_on_file
from tests.ledger.stock import lot_for

from ketaclinic.accounts.models import Chair
from ketaclinic.chairside import services as chairside
from ketaclinic.chairside.models import Observation, SessionAlert
from ketaclinic.clinical.vitals import VitalReading
from ketaclinic.interop.hl7.simulator import make_vitals_message
from ketaclinic.monitoring.models import MonitorDevice
from ketaclinic.monitoring.models import VitalReading as MonitorReading

from .conftest import ThreadedListener

EUI = "0123456789ABCDEF"


def _dosing_session(nurse: Any, prescriber: Any, patient: Any, chair: Any) -> Any:
    consent_on_file(nurse, patient, "esketamine")
    now = timezone.now()
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=now - timedelta(minutes=60),
        planned_dose_mg=56,
        chair=chair,
    )
    chairside.transition(user=nurse, session=session, to="checked_in")
    chairside.record_observation(
        user=nurse,
        session=session,
        reading=VitalReading(
            taken_at=now - timedelta(minutes=50),
            sbp_mmhg=126,
            dbp_mmhg=80,
            hr_bpm=70,
            spo2_pct=98,
            rr_per_min=14,
        ),
    )
    chairside.evaluate_gate(
        user=nurse,
        session=session,
        answers={
            "rems_patient_enrolled": True,
            "rems_setting_certified": True,
            "hours_since_food": 3.0,
            "minutes_since_liquids": 60.0,
            "nasal_steroid_or_decongestant_today": False,
            "escort_confirmed": True,
            "ride_home_confirmed": True,
            "pregnancy_test": "negative",
            "pregnancy_test_on": timezone.localdate(now) - timedelta(days=1),
        },
        now=now - timedelta(minutes=48),
    )
    chairside.override_gate_item(
        user=prescriber,
        session=session,
        item_key="screening",
        reason="Screening on paper for this test",
        now=now - timedelta(minutes=47),
    )
    for n in range(2):
        chairside.record_administration(
            user=nurse,
            session=session,
            kind="nasal_device",
            at=now - timedelta(minutes=45 - 5 * n),
            entered_at=now - timedelta(minutes=45 - 5 * n),
            lot_id=lot_for(session).pk,
        )
    session.refresh_from_db()
    return session


def test_a_monitor_in_a_chair_feeds_the_session_in_that_chair(
    transactional_db: Any, org: Any, site: Any, nurse: Any, prescriber: Any, patient: Any
) -> None:
    chair = Chair.objects.create(organization=org, site=site, label="Chair 4")
    MonitorDevice.objects.create(organization=org, site=site, chair=chair, identifier=EUI)
    session = _dosing_session(nurse, prescriber, patient, chair)
    before = Observation.objects.filter(session=session).count()
    at = timezone.localtime(timezone.now() - timedelta(minutes=5), site.zone)
    message = make_vitals_message(
        device_eui64=EUI,
        bed="Chair 4",
        patient_id="",
        at=at,
        sbp=186,
        dbp=98,
        hr=88,
        spo2=96,
        rr=14,
        control_id="SIM-1",
        style="mdc",
    )
    listener = ThreadedListener(organization=org, default_site=site)
    try:
        with MLLPClient(listener.host, listener.port) as client:
            ack = client.send_message(message.replace("\n", "\r"))
    finally:
        listener.stop()
    assert b"MSA|AA|SIM-1" in ack
    obs = Observation.objects.filter(session=session).exclude(pk__in=[]).order_by("-observed_at").first()
    assert Observation.objects.filter(session=session).count() == before + 1
    assert (obs.sbp_mmhg, obs.dbp_mmhg, obs.hr_bpm, obs.spo2_pct, obs.rr_per_min, obs.source) == (
        186,
        98,
        88,
        96,
        14,
        "hl7",
    )
    # The session's engine judged it against the session's baseline (126/80): SBP ≥180 and a rise ≥40.
    codes = set(SessionAlert.objects.filter(session=session).values_list("code", flat=True))
    assert {"sbp_high", "sbp_rise"} <= codes
    raw = MonitorReading.objects.filter(patient=patient)
    assert raw.count() >= 5 and all(r.bound for r in raw)  # the monitor's own record is kept too
