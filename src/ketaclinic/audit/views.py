"""Audit report for administrators (ONC 170.315(d)(3)): filter and sort by every element, export CSV."""

from __future__ import annotations

import csv
from datetime import datetime, time
from typing import Any

from django import forms
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit import services
from ketaclinic.audit.models import Action, AuditEntry
from ketaclinic.core.access import ADMIN, allow

SORTS = {
    "seq": "seq",
    "-seq": "-seq",
    "time": "occurred_at",
    "-time": "-occurred_at",
    "user": "username",
    "-user": "-username",
    "patient": "patient_id",
    "-patient": "-patient_id",
    "action": "action",
    "-action": "-action",
    "category": "category",
    "-category": "-category",
}


class AuditFilterForm(forms.Form):
    user = forms.CharField(required=False, label="User")
    patient_mrn = forms.CharField(required=False, label="Patient MRN")
    action = forms.ChoiceField(required=False, choices=[("", "any")] + list(Action.choices))
    category = forms.CharField(required=False)
    date_from = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS])


def _filtered(request: HttpRequest, form: AuditFilterForm) -> QuerySet[AuditEntry]:
    user = request.user
    assert isinstance(user, User)
    qs = AuditEntry.objects.filter(organization_id=user.org_id).select_related("patient")
    if not form.is_valid():
        return qs.none()
    data: dict[str, Any] = form.cleaned_data
    if data["user"]:
        qs = qs.filter(username__icontains=data["user"])
    if data["patient_mrn"]:
        qs = qs.filter(patient__mrn=data["patient_mrn"], patient__organization_id=user.org_id)
    if data["action"]:
        qs = qs.filter(action=data["action"])
    if data["category"]:
        qs = qs.filter(category__icontains=data["category"])
    zone = timezone.get_current_timezone()
    if data["date_from"]:
        qs = qs.filter(occurred_at__gte=datetime.combine(data["date_from"], time.min, zone))
    if data["date_to"]:
        qs = qs.filter(occurred_at__lte=datetime.combine(data["date_to"], time.max, zone))
    return qs.order_by(SORTS.get(data.get("sort") or "-seq", "-seq"))


@allow(ADMIN)
def report(request: HttpRequest) -> HttpResponse:
    # Filters travel in the POST body: a patient's MRN must not appear in URLs or logs.
    form = AuditFilterForm(request.POST or {"sort": "-seq"})
    qs = _filtered(request, form)
    page = Paginator(qs, 50).get_page(request.POST.get("page") or 1)
    services.record(
        user=request.user,
        action=Action.QUERY,
        category="audit-report",
        request=request,
        detail=f"{page.paginator.count} entries",
    )
    return render(request, "audit/report.html", {"form": form, "page": page, "sorts": SORTS})


class _Echo:
    def write(self, value: str) -> str:
        return value


@allow(ADMIN)
def export_csv(request: HttpRequest) -> HttpResponseBase:
    if request.method != "POST":
        return HttpResponse(status=405)
    form = AuditFilterForm(request.POST)
    qs = _filtered(request, form)
    services.record(
        user=request.user,
        action=Action.EXPORT,
        category="audit-report",
        request=request,
        detail=f"CSV export of {qs.count()} entries",
    )
    writer = csv.writer(_Echo())
    header = [
        "seq",
        "occurred_at_utc",
        "user",
        "patient_id",
        "patient_mrn",
        "action",
        "category",
        "object_type",
        "object_id",
        "before",
        "after",
        "source_ip",
        "client",
        "outcome",
        "detail",
        "entry_hash",
    ]

    def rows() -> Any:
        yield writer.writerow(header)
        for e in qs.iterator(chunk_size=1000):
            yield writer.writerow(
                [
                    _csv_safe(value)
                    for value in (
                        e.seq,
                        e.occurred_at.isoformat(),
                        e.username,
                        e.patient_id or "",
                        e.patient.mrn if e.patient else "",
                        e.action,
                        e.category,
                        e.object_type,
                        e.object_id,
                        e.before,
                        e.after,
                        e.source_ip,
                        e.client,
                        e.outcome,
                        e.detail,
                        e.entry_hash,
                    )
                ]
            )

    response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="audit-report.csv"'
    return response


#: A cell a spreadsheet would read as a formula starts with one of these (OWASP "CSV injection"): =, +, -, @,
#: and tab or carriage return, which some spreadsheets strip before looking again.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_safe(value: object) -> object:
    """Neutralise spreadsheet formula injection in every text cell (numbers stay numbers): a leading
    apostrophe makes the spreadsheet show the text as typed; the value itself is not changed otherwise."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
