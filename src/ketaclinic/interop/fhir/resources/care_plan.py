"""CarePlan from treatment plans (``treatment.Plan`` and its booked ``PlanSession`` rows; interop.md §1.1).

``intent`` is ``plan``; ``title`` names the protocol and its version, ``description`` the course; ``period``
runs from the start of the first booked session to the end of the last (every session booked for the
course, whatever became of it later: the activities say that). ``created`` and ``author`` are the
prescriber's. ``addresses`` points to the patient's Conditions (resources/condition.py) from the latest
intake's indication, or to all of that intake's Conditions when it names no indication; none when the
patient has no intake.

``status`` (R4 request-status):

* ``revoked`` — a prescriber stopped the course (treatment/services.stop_course); the reason is a
  ``note`` with the time it was stopped;
* ``completed`` — the plan is active and no booked session remains to be carried out, i.e. every session is
  cancelled or missed, or its treatment session (chairside, linked by its one-to-one key
  ``planned_session``) was discharged or stopped;
* ``active`` — otherwise.

One ``activity`` per booked session, in session order, as an R4 ``activity.detail`` of ``kind``
``Appointment`` (a booked chair slot) with the protocol as ``code``, the drug as ``productCodeableConcept``
(resources/medication_administration.py codings), ``scheduledPeriod``, the site as ``location``, and a
``description`` with the session's number, phase, week and dose text. ``detail.status``
(R4 care-plan-activity-status):

==============================================  ================================================
course session                                  detail.status
==============================================  ================================================
booked, no treatment session yet                scheduled
booked, treatment session scheduled             scheduled
booked, treatment session checked in … recovery in-progress
booked, treatment session discharged            completed
booked, treatment session stopped after dosing  stopped (``statusReason`` = the stop reason)
booked, treatment session stopped before dosing cancelled (``statusReason`` = the stop reason)
cancelled                                       cancelled
missed                                          cancelled, ``statusReason`` "Missed" (R4 has no not-done)
==============================================  ================================================

A session carried out in the chair links its Encounter in ``activity.outcomeReference``.

``meta.versionId`` is the plan's optimistic-lock version. The plan keeps no ``updated_at``:
``meta.lastUpdated`` is the latest of its creation, its dose verification, its stop and the last status
change of a linked treatment session. Marking a session missed or moving it records no time, so it does not move
``_lastUpdated`` (a ``changed_at`` on PlanSession would fix it).

US Core CarePlan (profiles.py): ``category`` is ``careplan-category|assess-plan`` (the profile's AssessPlan
slice; searchable as ``category``) and ``text`` is a generated XHTML narrative of the title, the status, the
course period and one line per session with its activity status (the profile requires ``text.status`` and
``text.div``); the patient's name is not in it.
"""

from __future__ import annotations

from html import escape
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Greatest

from ketaclinic.chairside.models import Status, TreatmentSession
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    DateSpan,
    ParamDef,
    ResourceType,
    Source,
    any_of,
    instant,
    token_matches,
)
from ketaclinic.interop.fhir.resources.condition import condition_ids, latest_intakes
from ketaclinic.interop.fhir.resources.encounter import encounter_status
from ketaclinic.interop.fhir.resources.medication_administration import DRUG_DISPLAY, medication_codings
from ketaclinic.treatment.models import Plan, PlanSession, PlanStatus, SessionStatus

DONE = (Status.DISCHARGED, Status.STOPPED)
# FHIR status -> the plans that have it (the same rule as ``plan_status``)
STATUS_ROWS: dict[str, Q] = {
    "revoked": Q(status=PlanStatus.CANCELLED),
    "active": Q(status=PlanStatus.ACTIVE, has_open_session=True),
    "completed": Q(status=PlanStatus.ACTIVE, has_open_session=False),
}
# Encounter status of a linked treatment session -> activity status
_ACTIVITY_STATUS = {
    "planned": "scheduled",
    "arrived": "in-progress",
    "in-progress": "in-progress",
    "finished": "completed",
    "cancelled": "cancelled",
}


ASSESS_PLAN = {
    "system": codes.CAREPLAN_CATEGORY,
    "code": "assess-plan",
    "display": "Assessment and Plan of Treatment",
}


def narrative(resource: dict[str, Any]) -> dict[str, str]:
    """The generated XHTML narrative (US Core CarePlan requires text): title, status, period and sessions."""
    lines = [f"<p><b>{escape(resource['title'])}</b></p>", f"<p>Status: {escape(resource['status'])}"]
    period = resource.get("period")
    if period:
        lines[-1] += f"; from {escape(period['start'])} to {escape(period['end'])}"
    lines[-1] += f".</p><p>{escape(resource['description'])}</p>"
    items = [
        f"<li>{escape(a['detail']['description'])} ({escape(a['detail']['status'])})</li>"
        for a in resource["activity"]
    ]
    if items:
        lines.append(f"<ul>{''.join(items)}</ul>")
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{"".join(lines)}</div>'}


def plan_status(status: str, has_open_session: bool) -> str:
    if status == PlanStatus.CANCELLED:
        return "revoked"
    return "active" if has_open_session else "completed"


def activity_status(session_status: str, treatment: Any | None) -> tuple[str, str]:
    """(detail.status, status reason text) of a course session and its linked treatment session, if any."""
    if session_status == SessionStatus.CANCELLED:
        return "cancelled", ""
    if session_status == SessionStatus.MISSED:
        return "cancelled", "Missed"
    if treatment is None:
        return "scheduled", ""
    dosed = treatment.dose_started_at is not None
    if treatment.status == Status.STOPPED:
        return ("stopped" if dosed else "cancelled"), treatment.stop_reason
    return _ACTIVITY_STATUS[encounter_status(treatment.status, dosed)], ""


class PlanSource(Source):
    model = Plan
    updated_field = "last_updated"
    sort_fields = {"_id": "pk", "_lastUpdated": "last_updated", "date": "period_start"}
    # R4 search on a Period (params.py): a plan without sessions has no period and matches no date
    date_fields = {"date": DateSpan("period_start", "period_end")}
    created_field = "created_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        sessions = PlanSession.objects.filter(plan=OuterRef("pk"))
        carried_out = TreatmentSession.objects.filter(planned_session=OuterRef("pk"), status__in=DONE)
        open_sessions = PlanSession.objects.filter(plan=OuterRef("pk"), status=SessionStatus.BOOKED).exclude(
            Exists(carried_out)
        )
        linked = TreatmentSession.objects.filter(
            planned_session__plan=OuterRef("pk"),
            status_changed_at__isnull=False,
        ).order_by("-status_changed_at")
        return (
            Plan.objects.filter(organization_id=organization_id)
            .select_related("protocol", "site", "created_by")
            .annotate(
                period_start=Subquery(sessions.order_by("start").values("start")[:1]),
                period_end=Subquery(sessions.order_by("-end").values("end")[:1]),
                has_open_session=Exists(open_sessions),
                last_updated=Greatest(
                    F("created_at"),
                    Coalesce(F("verified_at"), F("created_at")),
                    Coalesce(F("stopped_at"), F("created_at")),
                    Coalesce(Subquery(linked.values("status_changed_at")[:1]), F("created_at")),
                ),
            )
        )

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "status":
            wanted = [
                q
                for code, q in STATUS_ROWS.items()
                if any(token_matches(t, codes.REQUEST_STATUS, code) for t in tokens)
            ]
            return qs.filter(any_of(wanted))
        if flt.name == "category":
            code = ASSESS_PLAN["code"]
            return qs if any(token_matches(t, codes.CAREPLAN_CATEGORY, code) for t in tokens) else qs.none()
        if flt.name == "intent":
            return qs if any(token_matches(t, codes.REQUEST_INTENT, "plan") for t in tokens) else qs.none()
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        plan: Any = obj  # treatment.Plan annotated by queryset()
        sessions = list(PlanSession.objects.filter(plan=plan).order_by("number"))
        treatments: dict[Any, Any] = {}
        for t in TreatmentSession.objects.filter(
            organization_id=plan.organization_id, planned_session__plan=plan
        ):
            treatments[t.planned_session_id] = t  # one per course session (a one-to-one key)
        protocol = plan.protocol
        name = protocol.name
        drug = DRUG_DISPLAY.get(protocol.drug, protocol.drug)
        product = {
            "coding": medication_codings(protocol.drug),
            "text": drug,
        }
        code = {"coding": [{"system": codes.PROTOCOL_SYSTEM, "code": plan.protocol_key, "display": name}]}
        activities = []
        for s in sessions:
            treatment = treatments.get(s.pk)
            status, reason = activity_status(s.status, treatment)
            detail: dict[str, Any] = {
                "kind": "Appointment",
                "code": code,
                "status": status,
                "scheduledPeriod": {"start": instant(s.start), "end": instant(s.end)},
                "location": {"display": plan.site.name},
                "productCodeableConcept": product,
                "description": f"Session {s.number} of {len(sessions)}: {s.phase_name}, week {s.week}. "
                f"{s.dose_text}",
            }
            if reason:
                detail["statusReason"] = {"text": reason}
            activity: dict[str, Any] = {"detail": detail}
            if treatment is not None:
                activity["outcomeReference"] = [{"reference": f"Encounter/{treatment.pk}"}]
            activities.append(activity)
        resource: dict[str, Any] = {
            "resourceType": "CarePlan",
            "id": str(plan.pk),
            "meta": {
                "versionId": str(plan.version),
                "lastUpdated": instant(plan.last_updated),
                "profile": [profiles.CARE_PLAN],
            },
            "status": plan_status(plan.status, plan.has_open_session),
            "intent": "plan",
            "category": [{"coding": [dict(ASSESS_PLAN)]}],
            "title": f"{name} (protocol {plan.protocol_key}, version {plan.protocol_version})",
            "description": f"Course of {len(sessions)} sessions of {drug} at {plan.site.name} on the protocol "
            f"{name}, version {plan.protocol_version}; calculated dose of session 1: {plan.dose_mg:g} mg.",
            "subject": {"reference": f"Patient/{plan.patient_id}"},
            "created": instant(plan.created_at),
            "author": {"display": plan.created_by.display_name},
            "activity": activities,
        }
        if plan.stopped_at is not None:
            # R4 CarePlan has no statusReason: the prescriber's reason for stopping goes in a note.
            resource["note"] = [
                {"time": instant(plan.stopped_at), "text": f"Course stopped: {plan.stop_reason}"}
            ]
        if plan.period_start is not None:
            resource["period"] = {"start": instant(plan.period_start), "end": instant(plan.period_end)}
        resource["text"] = narrative(resource)
        intake = latest_intakes(plan.organization_id).filter(patient_id=plan.patient_id).first()
        if intake is not None:
            indication = intake.data.get("indication")
            ids = condition_ids(intake, [indication] if indication else None)
            if ids:
                resource["addresses"] = [{"reference": f"Condition/{i}"} for i in ids]
        return resource


CARE_PLAN = ResourceType(
    name="CarePlan",
    sources=(PlanSource(),),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "date": ParamDef(
            ParamType.DATE,
            "The course period (first to last booked session); R4 period matching: eq within, ge/gt/le/lt "
            "overlapping, sa/eb/ne/ap.",
        ),
        "status": ParamDef(ParamType.TOKEN, "active, completed (no booked session left) or revoked."),
        "intent": ParamDef(ParamType.TOKEN, "Always plan."),
        "category": ParamDef(ParamType.TOKEN, f"Always {codes.CAREPLAN_CATEGORY}|assess-plan (US Core)."),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation="Treatment courses: the protocol and every booked session with its dose and status.",
)
