"""Consent (R4) from informed consent to ketamine or esketamine treatment (interop.md §1.1: no US Core ⚠).

``scope`` = ``treatment`` (R4 consentscope; interop.md §1.1 ⚠ lists it among the R4 scopes). ``category``
is a local code (``codes.CONSENT_CATEGORY_SYSTEM|treatment-informed-consent``): LOINC 59284-0 is ⚠
unconfirmed in interop.md §1.1 and is not emitted. The drug consented to is the ``policyRule``, a local code
(``codes.CONSENT_POLICY_SYSTEM|<drug>``), which also meets R4's ppc-1 (policy or policyRule).
``dateTime`` is the signing date; ``provision`` permits from signing to expiry or withdrawal.

``status``: ``inactive`` once withdrawn or past its expiry date, else ``active``. Expiry is judged on
the day the resource is produced (``timezone.localdate()``, as the pre-dose gate judges it), so a consent
turns inactive without its row changing; ``meta.lastUpdated`` (the entry time) does not move then. The
table has no ``updated_at``, and a withdrawal (no service writes it yet) would not move ``_lastUpdated``
either: add one with the withdrawal service.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from ketaclinic.chairside.models import Consent
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    any_of,
    instant,
    token_matches,
)

CATEGORY_CODE = "treatment-informed-consent"
DRUG_TEXT: dict[str, str] = {
    "ketamine": "Informed consent to ketamine (racemic) treatment",
    "esketamine": "Informed consent to esketamine (Spravato) treatment",
}


def today() -> date:
    """The clinic's today, as the pre-dose gate judges a consent current (chairside.services)."""
    return timezone.localdate()


def is_active(consent: Any, on: date) -> bool:
    if consent.withdrawn_on is not None and consent.withdrawn_on <= on:
        return False
    return consent.expires_on is None or consent.expires_on >= on


def _active_rows(on: date) -> Q:
    return (Q(withdrawn_on__isnull=True) | Q(withdrawn_on__gt=on)) & (
        Q(expires_on__isnull=True) | Q(expires_on__gte=on)
    )


class ConsentSource(Source):
    model = Consent
    updated_field = "recorded_at"
    date_fields = {"date": "signed_on"}
    sort_fields = {"_id": "pk", "_lastUpdated": "recorded_at", "date": "signed_on"}

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return Consent.objects.filter(organization_id=organization_id)

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "status":
            on = today()
            parts = []
            if any(token_matches(t, codes.CONSENT_STATE, "active") for t in tokens):
                parts.append(_active_rows(on))
            if any(token_matches(t, codes.CONSENT_STATE, "inactive") for t in tokens):
                parts.append(~_active_rows(on))
            return qs.filter(any_of(parts))
        if flt.name == "category":
            if any(token_matches(t, codes.CONSENT_CATEGORY_SYSTEM, CATEGORY_CODE) for t in tokens):
                return qs
            return qs.none()
        if flt.name == "scope":
            if any(token_matches(t, codes.CONSENT_SCOPE, "treatment") for t in tokens):
                return qs
            return qs.none()
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        c: Any = obj  # chairside.Consent
        period: dict[str, str] = {"start": c.signed_on.isoformat()}
        ends = [d for d in (c.expires_on, c.withdrawn_on) if d is not None]
        if ends:
            period["end"] = min(ends).isoformat()
        text = DRUG_TEXT.get(c.drug, f"Informed consent to {c.drug} treatment")
        return {
            "resourceType": "Consent",
            "id": str(c.pk),
            "meta": {"lastUpdated": instant(c.recorded_at)},
            "status": "active" if is_active(c, today()) else "inactive",
            "scope": {
                "coding": [{"system": codes.CONSENT_SCOPE, "code": "treatment", "display": "Treatment"}]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": codes.CONSENT_CATEGORY_SYSTEM,
                            "code": CATEGORY_CODE,
                            "display": "Informed consent to treatment",
                        }
                    ],
                    "text": "Informed consent to treatment",
                }
            ],
            "patient": {"reference": f"Patient/{c.patient_id}"},
            "dateTime": c.signed_on.isoformat(),
            "policyRule": {"coding": [{"system": codes.CONSENT_POLICY_SYSTEM, "code": c.drug}], "text": text},
            "provision": {"type": "permit", "period": period},
        }


CONSENT = ResourceType(
    name="Consent",
    sources=(ConsentSource(),),
    params={
        **COMMON_PARAMS,
        "patient": PATIENT_PARAMS["patient"],
        "date": ParamDef(ParamType.DATE, "When the consent was signed (prefixes eq, ge, le, gt, lt)."),
        "status": ParamDef(ParamType.TOKEN, "active, or inactive once withdrawn or expired."),
        "category": ParamDef(ParamType.TOKEN, f"{codes.CONSENT_CATEGORY_SYSTEM}|{CATEGORY_CODE}."),
        "scope": ParamDef(ParamType.TOKEN, "Always treatment."),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation="Informed consent to ketamine or esketamine treatment.",
)
