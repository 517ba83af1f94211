"""Every route the application serves, read from the URL conf and the API (nothing hand-listed): page routes
from Django's resolver, API operations from the ninja API's routers, each with the URL it takes for the
objects of a test world."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

from ketaclinic.core.access import Access, declared_access

API_PREFIX = "/api"


@dataclass(frozen=True)
class Route:
    key: str  # "accounts:users" for a page, "api:GET /patients/{patient_id}" for an API operation
    kind: str  # "page", "fhir" or "api"
    pattern: str  # the URL pattern as written ("patients/<uuid:patient_id>/")
    methods: tuple[str, ...]
    params: tuple[str, ...]  # the pattern's keyword arguments
    access: Access | None  # pages: the view's declaration
    roles: frozenset[str] | None  # API: the roles its auth declares (None: no RoleAuth)


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> list[tuple[str, str, Any]]:
    found: list[tuple[str, str, Any]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            ns = f"{namespace}:{pattern.namespace}".strip(":") if pattern.namespace else namespace
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern), ns)
        elif isinstance(pattern, URLPattern):
            found.append(
                (prefix + str(pattern.pattern), f"{namespace}:{pattern.name or ''}", pattern.callback)
            )
    return found


_PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def _params(pattern: str) -> tuple[str, ...]:
    return tuple(a or b for a, b in _PARAM.findall(pattern))


def page_routes() -> list[Route]:
    """Every URL pattern outside the JSON API's operations (the API's documentation pages included)."""
    routes = []
    for pattern, name, view in _walk(get_resolver().url_patterns):
        access = declared_access(view)
        if name.startswith("api:") and access is not None and access.api:
            continue  # an API operation: listed from the API itself, with its method
        kind = "fhir" if name.startswith("fhir:") else "page"
        routes.append(Route(name, kind, pattern, ("GET", "POST"), _params(pattern), access, None))
    return routes


def api_routes() -> list[Route]:
    from ketaclinic.core.api import RoleAuth, api

    routes = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            full = (prefix.rstrip("/") + "/" + path.lstrip("/")).rstrip("/") if path else prefix
            full = "/" + full.strip("/")
            for operation in path_view.operations:
                roles: frozenset[str] | None = None
                auths = operation.auth_callbacks
                if auths and all(isinstance(a, RoleAuth) for a in auths):
                    roles = frozenset().union(*(a.roles for a in auths))
                for method in operation.methods:
                    params = tuple(re.findall(r"\{(\w+)\}", full))
                    routes.append(Route(f"api:{method} {full}", "api", full, (method,), params, None, roles))
    return routes


def all_routes() -> list[Route]:
    return page_routes() + api_routes()


def url_for(route: Route, values: dict[str, Any]) -> str:
    """The route's URL with ``values`` for its parameters."""
    if route.kind == "api":
        return API_PREFIX + re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), route.pattern)
    path = _PARAM.sub(lambda m: str(values[m.group(1) or m.group(2)]), route.pattern)
    path = path.lstrip("^").rstrip("$")
    return "/" + path
