"""Consent API: record a patient's signed consent, list and withdraw it, read the clinic's consent forms.

Evidence travels as base64 in the JSON body (an integration posts one JSON document; no multipart):

* ``signature``: the name the patient typed and the PNG of the signature they drew (at most 512 KB), signed
  today on the **current** version of the form, witnessed by you unless ``witness_id`` names a colleague;
* ``scan``: a PDF, PNG or JPEG of the signed paper form (at most 10 MB before base64), of the version that was
  printed (``template_id``), signed on ``signed_on``, with the ``witness_id`` named on the paper.

The form is ``template_id`` (see ``GET /api/consent-forms``) or ``drug`` and ``route`` for the current version
(esketamine's only route, the nasal spray, may be left out). The expiry is the clinic's validity period from
signing. Refusals answer 422 naming each field and its limit; endpoints never catch.
"""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from ninja import Router, Schema, Status
from pydantic import Field

from ketaclinic.accounts.models import User
from ketaclinic.consent import documents, services
from ketaclinic.consent.models import Consent, ConsentTemplate
from ketaclinic.core.access import ADMIN, CLINICIANS, NURSE, PRESCRIBER, signed_in_user
from ketaclinic.core.api import api_roles
from ketaclinic.core.fields import Bounded, Reason
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient

router = Router(tags=["consent"])  # mounted under /patients
forms_router = Router(tags=["consent"])  # mounted under /consent-forms


# --- shapes ---------------------------------------------------------------------------------------------


#: A 10 MB scan in base64 (4 characters per 3 bytes), with room for a data: URL prefix.
BASE64_MAX = 14_000_100


class DrawnSignatureIn(Schema):
    signer_name: Annotated[str, Bounded(200)] = Field(description="The patient's full name, as they typed it")
    png_base64: Annotated[str, Bounded(BASE64_MAX)] = Field(
        description="The signature they drew: a PNG, at most 512 KB, base64 (a data: URL prefix is accepted)"
    )


class ScanIn(Schema):
    filename: Annotated[str, Bounded(200)]
    content_type: Literal["application/pdf", "image/png", "image/jpeg"]
    data_base64: Annotated[str, Bounded(BASE64_MAX)] = Field(
        description="The scan of the signed form, at most 10 MB before base64"
    )


class ConsentIn(Schema):
    template_id: int | None = Field(
        default=None, description="The form version signed (GET /api/consent-forms); or give drug and route"
    )
    drug: Literal["ketamine", "esketamine"] | None = None
    route: Literal["iv", "im", "sublingual", "intranasal"] | None = Field(
        default=None, description="Each route has its own consent (an IV consent does not cover IM)"
    )
    signed_on: date = Field(description="Not in the future; a signature drawn on a tablet is signed today")
    expires_on: date | None = Field(
        default=None, description="Default and latest: the clinic's validity period after signing"
    )
    signature: DrawnSignatureIn | None = Field(default=None, description="Signed on a tablet or phone")
    scan: ScanIn | None = Field(default=None, description="A scan of the signed paper form")
    witness_id: int | None = Field(
        default=None,
        description="The member of staff who saw the patient sign (default: you, for a signature)",
    )


class WithdrawIn(Schema):
    withdrawn_on: date
    reason: Reason = Field(description="What the patient said, or why (at least 10 characters)")


class FormRef(Schema):
    id: int
    version: int
    title: str
    fingerprint: str


class ConsentOut(Schema):
    id: int
    patient_id: UUID
    drug: str
    route: str
    form: FormRef | None
    method: str
    signed_on: date
    expires_on: date | None
    validity_days: int | None
    signer_name: str
    witness_id: int | None
    recorded_by: int
    withdrawn_on: date | None
    withdrawal_reason: str
    status: str = Field(description="current, expired, withdrawn, superseded or not signed")
    document_url: str | None = Field(description="The signed document, for signed-in staff (not an API URL)")


class SectionOut(Schema):
    key: str
    heading: str
    text: str
    source: str


class FormOut(Schema):
    id: int
    drug: str
    route: str
    version: int
    title: str
    fingerprint: str
    built_in: bool
    sign_again: bool
    change_note: str
    published_at: str
    sections: list[SectionOut]


# --- helpers --------------------------------------------------------------------------------------------


def _patient(request: HttpRequest, patient_id: UUID, purpose: str) -> Patient:
    return patients.get_related_patient(
        user=signed_in_user(request), patient_id=patient_id, request=request, purpose=purpose
    )


def _out(consent: Consent) -> dict[str, Any]:
    template = consent.template
    return {
        "id": consent.pk,
        "patient_id": consent.patient_id,
        "drug": consent.drug,
        "route": consent.route,
        "form": (
            {
                "id": template.pk,
                "version": template.version,
                "title": template.title,
                "fingerprint": consent.template_fingerprint,
            }
            if template
            else None
        ),
        "method": consent.method,
        "signed_on": consent.signed_on,
        "expires_on": consent.expires_on,
        "validity_days": consent.validity_days,
        "signer_name": consent.signer_name,
        "witness_id": consent.witness_id,
        "recorded_by": consent.recorded_by_id,
        "withdrawn_on": consent.withdrawn_on,
        "withdrawal_reason": consent.withdrawal_reason,
        "status": services.consent_status(
            consent, timezone.localdate(timezone.now(), consent.patient.site.zone)
        ),
        "document_url": (
            reverse("consent:document", args=[consent.patient_id, consent.pk])
            if consent.document_file
            else None
        ),
    }


def _decode(raw: str, field: str) -> bytes:
    text = raw.strip()
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise services.ConsentInputError({field: "is not base64"}) from None


def _form(user: User, body: ConsentIn) -> ConsentTemplate:
    if body.template_id is not None:
        try:
            template = services.get_template(user=user, template_id=body.template_id)
        except services.ConsentNotFound:
            raise services.ConsentInputError(
                {"template_id": "is not a consent form of this clinic"}
            ) from None
        if (body.drug and body.drug != template.drug) or (body.route and body.route != template.route):
            raise services.ConsentInputError(
                {
                    "template_id": f"is the form for {template.drug} by {template.route}, not what drug/route say"
                }
            )
        return template
    if body.drug is None:
        raise services.ConsentInputError({"template_id": "give the form version signed, or drug and route"})
    route = body.route or ("intranasal" if body.drug == "esketamine" else None)
    if route is None:
        raise services.ConsentInputError(
            {
                "route": "racemic ketamine needs the route consented to: iv, im or sublingual (one consent per route)"
            }
        )
    return services.current_template(organization_id=user.org_id, drug=body.drug, route=route)


# --- consents -------------------------------------------------------------------------------------------


@router.post("/{patient_id}/consents", response={201: ConsentOut}, auth=api_roles(*CLINICIANS))
def record(request: HttpRequest, patient_id: UUID, body: ConsentIn) -> Status[dict[str, Any]]:
    """Record a patient's signed informed consent to one drug by one route (the pre-dose gate needs a current
    one for the session's drug and route).

    The evidence travels as base64 in this JSON body; give exactly one of:
    - `signature`: the name the patient typed and the PNG of the signature they drew (at most 512 KB, with
      ink on it), signed **today** on the **current** version of the form; you are the witness unless
      `witness_id` names a colleague at the patient's site;
    - `scan`: a PDF, PNG or JPEG of the signed paper form (at most 10 MB before base64; its content must be
      what `content_type` says), of the version printed on it (`template_id`), signed on `signed_on` (not in
      the future, nor longer ago than the clinic's validity period), with `witness_id`.

    The form is `template_id` (GET /api/consent-forms) or `drug` and `route` for the current version. The
    consent expires after the clinic's validity period (KETACLINIC_CONSENT_VALID_DAYS). Refusals answer 422
    with one entry per field and the limit."""
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "api consent")
    if (body.signature is None) == (body.scan is None):
        raise services.ConsentInputError(
            {"signature": "give either the drawn signature or the scan of the signed form (exactly one)"}
        )
    template = _form(user, body)
    evidence: services.DrawnSignature | services.SignedScan
    if body.signature is not None:
        evidence = services.DrawnSignature(
            signer_name=body.signature.signer_name, png=_decode(body.signature.png_base64, "signature")
        )
        witness_id = body.witness_id if body.witness_id is not None else user.pk
    else:
        assert body.scan is not None
        data = _decode(body.scan.data_base64, "scan")
        if len(data) > documents.MAX_SCAN_BYTES:
            raise services.ConsentInputError(
                {"scan": f"is larger than {documents.MAX_SCAN_BYTES // 2**20} MB"}
            )
        evidence = services.SignedScan(
            data=data, content_type=body.scan.content_type, filename=body.scan.filename
        )
        if body.witness_id is None:
            raise services.ConsentInputError(
                {"witness_id": "name the member of staff who witnessed the signature"}
            )
        witness_id = body.witness_id
    witness = User.objects.filter(pk=witness_id, organization_id=user.org_id).first()
    consent = services.record_consent(
        user=user,
        patient=patient,
        template=template,
        signed_on=body.signed_on,
        evidence=evidence,
        witness=witness,
        expires_on=body.expires_on,
        request=request,
    )
    return Status(201, _out(consent))


@router.get("/{patient_id}/consents", response=list[ConsentOut], auth=api_roles(*CLINICIANS))
def listing(request: HttpRequest, patient_id: UUID) -> list[dict[str, Any]]:
    """The patient's consents, newest first, with their status today."""
    patient = _patient(request, patient_id, "api consents")
    return [
        _out(c)
        for c in services.patient_consents(user=signed_in_user(request), patient=patient, request=request)
    ]


@router.post("/{patient_id}/consents/{consent_id}/withdraw", response=ConsentOut, auth=api_roles(*CLINICIANS))
def withdraw(request: HttpRequest, patient_id: UUID, consent_id: int, body: WithdrawIn) -> dict[str, Any]:
    """The patient withdrew their consent: no further dose of that drug by that route until they sign again."""
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "api consent withdrawal")
    consent = services.get_consent(
        user=user, patient=patient, consent_id=consent_id, request=request, purpose="withdraw"
    )
    services.withdraw_consent(
        user=user, consent=consent, withdrawn_on=body.withdrawn_on, reason=body.reason, request=request
    )
    return _out(consent)


# --- consent forms --------------------------------------------------------------------------------------


def _form_out(row: ConsentTemplate) -> dict[str, Any]:
    return {
        "id": row.pk,
        "drug": row.drug,
        "route": row.route,
        "version": row.version,
        "title": row.title,
        "fingerprint": row.fingerprint,
        "built_in": row.is_builtin,
        "sign_again": row.sign_again,
        "change_note": row.change_note,
        "published_at": row.published_at.isoformat(),
        "sections": row.sections,
    }


@forms_router.get("", response=list[FormOut], auth=api_roles(ADMIN, PRESCRIBER, NURSE))
def forms(request: HttpRequest) -> list[dict[str, Any]]:
    """The version of each drug and route's consent form in use now."""
    return [_form_out(t) for t in services.current_templates(signed_in_user(request).org_id)]


@forms_router.get("/{template_id}", response=FormOut, auth=api_roles(ADMIN, PRESCRIBER, NURSE))
def form(request: HttpRequest, template_id: int) -> dict[str, Any]:
    """One version of a form, current or earlier (what a patient signed stays readable)."""
    return _form_out(services.get_template(user=signed_in_user(request), template_id=template_id))
