"""Protocol library data against clinical.md, JSON round trip, validation, copy and edit."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from ketaclinic.clinical.conditions import (
    INDICATIONS,
    ROUTE_CODES,
    Drug,
    Indication,
    Route,
)
from ketaclinic.clinical.protocol_library import PROTOCOLS, get_protocol
from ketaclinic.clinical.protocols import (
    Cadence,
    DoseKind,
    ObservationAnchor,
    PhaseKind,
    ProtocolValidationError,
    ScaleTiming,
    UnknownProtocol,
    copy_protocol,
    derived_min_spacing_days,
    edit_protocol,
    protocol_from_dict,
    validate_protocol,
)

IV_IDS = ("iv-trd-elektd", "iv-trd-murrough", "iv-trd-ketect", "iv-trd-canadian")


def test_library_ids() -> None:
    assert set(PROTOCOLS) == {
        *IV_IDS,
        "esk-trd-label",
        "esk-mdd-si-label",
        "iv-ptsd-feder",
        "iv-bipolar-wilkowska",
        "iv-crps-cohen",
        "im-clinic-template",
        "sl-clinic-template",
    }


def test_unknown_protocol() -> None:
    with pytest.raises(UnknownProtocol, match="no protocol with the ID 'nope'"):
        get_protocol("nope")


@pytest.mark.parametrize("pid", IV_IDS)
def test_iv_depression_dose_is_half_mg_per_kg_over_40_min(pid: str) -> None:
    # clinical.md §1.1: 0.5 mg/kg IV over 40 min; limits soft 0.5–0.75, hard 0.1–1.0 (documented decision)
    p = get_protocol(pid)
    dose = p.phases[0].dose
    assert (p.drug, p.route, dose.kind, dose.amount, dose.duration_min) == (
        Drug.KETAMINE,
        Route.IV,
        DoseKind.MG_PER_KG,
        0.5,
        40,
    )
    lim = dose.limits
    assert (lim.soft_min, lim.soft_max, lim.hard_min, lim.hard_max) == (0.5, 0.75, 0.1, 1.0)
    assert p.second_person_check is True


@pytest.mark.parametrize(
    ("pid", "per_week", "sessions", "span", "stop_early"),
    [
        ("iv-trd-elektd", 2, 6, None, False),  # ELEKT-D: 6 infusions 2×/week for 3 weeks
        ("iv-trd-murrough", 3, 6, 12, True),  # Murrough 2013: up to 6, 3×/week over 12 days
        ("iv-trd-ketect", 3, 12, None, True),  # KetECT: 3×/week until remission, max 12
        ("iv-trd-canadian", 3, 12, None, True),  # PMC7265624: 3×/week for 3–4 weeks
    ],
)
def test_iv_induction_schedules(
    pid: str, per_week: int, sessions: int, span: int | None, stop_early: bool
) -> None:
    induction = get_protocol(pid).phases[0]
    assert induction.kind is PhaseKind.INDUCTION
    assert induction.cadence == Cadence(per_week=per_week)
    assert (induction.sessions, induction.max_span_days, induction.may_stop_early) == (
        sessions,
        span,
        stop_early,
    )
    assert "§1.3" in induction.source


@pytest.mark.parametrize("pid", IV_IDS)
def test_iv_maintenance_example(pid: str) -> None:
    # §1.4: weekly ×1 month → every 2 weeks ×2 months → monthly ×3 months (monthly = every 28 days, derived)
    maintenance = get_protocol(pid).phases[1:]
    assert [(m.cadence.every_days, m.sessions) for m in maintenance] == [(7, 4), (14, 4), (28, 3)]
    assert all(m.kind is PhaseKind.MAINTENANCE and m.optional for m in maintenance)
    assert maintenance[2].confirmed is False
    assert all("PMC7265624" in m.source for m in maintenance)


def test_esketamine_trd_label() -> None:
    p = get_protocol("esk-trd-label")
    assert (p.drug, p.route, p.indications, p.rems_required) == (
        Drug.ESKETAMINE,
        Route.INTRANASAL,
        (Indication.TREATMENT_RESISTANT_DEPRESSION,),
        True,
    )
    induction, weeks_5_8, week_9_on = p.phases
    # weeks 1–4: day 1 56 mg, then 56 or 84 mg twice weekly
    assert induction.cadence == Cadence(per_week=2) and induction.sessions == 8
    assert induction.first_dose is not None and induction.first_dose.amount == 56
    assert induction.dose.options == (56, 84)
    # weeks 5–8: weekly
    assert weeks_5_8.cadence == Cadence(every_days=7) and weeks_5_8.sessions == 4
    # week 9+: every 2 weeks or weekly, open-ended
    assert week_9_on.cadence == Cadence(every_days=14) and week_9_on.sessions is None
    assert week_9_on.alternative_cadences == (Cadence(every_days=7),)
    assert all(ph.dose.limits.hard_allowed == (28, 56, 84) for ph in p.phases)


def test_esketamine_mdd_si_label() -> None:
    p = get_protocol("esk-mdd-si-label")
    (phase,) = p.phases
    # 84 mg twice weekly for 4 weeks; may reduce to 56 mg
    assert phase.cadence == Cadence(per_week=2) and phase.sessions == 8
    assert phase.dose.amount == 84 and 56 in phase.dose.options
    assert p.indications == (Indication.MDD_WITH_SUICIDAL_IDEATION,)


def test_esketamine_monitoring() -> None:
    mon = get_protocol("esk-trd-label").monitoring
    # ≥120 min from the first device; BP pre, ~40 min, pre-discharge; pulse oximetry; PMF within 7 days
    assert (mon.observation_min, mon.observation_anchor) == (120, ObservationAnchor.FIRST_DOSE)
    assert mon.bp_pre_dose and mon.bp_after_dose_min == (40,) and mon.bp_pre_discharge
    assert mon.pulse_oximetry and mon.rems_monitoring_form_days == 7


def test_iv_monitoring_cadence() -> None:
    mon = get_protocol("iv-trd-elektd").monitoring
    # §7.1 Emory: every 10 min during infusion, every 15 min after
    assert (mon.vitals_during_dose_every_min, mon.vitals_after_dose_every_min) == (10, 15)
    assert mon.observation_confirmed is False


def test_ptsd_feder() -> None:
    p = get_protocol("iv-ptsd-feder")
    (phase,) = p.phases
    assert phase.cadence == Cadence(per_week=3) and phase.sessions == 6 and phase.dose.amount == 0.5
    (wet,) = p.adjuncts
    # Feder 2025: 5 WET sessions after the 4th infusion on non-infusion days
    assert (wet.count, wet.start_after_session, wet.non_dosing_days_only) == (5, 4, True)
    assert {s.scale for s in p.scales} == {"caps5", "pcl5"}


def test_bipolar_ymrs_every_session() -> None:
    p = get_protocol("iv-bipolar-wilkowska")
    assert p.phases[0].cadence == Cadence(per_week=2) and p.phases[0].sessions == 8
    ymrs = next(s for s in p.scales if s.scale == "ymrs")
    assert ScaleTiming.EVERY_SESSION in ymrs.timing and ScaleTiming.BASELINE in ymrs.timing


def test_crps_cohen() -> None:
    (phase,) = get_protocol("iv-crps-cohen").phases
    # 0.35 mg/kg/h over 4 h daily × 10 days
    assert (phase.dose.kind, phase.dose.amount, phase.dose.duration_min) == (
        DoseKind.MG_PER_KG_PER_HOUR,
        0.35,
        240,
    )
    assert phase.cadence == Cadence(every_days=1) and phase.sessions == 10


@pytest.mark.parametrize("pid", ["im-clinic-template", "sl-clinic-template"])
def test_templates_are_unconfirmed(pid: str) -> None:
    p = get_protocol(pid)
    assert p.clinic_template is True
    assert p.phases[0].dose.confirmed is False and p.phases[0].dose.limits.confirmed is False


def test_every_value_has_a_source() -> None:
    for p in PROTOCOLS.values():
        assert p.sources and p.monitoring.source
        for ph in p.phases:
            assert ph.source and ph.dose.source and ph.dose.limits.source
        for s in p.scales:
            assert "clinical.md" in s.source


def test_pregnancy_test_is_a_configurable_flag() -> None:
    p = get_protocol("iv-trd-elektd")
    assert p.pregnancy_test_required is True and "unconfirmed" in p.pregnancy_test_note
    assert validate_protocol(replace(p, pregnancy_test_required=False)) == {}


def test_derived_min_spacing() -> None:
    # floor(7/2)=3 → 2; floor(7/3)=2 → 1; 7 → 6; 14 → 13; daily → max(1, 0) = 1
    assert derived_min_spacing_days(Cadence(per_week=2)) == 2
    assert derived_min_spacing_days(Cadence(per_week=3)) == 1
    assert derived_min_spacing_days(Cadence(every_days=7)) == 6
    assert derived_min_spacing_days(Cadence(every_days=14)) == 13
    assert derived_min_spacing_days(Cadence(every_days=1)) == 1


def test_dose_for_session_walks_the_phases() -> None:
    esk = get_protocol("esk-trd-label")
    assert esk.dose_for_session(1)[1].amount == 56 and esk.dose_for_session(1)[1].options == ()
    assert esk.dose_for_session(2)[1].options == (56, 84)
    assert esk.dose_for_session(9)[0].name.startswith("Maintenance (weeks 5–8)")
    assert esk.dose_for_session(100)[0].sessions is None  # open-ended week 9+
    with pytest.raises(ValueError, match="beyond the end"):
        get_protocol("iv-trd-elektd").dose_for_session(18)  # 6 + 4 + 4 + 3 = 17 sessions


def test_chair_minutes() -> None:
    assert get_protocol("iv-trd-elektd").chair_minutes() == 70  # 40 infusion + 30 observation
    assert get_protocol("esk-trd-label").chair_minutes() == 120  # 2 h from the first device
    assert get_protocol("iv-crps-cohen").chair_minutes() == 270  # 240 + 30


def test_codes() -> None:
    assert INDICATIONS[Indication.PTSD].codings[0].code == "47505003"
    assert INDICATIONS[Indication.BIPOLAR_DEPRESSION].codings[0].code == "767631007"
    assert INDICATIONS[Indication.TREATMENT_RESISTANT_DEPRESSION].codings[0].confirmed is False
    si = [c.code for c in INDICATIONS[Indication.MDD_WITH_SUICIDAL_IDEATION].codings]
    assert si == ["370143000", "6471006"]
    assert ROUTE_CODES[Route.IV].code == "47625008" and ROUTE_CODES[Route.INTRANASAL].code == "46713006"


@pytest.mark.parametrize("pid", sorted(PROTOCOLS))
def test_json_round_trip(pid: str) -> None:
    p = PROTOCOLS[pid]
    data = json.loads(json.dumps(p.to_dict()))
    assert data["schema"] == "ketaclinic.protocol/1"
    assert protocol_from_dict(data) == p


def test_from_dict_names_every_bad_field() -> None:
    data = get_protocol("iv-trd-elektd").to_dict()
    data["id"] = "Bad ID"
    data["phases"][0]["dose"]["amount"] = -1
    data["phases"][0]["cadence"] = {"per_week": 2, "every_days": 7}
    data["indications"] = []
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(data)
    assert {"id", "phases[0].dose.amount", "phases[0].cadence", "indications"} <= set(info.value.errors)


def test_from_dict_structural_errors() -> None:
    data = get_protocol("iv-trd-elektd").to_dict()
    data["version"] = "one"
    data["route"] = "rectal"
    data["colour"] = "blue"
    del data["name"]
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(data)
    assert info.value.errors == {
        "version": "must be a whole number",
        "route": "must be one of: iv, im, intranasal, sublingual, oral, subcutaneous",
        "colour": "unknown field",
        "name": "required",
    }


def test_esketamine_label_rules_cannot_be_edited_away() -> None:
    data = get_protocol("esk-trd-label").to_dict()
    data["phases"][1]["dose"]["amount"] = 100
    data["phases"][1]["dose"]["limits"]["hard_allowed"] = [28, 56, 84, 100]
    data["monitoring"]["observation_min"] = 60
    data["monitoring"]["pulse_oximetry"] = False
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(data)
    errors = info.value.errors
    assert "only 28, 56 or 84 mg" in errors["phases[1].dose.limits.hard_allowed"]
    assert "120 minutes" in errors["monitoring.observation_min"]
    assert "monitoring.pulse_oximetry" in errors


def test_limits_must_be_ordered_and_contain_the_dose() -> None:
    data = get_protocol("iv-trd-elektd").to_dict()
    data["phases"][0]["dose"]["limits"]["soft_max"] = 1.5  # above hard max 1.0
    data["phases"][1]["dose"]["amount"] = 0.9  # outside soft 0.5–0.75
    with pytest.raises(ProtocolValidationError) as info:
        protocol_from_dict(data)
    assert "hard min ≤ soft min" in info.value.errors["phases[0].dose.limits"]
    assert "outside the usual range" in info.value.errors["phases[1].dose.amount"]


def test_route_must_fit_drug_and_phase_order() -> None:
    p = get_protocol("iv-trd-elektd")
    errors = validate_protocol(replace(p, route=Route.INTRANASAL, phases=(p.phases[1], p.phases[0])))
    assert "route" in errors
    assert errors["phases[0].kind"] == "the first phase must be an induction phase"
    assert errors["phases[1].kind"] == "induction phases must come before maintenance phases"


def test_copy_protocol() -> None:
    copy = copy_protocol(get_protocol("esk-trd-label"), new_id="our-esk")
    assert (copy.id, copy.version, copy.based_on) == ("our-esk", 1, "esk-trd-label@1")
    assert copy.phases == get_protocol("esk-trd-label").phases
    with pytest.raises(ProtocolValidationError):
        copy_protocol(get_protocol("esk-trd-label"), new_id="Not valid")


def test_edit_protocol_bumps_version_and_validates() -> None:
    original = copy_protocol(get_protocol("iv-trd-elektd"), new_id="our-iv")
    edited = edit_protocol(original, {"name": "Our IV course", "pregnancy_test_required": False})
    assert (edited.version, edited.name, edited.pregnancy_test_required) == (2, "Our IV course", False)
    with pytest.raises(ProtocolValidationError) as info:
        edit_protocol(original, {"id": "other"})
    assert "id" in info.value.errors
