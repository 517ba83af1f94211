"""Inventory pages (21 CFR 1304.11; security.md §4): a site's inventories with the next one's due date, the
form that counts every lot on hand by two people, one inventory, and its printable PDF. HTTP only: the
rules are ``ledger.inventory``. No patient data on these pages (lots and quantities)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from ketaclinic.accounts.cosign import posted_signature
from ketaclinic.core.access import CLINICIANS, allow
from ketaclinic.ledger import inventory as inventories
from ketaclinic.ledger.models import CountTime, InventoryKind
from ketaclinic.ledger.services import LedgerError, LedgerInputError
from ketaclinic.ledger.views import HANDLER_ROLES, READER_ROLES, _colleagues, _kept, _site, _user


def _page(request: HttpRequest, site: Any, sites: list[Any], **extra: Any) -> HttpResponse:
    user = _user(request)
    state = inventories.status(site)
    errors: dict[str, str] = extra.pop("errors", {})
    posted: dict[str, str] = extra.pop("posted", {})
    rows = []
    for line in inventories.lots_on_hand(site):
        key = str(line.lot.pk)
        rows.append(
            {
                "line": line,
                "key": key,
                "counted": posted.get(f"counted_{key}", ""),
                "containers": posted.get(f"containers_{key}", ""),
                "reason": posted.get(f"reason_{key}", ""),
                "errors": [f"{name} {why}" for name, why in _line_errors(errors, key)],
            }
        )
    general = {k: v for k, v in errors.items() if "." not in k}
    context = {
        "site": site,
        "sites": sites,
        "status": state,
        "today": timezone.localdate(timezone.now(), site.zone),
        "inventories": inventories.inventories(user=user, site=site),
        "rows": rows,
        "can_take": user.role in CLINICIANS,
        "kinds": InventoryKind.choices,
        "default_kind": InventoryKind.BIENNIAL if state.last else InventoryKind.INITIAL,
        "count_times": CountTime.choices,
        "witnesses": _colleagues(user),
        "errors": general,
        "line_errors": len(errors) > len(general),
        "posted": posted,
        "source": inventories.INVENTORY_SOURCE,
    }
    return render(request, "ledger/inventories.html", context, status=422 if errors else 200)


def _line_errors(errors: dict[str, str], key: str) -> list[tuple[str, str]]:
    return [(name.split(".", 1)[1], why) for name, why in errors.items() if name.startswith(f"{key}.")]


@allow(*READER_ROLES)
def inventory_list(request: HttpRequest) -> HttpResponse:
    site, sites = _site(request, request.GET.get("site"))
    return _page(request, site, sites)


@allow(*HANDLER_ROLES)
@require_POST
def take(request: HttpRequest) -> HttpResponse:
    site, sites = _site(request, request.POST.get("site"))
    user = _user(request)
    post = request.POST
    counts = {
        name.removeprefix("counted_"): inventories.LotCount(
            counted=value,
            containers=post.get(f"containers_{name.removeprefix('counted_')}"),
            reason=post.get(f"reason_{name.removeprefix('counted_')}", ""),
        )
        for name, value in post.items()
        if name.startswith("counted_")
    }
    try:
        row = inventories.take_inventory(
            user=user,
            site=site,
            kind=post.get("kind", ""),
            count_time=post.get("count_time", ""),
            counts=counts,
            witness=posted_signature(post, "witness", user.org_id),
            request=request,
        )
    except LedgerInputError as exc:
        return _page(request, site, sites, errors=exc.errors, posted=_kept(post))
    except LedgerError as exc:
        raise Http404(exc.message) from None
    messages.success(
        request, f"{row.get_kind_display()} of {site.name} recorded: print it and keep it at the site."
    )
    return redirect("ledger:inventory", inventory_id=row.pk)


def _inventory(request: HttpRequest, inventory_id: Any) -> Any:
    try:
        return inventories.get_inventory(user=_user(request), inventory_id=inventory_id)
    except LedgerError:
        raise Http404("No such inventory.") from None


@allow(*READER_ROLES)
def inventory(request: HttpRequest, inventory_id: Any) -> HttpResponse:
    row, counts = _inventory(request, inventory_id)
    return render(
        request,
        "ledger/inventory.html",
        {
            "inventory": row,
            "counts": counts,
            "due_by": inventories.status(row.site).due_by,
            "source": inventories.INVENTORY_SOURCE,
        },
    )


@allow(*READER_ROLES)
def inventory_pdf(request: HttpRequest, inventory_id: Any) -> HttpResponse:
    from ketaclinic.ledger.reports import inventory_pdf as render_pdf

    row, counts = _inventory(request, inventory_id)
    pdf = render_pdf(inventory=row, counts=counts, printed_by=_user(request))
    response = HttpResponse(pdf, content_type="application/pdf")
    name = f"inventory-{row.site.code}-{row.taken_on.isoformat()}-{row.count_time}.pdf"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
