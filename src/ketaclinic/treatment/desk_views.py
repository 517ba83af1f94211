"""The front desk's pages (issue 14 point 6): mark a patient arrived from Today, book a course session into a
free calendar slot, and move a session (off a closed day) to a suggested slot. Views translate HTTP; the
rules are treatment/arrivals.py and treatment/booking.py, which audit."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.core.access import CLINICIANS, PATIENT_REGISTRY, allow, signed_in_user
from ketaclinic.patients import services as patients
from ketaclinic.treatment import arrivals, booking, services
from ketaclinic.treatment.models import PlanSession


@allow(*PATIENT_REGISTRY)
@require_POST
def mark_arrived(request: HttpRequest, kind: str, booking_id: Any) -> HttpResponse:
    """From the home page's Today list: the patient of this booking is here (not a clinical check-in)."""
    user = signed_in_user(request)
    try:
        row = arrivals.load_booking(user=user, kind=kind, booking_id=booking_id)
    except services.NotFound:
        raise Http404("No such booking.") from None
    try:
        arrival = arrivals.mark_arrived(user=user, booking=row, request=request)
    except arrivals.ArrivalRefused as exc:
        messages.error(request, exc.message)
    else:
        at = arrival.at.astimezone(row.site.zone)
        name = f"{row.patient.family_name}, {row.patient.given_name}"
        messages.success(request, f"{name} arrived at {at:%H:%M}. The nurse checks them in at the chair.")
    return redirect(f"{reverse('core:home')}#today")


def _site(user: User, raw: str | None) -> Site | None:
    return next((s for s in covered_sites(user) if str(s.pk) == (raw or "")), None)


def _session(user: User, raw: str | None) -> PlanSession | None:
    if not raw:
        return None
    try:
        row = (
            PlanSession.objects.filter(pk=raw, patient__in=patients.visible_patients(user))
            .select_related("patient", "site", "chair", "plan", "plan__protocol")
            .first()
        )
    except (ValueError, TypeError):
        return None
    return row if row is not None and row.site in covered_sites(user) else None


NEAR_SESSIONS = 6  # course sessions offered for a slot: the nearest to it (a display choice)


def _near(rows: list[PlanSession], start: datetime | None) -> tuple[list[PlanSession], PlanSession | None]:
    """The course sessions nearest to the slot, in date order, and the nearest (checked by default)."""
    if not rows or start is None:
        return rows[:NEAR_SESSIONS], None
    by_distance = sorted(rows, key=lambda r: abs((r.start - start).total_seconds()))
    return sorted(by_distance[:NEAR_SESSIONS], key=lambda r: r.start), by_distance[0]


def _local_value(moment: datetime | None, site: Site) -> str:
    """A datetime-local input's value in site time ('' for none)."""
    return moment.astimezone(site.zone).strftime("%Y-%m-%dT%H:%M") if moment is not None else ""


def _when(moment: datetime, site: Site) -> str:
    local = moment.astimezone(site.zone)
    return f"{local:%a} {local.day} {local:%b %H:%M}"


def _start(raw: str, site: Site) -> datetime | None:
    try:
        value = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=site.zone)


@allow(*PATIENT_REGISTRY)
@require_http_methods(["GET", "POST"])
def book(request: HttpRequest) -> HttpResponse:
    """``?site=&chair=&start=`` (a free slot picked on the calendar: find the patient, pick the course
    session to put there) or ``?session=`` (a course session to move: suggested slots, or a time and chair).
    No PHI in the query: ids and a time. Patient search is a POST, as on the Patients page."""
    user = signed_in_user(request)
    data = request.POST if request.method == "POST" else request.GET
    session = _session(user, data.get("session"))
    if data.get("session") and session is None:
        raise Http404("No such session.")
    site = session.site if session is not None else _site(user, data.get("site"))
    if site is None:
        raise Http404("No such site.")
    chairs = services.active_chairs(site)
    chair = next((c for c in chairs if str(c.pk) == data.get("chair", "")), None)
    raw_start = data.get("start", "")
    start = _start(raw_start, site) if raw_start else None
    errors: dict[str, str] = {}
    if raw_start and start is None:
        errors["start"] = f"{raw_start!r} is not a date and time (YYYY-MM-DD HH:MM)"
    found: list[Any] = []
    sessions: dict[Any, list[PlanSession]] = {}
    action = request.POST.get("action", "")
    if action == "find":
        mrn, name = request.POST.get("mrn", ""), request.POST.get("name", "")
        if not (mrn.strip() or name.strip()):
            errors["find"] = "type an MRN (or its start or end) or a name"
        else:
            found = patients.search_patients(
                user=user, mrn=mrn, name=name, page_size=10, request=request
            ).patients
            sessions = booking.movable_sessions(user=user, patients=found, site=site, request=request)
    elif action == "book":
        picked = _session(user, request.POST.get("session"))
        if picked is None:
            errors["session"] = "choose the course session to book"
        if chair is None:
            errors["chair"] = "choose a chair"
        if start is None:
            errors.setdefault("start", "choose the date and time")
        if not errors and picked is not None and chair is not None and start is not None:
            was = picked.start
            try:
                booked = booking.book_course_session(
                    user=user,
                    session=picked,
                    chair=chair,
                    start=start,
                    spacing_override_reason=request.POST.get("spacing_override_reason", ""),
                    request=request,
                )
            except services.PlanValidationError as exc:
                errors = exc.errors
            except services.TreatmentError as exc:
                errors = {"session": exc.message}
            else:
                at = booked.start.astimezone(site.zone)
                messages.success(
                    request,
                    f"Booked: {booked.patient.family_name}, {booked.patient.given_name} on {at:%a} {at.day} "
                    f"{at:%b %H:%M} in {chair.label} (was {_when(was, site)}).",
                )
                week = at.date() - timedelta(days=at.weekday())
                return redirect(f"{reverse('treatment:calendar')}?site={site.pk}&week={week.isoformat()}")
        session = session or picked
    suggestions = booking.suggest_slots(session) if session is not None and action != "find" else []
    return render(
        request,
        "treatment/book.html",
        {
            "site": site,
            "chairs": chairs,
            "chair": chair,
            "start": start,
            "start_value": _local_value(start or (session.start if session is not None else None), site)
            or raw_start,
            "session": session,
            "suggestions": suggestions,
            "found": [(p, *_near(sessions.get(p.pk, []), start)) for p in found],
            "errors": errors,
            "clinical": user.role in CLINICIANS,
            "posted": request.POST,
            "today": timezone.localdate(timezone.now(), site.zone),
        },
        status=422 if errors else 200,
    )
