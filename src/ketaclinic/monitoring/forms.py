"""Forms of the monitoring pages (input shape only; the services decide)."""

from __future__ import annotations

from typing import Any

from django import forms

from ketaclinic.accounts.models import Chair


class AttachForm(forms.Form):
    message = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    mrn = forms.CharField(label="Patient MRN", required=False)
    note = forms.CharField(label="Note", required=False)


class DeviceForm(forms.Form):
    identifier = forms.CharField(
        label="Monitor identifier",
        required=False,
        help_text="EUI-64 from the monitor's HL7 messages (MSH-3/OBX-18), or the PV1-3 location it sends.",
    )
    # Lengths are checked by the service, so that every bad field is named at once.
    label = forms.CharField(label="Label", required=False)
    chair = forms.ModelChoiceField(label="Chair", queryset=Chair.objects.none(), required=False)
    active = forms.BooleanField(label="In use", required=False, initial=True)
    allowed_sources = forms.CharField(
        label="Allowed addresses",
        required=False,
        help_text="The monitor's IP address, or its network such as 10.0.4.0/24; several separated by commas. "
        "Readings from any other address wait under Unknown senders. Empty: this computer only.",
    )

    def __init__(self, *args: Any, chairs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chair_field = self.fields["chair"]
        assert isinstance(chair_field, forms.ModelChoiceField)
        chair_field.queryset = chairs
        chair_field.empty_label = "(not on a chair)"


class ReviewForm(forms.Form):
    """An administrator's decision on held messages (one monitor, one address)."""

    decision = forms.ChoiceField(choices=[("accept", "Accept"), ("discard", "Discard")])
    identifier = forms.CharField(max_length=200)
    address = forms.CharField(max_length=45, required=False)
    label = forms.CharField(label="Label", required=False)
    chair = forms.ModelChoiceField(label="Chair", queryset=Chair.objects.none(), required=False)

    def __init__(self, *args: Any, chairs: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        chair_field = self.fields["chair"]
        assert isinstance(chair_field, forms.ModelChoiceField)
        chair_field.queryset = chairs
