"""A site's calendar of closures and public holidays, kept by administrators (issue 14 point 6): add a local
closure, add a year's US federal holidays in one action, open a day again. After a closure the page lists the
sessions still booked on upcoming closed days (times and chairs, no names), and after a closure the site's
front desk and nurses are told to move them from the calendar, which offers free slots within the course's rules (treatment/booking.py).
The scheduler and every booking read the same rows (treatment.services.site_calendar)."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts import sites
from ketaclinic.accounts.holidays import SOURCE as HOLIDAY_SOURCE
from ketaclinic.accounts.models import ClosureKind, Site, SiteClosure
from ketaclinic.core.access import ADMIN, allow, signed_in_user


def _notify(request: HttpRequest, site: Site, days: list[date]) -> None:
    from ketaclinic.treatment.booking import notify_closed_day_bookings

    affected = notify_closed_day_bookings(site=site, days=days, by=signed_in_user(request))
    if affected:
        messages.warning(
            request,
            f"{len(affected)} booked session(s) fall on the closed day(s): they are listed below, and the "
            f"front desk and nurses of {site.name} were told to move them from the calendar.",
        )


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def site_closures(request: HttpRequest, site_id: int) -> HttpResponse:
    from ketaclinic.treatment.booking import bookings_on_days

    admin = signed_in_user(request)
    site = get_object_or_404(Site, pk=site_id, organization_id=admin.org_id)
    errors: dict[str, str] = {}
    action = request.POST.get("action", "")
    if request.method == "POST":
        try:
            if action == "closure":
                try:
                    day = date.fromisoformat(request.POST.get("day", ""))
                except ValueError:
                    raise sites.SiteSettingsError({"day": "enter a date (YYYY-MM-DD)"}) from None
                closure = sites.add_closure(
                    admin=admin, site=site, day=day, reason=request.POST.get("reason", ""), request=request
                )
                messages.success(request, f"{site.name} is closed on {closure.day:%a %Y-%m-%d}.")
                _notify(request, site, [closure.day])
            elif action == "holidays":
                raw = request.POST.get("year", "").strip()
                if not raw.isdigit():
                    raise sites.SiteSettingsError({"year": f"{raw!r} is not a year"})
                result = sites.add_public_holidays(
                    admin=admin,
                    site=site,
                    year=int(raw),
                    observed=request.POST.get("observed") == "yes",
                    request=request,
                )
                kept = (
                    f"; {len(result.already_closed)} day(s) were already closed"
                    if result.already_closed
                    else ""
                )
                messages.success(
                    request, f"US federal holidays {result.year}: {len(result.added)} day(s) closed{kept}."
                )
                _notify(request, site, [c.day for c in result.added])
            elif action == "remove":
                closure = get_object_or_404(SiteClosure, pk=request.POST.get("closure"), site=site)
                sites.remove_closure(admin=admin, closure=closure, request=request)
                messages.success(request, f"{site.name} is open again on {closure.day:%a %Y-%m-%d}.")
            else:
                raise sites.SiteSettingsError({"action": "choose what to do"})
        except sites.SiteSettingsError as exc:
            errors = exc.errors
        else:
            return redirect("accounts:site_closures", site_id=site.pk)
    today = timezone.localdate(timezone.now(), site.zone)
    upcoming = list(site.closures.filter(day__gte=today).select_related("added_by"))
    return render(
        request,
        "accounts/site_closures.html",
        {
            "site": site,
            "closures": upcoming,
            "past": site.closures.filter(day__lt=today).count(),
            "errors": errors,
            "affected": bookings_on_days(site, [c.day for c in upcoming]),
            "year": today.year if today.month < 10 else today.year + 1,
            "posted": request.POST,
            "source": HOLIDAY_SOURCE,
            "kinds": ClosureKind,
        },
        status=422 if errors else 200,
    )
