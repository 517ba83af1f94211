"""Screening rules for the examination and work-up (BP, heart rate, ECG, labs, sleep-apnoea screen, MoCA),
age and SPRAVATO REMS enrolment.

Pure: no Django, no I/O. The CPSBC draft standard (clinical.md §6.1) asks for a pre-admission ECG, renal
and liver tests and a sleep-apnoea screen: each is required by default; because it is a regional draft the
clinic can turn each off (``ScreeningConfig.require_*``). Cut-offs not in the reference (STOP-BANG, ECG age) are clinic settings,
flagged unconfirmed where a default is given.
"""

from __future__ import annotations

from typing import Final

from ketaclinic.clinical.conditions import Drug
from ketaclinic.clinical.screening_model import (
    Answer,
    CardiacEvaluation,
    Finding,
    IntakeSnapshot,
    ScreeningConfig,
    Severity,
)
from ketaclinic.clinical.screening_rules import missing

E: Final = Drug.ESKETAMINE
K: Final = Drug.KETAMINE
C: Final = Severity.CONTRAINDICATED
W: Final = Severity.CAUTION


def workup_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    out: list[Finding] = []
    cardiac = snapshot.cardiac
    out.extend(_blood_pressure(cardiac, drugs, config))
    if cardiac.heart_rate is None:
        out.append(
            missing(
                "heart_rate",
                "Baseline heart rate: not recorded",
                "clinical.md §7.1 (vitals)",
                drugs,
                "cardiac.heart_rate",
            )
        )
    cpsbc = "clinical.md §6.1: CPSBC draft standard (pre-admission ECG, renal and liver tests, sleep-apnoea screen)"
    if config.require_ecg:
        if cardiac.ecg_done is not Answer.YES:
            out.append(missing("ecg", "ECG: not done or not recorded", cpsbc, drugs, "cardiac.ecg_done"))
        elif config.ecg_max_age_days is not None:
            if cardiac.ecg_date is None:
                out.append(missing("ecg_date", "ECG date: not recorded", cpsbc, drugs, "cardiac.ecg_date"))
            elif (snapshot.assessed_on - cardiac.ecg_date).days > config.ecg_max_age_days:
                out.append(
                    missing(
                        "ecg_out_of_date",
                        f"ECG from {cardiac.ecg_date.isoformat()} is older than {config.ecg_max_age_days} days",
                        cpsbc + "; age limit set by the clinic",
                        drugs,
                        "cardiac.ecg_date",
                    )
                )
    if cardiac.ecg_done is Answer.YES and cardiac.ecg_abnormal is Answer.YES:
        out.extend(
            Finding(
                "ecg_abnormal",
                W,
                "ECG reported abnormal: review before treatment",
                cpsbc,
                frozenset({d}),
                field="cardiac.ecg_abnormal",
            )
            for d in sorted(drugs)
        )
    if config.require_labs:
        for name, label in (
            ("liver_function_tested", "Liver function tests"),
            ("renal_function_tested", "Renal function"),
        ):
            if getattr(snapshot.labs, name) is not Answer.YES:
                out.append(missing(name, f"{label}: not done or not recorded", cpsbc, drugs, f"labs.{name}"))
    out.extend(_sleep_and_cognition(snapshot, drugs, config, cpsbc))
    out.extend(_age_and_rems(snapshot, drugs))
    return out


BP_SOURCE: Final = (
    "clinical.md §2.2, §7.3: BP >140/90 → weigh delay (label §5.6); clinic rule: no treatment (low-grade)"
)
BP_STOP_SOURCE: Final = (
    "clinical.md §11, §7.3: a measured BP ≥180/110 is a stop until a prescriber decides (clinic default, "
    "unconfirmed; label Table 6 categories SBP ≥180, DBP ≥110, §2.6)"
)


def bp_text(systolic: int, diastolic: int) -> str:
    return f"{systolic}/{diastolic}"


def at_or_above_stop(systolic: int, diastolic: int, config: ScreeningConfig) -> bool:
    return systolic >= config.bp_stop_systolic or diastolic >= config.bp_stop_diastolic


def above_limit(systolic: int, diastolic: int, config: ScreeningConfig) -> bool:
    return systolic > config.bp_systolic_limit or diastolic > config.bp_diastolic_limit


def latest_bp(cardiac: CardiacEvaluation) -> tuple[int, int] | None:
    """The reading the screening judges: the repeat when one was recorded, else the first."""
    if cardiac.repeat_systolic_bp is not None and cardiac.repeat_diastolic_bp is not None:
        return cardiac.repeat_systolic_bp, cardiac.repeat_diastolic_bp
    if cardiac.systolic_bp is not None and cardiac.diastolic_bp is not None:
        return cardiac.systolic_bp, cardiac.diastolic_bp
    return None


def _blood_pressure(
    cardiac: CardiacEvaluation, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    """The measured BP at intake. At or above the stop (180/110) the patient is not eligible for either
    drug until a prescriber reviews it: a repeat reading below the stop on the intake (which a prescriber
    signs), or the prescriber's recorded decision to go ahead (an override with its reason). The first
    reading at or above the stop stays on the screening as a caution after a lower repeat."""
    if cardiac.systolic_bp is None or cardiac.diastolic_bp is None:
        return [
            missing(
                "baseline_bp",
                "Baseline blood pressure: not recorded",
                BP_SOURCE,
                drugs,
                "cardiac.systolic_bp",
            )
        ]
    first = bp_text(cardiac.systolic_bp, cardiac.diastolic_bp)
    latest = latest_bp(cardiac)
    assert latest is not None
    repeated = cardiac.repeat_systolic_bp is not None and cardiac.repeat_diastolic_bp is not None
    stop = bp_text(config.bp_stop_systolic, config.bp_stop_diastolic)
    limit = bp_text(config.bp_systolic_limit, config.bp_diastolic_limit)
    first_stopped = at_or_above_stop(cardiac.systolic_bp, cardiac.diastolic_bp, config)
    if at_or_above_stop(*latest, config):
        measured = f"BP {first} at intake" + (
            f" and {bp_text(*latest)} on re-measurement" if repeated else ""
        )
        return [
            Finding(
                "baseline_bp_stop",
                C,
                f"{measured} is at or above {stop}: not eligible until a prescriber reviews it — re-measure "
                f"after rest and record the repeat on the intake, or a prescriber records the decision to go "
                "ahead with the reason",
                BP_STOP_SOURCE + ("; §7.2 (IV BP rises)" if d is K else ""),
                frozenset({d}),
                confirmed=config.bp_stop_confirmed,
                field="cardiac.systolic_bp",
            )
            for d in sorted(drugs)
        ]
    out: list[Finding] = []
    if first_stopped:
        still = f", still above {limit}" if above_limit(*latest, config) else f", within {limit}"
        out.extend(
            Finding(
                "baseline_bp_remeasured",
                W,
                f"BP {first} at intake was at or above {stop}; re-measured {bp_text(*latest)}{still}: review "
                "hypertension control before treatment (ketamine raises BP)",
                BP_STOP_SOURCE + "; " + BP_SOURCE,
                frozenset({d}),
                confirmed=config.bp_stop_confirmed,
                field="cardiac.repeat_systolic_bp",
            )
            for d in sorted(drugs)
        )
    elif above_limit(*latest, config):
        which = f"BP {bp_text(*latest)}" + (" (re-measured)" if repeated else "")
        out.extend(
            Finding(
                "baseline_bp_elevated",
                W,
                f"{which} is above {limit}: review hypertension control before treatment (ketamine raises BP)",
                BP_SOURCE + ("; §7.2 (IV BP rises)" if d is K else ""),
                frozenset({d}),
                field="cardiac.repeat_systolic_bp" if repeated else "cardiac.systolic_bp",
            )
            for d in sorted(drugs)
        )
    return out


def _sleep_and_cognition(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig, cpsbc: str
) -> list[Finding]:
    out: list[Finding] = []
    score = snapshot.stop_bang_score
    if score is None:
        if config.require_sleep_apnoea_screen:
            out.append(
                missing(
                    "stop_bang",
                    "Sleep-apnoea screen (STOP-BANG): not recorded",
                    cpsbc,
                    drugs,
                    "stop_bang_score",
                )
            )
    elif score >= config.stop_bang_caution_minimum:
        out.extend(
            Finding(
                "stop_bang_high",
                W,
                f"STOP-BANG {score} (≥{config.stop_bang_caution_minimum}): possible sleep apnoea; watch breathing "
                "and SpO2",
                cpsbc + "; cut-off is a clinic default, unconfirmed",
                frozenset({d}),
                confirmed=config.stop_bang_confirmed,
                field="stop_bang_score",
            )
            for d in sorted(drugs)
        )
    moca = snapshot.moca_score
    moca_source = (
        "clinical.md §6.2: MoCA <18 excluded (ELEKT-D); §2.5 (esketamine: cognitive impairment warning)"
    )
    if moca is None:
        if config.require_moca:
            out.append(missing("moca", "MoCA score: not recorded", moca_source, drugs, "moca_score"))
    elif moca < config.moca_minimum:
        for d in sorted(drugs):
            out.append(
                Finding(
                    "moca_low",
                    C if d is K else W,
                    f"MoCA {moca} is below {config.moca_minimum}"
                    + (": ketamine excluded (ELEKT-D)" if d is K else ": cognitive impairment, assess first"),
                    moca_source,
                    frozenset({d}),
                    field="moca_score",
                )
            )
    return out


def _age_and_rems(snapshot: IntakeSnapshot, drugs: frozenset[Drug]) -> list[Finding]:
    out: list[Finding] = []
    age = snapshot.age_years
    if age is None:
        out.append(missing("age", "Age: not recorded", "clinical.md §2.1, §2.5", drugs, "age_years"))
    else:
        if age < 18:
            out.extend(
                Finding(
                    "under_18",
                    W,
                    f"Age {age}: the reference covers adult dosing only",
                    "clinical.md §2.1 (adult dosing)",
                    frozenset({d}),
                    confirmed=d is E,
                    field="age_years",
                )
                for d in sorted(drugs)
            )
        if E in drugs and age <= 24:
            out.append(
                Finding(
                    "age_24_or_under",
                    W,
                    f"Age {age} (≤24): boxed warning on suicidal thoughts and behaviours",
                    "clinical.md §2.5 (label boxed warning)",
                    frozenset({E}),
                    field="age_years",
                )
            )
        if E in drugs and age >= 65:
            out.append(
                Finding(
                    "age_65_or_over",
                    W,
                    f"Age {age} (≥65): larger BP rises; Hong Kong label starts at 28 mg (US start dose unconfirmed)",
                    "clinical.md §2.1 (HK label); §2.6 (label Table 6: SBP rise ≥40 in 17% vs 8%)",
                    frozenset({E}),
                    field="age_years",
                )
            )
    if E in drugs:
        rems = "clinical.md §2.2, §2.4: patient enrolled in SPRAVATO REMS before the first outpatient session"
        if snapshot.rems_enrolled is Answer.UNKNOWN:
            out.append(
                missing("rems_enrolled", "SPRAVATO REMS enrolment: not recorded", rems, {E}, "rems_enrolled")
            )
        elif snapshot.rems_enrolled is Answer.NO:
            out.append(
                Finding(
                    "rems_not_enrolled",
                    W,
                    "Not yet enrolled in SPRAVATO REMS: enrol before the first session",
                    rems,
                    frozenset({E}),
                    field="rems_enrolled",
                )
            )
    return out
