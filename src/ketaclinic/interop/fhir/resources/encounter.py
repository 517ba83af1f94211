"""Encounter from a treatment session (interop.md §1.1: US Core Encounter, ``class`` = v3 ActCode ``AMB``).

Status mapping from the session lifecycle (chairside.models.Status):

==============================  =========================================================================
session                         Encounter.status
==============================  =========================================================================
scheduled                       planned
checked_in, pre_dose            arrived
dosing, monitoring, recovery    in-progress
discharged                      finished
stopped, before any dose        cancelled (the treatment did not happen)
stopped, after the first dose   finished (the patient was treated and the visit ended early)
==============================  =========================================================================

R4 Encounter has no status reason, so a stopped session carries its reason in the local extension
``codes.STOP_REASON_EXTENSION`` (valueString), for both outcomes.

``period.start`` is the check-in (the session event to ``checked_in``), else the first dose, else, for a
planned or cancelled-before-arrival session, the scheduled time (R4 has no separate planned date).
``period.end`` is the discharge, or the stop for a session stopped after check-in. The ``date`` search
parameter matches the whole period by the R4 rule (params.py; an open period is ongoing), so
``date=ge<now>`` finds a session still running; the ``date`` sort key is ``period.start``. ``type`` is the protocol as a local code
(``codes.PROTOCOL_SYSTEM``); ``location`` is the site by display.

``meta.versionId`` is the session's optimistic-lock version (bumped on every change, so ETags are right);
the table has no ``updated_at``: ``meta.lastUpdated`` is the later of creation and the last status change,
which misses changes that bump the version without a status change (none today besides the first-dose time,
written in the same moment as the move to dosing).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Case, F, OuterRef, Q, QuerySet, Subquery, When
from django.db.models.functions import Coalesce, Greatest

from ketaclinic.chairside.models import SessionEvent, Status, TreatmentSession
from ketaclinic.clinical.protocol_library import get_protocol
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

_STOPPED_AFTER_DOSE = Q(status=Status.STOPPED, dose_started_at__isnull=False)
_STOPPED_BEFORE_DOSE = Q(status=Status.STOPPED, dose_started_at__isnull=True)
# FHIR status -> the sessions that have it
STATUS_ROWS: dict[str, Q] = {
    "planned": Q(status=Status.SCHEDULED),
    "arrived": Q(status__in=[Status.CHECKED_IN, Status.PRE_DOSE]),
    "in-progress": Q(status__in=[Status.DOSING, Status.MONITORING, Status.RECOVERY]),
    "finished": Q(status=Status.DISCHARGED) | _STOPPED_AFTER_DOSE,
    "cancelled": _STOPPED_BEFORE_DOSE,
}
_STATUS: dict[str, str] = {
    Status.SCHEDULED: "planned",
    Status.CHECKED_IN: "arrived",
    Status.PRE_DOSE: "arrived",
    Status.DOSING: "in-progress",
    Status.MONITORING: "in-progress",
    Status.RECOVERY: "in-progress",
    Status.DISCHARGED: "finished",
}


def encounter_status(status: str, dose_started: bool) -> str:
    if status == Status.STOPPED:
        return "finished" if dose_started else "cancelled"
    return _STATUS[status]


def protocol_name(protocol_id: str) -> str:
    try:
        return get_protocol(protocol_id).name
    except KeyError:  # a protocol no longer in the library: its id still identifies it
        return protocol_id


class SessionSource(Source):
    model = TreatmentSession
    updated_field = "last_updated"
    date_fields = {"date": DateSpan("start_at", "end_at")}
    sort_fields = {"_id": "pk", "_lastUpdated": "last_updated", "date": "start_at"}
    created_field = "created_at"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        checked_in = SessionEvent.objects.filter(session=OuterRef("pk"), to_status=Status.CHECKED_IN)
        return (
            TreatmentSession.objects.filter(organization_id=organization_id)
            .select_related("site", "organization")
            .annotate(
                checked_in_at=Subquery(checked_in.order_by("at", "pk").values("at")[:1]),
                last_updated=Greatest(F("created_at"), Coalesce(F("status_changed_at"), F("created_at"))),
            )
            .annotate(
                start_at=Coalesce(F("checked_in_at"), F("dose_started_at"), F("scheduled_at")),
                # period.end: the stop of a session stopped after check-in, else the discharge (or none)
                end_at=Case(
                    When(
                        status=Status.STOPPED,
                        checked_in_at__isnull=False,
                        status_changed_at__isnull=False,
                        then=F("status_changed_at"),
                    ),
                    default=F("discharged_at"),
                ),
            )
        )

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "status":
            wanted = [
                q
                for code, q in STATUS_ROWS.items()
                if any(token_matches(t, codes.ENCOUNTER_STATUS, code) for t in tokens)
            ]
            return qs.filter(any_of(wanted))
        if flt.name == "class":
            if any(token_matches(t, codes.V3_ACT_CODE, "AMB") for t in tokens):
                return qs
            return qs.none()
        if flt.name == "type":
            ids = [t.code for t in tokens if t.code and t.system in (None, codes.PROTOCOL_SYSTEM)]
            if any(t.system == codes.PROTOCOL_SYSTEM and t.code is None for t in tokens):
                return qs  # system| : any protocol
            return qs.filter(protocol_id__in=ids)
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        s: Any = obj  # TreatmentSession annotated by queryset()
        status = encounter_status(s.status, s.dose_started_at is not None)
        name = protocol_name(s.protocol_id)
        resource: dict[str, Any] = {
            "resourceType": "Encounter",
            "id": str(s.pk),
            "meta": {
                "versionId": str(s.version),
                "lastUpdated": instant(s.last_updated),
                "profile": [profiles.ENCOUNTER],
            },
            # US Core Encounter: identifier is must-support; the session's own id in the clinic's namespace.
            "identifier": [{"system": codes.SESSION_SYSTEM, "value": str(s.pk)}],
            "status": status,
            "class": {"system": codes.V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
            "type": [
                {
                    "coding": [{"system": codes.PROTOCOL_SYSTEM, "code": s.protocol_id, "display": name}],
                    "text": f"{name} (protocol version {s.protocol_version})",
                }
            ],
            "subject": {"reference": f"Patient/{s.patient_id}"},
            "period": {"start": instant(s.start_at)},
            "location": [{"location": {"display": s.site.name}}],
            "serviceProvider": {"display": s.organization.name},
        }
        if s.status == Status.STOPPED:
            resource["extension"] = [{"url": codes.STOP_REASON_EXTENSION, "valueString": s.stop_reason}]
        if s.end_at is not None:  # the same end the date search uses (queryset)
            resource["period"]["end"] = instant(s.end_at)
        return resource


ENCOUNTER = ResourceType(
    name="Encounter",
    sources=(SessionSource(),),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "date": ParamDef(
            ParamType.DATE,
            "The period: from check-in (else first dose, else scheduled) to discharge or stop; open while "
            "the session runs. R4 period matching: eq within, ge/gt/le/lt overlapping, sa/eb/ne/ap.",
        ),
        "status": ParamDef(ParamType.TOKEN, "planned, arrived, in-progress, finished or cancelled."),
        "class": ParamDef(ParamType.TOKEN, "Always AMB (v3 ActCode): ambulatory."),
        "type": ParamDef(ParamType.TOKEN, f"The treatment protocol: {codes.PROTOCOL_SYSTEM}|<protocol id>."),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation="Treatment sessions (ambulatory encounters), from scheduling to discharge.",
)
