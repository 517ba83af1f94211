"""Controlled-substance pages: a site's stock and receipts, a lot's register with count, loss and correction,
the printable register, and the session page's draw of a dose whose draw was reversed (a use always names
its dose: doses draw from stock on the session page, ``chairside.dose_services``). Inventories are in
``inventory_views``. Views translate HTTP; services decide, append and audit. No PHI in URLs: a site id, a
lot id, dates."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeGuard

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketaclinic.accounts.cosign import posted_signature
from ketaclinic.accounts.models import User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.core.access import ADMIN, CLINICIANS, allow
from ketaclinic.ledger import draws, services
from ketaclinic.ledger.inventory import status as inventory_status
from ketaclinic.ledger.models import LedgerEntry, StockLot, Unit
from ketaclinic.ledger.services import qty

HANDLER_ROLES = tuple(CLINICIANS)
READER_ROLES = (*CLINICIANS, ADMIN)


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _site(request: HttpRequest, raw: str | None) -> Any:
    sites = covered_sites(_user(request))
    if not sites:
        raise Http404("You cover no site.")
    site = next((s for s in sites if str(s.pk) == (raw or "")), None)
    if raw and site is None:
        raise Http404("No such site.")
    return site or sites[0], sites


def _stock_page(request: HttpRequest, site: Any, sites: list[Any], **extra: Any) -> HttpResponse:
    user = _user(request)
    context = {
        "site": site,
        "sites": sites,
        "lines": services.stock(user=user, site=site),
        "inventory": inventory_status(site),
        "can_handle": user.role in CLINICIANS,
        "units": Unit.choices,
        "today": timezone.localdate(timezone.now(), site.zone),
        "errors": {},
        "posted": {},
        **extra,
    }
    return render(request, "ledger/stock.html", context, status=422 if context["errors"] else 200)


@allow(*READER_ROLES)
def stock(request: HttpRequest) -> HttpResponse:
    site, sites = _site(request, request.GET.get("site"))
    return _stock_page(request, site, sites)


@allow(*HANDLER_ROLES)
@require_POST
def receive(request: HttpRequest) -> HttpResponse:
    site, sites = _site(request, request.POST.get("site"))
    try:
        entry = services.receive(user=_user(request), site=site, data=request.POST.dict(), request=request)
    except services.LedgerInputError as exc:
        return _stock_page(request, site, sites, errors=exc.errors, posted=request.POST.dict())
    except services.LedgerError as exc:
        raise Http404(exc.message) from None
    messages.success(
        request, f"Received: entry {entry.seq}, balance {qty(entry.balance_after)} {entry.lot.unit}."
    )
    return redirect(f"/ledger/lots/{entry.lot_id}/")


def _lot(request: HttpRequest, lot_id: Any) -> StockLot:
    try:
        return services.get_lot(user=_user(request), lot_id=lot_id)
    except services.LedgerError:
        raise Http404("No such lot.") from None


def _lot_page(request: HttpRequest, lot: StockLot, **extra: Any) -> HttpResponse:
    user = _user(request)
    handles = user.role in CLINICIANS
    context = {
        "lot": lot,
        "balance": services.balance(lot),
        "entries": services.entries_of(user=user, lot=lot, request=request),
        "witnesses": _colleagues(user),
        "can_handle": handles,
        "loss_notice": services.LOSS_NOTICE,
        "errors": {},
        "open_correction": None,
        "posted": {},
        **extra,
    }
    return render(request, "ledger/lot.html", context, status=422 if context["errors"] else 200)


def _colleagues(user: User) -> Any:
    """Who may sign as the second person: the clinic's other active nurses and prescribers."""
    return (
        User.objects.filter(
            organization_id=user.org_id, role__in=CLINICIANS, is_active=True, is_service=False
        )
        .exclude(pk=user.pk)
        .order_by("last_name", "first_name")
    )


@allow(*READER_ROLES)
def lot(request: HttpRequest, lot_id: Any) -> HttpResponse:
    return _lot_page(request, _lot(request, lot_id))


def _done(request: HttpRequest, lot: StockLot, entry: LedgerEntry, what: str) -> HttpResponse:
    messages.success(request, f"{what}: entry {entry.seq}, balance {qty(entry.balance_after)} {lot.unit}.")
    return redirect("ledger:lot", lot_id=lot.pk)


def _is_uuid(raw: str | None) -> TypeGuard[str]:
    import uuid

    try:
        uuid.UUID(str(raw))
    except ValueError:
        return False
    return True


@allow(*HANDLER_ROLES)
@require_POST
def count(request: HttpRequest, lot_id: Any) -> HttpResponse:
    lot = _lot(request, lot_id)
    post = request.POST
    try:
        entry = services.count(
            user=_user(request),
            lot=lot,
            counted=post.get("counted"),
            count_time=post.get("count_time", ""),
            reason=post.get("reason", ""),
            containers=post.get("containers"),
            witness=posted_signature(post, "witness", _user(request).org_id),
            request=request,
        )
    except services.LedgerInputError as exc:
        return _lot_page(request, lot, errors=exc.errors, posted=_kept(post))
    if entry.quantity < 0:
        messages.warning(
            request, f"The count is {qty(-entry.quantity)} {lot.unit} short. {services.LOSS_NOTICE}"
        )
    if entry.quantity:
        messages.info(request, "The clinic's administrators have been notified of the difference.")
    return _done(request, lot, entry, "Count recorded")


def _kept(post: Any) -> dict[str, str]:
    """What was typed, to show again (passwords and codes are not)."""
    return {k: v for k, v in post.dict().items() if not k.endswith(("_password", "_code"))}


@allow(*HANDLER_ROLES)
@require_POST
def loss(request: HttpRequest, lot_id: Any) -> HttpResponse:
    lot = _lot(request, lot_id)
    post = request.POST
    try:
        entry = services.report_loss(
            user=_user(request),
            lot=lot,
            quantity=post.get("quantity"),
            reason=post.get("reason", ""),
            request=request,
        )
    except services.LedgerInputError as exc:
        return _lot_page(request, lot, errors=exc.errors, posted=post.dict())
    messages.warning(request, services.LOSS_NOTICE)
    return _done(request, lot, entry, "Loss recorded")


@allow(*HANDLER_ROLES)
@require_POST
def correct(request: HttpRequest, entry_id: int) -> HttpResponse:
    user = _user(request)
    entry = LedgerEntry.objects.filter(pk=entry_id, organization_id=user.org_id).select_related("lot").first()
    if entry is None:
        raise Http404("No such entry.")
    lot = _lot(request, entry.lot_id)
    try:
        fixed = services.correct(
            user=user, entry=entry, reason=request.POST.get("reason", ""), request=request
        )
    except services.LedgerInputError as exc:
        return _lot_page(
            request, lot, errors=exc.errors, open_correction=entry.pk, posted=request.POST.dict()
        )
    except services.LedgerError as exc:
        messages.error(request, exc.message)
        return redirect("ledger:lot", lot_id=lot.pk)
    return _done(request, lot, fixed, f"Entry {entry.seq} corrected")


@allow(*READER_ROLES)
def register(request: HttpRequest) -> HttpResponse:
    """``?site=<id>&since=YYYY-MM-DD&until=YYYY-MM-DD[&format=pdf]``."""
    from ketaclinic.ledger.reports import entry_text, register_pdf

    user = _user(request)
    site, sites = _site(request, request.GET.get("site"))
    today = timezone.localdate(timezone.now(), site.zone)
    errors: dict[str, str] = {}
    picked: dict[str, date] = {}
    for name, default in (("since", today.replace(day=1)), ("until", today)):
        raw = request.GET.get(name) or ""
        try:
            picked[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            errors[name] = f"{raw!r} is not a date (YYYY-MM-DD)"
            picked[name] = default
    rows: list[LedgerEntry] = []
    if not errors:
        try:
            rows = services.register(
                user=user, site=site, since=picked["since"], until=picked["until"], request=request
            )
        except services.LedgerInputError as exc:
            errors = exc.errors
    if not errors and request.GET.get("format") == "pdf":
        pdf = register_pdf(
            site=site, since=picked["since"], until=picked["until"], entries=rows, printed_by=user
        )
        response = HttpResponse(pdf, content_type="application/pdf")
        name = f"register-{site.code}-{picked['since'].isoformat()}-{picked['until'].isoformat()}.pdf"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
    return render(
        request,
        "ledger/register.html",
        {
            "site": site,
            "sites": sites,
            "rows": [(e, entry_text(e)) for e in rows],
            "errors": errors,
            **picked,
        },
        status=422 if errors else 200,
    )


@allow(*HANDLER_ROLES)
@require_POST
def session_use(request: HttpRequest, session_id: Any) -> HttpResponse:
    """The session page's stock form: the draw of one of this session's doses whose draw was reversed by a
    correction (a use always names its dose), then back to the session."""
    from ketaclinic.chairside import services as chairside

    user = _user(request)
    try:
        session = chairside.get_session(
            user=user, session_id=session_id, request=request, purpose="stock use"
        )
    except chairside.SessionNotFound:
        raise Http404("No such session.") from None
    post = request.POST
    raw = post.get("administration")
    administration = (
        session.administrations.filter(pk=raw).select_related("stock_lot", "session").first()
        if _is_uuid(raw)
        else None
    )
    try:
        if administration is None:
            raise services.LedgerInputError(
                {"administration": "choose the dose of this session the stock was drawn for"}
            )
        entry = draws.record_use(
            user=user,
            administration=administration,
            given=post.get("given"),
            wasted=post.get("wasted"),
            witness=posted_signature(post, "witness", user.org_id),
            request=request,
        )
    except services.LedgerInputError as exc:
        for field, reason in exc.errors.items():
            messages.error(request, f"Stock use not recorded: {field} {reason}.")
    else:
        messages.success(
            request,
            f"Stock use recorded: entry {entry.seq}, {qty(entry.balance_after)} {entry.lot.unit} left in lot "
            f"{entry.lot.lot}.",
        )
    return redirect("chairside:session", session_id=session.pk)
