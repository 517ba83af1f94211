"""Account use cases: sign-in steps, MFA enrolment, session bookkeeping, creating an account.

An administrator's changes to other accounts (role, sites, status, identifiers) are ``accounts/staff.py``;
invitation and password-reset links ``accounts/invitations.py``."""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Organization, Site, User, UserSession
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action, Outcome
from ketaclinic.core.access import ROLE_LABELS

RECOVERY_CODES = 10


def system_user(name: str, organization: Organization | None = None) -> User:
    """A named service account that can never sign in; audit rows of automatic actions point to it."""
    username = f"system:{name}" if organization is None else f"system:{name}@{organization.slug}"
    user, created = User.objects.get_or_create(
        username=username,
        defaults={"is_service": True, "is_active": False, "organization": organization, "first_name": name},
    )
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def covered_sites(user: User) -> list[Site]:
    """The sites whose patients and stock the user works with: every site of the organization for an
    administrator or an all-sites account, else the user's own sites; by name."""
    sites = Site.objects.filter(organization_id=user.org_id)
    if not (user.role == "admin" or user.all_sites):
        sites = sites.filter(pk__in=user.sites.all())
    return list(sites.order_by("name"))


def covers_site(user: User, site: Site) -> bool:
    """Whether ``site`` is one of the user's sites (``covered_sites``)."""
    return site.organization_id == user.org_id and (
        user.role == "admin" or user.all_sites or user.sites.filter(pk=site.pk).exists()
    )


def set_on_duty(*, user: User, site_id: Any, request: HttpRequest | None = None) -> Site | None:
    """Put a clinician on duty at one of their own sites (she then receives its safety alerts), or off duty
    (``site_id`` empty). A site she does not cover is refused with 403 and nothing changes (issue 15 M1)."""
    site = None
    if site_id not in (None, ""):
        text = str(site_id)
        site = Site.objects.filter(pk=int(text)).first() if text.isdigit() and len(text) < 19 else None
        if site is None or not covers_site(user, site):
            raise PermissionDenied("You can only go on duty at a site you work at.")
    user.on_duty_site = site
    user.save(update_fields=["on_duty_site"])
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="on-duty",
        object_type="User",
        object_id=user.pk,
        after={"on_duty_site": site.code if site else None},
        request=request,
    )
    return site


def remember_session(request: HttpRequest, user: User) -> None:
    if not request.session.session_key:
        request.session.save()
    UserSession.objects.update_or_create(session_key=request.session.session_key, defaults={"user": user})


def end_session(request: HttpRequest, *, reason: str) -> None:
    user = request.user
    if user.is_authenticated:
        audit.record(user=user, action=Action.LOGOUT, category="session", request=request, detail=reason)
        if request.session.session_key:
            UserSession.objects.filter(session_key=request.session.session_key).delete()


def end_all_sessions(user: User) -> int:
    """End every server-side session of the account; returns how many were still open."""
    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    ended, _ = Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(user=user).delete()
    return ended


def has_confirmed_totp(user: User) -> bool:
    return bool(TOTPDevice.objects.filter(user=user, confirmed=True).exists())


def pending_totp_device(user: User) -> TOTPDevice:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)
    return device


def confirm_totp(
    *, user: User, device: TOTPDevice, token: str, request: HttpRequest | None
) -> list[str] | None:
    """Confirm enrolment with a first code; returns the one-time recovery codes, or None if the code is wrong."""
    if not device.verify_token(token.strip().replace(" ", "")):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
    codes = new_recovery_codes(user)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category="account-mfa",
        object_type="User",
        object_id=user.pk,
        after={"totp": "enrolled", "recovery_codes": len(codes)},
        request=request,
    )
    return codes


def new_recovery_codes(user: User) -> list[str]:
    StaticDevice.objects.filter(user=user).delete()
    device = StaticDevice.objects.create(user=user, name="Recovery codes", confirmed=True)
    codes = [
        f"{secrets.token_hex(4)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)
    ]  # 56 bits; field holds 16
    StaticToken.objects.bulk_create([StaticToken(device=device, token=code) for code in codes])
    return codes


def reset_mfa(*, admin: User, user: User, request: HttpRequest | None) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    end_all_sessions(user)
    audit.record(
        user=admin,
        action=Action.CHANGE,
        category="account-privileges",
        object_type="User",
        object_id=user.pk,
        before={"mfa": "enrolled"},
        after={"mfa": "reset"},
        request=request,
    )


def create_account(
    *,
    organization: Organization,
    username: str,
    password: str | None,
    role: str,
    sites: list[Site],
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    all_sites: bool = False,
    by: User | None = None,
) -> User:
    if role not in ROLE_LABELS:
        raise ValueError(f"{role!r} is not a role; use one of {', '.join(ROLE_LABELS)}")
    user = get_user_model().objects.create_user(
        username=username,
        password=password,
        organization=organization,
        role=role,
        first_name=first_name,
        last_name=last_name,
        email=email,
        all_sites=all_sites,
    )
    user.sites.set(sites)
    audit.record(
        user=by or system_user("accounts"),
        organization=organization,
        action=Action.ADD,
        category="account-privileges",
        object_type="User",
        object_id=user.pk,
        after={"username": username, "role": role, "sites": sorted(s.code for s in sites)},
    )
    return user


def record_login(request: HttpRequest, user: User, *, step: str) -> None:
    audit.record(user=user, action=Action.LOGIN, category="session", request=request, detail=step)


def record_failed_login(request: HttpRequest | None, username: str, *, step: str) -> None:
    user = User.objects.filter(username=username, is_service=False).first()
    detail = step
    if user is None:
        user = system_user("anonymous")
        detail = f"{step}; unknown username"
    audit.record(
        user=user,
        action=Action.LOGIN,
        category="session",
        request=request,
        outcome=Outcome.FAILURE,
        detail=detail,
    )


def unread_notifications(user: User) -> models.QuerySet[Any]:
    from ketaclinic.core.models import Notification

    return Notification.objects.filter(recipient=user, read_at__isnull=True)


def mark_read(user: User, notification_id: int) -> None:
    from ketaclinic.core.models import Notification

    Notification.objects.filter(recipient=user, pk=notification_id).update(read_at=timezone.now())
