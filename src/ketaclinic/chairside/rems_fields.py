"""The REMS Patient Monitoring Form's fields for the app: labels, sections, kinds, JSON codec and input parsing.

The fields themselves are the pure ``ketaclinic.clinical.rems.PatientMonitoringForm`` (clinical.md §2.4); this
module names them for staff (page and PDF), stores them as flat JSON (dotted names) and parses what staff type.
"""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from datetime import date, timedelta
from typing import Any

from django.utils import timezone

from ketaclinic.clinical import rems
from ketaclinic.clinical.vitals import DEFAULT_PLAUSIBILITY, VitalField

# --- the form's fields: labels, kinds and sections (clinical.md §2.4) ---------------------------------

SECTIONS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    (
        "Patient",
        (
            ("patient.first_name", "First name"),
            ("patient.middle_initial", "Middle initial"),
            ("patient.last_name", "Last name"),
            ("patient.birthdate", "Birthdate"),
            ("patient.sex", "Sex"),
            ("patient.first_treatment", "First treatment?"),
            ("patient.enrolled", "Enrolled in the REMS?"),
        ),
    ),
    (
        "Concomitant medications",
        (
            ("concomitant_medications.benzodiazepines", "Benzodiazepines"),
            (
                "concomitant_medications.non_benzodiazepine_sedative_hypnotics",
                "Non-benzodiazepine sedative hypnotics",
            ),
            ("concomitant_medications.psychostimulants", "Psychostimulants"),
            ("concomitant_medications.maois", "MAOIs"),
            (
                "concomitant_medications.other_sedation_dissociation_respiratory_or_bp_meds",
                "Other medications causing sedation, dissociation, respiratory depression or BP change (incl. opioids)",
            ),
        ),
    ),
    (
        "Monitoring healthcare provider",
        (
            ("monitoring_hcp.first_name", "First name"),
            ("monitoring_hcp.last_name", "Last name"),
            ("monitoring_hcp.phone", "Telephone"),
            ("monitoring_hcp.email", "Email"),
        ),
    ),
    (
        "Treatment setting",
        (
            ("setting.name", "Setting name"),
            ("setting.address1", "Address line 1"),
            ("setting.address2", "Address line 2"),
            ("setting.city", "City"),
            ("setting.state", "State"),
            ("setting.zip_code", "ZIP"),
        ),
    ),
    (
        "Session",
        (
            ("treatment_date", "Treatment date"),
            ("dose", "Dose"),
            ("dose_other_mg", "Other dose (mg)"),
            ("lot_number", "Lot number"),
            ("total_monitoring_minutes", "Total minutes from 1st device to end of monitoring (at least 120)"),
            ("minutes_until_ready", "Minutes from start until the patient would have been ready to leave"),
        ),
    ),
    (
        "Vital signs",
        (
            ("vitals_acceptable_before_administration", "Vital signs acceptable before administration?"),
            ("vitals_acceptable_before_completion", "Vital signs acceptable before session completion?"),
            ("bp_before_administration", "BP before administration (mmHg)"),
            ("bp_40_min", "BP about 40 min after administration (mmHg)"),
            ("bp_before_completion", "BP before session completion (mmHg)"),
        ),
    ),
    (
        "Adverse events",
        (
            ("sedation", "Did the patient experience sedation?"),
            ("dissociation", "Did the patient experience dissociation?"),
            ("respiratory_depression", "Did the patient experience respiratory depression?"),
            ("serious_adverse_event", "Was there a serious adverse event?"),
        ),
    ),
)
LABELS: dict[str, str] = {name: label for _, items in SECTIONS for name, label in items}
SECTION_OF: dict[str, str] = {name: title for title, items in SECTIONS for name, _ in items}
SEX_CHOICES = ("Female", "Male", "Other")
DOSE_CHOICES = (("56", "56 mg"), ("84", "84 mg"), ("other", "Other"))
_MAX_TEXT = 120


def _kind_of(type_text: str) -> str:
    return {
        "str | None": "text",
        "bool | None": "bool",
        "int | None": "int",
        "date | None": "date",
        "BloodPressure | None": "bp",
        "RemsDose | None": "dose",
    }[type_text]


def _walk(cls: type, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for f in fields(cls):
        default = f.default_factory() if callable(f.default_factory) else None
        if is_dataclass(default):
            out.update(_walk(type(default), f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = _kind_of(str(f.type))
    return out


KINDS: dict[str, str] = _walk(rems.PatientMonitoringForm)
KINDS["patient.sex"] = "sex"
assert set(KINDS) == set(LABELS), "every form field has a label"


def label(name: str) -> str:
    return f"{SECTION_OF.get(name, '')}: {LABELS.get(name, name)}".lstrip(": ")


# --- JSON codec ----------------------------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, rems.BloodPressure):
        return {"sbp_mmhg": value.sbp_mmhg, "dbp_mmhg": value.dbp_mmhg}
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, rems.RemsDose):
        return value.value
    return value


def flatten(form: rems.PatientMonitoringForm) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in KINDS:
        obj: Any = form
        for part in name.split("."):
            obj = getattr(obj, part)
        out[name] = _to_json(obj)
    return out


def _from_json(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "bp":
        return rems.BloodPressure(sbp_mmhg=int(value["sbp_mmhg"]), dbp_mmhg=int(value["dbp_mmhg"]))
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "dose":
        return rems.RemsDose(value)
    return value


def unflatten(flat: dict[str, Any]) -> rems.PatientMonitoringForm:
    groups: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, kind in KINDS.items():
        value = _from_json(kind, flat.get(name))
        if "." in name:
            group, leaf = name.split(".", 1)
            groups.setdefault(group, {})[leaf] = value
        else:
            top[name] = value
    return rems.PatientMonitoringForm(
        patient=rems.RemsPatient(**groups["patient"]),
        concomitant_medications=rems.ConcomitantMedications(**groups["concomitant_medications"]),
        monitoring_hcp=rems.MonitoringHcp(**groups["monitoring_hcp"]),
        setting=rems.TreatmentSetting(**groups["setting"]),
        **top,
    )


def display(name: str, value: Any) -> str:
    """A stored JSON value as staff read it ('Yes', '128/82', '56 mg'); '' when unanswered."""
    if value is None or value == "":
        return ""
    kind = KINDS[name]
    if kind == "bool":
        return "Yes" if value else "No"
    if kind == "bp":
        return f"{value['sbp_mmhg']}/{value['dbp_mmhg']}"
    if kind == "dose":
        return str(dict(DOSE_CHOICES).get(value, value))
    return str(value)


_BP_RE = re.compile(r"^\s*(\d{2,3})\s*/\s*(\d{2,3})\s*$")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def parse_value(name: str, raw: Any) -> Any:
    """One submitted value → its JSON value; raises ValueError with a reason a nurse reads."""
    kind = KINDS[name]
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _YES | _NO:
            return text in _YES
        raise ValueError("answer yes or no")
    if kind == "int":
        text = str(raw).strip()
        if isinstance(raw, bool) or not text.isdigit() or len(text) > 4:
            raise ValueError(f"'{text}' is not a number of minutes")
        return int(text)
    if kind == "date":
        if isinstance(raw, date):
            return raw.isoformat()
        try:
            parsed = date.fromisoformat(str(raw).strip())
        except ValueError:
            raise ValueError(f"'{raw}' is not a date (YYYY-MM-DD)") from None
        if parsed > timezone.localdate() + timedelta(days=1):
            raise ValueError(f"{parsed} is in the future")
        return parsed.isoformat()
    if kind == "bp":
        if isinstance(raw, dict):
            raw = f"{raw.get('sbp_mmhg')}/{raw.get('dbp_mmhg')}"
        match = _BP_RE.match(str(raw))
        if not match:
            raise ValueError(f"'{raw}' is not a blood pressure: write systolic/diastolic, e.g. 128/82")
        sbp, dbp = int(match.group(1)), int(match.group(2))
        # Data-entry plausibility, the same ranges as chairside readings (vitals.py, configurable default).
        s, d = DEFAULT_PLAUSIBILITY[VitalField.SBP], DEFAULT_PLAUSIBILITY[VitalField.DBP]
        if not (s.low <= sbp <= s.high and d.low <= dbp <= d.high):
            raise ValueError(f"{sbp}/{dbp} is outside {s.low:g}–{s.high:g} / {d.low:g}–{d.high:g} mmHg")
        return {"sbp_mmhg": sbp, "dbp_mmhg": dbp}
    if kind == "dose":
        text = str(raw).strip().lower()
        if text not in dict(DOSE_CHOICES):
            raise ValueError("choose 56 mg, 84 mg or other")
        return text
    text = str(raw).strip()
    if kind == "sex":
        match_sex = next((c for c in SEX_CHOICES if c.lower() == text.lower()), None)
        if match_sex is None:
            raise ValueError(f"choose {', '.join(SEX_CHOICES)}")
        return match_sex
    if name == "patient.middle_initial" and (len(text) != 1 or not text.isalpha()):
        raise ValueError("one letter")
    if len(text) > _MAX_TEXT:
        raise ValueError(f"at most {_MAX_TEXT} characters")
    return text
