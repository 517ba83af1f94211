"""OAuth2 client credentials for backend systems, and what a bearer token lets its holder see.

RFC 6749 §4.4 (client credentials) with the client authenticating by HTTP Basic or by ``client_id`` and
``client_secret`` in the form body (§2.3.1). Tokens are opaque, short-lived (5 minutes by default, the SMART
Backend Services recommendation; ``KETACLINIC_FHIR_TOKEN_SECONDS`` overrides it) and stored as SHA-256.
Tokens never cross organizations: every query starts from the token's organization.
Services never commit; the request owns the transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Organization, User
from ketaclinic.accounts.services import system_user
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action, Outcome
from ketaclinic.interop.fhir.models import AccessToken, ApiClient
from ketaclinic.interop.fhir.resources import REGISTRY, ResourceType
from ketaclinic.interop.fhir.resources.base import Source
from ketaclinic.interop.fhir.scopes import (
    Context,
    Scope,
    ScopeError,
    broadest_context,
    format_scopes,
    narrow,
    parse_scopes,
)
from ketaclinic.patients.models import Patient
from ketaclinic.patients.services import visible_patients

AUDIT_CLIENT = "fhir"
TOKEN_CATEGORY = "fhir-token"  # noqa: S105 (an audit category, not a secret)
CLIENT_CATEGORY = "fhir-clients"


def token_lifetime() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "KETACLINIC_FHIR_TOKEN_SECONDS", 300)))


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class ClientError(Exception):
    """A client definition is not acceptable; ``errors`` names every bad field."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class TokenError(Exception):
    """An OAuth2 error response (RFC 6749 §5.2)."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


class Forbidden(Exception):
    """The token's scopes do not cover what was asked."""


@dataclass(frozen=True)
class Grant:
    """What one request may see: an organization, scopes, and the patient or staff member they bind to."""

    organization_id: int
    scopes: tuple[Scope, ...]
    audit_user: User
    client_id: str
    client_pk: int | None = None
    patient_id: uuid.UUID | None = None
    acting_user: User | None = None
    audit_client: str = AUDIT_CLIENT

    def context_for(self, rtype: ResourceType, permission: str) -> Context:
        context = broadest_context(self.scopes, rtype.name, permission)
        if context is None:
            raise Forbidden(f"The token's scopes do not allow {rtype.name} ({permission}).")
        if context is Context.PATIENT and self.patient_id is None:
            raise Forbidden("A patient/ scope needs a token bound to a patient.")
        if context is Context.USER:
            user = self.acting_user
            if user is None or not user.is_active or user.role not in rtype.user_roles:
                raise Forbidden(f"The client's staff account may not read {rtype.name}.")
        return context

    def restrict(self, source: Source, context: Context) -> QuerySet[Any]:
        """The source's rows this grant may see in ``context`` (always within the organization)."""
        qs = source.queryset(self.organization_id)
        if context is Context.PATIENT:
            return source.of_patients(qs, [self.patient_id])
        if context is Context.USER and source.patient_field:
            assert self.acting_user is not None  # checked by context_for
            visible = visible_patients(self.acting_user).filter(organization_id=self.organization_id)
            return source.of_patients(qs, visible.values("pk"))
        # system/ scopes, and user/ scopes on a type without a patient (Device): the organization's rows.
        return qs

    def rows(self, rtype: ResourceType, permission: str) -> list[tuple[Source, QuerySet[Any]]]:
        context = self.context_for(rtype, permission)
        return [(source, self.restrict(source, context)) for source in rtype.sources]


def known_types() -> tuple[str, ...]:
    return tuple(REGISTRY)


# --- clients --------------------------------------------------------------------------------------------


def new_client_id() -> str:
    """A random client id (144 bits) that is safe to type on a command line: it never starts with "-"
    (``ketaclinic fhir client deactivate <id>`` would read such an id as an option) or "_"."""
    while True:
        candidate = secrets.token_urlsafe(18)
        if candidate[0].isalnum():
            return candidate


def create_client(
    *,
    organization: Organization,
    name: str,
    scopes: str,
    patient: Patient | None = None,
    acting_user: User | None = None,
    by: User | None = None,
) -> tuple[ApiClient, str]:
    """Register a client; returns it and its secret (shown once, stored only as a hash)."""
    errors: dict[str, str] = {}
    parsed: tuple[Scope, ...] = ()
    if not name.strip():
        errors["name"] = "is required"
    try:
        parsed = parse_scopes(scopes, known_types=known_types())
    except ScopeError as exc:
        errors["scopes"] = "; ".join(f"{k}: {v}" for k, v in exc.errors.items())
    odd = [s for s in scopes.split() if "/" not in s]
    if odd and "scopes" not in errors:
        errors["scopes"] = f"{', '.join(odd)}: not a resource scope (e.g. system/*.rs)"
    if not parsed and "scopes" not in errors:
        errors["scopes"] = "name at least one scope, e.g. system/*.rs"
    contexts = {s.context for s in parsed}
    if Context.PATIENT in contexts and patient is None:
        errors["patient"] = "patient/ scopes need the client to be bound to one patient"
    if patient is not None and getattr(patient, "organization_id", None) != organization.pk:
        errors["patient"] = "belongs to another organization"
    if Context.USER in contexts and acting_user is None:
        errors["user"] = "user/ scopes need the staff account the client acts for"
    if acting_user is not None and getattr(acting_user, "organization_id", None) != organization.pk:
        errors["user"] = "belongs to another organization"
    if errors:
        raise ClientError(errors)
    client_id = new_client_id()
    secret = secrets.token_urlsafe(32)
    client = ApiClient.objects.create(
        organization=organization,
        name=name.strip(),
        client_id=client_id,
        secret_hash=digest(secret),
        allowed_scopes=format_scopes(parsed),
        patient=patient,
        acting_user=acting_user,
        service_user=system_user(f"fhir-client:{client_id}", organization),
    )
    audit.record(
        user=by or system_user("fhir-admin", organization),
        action=Action.ADD,
        category=CLIENT_CATEGORY,
        organization=organization,
        object_type="ApiClient",
        object_id=client.pk,
        after={"name": client.name, "client_id": client_id, "scopes": client.allowed_scopes},
        client="cli",
    )
    return client, secret


def deactivate_client(*, client: ApiClient, by: User | None = None) -> None:
    client.active = False
    client.save(update_fields=["active"])
    AccessToken.objects.filter(client=client).delete()
    audit.record(
        user=by or system_user("fhir-admin", client.organization),
        action=Action.CHANGE,
        category=CLIENT_CATEGORY,
        organization=client.organization,
        object_type="ApiClient",
        object_id=client.pk,
        after={"active": False},
        client="cli",
    )


# --- tokens ---------------------------------------------------------------------------------------------


def basic_credentials(header: str) -> tuple[str, str] | None:
    """``Authorization: Basic base64(client_id:secret)`` → (id, secret); None when absent or malformed."""
    kind, _, value = header.partition(" ")
    if kind.lower() != "basic" or not value:
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    return (client_id, secret) if sep else None


def _refuse(request: HttpRequest | None, client: ApiClient | None, why: str) -> TokenError:
    user = client.service_user if client is not None else system_user("fhir")
    audit.record(
        user=user,
        action=Action.LOGIN,
        category=TOKEN_CATEGORY,
        organization=client.organization if client is not None else None,
        request=request,
        client=AUDIT_CLIENT,
        outcome=Outcome.FAILURE,
        detail=f"client {client.client_id if client else '?'}: {why}",
    )
    return TokenError("invalid_client", "Client authentication failed.", status=401)


def issue_token(
    *, client_id: str, secret: str, grant_type: str, scope: str | None, request: HttpRequest | None
) -> tuple[str, AccessToken]:
    """Client credentials grant. Returns the bearer token (shown once) and its row."""
    if grant_type != "client_credentials":
        raise TokenError("unsupported_grant_type", "Only grant_type=client_credentials is supported.")
    client = (
        ApiClient.objects.select_related("organization", "service_user").filter(client_id=client_id).first()
    )
    if client is None:
        raise _refuse(request, None, f"unknown client id {client_id[:64]!r}")
    if not hmac.compare_digest(client.secret_hash, digest(secret)):
        raise _refuse(request, client, "wrong secret")
    if not client.active:
        raise _refuse(request, client, "client is inactive")
    allowed = parse_scopes(client.allowed_scopes)
    try:
        granted = allowed if not scope else narrow(parse_scopes(scope, known_types=known_types()), allowed)
    except ScopeError as exc:
        raise TokenError("invalid_scope", "; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    if not granted:
        raise TokenError("invalid_scope", "No resource scope was requested.")
    raw = secrets.token_urlsafe(32)
    now = timezone.now()
    token = AccessToken.objects.create(
        client=client,
        organization_id=client.organization_id,
        token_hash=digest(raw),
        scopes=format_scopes(granted),
        patient_id=client.patient_id if any(s.context is Context.PATIENT for s in granted) else None,
        issued_at=now,
        expires_at=now + token_lifetime(),
    )
    audit.record(
        user=client.service_user,
        action=Action.LOGIN,
        category=TOKEN_CATEGORY,
        organization=client.organization,
        object_type="AccessToken",
        object_id=token.pk,
        request=request,
        client=AUDIT_CLIENT,
        detail=f"client {client.client_id}: token issued for {token.scopes}",
    )
    return raw, token


def grant_for_token(raw: str) -> Grant | None:
    """The grant behind a bearer token; None when unknown, expired or its client is inactive."""
    token = (
        AccessToken.objects.select_related("client", "client__service_user", "client__acting_user")
        .filter(token_hash=digest(raw), expires_at__gt=timezone.now(), client__active=True)
        .first()
    )
    if token is None:
        return None
    client = token.client
    return Grant(
        organization_id=token.organization_id,
        scopes=parse_scopes(token.scopes),
        audit_user=client.service_user,
        client_id=client.client_id,
        client_pk=client.pk,
        patient_id=token.patient_id,
        acting_user=client.acting_user,
    )


def bearer(request: HttpRequest) -> str | None:
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() or None if kind.lower() == "bearer" else None


def record_denied(request: HttpRequest, grant: Grant | None, why: str) -> None:
    audit.record(
        user=grant.audit_user if grant is not None else system_user("fhir"),
        action=Action.DENIED,
        category="fhir",
        organization=Organization.objects.filter(pk=grant.organization_id).first() if grant else None,
        request=request,
        client=AUDIT_CLIENT,
        outcome=Outcome.DENIED,
        detail=f"client {grant.client_id if grant else '?'}: {request.method} {request.path}: {why}",
    )
