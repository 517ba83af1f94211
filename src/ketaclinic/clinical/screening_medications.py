"""Screening rules for medications and interactions, treatment resistance, bipolar depression, indication
and baseline scales.

Pure: no Django, no I/O.

* Interactions (clinical.md §6.4) are ``interaction`` findings. Label §7 statements are for esketamine and
  are applied to racemic ketamine by analogy (``confirmed=False``); Andrade 2017 statements are for ketamine
  and are applied to esketamine by analogy. SSRIs → higher BP peaks comes from IV infusions (Szarmach 2020)
  and is attached to racemic IV only.
* Treatment resistance (§6.3): ≥2 failed adequate trials in the current episode. Adequate = adequate dose,
  adequate adherence and ≥``trd_adequate_weeks`` (default 6 weeks: the reference says duration is [U],
  varying 4–8 weeks, so findings that depend on it carry ``confirmed=False`` unless the clinic confirms).
  A partial response (<50% improvement) counts as a failure (Fava 2020). For esketamine with a TRD or MDD
  indication an unmet definition is ``contraindicated`` (its labelled indication is not met); for racemic
  ketamine it is a caution (guidance says after failure of standard treatment: CPSBC draft, APNA; §6.1).
* Bipolar (§5.2): a mood stabiliser on board (Diazgranados 2010) and a baseline YMRS.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ketaclinic.clinical.conditions import INDICATIONS, Drug, Indication, IndicationGroup, Route
from ketaclinic.clinical.screening_model import (
    DEPRESSION_SCALES,
    MANIA_SCALE,
    PAIN_SCALES,
    PTSD_SCALES,
    Answer,
    AntidepressantTrial,
    Finding,
    IntakeSnapshot,
    MedicationClass,
    ScreeningConfig,
    Severity,
    TrialOutcome,
)
from ketaclinic.clinical.screening_rules import DrugRule, missing

E: Final = Drug.ESKETAMINE
K: Final = Drug.KETAMINE
I: Final = Severity.INTERACTION  # noqa: E741

LABEL_7: Final = "clinical.md §6.4: SPRAVATO label §7"
ANDRADE: Final = "clinical.md §6.4: Andrade 2017"


@dataclass(frozen=True)
class InteractionRule:
    code: str
    med_class: MedicationClass
    per_drug: Mapping[Drug, DrugRule]
    routes: frozenset[Route] | None = None


def _label_rule(code: str, cls: MedicationClass, effect: str, extra: str = "") -> InteractionRule:
    return InteractionRule(
        code,
        cls,
        {
            E: DrugRule(I, effect, LABEL_7 + extra),
            K: DrugRule(I, effect, LABEL_7 + extra + " (esketamine label, by analogy)", confirmed=False),
        },
    )


def _andrade_rule(code: str, cls: MedicationClass, effect: str) -> InteractionRule:
    return InteractionRule(
        code,
        cls,
        {
            K: DrugRule(I, effect, ANDRADE),
            E: DrugRule(I, effect, ANDRADE + " (ketamine, by analogy)", confirmed=False),
        },
    )


_SEDATION: Final = "more sedation and respiratory depression"
INTERACTION_RULES: Final[tuple[InteractionRule, ...]] = (
    InteractionRule(
        "benzodiazepine_sedation",
        MedicationClass.BENZODIAZEPINE,
        {
            E: DrugRule(I, "more sedation", LABEL_7),
            K: DrugRule(I, "more sedation", LABEL_7 + "; Andrade 2017"),
        },
    ),
    _label_rule("opioid_sedation", MedicationClass.OPIOID, _SEDATION, "; REMS"),
    _label_rule("cns_depressant_sedation", MedicationClass.SEDATIVE_HYPNOTIC, _SEDATION, "; REMS"),
    _label_rule("cns_depressant_sedation", MedicationClass.OTHER_CNS_DEPRESSANT, _SEDATION, "; REMS"),
    _label_rule(
        "psychostimulant_bp", MedicationClass.PSYCHOSTIMULANT, "higher BP: monitor BP closely", "; §2.3"
    ),
    _label_rule("maoi_bp", MedicationClass.MAOI, "higher BP: monitor BP closely", "; §2.3"),
    _andrade_rule(
        "lamotrigine",
        MedicationClass.LAMOTRIGINE,
        "may reduce ketamine adverse effects; effect on antidepressant response unknown",
    ),
    _andrade_rule("cyp_inducer", MedicationClass.CYP_INDUCER, "CYP2B6/3A4 inducer: lower ketamine exposure"),
    _andrade_rule(
        "cyp_inhibitor", MedicationClass.CYP_INHIBITOR, "CYP2B6/3A4 inhibitor: higher ketamine exposure"
    ),
    InteractionRule(
        "ssri_bp",
        MedicationClass.SSRI,
        {
            K: DrugRule(
                I, "higher BP peaks during infusion (observational)", "clinical.md §6.4: Szarmach 2020"
            )
        },
        routes=frozenset({Route.IV}),
    ),
)

BENZODIAZEPINE_SOURCE: Final = "clinical.md §6.4: >8 mg/day diazepam-equivalent distinguished non-responders (Andrashko 2020; Andrade 2017)"


def medication_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    out: list[Finding] = []
    meds = snapshot.medications
    if meds is None:
        out.append(
            missing(
                "medications",
                "Current medications: not recorded",
                "clinical.md §6.1, §6.4",
                drugs,
                "medications",
            )
        )
    else:
        for med in meds:
            for rule in INTERACTION_RULES:
                if rule.med_class not in med.classes:
                    continue
                for d in sorted(drugs):
                    drule = rule.per_drug.get(d)
                    if drule is None:
                        continue
                    out.append(
                        Finding(
                            rule.code,
                            drule.severity,
                            f"{med.name}: {drule.reason}",
                            drule.source,
                            frozenset({d}),
                            routes=rule.routes,
                            confirmed=drule.confirmed,
                            field="medications",
                        )
                    )
        out.extend(_benzodiazepine_dose(snapshot, drugs, config))
    alcohol_source = "clinical.md §6.4: alcohol → more sedation/respiratory depression (label §7; REMS)"
    if snapshot.alcohol_use is Answer.UNKNOWN:
        out.append(
            missing("alcohol_use", "Current alcohol use: not recorded", alcohol_source, drugs, "alcohol_use")
        )
    elif snapshot.alcohol_use is Answer.YES:
        out.extend(
            Finding(
                "alcohol_sedation",
                I,
                "Alcohol use: more sedation and respiratory depression",
                alcohol_source,
                frozenset({d}),
                confirmed=d is E,
                field="alcohol_use",
            )
            for d in sorted(drugs)
        )
    return out


def _benzodiazepine_dose(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    indication = snapshot.indication
    if indication is None or INDICATIONS[indication].group not in (
        IndicationGroup.DEPRESSION,
        IndicationGroup.BIPOLAR_DEPRESSION,
    ):
        return []
    out: list[Finding] = []
    limit = config.benzodiazepine_blunting_mg_per_day
    for med in snapshot.medications or ():
        if MedicationClass.BENZODIAZEPINE not in med.classes:
            continue
        mg = med.diazepam_equivalent_mg_per_day
        if mg is None:
            out.append(
                missing(
                    "benzodiazepine_dose",
                    f"{med.name}: diazepam-equivalent dose not recorded (needed for the >{limit:g} mg/day check)",
                    BENZODIAZEPINE_SOURCE,
                    drugs,
                    "medications",
                )
            )
        elif mg > limit:
            out.extend(
                Finding(
                    "benzodiazepine_blunting",
                    I,
                    f"{med.name} {mg:g} mg/day diazepam-equivalent (>{limit:g}): may blunt the antidepressant response",
                    BENZODIAZEPINE_SOURCE,
                    frozenset({d}),
                    confirmed=d is K,
                    field="medications",
                )
                for d in sorted(drugs)
            )
    return out


# --- treatment resistance ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrdAssessment:
    failed_adequate: int
    possibly_adequate: int
    required: int
    status: Answer  # YES: definition met; NO: cannot be met; UNKNOWN: depends on missing details
    incomplete: tuple[str, ...]  # "sertraline: weeks, adherence"


_FAILED: Final = {TrialOutcome.NO_RESPONSE, TrialOutcome.PARTIAL_RESPONSE}
_NOT_FAILED: Final = {TrialOutcome.RESPONSE, TrialOutcome.REMISSION, TrialOutcome.STOPPED_INTOLERANCE}


def _classify(trial: AntidepressantTrial, config: ScreeningConfig) -> tuple[Answer, list[str]]:
    unknown: list[str] = []
    checks: list[tuple[Answer, str]] = [
        (trial.current_episode, "current episode"),
        (trial.dose_adequate, "dose adequacy"),
        (trial.adherence_adequate, "adherence"),
    ]
    if trial.weeks is None:
        checks.append((Answer.UNKNOWN, "weeks"))
    else:
        checks.append((Answer.YES if trial.weeks >= config.trd_adequate_weeks else Answer.NO, "weeks"))
    if trial.outcome in _FAILED:
        checks.append((Answer.YES, "outcome"))
    elif trial.outcome in _NOT_FAILED:
        checks.append((Answer.NO, "outcome"))
    else:
        checks.append((Answer.UNKNOWN, "outcome"))
    if any(a is Answer.NO for a, _ in checks):
        return Answer.NO, []
    unknown = [name for a, name in checks if a is Answer.UNKNOWN]
    return (Answer.UNKNOWN if unknown else Answer.YES), unknown


def assess_treatment_resistance(
    trials: tuple[AntidepressantTrial, ...], config: ScreeningConfig
) -> TrdAssessment:
    """Count failed adequate trials in the current episode (see module docstring)."""
    failed = possible = 0
    incomplete: list[str] = []
    for trial in trials:
        if trial.augmentation and not config.trd_count_augmentation:
            continue
        status, unknown = _classify(trial, config)
        if status is Answer.YES:
            failed += 1
        elif status is Answer.UNKNOWN:
            possible += 1
            incomplete.append(f"{trial.drug}: {', '.join(unknown)}")
    required = config.trd_min_failed_trials
    if failed >= required:
        status_all = Answer.YES
    elif failed + possible >= required:
        status_all = Answer.UNKNOWN
    else:
        status_all = Answer.NO
    return TrdAssessment(failed, possible, required, status_all, tuple(incomplete))


TRD_SOURCE: Final = (
    "clinical.md §6.3: ≥2 failed adequate trials in the current episode (TRANSFORM; REMS wording; Fava 2020); "
    "adequate duration [U] 4–8 weeks"
)
_TRD_CHECKED: Final = (Indication.TREATMENT_RESISTANT_DEPRESSION, Indication.MAJOR_DEPRESSIVE_DISORDER)
_ESKETAMINE_LABELLED: Final = (*_TRD_CHECKED, Indication.MDD_WITH_SUICIDAL_IDEATION)


def indication_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    indication = snapshot.indication
    if indication is None:
        return [
            missing(
                "indication",
                "Indication: not recorded",
                "clinical.md §6.1 (ASKP3: indication)",
                drugs,
                "indication",
            )
        ]
    out: list[Finding] = []
    label = INDICATIONS[indication].label
    if E in drugs and indication not in _ESKETAMINE_LABELLED:
        out.append(
            Finding(
                "esketamine_off_label",
                Severity.CAUTION,
                f"{label}: esketamine is labelled for TRD and MDD with acute suicidal ideation; this is off-label",
                "clinical.md §2.1 (label indications)",
                frozenset({E}),
                field="indication",
            )
        )
    if indication in _TRD_CHECKED:
        out.extend(_trd_findings(snapshot, drugs, config))
    group = INDICATIONS[indication].group
    out.extend(_baseline_scale_findings(snapshot, drugs, group))
    if group is IndicationGroup.BIPOLAR_DEPRESSION or snapshot.history.bipolar_disorder is Answer.YES:
        out.extend(_bipolar_findings(snapshot, drugs, config))
    return out


def _trd_findings(snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig) -> list[Finding]:
    if snapshot.prior_trials is None:
        return [
            missing(
                "prior_trials", "Prior antidepressant trials: not recorded", TRD_SOURCE, drugs, "prior_trials"
            )
        ]
    result = assess_treatment_resistance(snapshot.prior_trials, config)
    weeks = f"adequate = adequate dose and adherence for ≥{config.trd_adequate_weeks:g} weeks"
    if result.status is Answer.UNKNOWN:
        return [
            missing(
                "trd_trial_details",
                f"Treatment resistance: {result.failed_adequate} failed adequate trial(s) confirmed, "
                f"{result.required} needed; complete {'; '.join(result.incomplete)}",
                TRD_SOURCE,
                drugs,
                "prior_trials",
            )
        ]
    if result.status is Answer.YES:
        return []
    base = (
        f"{result.failed_adequate} failed adequate antidepressant trial(s) in the current episode; TRD needs "
        f"≥{result.required} ({weeks})"
    )
    out = []
    for d in sorted(drugs):
        if d is E:
            out.append(
                Finding(
                    "trd_not_established",
                    Severity.CONTRAINDICATED,
                    base + ": esketamine's labelled indication is not met",
                    TRD_SOURCE,
                    frozenset({E}),
                    confirmed=config.trd_adequate_weeks_confirmed,
                    field="prior_trials",
                )
            )
        else:
            out.append(
                Finding(
                    "trd_not_established",
                    Severity.CAUTION,
                    base + ": ketamine is recommended after failure of standard treatment",
                    TRD_SOURCE + "; §6.1 (CPSBC draft; APNA: not first-line)",
                    frozenset({K}),
                    confirmed=config.trd_adequate_weeks_confirmed,
                    field="prior_trials",
                )
            )
    return out


def _baseline_scale_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], group: IndicationGroup
) -> list[Finding]:
    needed = {
        IndicationGroup.DEPRESSION: (DEPRESSION_SCALES, "a depression scale (MADRS, PHQ-9 or QIDS-SR16)"),
        IndicationGroup.BIPOLAR_DEPRESSION: (
            DEPRESSION_SCALES,
            "a depression scale (MADRS, PHQ-9 or QIDS-SR16)",
        ),
        IndicationGroup.PTSD: (PTSD_SCALES, "a PTSD scale (CAPS-5 or PCL-5)"),
        IndicationGroup.CHRONIC_PAIN: (PAIN_SCALES, "a pain scale (NRS or BPI-SF)"),
    }[group]
    keys, text = needed
    if keys & set(snapshot.baseline_scales):
        return []
    return [
        missing(
            "baseline_scale",
            f"Baseline {text}: not recorded (response is measured from baseline)",
            "clinical.md §0 (response definitions), §8",
            drugs,
            "baseline_scales",
        )
    ]


BIPOLAR_SOURCE: Final = (
    "clinical.md §5.2: Diazgranados 2010 (maintained on lithium or valproate); mood stabiliser/antipsychotic on "
    "board is clinic opinion (low-grade)"
)


def _bipolar_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    out: list[Finding] = []
    accepted = {MedicationClass.MOOD_STABILISER}
    if config.bipolar_antipsychotic_counts:
        accepted.add(MedicationClass.ANTIPSYCHOTIC)
    meds = snapshot.medications
    if meds is not None and not any(accepted & m.classes for m in meds):
        what = (
            "mood stabiliser or antipsychotic" if config.bipolar_antipsychotic_counts else "mood stabiliser"
        )
        out.extend(
            Finding(
                "bipolar_no_mood_stabiliser",
                Severity.CONTRAINDICATED,
                f"Bipolar disorder without a {what} on board: start one before ketamine (mania risk)",
                BIPOLAR_SOURCE,
                frozenset({d}),
                confirmed=False,
                field="medications",
            )
            for d in sorted(drugs)
        )
    ymrs = snapshot.baseline_scales.get(MANIA_SCALE)
    ymrs_source = (
        "clinical.md §5.2: YMRS used to monitor mania (Wilkowska 2021); entry threshold e.g. ≤5 (ELEKT-D)"
    )
    if ymrs is None:
        out.append(
            missing(
                "baseline_ymrs",
                "Baseline YMRS: not recorded (bipolar disorder)",
                ymrs_source,
                drugs,
                "baseline_scales",
            )
        )
    elif config.ymrs_maximum is not None and ymrs > config.ymrs_maximum:
        out.extend(
            Finding(
                "ymrs_above_limit",
                Severity.CONTRAINDICATED,
                f"Baseline YMRS {ymrs:g} is above the clinic's limit {config.ymrs_maximum:g}: hold ketamine",
                ymrs_source + "; cut-off [U], set by the clinic",
                frozenset({d}),
                confirmed=False,
                field="baseline_scales",
            )
            for d in sorted(drugs)
        )
    return out
