"""Access control by construction: every view and API operation declares the roles that may use it.

``AccessControlMiddleware`` refuses any view without a declaration (deny by default), and
``tests/core/test_access_declarations.py`` walks every URL pattern so an undeclared route fails CI.
API operations are declared through ``RoleAuth`` (``api_roles(...)``); the API's default auth denies all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from django.http import HttpRequest

if TYPE_CHECKING:
    from ketaclinic.accounts.models import User

ADMIN = "admin"
PRESCRIBER = "prescriber"
NURSE = "nurse"
FRONT_DESK = "front_desk"

ROLE_CHOICES = [
    (ADMIN, "Administrator"),
    (PRESCRIBER, "Prescriber"),
    (NURSE, "Nurse"),
    (FRONT_DESK, "Front desk"),
]
ROLE_LABELS = dict(ROLE_CHOICES)
STAFF_ROLES = frozenset({ADMIN, PRESCRIBER, NURSE, FRONT_DESK})
CLINICIANS = frozenset({PRESCRIBER, NURSE})
PATIENT_REGISTRY = frozenset({PRESCRIBER, NURSE, FRONT_DESK})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Access:
    """What a view declares. ``public`` views need no sign-in; ``api`` views delegate to the operation's auth."""

    roles: frozenset[str] = frozenset()
    public: bool = False
    api: bool = False
    mfa: bool = True

    def allows(self, request: HttpRequest) -> bool:
        if self.public or self.api:
            return True
        user = request.user
        if not user.is_authenticated or not user.is_active:
            return False
        if self.mfa and not second_factor_verified(user):
            return False
        return getattr(user, "role", None) in self.roles


def second_factor_verified(user: object) -> bool:
    """Whether the signed-in user passed their second factor in this session.

    django_otp's ``OTPMiddleware`` attaches ``is_verified()`` to ``request.user`` at run time, an attribute no
    stub can describe: this is the one place that reads it.
    """
    return bool(user.is_verified())  # type: ignore[attr-defined]  # set by django_otp's OTPMiddleware


def signed_in_user(request: HttpRequest) -> User:
    """The account of a request that passed its access declaration (``@allow``, ``@signed_in``,
    ``api_roles``), typed as ``User``: the stubs type ``request.user`` as ``User | AnonymousUser``, and a
    declared view or API operation only runs for a signed-in account, so anything else is a programming
    error."""
    from ketaclinic.accounts.models import User  # accounts.models imports the roles from this module

    user = request.user
    assert isinstance(user, User), "a declared view runs only for a signed-in account"
    return user


def _declare(view: F, access: Access) -> F:
    view.access = access  # type: ignore[attr-defined]  # a function attribute, read by declared_access()
    return view


def allow(*roles: str, mfa: bool = True) -> Callable[[F], F]:
    """Declare the roles that may use a view: ``@allow(NURSE, PRESCRIBER)``."""
    unknown = set(roles) - STAFF_ROLES
    if unknown or not roles:
        raise ValueError(f"allow() needs known roles, got {roles!r}")

    def decorate(view: F) -> F:
        return _declare(view, Access(roles=frozenset(roles), mfa=mfa))

    return decorate


def public(view: F) -> F:
    """Declare a view that needs no sign-in (sign-in pages, health check, patient self-report links)."""
    return _declare(view, Access(public=True))


def delegated(view: F) -> F:
    """A view that authorises every request itself (FHIR bearer tokens): the view must refuse by default."""
    return _declare(view, Access(api=True))


def signed_in(view: F) -> F:
    """A view any staff member may use once signed in (password only; used for MFA enrolment)."""
    return _declare(view, Access(roles=STAFF_ROLES, mfa=False))


def declared_access(view: Callable[..., Any]) -> Access | None:
    access = getattr(view, "access", None)
    if access is None:
        # Class-based views: as_view() keeps the class on ``view_class``.
        view_class = getattr(view, "view_class", None)
        access = getattr(view_class, "access", None) if view_class else None
    return access if isinstance(access, Access) else None
