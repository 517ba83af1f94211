"""Treatment-session use cases: lifecycle, consent, pre-dose gate, administrations, observations, alerts,
emergency checklists, adverse events and discharge.

The rules are the pure modules in ``ketaclinic.clinical`` (gate.py, vitals.py, alerts.py, discharge.py); this
module feeds them what the database holds, stores their verdicts with who/when/why, and audits every read
and write in the caller's transaction. Services never commit.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    ACTIVE_STATUSES,
    Observation,
    SessionEvent,
    Status,
    TreatmentSession,
)
from ketaclinic.clinical import vitals as vital_rules
from ketaclinic.clinical.body import BodyMeasurementError, BodySize, Sex, body_size
from ketaclinic.clinical.dose_check import (
    Decided,
    Decision,
    DoseFinding,
    Subject,
    check_session_dose,
    unresolved,
)
from ketaclinic.clinical.protocols import DoseRule, Protocol, UnknownProtocol
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.core.errors import DomainError
from ketaclinic.core.plausible import time_problem
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient

CATEGORY = "treatment-session"

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


class SessionError(DomainError):
    """A domain error a nurse can read: a state that does not allow the act (409)."""

    status = 409


class SessionInputError(SessionError):
    status = 422

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
    status = 404


# --- reading the session ------------------------------------------------------------------------------


def treatment_of(session: TreatmentSession) -> vital_rules.Treatment:
    """What the session gives, by drug and route (IM and sublingual have their own cadence, issue 13 point 7)."""
    return vital_rules.treatment_for(drug=session.drug, route=session.route)


def visible_sessions(user: User) -> QuerySet[TreatmentSession]:
    return TreatmentSession.objects.filter(
        organization_id=user.org_id, patient__in=patients.visible_patients(user)
    )


def open_sessions(*, user: User, request: HttpRequest | None = None) -> list[TreatmentSession]:
    """Scheduled and active treatment sessions at the user's sites, by time (the Sessions page): a list of
    patients' names, so the read is audited (one entry: how many)."""
    rows = list(
        visible_sessions(user)
        .filter(status__in=[Status.SCHEDULED, *ACTIVE_STATUSES])
        .select_related("patient", "chair", "site")
        .order_by("scheduled_at")
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        object_type="TreatmentSession",
        request=request,
        detail=f"session list: {len(rows)} scheduled or active session(s)",
    )
    return rows


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
    """The clinic's setting for this protocol, else the protocol's monitoring plan, else the route default
    (treatment/session_settings.session_cadence; every route has one, so this is never None any more)."""
    from ketaclinic.treatment.session_settings import session_cadence

    return session_cadence(
        organization_id=session.organization_id,
        protocol_key=session.protocol_id,
        protocol_version=session.protocol_version,
        treatment=treatment_of(session),
    )


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


def protocol_of(session: TreatmentSession) -> Protocol:
    """The exact protocol version the session was opened with (a built-in or the clinic's own copy)."""
    from ketaclinic.treatment.library import protocol_for

    return protocol_for(
        organization_id=session.organization_id, key=session.protocol_id, version=session.protocol_version
    )


def body_of(patient: Patient) -> BodySize | None:
    """The patient's charted weight and height (None when either is missing or implausible)."""
    if patient.weight_kg is None or patient.height_cm is None:
        return None
    sex = Sex(patient.sex) if patient.sex in ("female", "male") else None
    try:
        return body_size(weight_kg=float(patient.weight_kg), height_cm=float(patient.height_cm), sex=sex)
    except BodyMeasurementError:
        return None


def dose_rule_for(protocol: Protocol, session_number: int | None) -> DoseRule:
    """The dose rule of course session ``session_number`` (past the end of a finite course: the last
    phase's rule, so an extra session is judged by the last dose the protocol knows)."""
    number = max(1, session_number or 1)
    try:
        return protocol.dose_for_session(number)[1]
    except ValueError:
        return protocol.phases[-1].dose


def _next_session_number(patient: Patient, protocol_id: str) -> int:
    dosed = TreatmentSession.objects.filter(
        patient=patient, protocol_id=protocol_id, dose_started_at__isnull=False
    ).count()
    return dosed + 1


#: Where each dose-check subject lands on the scheduling form and the API (SessionIn).
_SCHEDULE_FIELDS: dict[Subject, str] = {
    Subject.DOSE: "planned_dose_mg",
    Subject.BODY: "weight_kg",
    Subject.BASIS: "dose_basis",
    Subject.DEVICES: "planned_dose_mg",
    Subject.RATE: "planned_dose_mg",
    Subject.CONCENTRATION: "planned_dose_mg",
    Subject.TIME: "scheduled_at",
}


def finding_errors(
    left: list[DoseFinding], fields: dict[Subject, str], *, reason_field: str, is_prescriber: bool
) -> dict[str, str]:
    """Unresolved dose-check findings as field errors a nurse can act on (422 on the API)."""
    errors: dict[str, str] = {}

    def add(name: str, text: str) -> None:
        errors[name] = f"{errors[name]} {text}" if name in errors else text

    for finding in left:
        source = f" (source: {finding.source}{'' if finding.confirmed else '; clinic default, unconfirmed'})"
        if finding.decision is Decision.PRESCRIBER_REASON:
            who = "" if is_prescriber else " Only a prescriber can decide this."
            add(reason_field, f"{finding.message}{who}{source}")
        elif finding.decision is Decision.PRESCRIBER_DECISION:
            add("prescriber", f"{finding.message} (password and authenticator code, and the reason){source}")
        elif finding.decision is Decision.REASON:
            add("late_entry_reason", finding.message)
        else:
            add(fields.get(finding.subject, finding.subject.value), f"{finding.message}{source}")
    return errors


def schedule_session(
    *,
    user: User,
    patient: Patient,
    protocol_id: str,
    scheduled_at: datetime,
    planned_dose_mg: Any,
    chair: Chair | None = None,
    planned_session_id: Any = None,
    chair_override_reason: str = "",
    dose_basis: str = "actual",
    dose_override_reason: str = "",
    dose_decided_by: User | None = None,
    session_number: int | None = None,
    request: HttpRequest | None = None,
) -> TreatmentSession:
    """Open a treatment session (from a booked course session, ``planned_session_id``, or outside a plan).

    The planned dose passes the one dose check (clinical/dose_check.py) for this patient's charted weight:
    a hard limit refuses it; outside the usual range a prescriber's reason (``dose_override_reason``) is
    needed — the scheduling prescriber's, or the plan's prescriber's (``dose_decided_by``). Outside a plan,
    a chair already held at that time (treatment/services.chair_bookings) is refused unless
    ``chair_override_reason`` says why; the override is audited with what it overlaps.

    The course rules (clinical/schedule_rules.py, through treatment/rules.py) hold on every path and no
    one decides past them: one session a day for the patient (a course session counts; the course session
    this one carries out does not), and a chair holds one patient at a time (a chair with a session under
    way that is expected to hold it past ``scheduled_at`` is refused, naming the chair, not the patient)."""
    errors: dict[str, str] = {}
    if why := time_problem(scheduled_at, born=patient.date_of_birth, planned=True):
        errors["scheduled_at"] = why
    protocol: Protocol | None = None
    try:
        protocol = protocol_of_key(patient.organization_id, protocol_id)
    except UnknownProtocol:
        errors["protocol_id"] = f"{protocol_id!r} is not a protocol"
    dose = _decimal(planned_dose_mg, "planned_dose_mg", errors, low=Decimal("0.1"), high=Decimal("1000"))
    if dose_basis not in ("actual", "ideal", "adjusted"):
        errors["dose_basis"] = "choose actual, ideal or adjusted"
    if chair is not None and (
        chair.organization_id != patient.organization_id or chair.site_id != patient.site_id
    ):
        errors["chair"] = "is not a chair at the patient's site"
    if errors or protocol is None or dose is None:
        raise SessionInputError(errors)
    number = session_number or _next_session_number(patient, protocol.id)
    verdict = check_session_dose(
        protocol=protocol,
        rule=dose_rule_for(protocol, number),
        dose_mg=float(dose),
        body=body_of(patient),
        basis=dose_basis,
    )
    decider = dose_decided_by or user
    reason = dose_override_reason.strip()
    left = unresolved(
        verdict.findings,
        Decided(prescriber_reason=reason, by_prescriber=decider.role == PRESCRIBER),
    )
    if left:
        raise SessionInputError(
            finding_errors(
                left,
                _SCHEDULE_FIELDS,
                reason_field="dose_override_reason",
                is_prescriber=decider.role == PRESCRIBER,
            )
        )
    needed_reason = any(f.decision is Decision.PRESCRIBER_REASON for f in verdict.findings)
    from ketaclinic.treatment import rules as course_rules

    rule_errors: dict[str, str] = {}
    day = course_rules.same_day_problem_for(patient, scheduled_at, exclude_plan_session=planned_session_id)
    if day:
        rule_errors["scheduled_at"] = day
    if chair is not None and (occupied := course_rules.chair_problem_for(chair, scheduled_at)):
        rule_errors["chair"] = occupied
    if rule_errors:
        raise SessionInputError(rule_errors)
    clashes: list[str] = []
    if chair is not None and planned_session_id is None:
        from ketaclinic.treatment.services import chair_bookings

        clashes = chair_bookings(
            chair, scheduled_at, scheduled_at + timedelta(minutes=protocol.chair_minutes())
        )
        if clashes and len(chair_override_reason.strip()) < 3:
            raise SessionInputError(
                {
                    "chair_override_reason": f"{chair.label} is taken then ({'; '.join(clashes)}): choose "
                    "another chair or time, or give the reason to use it anyway"
                }
            )
    session = TreatmentSession.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        site=patient.site,
        chair=chair,
        protocol_id=protocol.id,
        protocol_version=protocol.version,
        drug=protocol.drug.value,
        route=protocol.route.value,
        planned_dose_mg=dose,
        session_number=number,
        dose_basis=dose_basis,
        dose_override_reason=reason if needed_reason else "",
        dose_decided_by=decider if needed_reason else None,
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
        after={
            "protocol": f"{protocol.id}@{protocol.version}",
            "scheduled_at": scheduled_at.isoformat(),
            "dose_mg": str(dose),
            "session_number": number,
            "dose_basis": dose_basis,
        }
        | ({"dose_override_reason": reason, "decided_by": decider.username} if needed_reason else {})
        | (
            {"chair_override_reason": chair_override_reason.strip(), "chair_taken_by": clashes}
            if clashes
            else {}
        ),
        request=request,
    )
    return session


def protocol_of_key(organization_id: int, key: str) -> Protocol:
    from ketaclinic.treatment.library import protocol_for

    return protocol_for(organization_id=organization_id, key=key)


def _bump(session: TreatmentSession, expected_version: int | None, **fields: Any) -> None:
    """Write ``fields`` only if nobody changed the session since ``expected_version`` (optimistic lock)."""
    version = session.version if expected_version is None else expected_version
    fields.setdefault("updated_at", timezone.now())
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
    if to not in Status.values:
        raise SessionInputError(
            {"to": f"{to!r} is not a session state: choose one of {', '.join(Status.values)}"}
        )
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
    if to == Status.CHECKED_IN and session.chair is not None:
        from ketaclinic.treatment.rules import chair_problem_for

        occupied = chair_problem_for(session.chair, now, now=now, exclude_session=session.pk)
        if occupied:
            raise SessionError(f"Not checked in: {occupied}")
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


# The use cases live in one module per aggregate; they are re-exported here so callers keep one entry point.
from ketaclinic.chairside.discharge_services import (  # noqa: E402, F401
    DischargeView,
    assess_discharge,
    discharge,
)
from ketaclinic.chairside.dose_services import (  # noqa: E402, F401
    _decimal,
    record_administration,
)
from ketaclinic.chairside.gate_services import (  # noqa: E402, F401
    GATE_ANSWER_FIELDS,
    SCREENING_VALID_DAYS_DEFAULT,
    _item_dict,
    _overrides,
    _session_scales,
    evaluate_gate,
    gate_requirements,
    latest_gate_open,
    override_gate_item,
    screening_signed_on,
)
from ketaclinic.chairside.reading_services import (  # noqa: E402, F401
    AE_OUTCOMES,
    AE_SEVERITIES,
    ESCALATE_AFTER,
    OBS_FIELDS,
    _store_alert,
    acknowledge_alert,
    alert_rules_for,
    check_overdue,
    complete_step,
    escalate_unacknowledged,
    evaluate_alerts,
    ingest_batch,
    record_adverse_event,
    record_line,
    record_observation,
    start_checklist,
    temperature_rules,
)
