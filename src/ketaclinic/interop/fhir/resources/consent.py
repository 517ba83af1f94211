"""Consent (R4) from informed consent to ketamine or esketamine treatment (interop.md §1.1: no US Core ⚠).

``scope`` = ``treatment`` (R4 consentscope; interop.md §1.1 ⚠ lists it among the R4 scopes). ``category``
is a local code (``codes.CONSENT_CATEGORY_SYSTEM|treatment-informed-consent``): LOINC 59284-0 is ⚠
unconfirmed in interop.md §1.1 and is not emitted. The drug consented to is the ``policyRule``, a local code
(``codes.CONSENT_POLICY_SYSTEM|<drug>``), which also meets R4's ppc-1 (policy or policyRule); its text names
the route and the form version.

The form version the patient signed is ``policy[0].uri``: the page of that version in the clinic's app
(``/consent-forms/<id>/``, readable by signed-in staff; every version stays readable). What was signed is the
``sourceAttachment``: for a paper form, the scan (its type, size and the access-checked URL that serves it to
signed-in staff); for a tablet signature, the consent record page (the form's words, the typed name and the
drawn signature). The URLs start with ``KETACLINIC_PUBLIC_URL``. A consent recorded before signed forms were
kept has neither.

``dateTime`` is the signing date; ``provision`` permits from signing to expiry or withdrawal.
``status``: ``inactive`` once withdrawn or past its expiry date, else ``active``. Expiry is judged on
the day the resource is produced (``timezone.localdate()``, as the pre-dose gate judges it), so a consent
turns inactive without its row changing. ``meta.lastUpdated`` is the row's ``updated_at``: signing, and a
withdrawal (``consent.services.withdraw_consent``), move it.
"""

from __future__ import annotations

from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Case, F, Q, QuerySet, When
from django.urls import reverse
from django.utils import timezone

from ketaclinic.clinical.consent import form_label
from ketaclinic.consent.models import Consent, ConsentMethod
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    DateSpan,
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


def today(consent: Consent) -> date:
    """The day at the patient's site, as the pre-dose gate judges a consent current (chairside.services)."""
    return consent.patient.site.today()


def _active_today(qs: QuerySet[Any]) -> Q:
    """Consents current today, each judged on the day at its patient's site (sites may sit in other zones)."""
    zones = qs.order_by().values_list("patient__site__time_zone", flat=True).distinct()
    now = timezone.now()
    return any_of(
        [
            Q(patient__site__time_zone=zone) & _active_rows(timezone.localdate(now, ZoneInfo(zone)))
            for zone in zones
        ]
    )


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
    updated_field = "updated_at"
    # ``period`` is provision.period: signing to the earlier of expiry and withdrawal (open: no end)
    date_fields = {"date": "signed_on", "period": DateSpan("signed_on", "provision_end", day=True)}
    sort_fields = {"_id": "pk", "_lastUpdated": "updated_at", "date": "signed_on"}
    created_field = "recorded_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return (
            Consent.objects.filter(organization_id=organization_id)
            .select_related("template")
            .annotate(
                provision_end=Case(
                    When(withdrawn_on__isnull=True, then=F("expires_on")),
                    When(expires_on__isnull=True, then=F("withdrawn_on")),
                    When(withdrawn_on__lt=F("expires_on"), then=F("withdrawn_on")),
                    default=F("expires_on"),
                )
            )
        )

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "status":
            current = _active_today(qs)
            parts = []
            if any(token_matches(t, codes.CONSENT_STATE, "active") for t in tokens):
                parts.append(current)
            if any(token_matches(t, codes.CONSENT_STATE, "inactive") for t in tokens):
                parts.append(~current)
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
        c: Consent = obj
        period: dict[str, str] = {"start": c.signed_on.isoformat()}
        ends = [d for d in (c.expires_on, c.withdrawn_on) if d is not None]
        if ends:
            period["end"] = min(ends).isoformat()
        text = DRUG_TEXT.get(c.drug, f"Informed consent to {c.drug} treatment")
        resource: dict[str, Any] = {
            "resourceType": "Consent",
            "id": str(c.pk),
            "meta": {"lastUpdated": instant(c.updated_at)},
            "status": "active" if is_active(c, today(c)) else "inactive",
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
            "performer": [{"reference": f"Patient/{c.patient_id}"}],
            "policyRule": {"coding": [{"system": codes.CONSENT_POLICY_SYSTEM, "code": c.drug}], "text": text},
            "provision": {"type": "permit", "period": period},
        }
        template = c.template
        if template is None or c.method == ConsentMethod.UNSIGNED:
            return resource
        public = settings.KETACLINIC_PUBLIC_URL
        resource["policyRule"]["text"] = (
            f"{text}: {form_label(c.drug, c.route)}, form {template.title!r} version {template.version}"
        )
        resource["policy"] = [{"uri": public + reverse("consent:form", args=[template.pk])}]
        if c.method == ConsentMethod.SCAN:
            resource["sourceAttachment"] = {
                "contentType": c.document_type,
                "url": public + reverse("consent:document", args=[c.patient_id, c.pk]),
                "size": c.document_bytes,
                "title": f"Signed consent form ({template.title}, version {template.version})",
                "creation": c.signed_on.isoformat(),
            }
        else:
            resource["sourceAttachment"] = {
                "contentType": "text/html",
                "url": public + reverse("consent:consent", args=[c.patient_id, c.pk]),
                "title": (
                    f"Consent signed on the clinic tablet: {template.title}, version {template.version}, "
                    "typed name and drawn signature"
                ),
                "creation": c.signed_on.isoformat(),
            }
        return resource


CONSENT = ResourceType(
    name="Consent",
    sources=(ConsentSource(),),
    params={
        **COMMON_PARAMS,
        "patient": ParamDef(ParamType.REFERENCE, "The patient: Patient/<id>.", "Patient", "patient"),
        "date": ParamDef(
            ParamType.DATE, "When the consent was signed (prefixes eq, ne, ge, le, gt, lt, sa, eb, ap)."
        ),
        "period": ParamDef(
            ParamType.DATE,
            "provision.period: from signing to expiry or withdrawal (open if neither); R4 period matching.",
        ),
        "status": ParamDef(ParamType.TOKEN, "active, or inactive once withdrawn or expired."),
        "category": ParamDef(ParamType.TOKEN, f"{codes.CONSENT_CATEGORY_SYSTEM}|{CATEGORY_CODE}."),
        "scope": ParamDef(ParamType.TOKEN, "Always treatment."),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation="Informed consent to ketamine or esketamine treatment.",
)
