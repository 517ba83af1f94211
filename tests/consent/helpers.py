"""Recording a consent in a test the way the clinic does: on the current form for the drug and route, with a
drawn signature and a witness (consent.services.record_consent), or its JSON body for the API."""

from __future__ import annotations

import base64
from datetime import date, datetime, time
from typing import Any

from django.utils import timezone

from ketaclinic.consent import services
from ketaclinic.consent.sample import drawn_signature

ROUTE_OF = {"esketamine": "intranasal"}


def consent_on_file(
    user: Any,
    patient: Any,
    drug: str,
    route: str | None = None,
    signed_on: date | None = None,
    expires_on: date | None = None,
) -> Any:
    """``patient`` signed the current form for ``drug`` by ``route`` on the tablet on ``signed_on`` (default
    today), ``user`` witnessing. A past date replays that day (a tablet signature is signed the day it is
    drawn)."""
    route = route or ROUTE_OF.get(drug, "iv")
    form = services.current_template(organization_id=patient.organization_id, drug=drug, route=route)
    evidence = services.DrawnSignature(
        signer_name=patient.display_name, png=drawn_signature(patient.display_name)
    )
    day = signed_on or timezone.localdate(timezone.now(), patient.site.zone)
    noon = timezone.make_aware(datetime.combine(day, time(12, 0)), patient.site.zone)
    now = None if signed_on is None else noon
    return services.record_consent(
        user=user,
        patient=patient,
        template=form,
        signed_on=day,
        evidence=evidence,
        witness=user,
        expires_on=expires_on,
        now=now,
    )


def signature_b64(name: str = "Testa Examplesson") -> str:
    return base64.b64encode(drawn_signature(name)).decode()


def consent_body(
    drug: str, signed_on: str, route: str | None = None, name: str = "Testa Examplesson"
) -> dict[str, Any]:
    """The API body for a consent signed on a tablet on ``signed_on`` (the API's caller witnessed it)."""
    return {
        "drug": drug,
        "route": route or ROUTE_OF.get(drug, "iv"),
        "signed_on": signed_on,
        "signature": {"signer_name": name, "png_base64": signature_b64(name)},
    }


__all__ = ["consent_body", "consent_on_file", "signature_b64"]
