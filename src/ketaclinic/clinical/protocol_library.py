"""Built-in protocol library: data only, every value next to its source in clinical.md.

Pure: no Django, no I/O. Look protocols up with ``get_protocol(id)``; list them with ``PROTOCOLS``.

Decisions worth knowing (all editable in a clinic copy):

* IV dose limits (0.5 mg/kg standard): soft 0.5–0.75 mg/kg (standard dose to the community-practice upper
  dose, CRTCE), hard 0.1–1.0 mg/kg (lowest dose studied, Andrade 2017 / Fava 2020, to the highest dose in
  the dose-ranging RCT, Fava 2020). Outside soft → a recorded reason; outside hard → refused.
* "Monthly" maintenance (§1.4) is scheduled every 28 days so that sessions keep their weekday (derived,
  marked unconfirmed).
* IV post-infusion observation is 30 min, unconfirmed: the reference has no guideline duration; the one
  published series with a figure checked vitals for 30 min after the infusion (clinical.md §7.1, China).
* The CRPS rate (0.35 mg/kg/h) is the only CRPS weight-based rate in Cohen 2018, so soft = hard = 0.35:
  another rate needs a clinic-edited protocol.
* IM and sublingual protocols are clinic templates (``clinic_template=True``); their doses are defaults
  marked ``confirmed=False`` because routine IM/SL psychiatric doses are [U] in the reference (§3.2).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ketaclinic.clinical.conditions import Drug, Indication, Route
from ketaclinic.clinical.protocols import (
    AdjunctSessions,
    Cadence,
    DoseKind,
    DoseLimits,
    DoseRule,
    MonitoringPlan,
    ObservationAnchor,
    Phase,
    PhaseKind,
    Protocol,
    ScaleRequirement,
    ScaleTiming,
    UnknownProtocol,
    derived_min_spacing_days,
    validate_or_raise,
)

_B = ScaleTiming.BASELINE
_E = ScaleTiming.END_OF_INDUCTION
_EVERY = ScaleTiming.EVERY_SESSION

# --- dose rules -------------------------------------------------------------------------------------------

IV_MG_PER_KG_LIMITS: Final = DoseLimits(
    soft_min=0.5,
    soft_max=0.75,
    hard_min=0.1,
    hard_max=1.0,
    source=(
        "clinical.md §1.1: standard 0.5 mg/kg (Murrough 2013; Fava 2020; ELEKT-D 2023); community practice "
        "0.5–0.75 mg/kg (CRTCE, McIntyre 2020); range studied 0.1–0.75 mg/kg (Andrade 2017); dose-ranging RCT "
        "0.1–1.0 mg/kg (Fava 2020)"
    ),
    note="Soft: standard to community upper dose. Hard: lowest to highest dose studied.",
)

IV_STANDARD: Final = DoseRule(
    kind=DoseKind.MG_PER_KG,
    amount=0.5,
    duration_min=40,
    limits=IV_MG_PER_KG_LIMITS,
    source="clinical.md §1.1: 0.5 mg/kg IV over 40 min (Murrough AJP 2013; Fava 2020; ELEKT-D 2023)",
)

IV_PTSD: Final = DoseRule(
    kind=DoseKind.MG_PER_KG,
    amount=0.5,
    duration_min=40,
    limits=IV_MG_PER_KG_LIMITS,
    source="clinical.md §5.1: 0.5 mg/kg (Feder AJP 2021; Feder J Clin Psychiatry 2025); 40 min (Feder 2014)",
)

IV_BIPOLAR: Final = DoseRule(
    kind=DoseKind.MG_PER_KG,
    amount=0.5,
    duration_min=40,
    limits=IV_MG_PER_KG_LIMITS,
    source=(
        "clinical.md §5.2: 0.5 mg/kg (Diazgranados 2010, on lithium or valproate); "
        "duration 40 min from the standard IV dose (§1.1)"
    ),
)

CRPS_RATE: Final = DoseRule(
    kind=DoseKind.MG_PER_KG_PER_HOUR,
    amount=0.35,
    duration_min=240,
    limits=DoseLimits(
        soft_min=0.35,
        soft_max=0.35,
        hard_min=0.35,
        hard_max=0.35,
        source="clinical.md §4: CRPS 0.35 mg/kg/h over 4 h daily × 10 days (Cohen 2018)",
        note="Only one weight-based CRPS rate is given; another rate needs a clinic-edited protocol.",
    ),
    source="clinical.md §4: CRPS 0.35 mg/kg/h over 4 h (Cohen, Reg Anesth Pain Med 2018)",
)

_ESK_LIMITS_56_84: Final = DoseLimits(
    soft_allowed=(56.0, 84.0),
    hard_allowed=(28.0, 56.0, 84.0),
    source=(
        "clinical.md §2.1: US label 56 or 84 mg; 28-mg devices, changes in 28-mg increments; "
        "28 mg start for patients ≥65 is the Hong Kong label (US geriatric start dose [U])"
    ),
    note="28 mg needs a recorded reason; any other amount is refused.",
)

ESK_DAY1_56: Final = DoseRule(
    kind=DoseKind.FIXED_MG,
    amount=56.0,
    duration_min=None,
    limits=DoseLimits(
        soft_allowed=(56.0,),
        hard_allowed=(28.0, 56.0, 84.0),
        source="clinical.md §2.1: TRD induction day 1 = 56 mg (US label)",
        note="Another day-1 dose needs a recorded reason.",
    ),
    source="clinical.md §2.1: TRD induction day 1: 56 mg (SPRAVATO US PI)",
)

ESK_56_OR_84: Final = DoseRule(
    kind=DoseKind.FIXED_MG,
    amount=56.0,
    duration_min=None,
    options=(56.0, 84.0),
    limits=_ESK_LIMITS_56_84,
    source="clinical.md §2.1: 56 or 84 mg (SPRAVATO US PI)",
)

ESK_SI_84: Final = DoseRule(
    kind=DoseKind.FIXED_MG,
    amount=84.0,
    duration_min=None,
    options=(84.0, 56.0),
    limits=_ESK_LIMITS_56_84,
    source="clinical.md §2.1: MDD with acute SI: 84 mg; may reduce to 56 mg for tolerability (SPRAVATO US PI)",
)

IM_TEMPLATE_DOSE: Final = DoseRule(
    kind=DoseKind.MG_PER_KG,
    amount=0.5,
    duration_min=None,
    limits=DoseLimits(
        soft_min=0.1,
        soft_max=0.5,
        hard_min=0.1,
        hard_max=0.5,
        source="clinical.md §3.2: IM/SC/IV 0.1–0.5 mg/kg weekly up to 6 weeks (NCT01441505)",
        confirmed=False,
        note="IM mg/kg in routine psychiatry is [U]; the clinic sets its own limits.",
    ),
    source=(
        "Clinic template, unconfirmed: clinical.md §3.2 range 0.1–0.5 mg/kg (NCT01441505); 0.5 mg/kg chosen "
        "because IM bioavailability ~93% (§3.1) makes it close to the 0.5 mg/kg IV exposure"
    ),
    confirmed=False,
)

SL_TEMPLATE_DOSE: Final = DoseRule(
    kind=DoseKind.FIXED_MG,
    amount=10.0,
    duration_min=None,
    limits=DoseLimits(
        soft_min=10.0,
        soft_max=10.0,
        hard_min=10.0,
        hard_max=10.0,
        source="clinical.md §3.2: sublingual 10 mg (100 mg/mL held 5 min, then swallowed) (Lara, IJNP 2013)",
        confirmed=False,
        note="At-home SL program doses are [U] (§3.3); the clinic sets its own dose and limits.",
    ),
    source="Clinic template, unconfirmed: clinical.md §3.2 sublingual 10 mg (Lara 2013)",
    confirmed=False,
    note="Lara 2013: 100 mg/mL solution held under the tongue for 5 min, then swallowed.",
)

# --- monitoring -------------------------------------------------------------------------------------------

ESKETAMINE_MONITORING: Final = MonitoringPlan(
    observation_min=120,
    observation_anchor=ObservationAnchor.FIRST_DOSE,
    bp_pre_dose=True,
    bp_after_dose_min=(40,),
    bp_pre_discharge=True,
    pulse_oximetry=True,
    rems_monitoring_form_days=7,
    source=(
        "clinical.md §2.3: observe ≥2 h, BP before dosing, ~40 min after and until it settles, pulse oximetry "
        "(label; spravatohcp.com); §2.4 REMS: Patient Monitoring Form within 7 days; §7.1"
    ),
    note="More intensive BP monitoring with a history of hypertensive encephalopathy, psychostimulants or "
    "MAOIs (label §5.6).",
)

IV_MONITORING: Final = MonitoringPlan(
    observation_min=30,
    observation_anchor=ObservationAnchor.END_OF_DOSE,
    observation_confirmed=False,
    bp_pre_dose=True,
    bp_after_dose_min=(),
    bp_pre_discharge=True,
    pulse_oximetry=True,
    vitals_during_dose_every_min=10,
    vitals_after_dose_every_min=15,
    source=(
        "clinical.md §7.1: BP every 10 min during the infusion, every 15 min after (Riva-Posse 2018, Emory); "
        "vitals 30 min after (China series); SpO2 and rhythm in clinics (low-grade); §7.3 pre-dose BP"
    ),
    note="Post-infusion observation length has no guideline source: 30 min is an unconfirmed default.",
)

NON_IV_TEMPLATE_MONITORING: Final = MonitoringPlan(
    observation_min=120,
    observation_anchor=ObservationAnchor.FIRST_DOSE,
    observation_confirmed=False,
    bp_pre_dose=True,
    bp_after_dose_min=(),
    bp_pre_discharge=True,
    pulse_oximetry=True,
    vitals_after_dose_every_min=15,
    source=(
        "Clinic template, unconfirmed: ≥2 h by analogy with esketamine (clinical.md §2.3) and at-home programs "
        "(§3.3, low-grade); 15-min vitals by analogy with post-infusion cadence (§7.1)"
    ),
)

# --- schedules --------------------------------------------------------------------------------------------


def _phase(
    name: str,
    kind: PhaseKind,
    cadence: Cadence,
    sessions: int | None,
    dose: DoseRule,
    source: str,
    **extra: object,
) -> Phase:
    return Phase(
        name=name,
        kind=kind,
        cadence=cadence,
        sessions=sessions,
        min_spacing_days=derived_min_spacing_days(cadence),
        dose=dose,
        source=source,
        **extra,  # type: ignore[arg-type]
    )


_CANADIAN = "clinical.md §1.4; Canadian ketamine-vs-ECT trial protocol (PMC7265624)"
_MAINT_NOTE = "No validated standard maintenance (§1.4); individualize (Andrade 2017). Example schedule."


def iv_maintenance_example(dose: DoseRule) -> tuple[Phase, ...]:
    """§1.4: weekly ×1 month → every 2 weeks ×2 months → monthly ×3 months (PMC7265624)."""
    return (
        _phase(
            "Maintenance: weekly for 1 month",
            PhaseKind.MAINTENANCE,
            Cadence(every_days=7),
            4,
            dose,
            _CANADIAN,
            optional=True,
            note=_MAINT_NOTE,
        ),
        _phase(
            "Maintenance: every 2 weeks for 2 months",
            PhaseKind.MAINTENANCE,
            Cadence(every_days=14),
            4,
            dose,
            _CANADIAN,
            optional=True,
            note=_MAINT_NOTE + " Return to every 2 weeks on relapse.",
        ),
        _phase(
            "Maintenance: monthly for 3 months",
            PhaseKind.MAINTENANCE,
            Cadence(every_days=28),
            3,
            dose,
            _CANADIAN,
            optional=True,
            confirmed=False,
            note=_MAINT_NOTE + " 'Monthly' scheduled every 28 days (derived, unconfirmed).",
        ),
    )


_IV_DEPRESSION_SCALES: Final = (
    ScaleRequirement(
        "phq9",
        (_B, _E),
        "clinical.md §0 (response = ≥50% reduction from baseline), §8 (PHQ-9)",
        note="MADRS or QIDS-SR16 may be used instead.",
    ),
)

_TRD: Final = (Indication.TREATMENT_RESISTANT_DEPRESSION, Indication.MAJOR_DEPRESSIVE_DISORDER)


def _iv_trd(
    pid: str, name: str, induction: Phase, source: str, scales: tuple[ScaleRequirement, ...]
) -> Protocol:
    return Protocol(
        id=pid,
        version=1,
        name=name,
        drug=Drug.KETAMINE,
        route=Route.IV,
        indications=_TRD,
        phases=(induction, *iv_maintenance_example(IV_STANDARD)),
        monitoring=IV_MONITORING,
        scales=scales,
        sources=(source, "clinical.md §1.1", _CANADIAN),
        second_person_check=True,
    )


_PROTOCOL_LIST: Final[tuple[Protocol, ...]] = (
    _iv_trd(
        "iv-trd-elektd",
        "IV ketamine 0.5 mg/kg, 6 infusions twice weekly (ELEKT-D)",
        _phase(
            "Induction: 6 infusions twice weekly for 3 weeks",
            PhaseKind.INDUCTION,
            Cadence(per_week=2),
            6,
            IV_STANDARD,
            "clinical.md §1.3: 6 infusions, 2×/week for 3 weeks (ELEKT-D, Anand NEJM 2023)",
        ),
        "clinical.md §1.3; ELEKT-D (Anand, NEJM 2023)",
        (
            ScaleRequirement(
                "qids_sr16",
                (_B, _E),
                "clinical.md §0, §8: ELEKT-D response on QIDS-SR16 (≥50%), remission ≤5",
            ),
        ),
    ),
    _iv_trd(
        "iv-trd-murrough",
        "IV ketamine 0.5 mg/kg, up to 6 infusions 3× weekly over 12 days (Murrough 2013)",
        _phase(
            "Induction: up to 6 infusions 3× weekly over 12 days",
            PhaseKind.INDUCTION,
            Cadence(per_week=3),
            6,
            IV_STANDARD,
            "clinical.md §1.3: up to 6 infusions, 3×/week over 12 days (Murrough, Biol Psychiatry 2013)",
            max_span_days=12,
            may_stop_early=True,
        ),
        "clinical.md §1.3; Murrough, Biol Psychiatry 2013",
        _IV_DEPRESSION_SCALES,
    ),
    _iv_trd(
        "iv-trd-ketect",
        "IV ketamine 0.5 mg/kg, 3× weekly until remission, max 12 (KetECT)",
        _phase(
            "Induction: 3× weekly until remission, max 12",
            PhaseKind.INDUCTION,
            Cadence(per_week=3),
            12,
            IV_STANDARD,
            "clinical.md §1.3: 3×/week until remission or max 12 sessions, median 6 (KetECT, Ekstrand IJNP 2022)",
            may_stop_early=True,
        ),
        "clinical.md §1.3; KetECT (Ekstrand, IJNP 2022)",
        (ScaleRequirement("madrs", (_B, _EVERY), "clinical.md §0: KetECT remission MADRS ≤10"),),
    ),
    _iv_trd(
        "iv-trd-canadian",
        "IV ketamine 0.5 mg/kg, 3× weekly for 3–4 weeks, then maintenance (Canadian protocol)",
        _phase(
            "Induction: 3× weekly for 3–4 weeks",
            PhaseKind.INDUCTION,
            Cadence(per_week=3),
            12,
            IV_STANDARD,
            "clinical.md §1.3: 3×/week for 3–4 weeks, 0.5 mg/kg (Canadian ketamine-vs-ECT protocol, PMC7265624)",
            may_stop_early=True,
            note="3–4 weeks: 9 to 12 infusions; scheduled as 4 weeks.",
        ),
        _CANADIAN,
        _IV_DEPRESSION_SCALES,
    ),
    Protocol(
        id="esk-trd-label",
        version=1,
        name="Esketamine nasal spray for treatment-resistant depression (US label)",
        drug=Drug.ESKETAMINE,
        route=Route.INTRANASAL,
        indications=(Indication.TREATMENT_RESISTANT_DEPRESSION,),
        phases=(
            _phase(
                "Induction (weeks 1–4): twice weekly",
                PhaseKind.INDUCTION,
                Cadence(per_week=2),
                8,
                ESK_56_OR_84,
                "clinical.md §2.1: weeks 1–4, day 1 56 mg, then 56 or 84 mg twice weekly (SPRAVATO US PI)",
                first_dose=ESK_DAY1_56,
                note="Evaluate therapeutic benefit at the end of induction to decide on continuation.",
            ),
            _phase(
                "Maintenance (weeks 5–8): weekly",
                PhaseKind.MAINTENANCE,
                Cadence(every_days=7),
                4,
                ESK_56_OR_84,
                "clinical.md §2.1: weeks 5–8, 56 or 84 mg once weekly (SPRAVATO US PI)",
            ),
            _phase(
                "Maintenance (week 9 onward): every 2 weeks or weekly",
                PhaseKind.MAINTENANCE,
                Cadence(every_days=14),
                None,
                ESK_56_OR_84,
                "clinical.md §2.1: week ≥9, 56 or 84 mg every 2 weeks or once weekly (SPRAVATO US PI)",
                alternative_cadences=(Cadence(every_days=7),),
                note="Individualize to the lowest frequency that maintains remission/response.",
            ),
        ),
        monitoring=ESKETAMINE_MONITORING,
        scales=(
            ScaleRequirement(
                "madrs",
                (_B, _E),
                "clinical.md §0, §2.1: evaluate benefit at end of induction; TRANSFORM MADRS",
            ),
        ),
        sources=("clinical.md §2.1–§2.5", "SPRAVATO US PI", "FDA REMS (clinical.md §2.4)"),
        rems_required=True,
        notes="Since Jan 2025 approved as monotherapy or with an oral antidepressant (clinical.md §2).",
    ),
    Protocol(
        id="esk-mdd-si-label",
        version=1,
        name="Esketamine nasal spray for MDD with acute suicidal ideation or behaviour (US label)",
        drug=Drug.ESKETAMINE,
        route=Route.INTRANASAL,
        indications=(Indication.MDD_WITH_SUICIDAL_IDEATION,),
        phases=(
            _phase(
                "Treatment: twice weekly for 4 weeks",
                PhaseKind.INDUCTION,
                Cadence(per_week=2),
                8,
                ESK_SI_84,
                "clinical.md §2.1: 84 mg twice weekly for 4 weeks; may reduce to 56 mg (SPRAVATO US PI)",
                note="Benefit beyond 4 weeks not systematically evaluated.",
            ),
        ),
        monitoring=ESKETAMINE_MONITORING,
        scales=(ScaleRequirement("madrs", (_B, _E), "clinical.md §0, §2.1"),),
        sources=("clinical.md §2.1–§2.5", "SPRAVATO US PI", "FDA REMS (clinical.md §2.4)"),
        rems_required=True,
    ),
    Protocol(
        id="iv-ptsd-feder",
        version=1,
        name="IV ketamine 0.5 mg/kg 3× weekly for 2 weeks with Written Exposure Therapy (PTSD, Feder)",
        drug=Drug.KETAMINE,
        route=Route.IV,
        indications=(Indication.PTSD,),
        phases=(
            _phase(
                "Induction: 6 infusions 3× weekly for 2 weeks",
                PhaseKind.INDUCTION,
                Cadence(per_week=3),
                6,
                IV_PTSD,
                "clinical.md §5.1: 6 infusions 0.5 mg/kg over 2 weeks, 3×/week (Feder AJP 2021; Feder 2025)",
            ),
        ),
        monitoring=IV_MONITORING,
        scales=(
            ScaleRequirement(
                "caps5", (_B, _E), "clinical.md §0: PTSD response ≥30% CAPS-5 (Feder 2021, 2025)"
            ),
            ScaleRequirement("pcl5", (_B, _E), "clinical.md §8: PCL-5 self-report"),
        ),
        adjuncts=(
            AdjunctSessions(
                kind="written_exposure_therapy",
                label="Written Exposure Therapy",
                count=5,
                start_after_session=4,
                non_dosing_days_only=True,
                source=(
                    "clinical.md §5.1: 5 Written Exposure Therapy sessions starting after the 4th infusion, on "
                    "non-infusion days (Feder, J Clin Psychiatry 2025)"
                ),
            ),
        ),
        sources=("clinical.md §5.1", "Feder, AJP 2021", "Feder, J Clin Psychiatry 2025"),
        second_person_check=True,
    ),
    Protocol(
        id="iv-bipolar-wilkowska",
        version=1,
        name="IV ketamine 0.5 mg/kg, 8 infusions twice weekly, YMRS every session (bipolar depression)",
        drug=Drug.KETAMINE,
        route=Route.IV,
        indications=(Indication.BIPOLAR_DEPRESSION,),
        phases=(
            _phase(
                "Induction: 8 infusions twice weekly for 4 weeks",
                PhaseKind.INDUCTION,
                Cadence(per_week=2),
                8,
                IV_BIPOLAR,
                "clinical.md §1.3, §5.2: 8 infusions, 2×/week for 4 weeks (Wilkowska 2021, bipolar)",
            ),
        ),
        monitoring=IV_MONITORING,
        scales=(
            ScaleRequirement(
                "ymrs", (_B, _EVERY), "clinical.md §5.2: YMRS to monitor mania (Wilkowska 2021)"
            ),
            ScaleRequirement("madrs", (_B, _E), "clinical.md §0, §8"),
        ),
        sources=("clinical.md §1.3, §5.2", "Wilkowska 2021", "Diazgranados, Arch Gen Psychiatry 2010"),
        second_person_check=True,
        notes="Mood stabiliser on board (Diazgranados 2010: lithium or valproate); screening checks it.",
    ),
    Protocol(
        id="iv-crps-cohen",
        version=1,
        name="IV ketamine 0.35 mg/kg/h over 4 h daily for 10 days (CRPS, Cohen 2018)",
        drug=Drug.KETAMINE,
        route=Route.IV,
        indications=(Indication.CRPS,),
        phases=(
            _phase(
                "Infusions: daily for 10 days",
                PhaseKind.INDUCTION,
                Cadence(every_days=1),
                10,
                CRPS_RATE,
                "clinical.md §4: 0.35 mg/kg/h over 4 h daily × 10 days (Cohen 2018)",
            ),
        ),
        monitoring=IV_MONITORING,
        scales=(
            ScaleRequirement(
                "pain_nrs", (_B, _E), "clinical.md §0, §8: IMMPACT ≥30% NRS reduction = moderately important"
            ),
        ),
        sources=("clinical.md §4", "Cohen, Reg Anesth Pain Med 2018;43:521–546"),
        second_person_check=True,
        notes="Inpatient alternative 22 mg/h for 4 days (Cohen 2018) is not a clinic protocol here.",
    ),
    Protocol(
        id="im-clinic-template",
        version=1,
        name="IM ketamine weekly for 6 weeks (clinic template, dose unconfirmed)",
        drug=Drug.KETAMINE,
        route=Route.IM,
        indications=_TRD,
        phases=(
            _phase(
                "Course: weekly for 6 weeks",
                PhaseKind.INDUCTION,
                Cadence(every_days=7),
                6,
                IM_TEMPLATE_DOSE,
                "clinical.md §3.2: 0.1–0.5 mg/kg weekly up to 6 weeks (NCT01441505)",
                confirmed=False,
            ),
        ),
        monitoring=NON_IV_TEMPLATE_MONITORING,
        scales=_IV_DEPRESSION_SCALES,
        sources=("clinical.md §3.1, §3.2", "NCT01441505"),
        clinic_template=True,
        second_person_check=True,
        notes="Clinic-defined template: set the dose, limits and schedule before use.",
    ),
    Protocol(
        id="sl-clinic-template",
        version=1,
        name="Sublingual ketamine 10 mg weekly (clinic template, dose unconfirmed)",
        drug=Drug.KETAMINE,
        route=Route.SUBLINGUAL,
        indications=_TRD,
        phases=(
            _phase(
                "Course: weekly, 4 sessions",
                PhaseKind.INDUCTION,
                Cadence(every_days=7),
                4,
                SL_TEMPLATE_DOSE,
                "clinical.md §3.2: every 2–3 days or weekly (Lara 2013); §3.3: 4 sessions over 4 weeks (Hull 2022)",
                confirmed=False,
            ),
        ),
        monitoring=NON_IV_TEMPLATE_MONITORING,
        scales=_IV_DEPRESSION_SCALES,
        sources=("clinical.md §3.2, §3.3", "Lara, IJNP 2013", "Hull, J Affect Disord 2022"),
        clinic_template=True,
        notes="Clinic-defined template: set the dose, limits and schedule before use.",
    ),
)

PROTOCOLS: Final[Mapping[str, Protocol]] = {p.id: validate_or_raise(p) for p in _PROTOCOL_LIST}


def get_protocol(protocol_id: str) -> Protocol:
    try:
        return PROTOCOLS[protocol_id]
    except KeyError:
        raise UnknownProtocol(protocol_id) from None
