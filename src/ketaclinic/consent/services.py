"""Consent use cases: publishing a form version, recording a signed consent (tablet or scan), withdrawing it,
reading it back, and the standing the pre-dose gate reads.

* **Who.** Nurses and prescribers record and withdraw consents (they explain the treatment and witness the
  signature). Prescribers publish a new version of a form: its words are medical statements (benefit figures,
  risks) that a prescriber answers for, the same reason they own the alert limits; administrators and nurses
  read the forms. Every act checks the role here as well as at the edge.
* **Scope.** Patients are loaded through ``patients.services.get_patient`` (organization, then sites, then
  break-glass); a consent is found only through its patient; a form only in the user's organization.
* **Audit.** Every write, and every read of a consent or its document, is one audit entry in the request's
  transaction. Services never commit.
* **Forms.** A clinic starts with the built-in forms (``clinical.consent_forms``), published as version 1 of
  each drug and route the first time the clinic needs them. A prescriber publishes a new version with
  ``publish_template``; it must pass ``clinical.consent.form_problems``. Old versions stay readable and every
  consent points at the version its patient signed, with that version's fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import consent as rules
from ketaclinic.clinical.consent_forms import BUILTIN_REVISION
from ketaclinic.consent import documents
from ketaclinic.consent.models import Consent, ConsentMethod, ConsentTemplate
from ketaclinic.core.access import CLINICIANS, PRESCRIBER, STAFF_ROLES
from ketaclinic.core.errors import DomainError
from ketaclinic.patients.models import Patient

CATEGORY = "consent"
TEMPLATE_CATEGORY = "consent-form"
MIN_REASON_CHARS = 10
MAX_NAME_CHARS = 200
MAX_REASON_CHARS = 2000


class ConsentError(DomainError):
    """A refused consent act, with the HTTP status each edge answers with."""

    status = 409

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class ConsentInputError(ConsentError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), errors)


class ConsentForbidden(ConsentError):
    status = 403


class ConsentNotFound(ConsentError):
    status = 404


# --- the clinic's policy --------------------------------------------------------------------------------


def validity_policy() -> rules.ValidityPolicy:
    """How long a signed consent lasts: ``KETACLINIC_CONSENT_VALID_DAYS`` (the reference gives no period)."""
    days = int(getattr(settings, "KETACLINIC_CONSENT_VALID_DAYS", rules.DEFAULT_VALIDITY.days))
    if days == rules.DEFAULT_VALIDITY.days:
        return rules.DEFAULT_VALIDITY
    return rules.ValidityPolicy(
        days=days,
        source=f"clinic setting KETACLINIC_CONSENT_VALID_DAYS={days} (the reference gives no period; unconfirmed)",
        confirmed=False,
    )


def _today(patient: Patient, now: datetime | None = None) -> date:
    return timezone.localdate(now or timezone.now(), patient.site.zone)


# --- consent forms --------------------------------------------------------------------------------------


def ensure_builtin_templates(organization_id: int) -> None:
    """Publish the built-in form as version 1 of every drug and route the clinic has no form for yet."""
    have = set(
        ConsentTemplate.objects.filter(organization_id=organization_id)
        .values_list("drug", "route")
        .distinct()
    )
    for form in rules.builtin_forms():
        if (form.drug, form.route) in have:
            continue
        try:
            with transaction.atomic():
                ConsentTemplate.objects.create(
                    organization_id=organization_id,
                    drug=form.drug,
                    route=form.route,
                    version=1,
                    title=form.title,
                    sections=_sections_json(form.sections),
                    fingerprint=rules.fingerprint(form),
                    builtin_revision=BUILTIN_REVISION,
                    change_note="Built-in form written from clinical.md §11 and the sections it cites.",
                    published_at=timezone.now(),
                )
        except IntegrityError:  # published by a concurrent request a moment ago
            continue


def _sections_json(sections: Sequence[rules.Section]) -> list[dict[str, str]]:
    return [{"key": s.key, "heading": s.heading, "text": s.text, "source": s.source} for s in sections]


def current_templates(organization_id: int) -> list[ConsentTemplate]:
    """The version in use of each drug and route's form, in the order of ``clinical.consent.FORM_ROUTES``."""
    ensure_builtin_templates(organization_id)
    latest: dict[tuple[str, str], ConsentTemplate] = {}
    for row in ConsentTemplate.objects.filter(organization_id=organization_id).order_by("-version"):
        latest.setdefault((row.drug, row.route), row)
    return [latest[(str(d), str(r))] for d, r in rules.FORM_ROUTES if (str(d), str(r)) in latest]


def current_template(*, organization_id: int, drug: str, route: str) -> ConsentTemplate:
    if not rules.is_form_route(drug, route):
        raise ConsentInputError({"route": f"there is no consent form for {drug} by {route}"})
    ensure_builtin_templates(organization_id)
    row = (
        ConsentTemplate.objects.filter(organization_id=organization_id, drug=drug, route=route)
        .order_by("-version")
        .first()
    )
    assert row is not None  # ensure_builtin_templates published one
    return row


def template_history(*, organization_id: int, drug: str, route: str) -> list[ConsentTemplate]:
    return list(
        ConsentTemplate.objects.filter(organization_id=organization_id, drug=drug, route=route)
        .select_related("published_by")
        .order_by("-version")
    )


def get_template(*, user: User, template_id: Any) -> ConsentTemplate:
    try:
        pk = int(template_id)
    except (TypeError, ValueError):
        raise ConsentNotFound("No such consent form.") from None
    row = (
        ConsentTemplate.objects.filter(pk=pk, organization_id=user.org_id)
        .select_related("published_by")
        .first()
    )
    if row is None:
        raise ConsentNotFound("No such consent form.")
    return row


def sign_again_from(*, organization_id: int, drug: str, route: str) -> rules.SignAgain | None:
    """The newest version of the form that every patient must sign again, if any."""
    row = (
        ConsentTemplate.objects.filter(
            organization_id=organization_id, drug=drug, route=route, sign_again=True
        )
        .order_by("-version")
        .first()
    )
    if row is None:
        return None
    return rules.SignAgain(
        version=row.version, published_on=timezone.localdate(row.published_at), note=row.change_note
    )


def publish_template(
    *,
    user: User,
    drug: str,
    route: str,
    title: str,
    sections: Sequence[rules.Section],
    change_note: str,
    sign_again: bool = False,
    request: HttpRequest | None = None,
) -> ConsentTemplate:
    """A prescriber publishes the next version of a form; refused (422, per section) unless it says what
    clinical.md §11 asks. The earlier versions stay as they were."""
    if user.role != PRESCRIBER:
        raise ConsentForbidden(
            "Only a prescriber publishes a consent form: its words are medical statements."
        )
    current = current_template(organization_id=user.org_id, drug=drug, route=route)
    form = rules.FormText(
        drug=drug,
        route=route,
        title=" ".join(title.split()),
        sections=rules.sections_in_order(
            [
                rules.Section(
                    key=s.key,
                    heading=" ".join(s.heading.split()),
                    text=s.text.strip(),
                    source=s.source.strip(),
                )
                for s in sections
                if s.text.strip() or s.key not in {str(k) for k in rules.OPTIONAL_SECTIONS}
            ]
        ),
    )
    errors: dict[str, str] = {}
    for problem in rules.form_problems(form):
        field = problem.section
        errors[field] = f"{errors[field]}; {problem.message}" if field in errors else problem.message
    note = " ".join(change_note.split())
    if len(note) < MIN_REASON_CHARS:
        errors["change_note"] = f"say what changed and why (at least {MIN_REASON_CHARS} characters)"
    elif len(note) > MAX_REASON_CHARS:
        errors["change_note"] = f"is {len(note)} characters, more than {MAX_REASON_CHARS}"
    fingerprint = rules.fingerprint(form)
    if not errors and fingerprint == current.fingerprint:
        errors["form"] = f"the words are the same as version {current.version}: nothing to publish"
    if errors:
        raise ConsentInputError(errors)
    version = (
        ConsentTemplate.objects.filter(organization_id=user.org_id, drug=drug, route=route).aggregate(
            v=Max("version")
        )["v"]
        or 0
    ) + 1
    try:
        with transaction.atomic():
            row = ConsentTemplate.objects.create(
                organization_id=user.org_id,
                drug=drug,
                route=route,
                version=version,
                title=form.title,
                sections=_sections_json(form.sections),
                fingerprint=fingerprint,
                change_note=note,
                sign_again=sign_again,
                published_by=user,
                published_at=timezone.now(),
            )
    except IntegrityError:
        raise ConsentError(
            f"A colleague published version {version} of this form a moment ago: reload and check it first."
        ) from None
    audit.record(
        user=user,
        action=Action.ADD,
        category=TEMPLATE_CATEGORY,
        organization=user.organization,
        object_type="ConsentTemplate",
        object_id=row.pk,
        before={"version": current.version, "fingerprint": current.fingerprint},
        after={
            "drug": drug,
            "route": route,
            "version": version,
            "fingerprint": fingerprint,
            "sign_again": sign_again,
            "change_note": note,
        },
        request=request,
    )
    return row


# --- recording a consent --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DrawnSignature:
    """The patient typed their full name and drew their signature on the clinic tablet or phone."""

    signer_name: str
    png: bytes


@dataclass(frozen=True, slots=True)
class SignedScan:
    """A scan or photo of the paper form the patient signed."""

    data: bytes
    content_type: str
    filename: str


def _may_record(user: User) -> None:
    if user.role not in CLINICIANS:
        raise ConsentForbidden("Only a nurse or a prescriber records a patient's consent.")


def _witness_problem(witness: User | None, patient: Patient) -> str | None:
    if witness is None:
        return "name the member of staff who saw the patient sign"
    if witness.organization_id != patient.organization_id or not witness.is_active or witness.is_service:
        return "is not an active member of this clinic's staff"
    if witness.role not in STAFF_ROLES:
        return "has no staff role"
    covers = witness.role == "admin" or witness.all_sites or witness.sites.filter(pk=patient.site_id).exists()
    if not covers:
        return f"does not work at {patient.site.name}"
    return None


def record_consent(
    *,
    user: User,
    patient: Patient,
    template: ConsentTemplate,
    signed_on: date,
    evidence: DrawnSignature | SignedScan,
    witness: User | None,
    expires_on: date | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> Consent:
    """Record a patient's signed consent on ``template``. A tablet signature is signed today on the current
    version; a scan may be of an earlier version, signed on an earlier day within the validity period. The
    expiry is the clinic's validity period from signing (an earlier date may be given, never a later one).
    ``now`` is for the demo loader replaying a morning."""
    _may_record(user)
    if template.organization_id != patient.organization_id:
        raise ConsentNotFound("No such consent form.")
    today = _today(patient, now)
    policy = validity_policy()
    errors: dict[str, str] = {}
    if signed_on > today:
        errors["signed_on"] = "is in the future"
    elif not template.is_builtin and signed_on < timezone.localdate(template.published_at, patient.site.zone):
        errors["signed_on"] = (
            f"is before version {template.version} of the form was published "
            f"({timezone.localdate(template.published_at, patient.site.zone).isoformat()}): pick the version the "
            "patient signed"
        )
    elif (today - signed_on).days > policy.days:
        errors["signed_on"] = (
            f"is {(today - signed_on).days} days ago: a consent lasts {policy.days} days (clinic policy), so this "
            "one has already expired; the patient signs the current form"
        )
    latest = current_template(
        organization_id=patient.organization_id, drug=template.drug, route=template.route
    )
    longest = signed_on + timedelta(days=policy.days)
    if expires_on is None:
        expires_on = longest
    elif expires_on <= signed_on:
        errors["expires_on"] = "must be after the signing date"
    elif expires_on > longest:
        errors["expires_on"] = (
            f"is later than {longest.isoformat()}: a consent lasts at most {policy.days} days (clinic policy)"
        )
    witness_problem = _witness_problem(witness, patient)
    if witness_problem:
        errors["witness"] = witness_problem
    try:
        if isinstance(evidence, DrawnSignature):
            if template.pk != latest.pk:
                errors["template"] = (
                    f"version {template.version} is not the current form (version {latest.version}): the patient "
                    "signs the current version"
                )
            if "signed_on" not in errors and signed_on != today:
                errors["signed_on"] = "a signature drawn on the tablet or phone is signed today"
            name = " ".join(evidence.signer_name.split())
            if len(name) < 2 or not any(c.isalpha() for c in name):
                errors["signer_name"] = "the patient types their full name"
            elif len(name) > MAX_NAME_CHARS:
                errors["signer_name"] = f"is {len(name)} characters, more than {MAX_NAME_CHARS}"
            checked = documents.check_signature(evidence.png)
            method, filename = ConsentMethod.TABLET, ""
        else:
            name = ""
            checked = documents.check_scan(evidence.data, evidence.content_type)
            method, filename = ConsentMethod.SCAN, evidence.filename.replace("/", "_")[-MAX_NAME_CHARS:]
    except documents.DocumentRefused as exc:
        errors["signature" if isinstance(evidence, DrawnSignature) else "document"] = str(exc)
    if errors:
        raise ConsentInputError(errors)
    stored = documents.store(patient.organization_id, checked)
    consent = Consent.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        drug=template.drug,
        route=template.route,
        template=template,
        template_fingerprint=template.fingerprint,
        method=method,
        signed_on=signed_on,
        expires_on=expires_on,
        validity_days=policy.days,
        signer_name=name,
        witness=witness,
        document_file=stored,
        document_type=checked.content_type,
        document_sha256=checked.sha256,
        document_bytes=len(checked.data),
        document_filename=filename,
        recorded_by=user,
        updated_at=timezone.now(),  # when the row was written, even when the demo replays an earlier day
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="Consent",
        object_id=consent.pk,
        after={
            "drug": consent.drug,
            "route": consent.route,
            "form_version": template.version,
            "form_fingerprint": template.fingerprint,
            "method": method,
            "signed_on": signed_on.isoformat(),
            "expires_on": expires_on.isoformat(),
            "witness": witness.pk if witness else None,
            "document_sha256": checked.sha256,
        },
        request=request,
    )
    return consent


def withdraw_consent(
    *,
    user: User,
    consent: Consent,
    withdrawn_on: date,
    reason: str,
    request: HttpRequest | None = None,
) -> Consent:
    """The patient withdrew their consent: no dose of that drug by that route until they sign again."""
    _may_record(user)
    if consent.withdrawn_on is not None:
        raise ConsentError(
            f"This consent was already withdrawn on {consent.withdrawn_on.isoformat()}: the record keeps that."
        )
    today = _today(consent.patient)
    errors: dict[str, str] = {}
    if withdrawn_on > today:
        errors["withdrawn_on"] = "is in the future"
    elif withdrawn_on < consent.signed_on:
        errors["withdrawn_on"] = f"is before the consent was signed ({consent.signed_on.isoformat()})"
    text = " ".join(reason.split())
    if len(text) < MIN_REASON_CHARS:
        errors["reason"] = f"write what the patient said or why (at least {MIN_REASON_CHARS} characters)"
    elif len(text) > MAX_REASON_CHARS:
        errors["reason"] = f"is {len(text)} characters, more than {MAX_REASON_CHARS}"
    if errors:
        raise ConsentInputError(errors)
    now = timezone.now()
    updated = Consent.objects.filter(pk=consent.pk, withdrawn_on__isnull=True).update(
        withdrawn_on=withdrawn_on, withdrawal_reason=text, withdrawn_by=user, withdrawn_at=now, updated_at=now
    )
    if updated != 1:
        raise ConsentError("A colleague recorded a withdrawal a moment ago: reload the chart.")
    consent.withdrawn_on, consent.withdrawal_reason, consent.withdrawn_by = withdrawn_on, text, user
    consent.withdrawn_at = consent.updated_at = now
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=consent.patient,
        object_type="Consent",
        object_id=consent.pk,
        before={"withdrawn_on": None},
        after={"withdrawn_on": withdrawn_on.isoformat(), "reason": text},
        request=request,
    )
    return consent


# --- reading consents -----------------------------------------------------------------------------------


def _read(
    *,
    user: User,
    patient: Patient,
    detail: str,
    consent: Consent | None = None,
    request: HttpRequest | None = None,
    outcome: str = "success",
) -> None:
    """One audit entry for a read of the patient's consents, a consent, or its document."""
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=patient,
        object_type="Consent",
        object_id=consent.pk if consent else "",
        request=request,
        outcome=outcome,
        detail=detail,
    )


def patient_consents(*, user: User, patient: Patient, request: HttpRequest | None = None) -> list[Consent]:
    """Every consent on the patient's chart, newest first (one audited read). ``patient`` comes from
    ``patients.services.get_patient``, which scoped it to the user."""
    rows = list(
        Consent.objects.filter(patient=patient, organization_id=user.org_id).select_related(
            "template", "recorded_by", "witness", "withdrawn_by"
        )
    )
    _read(user=user, patient=patient, detail=f"chart: {len(rows)} consents", request=request)
    return rows


def get_consent(
    *,
    user: User,
    patient: Patient,
    consent_id: Any,
    request: HttpRequest | None = None,
    purpose: str = "view",
) -> Consent:
    try:
        pk = int(consent_id)
    except (TypeError, ValueError):
        raise ConsentNotFound("No such consent.") from None
    consent = (
        Consent.objects.filter(pk=pk, patient=patient, organization_id=user.org_id)
        .select_related("template", "recorded_by", "witness", "withdrawn_by", "patient__site")
        .first()
    )
    if consent is None:
        raise ConsentNotFound("No such consent.")
    _read(user=user, patient=patient, consent=consent, detail=purpose, request=request)
    return consent


@dataclass(frozen=True, slots=True)
class Document:
    data: bytes
    content_type: str
    filename: str


def consent_document(*, user: User, consent: Consent, request: HttpRequest | None = None) -> Document:
    """The signature image or the signed scan, checked against the fingerprint taken at signing (audited)."""
    if not consent.document_file:
        raise ConsentNotFound(
            "This consent was recorded before signed forms were kept: there is no document."
        )
    try:
        data = documents.load(consent.document_file, consent.document_sha256)
    except documents.DocumentRefused as exc:
        _read(
            user=user,
            patient=consent.patient,
            consent=consent,
            detail=f"document: {exc}",
            request=request,
            outcome="failure",
        )
        raise ConsentError(f"The signed document cannot be shown: {exc}.") from None
    _read(user=user, patient=consent.patient, consent=consent, detail="signed document", request=request)
    ext = documents.SCAN_TYPES.get(consent.document_type, "bin")
    kind = "signature" if consent.method == ConsentMethod.TABLET else "signed-form"
    return Document(
        data=data, content_type=consent.document_type, filename=f"consent-{consent.pk}-{kind}.{ext}"
    )


def check_document_store() -> str:
    """ "ok (N documents)", or which consents' documents are missing or changed (``ketaclinic check`` and
    ``ketaclinic restore`` report it: a signed form that cannot be shown is a lost record)."""
    rows = Consent.objects.exclude(document_file="").values_list("pk", "document_file", "document_sha256")
    bad = []
    for pk, name, sha256 in rows.iterator():
        try:
            documents.load(name, sha256)
        except documents.DocumentRefused as exc:
            bad.append(f"consent {pk}: {exc}")
    if bad:
        shown = "; ".join(bad[:5]) + (f"; and {len(bad) - 5} more" if len(bad) > 5 else "")
        return f"{len(bad)} of {len(rows)} signed documents cannot be shown: {shown}"
    return f"ok ({len(rows)} documents)"


# --- what the pre-dose gate reads -----------------------------------------------------------------------


def latest_signed(patient: Patient, drug: str, route: str) -> Consent | None:
    """The latest consent with a signed form for exactly this drug and route (the latest decides)."""
    return (
        Consent.objects.filter(patient=patient, drug=drug, route=route, template__isnull=False)
        .exclude(method=ConsentMethod.UNSIGNED)
        .select_related("template", "witness")
        .order_by("-signed_on", "-recorded_at", "-pk")
        .first()
    )


def describe_method(consent: Consent) -> str:
    if consent.method == ConsentMethod.TABLET:
        return (
            f"signed on the clinic tablet as {consent.signer_name!r}"
            if consent.signer_name
            else "signed on the tablet"
        )
    if consent.method == ConsentMethod.SCAN:
        return "signed paper form (scan)"
    return "recorded without a signed form"


def standing(
    patient: Patient, drug: str, route: str, today: date
) -> tuple[rules.ConsentStanding, Consent | None]:
    """The consent item of the pre-dose gate for a session of ``drug`` by ``route`` on ``today``."""
    row = latest_signed(patient, drug, route)
    on_file = None
    if row is not None and row.template is not None:
        on_file = rules.SignedConsent(
            route=row.route,
            form_title=row.template.title,
            version=row.template.version,
            signed_on=row.signed_on,
            expires_on=row.expires_on,
            withdrawn_on=row.withdrawn_on,
            withdrawal_reason=row.withdrawal_reason,
            how=describe_method(row),
            witness=row.witness.display_name if row.witness else "",
        )
    others = (
        Consent.objects.filter(patient=patient, drug=drug, template__isnull=False)
        .exclude(route=route)
        .values_list("route", flat=True)
    )
    unsigned = (
        Consent.objects.filter(patient=patient, drug=drug, method=ConsentMethod.UNSIGNED)
        .order_by("-signed_on")
        .values_list("signed_on", flat=True)
        .first()
    )
    result = rules.consent_standing(
        drug=drug,
        route=route,
        on_file=on_file,
        today=today,
        validity=validity_policy(),
        sign_again=sign_again_from(organization_id=patient.organization_id, drug=drug, route=route),
        other_routes=list(others),
        unsigned_record_on=unsigned if on_file is None else None,
    )
    return result, row


def current_consent(patient: Patient, drug: str, route: str, today: date) -> Consent | None:
    """The signed consent that covers a dose of ``drug`` by ``route`` today, or ``None``."""
    result, row = standing(patient, drug, route, today)
    return row if result.current else None


def consent_status(consent: Consent, today: date) -> str:
    """ "current", "expired", "withdrawn", "not signed" or "superseded" (a later consent for the route)."""
    if consent.withdrawn_on is not None and consent.withdrawn_on <= today:
        return "withdrawn"
    if consent.method == ConsentMethod.UNSIGNED or consent.template_id is None:
        return "not signed"
    if consent.expires_on is not None and consent.expires_on < today:
        return "expired"
    latest = latest_signed(consent.patient, consent.drug, consent.route)
    if latest is not None and latest.pk != consent.pk:
        return "superseded"
    return "current"
