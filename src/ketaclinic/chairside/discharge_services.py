"""The discharge checklist (clinical/discharge.py) and the discharge itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature, signature_errors
from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    ChecklistRun,
    DischargeRecord,
    SessionEvent,
    Status,
    TreatmentSession,
)
from ketaclinic.chairside.reading_services import (
    alert_rules_for,
)
from ketaclinic.chairside.services import (
    CATEGORY,
    SessionError,
    SessionInputError,
    _bump,
    as_reading,
    baseline_reading,
    protocol_of,
    treatment_of,
)
from ketaclinic.clinical import discharge as discharge_rules
from ketaclinic.core.access import PRESCRIBER

# --- discharge ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DischargeView:
    assessment: discharge_rules.DischargeAssessment
    blocking: list[discharge_rules.DischargeCriterion]


def _config(session: TreatmentSession) -> discharge_rules.DischargeConfig:
    from ketaclinic.clinical.protocols import ObservationAnchor

    monitoring = protocol_of(session).monitoring
    return discharge_rules.discharge_config_for(
        treatment=treatment_of(session),
        observation_min=monitoring.observation_min,
        from_end_of_dose=monitoring.observation_anchor is ObservationAnchor.END_OF_DOSE,
        source=f"protocol {session.protocol_id}@{session.protocol_version}: {monitoring.source}",
        confirmed=monitoring.observation_confirmed,
    )


def _monitoring_from(session: TreatmentSession, config: discharge_rules.DischargeConfig) -> datetime | None:
    """Entry-checked clocks: the first dose, or the end of the infusion (None while it still runs)."""
    start = session.dose_clock_at or session.dose_started_at
    if config.min_monitoring_from == "first dose":
        return start
    return session.dose_end_clock_at or session.dosing_ended_at


def open_safety_items(session: TreatmentSession) -> tuple[list[str], list[str]]:
    """Unacknowledged critical alerts and emergency checklists with steps left: they block discharge."""
    alerts = [a.message for a in session.alerts.filter(severity="critical", acknowledged_at__isnull=True)]
    checklists = [
        f"{run.title} ({sum(1 for step in run.steps if not step.get('done_at'))} step(s) left)"
        for run in ChecklistRun.objects.filter(session=session).order_by("started_at")
        if any(not step.get("done_at") for step in run.steps)
    ]
    return alerts, checklists


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
    now = now or timezone.now()
    readings = [as_reading(o) for o in session.observations.all()]
    config = _config(session)
    alerts, checklists = open_safety_items(session)
    assessment = discharge_rules.assess_discharge(
        config=config,
        dose_started_at=session.dose_started_at,
        now=now,
        readings=readings,
        baseline=baseline_reading(session),
        clinician_confirms_stable=clinician_confirms_stable,
        escort_present=escort_present,
        driving_advice_given=driving_advice_given,
        alert_rules=alert_rules_for(session),
        monitoring_from=_monitoring_from(session, config) or now,
        open_critical_alerts=alerts,
        open_checklists=checklists,
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
    prescriber: Signature | None = None,
    expected_version: int | None = None,
    request: HttpRequest | None = None,
    now: datetime | None = None,
) -> DischargeRecord:
    """Discharge when every criterion is met or overridden; otherwise refuse and say why.

    Going past a criterion needs a prescriber who re-authenticates (``prescriber``: password and
    authenticator code — the acting prescriber signs too) and a reason per criterion. Critical alerts not
    acknowledged, open emergency checklists, the esketamine 2 hours and the clinician's judgement of
    stability cannot be overridden at all."""
    now = now or timezone.now()
    if session.status not in (Status.MONITORING, Status.RECOVERY):
        raise SessionError(f"A session that is {session.get_status_display().lower()} cannot be discharged.")
    reasons = {k: v.strip() for k, v in (overrides or {}).items() if v and v.strip()}
    known = {c.value for c in discharge_rules.Criterion}
    errors: dict[str, str] = {}
    for k in reasons:
        if k not in known:
            errors[f"override.{k}"] = "is not a discharge criterion"
        elif len(reasons[k]) < 10:
            errors[f"override.{k}"] = "write the clinical reason (at least 10 characters)"
    if errors:
        raise SessionInputError(errors)
    signer: User | None = None
    if reasons:
        signer = signature_errors(
            signature=prescriber or Signature(None),
            actor=user,
            roles={PRESCRIBER},
            field="prescriber",
            errors=errors,
            purpose="discharge with a criterion not met",
            must_differ=False,
            site=session.site,
        )
        if errors:
            raise SessionInputError(errors)
    assert signer is not None or not reasons
    override_rows = [
        discharge_rules.DischargeOverride(
            criterion=discharge_rules.Criterion(k), reason=v, clinician=signer.display_name if signer else ""
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
    not_met = {str(c.criterion) for c in view.assessment.criteria if not c.met}
    reasons = {k: v for k, v in reasons.items() if k in not_met}  # a reason for a met criterion is noise
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
        overrides=[
            {"criterion": k, "reason": v, "by": signer.display_name if signer else user.display_name}
            for k, v in reasons.items()
        ],
        overridden_by=signer if reasons else None,
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
            "overridden_by": signer.username if signer and reasons else None,
            "ready_at": view.assessment.ready_at.isoformat() if view.assessment.ready_at else None,
        },
        request=request,
    )
    return record
