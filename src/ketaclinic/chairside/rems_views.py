"""REMS Patient Monitoring Form pages, the REMS queue and the session PDFs. Views translate HTTP only.

Roles: nurses and prescribers prepare, edit and sign off the form and print the session report; front desk
sees the queue, prints a signed-off form and marks it submitted (see ``rems_services`` for why).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ketaclinic.accounts.models import Site, User
from ketaclinic.chairside import rems_fields, rems_services
from ketaclinic.chairside import services as sessions
from ketaclinic.chairside.models import RemsMonitoringForm, TreatmentSession
from ketaclinic.core.access import FRONT_DESK, NURSE, PRESCRIBER, allow
from ketaclinic.core.text import whole_number
from ketaclinic.patients.services import covers_all_sites


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


def _session(request: HttpRequest, session_id: Any, purpose: str) -> TreatmentSession:
    try:
        return sessions.get_session(
            user=_user(request), session_id=session_id, request=request, purpose=purpose
        )
    except sessions.SessionNotFound:
        raise Http404("No such session.") from None


def _form(session: TreatmentSession) -> RemsMonitoringForm:
    row = rems_services.get_form(session=session)
    if row is None:
        raise Http404("No REMS form has been prepared for this session.")
    return row


def _pdf(pdf: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "no-store"
    return response


def _input_value(kind: str, value: Any) -> str:
    if value is None:
        return ""
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "bp":
        return f"{value['sbp_mmhg']}/{value['dbp_mmhg']}"
    return str(value)


def _sections(
    row: RemsMonitoringForm, *, posted: dict[str, str] | None, errors: dict[str, str], missing: set[str]
) -> list[dict[str, Any]]:
    values = row.data.get("fields", {})
    notes = row.data.get("notes", {})
    edited = set(row.data.get("edited", []))
    out = []
    for title, items in rems_fields.SECTIONS:
        rows = []
        for name, text in items:
            kind = rems_fields.KINDS[name]
            shown = (
                posted[name]
                if posted is not None and name in posted
                else _input_value(kind, values.get(name))
            )
            rows.append(
                {
                    "name": name,
                    "id": "f-" + name.replace(".", "-").replace("_", "-"),
                    "label": text,
                    "kind": kind,
                    "value": shown,
                    "note": notes.get(name, ""),
                    "edited": name in edited,
                    "missing": name in missing,
                    "error": errors.get(name, ""),
                    "choices": {
                        "dose": rems_fields.DOSE_CHOICES,
                        "sex": tuple((c, c) for c in rems_fields.SEX_CHOICES),
                    }.get(kind, ()),
                }
            )
        out.append({"title": title, "fields": rows})
    return out


def _render_form(
    request: HttpRequest,
    session: TreatmentSession,
    row: RemsMonitoringForm | None,
    *,
    posted: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    problem: str = "",
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {"session": session, "row": row, "problem": problem, "patient": session.patient}
    if row is not None:
        result = rems_services.check(row)
        context.update(
            check=result,
            missing=[
                (n, rems_fields.label(n), "f-" + n.replace(".", "-").replace("_", "-"))
                for n in result.missing
            ],
            sections=_sections(row, posted=posted, errors=errors or {}, missing=set(result.missing)),
            signature=row.data.get("signature"),
            locked=row.signed_off_at is not None,
        )
    return render(request, "chairside/rems_form.html", context, status=status)


@allow(NURSE, PRESCRIBER)
@require_http_methods(["GET", "POST"])
def rems_form(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "REMS form")
    if request.method == "GET":
        return _render_form(request, session, rems_services.get_form(session=session))
    row = _form(session)
    posted = {name: request.POST.get(name, "") for name in rems_fields.KINDS if name in request.POST}
    try:
        rems_services.update_rems_form(
            user=_user(request),
            form=row,
            data=posted,
            expected_version=_version(request),
            request=request,
        )
    except rems_services.RemsInputError as exc:
        return _render_form(
            request,
            session,
            row,
            posted=posted,
            errors=exc.errors,
            problem="Nothing was saved: " + str(exc),
            status=422,
        )
    except rems_services.RemsConflict as exc:
        return _render_form(request, session, exc.current, problem=str(exc), status=409)
    except rems_services.RemsError as exc:
        return _render_form(request, session, row, problem=str(exc), status=409)
    messages.success(request, "Saved.")
    return redirect("chairside:rems_form", session_id=session.pk)


def _version(request: HttpRequest) -> int | None:
    return whole_number(request.POST.get("version", ""))


@allow(NURSE, PRESCRIBER)
@require_POST
def rems_assemble(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "REMS form: assemble")
    try:
        rems_services.assemble_rems_form(user=_user(request), session=session, request=request)
    except rems_services.RemsError as exc:
        return _render_form(
            request, session, rems_services.get_form(session=session), problem=str(exc), status=409
        )
    messages.success(request, "The form was filled in from the session. Answer what is still missing.")
    return redirect("chairside:rems_form", session_id=session.pk)


@allow(NURSE, PRESCRIBER)
@require_POST
def rems_sign_off(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "REMS form: sign off")
    row = _form(session)
    try:
        rems_services.sign_off(
            user=_user(request), form=row, expected_version=_version(request), request=request
        )
    except rems_services.RemsIncomplete as exc:
        return _render_form(request, session, row, errors=exc.errors, problem=str(exc), status=422)
    except rems_services.RemsConflict as exc:
        return _render_form(request, session, exc.current, problem=str(exc), status=409)
    except rems_services.RemsError as exc:
        return _render_form(request, session, row, problem=str(exc), status=409)
    messages.success(request, "Signed off. The form is ready to submit.")
    return redirect("chairside:rems_form", session_id=session.pk)


@allow(NURSE, PRESCRIBER, FRONT_DESK)
@require_GET
def rems_pdf(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "REMS form: print")
    row = _form(session)
    try:
        pdf, name = rems_services.print_rems_form(user=_user(request), form=row, request=request)
    except rems_services.RemsError as exc:
        messages.error(request, str(exc))
        return redirect("chairside:rems_queue")
    return _pdf(pdf, name)


@allow(NURSE, PRESCRIBER)
@require_GET
def session_report_pdf(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "session report: print")
    pdf, name = rems_services.print_session_report(user=_user(request), session=session, request=request)
    return _pdf(pdf, name)


def _sites(user: User) -> Any:
    sites = Site.objects.filter(organization_id=user.org_id)
    return sites if covers_all_sites(user) else sites.filter(pk__in=user.sites.all())


@allow(NURSE, PRESCRIBER, FRONT_DESK)
@require_GET
def rems_queue(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    sites = list(_sites(user))
    raw = request.GET.get("site", "")
    site = next((s for s in sites if str(s.pk) == raw), None)
    if raw and site is None:
        raise Http404("No such site.")
    items = rems_services.rems_queue(user=user, site=site, request=request)
    return render(
        request,
        "chairside/rems_queue.html",
        {
            "items": items,
            "sites": sites,
            "site": site,
            "can_edit": user.role in rems_services.EDITORS,
            "overdue": sum(1 for i in items if i.overdue),
        },
    )


@allow(NURSE, PRESCRIBER, FRONT_DESK)
@require_POST
def rems_submitted(request: HttpRequest, session_id: Any) -> HttpResponse:
    session = _session(request, session_id, "REMS form: submitted")
    row = _form(session)
    back = reverse("chairside:rems_queue")
    site = whole_number(request.POST.get("site", ""))
    if site is not None:
        back += f"?site={site}"
    try:
        rems_services.mark_submitted(
            user=_user(request),
            form=row,
            confirmation_number=request.POST.get("confirmation_number", ""),
            request=request,
        )
    except rems_services.RemsError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    messages.success(request, f"Marked submitted (confirmation {row.confirmation_number}).")
    return redirect(back)
