"""Screening engine: every history rule per drug, missing information, interactions, TRD, bipolar,
decision precedence, overrides and the intake fingerprint."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import date, timedelta

import pytest

from ketaclinic.clinical.conditions import Drug, Indication, Route
from ketaclinic.clinical.screening import (
    Answer,
    AntidepressantTrial,
    CardiacEvaluation,
    ChildbearingPotential,
    Decision,
    Finding,
    HepaticImpairment,
    IntakeSnapshot,
    Labs,
    MedicalHistory,
    Medication,
    MedicationClass,
    NotChildbearingReason,
    ScreeningConfig,
    ScreeningConfigError,
    ScreeningResult,
    Severity,
    TrialOutcome,
    decide,
    intake_fingerprint,
    override_check,
    screen,
)
from ketaclinic.clinical.screening_rules import ABSOLUTE_CONTRAINDICATIONS, ABSOLUTE_ESKETAMINE_CODES

E, K = Drug.ESKETAMINE, Drug.KETAMINE
C, W, X, M = Severity.CONTRAINDICATED, Severity.CAUTION, Severity.INTERACTION, Severity.MISSING_INFORMATION
TODAY = date(2026, 3, 2)
NO = Answer.NO
YES = Answer.YES
UNKNOWN = Answer.UNKNOWN

CLEAN_HISTORY = MedicalHistory(
    **{
        name: NO
        for name in MedicalHistory.__dataclass_fields__
        if name not in ("hepatic_impairment", "cardiovascular_event_date")
    },
    hepatic_impairment=HepaticImpairment.NONE,
)


def failed_trial(drug: str = "sertraline", **changes: object) -> AntidepressantTrial:
    trial = AntidepressantTrial(
        drug=drug,
        dose_adequate=YES,
        weeks=8,
        adherence_adequate=YES,
        outcome=TrialOutcome.NO_RESPONSE,
        current_episode=YES,
    )
    return replace(trial, **changes)  # type: ignore[arg-type]


def clean(**changes: object) -> IntakeSnapshot:
    snapshot = IntakeSnapshot(
        assessed_on=TODAY,
        age_years=40,
        indication=Indication.TREATMENT_RESISTANT_DEPRESSION,
        history=CLEAN_HISTORY,
        medications=(),
        alcohol_use=NO,
        prior_trials=(failed_trial("sertraline"), failed_trial("venlafaxine")),
        baseline_scales={"phq9": 18},
        moca_score=28,
        stop_bang_score=1,
        cardiac=CardiacEvaluation(
            systolic_bp=120, diastolic_bp=80, heart_rate=70, ecg_done=YES, ecg_abnormal=NO
        ),
        labs=Labs(liver_function_tested=YES, renal_function_tested=YES),
        rems_enrolled=YES,
        childbearing_potential=ChildbearingPotential(NO, NotChildbearingReason.POST_MENOPAUSAL),
    )
    return replace(snapshot, **changes)  # type: ignore[arg-type]


def with_history(**items: object) -> IntakeSnapshot:
    return clean(history=replace(CLEAN_HISTORY, **items))  # type: ignore[arg-type]


def by_code(result: ScreeningResult, code: str) -> dict[Drug, Finding]:
    out = {}
    for f in result.findings:
        if f.code == code:
            for d in f.drugs:
                out[d] = f
    return out


def test_clean_intake_is_eligible_for_both_drugs() -> None:
    result = screen(clean())
    assert result.findings == ()
    assert result.decisions == {E: Decision.ELIGIBLE, K: Decision.ELIGIBLE}


# Expected severities per item, written out independently of the rule table (clinical.md §2.5, §4, §6.2).
HISTORY_EXPECTED = {
    "aneurysmal_vascular_disease": (C, C),
    "arteriovenous_malformation": (C, C),
    "intracerebral_haemorrhage": (C, C),
    "ketamine_hypersensitivity": (C, C),
    "uncontrolled_hypertension": (C, C),
    "unstable_cardiovascular_disease": (C, C),
    "other_cardiovascular_or_cerebrovascular_disease": (W, W),
    "stroke_history": (W, W),
    "hypertensive_encephalopathy_history": (W, W),
    "raised_intracranial_pressure": (C, C),
    "raised_intraocular_pressure": (W, C),
    "psychotic_disorder": (W, C),
    "psychotic_features": (W, C),
    "bipolar_disorder": (W, W),
    "active_substance_use": (W, C),
    "substance_use_disorder_history": (W, W),
    "pregnancy": (C, C),
    "breastfeeding": (C, C),
    "cognitive_impairment": (W, C),
    "cystitis": (W, W),
    "personality_disorder": (W, W),
    "dissociative_disorder": (W, W),
    "sleep_apnoea": (W, W),
}
DECISION_FOR = {C: Decision.NOT_ELIGIBLE, W: Decision.ELIGIBLE_WITH_CAUTIONS}


@pytest.mark.parametrize(("item", "expected"), sorted(HISTORY_EXPECTED.items()))
def test_history_item_yes(item: str, expected: tuple[Severity, Severity]) -> None:
    snapshot = with_history(**{item: YES})
    if item == "bipolar_disorder":  # bipolar rules also need a mood stabiliser and a YMRS
        snapshot = replace(
            snapshot,
            medications=(Medication("lithium", frozenset({MedicationClass.MOOD_STABILISER})),),
            baseline_scales={"phq9": 18, "ymrs": 3},
        )
    result = screen(snapshot)
    findings = by_code(result, item)
    assert (findings[E].severity, findings[K].severity) == expected
    assert all("clinical.md §" in f.source for f in findings.values())
    assert result.decisions == {E: DECISION_FOR[expected[0]], K: DECISION_FOR[expected[1]]}


@pytest.mark.parametrize("item", sorted(HISTORY_EXPECTED))
def test_history_item_unknown_is_missing_information(item: str) -> None:
    result = screen(with_history(**{item: UNKNOWN}))
    (finding,) = result.findings
    assert (finding.code, finding.severity, finding.drugs) == (f"missing:{item}", M, frozenset({E, K}))
    assert finding.field == f"history.{item}"
    assert result.decisions == {E: Decision.INCOMPLETE, K: Decision.INCOMPLETE}


def test_reason_reads_as_one_line_for_a_clinician() -> None:
    findings = by_code(screen(with_history(intracerebral_haemorrhage=YES)), "intracerebral_haemorrhage")
    assert findings[E].reason == "History of intracerebral haemorrhage: esketamine is contraindicated (label)"
    assert findings[E].confirmed is True
    assert findings[K].confirmed is False and "extrapolated" in findings[K].source


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        (HepaticImpairment.SEVERE, (C, C)),  # label not recommended; Cohen avoid
        (HepaticImpairment.MODERATE, (W, W)),  # longer monitoring; judicious use
        (HepaticImpairment.MILD, None),
        (HepaticImpairment.NONE, None),
    ],
)
def test_hepatic_impairment(level: HepaticImpairment, expected: tuple[Severity, Severity] | None) -> None:
    findings = by_code(screen(with_history(hepatic_impairment=level)), "hepatic_impairment")
    if expected is None:
        assert findings == {}
    else:
        assert (findings[E].severity, findings[K].severity) == expected


def test_hepatic_unknown() -> None:
    (finding,) = screen(with_history(hepatic_impairment=HepaticImpairment.UNKNOWN)).findings
    assert finding.code == "missing:hepatic_impairment"


def test_cardiovascular_event_within_six_weeks() -> None:
    # 42 days before 2 Mar 2026 = 19 Jan 2026 → still within the window
    result = screen(
        with_history(cardiovascular_event=YES, cardiovascular_event_date=TODAY - timedelta(days=42))
    )
    findings = by_code(result, "recent_cardiovascular_event")
    assert findings[K].severity is C and findings[E].severity is C
    assert "42 days ago" in findings[K].reason


def test_older_cardiovascular_event_is_a_caution() -> None:
    result = screen(
        with_history(cardiovascular_event=YES, cardiovascular_event_date=TODAY - timedelta(days=43))
    )
    assert {f.severity for f in by_code(result, "past_cardiovascular_event").values()} == {W}
    result = screen(
        with_history(cardiovascular_event=YES, cardiovascular_event_date=TODAY - timedelta(days=60)),
        config=ScreeningConfig(recent_cardiovascular_event_days=90),
    )
    assert by_code(result, "recent_cardiovascular_event")[K].severity is C


def test_cardiovascular_event_without_date() -> None:
    (finding,) = screen(with_history(cardiovascular_event=YES)).findings
    assert finding.code == "missing:cardiovascular_event_date" and "6-week" in finding.reason


@pytest.mark.parametrize(("sbp", "dbp", "flagged"), [(141, 80, True), (120, 91, True), (140, 90, False)])
def test_baseline_bp_above_140_90(sbp: int, dbp: int, flagged: bool) -> None:
    cardiac = replace(clean().cardiac, systolic_bp=sbp, diastolic_bp=dbp)
    findings = by_code(screen(clean(cardiac=cardiac)), "baseline_bp_elevated")
    assert bool(findings) is flagged
    if flagged:
        assert findings[E].severity is W and f"{sbp}/{dbp}" in findings[E].reason


def test_missing_vitals_ecg_and_labs() -> None:
    snapshot = clean(cardiac=CardiacEvaluation(), labs=Labs())
    codes = {f.code for f in screen(snapshot).findings}
    assert codes == {
        "missing:baseline_bp",
        "missing:heart_rate",
        "missing:ecg",
        "missing:liver_function_tested",
        "missing:renal_function_tested",
    }
    relaxed = ScreeningConfig(require_ecg=False, require_labs=False)
    assert {f.code for f in screen(snapshot, config=relaxed).findings} == {
        "missing:baseline_bp",
        "missing:heart_rate",
    }


def test_ecg_age_limit_and_abnormal_ecg() -> None:
    cardiac = replace(clean().cardiac, ecg_date=TODAY - timedelta(days=400), ecg_abnormal=YES)
    result = screen(clean(cardiac=cardiac), config=ScreeningConfig(ecg_max_age_days=365))
    codes = {f.code: f.severity for f in result.findings}
    assert codes == {"missing:ecg_out_of_date": M, "ecg_abnormal": W}


@pytest.mark.parametrize(("score", "flagged"), [(2, False), (3, True), (8, True)])
def test_stop_bang(score: int, flagged: bool) -> None:
    findings = by_code(screen(clean(stop_bang_score=score)), "stop_bang_high")
    assert bool(findings) is flagged
    if flagged:
        assert findings[K].confirmed is False  # cut-off 3 is not in the reference


def test_stop_bang_missing() -> None:
    (finding,) = screen(clean(stop_bang_score=None)).findings
    assert finding.code == "missing:stop_bang" and "CPSBC" in finding.source


def test_moca_below_18() -> None:
    findings = by_code(screen(clean(moca_score=17)), "moca_low")
    assert (findings[E].severity, findings[K].severity) == (W, C)
    assert by_code(screen(clean(moca_score=18)), "moca_low") == {}
    assert screen(clean(moca_score=None)).findings == ()
    (finding,) = screen(clean(moca_score=None), config=ScreeningConfig(require_moca=True)).findings
    assert finding.code == "missing:moca"


@pytest.mark.parametrize(
    ("age", "codes"),
    [
        (16, {"under_18", "age_24_or_under"}),
        (24, {"age_24_or_under"}),
        (25, set()),
        (64, set()),
        (65, {"age_65_or_over"}),
    ],
)
def test_age_rules(age: int, codes: set[str]) -> None:
    result = screen(clean(age_years=age))
    assert {f.code for f in result.findings} == codes
    assert "age_65_or_over" not in {f.code for f in result.findings_for(K)}


def test_age_unknown() -> None:
    (finding,) = screen(clean(age_years=None)).findings
    assert finding.code == "missing:age"


def test_rems_enrolment_concerns_esketamine_only() -> None:
    result = screen(clean(rems_enrolled=UNKNOWN))
    assert result.decisions == {E: Decision.INCOMPLETE, K: Decision.ELIGIBLE}
    result = screen(clean(rems_enrolled=NO))
    assert by_code(result, "rems_not_enrolled")[E].severity is W
    assert result.decisions[K] is Decision.ELIGIBLE


# --- medications ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (MedicationClass.BENZODIAZEPINE, "benzodiazepine_sedation"),
        (MedicationClass.OPIOID, "opioid_sedation"),
        (MedicationClass.SEDATIVE_HYPNOTIC, "cns_depressant_sedation"),
        (MedicationClass.OTHER_CNS_DEPRESSANT, "cns_depressant_sedation"),
        (MedicationClass.PSYCHOSTIMULANT, "psychostimulant_bp"),
        (MedicationClass.MAOI, "maoi_bp"),
        (MedicationClass.LAMOTRIGINE, "lamotrigine"),
        (MedicationClass.CYP_INDUCER, "cyp_inducer"),
        (MedicationClass.CYP_INHIBITOR, "cyp_inhibitor"),
    ],
)
def test_interactions_for_both_drugs(cls: MedicationClass, code: str) -> None:
    med = Medication("drug x", frozenset({cls}), diazepam_equivalent_mg_per_day=2)
    result = screen(clean(medications=(med,)))
    findings = by_code(result, code)
    assert {d: f.severity for d, f in findings.items()} == {E: X, K: X}
    assert findings[E].reason.startswith("drug x: ") and "§6.4" in findings[E].source
    assert result.decisions == {E: Decision.ELIGIBLE_WITH_CAUTIONS, K: Decision.ELIGIBLE_WITH_CAUTIONS}


def test_ssri_bp_peaks_apply_to_iv_ketamine_only() -> None:
    result = screen(clean(medications=(Medication("sertraline", frozenset({MedicationClass.SSRI})),)))
    (finding,) = result.findings
    assert (finding.code, finding.drugs, finding.routes) == ("ssri_bp", frozenset({K}), frozenset({Route.IV}))
    assert result.decision_for(K, Route.IV) is Decision.ELIGIBLE_WITH_CAUTIONS
    assert result.decision_for(K, Route.IM) is Decision.ELIGIBLE
    assert result.decision_for(E) is Decision.ELIGIBLE


def test_conventional_antidepressants_raise_nothing() -> None:
    med = Medication("mirtazapine", frozenset({MedicationClass.ANTIDEPRESSANT}))
    assert screen(clean(medications=(med,))).findings == ()


@pytest.mark.parametrize(("mg", "blunting"), [(8, False), (8.5, True), (20, True)])
def test_benzodiazepine_above_8_mg_may_blunt_response(mg: float, blunting: bool) -> None:
    med = Medication(
        "clonazepam", frozenset({MedicationClass.BENZODIAZEPINE}), diazepam_equivalent_mg_per_day=mg
    )
    findings = by_code(screen(clean(medications=(med,))), "benzodiazepine_blunting")
    assert bool(findings) is blunting
    if blunting:
        assert "Andrashko 2020" in findings[K].source and findings[K].severity is X


def test_benzodiazepine_threshold_is_configurable_and_dose_needed() -> None:
    med = Medication(
        "lorazepam", frozenset({MedicationClass.BENZODIAZEPINE}), diazepam_equivalent_mg_per_day=8
    )
    result = screen(clean(medications=(med,)), config=ScreeningConfig(benzodiazepine_blunting_mg_per_day=5))
    assert by_code(result, "benzodiazepine_blunting")
    no_dose = replace(med, diazepam_equivalent_mg_per_day=None)
    assert by_code(screen(clean(medications=(no_dose,))), "missing:benzodiazepine_dose")


def test_alcohol_and_medication_list() -> None:
    assert by_code(screen(clean(alcohol_use=YES)), "alcohol_sedation")[E].severity is X
    assert by_code(screen(clean(alcohol_use=UNKNOWN)), "missing:alcohol_use")
    assert by_code(screen(clean(medications=None)), "missing:medications")


# --- treatment resistance -------------------------------------------------------------------------------


def test_two_failed_adequate_trials_establish_trd() -> None:
    result = screen(clean())
    assert result.trd is not None and (result.trd.failed_adequate, result.trd.status) == (2, YES)


def test_trd_not_established() -> None:
    # 4 weeks < default 6 weeks → only 1 adequate failure
    result = screen(clean(prior_trials=(failed_trial(), failed_trial("citalopram", weeks=4))))
    findings = by_code(result, "trd_not_established")
    assert (findings[E].severity, findings[K].severity) == (C, W)
    assert "1 failed adequate" in findings[E].reason and "≥6 weeks" in findings[E].reason
    assert findings[E].confirmed is False  # the 6-week default is unconfirmed
    assert result.decisions == {E: Decision.NOT_ELIGIBLE, K: Decision.ELIGIBLE_WITH_CAUTIONS}


def test_adequacy_threshold_is_configurable() -> None:
    trials = (failed_trial(weeks=6), failed_trial("citalopram", weeks=6))
    assert screen(clean(prior_trials=trials)).trd.status is YES  # type: ignore[union-attr]
    result = screen(clean(prior_trials=trials), config=ScreeningConfig(trd_adequate_weeks=8))
    assert result.trd is not None and result.trd.failed_adequate == 0


@pytest.mark.parametrize(
    ("change", "counts"),
    [
        ({"current_episode": NO}, False),
        ({"dose_adequate": NO}, False),
        ({"adherence_adequate": NO}, False),
        ({"outcome": TrialOutcome.PARTIAL_RESPONSE}, True),  # <50% improvement = failure (Fava 2020)
        ({"outcome": TrialOutcome.RESPONSE}, False),
        ({"outcome": TrialOutcome.STOPPED_INTOLERANCE}, False),
        ({"augmentation": True}, False),
    ],
)
def test_which_trials_count(change: dict[str, object], counts: bool) -> None:
    result = screen(clean(prior_trials=(failed_trial(), failed_trial("other", **change))))
    assert result.trd is not None and result.trd.failed_adequate == (2 if counts else 1)


def test_augmentation_counts_when_configured() -> None:
    trials = (failed_trial(), failed_trial("aripiprazole", augmentation=True))
    result = screen(clean(prior_trials=trials), config=ScreeningConfig(trd_count_augmentation=True))
    assert result.trd is not None and result.trd.failed_adequate == 2


def test_unknown_trial_details_are_missing_information() -> None:
    trials = (failed_trial(), failed_trial("citalopram", weeks=None, adherence_adequate=UNKNOWN))
    (finding,) = screen(clean(prior_trials=trials)).findings
    assert finding.code == "missing:trd_trial_details" and "citalopram: adherence, weeks" in finding.reason


def test_prior_trials_not_recorded() -> None:
    (finding,) = screen(clean(prior_trials=None)).findings
    assert finding.code == "missing:prior_trials"


def test_mdd_with_suicidal_ideation_needs_no_trd() -> None:
    result = screen(clean(indication=Indication.MDD_WITH_SUICIDAL_IDEATION, prior_trials=()))
    assert result.findings == ()


def test_esketamine_off_label_for_ptsd() -> None:
    result = screen(clean(indication=Indication.PTSD, baseline_scales={"pcl5": 50}))
    (finding,) = result.findings
    assert (finding.code, finding.severity, finding.drugs) == ("esketamine_off_label", W, frozenset({E}))


# --- bipolar and scales ---------------------------------------------------------------------------------

LITHIUM = Medication("lithium", frozenset({MedicationClass.MOOD_STABILISER}))
QUETIAPINE = Medication("quetiapine", frozenset({MedicationClass.ANTIPSYCHOTIC}))


def bipolar(**changes: object) -> IntakeSnapshot:
    base = clean(
        indication=Indication.BIPOLAR_DEPRESSION,
        medications=(LITHIUM,),
        baseline_scales={"madrs": 30, "ymrs": 4},
        prior_trials=None,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_bipolar_on_a_mood_stabiliser_with_ymrs() -> None:
    result = screen(bipolar(), drugs=(K,))
    assert result.findings == () and result.decisions == {K: Decision.ELIGIBLE}


def test_bipolar_without_mood_stabiliser() -> None:
    result = screen(bipolar(medications=(QUETIAPINE,)), drugs=(K,))
    (finding,) = result.findings
    assert (finding.code, finding.severity, finding.confirmed) == ("bipolar_no_mood_stabiliser", C, False)
    assert "Diazgranados 2010" in finding.source
    allowing = ScreeningConfig(bipolar_antipsychotic_counts=True)
    assert screen(bipolar(medications=(QUETIAPINE,)), drugs=(K,), config=allowing).findings == ()


def test_bipolar_needs_baseline_ymrs() -> None:
    (finding,) = screen(bipolar(baseline_scales={"madrs": 30}), drugs=(K,)).findings
    assert finding.code == "missing:baseline_ymrs"


def test_ymrs_limit_when_the_clinic_sets_one() -> None:
    assert screen(bipolar(baseline_scales={"madrs": 30, "ymrs": 8}), drugs=(K,)).findings == ()
    result = screen(
        bipolar(baseline_scales={"madrs": 30, "ymrs": 8}), drugs=(K,), config=ScreeningConfig(ymrs_maximum=5)
    )
    assert by_code(result, "ymrs_above_limit")[K].severity is C


def test_bipolar_history_with_a_depression_indication_applies_the_rules() -> None:
    result = screen(with_history(bipolar_disorder=YES), drugs=(K,))
    codes = {f.code for f in result.findings}
    assert codes == {"bipolar_disorder", "bipolar_no_mood_stabiliser", "missing:baseline_ymrs"}


@pytest.mark.parametrize(
    ("indication", "scales", "missing"),
    [
        (Indication.TREATMENT_RESISTANT_DEPRESSION, {}, True),
        (Indication.TREATMENT_RESISTANT_DEPRESSION, {"madrs": 30}, False),
        (Indication.PTSD, {"phq9": 12}, True),
        (Indication.PTSD, {"caps5": 40}, False),
        (Indication.CRPS, {"pain_nrs": 7}, False),
        (Indication.CRPS, {"phq9": 7}, True),
    ],
)
def test_baseline_scales(indication: Indication, scales: dict[str, float], missing: bool) -> None:
    result = screen(clean(indication=indication, baseline_scales=scales), drugs=(K,))
    assert bool(by_code(result, "missing:baseline_scale")) is missing


def test_indication_not_recorded() -> None:
    (finding,) = screen(clean(indication=None)).findings
    assert finding.code == "missing:indication"


# --- decision, overrides, config ------------------------------------------------------------------------


def f(severity: Severity, drugs: frozenset[Drug] = frozenset({K})) -> Finding:
    return Finding("x", severity, "reason", "clinical.md §0", drugs)


@pytest.mark.parametrize(
    ("severities", "decision"),
    [
        ((C, M, W, X), Decision.NOT_ELIGIBLE),
        ((M, W, X), Decision.INCOMPLETE),
        ((W,), Decision.ELIGIBLE_WITH_CAUTIONS),
        ((X,), Decision.ELIGIBLE_WITH_CAUTIONS),
        ((), Decision.ELIGIBLE),
    ],
)
def test_decision_precedence(severities: tuple[Severity, ...], decision: Decision) -> None:
    assert decide([f(s) for s in severities], drug=K) is decision
    assert decide([f(s) for s in severities], drug=E) is Decision.ELIGIBLE  # other drug unaffected


def test_contraindication_decides_even_with_missing_information() -> None:
    snapshot = replace(with_history(pregnancy=YES), age_years=None)
    assert screen(snapshot).decisions == {E: Decision.NOT_ELIGIBLE, K: Decision.NOT_ELIGIBLE}


def test_clinic_may_relax_a_racemic_rule() -> None:
    config = ScreeningConfig(severity_overrides={"aneurysmal_vascular_disease@ketamine": W})
    result = screen(with_history(aneurysmal_vascular_disease=YES), config=config)
    assert result.decisions == {E: Decision.NOT_ELIGIBLE, K: Decision.ELIGIBLE_WITH_CAUTIONS}
    assert "set to caution by clinic" in by_code(result, "aneurysmal_vascular_disease")[K].source


@pytest.mark.parametrize("key", ["intracerebral_haemorrhage", "intracerebral_haemorrhage@esketamine"])
def test_esketamine_label_contraindications_are_absolute(key: str) -> None:
    with pytest.raises(ScreeningConfigError) as info:
        screen(clean(), config=ScreeningConfig(severity_overrides={key: W}))
    assert "cannot be lowered" in info.value.errors[f"severity_overrides[{key}]"]


def test_config_errors_name_every_field() -> None:
    config = ScreeningConfig(
        trd_min_failed_trials=0,
        moca_minimum=40,
        severity_overrides={"no_such_code": W, "pregnancy@aspirin": W, "pregnancy": M},
    )
    with pytest.raises(ScreeningConfigError) as info:
        screen(clean(), config=config)
    assert set(info.value.errors) == {
        "trd_min_failed_trials",
        "moca_minimum",
        "severity_overrides[no_such_code]",
        "severity_overrides[pregnancy@aspirin]",
        "severity_overrides[pregnancy]",
    }


LABEL_ITEMS = (
    "aneurysmal_vascular_disease",
    "arteriovenous_malformation",
    "intracerebral_haemorrhage",
    "ketamine_hypersensitivity",
)


def test_the_absolute_contraindications_are_the_esketamine_label_list_and_racemic_has_none() -> None:
    assert ABSOLUTE_ESKETAMINE_CODES == frozenset(LABEL_ITEMS)  # clinical.md §2.5 "Contraindicated"
    assert ABSOLUTE_CONTRAINDICATIONS[K] == {}


@pytest.mark.parametrize("item", LABEL_ITEMS)
def test_a_label_contraindication_cannot_be_overridden_for_esketamine_but_can_for_racemic(item: str) -> None:
    result = screen(with_history(**{item: YES}))
    esk = override_check(result.findings, drug=E)
    assert esk.decision is Decision.NOT_ELIGIBLE and not esk.overridable
    assert [f.code for f in esk.absolute] == [item]
    assert "contraindicated by the SPRAVATO label: cannot be overridden" in esk.refusal
    assert "clinical.md §2.5: SPRAVATO label contraindication" in esk.refusal
    ket = override_check(result.findings, drug=K)
    assert ket.decision is Decision.NOT_ELIGIBLE and ket.overridable and ket.refusal == ""


def test_every_label_item_found_is_named() -> None:
    result = screen(with_history(arteriovenous_malformation=YES, ketamine_hypersensitivity=YES))
    refusal = override_check(result.findings, drug=E).refusal
    assert "Arteriovenous malformation; Hypersensitivity to ketamine or esketamine" in refusal


@pytest.mark.parametrize(
    "history",
    [{"pregnancy": YES}, {"uncontrolled_hypertension": YES}, {"raised_intracranial_pressure": YES}],
)
def test_other_esketamine_contraindications_stay_overridable(history: dict[str, Answer]) -> None:
    check = override_check(screen(with_history(**history)).findings, drug=E)
    assert check.decision is Decision.NOT_ELIGIBLE and check.overridable and not check.absolute


def test_nothing_to_override_when_eligible() -> None:
    check = override_check(screen(clean()).findings, drug=E)
    assert check.decision is Decision.ELIGIBLE and not check.overridable
    assert check.refusal == "Esketamine (SPRAVATO) is not contraindicated here: nothing to override"


def test_the_rule_reads_codes_so_it_judges_findings_stored_before_it_existed() -> None:
    stored = Finding("intracerebral_haemorrhage", C, "old wording", "old source", frozenset({E, K}))
    assert not override_check([stored], drug=E).overridable
    assert override_check([stored], drug=K).overridable
    # A label item found for ketamine only says nothing about esketamine.
    only_k = Finding("intracerebral_haemorrhage", C, "r", "s", frozenset({K}))
    assert override_check([only_k], drug=E).decision is Decision.ELIGIBLE


def test_screening_one_drug_only() -> None:
    result = screen(with_history(psychotic_disorder=YES), drugs=(E,))
    assert result.decisions == {E: Decision.ELIGIBLE_WITH_CAUTIONS}
    assert all(f.drugs == frozenset({E}) for f in result.findings)


# --- fingerprint ----------------------------------------------------------------------------------------


def test_fingerprint_is_stable_and_changes_with_the_intake() -> None:
    a, b = clean(), clean()
    assert intake_fingerprint(a) == intake_fingerprint(b) == screen(a).fingerprint
    assert intake_fingerprint(a).startswith("sha256:") and len(intake_fingerprint(a)) == 7 + 64
    assert intake_fingerprint(clean(age_years=41)) != intake_fingerprint(a)
    assert intake_fingerprint(with_history(pregnancy=UNKNOWN)) != intake_fingerprint(a)


def test_fingerprint_ignores_order_and_number_spelling() -> None:
    one = clean(baseline_scales={"phq9": 18, "gad7": 9})
    two = clean(baseline_scales={"gad7": 9.0, "phq9": 18.0})
    assert intake_fingerprint(one) == intake_fingerprint(two)


def test_fingerprint_is_the_same_in_another_process() -> None:
    code = (
        "from datetime import date\n"
        "from ketaclinic.clinical.screening import *\n"
        "m = Medication('x', frozenset(MedicationClass))\n"
        "print(intake_fingerprint(IntakeSnapshot(assessed_on=date(2026, 3, 2), medications=(m,))))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1 and outputs.pop().startswith("sha256:")


def test_chronic_pain_uses_cohen_2018() -> None:
    snapshot = replace(
        with_history(active_substance_use=YES, hepatic_impairment=HepaticImpairment.MODERATE),
        indication=Indication.CRPS,
        baseline_scales={"pain_nrs": 7},
    )
    result = screen(snapshot, drugs=(K,))
    sud = by_code(result, "active_substance_use")[K]
    assert sud.severity is C and "no serial ketamine infusions" in sud.reason and "Cohen 2018" in sud.source
    liver = by_code(result, "hepatic_impairment")[K]
    assert liver.severity is W and "judicious" in liver.reason and "Cohen 2018" in liver.source
    assert result.decisions == {K: Decision.NOT_ELIGIBLE}
