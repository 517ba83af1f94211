"""The session page a nurse works from at the chair, and the day's session list. HTTP only: every action
calls one use case in ``chairside.services`` and comes back to the session page."""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts.cosign import Signature, posted_signature
from ketaclinic.accounts.models import Chair, User
from ketaclinic.chairside import services
from ketaclinic.chairside.gate_services import pregnancy_for_form
from ketaclinic.chairside.models import ChecklistRun, Status, TreatmentSession
from ketaclinic.clinical import alerts as alert_rules
from ketaclinic.clinical.adverse_events import LABEL_ADVERSE_REACTIONS
from ketaclinic.clinical.dose_check import planned_devices
from ketaclinic.clinical.protocols import Protocol, UnknownProtocol
from ketaclinic.core.access import CLINICIANS, PRESCRIBER, allow
from ketaclinic.core.text import whole_number
from ketaclinic.patients import services as patients


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _session(request: HttpRequest, session_id: str, purpose: str = "view") -> TreatmentSession:
    try:
        return services.get_session(
            user=_user(request), session_id=session_id, request=request, purpose=purpose
        )
    except services.SessionNotFound:
        raise Http404("No such session.") from None


def _back(session: TreatmentSession, anchor: str = "") -> HttpResponse:
    return redirect(f"/sessions/{session.pk}/" + (f"#{anchor}" if anchor else ""))


def _errors(request: HttpRequest, exc: services.SessionError) -> None:
    if isinstance(exc, services.SessionInputError):
        for reason in exc.errors.values():
            messages.error(request, reason)
    else:
        messages.error(request, str(exc))


def _protocol(session: TreatmentSession) -> Protocol | None:
    try:
        return services.protocol_of(session)
    except UnknownProtocol:
        return None


def _signature(request: HttpRequest, prefix: str, organization_id: int) -> Signature | None:
    """A co-signature typed at the chair: who (a colleague's id), their password and authenticator code."""
    return posted_signature(request.POST, prefix, organization_id)


def _version(request: HttpRequest) -> int | None:
    return whole_number(request.POST.get("version") or "")


def _local(request: HttpRequest, session: TreatmentSession, name: str) -> datetime | None:
    raw = (request.POST.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise services.SessionInputError({name: f"{raw!r} is not a date and time"}) from None
    return value if value.tzinfo else value.replace(tzinfo=session.site.zone)


@allow(*CLINICIANS)
def session_list(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    today = timezone.localdate()
    sessions = services.open_sessions(user=user, request=request)
    return render(request, "chairside/list.html", {"sessions": sessions, "today": today})


@allow(*CLINICIANS)
@require_POST
def schedule(request: HttpRequest, patient_id: str) -> HttpResponse:
    user = _user(request)
    try:
        patient = patients.get_patient(
            user=user, patient_id=patient_id, request=request, purpose="schedule session"
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise Http404("No such patient.") from None
    raw_chair = (request.POST.get("chair") or "").strip()
    chair_pk = whole_number(raw_chair)
    chair = Chair.objects.filter(pk=chair_pk, site=patient.site).first() if chair_pk else None
    if raw_chair and chair is None:  # never booked without the chair that was asked for
        messages.error(
            request, f"Chair {raw_chair!r} is not a chair at {patient.site.name}: nothing was scheduled."
        )
        return redirect("patients:chart", patient_id=patient.pk)
    when_raw = request.POST.get("scheduled_at") or ""
    try:
        when = (
            datetime.fromisoformat(when_raw).replace(tzinfo=patient.site.zone) if when_raw else timezone.now()
        )
        session = services.schedule_session(
            user=user,
            patient=patient,
            protocol_id=request.POST.get("protocol_id", ""),
            scheduled_at=when,
            planned_dose_mg=request.POST.get("planned_dose_mg"),
            chair=chair,
            chair_override_reason=request.POST.get("chair_override_reason", ""),
            dose_basis=request.POST.get("dose_basis") or "actual",
            dose_override_reason=request.POST.get("dose_override_reason", ""),
            request=request,
        )
    except ValueError:
        messages.error(request, f"{when_raw!r} is not a date and time.")
        return redirect("patients:chart", patient_id=patient.pk)
    except services.SessionError as exc:
        _errors(request, exc)
        return redirect("patients:chart", patient_id=patient.pk)
    return _back(session)


@allow(*CLINICIANS)
def session_page(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id)
    services.check_overdue(session)
    gate = session.gate_checks.first()
    now = timezone.now()
    discharge_view = None
    if session.status in (Status.MONITORING, Status.RECOVERY) and session.dose_started_at:
        discharge_view = services.assess_discharge(
            session=session,
            now=now,
            clinician_confirms_stable=True,
            escort_present=True,
            driving_advice_given=True,
        )
    administrations = list(session.administrations.select_related("given_by", "verified_by"))
    devices_given = sum(1 for a in administrations if a.kind == "nasal_device")
    colleagues = User.objects.filter(
        organization_id=session.organization_id, role__in=CLINICIANS, is_active=True, is_service=False
    ).exclude(pk=_user(request).pk)
    from ketaclinic.chairside.exposure import session_exposure
    from ketaclinic.ledger.draws import lots_for_dose

    drawn_from = next((a.stock_lot_id for a in reversed(administrations) if a.stock_lot_id), None)
    context: dict[str, Any] = {
        # The dose forms pick their lot from the site's stock (issue 14): in date today, stock left.
        "stock_lots": lots_for_dose(session=session, on=timezone.localdate(now, session.site.zone))
        if session.status in (Status.PRE_DOSE, Status.DOSING)
        else [],
        "drawn_from": drawn_from,
        "exposure": session_exposure(session) if session.dose_started_at else None,
        "session": session,
        "patient": session.patient,
        "protocol": _protocol(session),
        "gate": gate,
        "overrides": {o["item_key"]: o for o in (gate.overrides if gate else [])},
        "administrations": administrations,
        "devices_given": devices_given,
        "devices_planned": planned_devices(float(session.planned_dose_mg)),
        "last_admin": administrations[-1] if administrations else None,
        "infusion_running": any(a.kind == "infusion_start" for a in administrations)
        and not any(a.kind == "infusion_stop" for a in administrations),
        "observations": list(session.observations.select_related("entered_by")),
        "temperature_rules": services.temperature_rules(session),
        "due": services.next_due(session, now),
        "alerts": list(session.alerts.all()),
        "checklists": alert_rules.EMERGENCY_CHECKLISTS,
        "runs": list(ChecklistRun.objects.filter(session=session).order_by("started_at")),
        "adverse_events": list(session.adverse_events.all()),
        "ae_terms": [r.term for r in LABEL_ADVERSE_REACTIONS],
        "discharge_view": discharge_view,
        "elapsed_min": int((now - session.dose_started_at).total_seconds() // 60)
        if session.dose_started_at
        else None,
        "colleagues": colleagues,
        "prescribers": User.objects.filter(
            organization_id=session.organization_id, role=PRESCRIBER, is_active=True, is_service=False
        ),
        "is_prescriber": _user(request).role == PRESCRIBER,
        "today": session.site.today(now).isoformat(),
        "pregnancy": pregnancy_for_form(session)
        if session.status in (Status.CHECKED_IN, Status.PRE_DOSE)
        else None,
    }
    return render(request, "chairside/session.html", context)


@allow(*CLINICIANS)
@require_POST
def transition(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "transition")
    try:
        services.transition(
            user=_user(request),
            session=session,
            to=request.POST.get("to", ""),
            expected_version=_version(request),
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except services.SessionError as exc:
        _errors(request, exc)
    return _back(session)


def _bool(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def _float(request: HttpRequest, name: str, errors: dict[str, str]) -> float | None:
    raw = (request.POST.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        errors[name] = f"{raw!r} is not a number"
        return None
    if not math.isfinite(value) or not 0 <= value <= _GATE_NUMBER_MAX:
        errors[name] = f"{_GATE_NUMBER_LABELS.get(name, name)} {raw} is outside 0–{_GATE_NUMBER_MAX:,}"
        return None
    return value


#: Hours or minutes typed at the gate: a week's worth at most (a typing-error bound, not a clinical one).
_GATE_NUMBER_MAX = 24 * 60 * 7
_GATE_NUMBER_LABELS = {
    "hours_since_food": "Hours since food",
    "minutes_since_liquids": "Minutes since liquids",
    "minutes_since_nasal_steroid_or_decongestant": "Minutes since the nasal steroid or decongestant",
}


@allow(*CLINICIANS)
@require_POST
def gate(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "pre-dose gate")
    errors: dict[str, str] = {}
    answers: dict[str, Any] = {
        "rems_patient_enrolled": _bool(request.POST.get("rems_patient_enrolled")),
        "rems_setting_certified": _bool(request.POST.get("rems_setting_certified")),
        "hours_since_food": _float(request, "hours_since_food", errors),
        "minutes_since_liquids": _float(request, "minutes_since_liquids", errors),
        "nasal_steroid_or_decongestant_today": _bool(request.POST.get("nasal_steroid_or_decongestant_today")),
        "minutes_since_nasal_steroid_or_decongestant": _float(
            request, "minutes_since_nasal_steroid_or_decongestant", errors
        ),
        "escort_confirmed": request.POST.get("escort_confirmed") == "yes",
        "ride_home_confirmed": request.POST.get("ride_home_confirmed") == "yes",
        "pregnancy_test": request.POST.get("pregnancy_test") or None,
    }
    raw_test_on = request.POST.get("pregnancy_test_on") or ""
    if raw_test_on:
        try:
            answers["pregnancy_test_on"] = date.fromisoformat(raw_test_on)
        except ValueError:
            errors["pregnancy_test_on"] = f"{raw_test_on!r} is not a date"
    if errors:
        _errors(request, services.SessionInputError(errors))
        return _back(session, "gate")
    try:
        check = services.evaluate_gate(user=_user(request), session=session, answers=answers, request=request)
    except services.SessionError as exc:
        _errors(request, exc)
    else:
        if check.passed:
            messages.success(request, "Pre-dose gate open: dosing may start.")
        else:
            messages.warning(request, "Pre-dose gate closed: see the items marked below.")
    return _back(session, "gate")


@allow(PRESCRIBER)
@require_POST
def gate_override(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "gate override")
    try:
        services.override_gate_item(
            user=_user(request),
            session=session,
            item_key=request.POST.get("item_key", ""),
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except services.SessionError as exc:
        _errors(request, exc)
    return _back(session, "gate")


@allow(*CLINICIANS)
@require_POST
def administer(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "administration")
    user = _user(request)
    try:
        admin = services.record_administration(
            user=user,
            session=session,
            kind=request.POST.get("kind", ""),
            at=_local(request, session, "at"),
            lot_id=request.POST.get("lot_id"),
            given=request.POST.get("given"),
            wasted=request.POST.get("wasted"),
            container_volume_ml=request.POST.get("container_volume_ml"),
            dose_mg=request.POST.get("dose_mg"),
            rate_ml_per_h=request.POST.get("rate_ml_per_h"),
            verifier=_signature(request, "verified_by", user.org_id),
            prescriber=_signature(request, "prescriber", user.org_id),
            waste_witness=_signature(request, "waste_witness", user.org_id),
            decision_reason=request.POST.get("decision_reason", ""),
            late_entry_reason=request.POST.get("late_entry_reason", ""),
            note=request.POST.get("note", ""),
            expected_version=_version(request),
            request=request,
        )
    except services.SessionError as exc:
        _errors(request, exc)
    else:
        if admin.warning:
            messages.warning(request, admin.warning)
        else:
            messages.success(
                request,
                f"Recorded: {admin.get_kind_display()} at {timezone.localtime(admin.at, session.site.zone):%H:%M}.",
            )
    return _back(session, "doses")


@allow(*CLINICIANS)
@require_POST
def observe(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "observation")
    try:
        services.record_line(
            user=_user(request),
            session=session,
            line=request.POST.get("line", ""),
            at=_local(request, session, "at"),
            mental_status=request.POST.get("mental_status", ""),
            request=request,
        )
    except services.SessionError as exc:
        _errors(request, exc)
    return _back(session, "readings")


@allow(*CLINICIANS)
@require_POST
def acknowledge(request: HttpRequest, session_id: str, alert_id: int) -> HttpResponse:
    session = _session(request, session_id, "acknowledge alert")
    try:
        services.acknowledge_alert(
            user=_user(request), alert_id=alert_id, note=request.POST.get("note", ""), request=request
        )
    except services.SessionError as exc:
        _errors(request, exc)
    return _back(session, "alerts")


@allow(*CLINICIANS)
@require_POST
def checklist(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "emergency checklist")
    try:
        if request.POST.get("run"):
            run = ChecklistRun.objects.filter(pk=request.POST["run"], session=session).first()
            if run is None:
                raise Http404("No such checklist.")
            services.complete_step(
                user=_user(request), run=run, index=int(request.POST.get("step", "-1")), request=request
            )
        else:
            services.start_checklist(
                user=_user(request), session=session, code=request.POST.get("code", ""), request=request
            )
    except (services.SessionError, ValueError) as exc:
        messages.error(request, str(exc))
    return _back(session, "alerts")


@allow(*CLINICIANS)
@require_POST
def adverse_event(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "adverse event")
    try:
        services.record_adverse_event(
            user=_user(request),
            session=session,
            term=request.POST.get("term", ""),
            severity=request.POST.get("severity", ""),
            serious=request.POST.get("serious") == "yes",
            onset_at=_local(request, session, "onset_at"),
            action_taken=request.POST.get("action_taken", ""),
            outcome=request.POST.get("outcome", ""),
            description=request.POST.get("description", ""),
            request=request,
        )
    except services.SessionError as exc:
        _errors(request, exc)
    else:
        messages.success(request, "Adverse event recorded.")
    return _back(session, "adverse")


@allow(*CLINICIANS)
@require_http_methods(["POST"])
def discharge(request: HttpRequest, session_id: str) -> HttpResponse:
    session = _session(request, session_id, "discharge")
    overrides = {
        k.removeprefix("override_"): str(v)
        for k, v in request.POST.items()
        if k.startswith("override_") and isinstance(v, str) and v
    }
    try:
        services.discharge(
            user=_user(request),
            session=session,
            clinician_confirms_stable=request.POST.get("stable") == "yes",
            escort_present=request.POST.get("escort_present") == "yes",
            driving_advice_given=request.POST.get("driving_advice_given") == "yes",
            overrides=overrides,
            prescriber=_signature(request, "prescriber", session.organization_id),
            expected_version=_version(request),
            request=request,
        )
    except services.SessionError as exc:
        messages.error(request, "Discharge refused:")
        _errors(request, exc)
        return _back(session, "discharge")
    messages.success(request, "Patient discharged.")
    return _back(session)
