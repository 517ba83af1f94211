"""Screening rules that read two parts of the intake together: where the history and a measurement on the
same intake disagree, and childbearing potential.

Pure: no Django, no I/O.

**Contradictions** (codes ``contradiction:<history item>``, severity caution for both drugs): the history
answer and a measurement taken at the intake cannot both be right, so the prescriber checks which is —
with the patient, their records or a repeat measurement — and corrects the intake. The finding does not
decide eligibility by itself (the measurement's own rule does: the BP stop, the MoCA rule), it makes sure
nobody reads "no uncontrolled hypertension" as settled when the nurse measured 190/115. Pairs checked:

* uncontrolled hypertension "no" — the latest measured BP above the pre-dose limit (140/90; at or above the
  stop 180/110 the wording says so);
* cognitive impairment "no" — MoCA below the clinic's minimum (18);
* childbearing potential "no" — pregnancy "yes".

**Childbearing potential** (clinical.md §2.5: embryo-fetal toxicity, not recommended in pregnancy; §11: the
pregnancy test interval is clinic policy): "yes" is a caution (the pre-dose gate asks for a recent negative
test), "unknown" is missing information, "no" needs its reason. Only a recorded "no" makes a pregnancy test
"not indicated" at the gate.
"""

from __future__ import annotations

from typing import Final

from ketaclinic.clinical.conditions import Drug
from ketaclinic.clinical.screening_model import (
    Answer,
    Finding,
    IntakeSnapshot,
    ScreeningConfig,
    Severity,
)
from ketaclinic.clinical.screening_rules import missing
from ketaclinic.clinical.screening_workup import (
    BP_SOURCE,
    BP_STOP_SOURCE,
    above_limit,
    at_or_above_stop,
    bp_text,
    latest_bp,
)

W: Final = Severity.CAUTION
CONTRADICTION_PREFIX: Final = "contradiction:"
PREGNANCY_SOURCE: Final = (
    "clinical.md §2.5 (label: embryo-fetal toxicity, not recommended in pregnancy); §6.2 (pregnancy excluded: "
    "ELEKT-D, OKIC); §11 (pregnancy test for patients of childbearing potential: clinic policy)"
)


def is_contradiction(code: str) -> bool:
    return code.startswith(CONTRADICTION_PREFIX)


def _contradiction(
    item: str, reason: str, source: str, drugs: frozenset[Drug], field: str, confirmed: bool = True
) -> list[Finding]:
    return [
        Finding(
            f"{CONTRADICTION_PREFIX}{item}",
            W,
            reason,
            source,
            frozenset({d}),
            confirmed=confirmed,
            field=field,
        )
        for d in sorted(drugs)
    ]


def contradiction_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    out: list[Finding] = []
    history = snapshot.history
    latest = latest_bp(snapshot.cardiac)
    if history.uncontrolled_hypertension is Answer.NO and latest is not None and above_limit(*latest, config):
        stopped = at_or_above_stop(*latest, config)
        limit = (
            f"at or above {bp_text(config.bp_stop_systolic, config.bp_stop_diastolic)}"
            if stopped
            else f"above {bp_text(config.bp_systolic_limit, config.bp_diastolic_limit)}"
        )
        out += _contradiction(
            "uncontrolled_hypertension",
            f"History says no uncontrolled hypertension, but BP was measured at {bp_text(*latest)} ({limit}): "
            "check which is right with the patient and their records, and correct the intake",
            f"{BP_SOURCE}; §6.2 (uncontrolled hypertension is an exclusion item)"
            + (f"; {BP_STOP_SOURCE}" if stopped else ""),
            drugs,
            "history.uncontrolled_hypertension",
            confirmed=not stopped or config.bp_stop_confirmed,
        )
    moca = snapshot.moca_score
    if history.cognitive_impairment is Answer.NO and moca is not None and moca < config.moca_minimum:
        out += _contradiction(
            "cognitive_impairment",
            f"History says no cognitive impairment, but the MoCA score is {moca} (below {config.moca_minimum}): "
            "check which is right and correct the intake",
            "clinical.md §6.2: delirium/dementia excluded (OKIC); MoCA <18 excluded (ELEKT-D)",
            drugs,
            "history.cognitive_impairment",
        )
    cbp = snapshot.childbearing_potential
    if cbp.answer is Answer.NO and history.pregnancy is Answer.YES:
        out += _contradiction(
            "pregnancy",
            f"Recorded as unable to become pregnant ({cbp.reason_text or 'no reason given'}) and also as "
            "pregnant: check which is right and correct the intake",
            PREGNANCY_SOURCE,
            drugs,
            "childbearing_potential",
        )
    return out


def childbearing_findings(snapshot: IntakeSnapshot, drugs: frozenset[Drug]) -> list[Finding]:
    cbp = snapshot.childbearing_potential
    field = "childbearing_potential"
    if cbp.answer is Answer.UNKNOWN:
        return [
            missing(
                "childbearing_potential",
                "Childbearing potential: not recorded (yes, or no with the reason) — until it is recorded as no, "
                "the pre-dose gate asks for a pregnancy test",
                PREGNANCY_SOURCE,
                drugs,
                field,
            )
        ]
    if cbp.answer is Answer.NO:
        if cbp.reason is None:
            return [
                missing(
                    "childbearing_potential_reason",
                    "Childbearing potential recorded as no without the reason",
                    PREGNANCY_SOURCE,
                    drugs,
                    "childbearing_potential_reason",
                )
            ]
        return []
    return [
        Finding(
            "childbearing_potential",
            W,
            "Can become pregnant: ketamine and esketamine are not recommended in pregnancy — the pre-dose gate "
            "asks for a recent negative pregnancy test (interval set by the clinic)",
            PREGNANCY_SOURCE,
            frozenset({d}),
            field=field,
        )
        for d in sorted(drugs)
    ]


def consistency_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    return [*contradiction_findings(snapshot, drugs, config), *childbearing_findings(snapshot, drugs)]
