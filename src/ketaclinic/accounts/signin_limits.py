"""The per-account sign-in limit beside django-axes' per-address lockout (issue 15 M3; ASVS 4 2.2.1).

django-axes locks one username at one client address after ``AXES_FAILURE_LIMIT`` wrong passwords, so an
attacker cannot lock the real user out from elsewhere. Guesses spread over many addresses are slowed here:
after ``KETACLINIC_LOGIN_ACCOUNT_FREE_FAILURES`` wrong passwords for one username within an hour (from any
address), the next attempt must wait 2 s after the last failure, then 4, 8, 16 … seconds, at most
``KETACLINIC_LOGIN_ACCOUNT_MAX_DELAY_S``. An attempt during the wait is refused without checking the
password and does not lengthen the wait, so the real user can always sign in once it has passed (a delay,
not a lockout an attacker can hold). When the delay starts, the account holder and the organization's
administrators are told (home-page notification and e-mail), once an hour.

A browser in which the account holder has completed a sign-in (password and second factor) carries a signed
"known device" cookie for that account (OWASP's device-cookie defence against online guessing); it is not
slowed by the per-account delay, so an attacker spreading guesses cannot keep the holder out of her own
workstation. It is still subject to the per-address lockout, and the cookie names no account in clear.

The failures counted are django-axes' own failure log (``AXES_ENABLE_ACCESS_FAILURE_LOG``), for every
username typed, known or not, so the answer never tells whether an account exists.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from ketaclinic.accounts.models import User

log = logging.getLogger("ketaclinic.accounts.signin")
WINDOW = timedelta(hours=1)
FIRST_DELAY_S = 2
NOTICE_KIND = "signin-delay"
DEVICE_COOKIE_AGE = timedelta(days=90)
DEVICE_SALT = "ketaclinic.accounts.known-device"


def device_cookie_name() -> str:
    return "__Host-ketaclinic-device" if settings.SECURE_COOKIES else "ketaclinic-device"


def _account_tag(username: str) -> str:
    return salted_hmac(DEVICE_SALT, username).hexdigest()[:32]


def remember_device(response: HttpResponse, username: str) -> None:
    """After a completed sign-in: this browser is a known device of the account."""
    response.set_cookie(
        device_cookie_name(),
        signing.dumps({"a": _account_tag(username)}, salt=DEVICE_SALT),
        max_age=int(DEVICE_COOKIE_AGE.total_seconds()),
        secure=settings.SECURE_COOKIES,
        httponly=True,
        samesite="Lax",
        path="/",
    )


def known_device(request: HttpRequest, username: str) -> bool:
    raw = request.COOKIES.get(device_cookie_name(), "")
    if not raw:
        return False
    try:
        value = signing.loads(raw, salt=DEVICE_SALT, max_age=DEVICE_COOKIE_AGE)
    except signing.BadSignature:
        return False
    return isinstance(value, dict) and value.get("a") == _account_tag(username)


@dataclass(frozen=True)
class AccountDelay:
    failures: int  # wrong passwords for the username within the window, from every address
    wait_seconds: int  # how long before the next attempt is checked (0: now)


def delay_after(failures: int) -> int:
    """Seconds the next attempt waits after the last failure, given the failures within the window."""
    free = int(settings.KETACLINIC_LOGIN_ACCOUNT_FREE_FAILURES)
    if failures < free:
        return 0
    cap = int(settings.KETACLINIC_LOGIN_ACCOUNT_MAX_DELAY_S)
    step = failures - free
    return cap if step >= 12 else min(cap, FIRST_DELAY_S * 2**step)


def hold_account(username: str) -> None:
    """Serialise sign-in attempts for one username until the request's transaction ends, so simultaneous
    guesses cannot all pass ``account_delay`` before any of their failures is recorded. PostgreSQL: a
    transaction-level advisory lock on the username; SQLite needs none (every request's transaction takes the
    database's write lock at BEGIN IMMEDIATE)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    key = int.from_bytes(
        hashlib.sha256(f"ketaclinic-signin:{username}".encode()).digest()[:8], "big", signed=True
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [key])


def account_delay(username: str, now: datetime | None = None) -> AccountDelay:
    from axes.models import AccessFailureLog

    now = now or timezone.now()
    failures = AccessFailureLog.objects.filter(username=username, attempt_time__gte=now - WINDOW)
    count = failures.count()
    delay = delay_after(count)
    if not delay:
        return AccountDelay(count, 0)
    last = failures.order_by("-attempt_time").values_list("attempt_time", flat=True).first()
    assert last is not None
    remaining = (last + timedelta(seconds=delay) - now).total_seconds()
    return AccountDelay(count, max(0, int(remaining + 0.999)))


def notify_if_delay_started(username: str, now: datetime | None = None) -> bool:
    """After a wrong password: when the account's failures have reached the limit, tell the account holder
    and the administrators (once per window). Returns whether anyone was told."""
    from axes.models import AccessFailureLog
    from django.core.mail import send_mail

    from ketaclinic.accounts.staff import active_admins
    from ketaclinic.core.models import Notification

    now = now or timezone.now()
    if delay_after(account_delay(username, now).failures) == 0:
        return False
    user = User.objects.filter(username=username, is_service=False).select_related("organization").first()
    if user is None or user.organization_id is None:
        return False  # an unknown username: the audit log has every attempt; nobody to tell
    already = Notification.objects.filter(
        recipient=user, kind=NOTICE_KIND, created_at__gte=now - WINDOW
    ).exists()
    if already:
        return False
    recent = AccessFailureLog.objects.filter(username=username, attempt_time__gte=now - WINDOW)
    count = recent.count()
    addresses = recent.values("ip_address").distinct().count()
    told = [user, *(a for a in active_admins(user.organization_id) if a.pk != user.pk)]
    for person in told:
        own = person.pk == user.pk
        message = (
            f"{count} wrong passwords for {'your account' if own else user.username} from {addresses} "
            "address(es) in the last hour: further sign-in attempts for the account are slowed. "
            + (
                "If this was not you, tell your administrator."
                if own
                else "If this was not the account holder, consider resetting the password."
            )
        )
        Notification.objects.create(
            organization_id=user.organization_id,
            recipient=person,
            kind=NOTICE_KIND,
            message=message[:400],
            link="" if own else f"/accounts/users/{user.pk}/",
        )
        if person.email:
            # Best effort: the home-page notification above is the record; a mail server that is down must
            # not turn a refused sign-in into an error page.
            sent = send_mail(
                subject="Repeated wrong passwords for a clinic account",
                message=message,
                from_email=None,
                recipient_list=[person.email],
                fail_silently=True,
            )
            if not sent:
                log.warning("sign-in delay notice not e-mailed to account %s", person.pk)
    return True
