"""Forms for plans and the protocol admin (keyboard-friendly plain controls)."""

from __future__ import annotations

from typing import Any

from django import forms

PLAN_FIELDS = (
    "protocol",
    "start",
    "preferred_time",
    "basis",
    "prescribed_amount",
    "concentration_mg_ml",
    "container_volume_ml",
    "dose_override_reason",
    "concurrent_course_reason",
)


class PlanForm(forms.Form):
    protocol = forms.ChoiceField(label="Protocol", choices=())
    start = forms.DateField(label="First session on or after", widget=forms.DateInput(attrs={"type": "date"}))
    preferred_time = forms.TimeField(
        label="Preferred time (site time; empty = opening time)",
        required=False,
        widget=forms.TimeInput(attrs={"type": "time"}),
    )
    basis = forms.ChoiceField(
        label="Weight basis",
        choices=[
            ("actual", "Actual weight"),
            ("ideal", "Ideal body weight"),
            ("adjusted", "Adjusted body weight"),
        ],
        help_text="The clinic's documented choice (clinical.md §1.2); at BMI ≥30 the consensus suggestion is ideal weight.",
    )
    prescribed_amount = forms.CharField(
        label="Dose (in the protocol's unit; empty = protocol default)", required=False
    )
    concentration_mg_ml = forms.ChoiceField(
        label="Vial strength",
        required=False,
        choices=[("", "— not planned —"), ("10", "10 mg/mL"), ("50", "50 mg/mL"), ("100", "100 mg/mL")],
    )
    container_volume_ml = forms.CharField(label="Final bag/syringe volume, mL (IV)", required=False)
    dose_override_reason = forms.CharField(
        label="Reason for a dose outside the usual range (only when asked)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    concurrent_course_reason = forms.CharField(
        label="Reason for a second course at the same time (only when the patient is on another course)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args: Any, protocols: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["protocol"].choices = [("", "— choose —"), *protocols]  # type: ignore[attr-defined]

    def raw(self) -> dict[str, Any]:
        return {name: self.data.get(name, "") for name in PLAN_FIELDS}


class CopyForm(forms.Form):
    new_id = forms.CharField(
        label="New protocol ID", max_length=63, help_text="lower-case letters, digits, hyphens"
    )
    name = forms.CharField(label="Name", max_length=300, required=False)


class EditForm(forms.Form):
    base_version = forms.IntegerField(widget=forms.HiddenInput)
    change_note = forms.CharField(label="What changed and why", max_length=300, required=False)
    protocol = forms.CharField(
        label="Protocol (JSON)",
        widget=forms.Textarea(attrs={"rows": 30, "spellcheck": "false", "class": "code"}),
    )


# --- the structured protocol editor ----------------------------------------------------------------------
# Each input is named by its path in the protocol's JSON (the paths the validator names in its errors), so
# an error lands beside its field. Everything not offered here (dose limits, scales, monitoring details)
# is kept as it is and can be changed on the JSON page (advanced).

_INT, _NUMBER, _TEXT, _CHECK = "int", "number", "text", "check"
# (key within a phase, label, kind, required, help)
PHASE_FIELDS: tuple[tuple[str, str, str, bool, str], ...] = (
    ("name", "Phase name", _TEXT, True, ""),
    ("sessions", "Sessions", _INT, False, "empty: open-ended"),
    ("cadence.per_week", "Times a week", _INT, False, "fill this or the next"),
    ("cadence.every_days", "Every … days", _INT, False, ""),
    (
        "min_spacing_days",
        "Minimum days between sessions",
        _INT,
        True,
        "moving a session closer needs a reason",
    ),
    ("dose.amount", "Dose", _NUMBER, True, ""),
    ("dose.duration_min", "Over (minutes)", _INT, False, "infusions"),
    ("optional", "Optional phase", _CHECK, False, ""),
    ("note", "Note", _TEXT, False, ""),
)
TOP_FIELDS: tuple[tuple[str, str, str, bool, str], ...] = (
    ("name", "Protocol name", _TEXT, True, ""),
    ("monitoring.observation_min", "Observation after the dose (minutes)", _INT, True, ""),
    ("notes", "Notes", _TEXT, False, ""),
)


# How each dose kind reads (clinical/protocols.DoseKind).
DOSE_UNITS = {"mg_per_kg": "mg/kg", "mg_per_kg_per_h": "mg/kg/h", "fixed_mg": "mg"}


def _get(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data.get(part) if isinstance(data, dict) else None
    return data


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[last] = value


def _parse(raw: str, kind: str, required: bool) -> tuple[Any, str | None]:
    text = raw.strip()
    if kind == _TEXT:
        return (text, "is required") if required and not text else (text, None)
    if not text:
        return None, "is required" if required else None
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        return None, f"{text!r} is not a number"
    if kind == _INT:
        if not value.is_integer():
            return None, f"{text!r} is not a whole number"
        return int(value), None
    return value, None


def structured_fields(
    data: dict[str, Any], posted: Any = None, errors: dict[str, str] | None = None
) -> dict[str, Any]:
    """The editor's inputs: {"top": [field…], "phases": [{"index", "kind", "dose", "fields": [field…]}…]}, each
    field {name, label, kind, value, help, error}; values from ``posted`` when re-showing a submitted form."""
    errors = errors or {}

    def field(path: str, label: str, kind: str, help_text: str, current: Any) -> dict[str, Any]:
        if posted is not None:
            value: Any = posted.get(path) == "on" if kind == _CHECK else posted.get(path, "")
        else:
            value = bool(current) if kind == _CHECK else ("" if current is None else current)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return {
            "name": path,
            "label": label,
            "kind": kind,
            "value": value,
            "help": help_text,
            "error": errors.get(path),
            "wide": path.endswith((".name", ".note")) or path == "notes",
        }

    top = []
    for path, label, kind, _req, help_text in TOP_FIELDS:
        if path == "monitoring.observation_min" and not _get(data, "monitoring.observation_confirmed"):
            help_text = "default, unconfirmed in the clinic's reference"
        top.append(field(path, label, kind, help_text, _get(data, path)))
    phases = []
    for i, phase in enumerate(data.get("phases", [])):
        fields = []
        for key, label, kind, _req, help_text in PHASE_FIELDS:
            if key == "dose.duration_min" and phase.get("dose", {}).get("duration_min") is None:
                continue  # not an infusion: no duration to edit
            if key == "dose.amount":
                unit = DOSE_UNITS.get(phase.get("dose", {}).get("kind", ""), "")
                label = f"Dose ({unit})" if unit else label
            fields.append(field(f"phases[{i}].{key}", label, kind, help_text, _get(phase, key)))
        phases.append(
            {"index": i, "kind": phase.get("kind", ""), "dose": phase.get("dose", {}), "fields": fields}
        )
    return {"top": top, "phases": phases}


def apply_structured(data: dict[str, Any], posted: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """A copy of the protocol ``data`` with the editor's values applied, and the inputs that could not be
    read (by path). Whether the result is a valid protocol is the validator's to say."""
    import copy

    out = copy.deepcopy(data)
    errors: dict[str, str] = {}
    for path, _label, kind, required, _help in TOP_FIELDS:
        if kind != _CHECK and path not in posted:
            continue
        value, error = _parse(posted.get(path, ""), kind, required)
        if error:
            errors[path] = error
        else:
            _set(out, path, value)
    for i, phase in enumerate(out.get("phases", [])):
        for key, _label, kind, required, _help in PHASE_FIELDS:
            path = f"phases[{i}].{key}"
            if kind == _CHECK:
                if f"phases[{i}].name" in posted:  # the phase was on the form: an unticked box is False
                    _set(phase, key, posted.get(path) == "on")
                continue
            if path not in posted:
                continue
            value, error = _parse(posted.get(path, ""), kind, required)
            if error:
                errors[path] = error
            else:
                _set(phase, key, value)
    return out, errors
