"""Consent pages: the tablet signing page, uploading a signed scan, a consent's record and its document,
withdrawal, and the clinic's consent forms (read by staff, published by prescribers). HTTP only: every act
is one use case in ``consent.services``; a refused form comes back with each field's reason and what was
typed (never the drawn signature: the patient signs again)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketaclinic.accounts.models import User
from ketaclinic.clinical import consent as rules
from ketaclinic.consent import documents, services
from ketaclinic.consent.models import Consent, ConsentMethod, ConsentTemplate
from ketaclinic.core.access import ADMIN, CLINICIANS, NURSE, PRESCRIBER, STAFF_ROLES, allow, signed_in_user
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient


def _domain_errors(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The web edge's one mapping of consent errors that no form shows: 404 and 403."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except services.ConsentNotFound as exc:
            raise Http404(str(exc)) from None
        except services.ConsentForbidden as exc:
            raise PermissionDenied(str(exc)) from None

    return wrapped


def _patient(request: HttpRequest, patient_id: Any, purpose: str) -> Patient:
    try:
        return patients.get_patient(
            user=signed_in_user(request), patient_id=patient_id, request=request, purpose=purpose
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise Http404("No such patient.") from None


def _consent(request: HttpRequest, patient: Patient, consent_id: int, purpose: str) -> Consent:
    return services.get_consent(
        user=signed_in_user(request), patient=patient, consent_id=consent_id, request=request, purpose=purpose
    )


def _date(raw: str, field: str, errors: dict[str, str]) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        errors[field] = f"{raw!r} is not a date (YYYY-MM-DD)" if raw.strip() else "enter the date"
        return None


def _witnesses(patient: Patient) -> list[User]:
    """Staff who may witness a signature for this patient: active, of the clinic, working at the site."""
    return list(
        User.objects.filter(
            organization_id=patient.organization_id, is_active=True, is_service=False, role__in=STAFF_ROLES
        )
        .filter(Q(role=ADMIN) | Q(all_sites=True) | Q(sites=patient.site_id))
        .distinct()
        .order_by("last_name", "first_name", "username")
    )


# --- signing on the tablet ------------------------------------------------------------------------------


@allow(NURSE, PRESCRIBER)
@require_http_methods(["GET", "POST"])
@_domain_errors
def sign(request: HttpRequest, patient_id: str, template_id: int) -> HttpResponse:
    """The page handed to the patient: the form's words, their typed name and drawn signature, and the
    nurse's confirmation that they watched. No menu: the patient sees only this."""
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "consent signing page")
    template = services.get_template(user=user, template_id=template_id)
    errors: dict[str, str] = {}
    name = ""
    if request.method == "POST":
        name = request.POST.get("signer_name", "")
        png = b""
        raw = request.POST.get("signature", "")
        if raw.startswith("data:image/png;base64,"):
            try:
                png = base64.b64decode(raw.split(",", 1)[1], validate=True)
            except (binascii.Error, ValueError):
                errors["signature"] = "the signature did not arrive whole: ask the patient to sign again"
        elif raw:
            errors["signature"] = "the signature must come from the signature box"
        if request.POST.get("witnessed") != "yes":
            errors["witness"] = "tick the box to confirm that you watched the patient read and sign"
        if not errors:
            try:
                consent = services.record_consent(
                    user=user,
                    patient=patient,
                    template=template,
                    signed_on=timezone.localdate(timezone.now(), patient.site.zone),
                    evidence=services.DrawnSignature(signer_name=name, png=png),
                    witness=user,
                    request=request,
                )
            except services.ConsentInputError as exc:
                errors = exc.errors
            else:
                messages.success(request, f"Consent recorded: {template.title}, version {template.version}.")
                return redirect("consent:consent", patient_id=patient.pk, consent_id=consent.pk)
    current = services.current_template(
        organization_id=patient.organization_id, drug=template.drug, route=template.route
    )
    return render(
        request,
        "consent/sign.html",
        {
            "patient": patient,
            "template": template,
            "current": current,
            "validity": services.validity_policy(),
            "errors": errors,
            "signer_name": name,
            "today": timezone.localdate(timezone.now(), patient.site.zone),
        },
        status=422 if errors else 200,
    )


# --- uploading a signed paper form ----------------------------------------------------------------------


@allow(NURSE, PRESCRIBER)
@require_http_methods(["GET", "POST"])
@_domain_errors
def upload(request: HttpRequest, patient_id: str) -> HttpResponse:
    """A scan (PDF, PNG or JPEG) of the paper form the patient signed, with the version printed on it."""
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "consent upload page")
    services.ensure_builtin_templates(user.org_id)
    versions = list(
        ConsentTemplate.objects.filter(organization_id=user.org_id).order_by("drug", "route", "-version")
    )
    errors: dict[str, str] = {}
    posted = request.POST
    if request.method == "POST":
        template: ConsentTemplate | None = None
        try:
            template = services.get_template(user=user, template_id=posted.get("template", ""))
        except services.ConsentNotFound:
            errors["template"] = "pick the form (and version) the patient signed"
        signed_on = _date(posted.get("signed_on", ""), "signed_on", errors)
        witness = User.objects.filter(pk=posted.get("witness") or 0, organization_id=user.org_id).first()
        upload = request.FILES.get("document")
        data = b""
        if upload is None:
            errors["document"] = "choose the scan of the signed form (PDF, PNG or JPEG)"
        elif upload.size is not None and upload.size > documents.MAX_SCAN_BYTES:
            errors["document"] = (
                f"the file is {upload.size / 2**20:.1f} MB; the limit is {documents.MAX_SCAN_BYTES // 2**20} MB"
            )
        else:
            data = upload.read()
        if not errors and template is not None and signed_on is not None and upload is not None:
            try:
                consent = services.record_consent(
                    user=user,
                    patient=patient,
                    template=template,
                    signed_on=signed_on,
                    evidence=services.SignedScan(
                        data=data, content_type=upload.content_type or "", filename=upload.name or ""
                    ),
                    witness=witness,
                    request=request,
                )
            except services.ConsentInputError as exc:
                errors = exc.errors
            else:
                messages.success(
                    request, f"Signed form recorded: {template.title}, version {template.version}."
                )
                return redirect("consent:consent", patient_id=patient.pk, consent_id=consent.pk)
    return render(
        request,
        "consent/upload.html",
        {
            "patient": patient,
            "versions": versions,
            "witnesses": _witnesses(patient),
            "errors": errors,
            "posted": posted,
            "max_mb": documents.MAX_SCAN_BYTES // 2**20,
            "today": timezone.localdate(timezone.now(), patient.site.zone),
        },
        status=422 if errors else 200,
    )


# --- a consent's record and its document ----------------------------------------------------------------


def _consent_page(
    request: HttpRequest, patient: Patient, consent: Consent, *, errors: dict[str, str] | None = None
) -> HttpResponse:
    today = timezone.localdate(timezone.now(), patient.site.zone)
    return render(
        request,
        "consent/consent.html",
        {
            "patient": patient,
            "consent": consent,
            "status": services.consent_status(consent, today),
            "how": services.describe_method(consent),
            "is_image": consent.document_type in (documents.PNG, documents.JPEG),
            "tablet": consent.method == ConsentMethod.TABLET,
            "errors": errors or {},
            "posted": request.POST,
            "today": today,
            "fingerprint_matches": consent.template is None
            or consent.template.fingerprint == consent.template_fingerprint,
        },
        status=422 if errors else 200,
    )


@allow(*CLINICIANS)
@require_GET
@_domain_errors
def consent_page(request: HttpRequest, patient_id: str, consent_id: int) -> HttpResponse:
    """What the patient signed: the form's words as signed, the name, the signature or scan, the witness."""
    patient = _patient(request, patient_id, "consent record")
    return _consent_page(request, patient, _consent(request, patient, consent_id, "consent record"))


@allow(*CLINICIANS)
@require_GET
@_domain_errors
def document(request: HttpRequest, patient_id: str, consent_id: int) -> HttpResponse:
    """The signature image or signed scan: only through this access-checked, audited view, never cached."""
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "consent document")
    consent = _consent(request, patient, consent_id, "consent document")
    try:
        doc = services.consent_document(user=user, consent=consent, request=request)
    except services.ConsentError as exc:
        if isinstance(exc, services.ConsentNotFound):
            raise
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    response = HttpResponse(doc.data, content_type=doc.content_type)
    response["Content-Disposition"] = f'inline; filename="{doc.filename}"'
    response["Content-Length"] = str(len(doc.data))
    if doc.content_type == documents.PDF:
        # The browser's PDF viewer needs to run as an object; nothing else may load.
        response["Content-Security-Policy"] = "default-src 'none'; object-src 'self'; frame-ancestors 'self'"
    return response


@allow(*CLINICIANS)
@require_POST
@_domain_errors
def withdraw(request: HttpRequest, patient_id: str, consent_id: int) -> HttpResponse:
    user = signed_in_user(request)
    patient = _patient(request, patient_id, "consent withdrawal")
    consent = _consent(request, patient, consent_id, "consent withdrawal")
    errors: dict[str, str] = {}
    when = _date(request.POST.get("withdrawn_on", ""), "withdrawn_on", errors)
    if when is not None:
        try:
            services.withdraw_consent(
                user=user,
                consent=consent,
                withdrawn_on=when,
                reason=request.POST.get("reason", ""),
                request=request,
            )
        except services.ConsentInputError as exc:
            errors = exc.errors
        except services.ConsentError as exc:
            messages.error(request, str(exc))
            return redirect("consent:consent", patient_id=patient.pk, consent_id=consent.pk)
    if errors:
        return _consent_page(request, patient, consent, errors=errors)
    messages.success(
        request, f"Consent withdrawn on {when}: no dose of {consent.label} until the patient signs again."
    )
    return redirect("patients:chart", patient_id=patient.pk)


# --- the clinic's consent forms -------------------------------------------------------------------------


@allow(ADMIN, PRESCRIBER, NURSE)
@require_GET
def forms(request: HttpRequest) -> HttpResponse:
    """Each drug and route's form in use, its earlier versions, and (for prescribers) a new version."""
    user = signed_in_user(request)
    current = services.current_templates(user.org_id)
    rows = [
        {
            "current": t,
            "history": services.template_history(organization_id=user.org_id, drug=t.drug, route=t.route),
        }
        for t in current
    ]
    return render(
        request,
        "consent/forms.html",
        {"rows": rows, "may_publish": user.role == PRESCRIBER, "validity": services.validity_policy()},
    )


@allow(ADMIN, PRESCRIBER, NURSE)
@require_GET
@_domain_errors
def form(request: HttpRequest, template_id: int) -> HttpResponse:
    """One version of a form as a patient reads it (printable, with lines to sign on paper)."""
    user = signed_in_user(request)
    template = services.get_template(user=user, template_id=template_id)
    current = services.current_template(organization_id=user.org_id, drug=template.drug, route=template.route)
    return render(
        request,
        "consent/form.html",
        {"template": template, "current": current, "validity": services.validity_policy()},
    )


def _posted_sections(request: HttpRequest) -> list[rules.Section]:
    return [
        rules.Section(
            key=str(key),
            heading=request.POST.get(f"{key}_heading", ""),
            text=request.POST.get(f"{key}_text", ""),
            source=request.POST.get(f"{key}_source", ""),
        )
        for key in rules.SECTION_HEADINGS
    ]


@allow(PRESCRIBER)
@require_http_methods(["GET", "POST"])
@_domain_errors
def publish(request: HttpRequest, drug: str, route: str) -> HttpResponse:
    """A prescriber edits the form in use and publishes it as the next version, if it says what §11 asks."""
    user = signed_in_user(request)
    if not rules.is_form_route(drug, route):
        raise Http404("No such consent form.")
    current = services.current_template(organization_id=user.org_id, drug=drug, route=route)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            row = services.publish_template(
                user=user,
                drug=drug,
                route=route,
                title=request.POST.get("title", ""),
                sections=_posted_sections(request),
                change_note=request.POST.get("change_note", ""),
                sign_again=request.POST.get("sign_again") == "yes",
                request=request,
            )
        except services.ConsentError as exc:
            errors = exc.errors or {"form": str(exc)}
        else:
            messages.success(request, f"Published {row.title}, version {row.version}.")
            return redirect("consent:form", template_id=row.pk)
        sections = {s.key: s for s in _posted_sections(request)}
        title = request.POST.get("title", "")
        note = request.POST.get("change_note", "")
    else:
        sections = {s["key"]: rules.Section(**s) for s in current.sections}
        title, note = current.title, ""
    required = {str(r.key): r for r in rules.required_sections(drug)}
    fields = [
        {
            "key": str(key),
            "section": sections.get(str(key))
            or rules.Section(key=str(key), heading=heading, text="", source=""),
            "rule": required.get(str(key)),
            "error": errors.get(str(key), ""),
        }
        for key, heading in rules.SECTION_HEADINGS.items()
    ]
    return render(
        request,
        "consent/publish.html",
        {
            "current": current,
            "label": rules.form_label(drug, route),
            "fields": fields,
            "title": title,
            "change_note": note,
            "sign_again": request.POST.get("sign_again") == "yes",
            "errors": errors,
            "drug": drug,
            "route": route,
            "response_range": rules.RESPONSE_RANGE_PCT,
        },
        status=422 if errors else 200,
    )
