"""SPRAVATO REMS Patient Monitoring Form use cases: assemble from the session, edit, sign off, submit, queue.

The form's fields, completeness and rule checks are the pure ``ketaclinic.clinical.rems`` (clinical.md §2.4).
This module fills them from what the session recorded and keeps staff answers apart from derived values:

``RemsMonitoringForm.data`` = ``{"fields": {dotted name: JSON value}, "edited": [dotted names staff set],
"notes": {dotted name: how the value was derived}, "form_version": "newer"}``. A refresh from the session
re-derives every field staff have not edited; staff answers always win. An unanswered question stays
empty ("missing") — nothing is assumed "no" (concomitant medications, respiratory depression and a serious
adverse event are answered by staff unless the record shows a "yes").

Roles (docs in the report): nurses and prescribers assemble, edit and sign off — the form attests to the
monitoring, which the "Monitoring HCP" on the form (clinical.md §2.4) carries out, often a nurse; REMS asks
for a prescriber on site, not for the prescriber's signature. The sign-off records printed name, time and
meaning (21 CFR 11.50 as the design model, security.md §4). Front desk may see the queue, print the signed
form and mark it submitted with the confirmation number: submitting at spravatorems.com is clerical.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Site, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    AdministrationKind,
    RemsMonitoringForm,
    Status,
    TreatmentSession,
)
from ketaclinic.chairside.rems_fields import KINDS, LABELS, flatten, label, parse_value, unflatten
from ketaclinic.chairside.services import as_reading, visible_sessions
from ketaclinic.clinical import rems
from ketaclinic.clinical.discharge import ESKETAMINE_DISCHARGE
from ketaclinic.clinical.dose_types import ESKETAMINE_DEVICE_MG
from ketaclinic.clinical.vitals import VitalReading, minutes_between
from ketaclinic.core.access import CLINICIANS, FRONT_DESK
from ketaclinic.core.errors import DomainError

CATEGORY = "rems-form"
FORM_VERSION = rems.FormVersion.NEWER
QUEUE_WINDOW_DAYS = rems.REMS_SUBMIT_WITHIN_DAYS  # clinical.md §2.4: due within 7 days of the session
# Spravato: each device holds 28 mg (clinical.md §2.1, label IFU); used when a device row has no dose.
EDITORS = CLINICIANS
SUBMITTERS = CLINICIANS | {FRONT_DESK}


def form_of(row: RemsMonitoringForm) -> rems.PatientMonitoringForm:
    return unflatten(row.data.get("fields", {}))


def check(row: RemsMonitoringForm) -> rems.FormCheck:
    return rems.check_form(form_of(row), version=FORM_VERSION)


# --- errors --------------------------------------------------------------------------------------------


class RemsError(DomainError):
    """A REMS-form problem a nurse can read."""

    status = 409


class RemsInputError(RemsError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{label(k) if k in LABELS else k}: {v}" for k, v in errors.items()))
        self.errors = errors


class RemsIncomplete(RemsError):
    """Sign-off refused: names every missing field and every rule problem at once."""

    status = 422

    def __init__(self, result: rems.FormCheck) -> None:
        self.missing = list(result.missing)
        self.violations = list(result.violations)
        self.errors = {name: "required before sign-off" for name in self.missing}
        parts = []
        if self.missing:
            parts.append("missing " + "; ".join(label(n) for n in self.missing))
        parts += self.violations
        super().__init__("The form cannot be signed off: " + "; ".join(parts) + ".")


class RemsConflict(RemsError):
    def __init__(self, current: RemsMonitoringForm) -> None:
        super().__init__(
            f"A colleague changed this form (now version {current.version}) while you were editing. "
            "Your changes were not saved; review the current values and apply them again."
        )
        self.current = current


# --- assembly from the session -------------------------------------------------------------------------


def _local(session: TreatmentSession, moment: datetime) -> datetime:
    return timezone.localtime(moment, session.site.zone)


def treatment_date(session: TreatmentSession) -> date:
    return _local(session, session.dose_started_at or session.scheduled_at).date()


def _hcp_from(user: User, site: Site, notes: dict[str, str]) -> rems.MonitoringHcp:
    """The clinician preparing the form, with their work phone, else the site's phone (both kept by an
    administrator: accounts/staff.py, accounts/site_identifiers.py)."""
    phone = user.phone or site.phone or None
    if phone:
        notes["monitoring_hcp.phone"] = (
            f"{user.display_name}'s work phone."
            if user.phone
            else f"{site.name}'s phone (no work phone on file)."
        )
    return rems.MonitoringHcp(
        first_name=user.first_name or None,
        last_name=user.last_name or None,
        phone=phone,
        email=user.email or None,
    )


def _setting_from(site: Site, notes: dict[str, str]) -> rems.TreatmentSetting:
    """The setting's name and postal address as the administrator keeps them on the site's settings page;
    an empty part stays missing for staff to fill in."""
    if site.address_line1:
        notes["setting.address1"] = f"{site.name}'s address on its settings page."
    return rems.TreatmentSetting(
        name=site.name,
        address1=site.address_line1 or None,
        address2=site.address_line2 or None,
        city=site.city or None,
        state=site.state or None,
        zip_code=site.zip_code or None,
    )


def _derive(session: TreatmentSession, user: User) -> tuple[rems.PatientMonitoringForm, dict[str, str]]:
    """The form as the session's record fills it, and a note per derived field saying where it came from."""
    notes: dict[str, str] = {}
    patient, site = session.patient, session.site
    devices = list(session.administrations.filter(kind=AdministrationKind.NASAL_DEVICE).order_by("at"))
    # The entry-checked time of the first device (a back-dated entry cannot lengthen the monitoring time).
    first_device_at = (
        (devices[0].clock_at or devices[0].at)
        if devices
        else (session.dose_clock_at or session.dose_started_at)
    )
    readings: list[VitalReading] = [as_reading(o) for o in session.observations.all()]
    events = list(session.adverse_events.all())
    terms = {e.term.strip().casefold() for e in events}

    earlier = (
        TreatmentSession.objects.filter(patient=patient, drug="esketamine", dose_started_at__isnull=False)
        .exclude(pk=session.pk)
        .filter(dose_started_at__lt=first_device_at or session.scheduled_at)
        .exists()
    )
    if not earlier:
        notes["patient.first_treatment"] = (
            "No earlier esketamine session is recorded here; answer for any elsewhere."
        )
    gate = session.gate_checks.first()
    enrolled = gate.answers.get("rems_patient_enrolled") if gate is not None else None
    if enrolled is True:
        notes["patient.enrolled"] = "From the pre-dose gate answers."
    sex = {"female": "Female", "male": "Male"}.get(patient.sex)
    rems_patient = rems.RemsPatient(
        first_name=patient.given_name,
        last_name=patient.family_name,
        birthdate=patient.date_of_birth,
        sex=sex,
        first_treatment=False if earlier else None,
        enrolled=True if enrolled is True else None,
    )
    setting = _setting_from(site, notes)

    dose_mg = sum(int(d.dose_mg) if d.dose_mg is not None else int(ESKETAMINE_DEVICE_MG) for d in devices)
    lots = sorted({d.lot for d in devices if d.lot})
    if len(devices) > 0:
        notes["dose"] = f"{len(devices)} device(s) recorded."

    # Vitals acceptable before administration: the pre-dose gate's baseline-vitals item (label §5.6 guide).
    before_ok: bool | None = None
    item = next((i for i in (gate.items if gate else []) if i.get("key") == "baseline_vitals"), None)
    if item is not None:
        before_ok = True if item.get("status") == "pass" else None
        notes["vitals_acceptable_before_administration"] = f"Pre-dose gate: {item.get('reason', '')}"
    # Before completion: the discharge checklist's vital-signs criterion (met, not overridden).
    completion_ok: bool | None = None
    record = getattr(session, "discharge", None) if session.discharged_at else None
    if record is not None:
        crit = next((c for c in record.criteria if c.get("criterion") == "vitals"), None)
        if crit is not None:
            completion_ok = True if crit.get("met") else None
            notes["vitals_acceptable_before_completion"] = f"Discharge check: {crit.get('reason', '')}"

    # Adverse-event questions: a recorded event or an observation answers "yes"; only MOAA/S and CADSS
    # data can answer "no". Respiratory depression and serious events are otherwise left to staff.
    sedation: bool | None = True if "sedation" in terms else None
    if sedation:
        notes["sedation"] = "A 'Sedation' adverse event is recorded."
    dissociation: bool | None = None
    if "dissociation" in terms:
        dissociation = True
        notes["dissociation"] = "A 'Dissociation' adverse event is recorded."
    elif first_device_at is not None:
        limit = ESKETAMINE_DISCHARGE.cadss_presence_threshold
        post = [
            r.cadss_total for r in readings if r.taken_at >= first_device_at and r.cadss_total is not None
        ]
        if post:
            dissociation = max(post) > limit
            notes["dissociation"] = (
                f"Highest CADSS after dosing {max(post)} (presence threshold >{limit}, "
                f"{ESKETAMINE_DISCHARGE.cadss_source}; default, unconfirmed): check."
            )
    respiratory: bool | None = None
    if "respiratory depression" in terms:
        respiratory = True
        notes["respiratory_depression"] = "A 'Respiratory depression' adverse event is recorded."
    elif session.alerts.filter(code__in=("spo2_low", "rr_low")).exists():
        respiratory = True
        notes["respiratory_depression"] = "A low SpO2 or low respiratory-rate alert was raised."
    serious = True if any(e.serious for e in events) else None
    if serious:
        notes["serious_adverse_event"] = "A serious adverse event is recorded for this session."

    if first_device_at is None:
        form = rems.PatientMonitoringForm(
            patient=rems_patient, setting=setting, treatment_date=treatment_date(session)
        )
        return form, notes
    ended = session.discharged_at
    form = rems.assemble_form(
        patient=rems_patient,
        concomitant_medications=rems.ConcomitantMedications(),  # intake not recorded yet: staff answer
        monitoring_hcp=_hcp_from(user, site, notes),
        setting=setting,
        treatment_date=treatment_date(session),
        dose_mg=dose_mg,
        lot_number=", ".join(lots) or None,
        first_device_at=first_device_at,
        monitoring_ended_at=ended or timezone.now(),
        ready_at=session.ready_at,
        readings=readings,
        vitals_acceptable_before_administration=before_ok,
        vitals_acceptable_before_completion=completion_ok,
        dissociation=dissociation,
        respiratory_depression=respiratory,
        serious_adverse_event=serious,
        sedation=sedation,
    )
    if not devices:
        form = rems.PatientMonitoringForm(**{**_shallow(form), "dose": None, "dose_other_mg": None})
    if ended is None:  # still being monitored: no total time and no "before completion" BP yet
        form = rems.PatientMonitoringForm(
            **{**_shallow(form), "total_monitoring_minutes": None, "bp_before_completion": None}
        )
    else:
        notes["total_monitoring_minutes"] = (
            f"First device to discharge ({minutes_between(first_device_at, ended)} min)."
        )
    if form.sedation is not None and "sedation" not in notes:
        notes["sedation"] = "From MOAA/S: any score after dosing below the pre-dose score."
    return form, notes


def _shallow(form: rems.PatientMonitoringForm) -> dict[str, Any]:
    return {f.name: getattr(form, f.name) for f in fields(form)}


# --- use cases -----------------------------------------------------------------------------------------


def _require(user: User, roles: frozenset[str] | set[str], what: str) -> None:
    if user.role not in roles:
        raise PermissionDenied(f"Your role may not {what}.")


def _audit(user: User, row: RemsMonitoringForm, action: str, request: HttpRequest | None, **kw: Any) -> None:
    audit.record(
        user=user,
        action=action,
        category=CATEGORY,
        patient=row.session.patient,
        object_type="RemsMonitoringForm",
        object_id=row.pk,
        request=request,
        **kw,
    )


def _bump(row: RemsMonitoringForm, expected_version: int | None, **values: Any) -> None:
    version = row.version if expected_version is None else int(expected_version)
    updated = RemsMonitoringForm.objects.filter(pk=row.pk, version=version).update(
        version=version + 1, **values
    )
    if updated != 1:
        raise RemsConflict(RemsMonitoringForm.objects.get(pk=row.pk))
    for name, value in values.items():
        setattr(row, name, value)
    row.version = version + 1


def _refuse_if_signed(row: RemsMonitoringForm) -> None:
    if row.signed_off_at is not None:
        who = row.signed_off_by.display_name if row.signed_off_by else "a colleague"
        when = timezone.localtime(row.signed_off_at, row.session.site.zone)
        raise RemsError(
            f"This form was signed off by {who} on {when:%Y-%m-%d %H:%M} and can no longer change."
        )


def assemble_rems_form(
    *, user: User, session: TreatmentSession, request: HttpRequest | None = None
) -> RemsMonitoringForm:
    """Create the form from the session, or refresh every field staff have not answered themselves."""
    _require(user, EDITORS, "prepare a REMS form")
    if session.drug != "esketamine":
        raise RemsError("A REMS Patient Monitoring Form is kept for esketamine (Spravato) sessions only.")
    if session.dose_started_at is None and not session.administrations.exists():
        raise RemsError("No esketamine has been given in this session yet.")
    row = RemsMonitoringForm.objects.filter(session=session).first()
    if row is not None:
        _refuse_if_signed(row)
        data = row.data
        derived, notes = _derive(session, user)
        flat = flatten(derived)
        old = data.get("fields", {})
        edited = set(data.get("edited", []))
        # The monitoring HCP stays the first clinician who prepared the form unless staff changed it.
        keep = edited | {n for n in KINDS if n.startswith("monitoring_hcp.") and old.get(n)}
        merged = {n: (old.get(n) if n in keep else flat[n]) for n in KINDS}
        changed = {n for n in KINDS if merged[n] != old.get(n)}
        due = (
            rems.submission_due_date(date.fromisoformat(merged["treatment_date"]))
            if merged["treatment_date"]
            else row.due_on
        )
        _bump(row, None, data={**data, "fields": merged, "notes": notes}, due_on=due)
        _audit(
            user,
            row,
            Action.CHANGE,
            request,
            before={n: old.get(n) for n in sorted(changed)},
            after={n: merged[n] for n in sorted(changed)},
            detail="refreshed from the session",
        )
        return row
    derived, notes = _derive(session, user)
    flat = flatten(derived)
    try:
        with transaction.atomic():
            row = RemsMonitoringForm.objects.create(
                organization_id=session.organization_id,
                session=session,
                data={"fields": flat, "edited": [], "notes": notes, "form_version": str(FORM_VERSION)},
                due_on=rems.submission_due_date(derived.treatment_date or treatment_date(session)),
            )
    except IntegrityError:
        raise RemsConflict(RemsMonitoringForm.objects.get(session=session)) from None
    _audit(user, row, Action.ADD, request, after={"missing": list(check(row).missing)})
    return row


def update_rems_form(
    *,
    user: User,
    form: RemsMonitoringForm,
    data: dict[str, Any],
    expected_version: int | None,
    request: HttpRequest | None = None,
) -> RemsMonitoringForm:
    """Apply staff answers (dotted field name → value). Every bad field is named at once; nothing is saved
    then. A colleague's save since ``expected_version`` raises :class:`RemsConflict`."""
    _require(user, EDITORS, "edit a REMS form")
    _refuse_if_signed(form)
    errors: dict[str, str] = {}
    parsed: dict[str, Any] = {}
    for name, raw in data.items():
        if name not in KINDS:
            errors[name] = "is not a field of the form"
            continue
        try:
            parsed[name] = parse_value(name, raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise RemsInputError(errors)
    old = dict(form.data.get("fields", {}))
    changed = {n: v for n, v in parsed.items() if v != old.get(n)}
    if expected_version is not None and int(expected_version) != form.version:
        raise RemsConflict(RemsMonitoringForm.objects.get(pk=form.pk))
    if not changed:
        return form
    fields_now = {**old, **changed}
    edited = sorted(set(form.data.get("edited", [])) | set(changed))
    notes = {k: v for k, v in form.data.get("notes", {}).items() if k not in changed}
    due = form.due_on
    if "treatment_date" in changed and fields_now["treatment_date"]:
        due = rems.submission_due_date(date.fromisoformat(fields_now["treatment_date"]))
    _bump(
        form,
        expected_version,
        data={**form.data, "fields": fields_now, "edited": edited, "notes": notes},
        due_on=due,
    )
    _audit(
        user,
        form,
        Action.CHANGE,
        request,
        before={n: old.get(n) for n in sorted(changed)},
        after={n: changed[n] for n in sorted(changed)},
    )
    return form


SIGN_OFF_MEANING = "Reviewed and attested as the monitoring healthcare provider"


def sign_off(
    *,
    user: User,
    form: RemsMonitoringForm,
    expected_version: int | None,
    request: HttpRequest | None = None,
) -> RemsMonitoringForm:
    """Sign the form off; refused (naming every missing field and rule problem) while it is incomplete."""
    _require(user, EDITORS, "sign off a REMS form")
    _refuse_if_signed(form)
    if expected_version is not None and int(expected_version) != form.version:
        raise RemsConflict(RemsMonitoringForm.objects.get(pk=form.pk))
    result = check(form)
    if not result.complete:
        raise RemsIncomplete(result)
    now = timezone.now()
    signature = {"name": user.display_name, "at": now.isoformat(), "meaning": SIGN_OFF_MEANING}
    _bump(
        form,
        expected_version,
        signed_off_at=now,
        signed_off_by=user,
        data={**form.data, "signature": signature},
    )
    _audit(user, form, Action.CHANGE, request, after={"signed_off": signature}, detail="signed off")
    return form


def mark_submitted(
    *,
    user: User,
    form: RemsMonitoringForm,
    confirmation_number: str,
    request: HttpRequest | None = None,
) -> RemsMonitoringForm:
    """Record that the signed form was submitted (spravatorems.com or fax), with its confirmation number."""
    _require(user, SUBMITTERS, "mark a REMS form submitted")
    number = (confirmation_number or "").strip()
    if not number:
        raise RemsInputError({"confirmation_number": "enter the confirmation number the REMS gave you"})
    if len(number) > 60:
        raise RemsInputError({"confirmation_number": "at most 60 characters"})
    if form.signed_off_at is None:
        raise RemsError("Only a signed-off form can be submitted: ask a nurse or prescriber to complete it.")
    now = timezone.now()
    updated = RemsMonitoringForm.objects.filter(pk=form.pk, submitted_at__isnull=True).update(
        submitted_at=now, submitted_by=user, confirmation_number=number, version=F("version") + 1
    )
    if updated != 1:
        raise RemsError("This form is already marked submitted.")
    form.submitted_at, form.submitted_by, form.confirmation_number = now, user, number
    form.version = RemsMonitoringForm.objects.values_list("version", flat=True).get(pk=form.pk)
    _audit(
        user,
        form,
        Action.CHANGE,
        request,
        after={"submitted": now.isoformat(), "confirmation_number": number},
    )
    return form


def get_form(*, session: TreatmentSession) -> RemsMonitoringForm | None:
    return (
        RemsMonitoringForm.objects.filter(session=session)
        .select_related("signed_off_by", "submitted_by")
        .first()
    )


@dataclass(frozen=True)
class QueueItem:
    session: TreatmentSession
    form: RemsMonitoringForm | None
    treatment_date: date
    due_on: date
    days_left: int  # negative: overdue by that many days
    overdue: bool
    state: str  # "not started", "draft", "signed off"
    missing: int | None  # None: not started

    @property
    def days_overdue(self) -> int:
        return max(0, -self.days_left)


def rems_queue(
    *,
    user: User,
    site: Site | None = None,
    request: HttpRequest | None = None,
    today: date | None = None,
) -> list[QueueItem]:
    """Esketamine sessions whose form is unsubmitted and due within 7 days, or overdue; most urgent first."""
    _require(user, SUBMITTERS, "see the REMS queue")
    sessions = (
        visible_sessions(user)
        .filter(drug="esketamine")
        .filter(Q(status=Status.DISCHARGED) | Q(status=Status.STOPPED, dose_started_at__isnull=False))
        .filter(Q(rems_form__isnull=True) | Q(rems_form__submitted_at__isnull=True))
        .select_related("patient", "site", "rems_form")
    )
    if site is not None:
        sessions = sessions.filter(site=site)
    items: list[QueueItem] = []
    for session in sessions:
        local_today = today or timezone.localdate(timezone.now(), session.site.zone)
        row = getattr(session, "rems_form", None)
        when = treatment_date(session)
        due = row.due_on if row is not None else rems.submission_due_date(when)
        days_left = (due - local_today).days
        if days_left > QUEUE_WINDOW_DAYS:
            continue
        overdue = days_left < 0  # the due day itself is still on time (rems.is_overdue)
        state = "not started" if row is None else ("signed off" if row.signed_off_at else "draft")
        missing = len(check(row).missing) if row is not None else None
        items.append(QueueItem(session, row, when, due, days_left, overdue, state, missing))
    items.sort(key=lambda i: (i.due_on, i.session.scheduled_at))
    audit.record(
        user=user,
        action=Action.QUERY,
        category="rems-queue",
        object_type="RemsMonitoringForm",
        request=request,
        detail=f"{len(items)} form(s) due or overdue" + (f" at {site.name}" if site else ""),
    )
    return items


# --- printing ------------------------------------------------------------------------------------------

REPORT_READERS = CLINICIANS


def print_rems_form(
    *, user: User, form: RemsMonitoringForm, request: HttpRequest | None = None
) -> tuple[bytes, str]:
    """The form as a PDF and a file name without PHI; audited as a print."""
    from ketaclinic.chairside.reports import rems_form_pdf

    _require(user, SUBMITTERS, "print a REMS form")
    if user.role not in EDITORS and form.signed_off_at is None:
        raise RemsError(
            "The form can be printed for submission once a nurse or prescriber has signed it off."
        )
    pdf = rems_form_pdf(row=form, printed_by=user)
    _audit(user, form, Action.PRINT, request, detail="REMS Patient Monitoring Form PDF")
    return pdf, f"rems-form-{treatment_date(form.session).isoformat()}-{str(form.session_id)[:8]}.pdf"


def print_session_report(
    *, user: User, session: TreatmentSession, request: HttpRequest | None = None
) -> tuple[bytes, str]:
    from ketaclinic.chairside.reports import session_report_pdf

    _require(user, REPORT_READERS, "print a session report")
    pdf = session_report_pdf(session=session, printed_by=user)
    audit.record(
        user=user,
        action=Action.PRINT,
        category="treatment-session",
        patient=session.patient,
        object_type="TreatmentSession",
        object_id=session.pk,
        request=request,
        detail="session report PDF",
    )
    return pdf, f"session-report-{treatment_date(session).isoformat()}-{str(session.pk)[:8]}.pdf"
