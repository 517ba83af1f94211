"""Cross-cutting HTTP policy: security headers, session time-outs and the deny-by-default access check."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.urls import Resolver404, resolve, reverse
from django.utils import timezone

from ketaclinic.core.access import declared_access, second_factor_verified

log = logging.getLogger("ketaclinic.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    """CSP and friends (security.md §3.3); ``no-store`` on every dynamic page so PHI is never cached (d)(7)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        if not request.path.startswith(settings.STATIC_URL):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"
        return response


SESSION_STARTED = "_ketaclinic_started"
SESSION_LAST_SEEN = "_ketaclinic_last_seen"


class SessionTimeoutMiddleware:
    """Ends a session after the idle limit (default 15 min) or the absolute limit (default 12 h).

    ASVS 4 3.3.2 / ONC (d)(5): the server ends the session; resuming needs the password and the second factor.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/fhir/"):
            # The FHIR API ignores session cookies (bearer tokens only): a staff session neither ends with
            # a redirect to the sign-in page there nor is kept alive by it.
            return self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = timezone.now()
            started = _parse(request.session.get(SESSION_STARTED))
            last_seen = _parse(request.session.get(SESSION_LAST_SEEN))
            expired = (
                started is None
                or last_seen is None
                or now - last_seen > settings.KETACLINIC_IDLE_TIMEOUT
                or now - started > settings.KETACLINIC_ABSOLUTE_TIMEOUT
            )
            if expired:
                from ketaclinic.accounts.services import end_session

                end_session(request, reason="timeout")
                logout(request)
                if request.path.startswith("/api/"):
                    return HttpResponse(status=401)
                return redirect(f"{reverse('accounts:login')}?expired=1")
            # Background polling (live board, notifications) must not keep an idle session alive.
            if request.headers.get("X-Ketaclinic-Background") != "1" and not _is_background(request):
                request.session[SESSION_LAST_SEEN] = now.isoformat()
        return self.get_response(request)


def _is_background(request: HttpRequest) -> bool:
    """A view marked ``view.background = True`` in code (the live board's event stream: EventSource cannot
    send headers). Marking only ever stops a request from extending the session, never the reverse."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return False
    return getattr(match.func, "background", False) is True


def start_session_clock(request: HttpRequest) -> None:
    now = timezone.now().isoformat()
    request.session[SESSION_STARTED] = now
    request.session[SESSION_LAST_SEEN] = now


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class AccessControlMiddleware:
    """The one central enforcement point (ASVS 4.1.1): a view without a declaration is refused."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        access = declared_access(view_func)
        if access is None:
            log.error("refused: view %s declares no access", getattr(view_func, "__name__", view_func))
            return HttpResponseForbidden("This page declares no access rule and is refused.")
        if access.allows(request):
            return None
        user = request.user
        if not user.is_authenticated:
            return redirect(reverse("accounts:login"))
        if access.mfa and not second_factor_verified(user):
            return redirect(reverse("accounts:mfa"))
        from ketaclinic.audit.services import record_denied

        record_denied(request, what=request.resolver_match.view_name if request.resolver_match else "")
        from django.template.loader import render_to_string

        return HttpResponseForbidden(render_to_string("core/forbidden.html", request=request))


class TextInputMiddleware:
    """No control characters in anything a page submits (issue 15: a NUL byte in a patient's name was
    stored). Every field of every submitted form — the forms and the views that read ``request.POST``
    alike — is judged by core/text.py's rule for multi-line text (tab and line breaks kept, every other
    control character refused); the form fields of one-line values (names) refuse line breaks too
    (core/fields.BoundedCharField). A refusal answers 422 naming the field; nothing reaches the view.
    The JSON API and FHIR judge their own bodies (their schemas)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if request.path.startswith(("/api/", "/fhir/")):
            return None
        from ketaclinic.core.text import control_problem

        problems = [
            (name, why)
            for source in (request.GET, request.POST if request.method == "POST" else None)
            if source is not None
            for name, values in source.lists()
            for value in values
            if (why := control_problem(name, multiline=False) or control_problem(value, multiline=True))
        ]
        if not problems:
            return None
        from django.template.loader import render_to_string

        page = render_to_string("core/refused_text.html", {"problems": problems[:20]}, request=request)
        return HttpResponse(page, status=422)


class DomainErrorMiddleware:
    """The web edge's one handler for a domain error (core/errors.py) that a view did not turn into its form
    again: a page saying what was refused, with the error's status (403, 404, 409, 422…) instead of a 500.
    The request's transaction (ATOMIC_REQUESTS) was already rolled back, so nothing of it was kept. The
    JSON API and FHIR answer in their own formats (core/api.py, interop/fhir/views.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        from ketaclinic.core.errors import DomainError

        if not isinstance(exception, DomainError) or request.path.startswith(("/api/", "/fhir/")):
            return None
        from django.template.loader import render_to_string

        # The class and status only: the message may name a patient.
        log.info("refused: %s answered %s", type(exception).__name__, exception.status)
        context = {
            "status": exception.status,
            "message": exception.message or ("" if exception.errors else str(exception)),
            "errors": sorted(exception.errors.items()),
        }
        page = render_to_string("core/refused.html", context, request=request)
        return HttpResponse(page, status=exception.status)


class SiteTimeZoneMiddleware:
    """Show times in the user's site zone (storage stays UTC): the on-duty site, else their first site,
    else the organization's first site."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = None
        if user is not None and user.is_authenticated and getattr(user, "organization_id", None):
            from ketaclinic.accounts.models import Site

            site = (
                user.on_duty_site
                or user.sites.first()
                or Site.objects.filter(organization_id=user.organization_id).order_by("pk").first()
            )
            zone = site.zone if site else None
        if zone is None:
            return self.get_response(request)
        with timezone.override(zone):
            return self.get_response(request)
