"""Protocol library, plan and calendar pages. Views translate HTTP; services decide and audit."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts.models import User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.assessment import services as assessment
from ketaclinic.clinical.conditions import DRUG_LABELS, ROUTE_LABELS, Drug, Route
from ketaclinic.core.access import ADMIN, CLINICIANS, PATIENT_REGISTRY, PRESCRIBER, allow
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient
from ketaclinic.treatment import library, services
from ketaclinic.treatment.exposure import plan_exposure
from ketaclinic.treatment.forms import CopyForm, EditForm, PlanForm, apply_structured, structured_fields

LIBRARY_ROLES = (ADMIN, PRESCRIBER, "nurse")


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _patient(request: HttpRequest, patient_id: Any, purpose: str) -> Patient:
    try:
        return patients.get_patient(
            user=_user(request), patient_id=patient_id, request=request, purpose=purpose
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise Http404("No such patient.") from None


def _label(row: Any) -> str:
    return f"{row.name} — {DRUG_LABELS[Drug(row.drug)]}, {ROUTE_LABELS[Route(row.route)]} ({row.key} v{row.version})"


# --- protocol library ----------------------------------------------------------------------------------


@allow(*LIBRARY_ROLES)
def protocol_list(request: HttpRequest) -> HttpResponse:
    rows = library.latest_versions(_user(request))
    return render(
        request, "treatment/protocols.html", {"rows": rows, "is_admin": _user(request).role == ADMIN}
    )


@allow(*LIBRARY_ROLES)
def protocol_detail(request: HttpRequest, key: str) -> HttpResponse:
    user = _user(request)
    try:
        row = library.get_version(user, key, _int(request.GET.get("version")))
    except library.LibraryError as exc:
        raise Http404(exc.message) from None
    protocol = library.as_protocol(row)
    return render(
        request,
        "treatment/protocol.html",
        {
            "row": row,
            "protocol": protocol,
            "versions": library.versions_of(user, key),
            "json": json.dumps(row.data, indent=2, ensure_ascii=False),
            "is_admin": user.role == ADMIN,
            "copy_form": CopyForm(
                initial={"new_id": f"{key}-clinic"[:63], "name": f"{row.name} (clinic copy)"}
            ),
            "editable": not row.built_in,
            "session_settings": _session_settings(user, key, row),
            "may_change_settings": user.role == PRESCRIBER,
        },
    )


def _session_settings(user: User, key: str, row: Any) -> Any:
    from ketaclinic.clinical.vitals import treatment_for
    from ketaclinic.treatment.session_settings import protocol_policy

    if not user.organization_id:
        return None
    return protocol_policy(user.organization_id, key, treatment=treatment_for(drug=row.drug, route=row.route))


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


@allow(ADMIN)
@require_POST
def protocol_copy(request: HttpRequest, key: str) -> HttpResponse:
    user = _user(request)
    try:
        source = library.get_version(user, key)
    except library.LibraryError as exc:
        raise Http404(exc.message) from None
    form = CopyForm(request.POST)
    form.is_valid()
    try:
        row = library.copy_protocol(
            user=user,
            source=source,
            new_id=request.POST.get("new_id", ""),
            name=request.POST.get("name", ""),
            request=request,
        )
    except library.LibraryValidationError as exc:
        for field, reason in exc.errors.items():
            form.add_error("new_id" if field == "new_id" else None, f"{field}: {reason}")
        return render(
            request,
            "treatment/protocol.html",
            {
                "row": source,
                "protocol": library.as_protocol(source),
                "versions": library.versions_of(user, key),
                "json": json.dumps(source.data, indent=2, ensure_ascii=False),
                "is_admin": True,
                "copy_form": form,
                "editable": not source.built_in,
            },
            status=422,
        )
    messages.success(request, f"Copied as {row.key} version 1.")
    return redirect("treatment:protocol", key=row.key)


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def protocol_edit(request: HttpRequest, key: str) -> HttpResponse:
    user = _user(request)
    try:
        row = library.get_version(user, key)
    except library.LibraryError as exc:
        raise Http404(exc.message) from None
    if row.built_in:
        messages.error(
            request, "Built-in protocols cannot be edited: copy the protocol first, then edit the copy."
        )
        return redirect("treatment:protocol", key=key)
    if "protocol" not in request.POST and request.GET.get("json") != "1":
        return _protocol_edit_structured(request, user, key, row)
    errors: dict[str, str] = {}
    conflict = ""
    if request.method == "POST":
        form = EditForm(request.POST)
        if form.is_valid():
            try:
                saved = library.edit_protocol(
                    user=user,
                    key=key,
                    base_version=form.cleaned_data["base_version"],
                    text=form.cleaned_data["protocol"],
                    change_note=form.cleaned_data["change_note"] or "",
                    request=request,
                )
            except library.LibraryValidationError as exc:
                errors = exc.errors
            except library.LibraryConflict as exc:
                conflict = exc.message
            except library.LibraryError as exc:
                conflict = exc.message
            else:
                messages.success(request, f"Saved as version {saved.version}.")
                return redirect("treatment:protocol", key=key)
    else:
        form = EditForm(
            initial={
                "base_version": row.version,
                "protocol": json.dumps(row.data, indent=2, ensure_ascii=False),
            }
        )
    status = 409 if conflict else (422 if errors or form.errors else 200)
    return render(
        request,
        "treatment/protocol_edit.html",
        {"row": row, "form": form, "errors": errors, "conflict": conflict},
        status=status,
    )


def _protocol_edit_structured(request: HttpRequest, user: User, key: str, row: Any) -> HttpResponse:
    """The protocol editor as a form: name, observation time and, per phase, sessions, cadence, spacing,
    dose and notes (forms.PHASE_FIELDS); the rest stays as it is (JSON page, advanced). The validator's
    errors appear beside the field they name."""
    errors: dict[str, str] = {}
    conflict = ""
    posted = None
    change_note = ""
    if request.method == "POST":
        posted = request.POST
        change_note = request.POST.get("change_note", "")
        data, errors = apply_structured(row.data, request.POST)
        base = request.POST.get("base_version", "")
        if not errors:
            try:
                saved = library.edit_protocol(
                    user=user,
                    key=key,
                    base_version=int(base) if base.isdigit() else -1,
                    text=json.dumps(data),
                    change_note=change_note,
                    request=request,
                )
            except library.LibraryValidationError as exc:
                errors = exc.errors
            except library.LibraryError as exc:  # a conflict, or the protocol cannot be edited
                conflict = exc.message
            else:
                messages.success(request, f"Saved as version {saved.version}.")
                return redirect("treatment:protocol", key=key)
    fields = structured_fields(row.data, posted, errors)
    shown = {f["name"] for f in fields["top"]} | {f["name"] for p in fields["phases"] for f in p["fields"]}
    status = 409 if conflict else (422 if errors else 200)
    return render(
        request,
        "treatment/protocol_form.html",
        {
            "row": row,
            "fields": fields,
            "errors": errors,
            "other_errors": {k: v for k, v in errors.items() if k not in shown},
            "conflict": conflict,
            "change_note": change_note,
            "base_version": posted.get("base_version", row.version) if posted is not None else row.version,
        },
        status=status,
    )


# --- plans ---------------------------------------------------------------------------------------------


def _protocol_choices(user: User) -> list[tuple[str, str]]:
    return [(r.key, _label(r)) for r in library.latest_versions(user)]


@allow(PRESCRIBER)
@require_http_methods(["GET", "POST"])
def plan_new(request: HttpRequest, patient_id: Any) -> HttpResponse:
    user = _user(request)
    patient = _patient(request, patient_id, "new treatment plan")
    choices = _protocol_choices(user)
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = PlanForm(request.POST, protocols=choices)
        try:
            plan = services.create_plan(user=user, patient=patient, data=form.raw(), request=request)
        except services.PlanValidationError as exc:
            errors = exc.errors
        except services.TreatmentError as exc:
            errors = {"plan": exc.message}
        else:
            messages.success(request, f"Plan created: {plan.sessions.count()} sessions booked.")
            return redirect("treatment:plan", plan_id=plan.pk)
    else:
        form = PlanForm(
            initial={
                "start": timezone.localdate(timezone.now(), patient.site.zone) + timedelta(days=1),
                "basis": "actual",
            },
            protocols=choices,
        )
    screening = assessment.latest_screening(patient)
    gate = None
    if screening is not None:
        # Only an override that counts (not one of a label contraindication, assessment.effective_override).
        overridden = {d.value for d in Drug if assessment.effective_override(screening, d) is not None}
        gate = {
            "screening": screening,
            "stale": assessment.is_stale(screening),
            "decisions": [
                {
                    "label": DRUG_LABELS[Drug(drug)],
                    "decision": assessment.DECISION_LABELS[decision],
                    "overridden": drug in overridden,
                }
                for drug, decision in sorted(screening.decisions.items())
            ],
        }
    field_errors = {k: v for k, v in errors.items() if k in form.fields}
    other_errors = {k: v for k, v in errors.items() if k not in form.fields}
    from ketaclinic.treatment import rules

    return render(
        request,
        "treatment/plan_form.html",
        {
            "patient": patient,
            "form": form,
            "field_errors": field_errors,
            "other_errors": other_errors,
            "gate": gate,
            "active_courses": rules.course_summaries(rules.active_courses(patient)),
        },
        status=422 if errors else 200,
    )


def _plan_or_404(request: HttpRequest, plan_id: Any) -> Any:
    try:
        return services.get_plan(user=_user(request), plan_id=plan_id, request=request)
    except services.NotFound:
        raise Http404("No such plan.") from None


@allow(*CLINICIANS)
def plan_detail(request: HttpRequest, plan_id: Any) -> HttpResponse:
    from ketaclinic.treatment import review, rules

    plan = _plan_or_404(request, plan_id)
    user = _user(request)
    state = review.review_state(user=user, plan=plan, request=request)
    sessions = list(plan.sessions.select_related("chair", "dose_set_by", "plan").order_by("start", "number"))
    prescriber = user.role == PRESCRIBER and plan.status == "active"
    return render(
        request,
        "treatment/plan.html",
        {
            "exposure": plan_exposure(plan),
            "plan": plan,
            "patient": plan.patient,
            "sessions": sessions,
            "zone": plan.site.time_zone,
            "can_verify": plan.second_person_required
            and plan.verified_at is None
            and plan.created_by_id != user.pk,
            "can_stop": prescriber,
            "can_decide": prescriber,
            "opened": _opened_sessions(plan),
            "review": state,
            "decisions": REVIEW_DECISIONS,
            "chairs": services.active_chairs(plan.site),
            "open_window": rules.open_window().describe(),
            "window": _window_notes(sessions, plan),
        },
    )


def _window_notes(sessions: list[Any], plan: Any) -> dict[Any, str]:
    """For each booked session that cannot be opened now, why (its window opens later, or its day is over):
    the plan page shows that instead of the *Open session* button."""
    from ketaclinic.clinical.schedule_rules import open_window_problem
    from ketaclinic.treatment import rules

    now, window, zone = timezone.now(), rules.open_window(), plan.site.zone
    out: dict[Any, str] = {}
    for s in sessions:
        if s.status != "booked":
            continue
        problem = open_window_problem(
            number=s.number, booked_start=s.start, now=now, zone=zone, window=window
        )
        if problem is None:
            continue
        local = timezone.localtime(s.start - timedelta(minutes=window.before_minutes), zone)
        out[s.pk] = (
            f"opens {local:%a %d %b %H:%M}" if now < s.start else "day over: mark it missed or move it"
        )
    return out


REVIEW_DECISIONS = [
    ("continue", "Continue into maintenance (books it)"),
    ("extend", "Extend the induction (make up sessions not given)"),
    ("stop", "Stop the course"),
]


def _opened_sessions(plan: Any) -> set[Any]:
    """Ids of the plan's sessions that were opened at the chair (a chairside session links them)."""
    from ketaclinic.chairside.models import TreatmentSession

    return set(
        TreatmentSession.objects.filter(planned_session__plan=plan).values_list(
            "planned_session_id", flat=True
        )
    )


@allow(*CLINICIANS)
@require_POST
def plan_verify(request: HttpRequest, plan_id: Any) -> HttpResponse:
    plan = _plan_or_404(request, plan_id)
    try:
        services.verify_dose(user=_user(request), plan=plan, request=request)
    except services.TreatmentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Dose verified: your name and the time are recorded.")
    return redirect("treatment:plan", plan_id=plan.pk)


@allow(PRESCRIBER)
@require_POST
def plan_stop(request: HttpRequest, plan_id: Any) -> HttpResponse:
    plan = _plan_or_404(request, plan_id)
    try:
        result = services.stop_course(
            user=_user(request), plan=plan, reason=request.POST.get("reason", ""), request=request
        )
    except services.PlanValidationError as exc:
        for reason in exc.errors.values():
            messages.error(request, f"Not stopped: {reason}.")
    except services.TreatmentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _stopped_text(result))
    return redirect("treatment:plan", plan_id=plan.pk)


def _stopped_text(result: services.StoppedCourse) -> str:
    def numbers(values: list[int]) -> str:
        return ", ".join(str(n) for n in values)

    parts = ["Course stopped."]
    if result.cancelled:
        parts.append(f"Sessions cancelled: {numbers(result.cancelled)}.")
    if result.open_at_chair:
        parts.append(f"Open at the chair, finish or stop there: {numbers(result.open_at_chair)}.")
    if result.past_unrecorded:
        parts.append(f"In the past and never opened, mark them missed: {numbers(result.past_unrecorded)}.")
    return " ".join(parts)


# --- calendars -----------------------------------------------------------------------------------------


@allow(*PATIENT_REGISTRY)
def site_calendar(request: HttpRequest) -> HttpResponse:
    """``?site=<id>&week=YYYY-MM-DD``: no PHI in the query (a site id and a date)."""
    user = _user(request)
    sites = covered_sites(user)
    if not sites:
        raise Http404("You cover no site.")
    site = next((s for s in sites if str(s.pk) == request.GET.get("site")), sites[0])
    today = timezone.localdate(timezone.now(), site.zone)
    try:
        picked = date.fromisoformat(request.GET.get("week") or today.isoformat())
    except ValueError:
        picked = today
    week_start = picked - timedelta(days=picked.weekday())
    days = services.site_week(user=user, site=site, week_start=week_start, request=request)
    return render(
        request,
        "treatment/calendar.html",
        {
            "site": site,
            "sites": sites,
            "days": days,
            "week_start": week_start,
            "previous": week_start - timedelta(days=7),
            "next": week_start + timedelta(days=7),
            "clinical": user.role in CLINICIANS,
        },
    )


def _plan_session(request: HttpRequest, session_id: Any) -> Any:
    from ketaclinic.treatment.models import PlanSession

    row = (
        PlanSession.objects.filter(pk=session_id, organization_id=_user(request).org_id)
        .select_related("plan", "site", "patient")
        .first()
    )
    if row is None or not patients.visible_patients(_user(request)).filter(pk=row.patient_id).exists():
        raise Http404("No such session.")
    return row


@allow(*CLINICIANS)
@require_POST
def plan_session_missed(request: HttpRequest, session_id: Any) -> HttpResponse:
    row = _plan_session(request, session_id)
    try:
        advice = services.mark_session_missed(
            user=_user(request),
            session=row,
            worsening=request.POST.get("worsening") == "yes",
            reason=request.POST.get("reason", ""),
            request=request,
        )
    except services.PlanValidationError as exc:
        for reason in exc.errors.values():
            messages.error(request, reason)
    except services.TreatmentError as exc:
        messages.error(request, str(exc))
    else:
        messages.warning(request, f"Session {row.number} marked missed. {advice.message}")
    return redirect("treatment:plan", plan_id=row.plan_id)


@allow(*CLINICIANS)
@require_POST
def plan_session_move(request: HttpRequest, session_id: Any) -> HttpResponse:
    from datetime import datetime

    row = _plan_session(request, session_id)
    raw = request.POST.get("start", "")
    try:
        new_start = datetime.fromisoformat(raw)
        services.reschedule_session(
            user=_user(request),
            session=row,
            new_start=new_start,
            spacing_override_reason=request.POST.get("spacing_override_reason", ""),
            request=request,
        )
    except ValueError:
        messages.error(request, f"{raw!r} is not a date and time.")
    except services.PlanValidationError as exc:
        for reason in exc.errors.values():
            messages.error(request, f"Not moved: {reason}")
    except services.TreatmentError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Session {row.number} moved.")
    return redirect("treatment:plan", plan_id=row.plan_id)


@allow(*CLINICIANS)
@require_POST
def plan_session_start(request: HttpRequest, session_id: Any) -> HttpResponse:
    """Open the treatment session (chairside) for a booked course session, with its dose, in its booked
    chair or the one chosen (treatment/opening.start_booked_session: the window, the review, the chair and
    day rules)."""
    from ketaclinic.chairside import services as chairside
    from ketaclinic.treatment.opening import NoSuchCourseSession, start_booked_session

    row = _plan_session(request, session_id)
    try:
        session, _new = start_booked_session(
            user=_user(request), session=row, chair_id=request.POST.get("chair", ""), request=request
        )
    except NoSuchCourseSession:
        raise Http404("No such session.") from None
    except (services.TreatmentError, chairside.SessionError) as exc:
        _refused(request, "Not opened", exc)
        return redirect("treatment:plan", plan_id=row.plan_id)
    return redirect("chairside:session", session_id=session.pk)


def _refused(request: HttpRequest, what: str, exc: Exception) -> None:
    """A refusal on the plan page: nothing the service wrote stays (the request's transaction rolls back)
    and each reason is shown, prefixed with what did not happen."""
    transaction.set_rollback(True)
    reasons = getattr(exc, "errors", None) or {"": str(exc)}
    for reason in reasons.values():
        messages.error(request, f"{what}: {reason}")


@allow(PRESCRIBER)
@require_POST
def plan_session_dose(request: HttpRequest, session_id: Any) -> HttpResponse:
    """A prescriber titrates a booked session's dose (and, if asked, every later one) with a reason."""
    from ketaclinic.treatment.titration import set_session_dose

    row = _plan_session(request, session_id)
    raw = request.POST.get("dose_mg", "").strip()
    try:
        dose = float(raw)
    except ValueError:
        messages.error(request, f"Dose not changed: {raw!r} is not a number of mg.")
        return redirect("treatment:plan", plan_id=row.plan_id)
    try:
        changed = set_session_dose(
            user=_user(request),
            session=row,
            dose_mg=dose,
            reason=request.POST.get("reason", ""),
            later=request.POST.get("later") == "yes",
            request=request,
        )
    except services.TreatmentError as exc:
        _refused(request, "Dose not changed", exc)
    else:
        numbers = ", ".join(str(r.number) for r in changed)
        messages.success(
            request, f"Dose {dose:g} mg set for session{'s' if len(changed) > 1 else ''} {numbers}."
        )
    return redirect("treatment:plan", plan_id=row.plan_id)


@allow(PRESCRIBER)
@require_POST
def plan_review(request: HttpRequest, plan_id: Any) -> HttpResponse:
    """The end-of-induction review: the response by the scale's own rule and the decision."""
    from ketaclinic.treatment.review import record_review

    plan = _plan_or_404(request, plan_id)
    extra = request.POST.get("extra_sessions", "").strip()
    cadences = {
        int(k.split("_", 1)[1]): str(request.POST.get(k, ""))
        for k in request.POST
        if k.startswith("cadence_") and k.split("_", 1)[1].isdigit() and request.POST.get(k)
    }
    try:
        result = record_review(
            user=_user(request),
            plan=plan,
            decision=request.POST.get("decision", ""),
            reason=request.POST.get("reason", ""),
            scale=request.POST.get("scale", ""),
            phases=[int(p) for p in request.POST.getlist("phases") if p.isdigit()],
            cadences=cadences,
            extra_sessions=int(extra) if extra.isdigit() else (0 if not extra else -1),
            request=request,
        )
    except services.TreatmentError as exc:
        _refused(request, "Review not recorded", exc)
    else:
        booked = (
            f" Sessions booked: {', '.join(map(str, result.sessions_booked))}."
            if result.sessions_booked
            else ""
        )
        messages.success(request, f"Review recorded: {result.get_decision_display()}.{booked}")
    return redirect("treatment:plan", plan_id=plan.pk)


@allow(PRESCRIBER)
@require_POST
def protocol_session_settings(request: HttpRequest, key: str) -> HttpResponse:
    """A protocol's reading cadence and alert changes: safety settings, so prescribers only (session_settings)."""
    from ketaclinic.treatment import session_settings

    try:
        library.get_version(_user(request), key, None)
    except library.LibraryError as exc:
        raise Http404(exc.message) from None
    try:
        session_settings.save_settings(
            by=_user(request), protocol_key=key, data=request.POST.dict(), request=request
        )
    except session_settings.SettingsError as exc:
        for field, reason in exc.errors.items():
            messages.error(request, f"{field}: {reason}")
    else:
        messages.success(
            request, "Session settings saved; they apply to new readings of this protocol's sessions."
        )
    return redirect("treatment:protocol", key=key)
