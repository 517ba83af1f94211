"""The stored form of an intake (a flat JSON object) and its mapping onto the screening engine's snapshot.

No Django here: the app stores ``data`` (validated by ``clean_intake``) and builds the pure engine's
``IntakeSnapshot`` from it with ``snapshot_from_data``. Yes/no items are "yes", "no" or "unknown" —
unknown stays distinct from no. ``medications`` and ``prior_trials`` are ``None`` when not recorded and an
empty list when recorded as none.

Input plausibility bounds below (blood pressure, heart rate, weeks) only catch typing errors; they are not
clinical thresholds (those live in the screening engine, each with its source).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import date
from typing import Any, Final

from ketaclinic.clinical.conditions import INDICATIONS, Indication
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.clinical.screening_model import (
    Answer,
    AntidepressantTrial,
    CardiacEvaluation,
    ChildbearingPotential,
    HepaticImpairment,
    IntakeSnapshot,
    Labs,
    MedicalHistory,
    Medication,
    MedicationClass,
    NotChildbearingReason,
    TrialOutcome,
)
from ketaclinic.core.limits import too_long
from ketaclinic.core.text import control_problem

HISTORY_ANSWERS: Final = tuple(f.name for f in fields(MedicalHistory) if f.type in ("Answer", Answer))
#: Yes/no/unknown items outside the medical history.
OTHER_ANSWERS: Final = (
    "alcohol_use",
    "rems_enrolled",
    "ecg_done",
    "ecg_abnormal",
    "liver_function_tested",
    "renal_function_tested",
)
ANSWER_FIELDS: Final = HISTORY_ANSWERS + OTHER_ANSWERS
DATE_FIELDS: Final = ("cardiovascular_event_date", "ecg_date", "labs_tested_on")

#: Typing-error bounds (not clinical thresholds). MoCA 0–30 and STOP-BANG 0–8 are the instruments' ranges
#: (as in screening.validate_config).
INT_FIELDS: Final[Mapping[str, tuple[int, int]]] = {
    "moca_score": (0, 30),
    "stop_bang_score": (0, 8),
    "systolic_bp": (40, 300),
    "diastolic_bp": (20, 200),
    "repeat_systolic_bp": (40, 300),
    "repeat_diastolic_bp": (20, 200),
    "heart_rate": (20, 250),
}
#: Childbearing potential: yes / no with the reason / unknown. "Other" needs a short note saying which.
CHILDBEARING_REASONS: Final = tuple(r.value for r in NotChildbearingReason)
CHILDBEARING_NOTE_MAX_CHARS: Final = 200

#: Free-text notes and the most each may hold: a longer note is refused with this limit, never cut.
TEXT_LIMITS: Final[Mapping[str, int]] = {"cardiac_history_notes": 2000, "notes": 4000}
TEXT_LABELS: Final[Mapping[str, str]] = {"cardiac_history_notes": "Cardiac history notes", "notes": "Notes"}

#: Baseline scale keys the screening engine reads (screening_model: DEPRESSION_SCALES, PTSD_SCALES,
#: PAIN_SCALES, MANIA_SCALE) -> the instrument whose score range bounds them (clinical.md §8).
SCALE_KEYS: Final[Mapping[str, str | None]] = {
    "phq9": "phq9",
    "madrs": "madrs",
    "qids_sr16": "qids-sr16",
    "ymrs": "ymrs",
    "pcl5": "pcl5",
    "caps5": None,
    "pain_nrs": "pain-nrs",
    "bpi_sf": None,
}
SCALE_LABELS: Final[Mapping[str, str]] = {
    "phq9": "PHQ-9",
    "madrs": "MADRS",
    "qids_sr16": "QIDS-SR16",
    "ymrs": "YMRS",
    "pcl5": "PCL-5",
    "caps5": "CAPS-5",
    "pain_nrs": "Pain NRS",
    "bpi_sf": "BPI-SF",
}

MEDICATION_CLASS_LABELS: Final[Mapping[str, str]] = {
    MedicationClass.BENZODIAZEPINE: "benzodiazepine",
    MedicationClass.OPIOID: "opioid",
    MedicationClass.SEDATIVE_HYPNOTIC: "sedative-hypnotic (non-benzodiazepine)",
    MedicationClass.OTHER_CNS_DEPRESSANT: "other CNS depressant",
    MedicationClass.PSYCHOSTIMULANT: "psychostimulant",
    MedicationClass.MAOI: "MAOI",
    MedicationClass.LAMOTRIGINE: "lamotrigine",
    MedicationClass.CYP_INDUCER: "CYP2B6/3A4 inducer",
    MedicationClass.CYP_INHIBITOR: "CYP2B6/3A4 inhibitor",
    MedicationClass.SSRI: "SSRI",
    MedicationClass.ANTIDEPRESSANT: "antidepressant (other)",
    MedicationClass.MOOD_STABILISER: "mood stabiliser",
    MedicationClass.ANTIPSYCHOTIC: "antipsychotic",
    MedicationClass.OTHER: "other",
}

ANSWER_VALUES: Final = tuple(a.value for a in Answer)
HEPATIC_VALUES: Final = tuple(h.value for h in HepaticImpairment)
OUTCOME_VALUES: Final = tuple(o.value for o in TrialOutcome)
CLASS_VALUES: Final = tuple(c.value for c in MedicationClass)
INDICATION_VALUES: Final = tuple(i.value for i in Indication)


class IntakeDataError(ValueError):
    """``errors`` names every bad field (``medications[2].classes``) with a reason a clinician reads."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def _date(value: Any, key: str, errors: dict[str, str], today: date | None) -> str | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        parsed = value
    else:
        try:
            parsed = date.fromisoformat(str(value))
        except ValueError:
            errors[key] = f"{value!r} is not a date (YYYY-MM-DD)"
            return None
    if today is not None and parsed > today:
        errors[key] = "is in the future"
        return None
    return parsed.isoformat()


def _number(value: Any, key: str, errors: dict[str, str], low: float, high: float) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, bool):
        errors[key] = "must be a number"
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        errors[key] = f"{value!r} is not a number"
        return None
    if not low <= number <= high:
        errors[key] = f"{number:g} is outside {low:g}–{high:g}"
        return None
    return number


def _answer(value: Any, key: str, errors: dict[str, str]) -> str:
    if value in (None, ""):
        return Answer.UNKNOWN.value
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip().lower()
    if text not in ANSWER_VALUES:
        errors[key] = "answer yes, no or unknown"
        return Answer.UNKNOWN.value
    return text


def _medications(value: Any, errors: dict[str, str]) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errors["medications"] = "must be a list (or null when not recorded)"
        return None
    out: list[dict[str, Any]] = []
    for i, item in enumerate(value):
        key = f"medications[{i}]"
        if not isinstance(item, Mapping):
            errors[key] = "must be an object with name and classes"
            continue
        name = str(item.get("name") or "").strip()
        if not name:
            errors[f"{key}.name"] = "required"
        classes = item.get("classes")
        if not isinstance(classes, list) or not classes:
            errors[f"{key}.classes"] = "give at least one class: " + ", ".join(CLASS_VALUES)
            classes = []
        bad = [str(c) for c in classes if c not in CLASS_VALUES]
        if bad:
            errors[f"{key}.classes"] = f"unknown class {', '.join(bad)} (use {', '.join(CLASS_VALUES)})"
        dzp = _number(
            item.get("diazepam_equivalent_mg_per_day"),
            f"{key}.diazepam_equivalent_mg_per_day",
            errors,
            0,
            1000,
        )
        if dzp is not None and MedicationClass.BENZODIAZEPINE.value not in classes:
            errors[f"{key}.diazepam_equivalent_mg_per_day"] = "only for benzodiazepines"
        unknown = set(item) - {"name", "classes", "diazepam_equivalent_mg_per_day"}
        if unknown:
            errors[f"{key}"] = f"unknown field {', '.join(sorted(unknown))}"
        out.append(
            {
                "name": name,
                "classes": sorted(dict.fromkeys(str(c) for c in classes)),
                "diazepam_equivalent_mg_per_day": dzp,
            }
        )
    return out


def _trials(value: Any, errors: dict[str, str]) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        errors["prior_trials"] = "must be a list (or null when not recorded)"
        return None
    out: list[dict[str, Any]] = []
    allowed = {
        "drug",
        "dose_adequate",
        "weeks",
        "adherence_adequate",
        "outcome",
        "current_episode",
        "augmentation",
    }
    for i, item in enumerate(value):
        key = f"prior_trials[{i}]"
        if not isinstance(item, Mapping):
            errors[key] = "must be an object"
            continue
        drug = str(item.get("drug") or "").strip()
        if not drug:
            errors[f"{key}.drug"] = "required"
        outcome = str(item.get("outcome") or "unknown").strip().lower()
        if outcome not in OUTCOME_VALUES:
            errors[f"{key}.outcome"] = "use " + ", ".join(OUTCOME_VALUES)
        augmentation = item.get("augmentation", False)
        if not isinstance(augmentation, bool):
            errors[f"{key}.augmentation"] = "true or false"
            augmentation = False
        unknown = set(item) - allowed
        if unknown:
            errors[key] = f"unknown field {', '.join(sorted(unknown))}"
        out.append(
            {
                "drug": drug,
                "dose_adequate": _answer(item.get("dose_adequate"), f"{key}.dose_adequate", errors),
                "weeks": _number(item.get("weeks"), f"{key}.weeks", errors, 0, 520),
                "adherence_adequate": _answer(
                    item.get("adherence_adequate"), f"{key}.adherence_adequate", errors
                ),
                "outcome": outcome,
                "current_episode": _answer(item.get("current_episode"), f"{key}.current_episode", errors),
                "augmentation": augmentation,
            }
        )
    return out


def _scales(value: Any, errors: dict[str, str]) -> dict[str, float]:
    if value in (None, ""):
        return {}
    if not isinstance(value, Mapping):
        errors["baseline_scales"] = "must map scale keys to totals"
        return {}
    out: dict[str, float] = {}
    for key, total in value.items():
        if key not in SCALE_KEYS:
            errors[f"baseline_scales.{key}"] = f"unknown scale (use {', '.join(SCALE_KEYS)})"
            continue
        code = SCALE_KEYS[key]
        score_range = INSTRUMENTS[code].score_range if code else None
        low, high = (score_range.low, score_range.high) if score_range else (0, 1000)
        number = _number(total, f"baseline_scales.{key}", errors, low, high)
        if number is not None:
            out[str(key)] = number
    return out


KNOWN_KEYS: Final = frozenset(
    {
        "assessed_on",
        "indication",
        "diagnoses",
        "hepatic_impairment",
        "cardiac_history_notes",
        "medications",
        "prior_trials",
        "baseline_scales",
        "notes",
        "childbearing_potential",
        "childbearing_potential_reason",
        "childbearing_potential_note",
        *ANSWER_FIELDS,
        *DATE_FIELDS,
        *INT_FIELDS,
    }
)


def _control_characters(value: Any, where: str) -> dict[str, str]:
    """Every text in the intake, at any depth, without control characters (core/text.py; issue 15)."""
    if isinstance(value, str):
        why = control_problem(value, multiline=True)
        return {where or "data": why} if why else {}
    found: dict[str, str] = {}
    if isinstance(value, Mapping):
        for key, item in value.items():
            found.update(_control_characters(item, f"{where}.{key}" if where else str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.update(_control_characters(item, f"{where}.{index}"))
    return found


def clean_intake(data: Mapping[str, Any], *, today: date) -> dict[str, Any]:
    """Validate and normalise; raises ``IntakeDataError`` naming every bad field at once."""
    errors: dict[str, str] = {}
    if not isinstance(data, Mapping):
        raise IntakeDataError({"data": "must be an object"})
    for key in data:
        if key not in KNOWN_KEYS:
            errors[str(key)] = "unknown field"
    errors.update(_control_characters(data, ""))
    out: dict[str, Any] = {}
    assessed = _date(data.get("assessed_on"), "assessed_on", errors, today)
    if assessed is None and "assessed_on" not in errors:
        errors["assessed_on"] = "required"
    out["assessed_on"] = assessed
    indication = str(data.get("indication") or "")
    if indication and indication not in INDICATION_VALUES:
        errors["indication"] = "choose one of " + ", ".join(INDICATION_VALUES)
    out["indication"] = indication or None
    diagnoses = data.get("diagnoses") or []
    if not isinstance(diagnoses, list):
        errors["diagnoses"] = "must be a list"
        diagnoses = []
    bad = [str(d) for d in diagnoses if d not in INDICATION_VALUES]
    if bad:
        errors["diagnoses"] = f"unknown diagnosis {', '.join(bad)}"
    out["diagnoses"] = sorted(dict.fromkeys(str(d) for d in diagnoses if d in INDICATION_VALUES))
    for key in ANSWER_FIELDS:
        out[key] = _answer(data.get(key), key, errors)
    hepatic = str(data.get("hepatic_impairment") or "unknown").lower()
    if hepatic not in HEPATIC_VALUES:
        errors["hepatic_impairment"] = "choose " + ", ".join(HEPATIC_VALUES)
    out["hepatic_impairment"] = hepatic
    for key in DATE_FIELDS:
        out[key] = _date(data.get(key), key, errors, today)
    for key, (low, high) in INT_FIELDS.items():
        number = _number(data.get(key), key, errors, low, high)
        if number is not None and not number.is_integer():
            errors[key] = "must be a whole number"
        out[key] = int(number) if number is not None and number.is_integer() else None
    _blood_pressures(out, errors)
    out.update(_childbearing(data, errors))
    for key, limit in TEXT_LIMITS.items():
        text = str(data.get(key) or "").strip()
        if (problem := too_long(text, label=TEXT_LABELS[key], limit=limit)) is not None:
            errors[key] = problem
        out[key] = text
    out["baseline_scales"] = _scales(data.get("baseline_scales"), errors)
    out["medications"] = _medications(data.get("medications"), errors)
    out["prior_trials"] = _trials(data.get("prior_trials"), errors)
    if errors:
        raise IntakeDataError(errors)
    return out


def _blood_pressures(out: dict[str, Any], errors: dict[str, str]) -> None:
    """Each reading is a pair; a repeat reading follows a first one."""
    for prefix in ("", "repeat_"):
        systolic, diastolic = out[f"{prefix}systolic_bp"], out[f"{prefix}diastolic_bp"]
        if systolic is not None and diastolic is not None and diastolic >= systolic:
            errors[f"{prefix}diastolic_bp"] = "must be lower than the systolic pressure"
    repeat = (out["repeat_systolic_bp"], out["repeat_diastolic_bp"])
    if any(v is not None for v in repeat):
        for key, value in zip(("repeat_systolic_bp", "repeat_diastolic_bp"), repeat, strict=True):
            if value is None and key not in errors:
                errors[key] = "give both numbers of the repeat reading"
        if out["systolic_bp"] is None or out["diastolic_bp"] is None:
            errors.setdefault("repeat_systolic_bp", "record the first blood pressure before a repeat reading")


def _childbearing(data: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    answer = _answer(data.get("childbearing_potential"), "childbearing_potential", errors)
    reason = str(data.get("childbearing_potential_reason") or "").strip()
    note = str(data.get("childbearing_potential_note") or "").strip()
    key = "childbearing_potential_reason"
    if reason and reason not in CHILDBEARING_REASONS:
        errors[key] = "choose " + ", ".join(CHILDBEARING_REASONS)
    elif answer == Answer.NO.value and not reason:
        errors[key] = "say why the patient cannot become pregnant"
    elif answer != Answer.NO.value and reason:
        errors[key] = "only when childbearing potential is no"
    if len(note) > CHILDBEARING_NOTE_MAX_CHARS:
        errors["childbearing_potential_note"] = (
            f"{len(note)} characters: at most {CHILDBEARING_NOTE_MAX_CHARS}; put more in the notes"
        )
    elif reason == NotChildbearingReason.OTHER.value and not note:
        errors["childbearing_potential_note"] = "say which other reason"
    elif note and reason != NotChildbearingReason.OTHER.value:
        errors["childbearing_potential_note"] = "only with the reason 'other'"
    return {
        "childbearing_potential": answer,
        "childbearing_potential_reason": reason or None,
        "childbearing_potential_note": note,
    }


def snapshot_from_data(data: Mapping[str, Any], *, age_years: int | None) -> IntakeSnapshot:
    """The engine's snapshot of cleaned intake data (``clean_intake`` output)."""

    def a(key: str) -> Answer:
        return Answer(data.get(key) or "unknown")

    def d(key: str) -> date | None:
        value = data.get(key)
        return date.fromisoformat(value) if value else None

    history = MedicalHistory(
        **{key: a(key) for key in HISTORY_ANSWERS},
        hepatic_impairment=HepaticImpairment(data.get("hepatic_impairment") or "unknown"),
        cardiovascular_event_date=d("cardiovascular_event_date"),
    )
    meds = data.get("medications")
    trials = data.get("prior_trials")
    return IntakeSnapshot(
        assessed_on=date.fromisoformat(data["assessed_on"]),
        age_years=age_years,
        indication=Indication(data["indication"]) if data.get("indication") else None,
        diagnoses=tuple(Indication(x) for x in data.get("diagnoses") or ()),
        history=history,
        medications=None
        if meds is None
        else tuple(
            Medication(
                name=m["name"],
                classes=frozenset(MedicationClass(c) for c in m["classes"]),
                diazepam_equivalent_mg_per_day=m.get("diazepam_equivalent_mg_per_day"),
            )
            for m in meds
        ),
        alcohol_use=a("alcohol_use"),
        prior_trials=None
        if trials is None
        else tuple(
            AntidepressantTrial(
                drug=t["drug"],
                dose_adequate=Answer(t["dose_adequate"]),
                weeks=t.get("weeks"),
                adherence_adequate=Answer(t["adherence_adequate"]),
                outcome=TrialOutcome(t["outcome"]),
                current_episode=Answer(t["current_episode"]),
                augmentation=bool(t.get("augmentation")),
            )
            for t in trials
        ),
        baseline_scales=dict(data.get("baseline_scales") or {}),
        moca_score=data.get("moca_score"),
        stop_bang_score=data.get("stop_bang_score"),
        cardiac=CardiacEvaluation(
            systolic_bp=data.get("systolic_bp"),
            diastolic_bp=data.get("diastolic_bp"),
            repeat_systolic_bp=data.get("repeat_systolic_bp"),
            repeat_diastolic_bp=data.get("repeat_diastolic_bp"),
            heart_rate=data.get("heart_rate"),
            ecg_done=a("ecg_done"),
            ecg_date=d("ecg_date"),
            ecg_abnormal=a("ecg_abnormal"),
            cardiac_history_notes=data.get("cardiac_history_notes") or "",
        ),
        labs=Labs(
            liver_function_tested=a("liver_function_tested"),
            renal_function_tested=a("renal_function_tested"),
            tested_on=d("labs_tested_on"),
        ),
        rems_enrolled=a("rems_enrolled"),
        childbearing_potential=childbearing_from_data(data),
    )


def childbearing_from_data(data: Mapping[str, Any]) -> ChildbearingPotential:
    """The recorded childbearing potential of cleaned intake data (an intake saved before it was asked:
    unknown)."""
    reason = data.get("childbearing_potential_reason")
    return ChildbearingPotential(
        answer=Answer(data.get("childbearing_potential") or "unknown"),
        reason=NotChildbearingReason(reason) if reason else None,
        note=data.get("childbearing_potential_note") or "",
    )


def coded_diagnoses(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Indication and diagnoses with their SNOMED CT codings (interop.md §1.2, via conditions.py)."""
    keys = list(
        dict.fromkeys([*([data["indication"]] if data.get("indication") else []), *data.get("diagnoses", [])])
    )
    out = []
    for key in keys:
        info = INDICATIONS[Indication(key)]
        out.append(
            {
                "key": key,
                "label": info.label,
                "is_indication": key == data.get("indication"),
                "codings": [
                    {"code": c.code, "display": c.display, "confirmed": c.confirmed, "note": c.note}
                    for c in info.codings
                ],
            }
        )
    return out


# --- the textarea form of medications and trials: one row per line, fields separated by "|" ----------

MEDICATION_LINE_HELP: Final = (
    "One medication per line: name | class[, class] | diazepam-equivalent mg/day (benzodiazepines only). "
    "Classes: " + ", ".join(CLASS_VALUES) + ". Example: clonazepam | benzodiazepine | 20"
)
TRIAL_LINE_HELP: Final = (
    "One trial per line: drug | adequate dose (yes/no/unknown) | weeks | adherent (yes/no/unknown) | "
    "outcome (" + ", ".join(OUTCOME_VALUES) + ") | current episode (yes/no/unknown) [| augmentation]. "
    "Example: sertraline | yes | 8 | yes | no_response | yes"
)


def parse_medication_lines(text: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (2, 3):
            errors[f"line {n}"] = "write name | class[, class] | diazepam-equivalent mg/day (optional)"
            continue
        classes = [
            c.strip().lower().replace(" ", "_").replace("-", "_") for c in parts[1].split(",") if c.strip()
        ]
        row: dict[str, Any] = {"name": parts[0], "classes": classes}
        if len(parts) == 3 and parts[2]:
            row["diazepam_equivalent_mg_per_day"] = parts[2]
        sub: dict[str, str] = {}
        _medications([row], sub)
        if sub:
            errors[f"line {n}"] = "; ".join(
                f"{key.split('.', 1)[-1] if '.' in key else 'row'}: {reason}" for key, reason in sub.items()
            )
        rows.append(row)
    return rows, errors


def parse_trial_lines(text: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rows: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("|")]
        if len(parts) not in (6, 7):
            errors[f"line {n}"] = (
                "write drug | adequate dose | weeks | adherent | outcome | current episode [| augmentation]"
            )
            continue
        augmentation: Any = False
        if len(parts) == 7:
            if parts[6].lower() not in ("augmentation", ""):
                errors[f"line {n}"] = "the 7th field may only say 'augmentation'"
                continue
            augmentation = parts[6].lower() == "augmentation"
        row = {
            "drug": parts[0],
            "dose_adequate": parts[1].lower(),
            "weeks": parts[2],
            "adherence_adequate": parts[3].lower(),
            "outcome": parts[4].lower().replace(" ", "_"),
            "current_episode": parts[5].lower(),
            "augmentation": augmentation,
        }
        sub: dict[str, str] = {}
        _trials([row], sub)
        if sub:
            errors[f"line {n}"] = "; ".join(
                f"{key.split('.', 1)[-1] if '.' in key else 'row'}: {reason}" for key, reason in sub.items()
            )
        rows.append(row)
    return rows, errors


def medication_lines(rows: list[dict[str, Any]] | None) -> str:
    if not rows:
        return ""
    out = []
    for m in rows:
        line = f"{m['name']} | {', '.join(m['classes'])}"
        if m.get("diazepam_equivalent_mg_per_day") is not None:
            line += f" | {m['diazepam_equivalent_mg_per_day']:g}"
        out.append(line)
    return "\n".join(out)


def trial_lines(rows: list[dict[str, Any]] | None) -> str:
    if not rows:
        return ""
    out = []
    for t in rows:
        weeks = "" if t.get("weeks") is None else f"{t['weeks']:g}"
        line = (
            f"{t['drug']} | {t['dose_adequate']} | {weeks} | {t['adherence_adequate']} | {t['outcome']} | "
            f"{t['current_episode']}"
        )
        if t.get("augmentation"):
            line += " | augmentation"
        out.append(line)
    return "\n".join(out)
