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
