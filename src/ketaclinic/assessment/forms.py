"""The intake form: plain HTML controls in reading order, so a clinician completes it by keyboard alone.

Yes/no items are selects with "unknown" first (type y / n to answer). Medications and prior trials are
textareas with one row per line, parsed strictly: every bad line is named with its reason.
"""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.assessment.intake_data import (
    CHILDBEARING_NOTE_MAX_CHARS,
    HEPATIC_VALUES,
    HISTORY_ANSWERS,
    INT_FIELDS,
    MEDICATION_LINE_HELP,
    OTHER_ANSWERS,
    SCALE_KEYS,
    SCALE_LABELS,
    TEXT_LIMITS,
    TRIAL_LINE_HELP,
    medication_lines,
    parse_medication_lines,
    parse_trial_lines,
    trial_lines,
)
from ketaclinic.clinical.conditions import INDICATIONS
from ketaclinic.clinical.screening_model import NOT_CHILDBEARING_LABELS

ANSWER_CHOICES = [("unknown", "Unknown / not asked"), ("no", "No"), ("yes", "Yes")]
RECORDED_CHOICES = [("unknown", "Not recorded yet"), ("recorded", "Recorded below (empty = none)")]

LABELS = {
    "aneurysmal_vascular_disease": "Aneurysmal vascular disease (aortic, intracranial, peripheral)",
    "arteriovenous_malformation": "Arteriovenous malformation",
    "intracerebral_haemorrhage": "History of intracerebral haemorrhage",
    "uncontrolled_hypertension": "Uncontrolled hypertension",
    "unstable_cardiovascular_disease": "Poorly controlled cardiovascular disease",
    "cardiovascular_event": "Myocardial infarction or other major cardiovascular event (ever)",
    "cardiovascular_event_date": "Date of the latest cardiovascular event",
    "other_cardiovascular_or_cerebrovascular_disease": "Other (stable) cardiovascular or cerebrovascular disease",
    "stroke_history": "Stroke (other than intracerebral haemorrhage)",
    "hypertensive_encephalopathy_history": "Hypertensive encephalopathy",
    "raised_intracranial_pressure": "Raised intracranial pressure",
    "raised_intraocular_pressure": "Raised intraocular pressure / glaucoma",
    "hepatic_impairment": "Hepatic impairment",
    "psychotic_disorder": "Psychotic disorder (schizophrenia, schizoaffective)",
    "psychotic_features": "Current psychotic features",
    "bipolar_disorder": "Bipolar disorder",
    "active_substance_use": "Active substance use disorder or non-prescribed use",
    "substance_use_disorder_history": "Past substance use disorder (incl. alcohol)",
    "pregnancy": "Pregnant",
    "breastfeeding": "Breastfeeding",
    "ketamine_hypersensitivity": "Hypersensitivity to ketamine or esketamine",
    "cognitive_impairment": "Cognitive impairment (delirium, dementia)",
    "cystitis": "Ulcerative or interstitial cystitis",
    "personality_disorder": "Significant personality disorder",
    "dissociative_disorder": "Dissociative disorder",
    "sleep_apnoea": "Diagnosed sleep apnoea",
    "alcohol_use": "Current alcohol use",
    "rems_enrolled": "Enrolled in the SPRAVATO REMS (esketamine)",
    "ecg_done": "ECG done",
    "ecg_abnormal": "ECG abnormal",
    "liver_function_tested": "Liver function tested",
    "renal_function_tested": "Renal function tested",
    "moca_score": "MoCA score (0–30)",
    "stop_bang_score": "STOP-BANG score (0–8)",
    "systolic_bp": "Systolic BP (mmHg)",
    "diastolic_bp": "Diastolic BP (mmHg)",
    "repeat_systolic_bp": "Repeat systolic BP after rest (mmHg)",
    "repeat_diastolic_bp": "Repeat diastolic BP after rest (mmHg)",
    "childbearing_potential": "Can become pregnant (childbearing potential)",
    "childbearing_potential_reason": "If no: why",
    "childbearing_potential_note": "If other: which reason",
    "heart_rate": "Heart rate (/min)",
}

INT_HELP = {
    "repeat_systolic_bp": (
        "When the first reading is high. At or above 180/110 the screening stops both drugs until a repeat "
        "reading is below it or a prescriber records the decision to go ahead."
    ),
}

PREGNANCY_ITEMS = ("pregnancy", "breastfeeding")
_HISTORY = [name for name in HISTORY_ANSWERS if name not in PREGNANCY_ITEMS]

GROUPS: list[tuple[str, list[str]]] = [
    ("Assessment and diagnoses", ["assessed_on", "indication", "diagnoses"]),
    (
        "Medical history",
        [*_HISTORY[:6], "cardiovascular_event_date", *_HISTORY[6:], "hepatic_impairment"],
    ),
    (
        "Pregnancy",
        [
            "childbearing_potential",
            "childbearing_potential_reason",
            "childbearing_potential_note",
            *PREGNANCY_ITEMS,
        ],
    ),
    ("Substances and medications", ["alcohol_use", "medications_recorded", "medications_text"]),
    ("Prior antidepressant trials", ["trials_recorded", "trials_text"]),
    ("Baseline scales and screens", [*(f"scale_{k}" for k in SCALE_KEYS), "moca_score", "stop_bang_score"]),
    (
        "Cardiac evaluation",
        [
            "systolic_bp",
            "diastolic_bp",
            "repeat_systolic_bp",
            "repeat_diastolic_bp",
            "heart_rate",
            "ecg_done",
            "ecg_date",
            "ecg_abnormal",
            "cardiac_history_notes",
        ],
    ),
    ("Labs", ["liver_function_tested", "renal_function_tested", "labs_tested_on"]),
    ("REMS and notes", ["rems_enrolled", "notes"]),
]

# Error keys from the service -> the form field that shows them.
_DIRECT = {"medications": "medications_text", "prior_trials": "trials_text", "baseline_scales": "scale_phq9"}


def _date_field(label: str, required: bool = False) -> forms.DateField:
    return forms.DateField(
        label=label, required=required, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )


class IntakeForm(forms.Form):
    base_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    assessed_on = _date_field("Assessed on", required=True)
    indication = forms.ChoiceField(
        label="Indication for treatment",
        required=False,
        choices=[("", "— not decided —")] + [(i.value, info.label) for i, info in INDICATIONS.items()],
    )
    diagnoses = forms.MultipleChoiceField(
        label="Diagnoses",
        required=False,
        choices=[
            (i.value, f"{info.label} (SNOMED CT {', '.join(c.code for c in info.codings)})")
            for i, info in INDICATIONS.items()
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    hepatic_impairment = forms.ChoiceField(
        label=LABELS["hepatic_impairment"],
        choices=[(v, v.capitalize()) for v in reversed(HEPATIC_VALUES)],
        required=False,
    )
    cardiovascular_event_date = _date_field(LABELS["cardiovascular_event_date"])
    childbearing_potential = forms.ChoiceField(
        label=LABELS["childbearing_potential"],
        choices=ANSWER_CHOICES,
        required=False,
        help_text="Only a recorded “No” (with the reason) lets the pre-dose gate skip the pregnancy test.",
    )
    childbearing_potential_reason = forms.ChoiceField(
        label=LABELS["childbearing_potential_reason"],
        choices=[("", "—")] + [(r.value, label) for r, label in NOT_CHILDBEARING_LABELS.items()],
        required=False,
    )
    childbearing_potential_note = forms.CharField(
        label=LABELS["childbearing_potential_note"],
        required=False,
        help_text=f"At most {CHILDBEARING_NOTE_MAX_CHARS} characters.",
    )
    medications_recorded = forms.ChoiceField(
        label="Current medications", choices=RECORDED_CHOICES, required=False
    )
    medications_text = forms.CharField(
        label="Medications, one per line",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=MEDICATION_LINE_HELP,
    )
    trials_recorded = forms.ChoiceField(
        label="Prior antidepressant trials", choices=RECORDED_CHOICES, required=False
    )
    trials_text = forms.CharField(
        label="Trials, one per line",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text=TRIAL_LINE_HELP,
    )
    ecg_date = _date_field("ECG date")
    labs_tested_on = _date_field("Labs taken on")
    cardiac_history_notes = forms.CharField(
        label="Cardiac history notes",
        required=False,
        help_text=f"Up to {TEXT_LIMITS['cardiac_history_notes']:,} characters.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    notes = forms.CharField(
        label="Notes",
        required=False,
        help_text=f"Up to {TEXT_LIMITS['notes']:,} characters.",
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in (*HISTORY_ANSWERS, *OTHER_ANSWERS):
            self.fields[name] = forms.ChoiceField(
                label=LABELS.get(name, name), choices=ANSWER_CHOICES, required=False
            )
        for key in SCALE_KEYS:
            self.fields[f"scale_{key}"] = forms.DecimalField(
                label=f"{SCALE_LABELS[key]} total",
                required=False,
                widget=forms.NumberInput(attrs={"step": "any"}),
            )
        for name in INT_FIELDS:
            self.fields[name] = forms.IntegerField(
                label=LABELS[name], required=False, help_text=INT_HELP.get(name, "")
            )
        self.parsed: dict[str, Any] = {}

    def groups(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [(title, [self[name] for name in names]) for title, names in GROUPS]

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("medications_recorded") == "recorded":
            rows, errors = parse_medication_lines(cleaned.get("medications_text") or "")
            if errors:
                self.add_error("medications_text", [f"{k}: {v}" for k, v in errors.items()])
            self.parsed["medications"] = rows
        else:
            if (cleaned.get("medications_text") or "").strip():
                self.add_error("medications_recorded", "choose 'Recorded' to save the medications you listed")
            self.parsed["medications"] = None
        if cleaned.get("trials_recorded") == "recorded":
            rows, errors = parse_trial_lines(cleaned.get("trials_text") or "")
            if errors:
                self.add_error("trials_text", [f"{k}: {v}" for k, v in errors.items()])
            self.parsed["prior_trials"] = rows
        else:
            if (cleaned.get("trials_text") or "").strip():
                self.add_error("trials_recorded", "choose 'Recorded' to save the trials you listed")
            self.parsed["prior_trials"] = None
        return cleaned

    def to_data(self) -> dict[str, Any]:
        c = self.cleaned_data
        data: dict[str, Any] = {
            name: c.get(name) or None
            for name in (
                *HISTORY_ANSWERS,
                *OTHER_ANSWERS,
                "indication",
                "diagnoses",
                "hepatic_impairment",
                "childbearing_potential",
                "childbearing_potential_reason",
            )
        }
        data["childbearing_potential_note"] = c.get("childbearing_potential_note") or ""
        # A number is kept as typed: 0 is a value (MoCA 0, or a heart rate 0 that the intake then refuses
        # with its range), never a blank (issue 14).
        data.update({name: c.get(name) for name in INT_FIELDS})
        for name in ("assessed_on", "cardiovascular_event_date", "ecg_date", "labs_tested_on"):
            data[name] = c[name].isoformat() if c.get(name) else None
        data["cardiac_history_notes"] = c.get("cardiac_history_notes") or ""
        data["notes"] = c.get("notes") or ""
        data["baseline_scales"] = {
            key: float(c[f"scale_{key}"]) for key in SCALE_KEYS if c.get(f"scale_{key}") is not None
        }
        data["medications"] = self.parsed.get("medications")
        data["prior_trials"] = self.parsed.get("prior_trials")
        return data

    def add_service_errors(self, errors: dict[str, str], *, skip_marked: bool = False) -> None:
        for key, reason in errors.items():
            head = key.split("[", 1)[0].split(".", 1)[0]
            if key.startswith("baseline_scales."):
                target = f"scale_{key.split('.', 1)[1]}"
            else:
                target = _DIRECT.get(head, head)
            if skip_marked and (target in self.errors or target not in self.fields):
                continue
            if target not in self.fields:
                self.add_error(None, f"{key}: {reason}")
            else:
                self.add_error(target, f"{key}: {reason}" if target != head else reason)


def initial_from(data: dict[str, Any], version: int | None) -> dict[str, Any]:
    initial = {k: v for k, v in data.items() if k not in ("medications", "prior_trials", "baseline_scales")}
    initial["base_version"] = version
    for key, value in (data.get("baseline_scales") or {}).items():
        initial[f"scale_{key}"] = value
    meds, trials = data.get("medications"), data.get("prior_trials")
    initial["medications_recorded"] = "unknown" if meds is None else "recorded"
    initial["medications_text"] = medication_lines(meds)
    initial["trials_recorded"] = "unknown" if trials is None else "recorded"
    initial["trials_text"] = trial_lines(trials)
    return initial


class OverrideForm(forms.Form):
    drug = forms.CharField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Reason for going ahead despite the contraindication",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
    )
