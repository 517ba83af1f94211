from __future__ import annotations

from django.db import connection
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
    from ketaclinic.accounts.models import Site
    from ketaclinic.core.access import CLINICIANS
    from ketaclinic.measures.forms import AcknowledgeForm
    from ketaclinic.measures.services import open_alerts_for

    notifications = accounts.unread_notifications(user).exclude(kind__in=["suicidality", "mania"])[:50]
    clinician = user.role in CLINICIANS
    context = {
        "notifications": notifications,
        "safety_alerts": list(open_alerts_for(user)) if clinician else [],
        "ack_form": AcknowledgeForm(),
        "duty_sites": Site.objects.filter(organization_id=user.org_id) if clinician else [],
    }
    return render(request, "core/home.html", context)


@allow(*STAFF_ROLES)
@require_POST
def notification_read(request: HttpRequest, notification_id: int) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    accounts.mark_read(user, notification_id)
    return redirect("core:home")


@public
def healthz(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
