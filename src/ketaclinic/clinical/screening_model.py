"""Screening data shapes: the intake snapshot, findings, decisions and the screening configuration.

Pure: no Django, no I/O. The rules live in ``screening_rules.py`` (history items), ``screening_workup.py``
(examination incl. the measured BP and its stop, work-up, age, REMS), ``screening_consistency.py`` (history
against measurement, childbearing potential) and ``screening_medications.py`` (medications, interactions,
treatment resistance, bipolar, scales); the entry point is ``screening.screen``.

Every yes/no item is an ``Answer``: YES, NO or UNKNOWN. UNKNOWN is not NO — an unknown input that a rule
needs produces a ``missing_information`` finding. Collections use ``None`` for "not recorded" and an empty
tuple for "recorded: none".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from ketaclinic.clinical.conditions import Drug, Indication, Route


class Answer(StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


_U = Answer.UNKNOWN


class HepaticImpairment(StrEnum):
    NONE = "none"
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"  # e.g. Child-Pugh C (clinical.md §2.5)
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class MedicalHistory:
    """Every contraindication and precaution item of clinical.md §2.5, §4 and §6.2."""

    aneurysmal_vascular_disease: Answer = _U  # aorta, intracranial, peripheral arterial
    arteriovenous_malformation: Answer = _U
    intracerebral_haemorrhage: Answer = _U
    uncontrolled_hypertension: Answer = _U
    unstable_cardiovascular_disease: Answer = _U  # "poorly controlled cardiovascular disease" (Cohen 2018)
    cardiovascular_event: Answer = _U  # ever had an MI or other major cardiovascular event
    cardiovascular_event_date: date | None = None  # the latest one (for the ≤6-week rule)
    other_cardiovascular_or_cerebrovascular_disease: Answer = _U  # stable, not covered above
    stroke_history: Answer = _U  # CVA other than intracerebral haemorrhage
    hypertensive_encephalopathy_history: Answer = _U
    raised_intracranial_pressure: Answer = _U
    raised_intraocular_pressure: Answer = _U
    hepatic_impairment: HepaticImpairment = HepaticImpairment.UNKNOWN
    psychotic_disorder: Answer = _U  # schizophrenia, schizoaffective disorder
    psychotic_features: Answer = _U  # current psychotic features, e.g. psychotic depression
    bipolar_disorder: Answer = _U
    active_substance_use: Answer = _U  # active substance use disorder or non-prescribed use
    substance_use_disorder_history: Answer = _U  # past SUD, including alcohol
    pregnancy: Answer = _U
    breastfeeding: Answer = _U
    ketamine_hypersensitivity: Answer = _U  # esketamine, ketamine or excipients
    cognitive_impairment: Answer = _U  # delirium or dementia
    cystitis: Answer = _U  # ulcerative or interstitial cystitis
    personality_disorder: Answer = _U  # significant personality disorder
    dissociative_disorder: Answer = _U
    sleep_apnoea: Answer = _U  # diagnosed sleep apnoea


class MedicationClass(StrEnum):
    BENZODIAZEPINE = "benzodiazepine"
    OPIOID = "opioid"
    SEDATIVE_HYPNOTIC = "sedative_hypnotic"  # non-benzodiazepine (REMS monitoring form item)
    OTHER_CNS_DEPRESSANT = "other_cns_depressant"
    PSYCHOSTIMULANT = "psychostimulant"  # amphetamine, methylphenidate, modafinil, armodafinil
    MAOI = "maoi"
    LAMOTRIGINE = "lamotrigine"
    CYP_INDUCER = "cyp2b6_cyp3a4_inducer"
    CYP_INHIBITOR = "cyp2b6_cyp3a4_inhibitor"
    SSRI = "ssri"
    ANTIDEPRESSANT = "antidepressant"  # other conventional antidepressants
    MOOD_STABILISER = "mood_stabiliser"  # e.g. lithium, valproate
    ANTIPSYCHOTIC = "antipsychotic"
    OTHER = "other"


@dataclass(frozen=True)
class Medication:
    name: str
    classes: frozenset[MedicationClass]
    diazepam_equivalent_mg_per_day: float | None = None  # benzodiazepines only


class TrialOutcome(StrEnum):
    NO_RESPONSE = "no_response"
    PARTIAL_RESPONSE = "partial_response"  # <50% improvement: counts as a failure (Fava 2020)
    RESPONSE = "response"
    REMISSION = "remission"
    STOPPED_INTOLERANCE = "stopped_intolerance"  # not an adequate trial
    UNKNOWN = "unknown"


#: What staff read for each outcome (core/labels.py).
TRIAL_OUTCOME_LABELS: Final[Mapping[str, str]] = {
    TrialOutcome.NO_RESPONSE: "No response",
    TrialOutcome.PARTIAL_RESPONSE: "Partial response (<50 %)",
    TrialOutcome.RESPONSE: "Response",
    TrialOutcome.REMISSION: "Remission",
    TrialOutcome.STOPPED_INTOLERANCE: "Stopped: not tolerated",
    TrialOutcome.UNKNOWN: "Unknown",
}


@dataclass(frozen=True)
class AntidepressantTrial:
    drug: str
    dose_adequate: Answer
    weeks: float | None
    adherence_adequate: Answer
    outcome: TrialOutcome
    current_episode: Answer
    augmentation: bool = False  # an augmentation trial rather than an antidepressant


@dataclass(frozen=True)
class CardiacEvaluation:
    systolic_bp: int | None = None
    diastolic_bp: int | None = None
    #: A second measurement after rest, when the first was high: the screening judges the latest reading,
    #: except that a first reading at or above the stop (180/110) always stays on the screening.
    repeat_systolic_bp: int | None = None
    repeat_diastolic_bp: int | None = None
    heart_rate: int | None = None
    ecg_done: Answer = _U
    ecg_date: date | None = None
    ecg_abnormal: Answer = _U
    cardiac_history_notes: str = ""


class NotChildbearingReason(StrEnum):
    """Why a patient cannot become pregnant (recorded with a "no")."""

    POST_MENOPAUSAL = "post_menopausal"
    PERMANENTLY_STERILE = "permanently_sterile"  # hysterectomy, both ovaries or both tubes removed
    MALE_AT_BIRTH = "male_at_birth"
    OTHER = "other"  # the note says which


NOT_CHILDBEARING_LABELS: Final[Mapping[NotChildbearingReason, str]] = MappingProxyType(
    {
        NotChildbearingReason.POST_MENOPAUSAL: "Post-menopausal",
        NotChildbearingReason.PERMANENTLY_STERILE: "Hysterectomy, or both ovaries or both tubes removed",
        NotChildbearingReason.MALE_AT_BIRTH: "Male at birth",
        NotChildbearingReason.OTHER: "Other reason (see note)",
    }
)


@dataclass(frozen=True)
class ChildbearingPotential:
    """Can the patient become pregnant? ``NO`` carries its reason; only a recorded ``NO`` makes a pregnancy
    test "not indicated" (screening and the pre-dose gate). UNKNOWN is not NO."""

    answer: Answer = _U
    reason: NotChildbearingReason | None = None
    note: str = ""

    @property
    def reason_text(self) -> str:
        if self.reason is None:
            return ""
        label = NOT_CHILDBEARING_LABELS[self.reason]
        if self.reason is NotChildbearingReason.OTHER and self.note:
            return f"other: {self.note}"
        return label


@dataclass(frozen=True)
class Labs:
    liver_function_tested: Answer = _U
    renal_function_tested: Answer = _U
    tested_on: date | None = None


@dataclass(frozen=True)
class IntakeSnapshot:
    assessed_on: date
    age_years: int | None = None
    indication: Indication | None = None
    diagnoses: tuple[Indication, ...] = ()
    history: MedicalHistory = field(default_factory=MedicalHistory)
    medications: tuple[Medication, ...] | None = None  # None: not recorded
    alcohol_use: Answer = _U  # current alcohol use (CNS depressant interaction)
    prior_trials: tuple[AntidepressantTrial, ...] | None = None
    baseline_scales: Mapping[str, float] = field(default_factory=dict)  # e.g. {"phq9": 18, "ymrs": 4}
    moca_score: int | None = None
    stop_bang_score: int | None = None
    cardiac: CardiacEvaluation = field(default_factory=CardiacEvaluation)
    labs: Labs = field(default_factory=Labs)
    rems_enrolled: Answer = _U
    childbearing_potential: ChildbearingPotential = field(default_factory=ChildbearingPotential)


class Severity(StrEnum):
    """``contraindicated`` blocks the drug for this patient, whether from harm or an unmet labelled
    indication; ``caution`` and ``interaction`` need the prescriber's attention; ``missing_information``
    says which needed input is unknown."""

    CONTRAINDICATED = "contraindicated"
    CAUTION = "caution"
    INTERACTION = "interaction"
    MISSING_INFORMATION = "missing_information"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: Severity
    reason: str  # one line a clinician reads
    source: str  # clinical.md section + cited document
    drugs: frozenset[Drug]
    routes: frozenset[Route] | None = None  # None: every route of those drugs
    confirmed: bool = True  # False: the rule is an unconfirmed or extrapolated default
    field: str | None = None  # intake field concerned


class Decision(StrEnum):
    ELIGIBLE = "eligible"
    ELIGIBLE_WITH_CAUTIONS = "eligible_with_cautions"
    NOT_ELIGIBLE = "not_eligible"
    INCOMPLETE = "incomplete"


#: What staff read for each decision (screening page, chart, plan; core/labels.py).
DECISION_LABELS: Final[Mapping[str, str]] = {
    Decision.ELIGIBLE: "Eligible",
    Decision.ELIGIBLE_WITH_CAUTIONS: "Eligible with cautions",
    Decision.NOT_ELIGIBLE: "Not eligible",
    Decision.INCOMPLETE: "Incomplete: information missing",
}


class ScreeningConfigError(ValueError):
    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{name}: {reason}" for name, reason in self.errors.items())
        super().__init__(f"Invalid screening settings: {detail}")
        self.message = str(self)


@dataclass(frozen=True)
class ScreeningConfig:
    """Clinic-adjustable screening settings. Defaults cite their source; unconfirmed ones say so.

    ``severity_overrides`` maps a finding code ("psychotic_disorder") or code@drug
    ("psychotic_disorder@esketamine") to another severity. Esketamine label contraindications cannot be
    lowered (they are absolute for esketamine).
    """

    #: ≥2 failed adequate trials in the current episode (clinical.md §6.3: TRANSFORM; REMS wording; Fava 2020).
    trd_min_failed_trials: int = 2
    #: Adequate duration: [U] in the reference (varies 4–8 weeks, §6.3); 6 weeks is a default (ATHF-SF, NCT05625555).
    trd_adequate_weeks: float = 6.0
    trd_adequate_weeks_confirmed: bool = False
    #: ELEKT-D counts augmentation trials (§6.3); TRANSFORM counts oral antidepressants only.
    trd_count_augmentation: bool = False
    #: >8 mg/day diazepam-equivalent distinguished non-responders (Andrashko 2020, §6.4).
    benzodiazepine_blunting_mg_per_day: float = 8.0
    #: Recent cardiovascular event window: ≤6 weeks (§6.2: Cohen 2018; OKIC; Menninger).
    recent_cardiovascular_event_days: int = 42
    #: MoCA below 18 excluded in ELEKT-D (§6.2).
    moca_minimum: int = 18
    require_moca: bool = False  # MoCA is asked only when the clinic requires it (no source requires it)
    #: Pre-session BP >140/90: label general guide (§2.2, §7.3).
    bp_systolic_limit: int = 140
    bp_diastolic_limit: int = 90
    #: A measured BP at or above 180/110 stops eligibility until a prescriber reviews it (a repeat reading
    #: below it, or the prescriber's recorded decision): clinical.md §11, §7.3 — clinic default, unconfirmed.
    bp_stop_systolic: int = 180
    bp_stop_diastolic: int = 110
    bp_stop_confirmed: bool = False
    #: CPSBC draft standard (BC, §6.1): pre-admission ECG, renal and liver tests, sleep-apnoea screen.
    require_ecg: bool = True
    require_labs: bool = True
    require_sleep_apnoea_screen: bool = True
    ecg_max_age_days: int | None = None  # no source: unset means any documented ECG counts
    #: STOP-BANG cut-off is not in the reference: 3 is a commonly used default, unconfirmed.
    stop_bang_caution_minimum: int = 3
    stop_bang_confirmed: bool = False
    #: Bipolar: mood stabiliser on board (Diazgranados 2010, lithium/valproate); clinic opinion also accepts
    #: an antipsychotic (§5.2, low-grade) — off by default.
    bipolar_antipsychotic_counts: bool = False
    #: YMRS entry cut-off: [U] (§5.2); ELEKT-D used ≤5 as an entry threshold. None = no cut-off.
    ymrs_maximum: float | None = None
    severity_overrides: Mapping[str, Severity] = field(default_factory=dict)


DEFAULT_SCREENING_CONFIG: Final = ScreeningConfig()


#: Scale keys accepted as a baseline for each indication family (clinical.md §0, §5.2, §8).
DEPRESSION_SCALES: Final = frozenset({"madrs", "phq9", "qids_sr16"})
PTSD_SCALES: Final = frozenset({"caps5", "pcl5"})
PAIN_SCALES: Final = frozenset({"pain_nrs", "bpi_sf"})
MANIA_SCALE: Final = "ymrs"
