"""Access control by construction: every route declares who may use it; undeclared routes are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from ketaclinic.core.access import Access, declared_access
from ketaclinic.core.api import DenyAll, RoleAuth, api
from ketaclinic.core.middleware import AccessControlMiddleware


def _walk(patterns: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            found += _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            found.append((prefix + str(pattern.pattern), pattern.callback))
    return found


def test_every_url_pattern_declares_its_access() -> None:
    routes = _walk(get_resolver().url_patterns)
    assert len(routes) > 10
    undeclared = [route for route, view in routes if declared_access(view) is None]
    assert undeclared == [], f"routes without an access declaration: {undeclared}"


def test_every_api_operation_declares_roles() -> None:
    operations = []
    for _prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            for operation in path_view.operations:
                operations.append((path, operation))
    assert operations, "the API has operations"
    for path, operation in operations:
        auths = operation.auth_callbacks
        assert auths, f"{path} has no auth"
        assert all(isinstance(a, RoleAuth) for a in auths), f"{path} does not declare roles: {auths}"
        assert all(a.roles for a in auths)


def test_api_default_denies_everyone() -> None:
    assert isinstance(api.auth[0] if isinstance(api.auth, list | tuple) else api.auth, DenyAll)


def test_middleware_refuses_an_undeclared_view(rf: RequestFactory) -> None:
    def secret_view(request: Any) -> HttpResponse:
        return HttpResponse("secret")

    middleware = AccessControlMiddleware(lambda r: HttpResponse())
    response = middleware.process_view(rf.get("/x"), secret_view, (), {})
    assert response is not None and response.status_code == 403


@pytest.mark.parametrize(
    "access,expected", [(Access(public=True), True), (Access(roles=frozenset({"nurse"})), False)]
)
def test_declaration_semantics_for_anonymous(rf: RequestFactory, access: Access, expected: bool) -> None:
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/")
    request.user = AnonymousUser()
    assert access.allows(request) is expected
