"""The JSON API (django-ninja, OpenAPI at /api/docs for signed-in staff).

Deny by default: the API's default auth refuses everyone, so an operation that forgets to declare its roles
with ``auth=api_roles(...)`` is unreachable. Errors carry their status (core/errors.py): one handler answers
every :class:`DomainError` — 422 naming each field, otherwise ``{"detail": message}`` with the error's status —
and the request's transaction is rolled back so nothing is written. Endpoints never catch.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.security import SessionAuth

from ketaclinic.core.access import STAFF_ROLES, allow, second_factor_verified
from ketaclinic.core.errors import DomainError


class DenyAll(SessionAuth):
    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        return None


class RoleAuth(SessionAuth):
    """Cookie session + CSRF, a verified second factor, and one of the declared roles."""

    def __init__(self, roles: frozenset[str]) -> None:
        super().__init__(csrf=True)
        self.roles = roles

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        user = request.user
        if not user.is_authenticated or not user.is_active or not second_factor_verified(user):
            return None
        if getattr(user, "role", None) not in self.roles:
            from ketaclinic.audit.services import record_denied

            record_denied(request, what=f"api {request.method} {request.path}")
            raise HttpError(403, "Your role may not use this operation.")
        return user


def api_roles(*roles: str) -> list[RoleAuth]:
    unknown = set(roles) - STAFF_ROLES
    if unknown or not roles:
        raise ValueError(f"api_roles() needs known roles, got {roles!r}")
    return [RoleAuth(frozenset(roles))]


class FieldErrors(DomainError):
    """Raised by an edge when its own check of the request finds invalid fields: ``{"field": "reason"}``
    (a reference that names nothing of the organization, say); ``location`` is where the field was."""

    status = 422

    def __init__(self, errors: dict[str, str], location: str = "body") -> None:
        super().__init__("invalid input", errors=errors)
        self.location = location


#: The refusals any operation may answer (one handler per error, core/api.py and each app's api.py), so the
#: OpenAPI document states them for every operation (issue 15: 49 undocumented status codes).
ERROR_RESPONSES: dict[int, str] = {
    400: "The request could not be read (malformed JSON, a body that is not an object)",
    401: "Not signed in (session cookie), or the second factor not verified",
    403: "Signed in, but your role may not use this operation (or no CSRF token)",
    404: "No such record, or not one you may see (another organization's or site's)",
    409: "The record changed meanwhile (stale version) or its state does not allow this",
    422: "A field is invalid: each entry names the field and the limit; nothing was changed",
}
ERROR_SCHEMA: dict[str, Any] = {
    "title": "ErrorOut",
    "type": "object",
    "properties": {
        "detail": {
            "description": "What was refused: a sentence, or one entry per field (loc, msg, type)",
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"type": "object"}},
                {"type": "object"},
            ],
        }
    },
    "required": ["detail"],
}


class ObjectBodyParser(Parser):
    """A JSON body is an object. ninja read ``-43072`` or ``[]`` as a body of defaults (schemathesis,
    issue 15): such a body is refused with 400 ("Cannot parse request body") before any operation runs."""

    def parse_body(self, request: HttpRequest) -> dict[str, Any]:
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise ValueError("the request body must be a JSON object")
        return data


class ClinicAPI(NinjaAPI):
    """The ninja API with the refusals every operation may answer documented once."""

    def get_openapi_schema(self, *, path_prefix: str | None = None, path_params: Any = None) -> Any:
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        schema.setdefault("components", {}).setdefault("schemas", {})["ErrorOut"] = ERROR_SCHEMA
        ref = {"$ref": "#/components/schemas/ErrorOut"}
        for operations in schema["paths"].values():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, text in ERROR_RESPONSES.items():
                    if code not in responses and str(code) not in responses:
                        responses[code] = {
                            "description": text,
                            "content": {"application/json": {"schema": ref}},
                        }
        return schema


api = ClinicAPI(
    title="ketaclinic API",
    version="1",
    urls_namespace="api",
    auth=DenyAll(),
    parser=ObjectBodyParser(),
    docs_decorator=allow(*STAFF_ROLES),
)


def error_body(exc: DomainError) -> dict[str, Any]:
    """The API's answer to a domain error: 422 lists each field as ninja lists a schema's (``loc``, ``msg``,
    ``type``; the service's field at ``loc[1]``), any other status gives the message."""
    if exc.status == 422 and exc.errors:
        location = getattr(exc, "location", "body")
        return {
            "detail": [
                {"loc": [location, field], "msg": reason, "type": "value_error"}
                for field, reason in exc.errors.items()
            ]
        }
    return {"detail": exc.text()}


@api.exception_handler(DomainError)
def _domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """The one API handler for every app's domain errors: nothing of the request is kept."""
    transaction.set_rollback(True)
    return api.create_response(request, error_body(exc), status=exc.status)


def register_routers() -> None:
    from ketaclinic.assessment.api import router as assessment_router
    from ketaclinic.chairside.api import router as chairside_router
    from ketaclinic.consent.api import forms_router as consent_forms_router
    from ketaclinic.consent.api import router as consent_router
    from ketaclinic.measures.api import router as measures_router
    from ketaclinic.monitoring.api import router as monitoring_router
    from ketaclinic.patients.api import router as patients_router
    from ketaclinic.treatment.api import router as treatment_router

    api.add_router("/patients", patients_router)
    api.add_router("/patients", measures_router)
    api.add_router("/patients", consent_router)
    api.add_router("/consent-forms", consent_forms_router)
    api.add_router("/assessment", assessment_router)
    api.add_router("/treatment", treatment_router)
    api.add_router("/monitoring", monitoring_router)
    api.add_router("/sessions", chairside_router)


register_routers()
