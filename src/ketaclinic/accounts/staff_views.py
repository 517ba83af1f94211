"""Staff administration pages (administrators only) and the page a one-time link opens (anyone holding it).

The pages translate: they parse the post into typed values (accounts/staff_forms.py), call one use case
(accounts/staff.py, accounts/invitations.py) and render its answer; a refused change comes back as the
service's error with its status (422, 403, 409, 404) and the page shows every message beside its field,
keeping what was typed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketaclinic.accounts import invitations, services, staff
from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.staff_forms import parse_grant, parse_identifiers, parse_profile
from ketaclinic.core.access import ADMIN, ROLE_CHOICES, allow, public, signed_in_user
from ketaclinic.core.middleware import start_session_clock

LINK_SESSION_KEY = "_ketaclinic_account_link"


def _account(admin: User, user_id: int) -> User:
    try:
        return staff.account_of(admin, user_id)
    except staff.StaffNotFound:
        raise Http404("No such staff account.") from None


@allow(ADMIN)
@require_GET
def users_view(request: HttpRequest) -> HttpResponse:
    rows = staff.staff_rows(signed_in_user(request))
    return render(request, "accounts/users.html", {"rows": rows})


def _sites(admin: User) -> list[Site]:
    return list(Site.objects.filter(organization_id=admin.org_id).order_by("name"))


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def invite_view(request: HttpRequest) -> HttpResponse:
    admin = signed_in_user(request)
    values: dict[str, Any] = {"role": "", "sites": [], "all_sites": False}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {
            **request.POST.dict(),
            "sites": request.POST.getlist("sites"),
            "all_sites": request.POST.get("all_sites") == "on",
        }
        try:
            user = invitations.invite(
                admin=admin,
                username=request.POST.get("username", "").strip(),
                profile=parse_profile(request.POST),
                grant=parse_grant(request.POST),
                request=request,
            )
        except staff.StaffError as exc:
            errors, status = exc.errors, exc.status
        else:
            messages.success(
                request,
                f"Invitation e-mailed to {user.email}. {user.display_name} chooses a password and sets up "
                "an authenticator app before they can open anything.",
            )
            return redirect("accounts:user_edit", user_id=user.pk)
    return render(
        request,
        "accounts/user_invite.html",
        {
            "values": values,
            "errors": errors,
            "roles": ROLE_CHOICES,
            "sites": _sites(admin),
            "invitation_hours": settings.KETACLINIC_INVITATION_HOURS,
        },
        status=status,
    )


def _detail_values(account: User) -> dict[str, Any]:
    return {
        "first_name": account.first_name,
        "last_name": account.last_name,
        "email": account.email,
        "phone": account.phone,
        "role": account.role,
        "sites": [str(s.pk) for s in account.sites.all()],
        "all_sites": account.all_sites,
        "break_glass_allowed": account.break_glass_allowed,
        "npi": account.npi,
        "dea_number": account.dea_number,
        "licence_number": account.licence_number,
        "licence_state": account.licence_state,
    }


def _detail(
    request: HttpRequest,
    account: User,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    admin = signed_in_user(request)
    link = staff.pending_link(account)
    shown = _detail_values(account) | (values or {})
    return render(
        request,
        "accounts/user_edit.html",
        {
            "account": account,
            "values": shown,
            "errors": errors or {},
            "status": staff.status_of(account, link),
            "link": link,
            "locked": staff.locked_out(account),
            "has_mfa": services.has_confirmed_totp(account),
            "is_self": account.pk == admin.pk,
            "roles": ROLE_CHOICES,
            "sites": _sites(admin),
            "identified": account.role in staff.IDENTIFIED_ROLES,
        },
        status=status,
    )


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def user_edit_view(request: HttpRequest, user_id: int) -> HttpResponse:
    admin = signed_in_user(request)
    account = _account(admin, user_id)
    if request.method == "GET":
        return _detail(request, account)
    action = request.POST.get("action", "")
    posted: dict[str, Any] = {
        **request.POST.dict(),
        "sites": request.POST.getlist("sites"),
        "all_sites": request.POST.get("all_sites") == "on",
        "break_glass_allowed": request.POST.get("break_glass_allowed") == "on",
    }
    try:
        done = _act(request, admin, account, action)
    except staff.StaffError as exc:
        keep = posted if action in ("profile", "access", "identifiers") else {}
        return _detail(request, account, values=keep, errors=exc.errors, status=exc.status)
    messages.success(request, done)
    return redirect("accounts:user_edit", user_id=account.pk)


def _act(request: HttpRequest, admin: User, account: User, action: str) -> str:
    """Carry out one posted action; returns what to tell the administrator."""
    name = account.display_name
    if action == "profile":
        changed = staff.update_profile(
            admin=admin, user=account, profile=parse_profile(request.POST), request=request
        )
        return f"Saved {name}: {', '.join(changed)}." if changed else "Nothing changed."
    if action == "access":
        changed_access = staff.change_access(
            admin=admin, user=account, grant=parse_grant(request.POST), request=request
        )
        return f"Saved {name}'s role and sites." if changed_access else "Nothing changed."
    if action == "identifiers":
        changed = staff.update_identifiers(
            admin=admin, user=account, values=parse_identifiers(request.POST), request=request
        )
        return f"Saved {name}'s identifiers: {', '.join(changed)}." if changed else "Nothing changed."
    if action == "link":
        link = invitations.send_link(admin=admin, user=account, request=request)
        return f"{link.get_kind_display()} link e-mailed to {link.email}; any earlier link no longer works."
    if action == "deactivate":
        ended = staff.deactivate(admin=admin, user=account, request=request)
        return f"{name} is deactivated and can no longer sign in ({ended} session(s) ended)."
    if action == "reactivate":
        staff.reactivate(admin=admin, user=account, request=request)
        return f"{name} can sign in again."
    if action == "reset_mfa":
        staff.reset_second_factor(admin=admin, user=account, request=request)
        return f"{name} will set up a new authenticator at their next sign-in; their sessions have ended."
    if action == "unlock":
        staff.unlock(admin=admin, user=account, request=request)
        return f"{name} may try to sign in again."
    raise staff.StaffError({"action": f"{action!r} is not something this page does"})


# --- the page a one-time link opens ------------------------------------------------------------------------


@public
@require_GET
def link_open_view(request: HttpRequest, token: str) -> HttpResponse:
    """Check the link, remember which one in the session and continue without the token in the address
    bar (so it is not left in the browser's history or sent on as a referrer)."""
    try:
        link = invitations.open_link(token)
    except invitations.LinkUnavailable as exc:
        invitations.record_refused_link(request)
        return render(request, "accounts/link_unavailable.html", {"message": str(exc)}, status=exc.status)
    request.session[LINK_SESSION_KEY] = link.pk
    return redirect("accounts:link_password")


@public
@require_http_methods(["GET", "POST"])
def link_password_view(request: HttpRequest) -> HttpResponse:
    try:
        link = invitations.link_by_id(request.session.get(LINK_SESSION_KEY))
    except invitations.LinkUnavailable as exc:
        return render(request, "accounts/link_unavailable.html", {"message": str(exc)}, status=exc.status)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            user = invitations.complete_link(
                link=link,
                password=request.POST.get("password", ""),
                again=request.POST.get("password_again", ""),
                request=request,
            )
        except invitations.LinkUnavailable as exc:
            return render(request, "accounts/link_unavailable.html", {"message": str(exc)}, status=exc.status)
        except staff.StaffError as exc:
            errors, status = exc.errors, exc.status
        else:
            return _signed_in_after_link(request, user)
    return render(
        request,
        "accounts/link_password.html",
        {"link": link, "account": link.user, "errors": errors},
        status=status,
    )


def _signed_in_after_link(request: HttpRequest, user: User) -> HttpResponse:
    """The password step is done: sign in with it (a new session id), then the second factor — enrolment
    for a new account, the code for a reset. Nothing else opens before it."""
    request.session.pop(LINK_SESSION_KEY, None)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")  # rotates the session key
    start_session_clock(request)
    services.remember_session(request, user)
    services.record_login(request, user, step="password (chosen from a one-time link)")
    if services.has_confirmed_totp(user):
        messages.success(request, "Your new password is set. Enter the code from your authenticator app.")
        return redirect("accounts:mfa")
    messages.success(request, "Your password is set. Now set up two-factor sign-in.")
    return redirect("accounts:mfa_setup")


@allow(ADMIN)
@require_POST
def site_identifiers_view(request: HttpRequest, site_id: int) -> HttpResponse:
    """The site's address, phone, DEA registration and REMS certification (its settings page's second form)."""
    from ketaclinic.accounts import site_identifiers
    from ketaclinic.accounts.staff_forms import parse_site_identifiers
    from ketaclinic.accounts.views import site_page

    admin = signed_in_user(request)
    site = Site.objects.filter(pk=site_id, organization_id=admin.org_id).first()
    if site is None:
        raise Http404("No such site.")
    try:
        changed = site_identifiers.update_site_identifiers(
            admin=admin, site=site, values=parse_site_identifiers(request.POST), request=request
        )
    except site_identifiers.SiteIdentifiersError as exc:
        return site_page(
            request, site, identity_values=request.POST.dict(), identity_errors=exc.errors, status=exc.status
        )
    messages.success(request, f"Saved {site.name}: {', '.join(changed)}." if changed else "Nothing changed.")
    return redirect("accounts:site_edit", site_id=site.pk)
