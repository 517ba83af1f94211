"""Chairside readings (manual line, API batches), session alerts, escalation, emergency checklists and adverse events."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    ACTIVE_STATUSES,
    AdverseEvent,
    ChecklistRun,
    IngestBatch,
    Observation,
    SessionAlert,
    Status,
    TreatmentSession,
)
from ketaclinic.chairside.services import (
    SessionError,
    SessionInputError,
    SessionNotFound,
    as_reading,
    baseline_reading,
    next_due,
)
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.clinical import vitals as vital_rules
from ketaclinic.clinical.adverse_events import LABEL_ADVERSE_REACTIONS
from ketaclinic.core.access import PRESCRIBER
from ketaclinic.core.models import Notification
from ketaclinic.core.plausible import time_problem
from ketaclinic.patients import services as patients

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
    if why := time_problem(reading.taken_at, born=session.patient.date_of_birth):
        raise SessionInputError({"observed_at": why})
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
        mental_status=mental_status.strip(),
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
    """The reference defaults, then the site's policy, then the protocol's (each override names its source).
    A stored setting outside the limits of clinical/alerts.py is skipped, never fatal (session_settings)."""
    from ketaclinic.treatment.session_settings import session_alert_rules

    resolved = session_alert_rules(
        site=session.site, organization_id=session.organization_id, protocol_key=session.protocol_id
    )
    return dict(resolved.rules)


def temperature_rules(session: TreatmentSession) -> list[tuple[str, str, bool]]:
    """The session's temperature alert rules as (text, source, confirmed), shown beside the readings and in
    the report (issue 14: a temperature was accepted and never shown, and 45 °C raised nothing)."""
    rules = alert_rules_for(session)
    codes = (alert_rules.AlertCode.TEMP_HIGH, alert_rules.AlertCode.TEMP_LOW)
    return [(alert_rules.rule_text(rules[c]), rules[c].source, rules[c].confirmed) for c in codes]


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
            "message": found.message,
            "source": found.source,
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
        SessionAlert.objects.filter(pk=alert_id, organization_id=user.org_id)
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


# Before an unacknowledged alert goes to the prescriber: not in the reference, an unconfirmed default kept
# with the alert rules (clinical/alerts.py), not copied here.
ESCALATE_AFTER = alert_rules.DEFAULT_ESCALATE_AFTER


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
        recipients = [patient.prescriber] if patient.prescriber is not None else []
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
#: The event's name (a label term is at most 34 characters); the description holds the rest, uncut.
AE_TERM_MAX_CHARS = AdverseEvent._meta.get_field("term").max_length or 80
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
    elif len(term.strip()) > AE_TERM_MAX_CHARS:
        errors["term"] = (
            f"Event is {len(term.strip())} characters, more than the {AE_TERM_MAX_CHARS} a term may have: "
            "name the event in a few words and describe it under Description"
        )
    elif term.strip().lower() not in known and not description.strip():
        errors["description"] = "describe an event that is not one of the label's terms"
    if severity not in AE_SEVERITIES:
        errors["severity"] = f"choose {', '.join(AE_SEVERITIES)}"
    if outcome not in AE_OUTCOMES:
        errors["outcome"] = f"choose {', '.join(AE_OUTCOMES)}"
    when = onset_at or timezone.now()
    if why := time_problem(when, born=session.patient.date_of_birth):
        errors["onset_at"] = why
    if errors:
        raise SessionInputError(errors)
    event = AdverseEvent.objects.create(
        organization_id=session.organization_id,
        session=session,
        term=term.strip(),
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
