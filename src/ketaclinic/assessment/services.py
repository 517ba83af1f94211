"""Intake and screening use cases. Services never commit: the request owns the transaction.

* ``save_intake`` stores a new version (optimistic lock on the version the clinician started from).
* ``sign_intake`` / ``sign_screening`` / ``override_screening``: prescribers only; who and when are recorded.
  An override is refused where ``clinical.screening.override_check`` says the contraindication is absolute
  (the esketamine label's own contraindications); ``effective_override`` applies the same rule to override
  rows made before that rule existed, for ``plan_clearance`` and ``valid_screening_signed_on``.
* ``run_screening`` runs the pure engine on the latest signed intake and stores the result.
* ``plan_clearance`` is what the treatment app asks before a plan is made; ``valid_screening_signed_on`` and
  ``childbearing_record`` are what the pre-dose gate (chairside) asks.
Every read and write of PHI is audited in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.assessment.intake_data import (
    IntakeDataError,
    childbearing_from_data,
    clean_intake,
    snapshot_from_data,
)
from ketaclinic.assessment.models import Intake, Screening, ScreeningOverride
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import screening_model
from ketaclinic.clinical.conditions import DRUG_LABELS, Drug, Route
from ketaclinic.clinical.gate import ChildbearingRecord
from ketaclinic.clinical.screening import (
    Decision,
    Finding,
    OverrideCheck,
    Severity,
    decide,
    intake_fingerprint,
    override_check,
    screen,
)
from ketaclinic.clinical.screening_consistency import is_contradiction
from ketaclinic.core.access import CLINICIANS, PRESCRIBER
from ketaclinic.core.errors import DomainError
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import visible_patients

CATEGORY = "assessment"
MIN_REASON_CHARS = 10  # an override reason is a sentence, not "ok"
DECISION_LABELS = screening_model.DECISION_LABELS  # one mapping, next to the enum
SEVERITY_LABELS = {
    Severity.CONTRAINDICATED.value: "Contraindicated",
    Severity.CAUTION.value: "Caution",
    Severity.INTERACTION.value: "Interaction",
    Severity.MISSING_INFORMATION.value: "Missing information",
}


def severity_label(finding: dict[str, Any]) -> str:
    """A stored finding's severity for staff; a contradiction says what it is."""
    label = SEVERITY_LABELS[finding["severity"]]
    return f"{label}: history and measurement disagree" if is_contradiction(finding["code"]) else label


def contradictions(screening: Screening) -> list[dict[str, Any]]:
    """The screening's contradictions between the history and a measurement, once each (not per drug)."""
    seen: dict[str, dict[str, Any]] = {}
    for f in screening.findings:
        if is_contradiction(f["code"]):
            seen.setdefault(f["code"], f)
    return list(seen.values())


class AssessmentError(DomainError):
    """A domain error whose message a nurse understands; a state that does not allow the act (409)."""

    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AssessmentValidationError(AssessmentError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class NotAllowed(AssessmentError):
    status = 403


class IntakeConflict(AssessmentError):
    status = 409

    def __init__(self, current: Intake) -> None:
        super().__init__(
            f"Someone else saved version {current.version} of this intake while you were editing. "
            "Your changes were not saved; review the current version and apply them again."
        )
        self.current = current


class NotFound(AssessmentError):
    status = 404


def _require(user: User, roles: frozenset[str] | set[str], what: str) -> None:
    if user.role not in roles:
        raise NotAllowed(f"Only {' or '.join(sorted(r.replace('_', ' ') + 's' for r in roles))} may {what}.")


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


# --- intakes --------------------------------------------------------------------------------------------


def latest_intake(patient: Patient) -> Intake | None:
    return Intake.objects.filter(patient=patient).select_related("signed_by", "created_by").first()


def save_intake(
    *,
    user: User,
    patient: Patient,
    data: dict[str, Any],
    base_version: int | None,
    request: HttpRequest | None = None,
    client: str = "",
) -> Intake:
    """Store a new version. ``base_version`` is the version the clinician started from (None: the first)."""
    _require(user, CLINICIANS, "enter an intake")
    today = patient.site.today()
    try:
        cleaned = clean_intake(data, today=today)
    except IntakeDataError as exc:
        raise AssessmentValidationError(exc.errors) from None
    current = latest_intake(patient)
    current_version = current.version if current else 0
    if current is None and base_version:
        raise AssessmentValidationError({"base_version": "there is no earlier version: leave it empty"})
    if current is not None and base_version != current_version:
        raise IntakeConflict(current)
    age = age_on(patient.date_of_birth, date.fromisoformat(cleaned["assessed_on"]))
    fingerprint = intake_fingerprint(snapshot_from_data(cleaned, age_years=age))
    try:
        with transaction.atomic():
            intake = Intake.objects.create(
                organization_id=patient.organization_id,
                patient=patient,
                version=current_version + 1,
                data=cleaned,
                age_years=age,
                fingerprint=fingerprint,
                created_by=user,
            )
    except IntegrityError:
        latest = latest_intake(patient)
        assert latest is not None
        raise IntakeConflict(latest) from None
    audit.record(
        user=user,
        action=Action.ADD if current is None else Action.CHANGE,
        category=CATEGORY,
        patient=patient,
        object_type="Intake",
        object_id=intake.pk,
        before={"version": current.version, **_changed(cleaned, current.data)[0]} if current else None,
        after={"version": intake.version, **_changed(cleaned, current.data if current else None)[1]},
        request=request,
        client=client,
    )
    return intake


def _changed(new: dict[str, Any], old: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The change specification for the audit log: the fields that differ (before, after).

    A first version records every answered field (unknowns and empty values left out); the full intake
    stays in its immutable version row.
    """
    if old is None:
        empty: tuple[object, ...] = (None, "", "unknown", [], {})
        return {}, {k: v for k, v in new.items() if v not in empty}
    keys = sorted(set(new) | set(old))
    changed = [k for k in keys if new.get(k) != old.get(k)]
    return {k: old.get(k) for k in changed}, {k: new.get(k) for k in changed}


def sign_intake(
    *, user: User, intake: Intake, request: HttpRequest | None = None, client: str = ""
) -> Intake:
    _require(user, {PRESCRIBER}, "sign an intake")
    latest = latest_intake(intake.patient)
    if latest is None or latest.pk != intake.pk:
        raise AssessmentError("A newer version of this intake exists: sign the latest version.")
    if intake.signed:
        raise AssessmentError("This intake version is already signed.")
    intake.signed_by = user
    intake.signed_at = timezone.now()
    intake.save(update_fields=["signed_by", "signed_at"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=intake.patient,
        object_type="Intake",
        object_id=intake.pk,
        after={"signed": True, "version": intake.version},
        request=request,
        client=client,
        detail="intake signed",
    )
    return intake


def get_intake(*, user: User, intake_id: Any, request: HttpRequest | None = None, client: str = "") -> Intake:
    intake = (
        Intake.objects.filter(pk=intake_id, patient__in=visible_patients(user))
        .select_related("patient", "patient__site", "signed_by", "created_by")
        .first()
    )
    if intake is None:
        raise NotFound("No such intake.")
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=intake.patient,
        object_type="Intake",
        object_id=intake.pk,
        request=request,
        client=client,
    )
    return intake


def intake_versions(*, user: User, patient: Patient, request: HttpRequest | None = None) -> list[Intake]:
    found = list(Intake.objects.filter(patient=patient).select_related("created_by", "signed_by"))
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=patient,
        object_type="Intake",
        request=request,
        detail=f"{len(found)} intake version(s)",
    )
    return found


# --- screenings -----------------------------------------------------------------------------------------


def _finding_json(f: Finding) -> dict[str, Any]:
    return {
        "code": f.code,
        "severity": f.severity.value,
        "reason": f.reason,
        "source": f.source,
        "drugs": sorted(d.value for d in f.drugs),
        "routes": sorted(r.value for r in f.routes) if f.routes is not None else None,
        "confirmed": f.confirmed,
        "field": f.field,
    }


def _finding(data: dict[str, Any]) -> Finding:
    routes = data.get("routes")
    return Finding(
        code=data["code"],
        severity=Severity(data["severity"]),
        reason=data["reason"],
        source=data["source"],
        drugs=frozenset(Drug(d) for d in data["drugs"]),
        routes=frozenset(Route(r) for r in routes) if routes is not None else None,
        confirmed=bool(data.get("confirmed", True)),
        field=data.get("field"),
    )


def decision_for(screening: Screening, drug: Drug, route: Route | None = None) -> Decision:
    return decide([_finding(f) for f in screening.findings], drug=drug, route=route)


def override_check_for(screening: Screening, drug: Drug, route: Route | None = None) -> OverrideCheck:
    """May ``drug``'s not-eligible decision on this screening be overridden? (the pure rule, on stored findings)"""
    return override_check([_finding(f) for f in screening.findings], drug=drug, route=route)


def effective_override(
    screening: Screening, drug: Drug, route: Route | None = None
) -> ScreeningOverride | None:
    """The prescriber's override of ``drug`` on this screening, if it counts: an override of an absolute
    contraindication (a row made before such overrides were refused) does not."""
    if not override_check_for(screening, drug, route).overridable:
        return None
    return screening.overrides.filter(drug=drug.value).first()


def is_stale(screening: Screening) -> bool:
    latest = latest_intake(screening.patient)
    return latest is None or latest.fingerprint != screening.fingerprint


def latest_screening(patient: Patient) -> Screening | None:
    return (
        Screening.objects.filter(patient=patient)
        .select_related("intake", "signed_by", "created_by", "patient")
        .first()
    )


def run_screening(
    *, user: User, patient: Patient, request: HttpRequest | None = None, client: str = ""
) -> Screening:
    _require(user, CLINICIANS, "run a screening")
    intake = latest_intake(patient)
    if intake is None:
        raise AssessmentError("Enter an intake first.")
    if not intake.signed:
        raise AssessmentError("A prescriber must sign the latest intake before it can be screened.")
    snapshot = snapshot_from_data(intake.data, age_years=intake.age_years)
    result = screen(snapshot)
    trd = None
    if result.trd is not None:
        trd = {
            "status": result.trd.status.value,
            "failed_adequate": result.trd.failed_adequate,
            "possibly_adequate": result.trd.possibly_adequate,
            "required": result.trd.required,
            "incomplete": list(result.trd.incomplete),
        }
    screening = Screening.objects.create(
        organization_id=patient.organization_id,
        patient=patient,
        intake=intake,
        # The screening is of this intake version: its fingerprint as stored when the version was saved, so
        # a later change to the snapshot's shape (a new intake item) never makes a screening stale by itself.
        fingerprint=intake.fingerprint,
        findings=[_finding_json(f) for f in result.findings],
        decisions={d.value: v.value for d, v in result.decisions.items()},
        trd=trd,
        created_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        patient=patient,
        object_type="Screening",
        object_id=screening.pk,
        after={"intake_version": intake.version, "decisions": screening.decisions},
        request=request,
        client=client,
    )
    return screening


def get_screening(
    *, user: User, screening_id: Any, request: HttpRequest | None = None, client: str = ""
) -> Screening:
    screening = (
        Screening.objects.filter(pk=screening_id, patient__in=visible_patients(user))
        .select_related("patient", "patient__site", "intake", "signed_by", "created_by")
        .first()
    )
    if screening is None:
        raise NotFound("No such screening.")
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        patient=screening.patient,
        object_type="Screening",
        object_id=screening.pk,
        request=request,
        client=client,
    )
    return screening


def sign_screening(
    *, user: User, screening: Screening, request: HttpRequest | None = None, client: str = ""
) -> Screening:
    _require(user, {PRESCRIBER}, "sign a screening")
    if is_stale(screening):
        raise AssessmentError("The intake changed after this screening: run the screening again, then sign.")
    if screening.signed:
        raise AssessmentError("This screening is already signed.")
    screening.signed_by = user
    screening.signed_at = timezone.now()
    screening.save(update_fields=["signed_by", "signed_at"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        patient=screening.patient,
        object_type="Screening",
        object_id=screening.pk,
        after={"signed": True, "decisions": screening.decisions},
        request=request,
        client=client,
        detail="screening signed",
    )
    return screening


def override_screening(
    *,
    user: User,
    screening: Screening,
    drug: str,
    reason: str,
    request: HttpRequest | None = None,
    client: str = "",
) -> ScreeningOverride:
    """A prescriber goes ahead despite a contraindication for ``drug``, with a written reason (audited)."""
    _require(user, {PRESCRIBER}, "override a contraindication")
    errors: dict[str, str] = {}
    reason = (reason or "").strip()
    if drug not in {d.value for d in Drug}:
        errors["drug"] = "choose ketamine or esketamine"
    elif screening.decisions.get(drug) != Decision.NOT_ELIGIBLE.value:
        errors["drug"] = f"{DRUG_LABELS[Drug(drug)]} is not contraindicated here: nothing to override"
    elif not (check := override_check_for(screening, Drug(drug))).overridable:
        errors["drug"] = check.refusal  # an absolute (label) contraindication: no override for one patient
    if len(reason) < MIN_REASON_CHARS:
        errors["reason"] = f"write the clinical reason (at least {MIN_REASON_CHARS} characters)"
    if errors:
        raise AssessmentValidationError(errors)
    if is_stale(screening):
        raise AssessmentError("The intake changed after this screening: run the screening again first.")
    if screening.overrides.filter(drug=drug).exists():
        raise AssessmentError("This contraindication was already overridden on this screening.")
    override = ScreeningOverride.objects.create(
        screening=screening, drug=drug, reason=reason, overridden_by=user, overridden_at=timezone.now()
    )
    contraindications = [
        f["code"] for f in screening.findings if f["severity"] == "contraindicated" and drug in f["drugs"]
    ]
    audit.record(
        user=user,
        action=Action.ADD,
        category="clinical-override",
        patient=screening.patient,
        object_type="ScreeningOverride",
        object_id=override.pk,
        after={"drug": drug, "reason": reason, "contraindications": contraindications},
        request=request,
        client=client,
        detail=f"contraindication overridden for {drug}",
    )
    return override


# --- the gate the treatment app asks ---------------------------------------------------------------------


@dataclass(frozen=True)
class Clearance:
    screening: Screening
    decision: Decision
    override: ScreeningOverride | None


def plan_clearance(*, patient: Patient, drug: Drug, route: Route) -> Clearance:
    """The latest signed, current screening must allow ``drug`` by ``route``; raises with the reason if not."""
    screening = latest_screening(patient)
    label = DRUG_LABELS[drug]
    if screening is None:
        raise AssessmentError("No screening yet: enter and sign an intake, then run the screening.")
    if is_stale(screening):
        raise AssessmentError("The intake changed after the last screening: run the screening again.")
    if not screening.signed:
        raise AssessmentError("A prescriber must sign the screening before a plan can be made.")
    decision = decision_for(screening, drug, route)
    if decision in (Decision.ELIGIBLE, Decision.ELIGIBLE_WITH_CAUTIONS):
        return Clearance(screening, decision, None)
    if decision is Decision.INCOMPLETE:
        raise AssessmentError(
            f"The screening for {label} is incomplete: complete the missing information and screen again."
        )
    check = override_check_for(screening, drug, route)
    if not check.overridable:  # also when an override row exists: made before absolute ones were refused
        raise AssessmentError(f"{label} is not eligible for this patient. {check.refusal}")
    override = screening.overrides.filter(drug=drug.value).first()
    if override is None:
        raise AssessmentError(
            f"{label} is not eligible for this patient (see the screening). A prescriber may override the "
            "contraindication with a written reason on the screening page."
        )
    return Clearance(screening, decision, override)


def childbearing_record(patient: Patient) -> ChildbearingRecord | None:
    """For the pre-dose gate: what the patient's latest intake version records about childbearing potential
    (None: no intake). The gate lets a pregnancy test be skipped only when it says no and a prescriber signed
    it; an unsigned later version counts as what it says, so a change to "yes" is never hidden."""
    intake = latest_intake(patient)
    if intake is None:
        return None
    recorded = childbearing_from_data(intake.data)
    return ChildbearingRecord(
        answer=recorded.answer,
        reason=recorded.reason_text,
        recorded=f"intake version {intake.version}",
        signed=intake.signed,
    )


def valid_screening_signed_on(*, patient: Patient, drug: str) -> date | None:
    """For the pre-dose gate: the signing date of the patient's current screening if it clears ``drug``
    (eligible, eligible with cautions, or overridden by a prescriber where an override is allowed);
    otherwise None (the gate item fails)."""
    try:
        wanted = Drug(drug)
    except ValueError:
        return None
    screening = latest_screening(patient)
    if screening is None or not screening.signed or is_stale(screening) or screening.signed_at is None:
        return None
    decision = decision_for(screening, wanted)
    if decision in (Decision.ELIGIBLE, Decision.ELIGIBLE_WITH_CAUTIONS) or (
        decision is Decision.NOT_ELIGIBLE and effective_override(screening, wanted) is not None
    ):
        # The day it was signed where the patient is treated: the gate compares it with the site's today.
        return patient.site.today(screening.signed_at)
    return None
