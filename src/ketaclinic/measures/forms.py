from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.clinical.instruments.model import Instrument


def answers_form(instrument: Instrument, data: Any = None, *, prefix: str | None = None) -> forms.Form:
    """One field per item, bounded by the item's allowed values; labels are the published wording if stored."""
    fields: dict[str, forms.Field] = {}
    for item in instrument.items:
        label = item.text or item.title
        if item.options:
            choices = [(str(o.value), f"{o.value} — {o.label}") for o in item.options]
            fields[f"item_{item.id}"] = forms.TypedChoiceField(
                label=label, choices=choices, coerce=int, widget=forms.RadioSelect, required=False
            )
        else:
            fields[f"item_{item.id}"] = forms.IntegerField(
                label=f"{label} ({item.low}–{item.high})",
                required=False,
                widget=forms.NumberInput(attrs={"min": item.low, "max": item.high, "inputmode": "numeric"}),
            )
    form_class: type[forms.Form] = type("AnswersForm", (forms.Form,), fields)
    return form_class(data, prefix=prefix)


def answers_from(form: forms.Form, instrument: Instrument) -> dict[str, Any]:
    """Raw answers by item id; missing ones are left out so the engine names them."""
    answers: dict[str, Any] = {}
    for item in instrument.items:
        raw = form.data.get(form.add_prefix(f"item_{item.id}"))
        if raw in (None, ""):
            continue
        try:
            answers[item.id] = int(raw)
        except (TypeError, ValueError):
            answers[item.id] = raw
    return answers


class LinkForm(forms.Form):
    instruments = forms.MultipleChoiceField(choices=(), widget=forms.CheckboxSelectMultiple)

    def __init__(self, *args: Any, allowed: tuple[str, ...], names: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instruments"].choices = [(c, names[c]) for c in allowed]  # type: ignore[attr-defined]


class AcknowledgeForm(forms.Form):
    note = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        min_length=5,
        help_text="What you did: called the patient, safety plan reviewed, …",
    )
