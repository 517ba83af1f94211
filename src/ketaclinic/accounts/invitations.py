"""One-time links e-mailed to staff: an invitation to a new account, or a password reset.

The administrator never sees or sets the password, and never sees the link: it goes only to the person's
e-mail address, so an administrator cannot sign in as a colleague. The token is 256 random bits; only its
SHA-256 is stored (``AccountLink.token_hash``). A link works once (a conditional UPDATE claims it), until it
expires (``KETACLINIC_INVITATION_HOURS``, ``KETACLINIC_PASSWORD_RESET_HOURS``), and a newer link for the same
person, a change of their e-mail address or a deactivation revokes it.

Opening the link asks for a new password (Argon2id, the project's validators: 12 characters or more, not a
common password, not like the username). An invited person is then signed in with the password step only,
which opens nothing but the authenticator enrolment (``accounts:mfa_setup``): no page with patient data
until the authenticator app is confirmed. A reset keeps the enrolled authenticator — removing it is the
administrator's separate, audited "reset second factor" — and ends every session the person had.
"""

from __future__ import annotations

import hashlib
import secrets
import smtplib
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import AccountLink, User
from ketaclinic.accounts.services import create_account, end_all_sessions, has_confirmed_totp
from ketaclinic.accounts.staff import (
    PRIVILEGES,
    AccessGrant,
    Profile,
    StaffError,
    announce_role,
    audit_account,
    grant_problems,
    profile_problems,
    revoke_links,
)
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action, Outcome
from ketaclinic.core.access import ROLE_LABELS
from ketaclinic.core.errors import DomainError

USERNAME_MAX_CHARS = 150


class LinkUnavailable(DomainError):
    """A link that is unknown, used, revoked or expired: the page says so without saying which."""

    status = 410
    message = "This link has expired or has already been used. Ask your clinic's administrator to send you a new one."


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _lifetime(kind: str) -> timedelta:
    hours = (
        settings.KETACLINIC_INVITATION_HOURS
        if kind == AccountLink.Kind.INVITATION
        else settings.KETACLINIC_PASSWORD_RESET_HOURS
    )
    return timedelta(hours=hours)


def _zone(user: User) -> ZoneInfo:
    site = user.sites.order_by("name").first() or (
        user.organization.sites.order_by("name").first() if user.organization else None
    )
    return site.zone if site is not None else ZoneInfo("UTC")


def _send(*, link: AccountLink, token: str, admin: User) -> None:
    """The e-mail: who invited them, the link, when it expires, what happens next. No patient data."""
    from django.core.mail import send_mail

    user = link.user
    org = user.organization.name if user.organization else "your clinic"
    url = settings.KETACLINIC_PUBLIC_URL + reverse("accounts:link_open", args=[token])
    zone = _zone(user)
    expires = f"{timezone.localtime(link.expires_at, zone):%Y-%m-%d %H:%M} ({zone.key})"
    if link.kind == AccountLink.Kind.INVITATION:
        subject = f"{org}: your ketaclinic account"
        body = (
            f"Hello {user.first_name},\n\n{admin.display_name} has opened a ketaclinic account for you at {org}: "
            f"username {user.username}, role {ROLE_LABELS.get(user.role, user.role)}.\n\n"
            f"Open this link to choose your password:\n\n{url}\n\n"
            "You will then set up an authenticator app on your phone (two-factor sign-in) before you can open "
            f"anything else. The link works once and expires {expires}.\n\n"
            f"If you did not expect this e-mail, do not open the link and tell {admin.display_name}.\n"
        )
    else:
        subject = f"{org}: reset your ketaclinic password"
        body = (
            f"Hello {user.first_name},\n\n{admin.display_name} sent you a link to choose a new password for "
            f"ketaclinic (username {user.username}):\n\n{url}\n\nYour authenticator app stays as it is. "
            f"The link works once and expires {expires}. Setting a new password signs you out everywhere.\n\n"
            f"If you did not ask for this, do not open the link and tell {admin.display_name}.\n"
        )
    send_mail(subject=subject, message=body, from_email=None, recipient_list=[link.email])


def _issue(*, admin: User, user: User, kind: str, request: HttpRequest | None) -> AccountLink:
    """Revoke any earlier link, store a new one (hash only), e-mail it and audit it. Runs in a savepoint:
    when the e-mail cannot be sent, nothing of it stays and the administrator is told."""
    now = timezone.now()
    token = secrets.token_urlsafe(32)
    try:
        with transaction.atomic():
            revoked = revoke_links(user, now=now)
            link = AccountLink.objects.create(
                organization_id=admin.org_id,
                user=user,
                kind=kind,
                token_hash=_hash(token),
                email=user.email,
                created_by=admin,
                created_at=now,
                expires_at=now + _lifetime(kind),
            )
            audit_account(
                admin,
                user,
                PRIVILEGES,
                request,
                after={"link": kind, "sent_to": user.email, "expires_at": link.expires_at.isoformat()},
                detail=f"{AccountLink.Kind(kind).label} link e-mailed"
                + (f"; {revoked} earlier link(s) revoked" if revoked else ""),
            )
            _send(link=link, token=token, admin=admin)
    except (smtplib.SMTPException, OSError) as exc:
        raise StaffError(
            {
                "email": f"the e-mail to {user.email} could not be sent ({exc.__class__.__name__}): check the mail settings (docs/operations.md) and try again"
            }
        ) from None
    return link


def invite(
    *, admin: User, username: str, profile: Profile, grant: AccessGrant, request: HttpRequest | None = None
) -> User:
    """A new staff account with no password, and an invitation link e-mailed to the person. Every problem
    with the username, name, e-mail, role and sites is reported at once; nothing is created then."""
    errors = profile_problems(profile, organization_id=admin.org_id, account=None)
    if not username:
        errors["username"] = "required"
    elif len(username) > USERNAME_MAX_CHARS:
        errors["username"] = f"at most {USERNAME_MAX_CHARS} characters"
    else:
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError:
            errors["username"] = "letters, digits and @ . + - _ only"
        else:
            if User.objects.filter(username__iexact=username).exists():
                errors["username"] = f"{username!r} is taken"
    grant_errors, sites = grant_problems(grant, organization_id=admin.org_id)
    errors.update(grant_errors)
    if profile.email and admin.email and profile.email.casefold() == admin.email.casefold():
        errors["email"] = "this is your own address: one person, one account (ask another administrator)"
    if errors:
        raise StaffError(errors)
    assert admin.organization is not None  # admin.org_id above refuses an account without one
    with transaction.atomic():  # a savepoint: no account stays when the invitation cannot be e-mailed
        user = create_account(
            organization=admin.organization,
            username=username,
            password=None,
            role=grant.role,
            sites=sites,
            first_name=profile.first_name,
            last_name=profile.last_name,
            email=profile.email,
            all_sites=grant.all_sites,
            by=admin,
        )
        if profile.phone or grant.break_glass_allowed:
            user.phone, user.break_glass_allowed = profile.phone, grant.break_glass_allowed
            user.save(update_fields=["phone", "break_glass_allowed"])
        _issue(admin=admin, user=user, kind=AccountLink.Kind.INVITATION, request=request)
        announce_role(admin=admin, user=user, before=None, after=grant.role)
    return user


def send_link(*, admin: User, user: User, request: HttpRequest | None = None) -> AccountLink:
    """A new invitation (the person never chose a password) or a password-reset link; earlier links stop
    working. The enrolled authenticator is not touched."""
    if not user.is_active:
        raise StaffError({"link": f"{user.display_name}'s account is deactivated: reactivate it first"})
    if not user.email:
        raise StaffError({"email": f"{user.display_name} has no e-mail address: add one first"})
    kind = AccountLink.Kind.RESET if user.has_usable_password() else AccountLink.Kind.INVITATION
    return _issue(admin=admin, user=user, kind=kind, request=request)


# --- the person who received the link --------------------------------------------------------------------


def open_link(token: str, *, now: datetime | None = None) -> AccountLink:
    """The link behind a token, if it can still be used."""
    now = now or timezone.now()
    link = AccountLink.objects.select_related("user").filter(token_hash=_hash(token)).first()
    if link is None or not usable(link, now=now):
        raise LinkUnavailable(LinkUnavailable.message)
    return link


def usable(link: AccountLink, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return (
        link.used_at is None
        and link.revoked_at is None
        and link.expires_at > now
        and link.user.is_active
        and not link.user.is_service
    )


def link_by_id(link_id: object) -> AccountLink:
    """The link a browser opened earlier in this session (its id is kept in the session, not the token)."""
    link = (
        AccountLink.objects.select_related("user").filter(pk=link_id).first()
        if isinstance(link_id, int)
        else None
    )
    if link is None or not usable(link):
        raise LinkUnavailable(LinkUnavailable.message)
    return link


def password_problems(link: AccountLink, password: str, again: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    if password != again:
        errors["password_again"] = "the two passwords differ"  # noqa: S105 (a message, not a password)
    try:
        validate_password(password, link.user)
    except ValidationError as exc:
        errors["password"] = " ".join(exc.messages)
    return errors


def complete_link(
    *, link: AccountLink, password: str, again: str, request: HttpRequest | None = None
) -> User:
    """Set the password the person chose and use the link up. Refused (nothing used up) when the password
    does not meet the rules; refused when someone used the link a moment before."""
    errors = password_problems(link, password, again)
    if errors:
        raise StaffError(errors)
    now = timezone.now()
    claimed = AccountLink.objects.filter(
        pk=link.pk, used_at=None, revoked_at=None, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        raise LinkUnavailable(LinkUnavailable.message)
    user = link.user
    user.set_password(password)  # Argon2id at the OWASP parameters (settings.PASSWORD_HASHERS)
    user.save(update_fields=["password"])
    ended = end_all_sessions(user)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=PRIVILEGES,
        object_type="User",
        object_id=user.pk,
        request=request,
        after={"password": "set", "link": link.kind},
        detail=f"password chosen from the {AccountLink.Kind(link.kind).label.lower()} link; {ended} earlier session(s) ended"
        + ("" if has_confirmed_totp(user) else "; authenticator enrolment next"),
    )
    return user


def record_refused_link(request: HttpRequest | None) -> None:
    """A link that could not be used is logged (log-in monitoring, 164.308(a)(5)(ii)(C))."""
    from ketaclinic.accounts.services import system_user

    audit.record(
        user=system_user("anonymous"),
        action=Action.LOGIN,
        category="session",
        request=request,
        outcome=Outcome.FAILURE,
        detail="account link refused: unknown, used, revoked or expired",
    )
