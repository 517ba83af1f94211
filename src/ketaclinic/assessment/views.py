"""Intake and screening pages. Views translate HTTP; ``services`` decides and audits."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from ketaclinic.accounts.models import User
from ketaclinic.assessment import services
from ketaclinic.assessment.forms import GROUPS, IntakeForm, OverrideForm, initial_from
from ketaclinic.assessment.intake_data import SCALE_LABELS, IntakeDataError, clean_intake, coded_diagnoses
from ketaclinic.assessment.models import Intake, Screening
from ketaclinic.clinical.conditions import DRUG_LABELS, Drug
from ketaclinic.core.access import CLINICIANS, PRESCRIBER, allow
from ketaclinic.patients import services as patients
from ketaclinic.patients.models import Patient


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


def _summary(intake: Intake) -> list[tuple[str, list[tuple[str, str]]]]:
    """The recorded values grouped as on the form, for reading (unknowns shown as 'unknown')."""
    data = intake.data
    form = IntakeForm()
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for title, names in GROUPS:
        rows: list[tuple[str, str]] = []
        for name in names:
            if name in (
                "diagnoses",
                "medications_recorded",
                "medications_text",
                "trials_recorded",
                "trials_text",
            ):
                continue
            if name.startswith("scale_"):
                key = name[6:]
                value = (data.get("baseline_scales") or {}).get(key)
                if value is not None:
                    rows.append((f"{SCALE_LABELS[key]} total", f"{value:g}"))
                continue
            value = data.get(name)
            if name in ("indication", "childbearing_potential_reason") and value:
                value = dict(form.fields[name].choices).get(value, value)  # type: ignore[attr-defined]
            rows.append((str(form.fields[name].label), "—" if value in (None, "") else str(value)))
        out.append((title, rows))
    return out


def _screening_context(screening: Screening) -> dict[str, Any]:
    stale = services.is_stale(screening)
    overrides = {o.drug: o for o in screening.overrides.select_related("overridden_by")}
    drugs = []
    for drug in Drug:
        decision = screening.decisions.get(drug.value)
        if decision is None:
            continue
        findings = [f for f in screening.findings if drug.value in f["drugs"]]
        check = services.override_check_for(screening, drug)
        drugs.append(
            {
                "drug": drug.value,
                "label": DRUG_LABELS[drug],
                "decision": decision,
                "decision_label": services.DECISION_LABELS[decision],
                "findings": [dict(f, severity_label=services.severity_label(f)) for f in findings],
                "override": overrides.get(drug.value),
                # An absolute (label) contraindication: no override form, and an older override row
                # no longer counts (clinical.screening.override_check).
                "overridable": check.overridable,
                "absolute": bool(check.absolute),
                "override_refusal": check.refusal if check.absolute else "",
                "override_form": OverrideForm(initial={"drug": drug.value}),
            }
        )
    return {
        "screening": screening,
        "stale": stale,
        "drugs": drugs,
        "contradictions": services.contradictions(screening),
    }


@allow(*CLINICIANS)
def intake_page(request: HttpRequest, patient_id: Any) -> HttpResponse:
    patient = _patient(request, patient_id, "intake")
    user = _user(request)
    versions = services.intake_versions(user=user, patient=patient, request=request)
    latest = versions[0] if versions else None
    screening = services.latest_screening(patient)
    return render(
        request,
        "assessment/intake.html",
        {
            "patient": patient,
            "intake": latest,
            "versions": versions,
            "summary": _summary(latest) if latest else None,
            "coded": coded_diagnoses(latest.data) if latest else [],
            "medications": latest.data.get("medications") if latest else None,
            "trials": latest.data.get("prior_trials") if latest else None,
            "screening": screening,
            "screening_stale": services.is_stale(screening) if screening else False,
            "is_prescriber": user.role == PRESCRIBER,
        },
    )


@allow(*CLINICIANS)
def intake_version(request: HttpRequest, intake_id: Any) -> HttpResponse:
    try:
        intake = services.get_intake(user=_user(request), intake_id=intake_id, request=request)
    except services.NotFound:
        raise Http404("No such intake.") from None
    latest = services.latest_intake(intake.patient)
    return render(
        request,
        "assessment/intake_version.html",
        {
            "patient": intake.patient,
            "intake": intake,
            "is_latest": latest is not None and latest.pk == intake.pk,
            "summary": _summary(intake),
            "coded": coded_diagnoses(intake.data),
            "medications": intake.data.get("medications"),
            "trials": intake.data.get("prior_trials"),
        },
    )


@allow(*CLINICIANS)
@require_http_methods(["GET", "POST"])
def intake_edit(request: HttpRequest, patient_id: Any) -> HttpResponse:
    patient = _patient(request, patient_id, "edit intake")
    latest = services.latest_intake(patient)
    conflict: services.IntakeConflict | None = None
    if request.method == "POST":
        form = IntakeForm(request.POST)
        if not form.is_valid():
            # Name every bad field at once: the data checks also run on what the form could read.
            try:
                clean_intake(form.to_data(), today=patient.site.today())
            except IntakeDataError as exc:
                form.add_service_errors(exc.errors, skip_marked=True)
        else:
            try:
                services.save_intake(
                    user=_user(request),
                    patient=patient,
                    data=form.to_data(),
                    base_version=form.cleaned_data.get("base_version"),
                    request=request,
                )
            except services.AssessmentValidationError as exc:
                form.add_service_errors(exc.errors)
            except services.IntakeConflict as exc:
                conflict = exc
            else:
                messages.success(request, "Intake saved as a new version. A prescriber signs it next.")
                return redirect("assessment:intake", patient_id=patient.pk)
    else:
        initial = (
            initial_from(latest.data, latest.version)
            if latest
            else {"assessed_on": patient.site.today(), "base_version": None}
        )
        form = IntakeForm(initial=initial)
    status = 409 if conflict else (422 if form.errors else 200)
    return render(
        request,
        "assessment/intake_form.html",
        {"patient": patient, "form": form, "latest": latest, "conflict": conflict},
        status=status,
    )


def _intake_or_404(request: HttpRequest, intake_id: Any) -> Intake:
    try:
        return services.get_intake(user=_user(request), intake_id=intake_id, request=request)
    except services.NotFound:
        raise Http404("No such intake.") from None


def _screening_or_404(request: HttpRequest, screening_id: Any) -> Screening:
    try:
        return services.get_screening(user=_user(request), screening_id=screening_id, request=request)
    except services.NotFound:
        raise Http404("No such screening.") from None


@allow(PRESCRIBER)
@require_POST
def intake_sign(request: HttpRequest, intake_id: Any) -> HttpResponse:
    intake = _intake_or_404(request, intake_id)
    try:
        services.sign_intake(user=_user(request), intake=intake, request=request)
    except services.AssessmentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Intake version {intake.version} signed.")
    return redirect("assessment:intake", patient_id=intake.patient_id)


@allow(*CLINICIANS)
@require_POST
def screening_run(request: HttpRequest, patient_id: Any) -> HttpResponse:
    patient = _patient(request, patient_id, "run screening")
    try:
        screening = services.run_screening(user=_user(request), patient=patient, request=request)
    except services.AssessmentError as exc:
        messages.error(request, exc.message)
        return redirect("assessment:intake", patient_id=patient.pk)
    return redirect("assessment:screening", screening_id=screening.pk)


@allow(*CLINICIANS)
def screening_page(request: HttpRequest, screening_id: Any) -> HttpResponse:
    screening = _screening_or_404(request, screening_id)
    context = _screening_context(screening)
    context.update(patient=screening.patient, is_prescriber=_user(request).role == PRESCRIBER)
    return render(request, "assessment/screening.html", context)


@allow(PRESCRIBER)
@require_POST
def screening_sign(request: HttpRequest, screening_id: Any) -> HttpResponse:
    screening = _screening_or_404(request, screening_id)
    try:
        services.sign_screening(user=_user(request), screening=screening, request=request)
    except services.AssessmentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Screening signed.")
    return redirect("assessment:screening", screening_id=screening.pk)


@allow(PRESCRIBER)
@require_POST
def screening_override(request: HttpRequest, screening_id: Any) -> HttpResponse:
    screening = _screening_or_404(request, screening_id)
    form = OverrideForm(request.POST)
    drug = request.POST.get("drug", "")
    reason = request.POST.get("reason", "")
    try:
        services.override_screening(
            user=_user(request), screening=screening, drug=drug, reason=reason, request=request
        )
    except services.AssessmentValidationError as exc:
        context = _screening_context(screening)
        for item in context["drugs"]:
            if item["drug"] == drug:
                item["override_form"] = form
                item["override_errors"] = exc.errors
        context.update(patient=screening.patient, is_prescriber=True, errors=exc.errors)
        return render(request, "assessment/screening.html", context, status=422)
    except services.AssessmentError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Override recorded with your reason.")
    return redirect("assessment:screening", screening_id=screening.pk)
