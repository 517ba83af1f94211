"""Staff pages of the monitor feed: unbound readings (attach to a patient), monitor placement and allowed
addresses, and the messages of unknown senders waiting for review (administrators)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.models import User
from ketaclinic.core.access import ADMIN, NURSE, PRESCRIBER, allow
from ketaclinic.core.text import whole_number
from ketaclinic.monitoring import review, services
from ketaclinic.monitoring.forms import AttachForm, DeviceForm, ReviewForm


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _page(request: HttpRequest) -> int:
    """``?page=N`` (1 when absent); anything but a whole number is not a page."""
    page = whole_number(request.GET.get("page", "1"), max_digits=6)
    if page is None:
        raise Http404("No such page.")
    return page


@allow(NURSE, PRESCRIBER)
@require_http_methods(["GET", "POST"])
def unbound(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    sites = services.user_sites(user)
    site = None
    code = request.GET.get("site", "")
    if code:
        site = sites.filter(code=code).first()
        if site is None:
            raise Http404("No such site.")
    errors: dict[str, str] = {}
    failed_message = None
    form = AttachForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                patient, count = services.attach_readings(
                    user=user,
                    message_id=form.cleaned_data["message"],
                    mrn=form.cleaned_data["mrn"],
                    note=form.cleaned_data["note"],
                    request=request,
                )
            except services.MonitoringValidationError as exc:
                errors = exc.errors
                failed_message = form.cleaned_data["message"]
            else:
                messages.success(
                    request, f"Attached {count} reading(s) to {patient.display_name} ({patient.mrn})."
                )
                return redirect(request.get_full_path())
        else:
            errors = {name: " ".join(str(e) for e in errs) for name, errs in form.errors.items()}
            failed_message = form.data.get("message")
    listing = services.unbound_page(user=user, site=site, page=_page(request))
    groups = listing.groups
    if failed_message is not None and str(failed_message) not in {str(g.message_id) for g in groups}:
        failed_message = None  # the set is gone from the list: show the reason at the top
    context = {
        "groups": groups,
        "listing": listing,
        "page_size": services.UNBOUND_PAGE,
        "sites": sites,
        "site": site,
        "errors": errors,
        "failed_message": str(failed_message) if failed_message is not None else None,
        "posted": form.data if request.method == "POST" else {},
    }
    return render(request, "monitoring/unbound.html", context, status=422 if errors else 200)


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def devices(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    chairs = services.org_chairs(user=user)
    editing = None
    device_id = request.POST.get("device") if request.method == "POST" else None
    if device_id:
        try:
            editing = services.org_devices(user=user).filter(pk=uuid.UUID(device_id)).first()
        except ValueError:
            editing = None
        if editing is None:
            raise Http404("No such monitor.")
    form = DeviceForm(request.POST or None, chairs=chairs)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.save_device(
                user=user,
                device=editing,
                identifier=data["identifier"] or (editing.identifier if editing else ""),
                label=data["label"],
                chair=data["chair"],
                active=data["active"],
                allowed_sources=data["allowed_sources"] if "allowed_sources" in request.POST else None,
                request=request,
            )
        except services.MonitoringValidationError as exc:
            for name, reason in exc.errors.items():
                form.add_error(name if name in form.fields else None, reason)
        else:
            messages.success(request, f"Saved monitor {saved}.")
            return redirect("monitoring:devices")
    context = {
        "devices": services.org_devices(user=user),
        "chairs": chairs,
        "form": form,
        "editing": editing,
        "held": review.held_count(user=user),
    }
    return render(request, "monitoring/devices.html", context, status=422 if form.errors else 200)


@allow(ADMIN)
@require_http_methods(["GET", "POST"])
def senders(request: HttpRequest) -> HttpResponse:
    """Unknown senders: accept (register the monitor or allow its address) or discard held messages."""
    user = _user(request)
    chairs = services.org_chairs(user=user)
    form = ReviewForm(request.POST or None, chairs=chairs)
    errors: dict[str, str] = {}
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data["decision"] == "accept":
                    device, count = review.release_held(
                        user=user,
                        identifier=data["identifier"],
                        address=data["address"],
                        label=data["label"],
                        chair=data["chair"],
                        request=request,
                    )
                    messages.success(
                        request,
                        f"Accepted {count} message(s) from monitor {device}; its readings are under Unmatched "
                        f"readings for a nurse to attach, and its next messages are charted as usual.",
                    )
                else:
                    count = review.discard_held(
                        user=user, identifier=data["identifier"], address=data["address"], request=request
                    )
                    messages.success(request, f"Discarded {count} message(s) unread.")
            except services.MonitoringValidationError as exc:
                errors = exc.errors
            else:
                return redirect(request.get_full_path())
        else:
            errors = {name: " ".join(str(e) for e in errs) for name, errs in form.errors.items()}
    context = {
        "listing": review.held_groups(user=user, page=_page(request)),
        "chairs": chairs,
        "errors": errors,
        "posted": form.data if request.method == "POST" else {},
        "queue_max": settings.KETACLINIC_HL7_REVIEW_QUEUE_MAX,
        "held": review.held_count(user=user),
    }
    return render(request, "monitoring/senders.html", context, status=422 if errors else 200)
