"""OAuth2 client credentials for backend systems, and what a bearer token lets its holder see.

RFC 6749 §4.4 (client credentials). A client authenticates in one of two ways, fixed when it is registered:

- ``private_key_jwt`` (SMART Backend Services; RFC 7523 §2.2): a JWT it signed with its private key, RS384 or
  ES384, checked against the public keys registered for it (a JWK Set, or a JWK Set URL fetched with a short
  timeout and cached). The JOSE work — parsing, key import, signature verification — is joserfc's (RFC
  7515/7517/7518/7519); this module decides which key and algorithm are acceptable and checks the claims:
  ``iss`` = ``sub`` = the client id, ``aud`` = the token endpoint URL, ``exp`` present, in the future and no
  more than five minutes ahead, ``jti`` present and never seen before for the client (``UsedAssertion``).
- ``client_secret`` (opt-in, for local tools): HTTP Basic or ``client_id``/``client_secret`` in the form body
  (RFC 6749 §2.3.1).

Tokens are opaque, short-lived (5 minutes by default, the SMART Backend Services recommendation;
``KETACLINIC_FHIR_TOKEN_SECONDS`` overrides it) and stored as SHA-256. Tokens never cross organizations:
every query starts from the token's organization. Services never commit; the request owns the transaction.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from joserfc.jwt import JWTClaimsRegistry

from ketaclinic.accounts.models import Organization, User
from ketaclinic.accounts.services import system_user
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action, Outcome
from ketaclinic.interop.fhir.models import AccessToken, ApiClient, AuthMethod, UsedAssertion
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


def _check_definition(
    *,
    organization: Organization,
    name: str,
    scopes: str,
    patient: Patient | None,
    acting_user: User | None,
) -> tuple[dict[str, str], tuple[Scope, ...]]:
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
    return errors, parsed


def _save_client(
    *,
    organization: Organization,
    name: str,
    parsed: tuple[Scope, ...],
    patient: Patient | None,
    acting_user: User | None,
    by: User | None,
    **auth_fields: Any,
) -> ApiClient:
    client_id = new_client_id()
    client = ApiClient.objects.create(
        organization=organization,
        name=name.strip(),
        client_id=client_id,
        allowed_scopes=format_scopes(parsed),
        patient=patient,
        acting_user=acting_user,
        service_user=system_user(f"fhir-client:{client_id}", organization),
        **auth_fields,
    )
    after = {"name": client.name, "client_id": client_id, "scopes": client.allowed_scopes}
    after["auth_method"] = client.auth_method
    if client.jwks_url:
        after["jwks_url"] = client.jwks_url
    if client.jwks:
        after["kids"] = ", ".join(str(k.get("kid")) for k in client.jwks["keys"])
    audit.record(
        user=by or system_user("fhir-admin", organization),
        action=Action.ADD,
        category=CLIENT_CATEGORY,
        organization=organization,
        object_type="ApiClient",
        object_id=client.pk,
        after=after,
        client="cli",
    )
    return client


def create_client(
    *,
    organization: Organization,
    name: str,
    scopes: str,
    patient: Patient | None = None,
    acting_user: User | None = None,
    by: User | None = None,
) -> tuple[ApiClient, str]:
    """Register a shared-secret client (for local tools; hospital systems use ``register_backend_client``).
    Returns it and its secret (shown once, stored only as a hash)."""
    errors, parsed = _check_definition(
        organization=organization, name=name, scopes=scopes, patient=patient, acting_user=acting_user
    )
    if errors:
        raise ClientError(errors)
    secret = secrets.token_urlsafe(32)
    client = _save_client(
        organization=organization,
        name=name,
        parsed=parsed,
        patient=patient,
        acting_user=acting_user,
        by=by,
        auth_method=AuthMethod.CLIENT_SECRET,
        secret_hash=digest(secret),
    )
    return client, secret


def register_backend_client(
    *,
    organization: Organization,
    name: str,
    scopes: str,
    jwks: Any = None,
    jwks_url: str = "",
    patient: Patient | None = None,
    acting_user: User | None = None,
    by: User | None = None,
) -> ApiClient:
    """Register a SMART Backend Services client by its public keys: a JWK Set (``jwks``) or the URL where
    the client publishes one (``jwks_url``), exactly one of them. No secret exists for such a client."""
    errors, parsed = _check_definition(
        organization=organization, name=name, scopes=scopes, patient=patient, acting_user=acting_user
    )
    public: dict[str, Any] | None = None
    if (jwks is None) == (not jwks_url):
        errors["keys"] = "give the client's public keys as a JWK Set or a JWK Set URL (one of them)"
    elif jwks is not None:
        try:
            public = public_key_set(jwks, strict=True)
        except KeyProblem as exc:
            errors["jwks"] = str(exc)
    else:
        problem = jwks_url_problem(jwks_url)
        if problem:
            errors["jwks_url"] = problem
    if errors:
        raise ClientError(errors)
    return _save_client(
        organization=organization,
        name=name,
        parsed=parsed,
        patient=patient,
        acting_user=acting_user,
        by=by,
        auth_method=AuthMethod.PRIVATE_KEY_JWT,
        jwks=public,
        jwks_url=jwks_url if public is None else "",
    )


# --- public keys ------------------------------------------------------------------------------------------

#: The client assertion algorithms SMART Backend Services names (RS384, ES384), with the key each needs.
ASSERTION_ALGORITHMS: Final = {"RS384": "RSA", "ES384": "EC"}
MIN_RSA_BITS: Final = 2048
EC_CURVE: Final = "P-384"
#: JWK members that only a private key has (RFC 7518 §6.2.2, §6.3.2; "k" is a symmetric key).
PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
MAX_JWKS_BYTES: Final = 65536


class KeyProblem(Exception):
    """A JWK Set cannot be used to check this client's assertions; the message says why."""


def public_key_set(data: Any, *, strict: bool) -> dict[str, Any]:
    """The usable public signing keys of a JWK Set, checked with joserfc's key import.

    ``strict`` (registration from a file): every key must be an RS384/ES384 public signing key, and a private
    key is refused (the hospital keeps it; it must never reach this server). Not strict (a set fetched from
    the client's URL, which may publish other keys too): other keys are skipped, but private key material
    still refuses the whole set.
    """
    from joserfc.errors import JoseError
    from joserfc.jwk import KeySet

    if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list) or not data["keys"]:
        raise KeyProblem('not a JWK Set: expected {"keys": [ ... ]} with at least one key')
    kept: list[dict[str, Any]] = []
    kids: set[str] = set()
    for index, key in enumerate(data["keys"]):
        where = f"key {index + 1}" + (f" (kid {key.get('kid')!r})" if isinstance(key, Mapping) else "")
        if not isinstance(key, Mapping):
            raise KeyProblem(f"{where}: not a JSON object")
        private = sorted(PRIVATE_MEMBERS & key.keys())
        if private:
            raise KeyProblem(
                f"{where} is a private or secret key (it has {', '.join(private)}): register the PUBLIC "
                "key set only; the private key stays with the client"
            )
        problem = _key_problem(key)
        if problem is None and (not isinstance(key.get("kid"), str) or not key["kid"]):
            problem = "has no kid (the assertion's header names its key by kid)"
        if problem is None and key["kid"] in kids:
            problem = "repeats a kid of an earlier key"
        if problem is None:
            try:
                KeySet.import_key_set({"keys": [dict(key)]})
            except (JoseError, ValueError, TypeError) as exc:
                problem = f"is not a valid {key.get('kty')} key ({exc})"
        if problem is not None:
            if strict:
                raise KeyProblem(f"{where} {problem}")
            continue
        kids.add(key["kid"])
        kept.append(dict(key))
    if not kept:
        raise KeyProblem("no RS384 or ES384 public signing key with a kid in the set")
    return {"keys": kept}


def _key_problem(key: Mapping[str, Any]) -> str | None:
    kty, alg = key.get("kty"), key.get("alg")
    if kty not in ("RSA", "EC"):
        return f"has kty {kty!r}: only RSA (RS384) and EC P-384 (ES384) keys are accepted"
    if kty == "EC" and key.get("crv") != EC_CURVE:
        return f"is on curve {key.get('crv')!r}: ES384 needs P-384"
    if alg is not None and ASSERTION_ALGORITHMS.get(alg) != kty:
        return f"has alg {alg!r}: only RS384 (RSA) and ES384 (EC P-384) are accepted"
    if key.get("use") not in (None, "sig"):
        return f"has use {key.get('use')!r}: a signing key has use 'sig'"
    ops = key.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "has key_ops without 'verify'"
    if kty == "RSA":
        try:
            n = base64.urlsafe_b64decode(str(key.get("n", "")) + "==")
        except (binascii.Error, ValueError):
            return "has an unreadable modulus n"
        if len(n.lstrip(b"\0")) * 8 < MIN_RSA_BITS:
            return f"is shorter than {MIN_RSA_BITS} bits"
    return None


def jwks_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a client's JWK Set URL (None: fine). HTTPS, except on this machine (tests,
    a local tool) where plain HTTP is allowed; no credentials in the URL."""
    if len(url) > 500:
        return "is longer than 500 characters"
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "must be an https:// URL"
    if parts.username or parts.password:
        return "must not carry credentials"
    if parts.scheme == "http" and not _loopback(parts.hostname):
        return "must be an https:// URL (plain http only for this machine: localhost, 127.0.0.1)"
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a JWK Set URL answers itself; a redirect is reported as the HTTP error it is


_jwks_cache: dict[str, tuple[float, dict[str, Any]]] = {}
_jwks_lock = threading.Lock()


def clear_jwks_cache() -> None:
    with _jwks_lock:
        _jwks_cache.clear()


def fetch_jwks(url: str, *, refresh: bool = False) -> dict[str, Any]:
    """The public keys published at ``url``: fetched with a short timeout (``KETACLINIC_FHIR_JWKS_TIMEOUT``,
    3 s) and kept for ``KETACLINIC_FHIR_JWKS_CACHE_SECONDS`` (300) in this process. ``refresh`` fetches again
    (a kid not in the cached set: the client may have rotated its keys), at most every 10 seconds."""
    now = time.monotonic()
    ttl = float(getattr(settings, "KETACLINIC_FHIR_JWKS_CACHE_SECONDS", 300))
    with _jwks_lock:
        cached = _jwks_cache.get(url)
    if cached is not None and now - cached[0] < (10 if refresh else ttl):
        return cached[1]
    timeout = float(getattr(settings, "KETACLINIC_FHIR_JWKS_TIMEOUT", 3))
    opener = urllib.request.build_opener(_NoRedirects)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (checked)
    try:
        with opener.open(request, timeout=timeout) as response:
            body = response.read(MAX_JWKS_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise KeyProblem(f"the JWK Set URL {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise KeyProblem(f"the JWK Set URL {url} is unreachable ({reason})") from None
    if len(body) > MAX_JWKS_BYTES:
        raise KeyProblem(f"the JWK Set at {url} is larger than {MAX_JWKS_BYTES} bytes")
    try:
        data = json.loads(body)
    except ValueError:
        raise KeyProblem(f"the JWK Set URL {url} did not answer JSON") from None
    keys = public_key_set(data, strict=False)
    with _jwks_lock:
        _jwks_cache[url] = (now, keys)
    return keys


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


ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: SMART Backend Services: the assertion's exp "SHALL be no more than five minutes in the future".
MAX_ASSERTION_LIFETIME: Final = timedelta(minutes=5)
#: Clock difference tolerated on that bound (a client's clock a little ahead of ours).
ASSERTION_CLOCK_SKEW: Final = timedelta(seconds=60)
MAX_ASSERTION_CHARS: Final = 16384


def _refuse(
    request: HttpRequest | None,
    client: ApiClient | None,
    why: str,
    description: str = "Client authentication failed.",
) -> TokenError:
    """Audit a failed client authentication and return the ``invalid_client`` error to raise."""
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
    return TokenError("invalid_client", description, status=401)


def _client(client_id: str) -> ApiClient | None:
    return (
        ApiClient.objects.select_related("organization", "service_user").filter(client_id=client_id).first()
    )


# For a client that used the other authentication method: (audit reason, what the client is told).
_OTHER_METHOD: dict[str, tuple[str, str]] = {
    AuthMethod.CLIENT_SECRET: (
        "a secret was sent by a private_key_jwt client",
        "This client authenticates with a signed client_assertion (private_key_jwt), not a secret.",
    ),
    AuthMethod.PRIVATE_KEY_JWT: (
        "an assertion was sent by a client_secret client",
        "This client is registered with a secret, not with public keys.",
    ),
}


def _registered(client_id: str, method: str, request: HttpRequest | None) -> ApiClient:
    """The client registered under ``client_id`` to authenticate by ``method``, or the audited refusal."""
    client = _client(client_id)
    if client is None:
        raise _refuse(request, None, f"unknown client id {client_id[:64]!r}")
    if client.auth_method != method:
        raise _refuse(request, client, *_OTHER_METHOD[method])
    return client


def authenticate_client(
    *, form: Mapping[str, str], authorization: str, token_url: str, request: HttpRequest | None
) -> ApiClient:
    """The client a token or introspection request comes from, by the one authentication method it used:
    a client assertion (``private_key_jwt``) or a secret (HTTP Basic or the form body). Raises TokenError."""
    basic = basic_credentials(authorization)
    body_id, body_secret = form.get("client_id", ""), form.get("client_secret", "")
    assertion, assertion_type = form.get("client_assertion", ""), form.get("client_assertion_type", "")
    if assertion or assertion_type:
        if basic or body_secret:
            raise TokenError("invalid_request", "Use one client authentication method.")
        if assertion_type != ASSERTION_TYPE:
            raise _refuse(
                request,
                None,
                "unsupported client_assertion_type",
                f"client_assertion_type must be {ASSERTION_TYPE}.",
            )
        if not assertion:
            raise _refuse(request, None, "no client_assertion", "client_assertion is required.")
        return verify_assertion(assertion, client_id=body_id, token_url=token_url, request=request)
    if basic and (body_secret or (body_id and body_id != basic[0])):
        raise TokenError("invalid_request", "Use one client authentication method.")
    client_id, secret = basic or (body_id, body_secret)
    if not client_id or not secret:
        raise TokenError(
            "invalid_client",
            "Client authentication is required: a client_assertion (private_key_jwt) or, for a client "
            "registered with a secret, HTTP Basic.",
            status=401,
        )
    client = _registered(client_id, AuthMethod.CLIENT_SECRET, request)
    if not hmac.compare_digest(client.secret_hash, digest(secret)):
        raise _refuse(request, client, "wrong secret")
    if not client.active:
        raise _refuse(request, client, "client is inactive")
    return client


def verify_assertion(
    assertion: str, *, client_id: str, token_url: str, request: HttpRequest | None
) -> ApiClient:
    """Check a SMART Backend Services client assertion and return its (active) client, or raise the audited
    ``invalid_client`` TokenError saying what is wrong. Records the ``jti`` so it cannot be used again."""
    from joserfc import jws, jwt
    from joserfc.errors import (
        BadSignatureError,
        ExpiredTokenError,
        InvalidClaimError,
        JoseError,
        MissingClaimError,
    )
    from joserfc.jwk import KeySet

    if len(assertion) > MAX_ASSERTION_CHARS:
        raise _refuse(request, None, "oversized client_assertion", "client_assertion is too long.")
    try:
        unverified = jws.extract_compact(assertion.encode())
        header = dict(unverified.headers())
        claims = json.loads(unverified.payload)
    except (JoseError, ValueError, TypeError):
        raise _refuse(
            request, None, "client_assertion is not a JWT", "client_assertion is not a signed JWT."
        ) from None
    iss = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(iss, str) or not iss:
        raise _refuse(
            request, None, "assertion without iss", "The client_assertion needs iss (the client_id)."
        )
    if client_id and client_id != iss:
        raise _refuse(
            request, None, "client_id differs from iss", "client_id and the client_assertion's iss differ."
        )
    client = _registered(iss, AuthMethod.PRIVATE_KEY_JWT, request)
    if not client.active:
        raise _refuse(request, client, "client is inactive")

    def refuse(why: str) -> TokenError:
        return _refuse(request, client, why, f"client_assertion refused: {why}.")

    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ASSERTION_ALGORITHMS:
        raise refuse(f"alg {alg!r} is not accepted (RS384 or ES384)")
    if not isinstance(kid, str) or not kid:
        raise refuse("the JWT header has no kid")
    jku = header.get("jku")
    if jku is not None and jku != client.jwks_url:
        raise refuse("jku is not the JWK Set URL registered for this client")
    try:
        if client.jwks:
            keys = client.jwks
        else:
            keys = fetch_jwks(client.jwks_url)
            if not any(k.get("kid") == kid for k in keys["keys"]):
                keys = fetch_jwks(client.jwks_url, refresh=True)
    except KeyProblem as exc:
        raise refuse(str(exc)) from None
    data = next((k for k in keys["keys"] if k.get("kid") == kid), None)
    if data is None:
        raise refuse(f"no registered key has kid {kid[:64]!r}")
    if ASSERTION_ALGORITHMS[alg] != data.get("kty") or data.get("alg") not in (None, alg):
        raise refuse(f"key {kid[:64]!r} is not a {alg} key")
    try:
        key = KeySet.import_key_set({"keys": [data]}).keys[0]
        token = jwt.decode(assertion, key, algorithms=[alg])
    except BadSignatureError:
        raise refuse(f"the signature does not verify with key {kid[:64]!r}") from None
    except JoseError as exc:
        raise refuse(f"the JWT cannot be verified ({exc.error})") from None
    now = timezone.now()
    registry = _AssertionClaims(
        now=int(now.timestamp()),
        iss={"essential": True, "value": client.client_id},
        sub={"essential": True, "value": client.client_id},
        aud={"essential": True, "value": token_url},
        exp={"essential": True},
        jti={"essential": True},
    )
    try:
        registry.validate(token.claims)
    except MissingClaimError as exc:
        raise refuse(f"the JWT lacks {exc.claim} (iss, sub, aud, exp and jti are required)") from None
    except ExpiredTokenError:
        raise refuse("the JWT has expired (exp is past)") from None
    except InvalidClaimError as exc:
        why = {
            "iss": "iss must be the client_id",
            "sub": "sub must be the client_id",
            "aud": f"aud must be the token endpoint URL {token_url}",
        }.get(exc.claim, f"the claim {exc.claim} is invalid ({exc.description})")
        raise refuse(why) from None
    if token.claims["exp"] > (now + MAX_ASSERTION_LIFETIME + ASSERTION_CLOCK_SKEW).timestamp():
        raise refuse("exp is more than five minutes in the future")
    expires = datetime.fromtimestamp(float(token.claims["exp"]), tz=UTC)
    jti = str(token.claims["jti"])
    UsedAssertion.objects.filter(expires_at__lt=now).delete()  # forgotten once they could not be used
    try:
        with transaction.atomic():
            UsedAssertion.objects.create(
                client=client,
                organization_id=client.organization_id,
                jti_hash=digest(jti),
                expires_at=expires,
            )
    except IntegrityError:
        raise refuse("this jti was already used (a replayed assertion)") from None
    return client


class _AssertionClaims(JWTClaimsRegistry):
    """joserfc's claim checks, with ``exp`` strict (an expired assertion is refused at once) while ``iat``
    and ``nbf`` tolerate ``ASSERTION_CLOCK_SKEW`` (a client's clock a little ahead of ours)."""

    def validate_iat(self, value: object) -> None:
        self.leeway = int(ASSERTION_CLOCK_SKEW.total_seconds())
        try:
            super().validate_iat(value)
        finally:
            self.leeway = 0

    def validate_nbf(self, value: object) -> None:
        self.leeway = int(ASSERTION_CLOCK_SKEW.total_seconds())
        try:
            super().validate_nbf(value)
        finally:
            self.leeway = 0


def issue_token(
    *, client: ApiClient, grant_type: str, scope: str | None, request: HttpRequest | None
) -> tuple[str, AccessToken]:
    """Client credentials grant for an authenticated client. Returns the bearer token (shown once) and its row."""
    check_grant_type(grant_type)
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
        detail=f"client {client.client_id}: token issued for {token.scopes} ({client.auth_method})",
    )
    return raw, token


def check_grant_type(grant_type: str) -> None:
    """RFC 6749 §5.2: a missing parameter is ``invalid_request``; a grant type we do not offer is
    ``unsupported_grant_type``."""
    if not grant_type:
        raise TokenError("invalid_request", "grant_type is required (grant_type=client_credentials).")
    if grant_type != "client_credentials":
        raise TokenError("unsupported_grant_type", "Only grant_type=client_credentials is supported.")


def introspect(*, client: ApiClient, raw: str) -> dict[str, Any]:
    """RFC 7662 token introspection for an authenticated client: the token's facts when it is active and of
    the client's own organization, else only ``{"active": false}`` (nothing about other organizations)."""
    token = (
        AccessToken.objects.select_related("client")
        .filter(
            token_hash=digest(raw),
            expires_at__gt=timezone.now(),
            client__active=True,
            organization_id=client.organization_id,
        )
        .first()
        if raw
        else None
    )
    if token is None:
        return {"active": False}
    doc: dict[str, Any] = {
        "active": True,
        "scope": token.scopes,
        "client_id": token.client.client_id,
        "token_type": "Bearer",
        "exp": int(token.expires_at.timestamp()),
        "iat": int(token.issued_at.timestamp()),
    }
    if token.patient_id:
        doc["patient"] = str(token.patient_id)
    return doc


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
