"""SMART App Launch v2 scopes: ``<context>/<Resource>.<cruds>`` (security.md §6; hl7.org/fhir/smart-app-launch).

Pure: no Django. The server is read-only, so only ``r`` (read) and ``s`` (search) can be granted; a client
asking for ``c``, ``u`` or ``d`` is refused rather than silently narrowed, so the operator sees why.
The SMART v1 spelling ``.read`` is accepted as ``.rs``. Query-filtered scopes (``...rs?category=...``) are
refused for now (not implemented yet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final


class Context(StrEnum):
    """Whose data a scope reaches: a backend system (the organization), a staff user, or one patient."""

    SYSTEM = "system"
    USER = "user"
    PATIENT = "patient"


# Broadest first: when several granted scopes cover a type, the broadest context decides the compartment.
BREADTH: Final[tuple[Context, ...]] = (Context.SYSTEM, Context.USER, Context.PATIENT)
READ: Final = "r"
SEARCH: Final = "s"
SERVED_PERMISSIONS: Final = frozenset({READ, SEARCH})
_PATTERN: Final = re.compile(r"^(system|user|patient)/(\*|[A-Z][A-Za-z]+)\.([a-z]+)(\?.*)?$")
_V2_ORDER: Final = "cruds"


class ScopeError(ValueError):
    """One or more scope strings are malformed or not grantable; ``errors`` maps each to the reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True, order=True)
class Scope:
    context: Context
    resource: str  # a FHIR resource type or "*"
    permissions: frozenset[str]

    def __str__(self) -> str:
        perms = "".join(p for p in _V2_ORDER if p in self.permissions)
        return f"{self.context.value}/{self.resource}.{perms}"

    def covers(self, other: Scope) -> bool:
        """True when this scope grants everything ``other`` asks (same context, type, and permissions)."""
        return (
            self.context is other.context
            and self.resource in ("*", other.resource)
            and other.permissions <= self.permissions
        )

    def allows(self, resource_type: str, permission: str) -> bool:
        return self.resource in ("*", resource_type) and permission in self.permissions


def _parse_one(text: str, known_types: Iterable[str] | None) -> Scope:
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError("not a SMART scope of the form context/Resource.rs (e.g. system/*.rs)")
    context, resource, perms, query = match.groups()
    if query:
        raise ValueError("query-filtered scopes are not supported by this server")
    if perms in ("read", "write", "*"):  # SMART v1
        if perms != "read":
            raise ValueError("this server is read-only: only read and search can be granted")
        permissions = frozenset({READ, SEARCH})
    else:
        if any(p not in _V2_ORDER for p in perms) or list(perms) != sorted(perms, key=_V2_ORDER.index):
            raise ValueError("permissions must be letters of 'cruds' in that order (e.g. .rs)")
        if len(set(perms)) != len(perms):
            raise ValueError("a permission letter is repeated")
        permissions = frozenset(perms)
        if not permissions <= SERVED_PERMISSIONS:
            raise ValueError("this server is read-only: only r (read) and s (search) can be granted")
    if known_types is not None and resource != "*" and resource not in set(known_types):
        raise ValueError(f"{resource} is not a resource type this server offers")
    return Scope(Context(context), resource, permissions)


def parse_scopes(text: str | Iterable[str], *, known_types: Iterable[str] | None = None) -> tuple[Scope, ...]:
    """Parse a space-separated scope string (or a list). Non-resource scopes (``openid``, ``launch``…) are
    ignored. Every bad scope is named in the ScopeError at once."""
    items = text.split() if isinstance(text, str) else list(text)
    types = None if known_types is None else tuple(known_types)
    scopes: list[Scope] = []
    errors: dict[str, str] = {}
    for item in items:
        if "/" not in item:
            continue  # openid, fhirUser, offline_access: no data access of their own
        try:
            scope = _parse_one(item, types)
        except ValueError as exc:
            errors[item] = str(exc)
            continue
        if scope not in scopes:
            scopes.append(scope)
    if errors:
        raise ScopeError(errors)
    return tuple(scopes)


def narrow(requested: Iterable[Scope], allowed: Iterable[Scope]) -> tuple[Scope, ...]:
    """The requested scopes, each of which must be covered by one allowed scope (else ScopeError)."""
    allowed = tuple(allowed)
    errors = {
        str(scope): "not among the scopes this client may be granted"
        for scope in requested
        if not any(a.covers(scope) for a in allowed)
    }
    if errors:
        raise ScopeError(errors)
    return tuple(requested)


def format_scopes(scopes: Iterable[Scope]) -> str:
    return " ".join(str(s) for s in scopes)


def broadest_context(scopes: Iterable[Scope], resource_type: str, permission: str) -> Context | None:
    """The broadest context in which ``scopes`` allow ``permission`` on ``resource_type`` (None: refused)."""
    granted = {s.context for s in scopes if s.allows(resource_type, permission)}
    for context in BREADTH:
        if context in granted:
            return context
    return None
