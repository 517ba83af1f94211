"""FHIR R4 HTTP edge: translate requests to the services and answer ``application/fhir+json``.

Every view is ``@delegated``: it authorises the request itself from the bearer token and refuses by default
(``_authorised`` runs before anything else). ``metadata`` and the SMART configuration are public by the
FHIR and SMART specifications. Errors are OperationOutcomes: 400 bad parameters, 401 no or bad token,
403 scope does not cover the type, 404 unknown type or resource.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ketaclinic.audit.models import Action
from ketaclinic.core.access import delegated
from ketaclinic.interop.fhir import auth, documents, export, services
from ketaclinic.interop.fhir.models import ExportStatus
from ketaclinic.interop.fhir.params import SearchError, parse_search
from ketaclinic.interop.fhir.resources import REGISTRY, ResourceType, include_options


def _json(doc: Any, status: int = 200, content_type: str = documents.FHIR_JSON) -> HttpResponse:
    return HttpResponse(json.dumps(doc), status=status, content_type=content_type)


def _error(status: int, code: str, text: str, expression: str | None = None) -> HttpResponse:
    response = _json(documents.outcome([(code, text, expression)]), status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return response


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def _authorised(request: HttpRequest) -> auth.Grant | HttpResponse:
    raw = auth.bearer(request)
    grant = auth.grant_for_token(raw) if raw else None
    if grant is None:
        if raw:  # a presented token that fails is audited; a request without one is simply refused
            auth.record_denied(request, None, "expired or unknown bearer token")
        return _error(401, "login", "A valid bearer token is required (POST /fhir/token).")
    return grant


def _rtype(name: str) -> ResourceType | HttpResponse:
    rtype = REGISTRY.get(name)
    if rtype is None:
        return _error(404, "not-found", f"{name} is not a resource type this server offers.")
    return rtype


def _bad_params(exc: SearchError) -> HttpResponse:
    issues = [
        ("not-supported" if "is not a" in reason else "invalid", f"{name}: {reason}", name)
        for name, reason in exc.errors.items()
    ]
    return _json(documents.outcome(issues), 400)


def _forbidden(request: HttpRequest, grant: auth.Grant, exc: auth.Forbidden) -> HttpResponse:
    auth.record_denied(request, grant, str(exc))
    return _error(403, "forbidden", str(exc))


# --- discovery -------------------------------------------------------------------------------------------


@delegated
@require_http_methods(["GET"])
def metadata(request: HttpRequest) -> HttpResponse:
    return _json(documents.capability_statement(base=_base(request), now=timezone.now()))


@delegated
@require_http_methods(["GET"])
def smart_configuration(request: HttpRequest) -> HttpResponse:
    return _json(documents.smart_configuration(base=_base(request)), content_type="application/json")


# --- OAuth2 token endpoint -------------------------------------------------------------------------------


@delegated
@csrf_exempt
@require_http_methods(["POST"])
def token(request: HttpRequest) -> HttpResponse:
    def oauth_error(exc: auth.TokenError) -> HttpResponse:
        response = _json(
            {"error": exc.error, "error_description": exc.description}, exc.status, "application/json"
        )
        if exc.status == 401:
            response["WWW-Authenticate"] = 'Basic realm="fhir"'
        return response

    if request.content_type != "application/x-www-form-urlencoded":
        return oauth_error(auth.TokenError("invalid_request", "Send application/x-www-form-urlencoded."))
    basic = auth.basic_credentials(request.headers.get("Authorization", ""))
    body_id, body_secret = request.POST.get("client_id", ""), request.POST.get("client_secret", "")
    if basic and (body_secret or (body_id and body_id != basic[0])):
        return oauth_error(auth.TokenError("invalid_request", "Use one client authentication method."))
    client_id, secret = basic or (body_id, body_secret)
    if not client_id or not secret:
        return oauth_error(auth.TokenError("invalid_client", "Client credentials are required.", status=401))
    try:
        raw, row = auth.issue_token(
            client_id=client_id,
            secret=secret,
            grant_type=request.POST.get("grant_type", ""),
            scope=request.POST.get("scope"),
            request=request,
        )
    except auth.TokenError as exc:
        return oauth_error(exc)
    doc: dict[str, Any] = {
        "access_token": raw,
        "token_type": "Bearer",
        "expires_in": int((row.expires_at - row.issued_at).total_seconds()),
        "scope": row.scopes,
    }
    if row.patient_id:
        doc["patient"] = str(row.patient_id)
    return _json(doc, content_type="application/json")


# --- read and search -------------------------------------------------------------------------------------


def _lenient(request: HttpRequest) -> bool:
    """``Prefer: handling=lenient`` ignores unknown parameters (R4 search.html §3.1.1.2); strict, the
    default here, refuses them with 400 (R4 lets the server choose the default)."""
    prefer = [p.strip().replace(" ", "") for p in request.headers.get("Prefer", "").split(",")]
    return "handling=lenient" in prefer


def _search(request: HttpRequest, name: str, pairs: list[tuple[str, str]]) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    rtype = _rtype(name)
    if isinstance(rtype, HttpResponse):
        return rtype
    try:
        query = parse_search(
            pairs,
            rtype.param_types,
            rtype.sort_keys,
            targets=rtype.reference_targets,
            include_options=include_options(rtype),
            lenient=_lenient(request),
        )
        page = services.search(
            grant=grant, rtype=rtype, query=query, request=request, detail=request.get_full_path()
        )
    except SearchError as exc:
        return _bad_params(exc)
    except auth.Forbidden as exc:
        return _forbidden(request, grant, exc)
    base = _base(request)
    doc = documents.searchset(
        base=base,
        type_url=f"{base}{name}",
        params=pairs,
        resources=page.resources,
        total=page.total,
        count=query.count,
        now=timezone.now(),
        next_cursor=page.next_cursor,
        previous_cursor=page.previous_cursor,
        included=page.included,
        issues=page.issues,
        ignored=[n for n, _reason in query.ignored],
    )
    return _json(doc)


@delegated
@require_http_methods(["GET"])
def search_type(request: HttpRequest, rtype: str) -> HttpResponse:
    return _search(request, rtype, _pairs(request.GET))


@delegated
@csrf_exempt
@require_http_methods(["POST"])
def search_post(request: HttpRequest, rtype: str) -> HttpResponse:
    if request.content_type != "application/x-www-form-urlencoded":
        return _error(415, "not-supported", "POST _search takes application/x-www-form-urlencoded.")
    return _search(request, rtype, _pairs(request.GET) + _pairs(request.POST))


def _pairs(data: Any) -> list[tuple[str, str]]:
    return [(key, value) for key, values in data.lists() for value in values]


@delegated
@require_http_methods(["GET"])
def read(request: HttpRequest, rtype: str, fhir_id: str) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    resource_type = _rtype(rtype)
    if isinstance(resource_type, HttpResponse):
        return resource_type
    try:
        doc = services.read(grant=grant, rtype=resource_type, fhir_id=fhir_id, request=request)
    except auth.Forbidden as exc:
        return _forbidden(request, grant, exc)
    except services.NotFound as exc:
        return _error(404, "not-found", str(exc))
    response = _json(doc)
    if "versionId" in doc.get("meta", {}):
        response["ETag"] = f'W/"{doc["meta"]["versionId"]}"'
    return response


@delegated
@require_http_methods(["GET"])
def everything(request: HttpRequest, fhir_id: str) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    if request.GET:
        return _bad_params(SearchError({k: "is not supported by $everything" for k in request.GET}))
    try:
        resources = services.everything(grant=grant, patient_id=fhir_id, request=request)
    except auth.Forbidden as exc:
        return _forbidden(request, grant, exc)
    except services.NotFound as exc:
        return _error(404, "not-found", str(exc))
    base = _base(request)
    links = [{"relation": "self", "url": request.build_absolute_uri()}]
    return _json(
        documents.bundle(
            base=base, resources=resources, total=len(resources), links=links, now=timezone.now()
        )
    )


# --- bulk export -----------------------------------------------------------------------------------------


def _kickoff(request: HttpRequest, *, system_level: bool) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    if "respond-async" not in request.headers.get("Prefer", ""):
        return _error(400, "invalid", "$export is asynchronous: send the header Prefer: respond-async.")
    try:
        wanted = export.parse_kickoff(_pairs(request.GET), grant=grant, system_level=system_level)
    except SearchError as exc:
        return _bad_params(exc)
    except auth.Forbidden as exc:
        return _forbidden(request, grant, exc)
    job = export.start(grant=grant, wanted=wanted, request_url=request.build_absolute_uri(), request=request)
    response = HttpResponse(status=202)
    response["Content-Location"] = f"{_base(request)}$export-status/{job.pk}"
    return response


@delegated
@require_http_methods(["GET"])
def export_system(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, system_level=True)


@delegated
@require_http_methods(["GET"])
def export_patients(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, system_level=False)


@delegated
@require_http_methods(["GET", "DELETE"])
def export_status(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    job = export.find(grant, export_id)
    if job is None:
        return _error(404, "not-found", "No such export for this client.")
    if request.method == "DELETE":
        job.delete()
        return HttpResponse(status=202)
    if job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        response = HttpResponse(status=202)
        response["X-Progress"] = job.status
        response["Retry-After"] = "5"
        return response
    if job.status == ExportStatus.FAILED:
        return _error(500, "exception", f"The export failed: {job.error}")
    return _json(export.manifest(job, base=_base(request)), content_type="application/json")


@delegated
@require_http_methods(["GET"])
def export_file(request: HttpRequest, export_id: uuid.UUID, rtype: str) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    job = export.find(grant, export_id)
    readable = job is not None and export.may_read_file(grant, rtype)
    file = job.files.filter(resource_type=rtype).first() if job is not None and readable else None
    if job is None or file is None:
        return _error(404, "not-found", "No such export file for this client.")
    services.audit_disclosure(
        grant=grant,
        action=Action.EXPORT,
        object_type="BulkExportFile",
        object_id=str(file.pk),
        patient_ids=[],
        request=request,
        detail=f"downloaded {rtype}.ndjson of export {job.pk} ({file.count} resources)",
    )
    return HttpResponse(file.ndjson, content_type=documents.NDJSON)


@delegated
@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return _error(404, "not-found", f"{request.path} is not a FHIR endpoint of this server.")
