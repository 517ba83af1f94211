"""FHIR R4 HTTP edge: translate requests to the services and answer ``application/fhir+json``.

Every view is an ``@endpoint``: ``@delegated`` (it authorises the request itself from the bearer token and
refuses by default: ``_authorised`` runs before anything else) and exempt from CSRF. /fhir is a
token-authenticated API: a browser never attaches a bearer token on its own, so a forged cross-site request
carries none and gains nothing, and the views never read the session cookie (``request.user`` is not used
here; a signed-in staff session without a token is refused like anyone else). ``metadata`` and the SMART
configuration are public by the FHIR and SMART specifications. Errors are OperationOutcomes: 400 bad
parameters, 401 no or bad token (``WWW-Authenticate: Bearer``, RFC 6750 §3), 403 scope does not cover the
type, 404 unknown type or resource or route, 405 a method the route does not offer (with ``Allow``), 406 a
format other than JSON asked for (``Accept`` or ``_format``), 415 a body of the wrong type, 500 the
unexpected. The OAuth endpoints (token, introspect) answer OAuth's JSON errors (RFC 6749 §5.2).
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import http_date
from django.views.decorators.csrf import csrf_exempt

from ketaclinic.audit.models import Action
from ketaclinic.core.access import delegated
from ketaclinic.core.errors import DomainError
from ketaclinic.interop.fhir import auth, documents, export, services
from ketaclinic.interop.fhir.models import ExportStatus
from ketaclinic.interop.fhir.params import FORMATS_JSON, SearchError, parse_search
from ketaclinic.interop.fhir.resources import REGISTRY, ResourceType, include_options

log = logging.getLogger("ketaclinic.fhir")

FORM = "application/x-www-form-urlencoded"
#: What the views answer with: FHIR JSON (application/json is the same document, R4 http.html#mime).
JSON_TYPES = (documents.FHIR_JSON, "application/json")
NDJSON_TYPES = (documents.NDJSON, "application/ndjson", *JSON_TYPES)

View = Callable[..., HttpResponse]


def endpoint(*methods: str, serves: Sequence[str] = JSON_TYPES) -> Callable[[View], View]:
    """Declare a /fhir view: the methods it offers (others: 405 OperationOutcome with ``Allow``), the media
    types it answers with (an ``Accept`` or ``_format`` naming none of them: 406), CSRF-exempt (see the
    module docstring) and delegated; a domain error (core/errors.py) rolls the request back and answers its
    status as an OperationOutcome (:func:`domain_outcome`); an unexpected exception answers 500."""

    def decorate(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = _error(
                    405,
                    "not-supported",
                    f"{request.method} is not supported here; this endpoint offers {', '.join(methods)}.",
                )
                response["Allow"] = ", ".join(methods)
                return response
            refused = _not_acceptable(request, serves)
            if refused is not None:
                return refused
            try:
                return view(request, *args, **kwargs)
            except DomainError as exc:
                if transaction.get_connection().in_atomic_block:
                    transaction.set_rollback(True)
                return domain_outcome(exc)
            except Exception:
                log.exception("FHIR %s %s failed", request.method, view.__name__)
                if transaction.get_connection().in_atomic_block:
                    transaction.set_rollback(True)
                return _error(500, "exception", "The server failed to answer this request.")

        wrapper.fhir_endpoint = True  # type: ignore[attr-defined]  # read by tests/fhir/test_http.py
        return delegated(csrf_exempt(wrapper))

    return decorate


def _media_ranges(header: str) -> list[tuple[str, float]]:
    """``Accept`` as (media range, q) pairs (RFC 9110 §12.5.1); a malformed q counts as 1."""
    ranges = []
    for item in header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 1.0
        ranges.append((media.lower(), q))
    return ranges


def _not_acceptable(request: HttpRequest, serves: Sequence[str]) -> HttpResponse | None:
    """406 when ``_format`` names another format, or when ``Accept`` (present) admits none of ``serves``."""
    # An unencoded "+" in a query string reads as a space: "application/fhir json" is fhir+json.
    formats = [v.split(";")[0].strip().lower().replace(" ", "+") for v in request.GET.getlist("_format")]
    odd = [f for f in formats if f not in FORMATS_JSON and f not in serves and f != "ndjson"]
    if odd:
        return _error(
            406,
            "not-supported",
            f"_format={odd[0]} is not served: this server answers JSON only (application/fhir+json).",
            "_format",
        )
    header = request.headers.get("Accept", "").strip()
    if not header:
        return None
    for media, q in _media_ranges(header):
        if q <= 0:
            continue
        kind, _, _sub = media.partition("/")
        if media in ("*/*", "*") or media in serves or media == "application/json+fhir":
            return None
        if _sub == "*" and any(s.startswith(f"{kind}/") for s in serves):
            return None
    return _error(
        406,
        "not-supported",
        f"Accept: {header[:100]} names no format this endpoint serves ({', '.join(serves)}).",
    )


def _json(doc: Any, status: int = 200, content_type: str = documents.FHIR_JSON) -> HttpResponse:
    return HttpResponse(json.dumps(doc), status=status, content_type=content_type)


#: A domain error's HTTP status -> the OperationOutcome issue code (R4 valueset issue-type).
ISSUE_CODES = {
    400: "invalid",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    410: "deleted",
    422: "invalid",
    429: "throttled",
}


def domain_outcome(exc: DomainError) -> HttpResponse:
    """The FHIR edge's answer to a domain error: its status, one issue per refused field (the field as the
    issue's expression) or one issue with the message."""
    code = ISSUE_CODES.get(exc.status, "processing")
    issues: list[tuple[str, str, str | None]] = (
        [(code, reason, field) for field, reason in exc.errors.items()]
        if exc.status == 422 and exc.errors
        else [(code, exc.text(), None)]
    )
    return _json(documents.outcome(issues), exc.status)


def _error(status: int, code: str, text: str, expression: str | None = None) -> HttpResponse:
    response = _json(documents.outcome([(code, text, expression)]), status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="fhir"'
    return response


def _quoted(text: str) -> str:
    """A value for an RFC 6750 auth-param: printable ASCII without quote or backslash."""
    return "".join(c for c in text if 0x20 <= ord(c) < 0x7F and c not in '"\\')


def _base(request: HttpRequest) -> str:
    return request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")


def _authorised(request: HttpRequest) -> auth.Grant | HttpResponse:
    raw = auth.bearer(request)
    grant = auth.grant_for_token(raw) if raw else None
    if grant is None:
        response = _error(401, "login", "A valid bearer token is required (POST /fhir/token).")
        if raw:  # a presented token that fails is audited; a request without one is simply refused
            auth.record_denied(request, None, "expired or unknown bearer token")
            response["WWW-Authenticate"] = (
                'Bearer realm="fhir", error="invalid_token", '
                'error_description="The access token is unknown, expired or revoked"'
            )
        return response
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
    response = _error(403, "forbidden", str(exc))
    response["WWW-Authenticate"] = (
        f'Bearer realm="fhir", error="insufficient_scope", error_description="{_quoted(str(exc))}"'
    )
    return response


# --- discovery -------------------------------------------------------------------------------------------


@endpoint("GET")
def metadata(request: HttpRequest) -> HttpResponse:
    return _json(documents.capability_statement(base=_base(request), now=timezone.now()))


@endpoint("GET")
def smart_configuration(request: HttpRequest) -> HttpResponse:
    return _json(documents.smart_configuration(base=_base(request)), content_type="application/json")


# --- OAuth2 token and introspection endpoints -------------------------------------------------------------


def _oauth_error(exc: auth.TokenError) -> HttpResponse:
    response = _json(
        {"error": exc.error, "error_description": exc.description}, exc.status, "application/json"
    )
    if exc.status == 401:
        response["WWW-Authenticate"] = 'Basic realm="fhir"'
    return response


def _oauth_form(request: HttpRequest) -> auth.TokenError | None:
    """RFC 6749 §3.2: a form body; §3.1: no parameter more than once (a 400 ``invalid_request`` each)."""
    if request.content_type != FORM:
        return auth.TokenError("invalid_request", "Send application/x-www-form-urlencoded.")
    repeated = sorted(k for k, values in request.POST.lists() if len(values) > 1)
    if repeated:
        return auth.TokenError("invalid_request", f"{', '.join(repeated)}: given more than once.")
    return None


def _client(request: HttpRequest) -> Any:
    return auth.authenticate_client(
        form=request.POST,
        authorization=request.headers.get("Authorization", ""),
        token_url=request.build_absolute_uri(reverse("fhir:token")),
        request=request,
    )


@endpoint("POST")
def token(request: HttpRequest) -> HttpResponse:
    try:
        problem = _oauth_form(request)
        if problem is not None:
            raise problem
        grant_type = request.POST.get("grant_type", "")
        auth.check_grant_type(grant_type)
        client = _client(request)
        raw, row = auth.issue_token(
            client=client, grant_type=grant_type, scope=request.POST.get("scope"), request=request
        )
    except auth.TokenError as exc:
        return _oauth_error(exc)
    doc: dict[str, Any] = {
        "access_token": raw,
        "token_type": "Bearer",
        "expires_in": int((row.expires_at - row.issued_at).total_seconds()),
        "scope": row.scopes,
    }
    if row.patient_id:
        doc["patient"] = str(row.patient_id)
    return _json(doc, content_type="application/json")


@endpoint("POST")
def introspect(request: HttpRequest) -> HttpResponse:
    """RFC 7662 token introspection, for a client authenticated as at the token endpoint (an assertion's
    ``aud`` is the token endpoint URL: one authorization server, one audience)."""
    try:
        problem = _oauth_form(request)
        if problem is not None:
            raise problem
        raw = request.POST.get("token", "")
        if not raw:
            raise auth.TokenError("invalid_request", "token is required.")
        client = _client(request)
    except auth.TokenError as exc:
        return _oauth_error(exc)
    return _json(auth.introspect(client=client, raw=raw), content_type="application/json")


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


@endpoint("GET")
def search_type(request: HttpRequest, rtype: str) -> HttpResponse:
    return _search(request, rtype, _pairs(request.GET))


@endpoint("POST")
def search_post(request: HttpRequest, rtype: str) -> HttpResponse:
    if request.content_type != FORM:
        return _error(415, "not-supported", "POST _search takes application/x-www-form-urlencoded.")
    return _search(request, rtype, _pairs(request.GET) + _pairs(request.POST))


def _pairs(data: Any) -> list[tuple[str, str]]:
    return [(key, value) for key, values in data.lists() for value in values]


@endpoint("GET")
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
    return _conditional(request, _json(doc), doc.get("meta", {}))


def _conditional(request: HttpRequest, response: HttpResponse, meta: dict[str, Any]) -> HttpResponse:
    """R4 http.html#read: a weak ``ETag`` from ``meta.versionId`` and ``Last-Modified`` from
    ``meta.lastUpdated``; ``If-None-Match`` / ``If-Modified-Since`` that still match answer 304 without a
    body (RFC 9110 §13, evaluated by Django's ``get_conditional_response``)."""
    etag = f'W/"{meta["versionId"]}"' if meta.get("versionId") else None
    modified = None
    if meta.get("lastUpdated"):
        modified = int(datetime.fromisoformat(str(meta["lastUpdated"]).replace("Z", "+00:00")).timestamp())
    if etag:
        response["ETag"] = etag
    if modified is not None:
        response["Last-Modified"] = http_date(modified)
    answer = get_conditional_response(request, etag=etag, last_modified=modified, response=response)
    if answer is None:
        return response
    if answer.status_code == 412:
        return _error(412, "conflict", "A precondition (If-Match, If-Unmodified-Since) does not hold.")
    return answer


@endpoint("GET")
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


@endpoint("GET")
def export_system(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, system_level=True)


@endpoint("GET")
def export_patients(request: HttpRequest) -> HttpResponse:
    return _kickoff(request, system_level=False)


@endpoint("GET", "DELETE")
def export_status(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    grant = _authorised(request)
    if isinstance(grant, HttpResponse):
        return grant
    job = export.find(grant, export_id)
    if job is None:
        return _error(404, "not-found", "No such export for this client.")
    if request.method == "DELETE":
        export.cancel(grant=grant, job=job, request=request)
        return HttpResponse(status=202)
    if job.status in (ExportStatus.QUEUED, ExportStatus.RUNNING):
        response = HttpResponse(status=202)
        response["X-Progress"] = job.status
        response["Retry-After"] = "5"
        return response
    if job.status == ExportStatus.FAILED:
        return _error(500, "exception", f"The export failed: {job.error}")
    return _json(export.manifest(job, base=_base(request)), content_type="application/json")


@endpoint("GET", serves=NDJSON_TYPES)
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


@endpoint("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    return _error(404, "not-found", f"{request.path} is not a FHIR endpoint of this server.")
