from __future__ import annotations

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from ketaclinic.accounts import services as accounts
from ketaclinic.accounts.models import User
from ketaclinic.core.access import STAFF_ROLES, allow, public


@allow(*STAFF_ROLES)
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    from ketaclinic.chairside.critical_alerts import CriticalAlerts, critical_alerts_for
    from ketaclinic.core import jobs
    from ketaclinic.core.access import ADMIN, CLINICIANS
    from ketaclinic.measures.forms import AcknowledgeForm
    from ketaclinic.measures.services import open_alerts_for

    notifications = accounts.unread_notifications(user).exclude(kind__in=["suicidality", "mania"])[:50]
    clinician = user.role in CLINICIANS
    # Every open critical alert of the user's sites, at the top (issue 13 point 8); one audited read.
    critical = (
        critical_alerts_for(user=user, request=request, purpose="home page")
        if clinician
        else CriticalAlerts()
    )
    in_banner = {a.pk for a in critical.safety_alerts}
    safety_alerts = [a for a in open_alerts_for(user) if a.pk not in in_banner] if clinician else []
    context = {
        "notifications": notifications,
        "critical": critical,
        "safety_alerts": safety_alerts,
        # Anything open above means the page must not say "Nothing waiting for you".
        "open_alerts": critical.count + len(safety_alerts),
        "sweeps": jobs.sweeps_status() if clinician or user.role == ADMIN else None,
        "ack_form": AcknowledgeForm(),
        # Only the user's own sites: going on duty elsewhere is refused (accounts.services.set_on_duty).
        "duty_sites": accounts.covered_sites(user) if clinician else [],
    }
    return render(request, "core/home.html", context)


@allow(*STAFF_ROLES)
@require_POST
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    accounts.mark_read(user, notification_id)
    return redirect("core:home")


@transaction.non_atomic_requests
@public
def healthz(request: HttpRequest) -> HttpResponse:
    """Answers while any other request runs: it opens no transaction (on SQLite every other request takes
    the write lock for its whole length; a read in WAL mode waits for nobody)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
