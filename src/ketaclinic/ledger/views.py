"""Controlled-substance pages: a site's stock and receipts, a lot's register with use, count, loss and
correction, and the printable register. Views translate HTTP; services decide, append and audit. No PHI
in URLs: a site id, a lot id, dates."""

from __future__ import annotations

from datetime import date
from typing import Any, TypeGuard

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketaclinic.accounts.models import User
from ketaclinic.accounts.services import covered_sites
from ketaclinic.core.access import ADMIN, CLINICIANS, allow
from ketaclinic.ledger import services
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
    sessions = services.sessions_for_use(user=user, lot=lot, request=request) if handles else []
    witnesses = (
        User.objects.filter(organization_id=user.org_id, role__in=CLINICIANS, is_active=True)
        .exclude(pk=user.pk)
        .order_by("last_name", "first_name")
    )
    context = {
        "lot": lot,
        "balance": services.balance(lot),
        "entries": services.entries_of(user=user, lot=lot, request=request),
        "sessions": sessions,
        "witnesses": witnesses,
        "can_handle": handles,
        "loss_notice": services.LOSS_NOTICE,
        "errors": {},
        "open_correction": None,
        "posted": {},
        **extra,
    }
    return render(request, "ledger/lot.html", context, status=422 if context["errors"] else 200)


@allow(*READER_ROLES)
def lot(request: HttpRequest, lot_id: Any) -> HttpResponse:
    return _lot_page(request, _lot(request, lot_id))


def _done(request: HttpRequest, lot: StockLot, entry: LedgerEntry, what: str) -> HttpResponse:
    messages.success(request, f"{what}: entry {entry.seq}, balance {qty(entry.balance_after)} {lot.unit}.")
    return redirect("ledger:lot", lot_id=lot.pk)


@allow(*HANDLER_ROLES)
@require_POST
def use(request: HttpRequest, lot_id: Any) -> HttpResponse:
    from ketaclinic.chairside.models import TreatmentSession

    lot = _lot(request, lot_id)
    user = _user(request)
    post = request.POST
    raw_session = post.get("session")
    session = (
        TreatmentSession.objects.filter(pk=raw_session, organization_id=user.org_id).first()
        if _is_uuid(raw_session)
        else None
    )
    try:
        if session is None:
            raise services.LedgerInputError({"session": "choose the patient's session"})
        entry = _record_use(request, lot, session)
    except services.LedgerInputError as exc:
        kept = {k: v for k, v in post.dict().items() if k not in ("witness_password", "witness_code")}
        return _lot_page(request, lot, errors=exc.errors, posted=kept)
    return _done(request, lot, entry, "Use recorded")


def _record_use(request: HttpRequest, lot: StockLot, session: Any) -> LedgerEntry:
    """The draw, given and wasted amounts and the witness's signature as posted (lot page or session page)."""
    user = _user(request)
    post = request.POST
    raw_witness = post.get("witness") or ""
    witness = (
        User.objects.filter(pk=raw_witness, organization_id=user.org_id).first()
        if raw_witness.isdigit()
        else None
    )
    return services.record_use(
        user=user,
        lot=lot,
        session=session,
        drawn=post.get("drawn"),
        administered=post.get("administered"),
        wasted=post.get("wasted"),
        witness=witness,
        witness_password=post.get("witness_password", ""),
        witness_code=post.get("witness_code", ""),
        request=request,
    )


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
            request=request,
        )
    except services.LedgerInputError as exc:
        return _lot_page(request, lot, errors=exc.errors, posted=post.dict())
    if entry.quantity < 0:
        messages.warning(
            request, f"The count is {qty(-entry.quantity)} {lot.unit} short. {services.LOSS_NOTICE}"
        )
    return _done(request, lot, entry, "Count recorded")


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
    """The session page's stock form: record the draw for this session, then back to the session."""
    from ketaclinic.chairside import services as chairside

    user = _user(request)
    try:
        session = chairside.get_session(
            user=user, session_id=session_id, request=request, purpose="stock use"
        )
    except chairside.SessionNotFound:
        raise Http404("No such session.") from None
    post = request.POST
    lot = _lot(request, post.get("lot")) if _is_uuid(post.get("lot")) else None
    try:
        if lot is None:
            raise services.LedgerInputError({"lot": "choose the lot it was drawn from"})
        entry = _record_use(request, lot, session)
    except services.LedgerInputError as exc:
        for field, reason in exc.errors.items():
            messages.error(request, f"Stock use not recorded: {field} {reason}.")
    else:
        messages.success(
            request,
            f"Stock use recorded: entry {entry.seq}, {qty(entry.balance_after)} {lot.unit} left in lot {lot.lot}.",
        )
    return redirect("chairside:session", session_id=session.pk)
