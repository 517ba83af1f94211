"""Sign-in (password, then TOTP), MFA enrolment, sign-out, site settings and safety-alert settings.

Staff accounts and one-time links are accounts/staff_views.py."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import match_token

from ketaclinic.accounts import services, signin_limits
from ketaclinic.accounts.forms import LoginForm, TokenForm
from ketaclinic.accounts.models import Site, User
from ketaclinic.core.access import ADMIN, NURSE, PRESCRIBER, allow, public, second_factor_verified, signed_in
from ketaclinic.core.middleware import start_session_clock


@public
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and second_factor_verified(request.user):
        return redirect("core:home")
    form = LoginForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        username = form.cleaned_data["username"]
        # The per-account limit across addresses (issue 15 M3): during its wait the password is not checked.
        signin_limits.hold_account(username)  # until this request's transaction ends
        delay = signin_limits.account_delay(username)
        if delay.wait_seconds and not signin_limits.known_device(request, username):
            services.record_failed_login(
                request,
                username,
                step=f"refused during the account's sign-in delay ({delay.failures} failures)",
            )
            error = (
                "Too many wrong passwords for this account in the last hour. "
                f"Wait {delay.wait_seconds} seconds, then try again."
            )
            return render(request, "accounts/login.html", {"form": form, "error": error}, status=429)
        user = authenticate(request, username=username, password=form.cleaned_data["password"])
        if getattr(request, "axes_locked_out", False):
            return render(request, "accounts/locked_out.html", status=429)
        if user is not None and isinstance(user, User) and user.is_active and not user.is_service:
            login(request, user)  # rotates the session key (ASVS 3.2.1)
            start_session_clock(request)
            services.remember_session(request, user)
            services.record_login(request, user, step="password")
            if services.has_confirmed_totp(user):
                return redirect("accounts:mfa")
            return redirect("accounts:mfa_setup")
        signin_limits.notify_if_delay_started(username)
        error = "Wrong username or password."
    expired = request.GET.get("expired") == "1"
    return render(request, "accounts/login.html", {"form": form, "error": error, "expired": expired})


@signed_in
@require_http_methods(["GET", "POST"])
def mfa_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if not services.has_confirmed_totp(user):
        return redirect("accounts:mfa_setup")
    form = TokenForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        device = match_token(user, form.cleaned_data["token"].strip().replace(" ", ""))
        if device is not None:
            otp_login(request, device)
            request.session.cycle_key()  # new session id once fully authenticated
            services.remember_session(request, user)
            services.record_login(request, user, step=f"second factor ({device.name})")
            response = redirect("core:home")
            signin_limits.remember_device(response, user.username)
            return response
        services.record_failed_login(request, user.username, step="second factor")
        error = "That code is not valid. Codes change every 30 seconds; each can be used once."
    return render(request, "accounts/mfa.html", {"form": form, "error": error})


def _qr_svg(uri: str) -> str:
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@signed_in
@require_http_methods(["GET", "POST"])
def mfa_setup_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    if services.has_confirmed_totp(user):
        # Changing an enrolled factor needs an administrator's reset (ASVS 7.5.1).
        return redirect("accounts:mfa")
    device = services.pending_totp_device(user)
    form = TokenForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        codes = services.confirm_totp(
            user=user, device=device, token=form.cleaned_data["token"], request=request
        )
        if codes is not None:
            otp_login(request, device)
            request.session.cycle_key()
            services.remember_session(request, user)
            services.record_login(request, user, step="second factor enrolled")
            response = render(request, "accounts/recovery_codes.html", {"codes": codes})
            signin_limits.remember_device(response, user.username)
            return response
        error = "That code did not match. Check the time on your phone and try the current code."
    secret = base64.b32encode(device.bin_key).decode()
    return render(
        request,
        "accounts/mfa_setup.html",
        {"form": form, "error": error, "qr": _qr_svg(device.config_url), "secret": secret},
    )


@public
@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    services.end_session(request, reason="signed out")
    logout(request)  # flushes the server-side session
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


@allow(ADMIN)
def sites_view(request: HttpRequest) -> HttpResponse:
    assert isinstance(request.user, User)
    sites = Site.objects.filter(organization_id=request.user.org_id).prefetch_related("chairs")
    return render(request, "accounts/sites.html", {"sites": sites})


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def site_edit_view(request: HttpRequest, site_id: int) -> HttpResponse:

    from ketaclinic.accounts import sites
    from ketaclinic.accounts.models import WEEKDAYS, Site

    admin = request.user
    assert isinstance(admin, User)
    site = get_object_or_404(Site, pk=site_id, organization_id=admin.organization_id)
    errors: dict[str, str] = {}
    if request.method == "POST":
        try:
            sites.update_site(
                admin=admin,
                site=site,
                hours={d: request.POST.get(f"hours_{d}", "") for d in WEEKDAYS},
                nurse_capacity=request.POST.get("nurse_capacity", ""),
                crisis_resources=request.POST.get("crisis_resources", ""),
                request=request,
            )
        except sites.SiteSettingsError as exc:
            errors = exc.errors
        else:
            messages.success(request, f"Saved {site.name}.")
            return redirect("accounts:site_edit", site_id=site.pk)
    return site_page(request, site, errors=errors, status=422 if errors else 200)


def site_page(
    request: HttpRequest,
    site: Site,
    *,
    errors: dict[str, str] | None = None,
    identity_values: dict[str, str] | None = None,
    identity_errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    """The site's settings page: hours, capacity, crisis text and closures; and, in their own form
    (accounts/staff_views.site_identifiers_view), the site as a registrant — address, phone, DEA
    registration, REMS certification."""
    from dataclasses import asdict

    from ketaclinic.accounts.models import WEEKDAYS
    from ketaclinic.accounts.site_identifiers import identifiers_of

    hours = {d: ", ".join(f"{a}-{b}" for a, b in site.opening_hours.get(d, [])) for d in WEEKDAYS}
    identity: dict[str, object] = asdict(identifiers_of(site))
    identity["rems_certified"] = {True: "yes", False: "no", None: ""}[site.rems_certified]
    identity.update(identity_values or {})
    return render(
        request,
        "accounts/site_edit.html",
        {
            "site": site,
            "hours": hours,
            "errors": errors or {},
            "closures": site.closures.filter(day__gte=timezone.localdate(timezone.now(), site.zone)),
            "identity": identity,
            "identity_errors": identity_errors or {},
        },
        status=status,
    )


# --- safety-alert settings (accounts/alert_policy.py) ---------------------------------------------------


def _alert_page(
    request: HttpRequest,
    site_id: int,
    *,
    values: dict[str, dict[str, object]] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    from ketaclinic.accounts import alert_policy
    from ketaclinic.accounts.forms import alert_policy_values
    from ketaclinic.clinical.alerts import MIN_SOURCE_CHARS

    user = request.user
    assert isinstance(user, User)
    try:
        site = alert_policy.viewable_site(user, site_id)
    except alert_policy.AlertPolicyNotFound:
        raise Http404("No such site.") from None
    policy = alert_policy.site_policy(site)
    shown = values or alert_policy_values(site.alert_overrides or {})
    return render(
        request,
        "accounts/site_alerts.html",
        {
            "site": site,
            "policy": policy,
            "rows": [{"rule": row, "value": shown[row.code]} for row in policy.rows],
            "may_change": alert_policy.may_change(user, site),
            "errors": errors or {},
            "min_source_chars": MIN_SOURCE_CHARS,
        },
        status=status,
    )


@allow(ADMIN, PRESCRIBER, NURSE)
@require_GET
def alerts_index(request: HttpRequest) -> HttpResponse:
    """The sites whose safety-alert settings the user may read; straight to the page when there is one."""
    user = request.user
    assert isinstance(user, User)
    sites = services.covered_sites(user)
    if len(sites) == 1:
        return redirect("accounts:site_alerts", site_id=sites[0].pk)
    return render(request, "accounts/alerts_index.html", {"sites": sites})


@allow(ADMIN, PRESCRIBER, NURSE)
@require_GET
def site_alerts_view(request: HttpRequest, site_id: int) -> HttpResponse:
    """Each safety-alert rule at the site: its limit, source, allowed range, and who changed it when."""
    return _alert_page(request, site_id)


@allow(PRESCRIBER)
@require_POST
def site_alerts_change(request: HttpRequest, site_id: int) -> HttpResponse:
    from ketaclinic.accounts import alert_policy
    from ketaclinic.accounts.forms import parse_alert_policy, posted_alert_values

    user = request.user
    assert isinstance(user, User)
    try:
        site = alert_policy.viewable_site(user, site_id)
    except alert_policy.AlertPolicyNotFound:
        raise Http404("No such site.") from None
    try:
        changed = alert_policy.change_site_alerts(
            by=user, site=site, changes=parse_alert_policy(request.POST), request=request
        )
    except alert_policy.AlertPolicyError as exc:
        return _alert_page(
            request, site.pk, values=posted_alert_values(request.POST), errors=exc.errors, status=exc.status
        )
    if changed:
        messages.success(request, f"Saved the safety-alert settings of {site.name}: {', '.join(changed)}.")
    else:
        messages.info(request, "Nothing changed.")
    return redirect("accounts:site_alerts", site_id=site.pk)
