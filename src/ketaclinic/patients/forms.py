"""HTML forms for the registry. They only shape input; validation lives in ``patients.services``."""

from __future__ import annotations

from django import forms

from ketaclinic.accounts.models import Site, User
from ketaclinic.core.fields import BoundedCharField
from ketaclinic.patients.models import Sex


class PatientSearchForm(forms.Form):
    name = BoundedCharField(
        required=False,
        max_length=100,
        label="Name",
        widget=forms.TextInput(attrs={"autofocus": True, "autocomplete": "off"}),
    )
    mrn = BoundedCharField(
        required=False, max_length=40, label="MRN", widget=forms.TextInput(attrs={"autocomplete": "off"})
    )
    date_of_birth = forms.DateField(
        required=False, label="Date of birth", widget=forms.DateInput(attrs={"type": "date"})
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class PatientForm(forms.Form):
    given_name = BoundedCharField(max_length=100, label="Given name")
    family_name = BoundedCharField(max_length=100, label="Family name")
    date_of_birth = forms.CharField(label="Date of birth", widget=forms.DateInput(attrs={"type": "date"}))
    sex = forms.ChoiceField(choices=[("", "—")] + list(Sex.choices))
    mrn = BoundedCharField(
        max_length=40, required=False, label="MRN", help_text="Leave empty to assign the next number."
    )
    site = forms.ModelChoiceField(queryset=Site.objects.none(), required=False)
    prescriber = forms.ModelChoiceField(
        queryset=User.objects.none(), required=False, help_text="Receives this patient's safety alerts."
    )
    phone = BoundedCharField(max_length=40, required=False)
    email = BoundedCharField(max_length=254, required=False)
    address = BoundedCharField(max_length=300, required=False)
    weight_kg = forms.CharField(
        required=False,
        label="Weight (kg)",
        help_text="20–350 kg",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    height_cm = forms.CharField(
        required=False,
        label="Height (cm)",
        help_text="100–250 cm",
        widget=forms.TextInput(attrs={"inputmode": "decimal"}),
    )
    emergency_contact_name = BoundedCharField(max_length=200, required=False, label="Emergency contact")
    emergency_contact_relation = BoundedCharField(max_length=60, required=False, label="Relationship")
    emergency_contact_phone = BoundedCharField(max_length=40, required=False, label="Emergency contact phone")
    escort_name = BoundedCharField(max_length=200, required=False, label="Escort / ride home")
    escort_phone = BoundedCharField(max_length=40, required=False, label="Escort phone")
    version = forms.IntegerField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: object, sites: object, prescribers: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["site"].queryset = sites  # type: ignore[attr-defined]
        self.fields["prescriber"].queryset = prescribers  # type: ignore[attr-defined]
        self.fields["prescriber"].label_from_instance = lambda u: u.display_name  # type: ignore[attr-defined]

    def service_data(self) -> dict[str, object]:
        data = {k: v for k, v in self.cleaned_data.items() if k != "version"}
        if data.get("site") is None:
            data.pop("site", None)
        return data
