"""Dose events: nasal devices, infusion start / rate change / stop, IM and sublingual doses."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.gate_services import (
    latest_gate_open,
)
from ketaclinic.chairside.models import (
    Administration,
    AdministrationKind,
    Status,
    TreatmentSession,
)
from ketaclinic.chairside.services import (
    DEVICE_MG,
    DEVICE_SPACING,
    SessionInputError,
    _bump,
    transition,
)

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
