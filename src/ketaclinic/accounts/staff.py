"""Staff account administration (issue 14 point 5): an administrator edits a colleague's name, e-mail and
work phone, role and sites, a clinician's identifiers (NPI, DEA number, state licence), deactivates and
reactivates accounts, resets a second factor and lifts a sign-in lockout. Invitations and password-reset
links are ``accounts/invitations.py``.

Every change is audited with before and after (ONC (d)(2): account creation, role change, revocation,
disabling). Privilege changes go to the ``account-privileges`` category, names and identifiers to
``account-profile``.

**Nobody changes their own privileges.** An administrator cannot change their own role, sites or break-glass
permission, deactivate themselves or reset their own second factor: another administrator does it, under
their own name. We chose a refusal over a co-signature (accounts/cosign.py) at the administrator's own
keyboard: the second administrator acting in their own session gives the same two-person control, is
audited under the name of the person who decided, and leaves no path in which the person who gains a
clinical role is the one who acts. Every role given (by a change or an invitation) is also announced to the
organization's other administrators, so a role is never granted silently — not even to a second account an
administrator opens for themselves. The last active administrator cannot be deactivated or lose the role.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import AccountLink, Site, User
from ketaclinic.accounts.services import covers_site, end_all_sessions, reset_mfa
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import identifiers as ids
from ketaclinic.core.access import ADMIN, NURSE, PRESCRIBER, ROLE_LABELS
from ketaclinic.core.errors import DomainError

PRIVILEGES = "account-privileges"
PROFILE = "account-profile"
NAME_MAX_CHARS = 150  # Django's first_name / last_name columns
#: Roles whose accounts carry an NPI and a state licence; only prescribers carry a DEA number.
IDENTIFIED_ROLES = frozenset({PRESCRIBER, NURSE})


class StaffError(DomainError):
    """A refused change; ``errors`` maps each form field to a message an administrator can act on."""

    status = 422

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class StaffForbidden(StaffError):
    status = 403


class StaffNotFound(StaffError):
    status = 404


class StaffConflict(StaffError):
    status = 409


@dataclass(frozen=True, slots=True)
class Profile:
    first_name: str
    last_name: str
    email: str
    phone: str = ""


@dataclass(frozen=True, slots=True)
class AccessGrant:
    role: str
    site_ids: tuple[int, ...]
    all_sites: bool = False
    break_glass_allowed: bool = False


@dataclass(frozen=True, slots=True)
class ClinicianIdentifiers:
    npi: str = ""
    dea_number: str = ""
    licence_number: str = ""
    licence_state: str = ""


# --- reading ---------------------------------------------------------------------------------------------


def account_of(admin: User, user_id: int) -> User:
    """A staff account of the administrator's organization; another organization's answers 404."""
    user = User.objects.filter(pk=user_id, organization_id=admin.org_id, is_service=False).first()
    if user is None:
        raise StaffNotFound({"account": "No such staff account."})
    return user


def pending_link(user: User, *, now: datetime | None = None) -> AccountLink | None:
    """The link waiting to be used (not used, not revoked, not expired), if any."""
    now = now or timezone.now()
    return (
        AccountLink.objects.filter(user=user, used_at=None, revoked_at=None, expires_at__gt=now)
        .order_by("-created_at")
        .first()
    )


def locked_out(user: User, *, now: datetime | None = None) -> bool:
    """Whether sign-in is locked after repeated wrong passwords from some address (django-axes)."""
    from axes.models import AccessAttempt

    now = now or timezone.now()
    return bool(
        AccessAttempt.objects.filter(
            username=user.username,
            failures_since_start__gte=settings.AXES_FAILURE_LIMIT,
            attempt_time__gte=now - settings.AXES_COOLOFF_TIME,
        ).exists()
    )


@dataclass(frozen=True)
class StaffRow:
    user: User
    status: str  # what the list shows: active, invited …, deactivated
    link: AccountLink | None
    locked: bool


def status_of(user: User, link: AccountLink | None) -> str:
    if not user.is_active:
        return "deactivated"
    if not user.has_usable_password():
        return "invited, link not used yet" if link is not None else "invited, link expired: send a new one"
    return "active"


def staff_rows(admin: User) -> list[StaffRow]:
    users = (
        User.objects.filter(organization_id=admin.org_id, is_service=False)
        .prefetch_related("sites")
        .order_by("-is_active", "role", "last_name", "username")
    )
    rows = []
    for user in users:
        link = pending_link(user)
        rows.append(StaffRow(user, status_of(user, link), link, locked_out(user)))
    return rows


def active_admins(organization_id: int) -> list[User]:
    return list(
        User.objects.filter(organization_id=organization_id, role=ADMIN, is_active=True, is_service=False)
    )


# --- checks shared with invitations -----------------------------------------------------------------------


def profile_problems(profile: Profile, *, organization_id: int, account: User | None) -> dict[str, str]:
    """Every problem with a name, e-mail and phone at once. The e-mail is where invitation and reset links
    go, so it is required and belongs to one active account of the organization."""
    errors: dict[str, str] = {}
    for name, value in (("first_name", profile.first_name), ("last_name", profile.last_name)):
        if not value:
            errors[name] = "required"
        elif len(value) > NAME_MAX_CHARS:
            errors[name] = f"at most {NAME_MAX_CHARS} characters (this has {len(value)})"
    if not profile.email:
        errors["email"] = "required: invitation and password-reset links are e-mailed here"
    else:
        try:
            validate_email(profile.email)
        except ValidationError:
            errors["email"] = f"{profile.email!r} is not an e-mail address"
        else:
            other = (
                User.objects.filter(
                    organization_id=organization_id,
                    email__iexact=profile.email,
                    is_active=True,
                    is_service=False,
                )
                .exclude(pk=account.pk if account else 0)
                .first()
            )
            if other is not None:
                errors["email"] = (
                    f"already the address of {other.display_name} ({other.username}): one person, one account"
                )
    if profile.phone:
        problem = ids.phone_problem(profile.phone)
        if problem:
            errors["phone"] = problem
    return errors


def grant_problems(grant: AccessGrant, *, organization_id: int) -> tuple[dict[str, str], list[Site]]:
    """Problems with a role and sites, and the sites themselves (of the organization only)."""
    errors: dict[str, str] = {}
    if grant.role not in ROLE_LABELS:
        errors["role"] = f"choose one of {', '.join(ROLE_LABELS.values())}"
    sites = list(Site.objects.filter(organization_id=organization_id, pk__in=grant.site_ids))
    if len(sites) != len(set(grant.site_ids)):
        errors["sites"] = "one of the chosen sites is not a site of this clinic"
    elif grant.role in ROLE_LABELS and grant.role != ADMIN and not (sites or grant.all_sites):
        errors["sites"] = "choose the sites this person works at, or 'sees patients of every site'"
    return errors, sites


def announce_role(*, admin: User, user: User, before: str | None, after: str) -> None:
    """Tell every other active administrator, and the person, that a role was given: no role is granted
    silently."""
    from ketaclinic.core.models import Notification

    was = f" (was {ROLE_LABELS.get(before, before) or 'no role'})" if before is not None else ""
    message = (
        f"{admin.display_name} gave {user.display_name} ({user.username}) the {ROLE_LABELS[after]} role{was}."
    )
    for other in active_admins(admin.org_id):
        if other.pk not in (admin.pk, user.pk):
            Notification.objects.create(
                organization_id=admin.org_id,
                recipient=other,
                kind="account-role",
                message=message[:400],
                link=f"/accounts/users/{user.pk}/",
            )
    if user.pk != admin.pk and user.has_usable_password():  # the person too (an invitee learns by e-mail)
        Notification.objects.create(
            organization_id=admin.org_id,
            recipient=user,
            kind="account-role",
            message=f"{admin.display_name} gave you the {ROLE_LABELS[after]} role{was}."[:400],
        )


def revoke_links(user: User, *, now: datetime | None = None) -> int:
    return AccountLink.objects.filter(user=user, used_at=None, revoked_at=None).update(
        revoked_at=now or timezone.now()
    )


def save_changed(row: Model, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set and save the fields of ``row`` whose value differs from ``values``; returns (before, after) of
    those fields only — what an audit entry records — both empty when nothing changed. Dates become ISO
    text for the audit log."""
    before = {name: getattr(row, name) for name, value in values.items() if getattr(row, name) != value}
    if not before:
        return {}, {}
    for name in before:
        setattr(row, name, values[name])
    row.save(update_fields=list(before))

    def shown(value: Any) -> Any:
        return value.isoformat() if isinstance(value, date) else value

    return {k: shown(v) for k, v in before.items()}, {k: shown(values[k]) for k in before}


def refuse_self(admin: User, user: User, what: str, field: str) -> None:
    if admin.pk == user.pk:
        raise StaffForbidden(
            {
                field: f"You cannot {what} on your own account: ask another administrator, so that no one changes their own privileges."
            }
        )


def _refuse_last_admin(user: User, what: str, field: str) -> None:
    if (
        user.role == ADMIN
        and user.is_active
        and not [a for a in active_admins(user.org_id) if a.pk != user.pk]
    ):
        raise StaffConflict(
            {
                field: f"{user.display_name} is the clinic's last active administrator and cannot be {what}: make another administrator first."
            }
        )


def audit_account(
    admin: User,
    user: User,
    category: str,
    request: HttpRequest | None,
    action: str = Action.CHANGE,
    **kw: Any,
) -> None:
    audit.record(
        user=admin,
        action=action,
        category=category,
        organization=user.organization,
        object_type="User",
        object_id=user.pk,
        request=request,
        **kw,
    )


# --- changes ---------------------------------------------------------------------------------------------


def update_profile(
    *, admin: User, user: User, profile: Profile, request: HttpRequest | None = None
) -> list[str]:
    """Name, e-mail and work phone; returns the fields that changed. A new e-mail address revokes links
    that went to the old one."""
    errors = profile_problems(profile, organization_id=admin.org_id, account=user)
    if errors:
        raise StaffError(errors)
    before, after = save_changed(user, asdict(profile))
    changed = list(after)
    if not changed:
        return []
    revoked = revoke_links(user) if "email" in changed else 0
    audit_account(
        admin,
        user,
        PROFILE,
        request,
        before=before,
        after=after,
        detail=f"{revoked} unused link(s) to the old address revoked" if revoked else "",
    )
    return changed


def change_access(*, admin: User, user: User, grant: AccessGrant, request: HttpRequest | None = None) -> bool:
    """Role, sites and break-glass permission; returns whether anything changed."""
    errors, sites = grant_problems(grant, organization_id=admin.org_id)
    if errors:
        raise StaffError(errors)
    before: dict[str, Any] = {
        "role": user.role,
        "all_sites": user.all_sites,
        "break_glass_allowed": user.break_glass_allowed,
        "sites": sorted(s.code for s in user.sites.all()),
    }
    after: dict[str, Any] = {
        "role": grant.role,
        "all_sites": grant.all_sites,
        "break_glass_allowed": grant.break_glass_allowed,
        "sites": sorted(s.code for s in sites),
    }
    if before == after:
        return False
    refuse_self(admin, user, "change the role, sites or break-glass permission", "role")
    if before["role"] != after["role"]:
        _refuse_last_admin(user, f"made {ROLE_LABELS[grant.role]}", "role")
    user.role, user.all_sites, user.break_glass_allowed = (
        grant.role,
        grant.all_sites,
        grant.break_glass_allowed,
    )
    user.save(update_fields=["role", "all_sites", "break_glass_allowed"])
    user.sites.set(sites)
    if user.on_duty_site is not None and not covers_site(user, user.on_duty_site):
        # Off duty at a site the account no longer works at: its alerts stop (issue 15 M1).
        user.on_duty_site = None
        user.save(update_fields=["on_duty_site"])
    changed = [k for k in before if before[k] != after[k]]
    audit_account(
        admin,
        user,
        PRIVILEGES,
        request,
        before={k: before[k] for k in changed},
        after={k: after[k] for k in changed},
    )
    if before["role"] != after["role"]:
        announce_role(admin=admin, user=user, before=before["role"], after=grant.role)
    return True


def identifier_problems(values: ClinicianIdentifiers, *, user: User) -> dict[str, str]:
    errors: dict[str, str] = {}
    given = {k: v for k, v in asdict(values).items() if v}
    if given and user.role not in IDENTIFIED_ROLES:
        role = ROLE_LABELS.get(user.role, "no role")
        errors["npi"] = (
            f"only prescribers' and nurses' accounts carry clinical identifiers ({user.display_name} is {role})"
        )
        return errors
    if values.npi:
        problem = ids.npi_problem(values.npi)
        if problem:
            errors["npi"] = problem
    if values.dea_number:
        problem = ids.dea_problem(values.dea_number)
        if user.role != PRESCRIBER:
            problem = "only a prescriber's account carries a DEA number"
        if problem:
            errors["dea_number"] = problem
    if values.licence_number or values.licence_state:
        if not values.licence_number:
            errors["licence_number"] = "enter the licence number for the state"
        else:
            problem = ids.licence_problem(values.licence_number)
            if problem:
                errors["licence_number"] = problem
        if not values.licence_state:
            errors["licence_state"] = "enter the state that issued the licence"
        else:
            problem = ids.state_problem(values.licence_state)
            if problem:
                errors["licence_state"] = problem
    for field, label in (("npi", "NPI"), ("dea_number", "DEA number")):
        value = getattr(values, field)
        if value and field not in errors:
            other = (
                User.objects.filter(organization_id=user.org_id, is_service=False, **{field: value})
                .exclude(pk=user.pk)
                .first()
            )
            if other is not None:
                errors[field] = (
                    f"this {label} is already on {other.display_name}'s account ({other.username})"
                )
    return errors


def update_identifiers(
    *, admin: User, user: User, values: ClinicianIdentifiers, request: HttpRequest | None = None
) -> list[str]:
    """A clinician's NPI, DEA number and state licence, each checked (clinical/identifiers.py); an empty
    value removes it. Returns the fields that changed."""
    errors = identifier_problems(values, user=user)
    if errors:
        raise StaffError(errors)
    before, after = save_changed(user, asdict(values))
    if after:
        audit_account(admin, user, PROFILE, request, before=before, after=after)
    return list(after)


def deactivate(*, admin: User, user: User, request: HttpRequest | None = None) -> int:
    """The account can no longer sign in; every session it has ends now (ASVS 7.4.2), unused links are
    revoked and it stops receiving a site's alerts as the on-duty clinician. Returns the sessions ended."""
    _refuse_last_admin(user, "deactivated", "is_active")
    refuse_self(admin, user, "deactivate yourself", "is_active")
    if not user.is_active:
        return 0
    user.is_active, user.on_duty_site = False, None
    user.save(update_fields=["is_active", "on_duty_site"])
    ended = end_all_sessions(user)
    revoked = revoke_links(user)
    audit_account(
        admin,
        user,
        PRIVILEGES,
        request,
        before={"is_active": True},
        after={"is_active": False},
        detail=f"{ended} session(s) ended, {revoked} unused link(s) revoked",
    )
    return ended


def reactivate(*, admin: User, user: User, request: HttpRequest | None = None) -> None:
    if user.is_active:
        return
    user.is_active = True
    user.save(update_fields=["is_active"])
    audit_account(admin, user, PRIVILEGES, request, before={"is_active": False}, after={"is_active": True})
    if user.role:
        announce_role(admin=admin, user=user, before=None, after=user.role)


def reset_second_factor(*, admin: User, user: User, request: HttpRequest | None = None) -> None:
    """Remove the authenticator and recovery codes (a lost phone): the person enrols a new authenticator at
    their next sign-in, and their sessions end now. Never part of a password reset."""
    refuse_self(admin, user, "reset the second factor", "mfa")
    reset_mfa(admin=admin, user=user, request=request)


def unlock(*, admin: User, user: User, request: HttpRequest | None = None) -> int:
    """Lift a sign-in lockout after repeated wrong passwords (django-axes); returns the records removed."""
    from axes.utils import reset

    removed = int(reset(username=user.username))
    audit_account(
        admin,
        user,
        PRIVILEGES,
        request,
        before={"locked_out": True},
        after={"locked_out": False},
        detail=f"{removed} failed-attempt record(s) cleared",
    )
    return removed
