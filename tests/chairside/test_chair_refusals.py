"""Each thing the clinic walkthrough found accepted at the chair (issue 13, *Why*) is refused, or asks for the
decision of the person the rule names — on the paths a clinic uses: the JSON API and the session pages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client
from tests.consent.helpers import consent_body
from tests.ledger.stock import ketamine_ml, spravato

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import services
from ketaclinic.chairside.models import Administration, SessionAlert, TreatmentSession
from ketaclinic.chairside.rems_services import _derive
from ketaclinic.clinical.protocol_library import PROTOCOLS

from .journey import Api, signature

T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
ESK_GATE = {
    "rems_patient_enrolled": True,
    "rems_setting_certified": True,
    "hours_since_food": 3,
    "minutes_since_liquids": 45,
    "nasal_steroid_or_decongestant_today": False,
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
    "pregnancy_test_on": "2026-12-06",
}
IV_GATE = {
    "escort_confirmed": True,
    "ride_home_confirmed": True,
    "pregnancy_test": "negative",
    "pregnancy_test_on": "2026-12-06",
}


def _session_body(patient: Any, protocol: str, dose: str, **extra: Any) -> dict[str, Any]:
    return {
        "patient_id": str(patient.pk),
        "protocol_id": protocol,
        "planned_dose_mg": dose,
        "scheduled_at": T0.isoformat(),
    } | extra


def _ready_to_dose(
    desk: Api,
    rx: Api,
    patient: Any,
    protocol: str,
    dose: str,
    answers: dict[str, Any],
    clock: Any,
    **extra: Any,
) -> str:
    """Consent, schedule, check in, baseline, gate (screening decided by the prescriber): the gate opens
    at T0 − 5 min."""
    drug = "esketamine" if protocol.startswith("esk") else "ketamine"
    route = PROTOCOLS[protocol].route.value
    desk.ok(f"/patients/{patient.pk}/consents", consent_body(drug, "2026-12-07", route=route), status=201)
    session = desk.ok("/sessions", _session_body(patient, protocol, dose, **extra), status=201)
    sid = session["id"]
    clock.move_to(T0 - 15 * M)
    desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": session["version"]})
    desk.reading(sid, T0 - 14 * M, "b")
    desk.ok(f"/sessions/{sid}/gate", answers)
    clock.move_to(T0 - 5 * M)
    gate = rx.ok(
        f"/sessions/{sid}/gate/overrides", {"item_key": "screening", "reason": "Screening on paper today"}
    )
    assert gate["passed"]
    return str(sid)


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(T0 - 30 * M, tick=False) as traveller:
        yield traveller


@pytest.fixture
def lots(clock: Any, nurse: Any, site: Any) -> dict[str, Any]:
    """The site's stock the doses are drawn from (received before the morning's sessions)."""
    return {
        "k10": ketamine_ml(nurse, site, "10"),
        "k50": ketamine_ml(nurse, site, "50"),
        "k100": ketamine_ml(nurse, site, "100"),
        "esk": spravato(nurse, site),
    }


# --- scheduling ------------------------------------------------------------------------------------------


def test_a_dose_past_a_hard_limit_is_refused_from_the_api_and_the_chart(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any
) -> None:
    patient = make_patient(nurse, weight_kg=71.4, height_cm=175)
    desk = Api(nurse, sign_in)
    iv = desk.refused("/sessions", _session_body(patient, "iv-trd-elektd", "500"))  # 7 mg/kg
    assert "7 mg/kg is outside the hard limit 0.1–1 mg/kg" in iv["planned_dose_mg"]
    assert "Fava 2020" in iv["planned_dose_mg"]
    esk = desk.refused("/sessions", _session_body(patient, "esk-trd-label", "100", session_number=2))
    assert "allowed doses are 28, 56, 84 mg" in esk["planned_dose_mg"]
    # The chart's scheduling form (CSRF enforced): the same rule, the same words, nothing stored.
    chart = sign_in(Client(enforce_csrf_checks=True), nurse)
    token = chart.get(f"/patients/{patient.pk}/").content.decode()
    token = token.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    page = chart.post(
        f"/patients/{patient.pk}/sessions/new/",
        {"protocol_id": "iv-trd-elektd", "planned_dose_mg": "500", "csrfmiddlewaretoken": token},
        follow=True,
    ).content.decode()
    assert "outside the hard limit 0.1–1 mg/kg" in page
    assert not TreatmentSession.objects.filter(patient=patient).exists()


def test_crps_above_25_mg_per_hour_is_refused_and_a_soft_limit_needs_a_prescriber(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any
) -> None:
    big = make_patient(nurse, weight_kg=150, height_cm=185, sex="male")
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    crps = desk.refused("/sessions", _session_body(big, "iv-crps-cohen", "210"))  # 52.5 mg/h
    assert "52.5 mg/h is above the cap of 25 mg/h" in crps["planned_dose_mg"]
    desk.ok("/sessions", _session_body(big, "iv-crps-cohen", "100"), status=201)  # 25 mg/h × 4 h
    # 0.75 mg/kg × 140 kg = 105 mg: above the clinic's 100 mg, so a prescriber writes the reason.
    heavy = make_patient(nurse, given_name="Hal", weight_kg=140, height_cm=185, sex="male")
    body = _session_body(heavy, "iv-trd-elektd", "105")
    refused = desk.refused("/sessions", body | {"dose_override_reason": "Partial response at 0.5 mg/kg"})
    assert "Only a prescriber can decide this" in refused["dose_override_reason"]
    assert "default, unconfirmed" in refused["dose_override_reason"]
    made = rx.ok("/sessions", body | {"dose_override_reason": "Partial response at 0.5 mg/kg"}, status=201)
    stored = TreatmentSession.objects.get(pk=made["id"])
    assert stored.dose_decided_by == prescriber and "Partial response" in stored.dose_override_reason
    assert AuditEntry.objects.filter(object_id=str(stored.pk), after__contains="Partial response").exists()


# --- doses at the chair ---------------------------------------------------------------------------------


def test_undiluted_100_mg_per_ml_at_1350_mg_per_hour_is_refused_and_nothing_stored(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse)  # 70 kg
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "iv-trd-elektd", "35", IV_GATE, clock)
    clock.move_to(T0)
    refused = desk.refused(
        f"/sessions/{sid}/administrations",
        {
            "kind": "infusion_start",
            "lot_id": str(lots["k100"].pk),  # 100 mg/mL, not diluted (no bag volume)
            "given": "0.35",
            "dose_mg": "35",
            "rate_ml_per_h": "13.5",
            "verifier": signature(prescriber),
        },
    )
    assert "must not be given IV undiluted" in refused["container_volume_ml"]
    assert (
        "1350.0 mg/h" in refused["rate_ml_per_h"]
        and "faster than the protocol ever allows" in refused["rate_ml_per_h"]
    )
    assert not Administration.objects.filter(session_id=sid).exists()
    assert TreatmentSession.objects.get(pk=sid).status == "pre_dose"
    assert lots["k100"].entries.count() == 1  # the receipt only: nothing drawn


def test_more_than_planned_needs_a_prescribers_signature_and_hard_limits_hold_even_then(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse, weight_kg=80)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "im-clinic-template", "32", IV_GATE, clock)  # 0.4 mg/kg
    clock.move_to(T0)
    injection = {"kind": "injection", "lot_id": str(lots["k50"].pk)}
    more = desk.refused(
        f"/sessions/{sid}/administrations",
        injection | {"dose_mg": "36", "given": "0.72", "verifier": signature(prescriber)},
    )
    assert "more than the 32 mg planned" in more["prescriber"]
    signed = desk.ok(
        f"/sessions/{sid}/administrations",
        injection
        | {
            "dose_mg": "36",
            "given": "0.72",
            "verifier": signature(prescriber),
            "prescriber": signature(prescriber),
            "decision_reason": "Weight rechecked today: 90 kg",
        },
        status=201,
    )
    assert signed["decided_by"] == prescriber.pk and signed["verified_by"] == prescriber.pk


def test_a_signature_never_passes_a_hard_limit(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse, weight_kg=80)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "im-clinic-template", "32", IV_GATE, clock)
    clock.move_to(T0)
    injection = {"kind": "injection", "lot_id": str(lots["k50"].pk)}
    # 48 mg = 0.6 mg/kg: above the template's hard 0.5 mg/kg; no signature makes it a dose.
    hard = desk.refused(
        f"/sessions/{sid}/administrations",
        injection
        | {
            "dose_mg": "48",
            "given": "0.96",
            "verifier": signature(prescriber),
            "prescriber": signature(prescriber),
            "decision_reason": "Prescriber wants a higher dose",
        },
    )
    assert "outside the hard limit 0.1–0.5 mg/kg" in hard["dose_mg"]


def test_a_back_dated_device_cannot_shorten_the_esketamine_two_hours(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "esk-trd-label", "56", ESK_GATE, clock)
    device = {"kind": "nasal_device", "lot_id": str(lots["esk"].pk)}
    clock.move_to(T0 + 30 * M)
    # 05:00 typed for the first device: before check-in and before the gate opened.
    early = desk.refused(f"/sessions/{sid}/administrations", device | {"at": "2026-12-07T10:00:00+00:00"})
    assert "before the pre-dose gate opened" in early["at"]
    # Entered 25 minutes late: the reason is asked for, then the clock starts 10 min before entry.
    stated = (T0 + 5 * M).isoformat()
    late = desk.refused(f"/sessions/{sid}/administrations", device | {"at": stated})
    assert "late entry needs the reason" in late["late_entry_reason"]
    first = desk.ok(
        f"/sessions/{sid}/administrations",
        device | {"at": stated, "late_entry_reason": "Charted after settling the patient"},
        status=201,
    )
    assert first["at"].startswith("2026-12-07T15:05") and first["recorded_at"].startswith("2026-12-07T15:30")
    clock.move_to(T0 + 35 * M)
    desk.ok(f"/sessions/{sid}/administrations", device, status=201)
    stored = TreatmentSession.objects.get(pk=sid)
    assert stored.dose_started_at == T0 + 5 * M and stored.dose_clock_at == T0 + 20 * M
    for minutes in (60, 100, 125):
        clock.move_to(T0 + minutes * M)
        desk.reading(sid, T0 + minutes * M, f"{minutes}")
    # Stated first device + 2 h = T0+125, but the 2 hours run from the entry-checked T0+20.
    discharge = {"clinically_stable": True, "escort_present": True, "driving_advice_given": True}
    refused = desk.refused(f"/sessions/{sid}/discharge", discharge)
    assert "minimum 120 min (15 min to go)" in refused["criterion.min_monitoring"]
    clock.move_to(T0 + 141 * M)
    desk.ok(f"/sessions/{sid}/discharge", discharge)
    form, _notes = _derive(TreatmentSession.objects.get(pk=sid), nurse)
    assert form.total_monitoring_minutes == 121  # from the entry-checked first device, not 136


def test_discharge_waits_for_critical_alerts_and_checklists_and_a_nurse_alone_cannot_override(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "iv-trd-elektd", "35", IV_GATE, clock)
    clock.move_to(T0)
    desk.start_infusion(sid, prescriber, dose="35", rate="150", lot=lots["k10"])
    clock.move_to(T0 + 30 * M)
    desk.reading(sid, T0 + 30 * M, "surge", sbp_mmhg=168, dbp_mmhg=112)
    alert = SessionAlert.objects.get(session_id=sid, code="dbp_high")
    assert alert.severity == "critical"
    session = TreatmentSession.objects.get(pk=sid)
    run = services.start_checklist(user=nurse, session=session, code="hypertensive_surge")
    clock.move_to(T0 + 40 * M)
    desk.ok(f"/sessions/{sid}/administrations", {"kind": "infusion_stop"}, status=201)
    for minutes in (50, 60, 75):
        clock.move_to(T0 + minutes * M)
        desk.reading(sid, T0 + minutes * M, f"{minutes}")
    # 35 min after the infusion ended (the IV minimum, 30 min, counts from the end): only the alert and
    # the checklist stand in the way — and nobody can override those, not even a signing prescriber.
    discharge = {"clinically_stable": True, "escort_present": True, "driving_advice_given": True}
    signed = discharge | {
        "overrides": {
            "critical_alerts": "BP settled, patient wants to go home",
            "emergency_checklists": "Checklist done verbally at the chair",
        },
        "prescriber": signature(prescriber),
    }
    refused = desk.refused(f"/sessions/{sid}/discharge", signed)
    assert set(refused) == {"criterion.critical_alerts", "criterion.emergency_checklists"}
    assert (
        "DBP" in refused["criterion.critical_alerts"] or "diastolic" in refused["criterion.critical_alerts"]
    )
    assert "step(s) left" in refused["criterion.emergency_checklists"]
    desk.ok(
        f"/sessions/{sid}/alerts/{alert.pk}/acknowledge",
        {"note": "Rate stopped, BP rechecked, prescriber seen"},
    )
    for index in range(len(run.steps)):
        run = services.complete_step(user=nurse, run=run, index=index)
    desk.ok(f"/sessions/{sid}/discharge", discharge)


def test_the_iv_minimum_counts_from_the_end_of_the_infusion_and_only_a_signing_prescriber_shortens_it(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, lots: dict[str, Any]
) -> None:
    patient = make_patient(nurse)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = _ready_to_dose(desk, rx, patient, "iv-trd-elektd", "35", IV_GATE, clock)
    clock.move_to(T0)
    desk.start_infusion(sid, prescriber, dose="35", rate="150", lot=lots["k10"])
    clock.move_to(T0 + 40 * M)
    desk.ok(f"/sessions/{sid}/administrations", {"kind": "infusion_stop"}, status=201)
    clock.move_to(T0 + 55 * M)
    desk.reading(sid, T0 + 55 * M, "p")
    discharge = {"clinically_stable": True, "escort_present": True, "driving_advice_given": True}
    check = desk.get(f"/sessions/{sid}/discharge").json()
    minimum = next(c for c in check["criteria"] if c["criterion"] == "min_monitoring")
    assert minimum["reason"] == "15 min since the end of the infusion: minimum 30 min (15 min to go)"
    assert minimum["overridable"] and not minimum["confirmed"]
    early = discharge | {"overrides": {"min_monitoring": "Escort must leave; stable for 15 min"}}
    alone = desk.refused(f"/sessions/{sid}/discharge", early)
    assert "choose the prescriber who signs" in alone["prescriber"]
    wrong = desk.refused(
        f"/sessions/{sid}/discharge", early | {"prescriber": signature(prescriber) | {"password": "guess"}}
    )
    assert "not accepted" in wrong["prescriber_password"]
    done = desk.ok(f"/sessions/{sid}/discharge", early | {"prescriber": signature(prescriber)})
    assert done["overridden_by"] == prescriber.pk


def test_an_iv_gate_at_178_108_needs_a_prescriber_and_180_110_is_a_stop(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any
) -> None:
    patient = make_patient(nurse)
    desk = Api(nurse, sign_in)
    desk.ok(f"/patients/{patient.pk}/consents", consent_body("ketamine", "2026-12-07"), status=201)
    session = desk.ok("/sessions", _session_body(patient, "iv-trd-elektd", "35"), status=201)
    sid = session["id"]
    desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": session["version"]})
    for key, (sbp, dbp), expected in (("a", (178, 108), "needs_decision"), ("b", (182, 104), "fail")):
        clock.shift(M)
        desk.reading(sid, datetime.now(UTC), key, sbp_mmhg=sbp, dbp_mmhg=dbp)
        gate = desk.ok(f"/sessions/{sid}/gate", IV_GATE)
        item = next(i for i in gate["items"] if i["key"] == "baseline_vitals")
        assert item["status"] == expected and not gate["passed"], item
        assert "§11" in item["source"] and not item["confirmed"]


def test_the_bipolar_protocol_gate_reads_the_ymrs_and_a_same_day_phq9_item9_always_shows(
    clock: Any, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any
) -> None:
    patient = make_patient(nurse)
    desk = Api(nurse, sign_in)
    desk.ok(f"/patients/{patient.pk}/consents", consent_body("ketamine", "2026-12-07"), status=201)
    session = desk.ok("/sessions", _session_body(patient, "iv-bipolar-wilkowska", "35"), status=201)
    sid = session["id"]
    desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": session["version"]})
    desk.reading(sid, T0 - 31 * M, "b")
    gate = desk.ok(f"/sessions/{sid}/gate", IV_GATE)
    status = {i["key"]: (i["status"], i["reason"]) for i in gate["items"]}
    assert status["pre_session_scales"] == ("fail", "Not completed: YMRS")  # no crash: it names the scale
    phq9 = {str(i): 0 for i in range(1, 9)} | {"9": 1}
    desk.ok(f"/patients/{patient.pk}/scales", {"instrument": "phq9", "answers": phq9}, status=201)
    desk.ok(
        f"/patients/{patient.pk}/scales",
        {"instrument": "ymrs", "answers": {str(i): 0 for i in range(1, 12)}},
        status=201,
    )
    gate = desk.ok(f"/sessions/{sid}/gate", IV_GATE)
    status = {i["key"]: (i["status"], i["reason"]) for i in gate["items"]}
    assert status["pre_session_scales"][0] == "pass"
    assert status["suicidality"][0] == "needs_decision" and "PHQ-9" in status["suicidality"][1]


def test_an_outsider_cannot_drive_someone_elses_session(
    clock: Any, nurse: Any, outsider: Any, make_patient: Any, sign_in: Any
) -> None:
    patient = make_patient(nurse)
    desk = Api(nurse, sign_in)
    session = desk.ok("/sessions", _session_body(patient, "iv-trd-elektd", "35"), status=201)
    other = Api(outsider, sign_in)
    for path, body in (
        (f"/sessions/{session['id']}/gate", IV_GATE),
        (f"/sessions/{session['id']}/administrations", {"kind": "infusion_stop"}),
        (f"/patients/{patient.pk}/consents", consent_body("ketamine", "2026-12-07")),
    ):
        assert other.post(path, body).status_code == 404
    assert other.get(f"/sessions/{session['id']}/discharge").status_code == 404


def test_consent_cannot_be_dated_in_the_future(
    clock: Any, nurse: Any, make_patient: Any, sign_in: Any
) -> None:
    patient = make_patient(nurse)
    refused = Api(nurse, sign_in).refused(
        f"/patients/{patient.pk}/consents", consent_body("ketamine", str(date(2027, 1, 1)))
    )
    assert refused == {"signed_on": "is in the future"}
