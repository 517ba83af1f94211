"""Registry pages: search, register, edit, chart. Views translate HTTP; services decide and audit."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.forms import BreakGlassForm
from ketaclinic.accounts.models import Site, User
from ketaclinic.audit.models import Action, AuditEntry
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.core.access import CLINICIANS, PATIENT_REGISTRY, PRESCRIBER, allow
from ketaclinic.measures.charts import trajectories_for
from ketaclinic.measures.forms import LinkForm
from ketaclinic.measures.services import SELF_REPORT_INSTRUMENTS
from ketaclinic.patients import services
from ketaclinic.patients.forms import PatientForm, PatientSearchForm
from ketaclinic.patients.models import Patient


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _prescribers_for(user: User) -> object:
    return User.objects.filter(organization_id=user.org_id, role=PRESCRIBER, is_active=True)


def _sites_for(user: User) -> object:
    sites = Site.objects.filter(organization_id=user.org_id)
    return sites if services.covers_all_sites(user) else sites.filter(pk__in=user.sites.all())


@allow(*PATIENT_REGISTRY)
@require_http_methods(["GET", "POST"])
def patient_list(request: HttpRequest) -> HttpResponse:
    """Search is a POST so names and birth dates never appear in URLs, logs or browser history."""
    user = _user(request)
    form = PatientSearchForm(request.POST or None)
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        result = services.search_patients(
            user=user,
            name=data["name"] or "",
            mrn=data["mrn"] or "",
            date_of_birth=data["date_of_birth"],
            page=data["page"] or 1,
            request=request,
        )
    elif request.method == "GET":
        result = services.search_patients(user=user, request=request)
    template = "patients/_results.html" if request.headers.get("HX-Request") else "patients/list.html"
    return render(request, template, {"form": form, "result": result})


def _form_errors(form: PatientForm, exc: services.PatientValidationError) -> None:
    for field, reason in exc.errors.items():
        label = form.fields[field].label if field in form.fields else field
        form.add_error(field if field in form.fields else None, f"{label or field} {reason}.")


@allow(*PATIENT_REGISTRY)
@require_http_methods(["GET", "POST"])
def patient_create(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    form = PatientForm(request.POST or None, sites=_sites_for(user), prescribers=_prescribers_for(user))
    duplicates: services.PossibleDuplicate | None = None
    reason = request.POST.get(services.NOT_A_DUPLICATE_FIELD, "")
    age_reason = request.POST.get(services.OUTSIDE_AGE_RANGE_FIELD, "")
    outside_age: services.OutsideAgeRange | None = None
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.create_patient(
                user=user,
                data=form.service_data(),
                not_a_duplicate_reason=reason,
                outside_age_range_reason=age_reason,
                request=request,
            )
        except services.PossibleDuplicate as exc:
            duplicates = exc
            form.add_error(None, "Nothing was saved: this may be a patient who is already registered.")
        except services.OutsideAgeRange as exc:
            outside_age = exc
            form.add_error(None, f"Nothing was saved: {exc.message}.")
        except services.PatientValidationError as exc:
            _form_errors(form, exc)
        else:
            messages.success(request, f"Registered {patient.display_name} ({patient.mrn}).")
            return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "patients/form.html",
        {
            "form": form,
            "creating": True,
            "duplicates": duplicates,
            "not_a_duplicate_reason": reason,
            "outside_age": outside_age,
            "outside_age_range_reason": age_reason,
        },
        status=422 if form.errors else 200,
    )


def _load(request: HttpRequest, patient_id: str, purpose: str) -> Patient | HttpResponse:
    try:
        return services.get_patient(
            user=_user(request), patient_id=patient_id, request=request, purpose=purpose
        )
    except services.PatientNotFound:
        raise Http404("No such patient.") from None
    except services.OutsideYourSites:
        return redirect("patients:break_glass", patient_id=patient_id)


@allow(*PATIENT_REGISTRY)
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: str) -> HttpResponse:
    user = _user(request)
    loaded = _load(request, patient_id, "edit")
    if isinstance(loaded, HttpResponse):
        return loaded
    patient = loaded
    initial = {name: getattr(patient, name) for name in services.EDITABLE_FIELDS if name != "site"}
    initial.update(
        site=patient.site, version=patient.version, date_of_birth=patient.date_of_birth.isoformat()
    )
    form = PatientForm(
        request.POST or None, initial=initial, sites=_sites_for(user), prescribers=_prescribers_for(user)
    )
    conflict = None
    duplicates: services.PossibleDuplicate | None = None
    reason = request.POST.get(services.NOT_A_DUPLICATE_FIELD, "")
    age_reason = request.POST.get(services.OUTSIDE_AGE_RANGE_FIELD, "")
    outside_age: services.OutsideAgeRange | None = None
    if request.method == "POST" and form.is_valid():
        try:
            services.update_patient(
                user=user,
                patient=patient,
                data=form.service_data(),
                expected_version=form.cleaned_data.get("version"),
                not_a_duplicate_reason=reason,
                outside_age_range_reason=age_reason,
                request=request,
            )
        except services.PossibleDuplicate as exc:
            duplicates = exc
            form.add_error(
                None, "Nothing was saved: with this name and birth date it may be another patient."
            )
        except services.OutsideAgeRange as exc:
            outside_age = exc
            form.add_error(None, f"Nothing was saved: {exc.message}.")
        except services.PatientValidationError as exc:
            _form_errors(form, exc)
        except services.PatientConflict as exc:
            conflict = exc
        else:
            messages.success(request, "Saved.")
            return redirect("patients:chart", patient_id=patient.pk)
    status = 409 if conflict else (422 if form.errors else 200)
    return render(
        request,
        "patients/form.html",
        {
            "form": form,
            "patient": patient,
            "conflict": conflict,
            "creating": False,
            "duplicates": duplicates,
            "not_a_duplicate_reason": reason,
            "outside_age": outside_age,
            "outside_age_range_reason": age_reason,
        },
        status=status,
    )


@allow(*PATIENT_REGISTRY)
def patient_chart(request: HttpRequest, patient_id: str) -> HttpResponse:
    loaded = _load(request, patient_id, "chart")
    if isinstance(loaded, HttpResponse):
        return loaded
    patient = loaded
    # The record's own change history (demographics): clinical events are shown in their sections, and
    # front desk must not see them here either. The full trail is the audit report.
    history = (
        AuditEntry.objects.filter(
            patient=patient, action__in=[Action.ADD, Action.CHANGE], category="demographics"
        )
        .select_related("user")
        .order_by("-seq")[:50]
    )
    context: dict[str, object] = {
        "patient": patient,
        "body": services.body_size(patient),
        "age": services.age_on_chart(patient),
        "history": history,
    }
    if _user(request).role in CLINICIANS:
        context["trajectories"] = trajectories_for(request, patient)
        context["open_alerts"] = patient.safety_alerts.filter(acknowledged_at__isnull=True)
    context["link_form"] = LinkForm(
        allowed=SELF_REPORT_INSTRUMENTS, names={code: i.name for code, i in INSTRUMENTS.items()}
    )
    return render(request, "patients/chart.html", context)


@allow(*PATIENT_REGISTRY)
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, patient_id: str) -> HttpResponse:
    from django.conf import settings

    user = _user(request)
    patient = (
        Patient.objects.filter(pk=patient_id, organization_id=user.org_id).select_related("site").first()
    )
    if patient is None:
        raise Http404("No such patient.")
    if services.visible_patients(user).filter(pk=patient.pk).exists():
        return redirect("patients:chart", patient_id=patient.pk)
    enabled = settings.KETACLINIC_BREAK_GLASS_ENABLED and user.break_glass_allowed
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST":
        if not enabled:
            raise PermissionDenied
        if form.is_valid():
            try:
                services.open_break_glass(
                    user=user, patient=patient, reason=form.cleaned_data["reason"], request=request
                )
            except services.PatientError as exc:
                form.add_error("reason", str(exc))
            else:
                return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "patients/break_glass.html",
        {"form": form, "enabled": enabled, "site": patient.site},
        status=403 if not enabled else 200,
    )
