"""The discharge checklist (clinical/discharge.py) and the discharge itself."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
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
    treatment_of,
)
from ketaclinic.clinical import discharge as discharge_rules

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
