"""Observation from bedside monitor readings (``monitoring.VitalReading``): every value a monitor sent, as sent.

Issue 16 point 3. The monitor table holds each value of each HL7 message in its canonical UCUM unit, at the
precision the monitor sent it (``value`` is a float read from the OBX-5 decimal: SpO2 96.6 stays 96.6, HR
72.5 stays 72.5). The chairside table (resources/vital_signs.py) keeps only a rounded copy of the values a
treatment session takes (whole mmHg, /min and %: its columns and rules are integers), and only BP, HR, SpO2,
RR and temperature, and only during a session. So device values are served from here, and the chairside
rows the feed copied (``source="hl7"``) are left out of resources/vital_signs.py: one Observation per
measured value, never two. Ids are ``mon-<reading id>``, the id written with 19 digits
(``mon-0000000000000000042``): Observation merges its sources in the order of their ids as text
(paging.py), and only fixed-width numbers sort as text the way the table sorts them.

Which readings: those bound to a patient (``bound``), in a session or not — a reading taken before the
session starts, or from a monitor whose chair had no session, is served under the patient it is bound to
(``encounter`` only when a session owned it). Unbound readings (no patient yet) wait for staff on the
Unbound readings page and appear once attached (``meta.lastUpdated`` is then the attachment time, so an
incremental export finds them).

Codes (interop.md §1.5: "keep the MDC coding next to LOINC in code.coding"; §3.3 MDC table): each resource
carries the LOINC code where the reference gives one and always the MDC code the value was sent under
(system ``urn:iso:std:iso:11073:10101``, display its REFID, as the US Core Observation-satO2-fiO2 example
does for 150456):

=============================  ==========================================  =====================
MDC kind                       LOINC (interop.md §1.5)                     unit
=============================  ==========================================  =====================
SBP / DBP (NIBP, cuff, IBP)    85354-9 panel; components 8480-6 / 8462-4   mm[Hg]
MAP (150023/150303/150035)     8478-0 "Mean blood pressure"                mm[Hg]
HR (ECG 147842)                8867-4                                      /min
Pulse, oximeter (149530)       8889-8 (display varies: none given)         /min
Pulse, NIBP/IBP/generic        none in the reference: MDC only             /min
SpO2 (150456)                  2708-6 and 59408-5 (US Core pulse oximetry) %
Perfusion index (150488)       none in the reference: MDC only             %
RR                             9279-1                                      /min
etCO2 (151708)                 19889-5                                     mm[Hg]
Temperature                    8310-5                                      Cel
Weight / height / BMI          29463-7 / 8302-2 / 39156-5                  kg / cm / kg/m2
=============================  ==========================================  =====================

Mean arterial pressure is a **component of the blood-pressure panel** when the monitor sent it with a
systolic or diastolic pressure (same message, time and measuring site): the reference says the panel
85354-9 groups its components and that 8478-0 is "not in base VS set; seen as extra component in public
profiles" (§1.5), and the vital-signs BP profile's component slicing is open, so the panel stays a valid
BP Observation. A mean pressure sent alone (an arterial line reporting only its mean) is its own
Observation coded 8478-0. ``code`` matches a resource's own code (R4 search rules), so a MAP inside a panel
is found with the standard ``component-code`` and ``combo-code`` parameters
(``Observation?combo-code=http://loinc.org|8478-0`` finds every mean pressure). NIBP and arterial pressures
of one message are two panels. Which value leads its panel is decided when it is stored
(``VitalReading.bp_component``, monitoring/rows.py): the systolic, else the diastolic, else the mean.

Implausible values (``implausible_reason``, interop/hl7/bounds.py: outside the data-entry plausibility
range, e.g. a diastolic 400 mmHg) are served with their value, never dropped or changed, but marked: an
``interpretation`` (local code ``implausible``; HL7's v3 ObservationInterpretation has no code for "cannot
be a real value" and the binding is extensible) with the reason as text, on the Observation or on the
component that carries it, and a ``note`` saying it is not a measurement and was not charted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import reduce
from operator import or_
from typing import Any, Final

from django.db.models import Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Coalesce

from ketaclinic.interop.fhir import codes
from ketaclinic.interop.fhir.params import Filter, Token
from ketaclinic.interop.fhir.resources.base import Source, instant, token_matches
from ketaclinic.interop.fhir.resources.vital_signs import profile_claims
from ketaclinic.interop.hl7.mdc import TERMS_BY_CODE, VitalKind
from ketaclinic.monitoring.models import VitalReading

MDC: Final = "urn:iso:std:iso:11073:10101"
PLAUSIBILITY_SYSTEM: Final = f"{codes.LOCAL_BASE}/CodeSystem/reading-plausibility"
K = VitalKind
BP: Final = (K.SBP.value, K.DBP.value, K.MAP.value)
PANEL: Final = {
    "system": codes.LOINC,
    "code": "85354-9",
    "display": "Blood pressure panel with all children optional",
}
NIBP_COMPOUND: Final = 150020  # MDC_PRESS_BLD_NONINV (interop.md §3.3 "NIBP compound")


def _loinc(code: str, display: str = "") -> dict[str, str]:
    return {"system": codes.LOINC, "code": code, **({"display": display} if display else {})}


# LOINC codings of a value by kind (interop.md §1.5); the oximeter pulse is decided by its MDC code below.
LOINC_BY_KIND: Final[dict[str, tuple[dict[str, str], ...]]] = {
    K.SBP: (_loinc("8480-6", "Systolic blood pressure"),),
    K.DBP: (_loinc("8462-4", "Diastolic blood pressure"),),
    K.MAP: (_loinc("8478-0", "Mean blood pressure"),),
    K.HR: (_loinc("8867-4", "Heart rate"),),
    K.SPO2: (
        _loinc("2708-6", "Oxygen saturation in Arterial blood"),
        _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
    ),
    K.RR: (_loinc("9279-1", "Respiratory rate"),),
    K.ETCO2: (_loinc("19889-5"),),
    K.TEMP_C: (_loinc("8310-5", "Body temperature"),),
    K.WEIGHT_KG: (_loinc("29463-7", "Body weight"),),
    K.HEIGHT_CM: (_loinc("8302-2", "Body height"),),
    K.BMI: (_loinc("39156-5", "Body mass index"),),
}
OXIMETER_PULSE: Final = 149530  # MDC_PULS_OXIM_PULS_RATE → LOINC 8889-8 (interop.md §1.5)
TEXT: Final[dict[str, str]] = {
    K.SBP: "Systolic blood pressure",
    K.DBP: "Diastolic blood pressure",
    K.MAP: "Mean blood pressure",
    K.HR: "Heart rate",
    K.PULSE: "Pulse rate",
    K.SPO2: "Oxygen saturation (SpO2)",
    K.RR: "Respiratory rate",
    K.ETCO2: "End-tidal CO2",
    K.TEMP_C: "Body temperature",
    K.WEIGHT_KG: "Body weight",
    K.HEIGHT_CM: "Body height",
    K.BMI: "Body mass index",
    K.PERFUSION_INDEX: "Perfusion index",
}
_UNIT_DISPLAY: Final = {"Cel": "°C"}


def codings(kind: str, mdc_code: int | None) -> list[dict[str, str]]:
    """LOINC (where the reference gives one) and MDC codings of one value."""
    out = [dict(c) for c in LOINC_BY_KIND.get(kind, ())]
    if kind == K.PULSE and mdc_code == OXIMETER_PULSE:
        out.append(_loinc("8889-8"))
    term = TERMS_BY_CODE.get(mdc_code) if mdc_code is not None else None
    if term is not None:
        out.append({"system": MDC, "code": str(term.code), "display": term.refid})
    return out


def _site_codes(site: str) -> frozenset[int]:
    return frozenset(
        t.code for t in TERMS_BY_CODE.values() if t.kind is not None and t.kind.value in BP and t.site == site
    )


SITES: Final = {site: _site_codes(site) for site in ("nibp", "arterial")}


def panel_codings(mdc_code: int | None) -> list[dict[str, str]]:
    out = [dict(PANEL)]
    if mdc_code in SITES["nibp"]:
        out.append({"system": MDC, "code": str(NIBP_COMPOUND), "display": TERMS_BY_CODE[NIBP_COMPOUND].refid})
    return out


# Every (kind, MDC code) a stored value can have, for the code searches.
_VALUE_KEYS: Final = [(t.kind.value, t.code) for t in TERMS_BY_CODE.values() if t.kind is not None] + [
    (k.value, None) for k in VitalKind
]


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _quantity(row: Any) -> dict[str, Any]:
    return {
        "value": _number(row.value),
        "unit": _UNIT_DISPLAY.get(row.unit, row.unit),
        "system": codes.UCUM,
        "code": row.unit,
    }


def _implausible(reason: str) -> list[dict[str, Any]]:
    coding = {"system": PLAUSIBILITY_SYSTEM, "code": "implausible", "display": "Implausible value"}
    return [{"coding": [coding], "text": reason}]


def _note(reasons: list[str]) -> list[dict[str, str]]:
    return [
        {
            "text": f"Implausible value from the monitor: {r}. Kept as sent; not a measurement, not charted "
            "and not judged by the alert rules."
        }
        for r in reasons
    ]


# Digits of a reading id in its resource id: a BigAutoField reaches 9223372036854775807 (19 digits).
ID_DIGITS = 19


class MonitorReadingSource(Source):
    """Bound monitor readings (``mon-<id>``): one Observation per value, a panel per blood-pressure set."""

    model = VitalReading
    prefix = "mon"
    patient_field = "patient_id"
    updated_field = "last_changed"  # annotation: attached_at (a reading bound later), else received_at
    # Stored: a walk through the pages leaves out values that arrive after its first page (issue 16: offset
    # paging repeated entries while monitor data arrived). A value stored earlier and attached to its
    # patient during the walk may still appear on a later page (never twice).
    created_field = "received_at"
    date_fields = {"date": "observed_at"}
    sort_fields = {"_id": "pk", "_lastUpdated": "last_changed", "date": "observed_at"}

    def fhir_id(self, obj: Any) -> str:
        return f"{self.prefix}-{obj.pk:0{ID_DIGITS}d}"

    def parse_id(self, fhir_id: str) -> Any | None:
        """Only the canonical 19-digit form names a reading (``mon-42`` is not another name for it)."""
        digits = fhir_id.removeprefix(f"{self.prefix}-")
        if digits == fhir_id or len(digits) != ID_DIGITS or not digits.isdigit():
            return None
        return int(digits)

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return VitalReading.objects.filter(
            organization_id=organization_id, bound=True, patient_id__isnull=False, bp_component=False
        ).annotate(last_changed=Coalesce("attached_at", "received_at"))

    def of_patients(self, qs: QuerySet[Any], patient_ids: Any) -> QuerySet[Any]:
        """A patient's readings through the patient index: it holds only the first row of each reading set
        (``vitalreading_patient_sets``, one entry per message instead of one per value, bench/README.md
        "## mllp"), so the sets are found there and their values by message (the message key is indexed);
        a plain ``patient_id IN (…)`` could use no index and would read the whole readings table. Every
        value of a message shares its patient (bound, or attached, per message)."""
        sets = VitalReading.objects.filter(patient_id__in=patient_ids, first_of_set=True).values("message_id")
        return qs.filter(patient_id__in=patient_ids, message_id__in=sets)

    def filter(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        if flt.name in ("patient", "subject"):
            ids = [_uuid(v) for v in flt.values if isinstance(v, str)]
            return self.of_patients(qs, [i for i in ids if i is not None])
        return super().filter(qs, flt)

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name == "code":
            return qs.filter(self._code_q(tokens))
        if flt.name == "component-code":
            return qs.filter(self._component_q(tokens))
        if flt.name == "combo-code":
            return qs.filter(self._code_q(tokens) | self._component_q(tokens))
        if flt.name == "category":
            if any(token_matches(t, codes.OBSERVATION_CATEGORY, codes.VITAL_SIGNS) for t in tokens):
                return qs
            return qs.none()
        if flt.name == "device":
            ids = [_uuid(v) for v in flt.values if isinstance(v, str)]
            return qs.filter(device_id__in=[i for i in ids if i is not None])
        return qs.none()

    @staticmethod
    def _code_q(tokens: list[Token]) -> Q:
        """Rows whose resource's own ``code`` matches: panels by 85354-9 (and the NIBP compound code),
        every other value (a lone mean pressure too) by its own codings."""

        def hit(coding_list: list[dict[str, str]]) -> bool:
            return any(token_matches(t, c["system"], c["code"]) for t in tokens for c in coding_list)

        parts = []
        for kind, mdc in _VALUE_KEYS:
            own = panel_codings(mdc) if kind in (K.SBP, K.DBP) else codings(kind, mdc)
            if hit(own):
                parts.append(
                    Q(kind=kind, mdc_code=mdc) if mdc is not None else Q(kind=kind, mdc_code__isnull=True)
                )
        return reduce(or_, parts) if parts else Q(pk__in=[])

    @staticmethod
    def _component_q(tokens: list[Token]) -> Q:
        """Panels (led by a systolic or diastolic value) with a component whose codings match: the panel's
        own values, found in the same message, time and measuring site."""
        matching = [
            (kind, mdc)
            for kind, mdc in _VALUE_KEYS
            if kind in BP
            and mdc is not None
            and any(token_matches(t, c["system"], c["code"]) for t in tokens for c in codings(kind, mdc))
        ]
        if not matching:
            return Q(pk__in=[])
        parts = []
        for site_codes in SITES.values():
            wanted = [(k, m) for k, m in matching if m in site_codes]
            if not wanted:
                continue
            member = reduce(or_, (Q(kind=k, mdc_code=m) for k, m in wanted))
            siblings = VitalReading.objects.filter(
                member, message_id=OuterRef("message_id"), observed_at=OuterRef("observed_at")
            )
            parts.append(Q(kind__in=(K.SBP, K.DBP), mdc_code__in=site_codes) & Q(Exists(siblings)))
        return reduce(or_, parts) if parts else Q(pk__in=[])

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        r: Any = obj  # monitoring.VitalReading (annotated with last_changed)
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self.fhir_id(r),
            "meta": {"lastUpdated": instant(getattr(r, "last_changed", None) or r.received_at)},
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": codes.OBSERVATION_CATEGORY,
                            "code": codes.VITAL_SIGNS,
                            "display": "Vital Signs",
                        }
                    ]
                }
            ],
        }
        _BODY[r.kind in (K.SBP, K.DBP)](resource, r)
        resource["subject"] = {"reference": f"Patient/{r.patient_id}"}
        if r.session_id is not None:
            resource["encounter"] = {"reference": f"Encounter/{r.session_id}"}
        resource["effectiveDateTime"] = instant(r.observed_at)
        resource["issued"] = instant(r.received_at)
        if r.device_id is not None:
            resource["device"] = {"reference": f"Device/{r.device_id}"}
        # Key order as FHIR lists the elements (valueQuantity/interpretation/note after effective/issued).
        for key in ("valueQuantity", "interpretation", "note", "component"):
            if key in resource:
                resource[key] = resource.pop(key)
        # The US Core vital-sign profile its LOINC code names (BP panel, heart rate, pulse oximetry,
        # respiratory rate, temperature), as for the chairside readings; none for the other values.
        claimed = profile_claims(resource)
        if claimed:
            resource["meta"]["profile"] = claimed
        return resource


def _single(resource: dict[str, Any], r: Any) -> None:
    text = TEXT.get(r.kind, r.kind)
    if r.kind == K.PULSE and r.mdc_code == OXIMETER_PULSE:
        text = "Pulse rate by pulse oximetry"
    resource["code"] = {"coding": codings(r.kind, r.mdc_code), "text": text}
    resource["valueQuantity"] = _quantity(r)
    if r.implausible_reason:
        resource["interpretation"] = _implausible(r.implausible_reason)
        resource["note"] = _note([r.implausible_reason])


def _panel(resource: dict[str, Any], r: Any) -> None:
    """A blood-pressure panel led by ``r``: its values of the same message, time and measuring site."""
    site = next((s for s, members in SITES.items() if r.mdc_code in members), None)
    members = [r]
    if r.message_id is not None:
        same = VitalReading.objects.filter(
            message_id=r.message_id, observed_at=r.observed_at, kind__in=BP, bp_component=True
        )
        same = (
            same.filter(mdc_code__in=SITES[site]) if site is not None else same.filter(mdc_code__isnull=True)
        )
        members += list(same.order_by("id"))
    by_kind: dict[str, Any] = {}
    for m in members:
        by_kind.setdefault(m.kind, m)
    resource["code"] = {"coding": panel_codings(r.mdc_code), "text": "Blood pressure"}
    components = []
    reasons = []
    for kind in BP:
        m = by_kind.get(kind)
        if m is None and kind == K.MAP:
            continue
        component: dict[str, Any] = {
            "code": {"coding": codings(kind, m.mdc_code if m is not None else None), "text": TEXT[kind]}
        }
        if m is None:
            component["dataAbsentReason"] = {
                "coding": [{"system": codes.DATA_ABSENT_REASON, "code": "not-performed"}]
            }
        else:
            component["valueQuantity"] = _quantity(m)
            if m.implausible_reason:
                component["interpretation"] = _implausible(m.implausible_reason)
                reasons.append(m.implausible_reason)
        components.append(component)
    if reasons:
        resource["note"] = _note(reasons)
    resource["component"] = components


_BODY: Final[dict[bool, Callable[[dict[str, Any], Any], None]]] = {True: _panel, False: _single}


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


MONITOR_READINGS: Final = MonitorReadingSource()
