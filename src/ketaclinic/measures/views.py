"""Rating-scale pages: a patient's scales and trajectories, clinician entry, self-report links, safety alerts.

The patient self-report page needs no sign-in: the one-time token in the link is the credential. It shows
nothing but the patient's first name and the questions.
"""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts.models import User
from ketaclinic.audit.services import client_ip
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.core.access import ADMIN, CLINICIANS, PATIENT_REGISTRY, PRESCRIBER, allow, public
from ketaclinic.measures import services
from ketaclinic.measures.charts import trajectories_for
from ketaclinic.measures.forms import AcknowledgeForm, LinkForm, answers_form, answers_from
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _patient(request: HttpRequest, patient_id: str, purpose: str) -> Patient:
    try:
        return patients.get_patient(
            user=_user(request), patient_id=patient_id, request=request, purpose=purpose
        )
    except (patients.PatientNotFound, patients.OutsideYourSites):
        raise Http404("No such patient.") from None


@allow(*CLINICIANS)
def scales(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = _patient(request, patient_id, "rating scales")
    return render(
        request,
        "measures/scales.html",
        {
            "patient": patient,
            "trajectories": trajectories_for(request, patient),
            "instruments": INSTRUMENTS,
            "link_form": LinkForm(
                allowed=services.SELF_REPORT_INSTRUMENTS, names={c: INSTRUMENTS[c].name for c in INSTRUMENTS}
            ),
            "alerts": patient.safety_alerts.filter(acknowledged_at__isnull=True),
        },
    )


@allow(*CLINICIANS)
@require_http_methods(["GET", "POST"])
def enter(request: HttpRequest, patient_id: str, instrument: str) -> HttpResponse:
    if instrument not in INSTRUMENTS:
        raise Http404("No such instrument.")
    definition = INSTRUMENTS[instrument]
    patient = _patient(request, patient_id, f"enter {instrument}")
    form = answers_form(definition, request.POST or None)
    errors: dict[str, str] = {}
    if request.method == "POST":
        when = request.POST.get("administered_at") or ""
        try:
            administered_at = datetime.fromisoformat(when).replace(tzinfo=patient.site.zone) if when else None
        except ValueError:
            errors["administered_at"] = f"{when!r} is not a date and time"
            administered_at = None
        if not errors:
            try:
                saved = services.record_administration(
                    user=_user(request),
                    patient=patient,
                    instrument=instrument,
                    answers=answers_from(form, definition),
                    administered_at=administered_at,
                    request=request,
                )
            except services.ScaleInputError as exc:
                errors = exc.errors
            else:
                # C-SSRS screener and BPI-SF have no total (their result is a triage level or subscores).
                total = f"{saved.total:g}" if saved.total is not None else "saved"
                note = f"{definition.name}: {total}" + (f" ({saved.band})" if saved.band else "")
                if saved.flags:
                    note += " — flagged: " + "; ".join(f.get("text") or f["rule"] for f in saved.flags)
                messages.success(request, note)
                return redirect("measures:scales", patient_id=patient.pk)
    return render(
        request,
        "measures/enter.html",
        {
            "patient": patient,
            "definition": definition,
            "form": form,
            "errors": errors,
            # Which answers raise a safety alert, with source and "default, unconfirmed" where so.
            "safety_rules": [r for r in definition.flag_rules if r.kind in services.ALERT_KINDS],
        },
        status=422 if errors else 200,
    )


@allow(*PATIENT_REGISTRY)
@require_POST
def create_link(request: HttpRequest, patient_id: str) -> HttpResponse:
    patient = _patient(request, patient_id, "self-report link")
    form = LinkForm(
        request.POST,
        allowed=services.SELF_REPORT_INSTRUMENTS,
        names={c: INSTRUMENTS[c].name for c in INSTRUMENTS},
    )
    if not form.is_valid():
        messages.error(request, "Choose at least one questionnaire for the link.")
        return redirect("patients:chart", patient_id=patient.pk)
    link, token = services.create_link(
        user=_user(request), patient=patient, instruments=form.cleaned_data["instruments"], request=request
    )
    url = request.build_absolute_uri(reverse("measures:self_report", args=[token]))
    emailed = bool(request.POST.get("email")) and services.email_link(
        link=link, token=token, base_url=request.build_absolute_uri("/")
    )
    return render(
        request,
        "measures/link_created.html",
        {
            "patient": patient,
            "link": link,
            "url": url,
            "names": [INSTRUMENTS[c].name for c in link.instruments],
            "emailed": emailed,
        },
    )


@allow(*CLINICIANS)
@require_POST
def acknowledge(request: HttpRequest, alert_id: int) -> HttpResponse:
    form = AcknowledgeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Write a short note of what you did before acknowledging the alert.")
        return redirect("core:home")
    try:
        services.acknowledge_alert(
            user=_user(request), alert_id=alert_id, note=form.cleaned_data["note"], request=request
        )
    except services.MeasuresError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Alert acknowledged.")
    # Back where the form was (the session page's banner), never to another host.
    back = request.POST.get("next") or ""
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=True):
        return redirect(back)
    return redirect("core:home")


@allow(*CLINICIANS)
@require_POST
def on_duty(request: HttpRequest) -> HttpResponse:
    from ketaclinic.accounts.services import set_on_duty

    site = set_on_duty(user=_user(request), site_id=request.POST.get("site"), request=request)
    messages.success(request, f"You are on duty at {site.name}." if site else "You are off duty.")
    return redirect("core:home")


@public
@require_http_methods(["GET", "POST"])
def self_report(request: HttpRequest, token: str) -> HttpResponse:
    if request.user.is_authenticated:
        # The answers are stored as the patient's own; a staff session (front desk, who may not enter
        # scales, or a clinician) must not fill them in (issue 15, Low). Nothing about the link is read.
        message = (
            "You are signed in as staff. The patient fills in this questionnaire on their own device, or "
            "on this one after you sign out. Staff enter scales from the patient's chart."
        )
        return render(request, "measures/self_report_closed.html", {"message": message}, status=403)
    address = client_ip(request)
    try:
        link = services.open_link(token, address=address)
    except services.RateLimited as exc:
        return render(request, "measures/self_report_closed.html", {"message": str(exc)}, status=429)
    except services.LinkUnavailable as exc:
        return render(request, "measures/self_report_closed.html", {"message": str(exc)}, status=410)
    forms_ = [
        (INSTRUMENTS[code], answers_form(INSTRUMENTS[code], request.POST or None, prefix=code))
        for code in link.instruments
    ]
    errors: dict[str, str] = {}
    if request.method == "POST":
        answers = {d.code: answers_from(f, d) for d, f in forms_}
        try:
            submission = services.submit_link(token, answers, address=address, request=request)
        except services.ScaleInputError as exc:
            errors = exc.errors
        except services.LinkUnavailable as exc:
            return render(request, "measures/self_report_closed.html", {"message": str(exc)}, status=410)
        else:
            return render(
                request,
                "measures/self_report_done.html",
                {
                    "flagged": submission.flagged,
                    "crisis": submission.crisis_resources,
                    "site": link.patient.site.name,
                },
            )
    return render(
        request,
        "measures/self_report.html",
        {
            "first_name": link.patient.given_name,
            "forms": forms_,
            "errors": errors,
        },
        status=422 if errors else 200,
    )


@allow(ADMIN, PRESCRIBER)
def outcomes(request: HttpRequest) -> HttpResponse:
    """The clinic's outcomes over a period (``?site=<id>&since=YYYY-MM-DD&until=YYYY-MM-DD``; no PHI in
    the query): counts only, for the clinic's prescribers and administrators (quality review)."""
    from datetime import date, timedelta

    from django.utils import timezone

    from ketaclinic.accounts.services import covered_sites

    user = _user(request)
    sites = covered_sites(user)
    site = next((s for s in sites if str(s.pk) == request.GET.get("site")), None)
    today = timezone.localdate()
    errors: dict[str, str] = {}
    picked: dict[str, date] = {}
    for name, default in (("since", today - timedelta(days=90)), ("until", today)):
        raw = request.GET.get(name) or ""
        try:
            picked[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            errors[name] = f"{raw!r} is not a date (YYYY-MM-DD)"
            picked[name] = default
    report = None
    if not errors:
        try:
            report = services.outcomes_report(
                user=user, site=site, since=picked["since"], until=picked["until"], request=request
            )
        except services.OutcomesInputError as exc:
            errors = exc.errors
    return render(
        request,
        "measures/outcomes.html",
        {"report": report, "sites": sites, "site": site, "errors": errors, **picked},
        status=422 if errors else 200,
    )
