"""Screening rules for medical history, examination and work-up (data table + checks).

Pure: no Django, no I/O.

How severities were chosen for each drug (clinic-adjustable via ``ScreeningConfig.severity_overrides``):

* Esketamine: the label contraindications (aneurysmal vascular disease, AVM, intracerebral haemorrhage,
  hypersensitivity; clinical.md §2.5) are **absolute**: a clinic cannot lower them and a prescriber cannot
  override them for one patient (``screening.override_check``). Label "not recommended"
  items (pregnancy, breastfeeding, severe hepatic impairment) and "contraindicated if a BP/ICP rise poses a
  serious risk" (§2.2) default to contraindicated. Label warnings (psychosis, substance use, cognitive
  impairment, cystitis, other cardiovascular conditions) are cautions.
* Racemic ketamine: contraindicated where a guideline (Cohen 2018, §4), a trial exclusion (ELEKT-D) or a
  label names the item for ketamine; caution where only single-clinic protocols list it (OKIC, Psyon) or
  where trials differ (bipolar disorder). The esketamine-label vascular contraindications have no
  racemic-specific source: they default to contraindicated for racemic ketamine too, marked
  ``confirmed=False`` (extrapolated: ketamine raises BP, §7.2).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from ketaclinic.clinical.conditions import Drug
from ketaclinic.clinical.screening_model import (
    Answer,
    Finding,
    HepaticImpairment,
    IntakeSnapshot,
    ScreeningConfig,
    Severity,
)

E: Final = Drug.ESKETAMINE
K: Final = Drug.KETAMINE
C: Final = Severity.CONTRAINDICATED
W: Final = Severity.CAUTION

LABEL: Final = "clinical.md §2.5: SPRAVATO label contraindication"
EXTRAPOLATED: Final = (
    "clinical.md §2.5, §6.2: esketamine label contraindication, extrapolated to racemic ketamine "
    "(no racemic-specific source; ketamine raises BP, §7.2)"
)
COHEN_CNS: Final = (
    "clinical.md §4, §6.2: Cohen 2018 (do not use, or low dose with extreme caution, grade C); OKIC"
)


@dataclass(frozen=True)
class DrugRule:
    severity: Severity
    reason: str
    source: str
    confirmed: bool = True
    absolute: bool = False  # cannot be lowered by a clinic nor overridden for one patient


@dataclass(frozen=True)
class HistoryRule:
    code: str
    field: str  # MedicalHistory attribute
    label: str  # what the item is, for the missing-information finding
    per_drug: Mapping[Drug, DrugRule]


def _vascular(code: str, label: str) -> HistoryRule:
    return HistoryRule(
        code,
        code,
        label,
        {
            E: DrugRule(C, f"{label}: esketamine is contraindicated (label)", LABEL, absolute=True),
            K: DrugRule(
                C,
                f"{label}: ketamine contraindicated by default (extrapolated from the esketamine label)",
                EXTRAPOLATED,
                confirmed=False,
            ),
        },
    )


def _same(
    code: str, label: str, severity: Severity, reason: str, source: str, confirmed: bool = True
) -> HistoryRule:
    return HistoryRule(
        code, code, label, {d: DrugRule(severity, f"{label}: {reason}", source, confirmed) for d in (E, K)}
    )


HISTORY_RULES: Final[tuple[HistoryRule, ...]] = (
    _vascular("aneurysmal_vascular_disease", "Aneurysmal vascular disease"),
    _vascular("arteriovenous_malformation", "Arteriovenous malformation"),
    _vascular("intracerebral_haemorrhage", "History of intracerebral haemorrhage"),
    HistoryRule(
        "ketamine_hypersensitivity",
        "ketamine_hypersensitivity",
        "Hypersensitivity to ketamine or esketamine",
        {
            E: DrugRule(
                C,
                "Hypersensitivity to ketamine/esketamine: esketamine is contraindicated",
                LABEL,
                absolute=True,
            ),
            K: DrugRule(
                C,
                "Hypersensitivity to ketamine/esketamine: ketamine is contraindicated",
                "clinical.md §2.5 (label names ketamine); §6.2 (ELEKT-D; OKIC)",
            ),
        },
    ),
    HistoryRule(
        "uncontrolled_hypertension",
        "uncontrolled_hypertension",
        "Uncontrolled hypertension",
        {
            E: DrugRule(
                C,
                "Uncontrolled hypertension: esketamine contraindicated where a BP rise poses a serious risk",
                "clinical.md §2.2 (label); §6.2 (Cohen 2018; OKIC; Menninger)",
                confirmed=False,
            ),
            K: DrugRule(
                C,
                "Uncontrolled hypertension: do not give ketamine until controlled",
                "clinical.md §4, §6.2: Cohen 2018 (poorly controlled cardiovascular disease); OKIC; Menninger",
            ),
        },
    ),
    HistoryRule(
        "unstable_cardiovascular_disease",
        "unstable_cardiovascular_disease",
        "Poorly controlled cardiovascular disease",
        {
            E: DrugRule(
                C,
                "Poorly controlled cardiovascular disease: esketamine contraindicated where a BP rise poses a "
                "serious risk",
                "clinical.md §2.2 (label); §6.2 (Cohen 2018; OKIC; Menninger)",
                confirmed=False,
            ),
            K: DrugRule(
                C,
                "Poorly controlled cardiovascular disease: ketamine is contraindicated",
                "clinical.md §4, §6.2: Cohen 2018; OKIC; Menninger",
            ),
        },
    ),
    HistoryRule(
        "other_cardiovascular_or_cerebrovascular_disease",
        "other_cardiovascular_or_cerebrovascular_disease",
        "Other cardiovascular or cerebrovascular disease",
        {
            E: DrugRule(
                W, "Other cardiovascular/cerebrovascular disease: assess benefit and risk", "clinical.md §2.5"
            ),
            K: DrugRule(
                W,
                "Other cardiovascular/cerebrovascular disease: assess benefit and risk; BP rises during infusions",
                "clinical.md §2.5 (label warning, by analogy); §7.2 (hypertension history predicted BP surges, Yale)",
            ),
        },
    ),
    _same(
        "stroke_history",
        "History of stroke",
        W,
        "assess benefit and risk",
        "clinical.md §2.5 (label: cerebrovascular conditions); §6.2 (OKIC excludes history of CVA)",
    ),
    HistoryRule(
        "hypertensive_encephalopathy_history",
        "hypertensive_encephalopathy_history",
        "History of hypertensive encephalopathy",
        {
            E: DrugRule(
                W, "History of hypertensive encephalopathy: monitor BP more intensively", "clinical.md §2.3"
            ),
            K: DrugRule(
                W,
                "History of hypertensive encephalopathy: monitor BP more intensively",
                "clinical.md §2.3 (esketamine label §5.6, by analogy)",
                confirmed=False,
            ),
        },
    ),
    HistoryRule(
        "raised_intracranial_pressure",
        "raised_intracranial_pressure",
        "Raised intracranial pressure",
        {
            E: DrugRule(
                C,
                "Raised intracranial pressure: esketamine contraindicated (an ICP rise poses a serious risk)",
                "clinical.md §2.2 (label)",
            ),
            K: DrugRule(
                C,
                "Raised intracranial pressure: do not use ketamine (or low dose with extreme caution)",
                COHEN_CNS,
            ),
        },
    ),
    HistoryRule(
        "raised_intraocular_pressure",
        "raised_intraocular_pressure",
        "Raised intraocular pressure",
        {
            E: DrugRule(
                W,
                "Raised intraocular pressure: caution (listed for ketamine; not an esketamine label item)",
                "clinical.md §6.2 (OKIC; Cohen 2018, racemic ketamine)",
                confirmed=False,
            ),
            K: DrugRule(
                C,
                "Raised intraocular pressure: do not use ketamine (or low dose with extreme caution)",
                COHEN_CNS,
            ),
        },
    ),
    HistoryRule(
        "psychotic_disorder",
        "psychotic_disorder",
        "Psychotic disorder",
        {
            E: DrugRule(
                W, "Psychotic disorder: assess psychosis before esketamine", "clinical.md §2.5 (label); §6.2"
            ),
            K: DrugRule(
                C,
                "Psychotic disorder: ketamine is contraindicated",
                "clinical.md §6.2 (ELEKT-D exclusion; OKIC; Menninger; Psyon); §4 (Cohen 2018: avoid in poorly "
                "controlled psychosis)",
            ),
        },
    ),
    HistoryRule(
        "psychotic_features",
        "psychotic_features",
        "Current psychotic features",
        {
            E: DrugRule(
                W, "Current psychotic features: assess psychosis before esketamine", "clinical.md §2.5; §6.2"
            ),
            K: DrugRule(
                C,
                "Current psychotic features: ketamine is contraindicated",
                "clinical.md §6.2 (ELEKT-D exclusion; OKIC; Menninger; Psyon); §4 (Cohen 2018)",
            ),
        },
    ),
    _same(
        "bipolar_disorder",
        "Bipolar disorder",
        W,
        "risk of treatment-emergent mania; monitor YMRS",
        "clinical.md §6.2 (excluded in some trials, allowed with caution in others); §5.2 (mania case reports)",
    ),
    HistoryRule(
        "active_substance_use",
        "active_substance_use",
        "Active substance use",
        {
            E: DrugRule(
                W,
                "Active substance use: careful consideration and monitoring for abuse/misuse",
                "clinical.md §2.5 (label warning); §2.4 (REMS)",
            ),
            K: DrugRule(
                C,
                "Active substance use: no serial ketamine infusions",
                "clinical.md §4 (Cohen 2018: active substance abuse → no serial infusions); §6.2 (OKIC; Psyon)",
            ),
        },
    ),
    _same(
        "substance_use_disorder_history",
        "History of substance use disorder",
        W,
        "monitor for abuse/misuse (universal precautions)",
        "clinical.md §2.5 (label warning); §4 (Cohen 2018 universal precautions); §6.2 (Psyon)",
    ),
    HistoryRule(
        "pregnancy",
        "pregnancy",
        "Pregnancy",
        {
            E: DrugRule(
                C, "Pregnancy: esketamine not recommended (embryo-fetal toxicity)", "clinical.md §2.5 (label)"
            ),
            K: DrugRule(C, "Pregnancy: ketamine excluded", "clinical.md §6.2 (ELEKT-D; OKIC)"),
        },
    ),
    HistoryRule(
        "breastfeeding",
        "breastfeeding",
        "Breastfeeding",
        {
            E: DrugRule(C, "Breastfeeding: esketamine not recommended", "clinical.md §2.5 (label)"),
            K: DrugRule(C, "Breastfeeding: ketamine excluded", "clinical.md §6.2 (ELEKT-D; OKIC)"),
        },
    ),
    HistoryRule(
        "cognitive_impairment",
        "cognitive_impairment",
        "Cognitive impairment (delirium or dementia)",
        {
            E: DrugRule(
                W, "Cognitive impairment: label warning, assess before esketamine", "clinical.md §2.5 (label)"
            ),
            K: DrugRule(
                C,
                "Delirium or dementia: ketamine excluded",
                "clinical.md §6.2 (OKIC; ELEKT-D requires MoCA ≥18)",
            ),
        },
    ),
    HistoryRule(
        "cystitis",
        "cystitis",
        "Ulcerative or interstitial cystitis",
        {
            E: DrugRule(
                W, "Ulcerative/interstitial cystitis: monitor urinary symptoms", "clinical.md §2.5 (label)"
            ),
            K: DrugRule(
                W,
                "Ulcerative/interstitial cystitis: monitor urinary symptoms",
                "clinical.md §2.5 (esketamine label, by analogy)",
                confirmed=False,
            ),
        },
    ),
    _same(
        "personality_disorder",
        "Significant personality disorder",
        W,
        "excluded by some clinic protocols",
        "clinical.md §6.2 (OKIC; Psyon)",
    ),
    _same(
        "dissociative_disorder",
        "Dissociative disorder",
        W,
        "excluded by some clinic protocols",
        "clinical.md §6.2 (OKIC; Psyon)",
    ),
    _same(
        "sleep_apnoea",
        "Sleep apnoea",
        W,
        "respiratory depression risk; pulse oximetry",
        "clinical.md §2.4, §2.5 (boxed warning: respiratory depression); §6.1 (CPSBC: sleep-apnoea screen)",
        confirmed=False,
    ),
)

#: Absolute contraindications per drug, code -> what the item is: a clinic cannot lower them
#: (``ScreeningConfig.severity_overrides``) and a prescriber cannot override them for one patient
#: (``screening.override_check``). Only the esketamine label's own contraindications are absolute
#: (clinical.md §2.5); racemic ketamine has none, so its not-eligible decisions stay overridable.
ABSOLUTE_CONTRAINDICATIONS: Final[Mapping[Drug, Mapping[str, str]]] = {
    d: {r.code: r.label for r in HISTORY_RULES if r.per_drug[d].absolute} for d in Drug
}

#: Who sets each drug's absolute contraindications, for the staff message.
ABSOLUTE_AUTHORITY: Final[Mapping[Drug, str]] = {E: "the SPRAVATO label"}

#: Esketamine label contraindications: absolute, cannot be lowered by a clinic override.
ABSOLUTE_ESKETAMINE_CODES: Final = frozenset(ABSOLUTE_CONTRAINDICATIONS[E])


def missing(code: str, reason: str, source: str, drugs: Iterable[Drug], field: str) -> Finding:
    return Finding(
        code=f"missing:{code}",
        severity=Severity.MISSING_INFORMATION,
        reason=reason,
        source=source,
        drugs=frozenset(drugs),
        field=field,
    )


def from_rule(code: str, drug: Drug, rule: DrugRule, field: str) -> Finding:
    return Finding(
        code=code,
        severity=rule.severity,
        reason=rule.reason,
        source=rule.source,
        drugs=frozenset({drug}),
        confirmed=rule.confirmed,
        field=field,
    )


def history_findings(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    out: list[Finding] = []
    history = snapshot.history
    for rule in HISTORY_RULES:
        answer = getattr(history, rule.field)
        field = f"history.{rule.field}"
        if answer is Answer.UNKNOWN:
            source = "; ".join(dict.fromkeys(rule.per_drug[d].source for d in sorted(drugs)))
            out.append(missing(rule.code, f"{rule.label}: not recorded", source, drugs, field))
        elif answer is Answer.YES:
            out.extend(from_rule(rule.code, d, rule.per_drug[d], field) for d in sorted(drugs))
    out.extend(_hepatic(history.hepatic_impairment, drugs))
    out.extend(_cardiovascular_event(snapshot, drugs, config))
    return out


HEPATIC_RULES: Final[Mapping[HepaticImpairment, Mapping[Drug, DrugRule]]] = {
    HepaticImpairment.SEVERE: {
        E: DrugRule(
            C,
            "Severe hepatic impairment: esketamine not recommended",
            "clinical.md §2.5 (label: Child-Pugh C)",
        ),
        K: DrugRule(C, "Severe hepatic impairment: avoid ketamine", "clinical.md §4, §6.2 (Cohen 2018)"),
    },
    HepaticImpairment.MODERATE: {
        E: DrugRule(W, "Moderate hepatic impairment: may need longer monitoring", "clinical.md §2.5 (label)"),
        K: DrugRule(
            W, "Moderate hepatic impairment: judicious use with monitoring", "clinical.md §4 (Cohen 2018)"
        ),
    },
}


def _hepatic(level: HepaticImpairment, drugs: frozenset[Drug]) -> list[Finding]:
    if level is HepaticImpairment.UNKNOWN:
        return [
            missing(
                "hepatic_impairment",
                "Hepatic impairment (none/mild/moderate/severe): not recorded",
                "clinical.md §2.5 (label); §4 (Cohen 2018)",
                drugs,
                "history.hepatic_impairment",
            )
        ]
    rules = HEPATIC_RULES.get(level, {})
    return [
        from_rule("hepatic_impairment", d, rules[d], "history.hepatic_impairment")
        for d in sorted(drugs)
        if rules
    ]


def _cardiovascular_event(
    snapshot: IntakeSnapshot, drugs: frozenset[Drug], config: ScreeningConfig
) -> list[Finding]:
    history = snapshot.history
    field = "history.cardiovascular_event"
    source = "clinical.md §6.2: recent (≤6 wk) MI or major cardiovascular event (Cohen 2018; OKIC; Menninger)"
    if history.cardiovascular_event is Answer.UNKNOWN:
        return [
            missing(
                "cardiovascular_event",
                "Past MI or major cardiovascular event: not recorded",
                source,
                drugs,
                field,
            )
        ]
    if history.cardiovascular_event is Answer.NO:
        return []
    when = history.cardiovascular_event_date
    if when is None:
        return [
            missing(
                "cardiovascular_event_date",
                f"Date of the last cardiovascular event: not recorded (needed for the "
                f"{config.recent_cardiovascular_event_days // 7}-week rule)",
                source,
                drugs,
                "history.cardiovascular_event_date",
            )
        ]
    days = (snapshot.assessed_on - when).days
    out = []
    for d in sorted(drugs):
        if days <= config.recent_cardiovascular_event_days:
            rule = DrugRule(
                C,
                f"Cardiovascular event {days} days ago (within {config.recent_cardiovascular_event_days // 7} "
                "weeks): contraindicated",
                source + ("; clinical.md §2.2 (label: serious risk from a BP rise)" if d is E else ""),
                confirmed=d is K,
            )
        else:
            rule = DrugRule(
                W,
                f"Cardiovascular event {days} days ago: assess benefit and risk",
                "clinical.md §2.5 (label: other cardiovascular conditions); §7.2",
            )
        out.append(
            from_rule(
                "recent_cardiovascular_event" if rule.severity is C else "past_cardiovascular_event",
                d,
                rule,
                field,
            )
        )
    return out
