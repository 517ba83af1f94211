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
    notifications = accounts.unread_notifications(user)[:50]
    return render(request, "core/home.html", {"notifications": notifications})


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
