"""Errors carry their status (core/errors.py, issue 17 point 5): every app's domain errors subclass one base,
and each edge — the JSON API, the web pages, FHIR — answers one with its status through one handler.
Endpoints never catch a domain error only to translate it (an AST scan of every app's api.py)."""

from __future__ import annotations

import ast
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import path

from ketaclinic import urls as ketaclinic_urls
from ketaclinic.accounts import alert_policy, invitations, site_identifiers, sites, staff
from ketaclinic.assessment import services as assessment
from ketaclinic.chairside import rems_services
from ketaclinic.chairside import services as chairside
from ketaclinic.consent import services as consent
from ketaclinic.core.access import STAFF_ROLES, allow, delegated
from ketaclinic.core.api import FieldErrors, api, error_body
from ketaclinic.core.errors import DomainError, InputError, fields_under
from ketaclinic.interop.fhir.views import endpoint
from ketaclinic.ledger import services as ledger
from ketaclinic.measures import services as measures
from ketaclinic.monitoring import services as monitoring
from ketaclinic.patients import services as patients
from ketaclinic.treatment import library, session_settings
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.arrivals import ArrivalRefused

SRC = Path(__file__).resolve().parents[2] / "src" / "ketaclinic"

# --- the base and every app's errors ----------------------------------------------------------------------

EXPECTED_STATUS: list[tuple[type[DomainError], int]] = [
    (patients.PatientValidationError, 422),
    (patients.PossibleDuplicate, 422),
    (patients.OutsideAgeRange, 422),
    (patients.PatientNotFound, 404),
    (patients.OutsideYourSites, 403),
    (patients.PatientConflict, 409),
    (assessment.AssessmentError, 409),
    (assessment.AssessmentValidationError, 422),
    (assessment.NotAllowed, 403),
    (assessment.IntakeConflict, 409),
    (assessment.NotFound, 404),
    (measures.MeasuresError, 409),
    (measures.ScaleInputError, 422),
    (measures.OutcomesInputError, 422),
    (measures.LinkUnavailable, 410),
    (measures.RateLimited, 429),
    (monitoring.MonitoringError, 409),
    (monitoring.MonitoringValidationError, 422),
    (treatment.TreatmentError, 409),
    (treatment.PlanValidationError, 422),
    (treatment.NotFound, 404),
    (treatment.TreatmentForbidden, 403),
    (ArrivalRefused, 409),
    (library.LibraryError, 409),
    (library.LibraryValidationError, 422),
    (library.LibraryConflict, 409),
    (session_settings.SettingsError, 422),
    (session_settings.SettingsForbidden, 403),
    (chairside.SessionError, 409),
    (chairside.SessionInputError, 422),
    (chairside.SessionConflict, 409),
    (chairside.SessionNotFound, 404),
    (rems_services.RemsError, 409),
    (rems_services.RemsInputError, 422),
    (rems_services.RemsIncomplete, 422),
    (rems_services.RemsConflict, 409),
    (ledger.LedgerError, 409),
    (ledger.LedgerInputError, 422),
    (consent.ConsentError, 409),
    (consent.ConsentInputError, 422),
    (consent.ConsentForbidden, 403),
    (consent.ConsentNotFound, 404),
    (staff.StaffError, 422),
    (staff.StaffForbidden, 403),
    (staff.StaffNotFound, 404),
    (staff.StaffConflict, 409),
    (alert_policy.AlertPolicyError, 422),
    (alert_policy.AlertPolicyForbidden, 403),
    (alert_policy.AlertPolicyNotFound, 404),
    (sites.SiteSettingsError, 422),
    (site_identifiers.SiteIdentifiersError, 422),
    (invitations.LinkUnavailable, 410),
    (FieldErrors, 422),
    (InputError, 422),
]


@pytest.mark.parametrize(("cls", "status"), EXPECTED_STATUS, ids=lambda v: getattr(v, "__qualname__", str(v)))
def test_every_apps_error_is_a_domain_error_with_its_status(cls: type[DomainError], status: int) -> None:
    assert issubclass(cls, DomainError)
    assert cls.status == status


def test_the_base_keeps_what_subclasses_set_and_refuses_unknown_statuses() -> None:
    exc = treatment.PlanValidationError({"dose_mg": "at most 56"})
    assert exc.errors == {"dose_mg": "at most 56"} and exc.status == 422 and str(exc) == "dose_mg: at most 56"
    forbidden = staff.StaffForbidden({"role": "only an administrator"})  # sets errors before the base
    assert forbidden.errors == {"role": "only an administrator"} and forbidden.status == 403
    plain = chairside.SessionError("The session is closed.")
    assert plain.errors == {} and plain.message == "The session is closed." and plain.text() == plain.message
    assert DomainError("gone", status=410).status == 410 and DomainError("x").status == 409
    with pytest.raises(ValueError, match="status 500"):
        DomainError("x", status=500)
    with pytest.raises(TypeError, match="status 200"):
        type("Odd", (DomainError,), {"status": 200})


def test_fields_under_names_nested_fields_and_keeps_the_rest() -> None:
    with pytest.raises(assessment.AssessmentValidationError) as caught:
        with fields_under("data", keep={"base_version"}):
            raise assessment.AssessmentValidationError({"age": "must be 18 or more", "base_version": "stale"})
    assert caught.value.errors == {"data.age": "must be 18 or more", "base_version": "stale"}
    assert caught.value.status == 422


# --- the API edge -----------------------------------------------------------------------------------------


def test_api_handler_body_for_fields_and_for_a_message(rf: RequestFactory, db: Any) -> None:
    request = rf.post("/api/x")
    with transaction.atomic():  # the handler rolls the request's transaction back
        refused = api.on_exception(request, InputError({"dose_mg": "at most 56 mg (source: label)"}))
    assert refused.status_code == 422
    assert json.loads(refused.content) == {
        "detail": [
            {"loc": ["body", "dose_mg"], "msg": "at most 56 mg (source: label)", "type": "value_error"}
        ]
    }
    with transaction.atomic():
        conflict = api.on_exception(request, chairside.SessionError("The session is closed."))
    assert conflict.status_code == 409 and json.loads(conflict.content) == {
        "detail": "The session is closed."
    }
    # A refusal that names fields but is not about input (a role) answers its message with its status.
    assert error_body(staff.StaffForbidden({"role": "only an administrator"})) == {
        "detail": "role: only an administrator"
    }
    assert error_body(FieldErrors({"site": "unknown"}, location="query"))["detail"][0]["loc"] == [
        "query",
        "site",
    ]


def _api(client: Client, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    call = getattr(client, method)
    return (
        call(url, data=json.dumps(body), content_type="application/json") if body is not None else call(url)
    )


def test_endpoints_that_caught_answer_the_same_through_the_handler(
    prescriber: Any, admin: Any, second_site: Any, patient: Any, make_patient: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), prescriber)
    # treatment/api.py read_plan caught services.NotFound into HttpError(404, "No such plan.").
    missing = _api(client, "get", f"/api/treatment/plans/{uuid.uuid4()}")
    assert (missing.status_code, missing.json()) == (404, {"detail": "No such plan."})
    # assessment/api.py sign_intake caught NotFound into HttpError(404, "No such intake.").
    unsigned = _api(client, "post", f"/api/assessment/intakes/{uuid.uuid4()}/sign")
    assert (unsigned.status_code, unsigned.json()) == (404, {"detail": "No such intake."})
    # patients/api.py: OutsideYourSites was HttpError(403, ...); reached through a plan it stays not found.
    elsewhere = make_patient(admin, site=second_site, given_name="Elsewhere")
    own = _api(client, "get", f"/api/patients/{elsewhere.pk}")
    assert (own.status_code, own.json()) == (
        403,
        {"detail": "This patient is registered at a site you do not cover."},
    )
    related = _api(
        client,
        "post",
        f"/api/treatment/patients/{elsewhere.pk}/plans",
        {"protocol": "x", "start": "2030-01-07"},
    )
    assert (related.status_code, related.json()) == (404, {"detail": "No such patient."})
    # patients/api.py update caught PatientConflict into HttpError(409, str(exc)); nothing is changed.
    stale = _api(
        client,
        "patch",
        f"/api/patients/{patient.pk}",
        {"version": patient.version + 5, "given_name": "Changed"},
    )
    assert stale.status_code == 409
    assert stale.json() == {
        "detail": f"Someone else changed this record (now version {patient.version}) while you were editing. "
        "Your changes were not saved; review the current values and apply them again."
    }
    patient.refresh_from_db()
    assert patient.given_name == "Testa"


# --- the web edge -----------------------------------------------------------------------------------------


@allow(*STAFF_ROLES)
def _refuse_conflict(request: HttpRequest) -> HttpResponse:
    raise treatment.TreatmentError("This course was already stopped.")


@allow(*STAFF_ROLES)
def _refuse_fields(request: HttpRequest) -> HttpResponse:
    raise treatment.PlanValidationError({"dose_mg": "is above the protocol's 56 mg"})


@delegated
def _fhir_refuse(request: HttpRequest) -> HttpResponse:
    raise treatment.PlanValidationError({"dose_mg": "is above the protocol's 56 mg"})


urlpatterns = [  # the real URL map (the page's menu links to it) and two views that raise
    path("test-errors/conflict/", _refuse_conflict),
    path("test-errors/fields/", _refuse_fields),
    *ketaclinic_urls.urlpatterns,
]


def test_a_domain_error_escaping_a_web_view_answers_its_status_not_500(
    settings: Any, nurse: Any, sign_in: Any
) -> None:
    settings.ROOT_URLCONF = __name__
    client = sign_in(Client(raise_request_exception=False), nurse)
    conflict = client.get("/test-errors/conflict/")
    assert conflict.status_code == 409
    page = conflict.content.decode()
    assert "Not done" in page and "This course was already stopped." in page
    fields = client.get("/test-errors/fields/")
    assert fields.status_code == 422
    page = fields.content.decode()
    assert (
        "Nothing was saved" in page and "<strong>dose_mg</strong> is above the protocol&#x27;s 56 mg" in page
    )


# --- the FHIR edge ----------------------------------------------------------------------------------------


def test_fhir_endpoint_answers_a_domain_error_as_an_operation_outcome(rf: RequestFactory, db: Any) -> None:
    view = endpoint("GET")(_fhir_refuse)
    with transaction.atomic():
        answer = view(rf.get("/fhir/x", HTTP_ACCEPT="application/fhir+json"))
    assert answer.status_code == 422
    assert json.loads(answer.content) == {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": "is above the protocol's 56 mg",
                "expression": ["dose_mg"],
            }
        ],
    }

    @delegated
    def missing(request: HttpRequest) -> HttpResponse:
        raise patients.PatientNotFound("No such patient.")

    with transaction.atomic():
        gone = endpoint("GET")(missing)(rf.get("/fhir/x"))
    assert gone.status_code == 404
    assert json.loads(gone.content)["issue"] == [
        {"severity": "error", "code": "not-found", "diagnostics": "No such patient."}
    ]


# --- endpoints never catch -----------------------------------------------------------------------------------

#: The only try/except left in the apps' api.py modules, each with why it is not a translation to HTTP.
ALLOWED_TRY = {
    ("consent/api.py", "_decode"): "parses base64 text (binascii.Error) into a field error, no service call",
    ("consent/api.py", "_form"): "a form id naming no form of the clinic is a bad field (422), not a 404",
}


def _try_blocks() -> set[tuple[str, str]]:
    found = set()
    for module in sorted(SRC.glob("*/api.py")):
        tree = ast.parse(module.read_text())
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.Try | ast.TryStar):
                        found.add((f"{module.parent.name}/api.py", function.name))
    return found


def test_no_api_module_catches_a_domain_error_to_translate_it() -> None:
    assert _try_blocks() == set(ALLOWED_TRY)
    handlers = [
        f"{module.parent.name}/api.py"
        for module in sorted(SRC.glob("*/api.py"))
        if "exception_handler(" in module.read_text()
    ]
    assert handlers == ["core/api.py"]  # one handler for the API edge
