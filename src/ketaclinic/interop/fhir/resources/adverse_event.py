"""AdverseEvent (R4) from events recorded during a session (interop.md §1.1: no US Core profile ⚠).

``actuality`` is always ``actual`` (potential events are not recorded). ``event``: the term as text and, for
a term from the label's adverse-reaction table (clinical/adverse_events.py, clinical.md §2.6), a local code
(``codes.ADVERSE_EVENT_SYSTEM``, code = the term in lower case with hyphens): the reference gives no MedDRA
or SNOMED codes. The description follows the term in ``event.text``. ``seriousness``, ``severity`` and
``outcome`` use the R4 code systems (adverse-event-seriousness ``Serious``/``Non-serious``,
adverse-event-severity ``mild``/``moderate``/``severe``, adverse-event-outcome; the clinic's ``resolving``
is R4 ``recovering``, ``referred`` has no R4 code and is ``unknown`` with the word as text).
``date`` is the onset, ``recordedDate`` the entry. ``suspectEntity.instance`` is the session's first dose
given at or before the onset (interop.md §1.1), none when the event preceded dosing. The action taken
has no R4 element: local extension ``codes.ACTION_TAKEN_EXTENSION``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from ketaclinic.chairside.models import Administration, AdministrationKind
from ketaclinic.chairside.models import AdverseEvent as Event
from ketaclinic.clinical.adverse_events import LABEL_ADVERSE_REACTIONS
from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, ParamType, Token
from ketaclinic.interop.fhir.resources.base import (
    COMMON_PARAMS,
    PATIENT_PARAMS,
    ParamDef,
    ResourceType,
    Source,
    instant,
    matching_codes,
    token_matches,
)

LABEL_TERMS: dict[str, str] = {r.term.lower(): r.term for r in LABEL_ADVERSE_REACTIONS}
OUTCOMES: dict[str, tuple[str, str]] = {
    "resolved": ("resolved", "Resolved"),
    "resolving": ("recovering", "Recovering"),
    "ongoing": ("ongoing", "Ongoing"),
    "referred": ("unknown", "Unknown"),
    "unknown": ("unknown", "Unknown"),
}


def term_code(term: str) -> str | None:
    """The local code of a label term ("Blood pressure increased" -> "blood-pressure-increased")."""
    label = LABEL_TERMS.get(term.strip().lower())
    return label.lower().replace(" ", "-") if label else None


def seriousness(serious: bool) -> tuple[str, str]:
    return ("Serious", "Serious") if serious else ("Non-serious", "Non-serious")


class AdverseEventSource(Source):
    model = Event
    patient_field = "session__patient_id"
    updated_field = "recorded_at"  # never edited by the services
    date_fields = {"date": "onset_at"}
    created_field = "recorded_at"
    sort_fields = {"_id": "pk", "_lastUpdated": "recorded_at", "date": "onset_at"}

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        suspect = (
            Administration.objects.filter(session=OuterRef("session"), at__lte=OuterRef("onset_at"))
            .exclude(kind__in=[AdministrationKind.INFUSION_STOP])
            .order_by("at", "pk")
        )
        return (
            Event.objects.filter(organization_id=organization_id)
            .select_related("session", "recorded_by")
            .annotate(suspect=Subquery(suspect.values("pk")[:1]))
        )

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "seriousness":
            flags = [
                flag
                for flag in (True, False)
                if any(token_matches(t, codes.AE_SERIOUSNESS, seriousness(flag)[0]) for t in tokens)
            ]
            return qs.filter(serious__in=flags)
        if flt.name == "severity":
            wanted = matching_codes(tokens, codes.AE_SEVERITY, ("mild", "moderate", "severe"))
            return qs.filter(severity__in=wanted)
        if flt.name == "event":
            terms = [
                label
                for label in LABEL_TERMS.values()
                if any(token_matches(t, codes.ADVERSE_EVENT_SYSTEM, term_code(label) or "") for t in tokens)
            ]
            return qs.filter(term__in=terms)
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        e: Any = obj  # AdverseEvent annotated by queryset()
        event: dict[str, Any] = {"text": f"{e.term}: {e.description}" if e.description else e.term}
        code = term_code(e.term)
        if code is not None:
            event["coding"] = [
                {"system": codes.ADVERSE_EVENT_SYSTEM, "code": code, "display": LABEL_TERMS[e.term.lower()]}
            ]
        serious_code, serious_display = seriousness(e.serious)
        outcome_code, outcome_display = OUTCOMES.get(e.outcome, ("unknown", "Unknown"))
        resource: dict[str, Any] = {
            "resourceType": "AdverseEvent",
            "id": str(e.pk),
            "meta": {"lastUpdated": instant(e.recorded_at)},
            "actuality": "actual",
            "event": event,
            "subject": {"reference": f"Patient/{e.session.patient_id}"},
            "encounter": {"reference": f"Encounter/{e.session_id}"},
            "date": instant(e.onset_at),
            "recordedDate": instant(e.recorded_at),
            "seriousness": {
                "coding": [{"system": codes.AE_SERIOUSNESS, "code": serious_code, "display": serious_display}]
            },
            "severity": {
                "coding": [{"system": codes.AE_SEVERITY, "code": e.severity, "display": e.severity.title()}]
            },
            "outcome": {
                "coding": [{"system": codes.AE_OUTCOME, "code": outcome_code, "display": outcome_display}],
                "text": e.outcome,
            },
            "recorder": {"display": e.recorded_by.display_name},
        }
        if e.suspect is not None:
            resource["suspectEntity"] = [{"instance": {"reference": f"MedicationAdministration/{e.suspect}"}}]
        if e.action_taken:
            resource["extension"] = [{"url": codes.ACTION_TAKEN_EXTENSION, "valueString": e.action_taken}]
        return resource


ADVERSE_EVENT = ResourceType(
    name="AdverseEvent",
    sources=(AdverseEventSource(),),
    params={
        **COMMON_PARAMS,
        **PATIENT_PARAMS,
        "date": ParamDef(ParamType.DATE, "When the event began (prefixes eq, ge, le, gt, lt)."),
        "event": ParamDef(
            ParamType.TOKEN, f"A label term: {codes.ADVERSE_EVENT_SYSTEM}|<term>, e.g. |dissociation."
        ),
        "seriousness": ParamDef(ParamType.TOKEN, "Serious or Non-serious."),
        "severity": ParamDef(ParamType.TOKEN, "mild, moderate or severe."),
    },
    sort_keys=("_id", "_lastUpdated", "date"),
    documentation="Adverse events recorded during treatment sessions.",
)
