"""A whole esketamine session through the services: gate, devices, readings, alerts, discharge at 120 min."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from tests.clock import clinic_today
from tests.conftest import sign
from tests.ledger.stock import lot_for

from ketaclinic.accounts.cosign import Signature
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services
from ketaclinic.chairside.models import SessionAlert, SessionEvent, TreatmentSession

from .conftest import GOOD_ESK_ANSWERS, reading


def _device(user: Any, session: Any, at: Any) -> Any:
    return services.record_administration(
        user=user, session=session, kind="nasal_device", at=at, entered_at=at, lot_id=lot_for(session).pk
    )


def test_gate_without_consent_or_with_high_bp_stays_closed(patient: Any, nurse: Any, t0: Any) -> None:
    session = services.schedule_session(
        user=nurse, patient=patient, protocol_id="esk-trd-label", scheduled_at=t0, planned_dose_mg=56
    )
    services.transition(user=nurse, session=session, to="checked_in")
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 - timedelta(minutes=5), 152, 94)
    )
    check = services.evaluate_gate(user=nurse, session=session, answers=GOOD_ESK_ANSWERS)
    status = {i["key"]: i["status"] for i in check.items}
    assert not check.passed
    assert status["consent"] == "fail"
    assert status["baseline_vitals"] == "needs_decision"  # 152/94 is above the label's 140/90 guide
    with pytest.raises(services.SessionError, match="pre-dose gate is not open"):
        services.transition(user=nurse, session=session, to="dosing")


def test_consent_cannot_be_overridden_but_screening_can(
    esk_session: Any, nurse: Any, prescriber: Any
) -> None:
    check = services.evaluate_gate(user=nurse, session=esk_session, answers=GOOD_ESK_ANSWERS)
    assert {i["key"]: i["status"] for i in check.items}["screening"] == "fail"
    with pytest.raises(services.SessionError, match="Only a prescriber"):
        services.override_gate_item(user=nurse, session=esk_session, item_key="screening", reason="x" * 20)
    with pytest.raises(services.SessionInputError):
        services.override_gate_item(user=prescriber, session=esk_session, item_key="screening", reason="ok")
    after = services.override_gate_item(
        user=prescriber, session=esk_session, item_key="screening", reason="Screening signed on paper today"
    )
    assert after.passed
    entry = AuditEntry.objects.get(category="pre-dose-gate-override")
    assert entry.user == prescriber and "signed on paper" in entry.after


def test_devices_five_minutes_apart_and_a_warning_when_closer(open_gate: Any, nurse: Any, t0: Any) -> None:
    first = _device(nurse, open_gate, t0)
    open_gate.refresh_from_db()
    assert open_gate.status == "dosing" and open_gate.dose_started_at == t0 and first.device_number == 1
    second = _device(nurse, open_gate, t0 + timedelta(minutes=3))
    assert "3.0 min after the previous one" in second.warning
    third = _device(nurse, open_gate, t0 + timedelta(minutes=8))
    assert third.warning == ""
    open_gate.refresh_from_db()
    assert open_gate.status == "monitoring"  # 3 × 28 = 84 mg given
    with pytest.raises(services.SessionInputError):
        _device(nurse, open_gate, t0 + timedelta(minutes=14))


def test_bp_surge_raises_one_alert_that_needs_a_note(open_gate: Any, nurse: Any, t0: Any) -> None:
    _device(nurse, open_gate, t0)
    open_gate.refresh_from_db()
    services.record_observation(
        user=nurse, session=open_gate, reading=reading(t0 + timedelta(minutes=40), 184, 96)
    )
    services.record_observation(
        user=nurse, session=open_gate, reading=reading(t0 + timedelta(minutes=45), 186, 98)
    )
    alerts = SessionAlert.objects.filter(session=open_gate, code="sbp_high")
    assert alerts.count() == 1  # the same open alert is not raised twice
    alert = alerts.get()
    assert alert.severity == "critical" and "184/96" in alert.message and "40 min" in alert.message
    assert SessionAlert.objects.filter(session=open_gate, code="sbp_rise").exists()  # +56 over baseline 128
    with pytest.raises(services.SessionInputError):
        services.acknowledge_alert(user=nurse, alert_id=alert.pk, note="")
    services.acknowledge_alert(user=nurse, alert_id=alert.pk, note="Repeat BP in 5 min; prescriber told")
    alert.refresh_from_db()
    assert alert.acknowledged_by == nurse and alert.acknowledged_at is not None


def _finish_esketamine(session: Any, nurse: Any, t0: Any) -> None:
    for n in range(3):
        _device(nurse, session, t0 + timedelta(minutes=5 * n))
    for minutes, sbp in [(40, 150), (60, 136), (85, 130), (118, 126)]:
        services.record_observation(
            user=nurse,
            session=session,
            reading=reading(t0 + timedelta(minutes=minutes), sbp, 80, moaas=5, cadss_total=0),
        )
    session.refresh_from_db()


def test_discharge_refused_at_90_minutes_allowed_after_120(
    open_gate: Any, nurse: Any, prescriber: Any, t0: Any
) -> None:
    _finish_esketamine(open_gate, nurse, t0)
    kwargs = {"clinician_confirms_stable": True, "escort_present": True, "driving_advice_given": True}
    with pytest.raises(services.SessionInputError) as refused:
        services.discharge(user=nurse, session=open_gate, now=t0 + timedelta(minutes=90), **kwargs)
    assert any("minimum 120" in reason for reason in refused.value.errors.values())
    with pytest.raises(services.SessionInputError) as not_even_signed:  # the 2 hours (REMS): never
        services.discharge(
            user=nurse,
            session=open_gate,
            now=t0 + timedelta(minutes=90),
            overrides={"min_monitoring": "Patient wants to leave now"},
            prescriber=sign(prescriber),
            **kwargs,
        )
    assert "minimum 120" in not_even_signed.value.errors["criterion.min_monitoring"]
    record = services.discharge(user=nurse, session=open_gate, now=t0 + timedelta(minutes=121), **kwargs)
    open_gate.refresh_from_db()
    assert open_gate.status == "discharged" and record.escort_present
    assert open_gate.ready_at is not None and open_gate.ready_at <= t0 + timedelta(minutes=121)


def test_discharge_needs_escort_and_driving_advice_or_a_prescribers_signed_reason(
    open_gate: Any, nurse: Any, prescriber: Any, t0: Any
) -> None:
    _finish_esketamine(open_gate, nurse, t0)
    with pytest.raises(services.SessionInputError) as refused:
        services.discharge(
            user=nurse,
            session=open_gate,
            now=t0 + timedelta(minutes=125),
            clinician_confirms_stable=True,
            escort_present=False,
            driving_advice_given=False,
        )
    assert set(refused.value.errors) >= {"criterion.escort", "criterion.driving_advice"}
    late = {
        "now": t0 + timedelta(minutes=125),
        "clinician_confirms_stable": True,
        "escort_present": False,
        "driving_advice_given": True,
        "overrides": {"escort": "Escort waiting in the car park, confirmed by phone"},
    }
    with pytest.raises(services.SessionInputError) as alone:  # a nurse alone cannot go past a criterion
        services.discharge(user=nurse, session=open_gate, **late)
    assert "choose the prescriber who signs" in alone.value.errors["prescriber"]
    record = services.discharge(user=nurse, session=open_gate, prescriber=sign(prescriber), **late)
    assert record.overridden_by == prescriber and record.overrides[0]["by"] == prescriber.display_name
    entry = AuditEntry.objects.filter(category="treatment-session", after__contains="discharged").get()
    assert "car park" in entry.after and prescriber.username in entry.after


def test_every_transition_is_named_timed_and_audited(open_gate: Any, nurse: Any, t0: Any) -> None:
    _finish_esketamine(open_gate, nurse, t0)
    chain = list(
        SessionEvent.objects.filter(session=open_gate).order_by("pk").values_list("from_status", "to_status")
    )
    assert chain == [
        ("scheduled", "checked_in"),
        ("checked_in", "pre_dose"),
        ("pre_dose", "dosing"),
        ("dosing", "monitoring"),
    ]
    assert all(e.by_id == nurse.pk for e in SessionEvent.objects.filter(session=open_gate))


def test_stop_needs_a_reason(esk_session: Any, nurse: Any) -> None:
    with pytest.raises(services.SessionInputError):
        services.transition(user=nurse, session=esk_session, to="stopped", reason="")
    services.transition(user=nurse, session=esk_session, to="stopped", reason="Patient declined today")
    assert TreatmentSession.objects.get(pk=esk_session.pk).stop_reason == "Patient declined today"


def test_second_change_with_a_stale_version_is_refused(esk_session: Any, nurse: Any, prescriber: Any) -> None:
    stale = esk_session.version
    services.transition(
        user=nurse, session=esk_session, to="stopped", reason="Unwell today", expected_version=stale
    )
    other = TreatmentSession.objects.get(pk=esk_session.pk)
    other.status = "checked_in"  # what the second nurse's screen still shows
    with pytest.raises(services.SessionConflict, match="A colleague changed this session"):
        services._bump(other, stale, stop_reason="overwrite")
    assert TreatmentSession.objects.get(pk=esk_session.pk).stop_reason == "Unwell today"


def test_iv_infusion_needs_a_second_person_and_records_rate_changes(
    consented: Any, nurse: Any, prescriber: Any, t0: Any
) -> None:
    session = services.schedule_session(
        user=nurse, patient=consented, protocol_id="iv-trd-elektd", scheduled_at=t0, planned_dose_mg=35
    )
    services.transition(user=nurse, session=session, to="checked_in", at=t0 - timedelta(minutes=20))
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 - timedelta(minutes=15), 122, 78)
    )
    services.evaluate_gate(
        user=nurse,
        session=session,
        answers={
            "escort_confirmed": True,
            "ride_home_confirmed": True,
            "pregnancy_test": "negative",
            "pregnancy_test_on": clinic_today(),
        },
        now=t0 - timedelta(minutes=10),
    )
    services.override_gate_item(
        user=prescriber,
        session=session,
        item_key="screening",
        reason="Screening reviewed at intake visit last week",
        now=t0 - timedelta(minutes=9),
    )
    start = {
        "kind": "infusion_start",
        "at": t0,
        "entered_at": t0,
        "lot_id": lot_for(session).pk,  # 10 mg/mL
        "given": "3.5",
        "container_volume_ml": 100,
        "dose_mg": 35,
        "rate_ml_per_h": 150,  # 35 mg in 100 mL over 40 min
    }
    with pytest.raises(services.SessionInputError) as missing:
        services.record_administration(user=nurse, session=session, **start)
    assert "second-person check" in missing.value.errors["verified_by"]
    with pytest.raises(services.SessionInputError) as self_check:
        services.record_administration(user=nurse, session=session, verifier=sign(nurse), **start)
    assert "someone other than you" in self_check.value.errors["verified_by"]
    wrong = Signature(prescriber, "not the password", sign(prescriber).code)
    with pytest.raises(services.SessionInputError) as bad_password:
        services.record_administration(user=nurse, session=session, verifier=wrong, **start)
    assert "not accepted" in bad_password.value.errors["verified_by_password"]
    services.record_administration(user=nurse, session=session, verifier=sign(prescriber), **start)
    change = {
        "kind": "rate_change",
        "at": t0 + timedelta(minutes=15),
        "entered_at": t0 + timedelta(minutes=15),
        "rate_ml_per_h": 100,
    }
    with pytest.raises(services.SessionInputError) as unsigned:  # no second person, no reason
        services.record_administration(user=nurse, session=session, **change)
    assert set(unsigned.value.errors) == {"verified_by", "note"}
    services.record_administration(
        user=nurse, session=session, verifier=sign(prescriber), note="BP 168/98: rate slowed", **change
    )
    services.record_administration(
        user=nurse,
        session=session,
        kind="infusion_stop",
        at=t0 + timedelta(minutes=45),
        entered_at=t0 + timedelta(minutes=45),
    )
    session.refresh_from_db()
    assert session.status == "monitoring" and session.dosing_ended_at == t0 + timedelta(minutes=45)
    rows = list(session.administrations.values_list("kind", "rate_ml_per_h", "rate_mg_per_h", "verified_by"))
    assert [k for k, *_ in rows] == ["infusion_start", "rate_change", "infusion_stop"]
    assert rows[0][2] == Decimal("52.50") and rows[1][1:] == (100, Decimal("35.00"), prescriber.pk)


def test_iv_reading_cadence_is_every_10_minutes_during_infusion(consented: Any, nurse: Any, t0: Any) -> None:
    session = services.schedule_session(
        user=nurse, patient=consented, protocol_id="iv-trd-elektd", scheduled_at=t0, planned_dose_mg=35
    )
    session.status, session.dose_started_at = "dosing", t0
    session.save()
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 + timedelta(minutes=1), 120, 80)
    )
    due = services.next_due(session, now=t0 + timedelta(minutes=5))
    assert due is not None and due.due_at == t0 + timedelta(minutes=11)  # 10 min after the last reading
    overdue = services.check_overdue(session, now=t0 + timedelta(minutes=30))
    assert overdue is not None and overdue.code == "reading_overdue"
