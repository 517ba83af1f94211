"""Treatment-session use cases: lifecycle, consent, pre-dose gate, administrations, observations, alerts,
emergency checklists, adverse events and discharge.

The rules are the pure modules in ``ketaclinic.clinical`` (gate.py, vitals.py, alerts.py, discharge.py); this
module feeds them what the database holds, stores their verdicts with who/when/why, and audits every read
and write in the caller's transaction. Services never commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    ACTIVE_STATUSES,
    Administration,
    AdministrationKind,
    AdverseEvent,
    ChecklistRun,
    Consent,
    DischargeRecord,
    GateCheck,
    IngestBatch,
    Observation,
    SessionAlert,
    SessionEvent,
    Status,
    TreatmentSession,
)
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.clinical import discharge as discharge_rules
from ketaclinic.clinical import gate as gate_rules
from ketaclinic.clinical import vitals as vital_rules
from ketaclinic.clinical.adverse_events import LABEL_ADVERSE_REACTIONS
from ketaclinic.clinical.protocol_library import get_protocol
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.core.models import Notification
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient

CATEGORY = "treatment-session"
# Spravato: one 28-mg device, then a 5-minute rest before the next (clinical.md §2.1, label IFU).
DEVICE_MG = Decimal("28")
DEVICE_SPACING = timedelta(minutes=5)

TRANSITIONS: dict[str, tuple[str, ...]] = {
    Status.SCHEDULED: (Status.CHECKED_IN, Status.STOPPED),
    Status.CHECKED_IN: (Status.PRE_DOSE, Status.STOPPED),
    Status.PRE_DOSE: (Status.DOSING, Status.STOPPED),
    Status.DOSING: (Status.MONITORING, Status.STOPPED),
    Status.MONITORING: (Status.RECOVERY, Status.STOPPED),
    Status.RECOVERY: (Status.DISCHARGED, Status.STOPPED),
    Status.DISCHARGED: (),
    Status.STOPPED: (),
}


class SessionError(Exception):
    """A domain error a nurse can read."""


class SessionInputError(SessionError):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class SessionConflict(SessionError):
    def __init__(self, current: TreatmentSession) -> None:
        super().__init__(
            f"A colleague changed this session (now {current.get_status_display()}, version {current.version}) "
            "while you were working. Nothing of yours was saved; reload and check before trying again."
        )
        self.current = current


class SessionNotFound(SessionError):
    pass


# --- reading the session ------------------------------------------------------------------------------


def treatment_of(session: TreatmentSession) -> vital_rules.Treatment:
    if session.drug == "esketamine":
        return vital_rules.Treatment.ESKETAMINE_NASAL
    if session.route == "iv":
        return vital_rules.Treatment.KETAMINE_IV
    return vital_rules.Treatment.KETAMINE_OTHER


def visible_sessions(user: User) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(
        organization_id=user.organization_id, patient__in=patients.visible_patients(user)
    )


def get_session(
    *,
    user: User,
    session_id: Any,
    request: HttpRequest | None = None,
    purpose: str = "view",
    audited: bool = True,
) -> TreatmentSession:
    try:
        key = uuid.UUID(str(session_id))
    except ValueError:
        raise SessionNotFound("No such session.") from None
    session = visible_sessions(user).select_related("patient", "site", "chair").filter(pk=key).first()
    if session is None:
        raise SessionNotFound("No such session.")
    if audited:
        audit.record(
            user=user,
            action=Action.QUERY,
            category=CATEGORY,
            patient=session.patient,
            object_type="TreatmentSession",
            object_id=session.pk,
            request=request,
            detail=purpose,
        )
    return session


def as_reading(obs: Observation) -> vital_rules.VitalReading:
    return vital_rules.VitalReading(
        taken_at=obs.observed_at,
        sbp_mmhg=obs.sbp_mmhg,
        dbp_mmhg=obs.dbp_mmhg,
        hr_bpm=obs.hr_bpm,
        spo2_pct=obs.spo2_pct,
        rr_per_min=obs.rr_per_min,
        temp_c=float(obs.temp_c) if obs.temp_c is not None else None,
        moaas=obs.moaas,
        cadss_total=obs.cadss_total,
    )


def baseline_reading(session: TreatmentSession) -> vital_rules.VitalReading | None:
    """The last reading before the first dose (or the latest one while not yet dosed)."""
    qs = session.observations.all()
    if session.dose_started_at is not None:
        qs = qs.filter(observed_at__lte=session.dose_started_at)
    last = qs.order_by("-observed_at", "-pk").first()
    return as_reading(last) if last else None


def cadence_for(session: TreatmentSession) -> vital_rules.Cadence | None:
    try:
        return vital_rules.default_cadence(treatment_of(session))
    except ValueError:
        return None


def next_due(session: TreatmentSession, now: datetime | None = None) -> vital_rules.DueReading | None:
    cadence = cadence_for(session)
    if cadence is None or session.status in (Status.DISCHARGED, Status.STOPPED, Status.SCHEDULED):
        return None
    times = list(session.observations.values_list("observed_at", flat=True))
    return vital_rules.next_reading_due(
        cadence=cadence,
        reading_times=times,
        now=now or timezone.now(),
        dose_started_at=session.dose_started_at,
        infusion_ended_at=session.dosing_ended_at if session.route == "iv" else None,
        discharged_at=session.discharged_at,
    )


# --- lifecycle ----------------------------------------------------------------------------------------


def schedule_session(
    *,
    user: User,
    patient: Patient,
    protocol_id: str,
    scheduled_at: datetime,
    planned_dose_mg: Any,
    chair: Chair | None = None,
    planned_session_id: Any = None,
    request: HttpRequest | None = None,
) -> TreatmentSession:
    errors: dict[str, str] = {}
    try:
        protocol = get_protocol(protocol_id)
    except KeyError:
        errors["protocol_id"] = f"{protocol_id!r} is not a protocol"
        protocol = None
    dose = _decimal(planned_dose_mg, "planned_dose_mg", errors, low=Decimal("0.1"), high=Decimal("1000"))
    if chair is not None and (
        chair.organization_id != patient.organization_id or chair.site_id != patient.site_id
    ):
        errors["chair"] = "is not a chair at the patient's site"
    if errors or protocol is None:
        raise SessionInputError(errors)
    session = TreatmentSession.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        site=patient.site,
        chair=chair,
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        drug=protocol.drug.value,
        route="intranasal" if protocol.route.value == "intranasal" else protocol.route.value,
        planned_dose_mg=dose,
        planned_session_id=planned_session_id,
        scheduled_at=scheduled_at,
        created_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="TreatmentSession",
        object_id=session.pk,
        after={"protocol": protocol.id, "scheduled_at": scheduled_at.isoformat(), "dose_mg": str(dose)},
        request=request,
    )
    return session


def _bump(session: TreatmentSession, expected_version: int | None, **fields: Any) -> None:
    """Write ``fields`` only if nobody changed the session since ``expected_version`` (optimistic lock)."""
    version = session.version if expected_version is None else expected_version
    updated = TreatmentSession.objects.filter(pk=session.pk, version=version).update(
        version=version + 1, **fields
    )
    if updated != 1:
        raise SessionConflict(TreatmentSession.objects.get(pk=session.pk))
    for name, value in fields.items():
        setattr(session, name, value)
    session.version = version + 1


def transition(
    *,
    user: User,
    session: TreatmentSession,
    to: str,
    expected_version: int | None = None,
    reason: str = "",
    request: HttpRequest | None = None,
    at: datetime | None = None,
) -> TreatmentSession:
    now = at or timezone.now()
    if to not in TRANSITIONS.get(session.status, ()):
        raise SessionError(
            f"A session that is {session.get_status_display().lower()} cannot move to "
            f"{Status(to).label.lower()}."
        )
    if to == Status.STOPPED and len(reason.strip()) < 5:
        raise SessionInputError({"reason": "say why the session is stopped (at least 5 characters)"})
    if to == Status.DOSING and not latest_gate_open(session):
        raise SessionError(
            "Dosing cannot start: the pre-dose gate is not open (every item must pass or be "
            "overridden by a prescriber with a reason)."
        )
    if to == Status.DISCHARGED:
        raise SessionError("Use the discharge checklist to discharge the patient.")
    previous = session.status
    fields: dict[str, Any] = {"status": to, "status_changed_at": now}
    if to == Status.STOPPED:
        fields["stop_reason"] = reason.strip()
    if to == Status.MONITORING and session.dosing_ended_at is None:
        fields["dosing_ended_at"] = now
    _bump(session, expected_version, **fields)
    SessionEvent.objects.create(
        organization_id=session.organization_id,
        session=session,
        from_status=previous,
        to_status=to,
        at=now,
        by=user,
        reason=reason.strip(),
    )
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=session.patient,
        object_type="TreatmentSession",
        object_id=session.pk,
        before={"status": previous},
        after={"status": to, "reason": reason.strip()} if reason else {"status": to},
        request=request,
    )
    return session


# --- consent and the pre-dose gate ---------------------------------------------------------------------


def record_consent(
    *,
    user: User,
    patient: Patient,
    drug: str,
    signed_on: date,
    expires_on: date | None = None,
    request: HttpRequest | None = None,
) -> Consent:
    errors = {}
    if signed_on > timezone.localdate():
        errors["signed_on"] = "is in the future"
    if expires_on is not None and expires_on <= signed_on:
        errors["expires_on"] = "must be after the signing date"
    if errors:
        raise SessionInputError(errors)
    consent = Consent.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        drug=drug,
        signed_on=signed_on,
        expires_on=expires_on,
        recorded_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category="consent",
        patient=patient,
        object_type="Consent",
        object_id=consent.pk,
        after={"drug": drug, "signed_on": signed_on.isoformat()},
        request=request,
    )
    return consent


def current_consent(patient: Patient, drug: str, today: date) -> Consent | None:
    return (
        Consent.objects.filter(patient=patient, drug=drug, signed_on__lte=today, withdrawn_on__isnull=True)
        .exclude(expires_on__lt=today)
        .order_by("-signed_on")
        .first()
    )


# How long a signed screening stays valid is not in the reference: a configurable default, shown as such.
SCREENING_VALID_DAYS_DEFAULT = 180


def screening_signed_on(session: TreatmentSession) -> date | None:
    """The date of the patient's signed, current screening for this drug (assessment app), if any."""
    try:
        from ketaclinic.assessment import services as assessment
    except ImportError:  # pragma: no cover - the assessment app is always installed
        return None
    finder = getattr(assessment, "valid_screening_signed_on", None)
    if finder is None:
        return None
    result = finder(patient=session.patient, drug=session.drug)
    return result if isinstance(result, date) else None


def gate_requirements(session: TreatmentSession) -> gate_rules.GateRequirements:
    protocol = get_protocol(session.protocol_id)
    required_scales = tuple(
        s.scale.replace("_", "") for s in protocol.scales if any(t.value == "every_session" for t in s.timing)
    )
    pregnancy = (
        gate_rules.Requirement(value=None, source=gate_rules.PREGNANCY_SOURCE, confirmed=True)
        if protocol.pregnancy_test_required
        else None
    )
    if session.drug == "esketamine":
        return gate_rules.esketamine_gate_requirements(
            screening_max_age_days=SCREENING_VALID_DAYS_DEFAULT,
            required_scales=required_scales,
            pregnancy_test=pregnancy,
        )
    return gate_rules.GateRequirements(
        screening_max_age_days=SCREENING_VALID_DAYS_DEFAULT,
        pregnancy_test=pregnancy,
        required_scales=required_scales,
    )


GATE_ANSWER_FIELDS = (
    "rems_patient_enrolled",
    "rems_setting_certified",
    "hours_since_food",
    "minutes_since_liquids",
    "nasal_steroid_or_decongestant_today",
    "minutes_since_nasal_steroid_or_decongestant",
    "escort_confirmed",
    "ride_home_confirmed",
    "pregnancy_test",
    "pregnancy_test_on",
)


def _session_scales(session: TreatmentSession, required: Sequence[str]) -> list[gate_rules.ScaleStatus]:
    from ketaclinic.clinical.instruments import INSTRUMENTS
    from ketaclinic.measures.models import ScaleAdministration

    day_start = timezone.now() - timedelta(hours=36)
    statuses = []
    for code in required:
        if code not in INSTRUMENTS:
            continue
        latest = (
            ScaleAdministration.objects.filter(
                patient=session.patient, instrument=code, administered_at__gte=day_start
            )
            .order_by("-administered_at")
            .first()
        )
        flagged = bool(latest and latest.suicidality)
        statuses.append(
            gate_rules.ScaleStatus(
                code=code,
                name=INSTRUMENTS[code].name,
                completed=latest is not None,
                flagged=flagged,
                flag_reason="; ".join(f["rule"] for f in latest.flags) if latest and flagged else "",
            )
        )
    return statuses


def evaluate_gate(
    *, user: User, session: TreatmentSession, answers: dict[str, Any], request: HttpRequest | None = None
) -> GateCheck:
    """Evaluate every gate item from the answers given now plus what the record holds; store the verdict."""
    if session.status not in (Status.CHECKED_IN, Status.PRE_DOSE):
        raise SessionError("The pre-dose gate is checked after check-in and before dosing.")
    clean = {k: v for k, v in answers.items() if k in GATE_ANSWER_FIELDS}
    if clean.get("pregnancy_test") and clean["pregnancy_test"] not in {
        p.value for p in gate_rules.PregnancyTest
    }:
        choices = ", ".join(p.value for p in gate_rules.PregnancyTest)
        raise SessionInputError({"pregnancy_test": f"{clean['pregnancy_test']!r} is not one of {choices}"})
    today = timezone.localdate()
    consent = current_consent(session.patient, session.drug, today)
    requirements = gate_requirements(session)
    pregnancy = clean.get("pregnancy_test")
    context = gate_rules.GateContext(
        today=today,
        consent_current=consent is not None,
        consent_signed_on=consent.signed_on if consent else None,
        screening_signed_on=screening_signed_on(session),
        rems_patient_enrolled=clean.get("rems_patient_enrolled"),
        rems_setting_certified=clean.get("rems_setting_certified"),
        hours_since_food=clean.get("hours_since_food"),
        minutes_since_liquids=clean.get("minutes_since_liquids"),
        nasal_steroid_or_decongestant_today=clean.get("nasal_steroid_or_decongestant_today"),
        minutes_since_nasal_steroid_or_decongestant=clean.get("minutes_since_nasal_steroid_or_decongestant"),
        escort_confirmed=bool(clean.get("escort_confirmed")),
        ride_home_confirmed=bool(clean.get("ride_home_confirmed")),
        pregnancy_test=gate_rules.PregnancyTest(pregnancy) if pregnancy else None,
        pregnancy_test_on=clean.get("pregnancy_test_on"),
        baseline=baseline_reading(session),
        scales=_session_scales(session, requirements.required_scales),
    )
    items = gate_rules.evaluate_gate(context=context, requirements=requirements)
    previous = session.gate_checks.first()
    overrides = list(previous.overrides) if previous else []
    passed = gate_rules.gate_open(items=items, overrides=_overrides(overrides))
    check = GateCheck.objects.create(
        organization_id=session.organization_id,
        session=session,
        answers={k: (v.isoformat() if isinstance(v, date) else v) for k, v in clean.items()},
        items=[_item_dict(i) for i in items],
        overrides=overrides,
        passed=passed,
        evaluated_at=timezone.now(),
        by=user,
    )
    if session.status == Status.CHECKED_IN:
        transition(user=user, session=session, to=Status.PRE_DOSE, request=request)
    audit.record(
        user=user,
        action=Action.ADD,
        category="pre-dose-gate",
        patient=session.patient,
        object_type="GateCheck",
        object_id=check.pk,
        after={"passed": passed, "blocking": [i["key"] for i in check.items if i["status"] != "pass"]},
        request=request,
    )
    return check


def _item_dict(item: gate_rules.GateItem) -> dict[str, Any]:
    return {
        "key": str(item.key),
        "title": item.title,
        "status": str(item.status),
        "reason": item.reason,
        "source": item.source,
        "confirmed": item.confirmed,
        "overridable": item.overridable,
    }


def _overrides(rows: Sequence[dict[str, Any]]) -> list[gate_rules.GateOverride]:
    return [
        gate_rules.GateOverride(item_key=o["item_key"], reason=o["reason"], prescriber=o["prescriber"])
        for o in rows
    ]


def latest_gate_open(session: TreatmentSession) -> bool:
    check = session.gate_checks.first()
    return bool(check and check.passed)


def override_gate_item(
    *, user: User, session: TreatmentSession, item_key: str, reason: str, request: HttpRequest | None = None
) -> GateCheck:
    """A prescriber's recorded decision to proceed despite one gate item (audited with the reason)."""
    if user.role != PRESCRIBER:
        raise SessionError("Only a prescriber can override a pre-dose gate item.")
    check = session.gate_checks.first()
    if check is None:
        raise SessionError("Check the gate first.")
    item = next((i for i in check.items if i["key"] == item_key), None)
    if item is None:
        raise SessionInputError({"item_key": f"{item_key!r} is not a gate item of this session"})
    if not item["overridable"]:
        raise SessionError(f"{item['title']} cannot be overridden: {item['reason']}")
    if len(reason.strip()) < 10:
        raise SessionInputError(
            {"reason": "write the clinical reason for proceeding (at least 10 characters)"}
        )
    overrides = [o for o in check.overrides if o["item_key"] != item_key]
    overrides.append(
        {
            "item_key": item_key,
            "reason": reason.strip(),
            "prescriber": user.display_name,
            "prescriber_id": user.pk,
            "at": timezone.now().isoformat(),
        }
    )
    items = [
        gate_rules.GateItem(
            key=i["key"],
            title=i["title"],
            status=gate_rules.GateStatus(i["status"]),
            reason=i["reason"],
            source=i["source"],
            confirmed=i["confirmed"],
            overridable=i["overridable"],
        )
        for i in check.items
    ]
    passed = gate_rules.gate_open(items=items, overrides=_overrides(overrides))
    new = GateCheck.objects.create(
        organization_id=session.organization_id,
        session=session,
        answers=check.answers,
        items=check.items,
        overrides=overrides,
        passed=passed,
        evaluated_at=timezone.now(),
        by=user,
    )
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="pre-dose-gate-override",
        patient=session.patient,
        object_type="GateCheck",
        object_id=new.pk,
        before={"item": item_key, "status": item["status"]},
        after={"item": item_key, "override_reason": reason.strip(), "gate_open": passed},
        request=request,
    )
    return new


# --- administrations ----------------------------------------------------------------------------------


def _decimal(value: Any, name: str, errors: dict[str, str], *, low: Decimal, high: Decimal) -> Decimal | None:
    if value in (None, ""):
        errors[name] = "is required"
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors[name] = f"{value!r} is not a number"
        return None
    if not number.is_finite() or not low <= number <= high:
        errors[name] = f"{value} is outside {low}–{high}"
        return None
    return number


def record_administration(
    *,
    user: User,
    session: TreatmentSession,
    kind: str,
    at: datetime | None = None,
    product: str = "",
    concentration_mg_ml: Any = None,
    lot: str = "",
    expiry: date | None = None,
    dose_mg: Any = None,
    rate_ml_per_h: Any = None,
    rate_mg_per_h: Any = None,
    verified_by: User | None = None,
    note: str = "",
    expected_version: int | None = None,
    request: HttpRequest | None = None,
) -> Administration:
    """One dose event. The first one starts dosing (the gate must be open); the last device or the
    infusion stop moves the session to monitoring."""
    now = at or timezone.now()
    errors: dict[str, str] = {}
    allowed = {
        "esketamine": {AdministrationKind.NASAL_DEVICE},
        "iv": {
            AdministrationKind.INFUSION_START,
            AdministrationKind.RATE_CHANGE,
            AdministrationKind.INFUSION_STOP,
        },
        "im": {AdministrationKind.INJECTION},
        "sublingual": {AdministrationKind.SUBLINGUAL},
    }["esketamine" if session.drug == "esketamine" else session.route]
    if kind not in allowed:
        errors["kind"] = f"{kind!r} does not fit a {session.get_route_display().lower()} session"
    if session.status not in (Status.PRE_DOSE, Status.DOSING):
        errors["session"] = (
            f"doses are recorded during dosing (the session is {session.get_status_display().lower()})"
        )
    elif session.status == Status.PRE_DOSE and not latest_gate_open(session):
        errors["session"] = "the pre-dose gate is not open"
    if now > timezone.now() + timedelta(minutes=2):
        errors["at"] = "is in the future"
    previous = list(session.administrations.all())
    starts_product = kind in (
        AdministrationKind.NASAL_DEVICE,
        AdministrationKind.INFUSION_START,
        AdministrationKind.INJECTION,
        AdministrationKind.SUBLINGUAL,
    )
    if starts_product:
        if not product.strip():
            errors["product"] = "is required"
        if not lot.strip():
            errors["lot"] = "is required"
        if expiry is None:
            errors["expiry"] = "is required"
        elif expiry < now.date():
            errors["expiry"] = f"{expiry.isoformat()}: this product has expired"
    dose = conc = rate_ml = rate_mg = None
    warning = ""
    device_number = None
    if kind == AdministrationKind.NASAL_DEVICE:
        dose = DEVICE_MG
        devices = [a for a in previous if a.kind == AdministrationKind.NASAL_DEVICE]
        device_number = len(devices) + 1
        planned_devices = int(session.planned_dose_mg // DEVICE_MG)
        if device_number > planned_devices:
            errors["kind"] = f"all {planned_devices} planned devices ({session.planned_dose_mg} mg) are given"
        if devices and now - devices[-1].at < DEVICE_SPACING:
            gap = (now - devices[-1].at).total_seconds() / 60
            warning = (
                f"Device {device_number} given {gap:.1f} min after the previous one; the label asks for a "
                "5-minute rest between devices (clinical.md §2.1)"
            )
    if kind in (
        AdministrationKind.INFUSION_START,
        AdministrationKind.INJECTION,
        AdministrationKind.SUBLINGUAL,
    ):
        dose = _decimal(dose_mg, "dose_mg", errors, low=Decimal("0.1"), high=Decimal("1000"))
        if kind != AdministrationKind.SUBLINGUAL:
            conc = _decimal(
                concentration_mg_ml, "concentration_mg_ml", errors, low=Decimal("1"), high=Decimal("100")
            )
    if kind in (AdministrationKind.INFUSION_START, AdministrationKind.RATE_CHANGE):
        rate_ml = _decimal(rate_ml_per_h, "rate_ml_per_h", errors, low=Decimal("0.1"), high=Decimal("2000"))
        if rate_mg_per_h not in (None, ""):
            rate_mg = _decimal(rate_mg_per_h, "rate_mg_per_h", errors, low=Decimal("0"), high=Decimal("1000"))
    if kind in (AdministrationKind.RATE_CHANGE, AdministrationKind.INFUSION_STOP):
        if not any(a.kind == AdministrationKind.INFUSION_START for a in previous):
            errors["kind"] = "the infusion has not been started"
        if any(a.kind == AdministrationKind.INFUSION_STOP for a in previous):
            errors["kind"] = "the infusion is already stopped"
    if kind in (AdministrationKind.INFUSION_START, AdministrationKind.INJECTION):
        # A second person verifies IV and IM doses (issue: dose calculator; protocol second_person_check).
        if verified_by is None:
            errors["verified_by"] = "a second person must verify an IV or IM dose"
        elif verified_by.pk == user.pk:
            errors["verified_by"] = "the verifier must be a different person from the one giving the dose"
        elif verified_by.organization_id != user.organization_id or not verified_by.is_active:
            errors["verified_by"] = "is not an active colleague"
    if errors:
        raise SessionInputError(errors)
    last = previous[-1] if previous else None
    administration = Administration.objects.create(
        organization_id=session.organization_id,
        session=session,
        kind=kind,
        at=now,
        drug=session.drug,
        product=product.strip() or (last.product if last else ""),
        concentration_mg_ml=conc or (last.concentration_mg_ml if last else None),
        lot=lot.strip() or (last.lot if last else ""),
        expiry=expiry or (last.expiry if last else now.date()),
        dose_mg=dose,
        rate_ml_per_h=rate_ml,
        rate_mg_per_h=rate_mg,
        device_number=device_number,
        given_by=user,
        verified_by=verified_by,
        warning=warning,
        note=note[:300],
    )
    fields: dict[str, Any] = {}
    if session.status == Status.PRE_DOSE:
        transition(
            user=user,
            session=session,
            to=Status.DOSING,
            expected_version=expected_version,
            request=request,
            at=now,
        )
        expected_version = None
    if session.dose_started_at is None:
        fields["dose_started_at"] = now
    finished = (
        kind == AdministrationKind.NASAL_DEVICE and device_number == int(session.planned_dose_mg // DEVICE_MG)
    ) or kind in (
        AdministrationKind.INFUSION_STOP,
        AdministrationKind.INJECTION,
        AdministrationKind.SUBLINGUAL,
    )
    if fields:
        _bump(session, expected_version, **fields)
        expected_version = None
    if finished:
        transition(
            user=user,
            session=session,
            to=Status.MONITORING,
            expected_version=expected_version,
            request=request,
            at=now,
        )
    audit.record(
        user=user,
        action=Action.ADD,
        category="administration",
        patient=session.patient,
        object_type="Administration",
        object_id=administration.pk,
        request=request,
        after={
            "kind": kind,
            "at": now.isoformat(),
            "dose_mg": str(dose) if dose is not None else None,
            "rate_ml_per_h": str(rate_ml) if rate_ml is not None else None,
            "lot": administration.lot,
            "verified_by": verified_by.username if verified_by else None,
            "warning": warning,
        },
    )
    return administration


# --- observations and alerts --------------------------------------------------------------------------

OBS_FIELDS = ("sbp_mmhg", "dbp_mmhg", "hr_bpm", "spo2_pct", "rr_per_min", "temp_c", "moaas", "cadss_total")


def record_observation(
    *,
    user: User,
    session: TreatmentSession,
    reading: vital_rules.VitalReading,
    mental_status: str = "",
    source: str = "manual",
    batch: IngestBatch | None = None,
    request: HttpRequest | None = None,
    client: str = "",
) -> Observation:
    if session.status in (Status.SCHEDULED, Status.DISCHARGED, Status.STOPPED):
        raise SessionInputError(
            {
                "session": f"readings are taken while the patient is here (the session is "
                f"{session.get_status_display().lower()})"
            }
        )
    try:
        vital_rules.validate_reading(reading, required=frozenset())
    except vital_rules.VitalsValidationError as exc:
        raise SessionInputError(dict(exc.errors)) from None
    if reading.taken_at > timezone.now() + timedelta(minutes=2):
        raise SessionInputError({"observed_at": "is in the future"})
    obs = Observation.objects.create(
        organization_id=session.organization_id,
        session=session,
        observed_at=reading.taken_at,
        sbp_mmhg=reading.sbp_mmhg,
        dbp_mmhg=reading.dbp_mmhg,
        hr_bpm=reading.hr_bpm,
        spo2_pct=reading.spo2_pct,
        rr_per_min=reading.rr_per_min,
        temp_c=Decimal(str(reading.temp_c)) if reading.temp_c is not None else None,
        moaas=reading.moaas,
        cadss_total=reading.cadss_total,
        mental_status=mental_status[:500],
        source=source,
        entered_by=user,
        batch=batch,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category="vital-signs",
        patient=session.patient,
        object_type="Observation",
        object_id=obs.pk,
        request=request,
        client=client,
        after={f: getattr(reading, f) for f in OBS_FIELDS if getattr(reading, f) is not None}
        | {"at": reading.taken_at.isoformat(), "source": source},
    )
    evaluate_alerts(session=session, observation=obs)
    return obs


def record_line(
    *,
    user: User,
    session: TreatmentSession,
    line: str,
    at: datetime | None = None,
    mental_status: str = "",
    request: HttpRequest | None = None,
) -> Observation:
    """The fast chairside entry: one line such as ``142/88 76 97 14`` (BP HR SpO2 RR), labelled extras allowed."""
    when = at or timezone.now()
    try:
        reading = vital_rules.parse_chairside_line(line, taken_at=when, required=frozenset())
    except vital_rules.VitalsValidationError as exc:
        raise SessionInputError(dict(exc.errors)) from None
    if all(getattr(reading, f) is None for f in OBS_FIELDS) and not mental_status.strip():
        raise SessionInputError({"line": "type a reading, e.g. 142/88 76 97 14 (BP HR SpO2 RR)"})
    return record_observation(
        user=user, session=session, reading=reading, mental_status=mental_status, request=request
    )


def ingest_batch(
    *,
    user: User,
    session: TreatmentSession,
    key: str,
    readings: list[vital_rules.VitalReading],
    request: HttpRequest | None = None,
    source: str = "api",
) -> tuple[IngestBatch, bool]:
    """Store a batch of readings once per idempotency key. Returns (batch, created)."""
    if not key.strip() or len(key) > 100:
        raise SessionInputError({"idempotency_key": "is required (1–100 characters)"})
    existing = IngestBatch.objects.filter(organization_id=session.organization_id, key=key).first()
    if existing is not None:
        if existing.session_id != session.pk:
            raise SessionInputError({"idempotency_key": "was already used for another session"})
        return existing, False
    errors: dict[str, str] = {}
    for index, reading in enumerate(readings):
        for field, reason in vital_rules.reading_errors(reading, required=frozenset()).items():
            errors[f"readings.{index}.{field}"] = reason
    if not readings:
        errors["readings"] = "send at least one reading"
    if errors:
        raise SessionInputError(errors)
    try:
        with transaction.atomic():
            batch = IngestBatch.objects.create(
                organization_id=session.organization_id, key=key, session=session, count=len(readings)
            )
    except IntegrityError:  # a concurrent resend won the race: it stored the readings
        return IngestBatch.objects.get(organization_id=session.organization_id, key=key), False
    for reading in sorted(readings, key=lambda r: r.taken_at):
        record_observation(
            user=user,
            session=session,
            reading=reading,
            source=source,
            batch=batch,
            request=request,
            client="api",
        )
    return batch, True


def alert_rules_for(session: TreatmentSession) -> dict[Any, Any]:
    """The reference defaults, then the site's policy (each override names its source)."""
    from ketaclinic.accounts.sites import rule_overrides

    return alert_rules.resolve_alert_rules(site=rule_overrides(session.site))


def evaluate_alerts(*, session: TreatmentSession, observation: Observation) -> list[SessionAlert]:
    """Run the pure rules on a new reading; keep one open alert per dedup key."""
    reading = as_reading(observation)
    found = alert_rules.evaluate_reading(
        reading=reading,
        baseline=baseline_reading(session) if session.dose_started_at else None,
        dose_started_at=session.dose_started_at,
        session_key=str(session.pk),
        rules=alert_rules_for(session),
    )
    return [_store_alert(session, a) for a in found]


def _store_alert(session: TreatmentSession, found: alert_rules.Alert) -> SessionAlert:
    existing = SessionAlert.objects.filter(session=session, dedup_key=found.dedup_key).first()
    if existing is not None and existing.acknowledged_at is None:
        return existing
    key = found.dedup_key if existing is None else f"{found.dedup_key}@{found.observed_at.isoformat()}"
    alert, _ = SessionAlert.objects.get_or_create(
        session=session,
        dedup_key=key,
        defaults={
            "organization_id": session.organization_id,
            "code": str(found.code),
            "severity": str(found.severity),
            "message": found.message[:400],
            "source": found.source[:300],
            "confirmed": found.confirmed,
            "raised_at": found.observed_at,
        },
    )
    return alert


def check_overdue(session: TreatmentSession, now: datetime | None = None) -> SessionAlert | None:
    now = now or timezone.now()
    due = next_due(session, now)
    if due is None or not vital_rules.overdue(due=due, now=now):
        return None
    found = alert_rules.overdue_alert(
        due=due, now=now, session_key=str(session.pk), rules=alert_rules_for(session)
    )
    return _store_alert(session, found) if found else None


def acknowledge_alert(
    *, user: User, alert_id: int, note: str, request: HttpRequest | None = None
) -> SessionAlert:
    alert = (
        SessionAlert.objects.filter(pk=alert_id, organization_id=user.organization_id)
        .select_related("session__patient")
        .first()
    )
    if alert is None or not patients.visible_patients(user).filter(pk=alert.session.patient_id).exists():
        raise SessionNotFound("No such alert.")
    if alert.acknowledged_at is not None:
        raise SessionError("This alert was already acknowledged.")
    if len(note.strip()) < 3:
        raise SessionInputError(
            {"note": "write what you did (e.g. 'repeat BP in 5 min, prescriber informed')"}
        )
    alert.acknowledged_by, alert.acknowledged_at, alert.note = user, timezone.now(), note.strip()
    alert.save(update_fields=["acknowledged_by", "acknowledged_at", "note"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="session-alert",
        patient=alert.session.patient,
        object_type="SessionAlert",
        object_id=alert.pk,
        after={"acknowledged": True, "note": note.strip()},
        request=request,
    )
    return alert


# Minutes before an unacknowledged alert goes to the prescriber: not in the reference, a configurable default.
ESCALATE_AFTER = timedelta(minutes=5)


def escalate_unacknowledged(now: datetime | None = None) -> int:
    """Notify prescribers of alerts left unacknowledged past ESCALATE_AFTER (run by the worker every minute)."""
    now = now or timezone.now()
    count = 0
    pending = SessionAlert.objects.filter(
        acknowledged_at__isnull=True, escalated_at__isnull=True, session__status__in=ACTIVE_STATUSES
    ).select_related("session__patient", "session__site")
    for alert in pending:
        if not alert_rules.needs_escalation(
            alert_raised_at=alert.raised_at, acknowledged_at=None, now=now, escalate_after=ESCALATE_AFTER
        ):
            continue
        patient = alert.session.patient
        recipients = [patient.prescriber] if patient.prescriber_id else []
        if not recipients:
            recipients = list(
                User.objects.filter(
                    organization_id=alert.organization_id,
                    role=PRESCRIBER,
                    is_active=True,
                    sites=alert.session.site,
                )
            )
        for person in recipients:
            Notification.objects.create(
                organization_id=alert.organization_id,
                recipient=person,
                kind="session-alert",
                message=f"Unacknowledged {alert.severity} alert at {alert.session.site.name}: {alert.message}"[
                    :400
                ],
                link=f"/sessions/{alert.session_id}/",
            )
        alert.escalated_at = now
        alert.save(update_fields=["escalated_at"])
        count += 1
    return count


# --- emergency checklists and adverse events ----------------------------------------------------------


def start_checklist(
    *, user: User, session: TreatmentSession, code: str, request: HttpRequest | None = None
) -> ChecklistRun:
    checklist = next((c for key, c in alert_rules.EMERGENCY_CHECKLISTS.items() if str(key) == code), None)
    if checklist is None:
        raise SessionInputError({"code": f"{code!r} is not an emergency checklist"})
    run = ChecklistRun.objects.create(
        organization_id=session.organization_id,
        session=session,
        code=code,
        title=checklist.title,
        steps=[
            {"text": s.text, "source": s.source, "confirmed": s.confirmed, "done_at": None, "by": None}
            for s in checklist.steps
        ],
        started_at=timezone.now(),
        started_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category="emergency-checklist",
        patient=session.patient,
        object_type="ChecklistRun",
        object_id=run.pk,
        after={"checklist": code},
        request=request,
    )
    return run


def complete_step(
    *, user: User, run: ChecklistRun, index: int, request: HttpRequest | None = None
) -> ChecklistRun:
    if not 0 <= index < len(run.steps):
        raise SessionInputError({"step": "no such step"})
    if run.steps[index]["done_at"]:
        raise SessionError("That step is already recorded.")
    steps = list(run.steps)
    steps[index] = steps[index] | {"done_at": timezone.now().isoformat(), "by": user.display_name}
    run.steps = steps
    run.save(update_fields=["steps"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="emergency-checklist",
        patient=run.session.patient,
        object_type="ChecklistRun",
        object_id=run.pk,
        after={"step": index + 1, "text": steps[index]["text"]},
        request=request,
    )
    return run


AE_SEVERITIES = ("mild", "moderate", "severe")
AE_OUTCOMES = ("resolved", "resolving", "ongoing", "referred", "unknown")


def record_adverse_event(
    *,
    user: User,
    session: TreatmentSession,
    term: str,
    severity: str,
    serious: bool,
    onset_at: datetime | None,
    action_taken: str,
    outcome: str,
    description: str = "",
    request: HttpRequest | None = None,
) -> AdverseEvent:
    errors: dict[str, str] = {}
    known = {r.term.lower() for r in LABEL_ADVERSE_REACTIONS}
    if not term.strip():
        errors["term"] = "choose a label term or write the event"
    elif term.strip().lower() not in known and not description.strip():
        errors["description"] = "describe an event that is not one of the label's terms"
    if severity not in AE_SEVERITIES:
        errors["severity"] = f"choose {', '.join(AE_SEVERITIES)}"
    if outcome not in AE_OUTCOMES:
        errors["outcome"] = f"choose {', '.join(AE_OUTCOMES)}"
    when = onset_at or timezone.now()
    if when > timezone.now() + timedelta(minutes=2):
        errors["onset_at"] = "is in the future"
    if errors:
        raise SessionInputError(errors)
    event = AdverseEvent.objects.create(
        organization_id=session.organization_id,
        session=session,
        term=term.strip()[:80],
        description=description.strip(),
        severity=severity,
        serious=serious,
        onset_at=when,
        action_taken=action_taken.strip(),
        outcome=outcome,
        recorded_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category="adverse-event",
        patient=session.patient,
        object_type="AdverseEvent",
        object_id=event.pk,
        after={"term": event.term, "severity": severity, "serious": serious, "outcome": outcome},
        request=request,
    )
    return event


# --- discharge ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DischargeView:
    assessment: discharge_rules.DischargeAssessment
    blocking: list[discharge_rules.DischargeCriterion]


def assess_discharge(
    *,
    session: TreatmentSession,
    now: datetime | None = None,
    clinician_confirms_stable: bool,
    escort_present: bool,
    driving_advice_given: bool,
    overrides: Sequence[discharge_rules.DischargeOverride] = (),
) -> DischargeView:
    if session.dose_started_at is None:
        raise SessionError("No dose has been given in this session.")
    readings = [as_reading(o) for o in session.observations.all()]
    assessment = discharge_rules.assess_discharge(
        config=discharge_rules.default_discharge_config(treatment_of(session)),
        dose_started_at=session.dose_started_at,
        now=now or timezone.now(),
        readings=readings,
        baseline=baseline_reading(session),
        clinician_confirms_stable=clinician_confirms_stable,
        escort_present=escort_present,
        driving_advice_given=driving_advice_given,
        alert_rules=alert_rules_for(session),
    )
    blocking = discharge_rules.blocking_criteria(criteria=assessment.criteria, overrides=overrides)
    return DischargeView(assessment=assessment, blocking=blocking)


def discharge(
    *,
    user: User,
    session: TreatmentSession,
    clinician_confirms_stable: bool,
    escort_present: bool,
    driving_advice_given: bool,
    overrides: dict[str, str] | None = None,
    expected_version: int | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> DischargeRecord:
    """Discharge when every criterion is met or overridden with a reason; otherwise refuse and say why."""
    now = now or timezone.now()
    if session.status not in (Status.MONITORING, Status.RECOVERY):
        raise SessionError(f"A session that is {session.get_status_display().lower()} cannot be discharged.")
    reasons = {k: v.strip() for k, v in (overrides or {}).items() if v and v.strip()}
    known = {c.value for c in discharge_rules.Criterion}
    unknown = [k for k in reasons if k not in known]
    if unknown:
        raise SessionInputError({f"override.{k}": "is not a discharge criterion" for k in unknown})
    short = [k for k, v in reasons.items() if len(v) < 10]
    if short:
        raise SessionInputError(
            {f"override.{k}": "write the clinical reason (at least 10 characters)" for k in short}
        )
    override_rows = [
        discharge_rules.DischargeOverride(
            criterion=discharge_rules.Criterion(k), reason=v, clinician=user.display_name
        )
        for k, v in reasons.items()
    ]
    view = assess_discharge(
        session=session,
        now=now,
        clinician_confirms_stable=clinician_confirms_stable,
        escort_present=escort_present,
        driving_advice_given=driving_advice_given,
        overrides=override_rows,
    )
    if view.blocking:
        raise SessionInputError({f"criterion.{c.criterion}": c.reason for c in view.blocking})
    record = DischargeRecord.objects.create(
        organization_id=session.organization_id,
        session=session,
        criteria=[
            {
                "criterion": str(c.criterion),
                "met": c.met,
                "reason": c.reason,
                "source": c.source,
                "confirmed": c.confirmed,
            }
            for c in view.assessment.criteria
        ],
        overrides=[{"criterion": k, "reason": v, "by": user.display_name} for k, v in reasons.items()],
        escort_present=escort_present,
        driving_advice_given=driving_advice_given,
        decided_at=now,
        by=user,
    )
    previous = session.status
    _bump(
        session,
        expected_version,
        status=Status.DISCHARGED,
        status_changed_at=now,
        discharged_at=now,
        ready_at=view.assessment.ready_at,
    )
    SessionEvent.objects.create(
        organization_id=session.organization_id,
        session=session,
        from_status=previous,
        to_status=Status.DISCHARGED,
        at=now,
        by=user,
        reason="; ".join(f"override {k}: {v}" for k, v in reasons.items()),
    )
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=session.patient,
        object_type="TreatmentSession",
        object_id=session.pk,
        before={"status": previous},
        after={
            "status": "discharged",
            "overrides": reasons,
            "ready_at": view.assessment.ready_at.isoformat() if view.assessment.ready_at else None,
        },
        request=request,
    )
    return record
