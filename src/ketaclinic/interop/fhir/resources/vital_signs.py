"""Observation from chairside readings (``chairside.Observation``): one resource per measurement kind per row.

A row holds a whole set of readings taken at one moment (BP, HR, SpO2, RR, temperature, MOAA/S, CADSS);
FHIR wants one Observation per measurement (interop.md §1.5), so each kind is its own ``Source`` over the
same table, restricted to the rows where that kind was measured. Ids are ``vs-<row uuid>-<kind>``
(``vs-…-bp``, ``-hr``, ``-spo2``, ``-rr``, ``-temp``, ``-moaas``, ``-cadss``): stable, and disjoint from the
score Observations (``score-<uuid>``). Search, paging, ``$everything`` and ``$export`` merge these sources
with the scores (resources/observation.py).

Codes (interop.md §1.5, LOINC + UCUM, category ``vital-signs``): BP is one panel 85354-9 with components
8480-6 / 8462-4 in ``mm[Hg]`` (a missing half gets ``dataAbsentReason``), HR 8867-4 ``/min``, SpO2 carries
both 2708-6 and 59408-5 (US Core Pulse Oximetry) in ``%``, RR 9279-1 ``/min``, temperature 8310-5 ``Cel``.
MOAA/S and CADSS have no LOINC (interop.md §1.6): category ``survey`` with the same local codes as their
rating-scale totals (``<instrument>-total`` in ``codes.INSTRUMENT_SYSTEM``), so one ``code`` search finds a
CADSS total whether it was entered as a scale or on the chairside row. The chairside CADSS is the 23-item
total (clinical/vitals.py: 0–92).

Values a monitor sent are not served from here but from the monitor table, at full precision, with their
device, MAP, pulse and perfusion index, in a session or not (resources/monitor_readings.py); the feed's
rounded copies on the session (``source="hl7"``) are left out so that no value is served twice.

``meta.lastUpdated`` (and ``_lastUpdated``, ``_since``) is the row's entry time (``recorded_at``), not the
observation time: rows are never edited by the services, so the entry is the last change, and a reading
entered late for an earlier time is still found by an incremental search or export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_
from typing import Any

from django.db.models import Q, QuerySet

from ketaclinic.chairside.models import Observation as Reading
from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.params import Filter, Token
from ketaclinic.interop.fhir.resources.base import Source, instant, token_matches

MM_HG = "mm[Hg]"
PER_MIN = "/min"
MONITOR_COPY = "hl7"  # chairside.Observation.source of the values the monitor feed copies onto a session


def _loinc(code: str, display: str) -> dict[str, str]:
    return {"system": codes.LOINC, "code": code, "display": display}


def _quantity(value: Any, unit: str, code: str) -> dict[str, Any]:
    number: int | float = float(value) if isinstance(value, Decimal | float) else int(value)
    return {"value": number, "unit": unit, "system": codes.UCUM, "code": code}


@dataclass(frozen=True)
class Measure:
    kind: str  # id suffix
    fields: tuple[str, ...]  # the row's columns; a row yields this resource when any is filled
    category: str
    codings: tuple[dict[str, str], ...]
    text: str
    unit: str = ""  # UCUM code of a single value
    unit_display: str = ""


_BP_COMPONENTS = (
    ("sbp_mmhg", _loinc("8480-6", "Systolic blood pressure")),
    ("dbp_mmhg", _loinc("8462-4", "Diastolic blood pressure")),
)

MEASURES: tuple[Measure, ...] = (
    Measure(
        "bp",
        ("sbp_mmhg", "dbp_mmhg"),
        codes.VITAL_SIGNS,
        (_loinc("85354-9", "Blood pressure panel with all children optional"),),
        "Blood pressure",
    ),
    Measure(
        "hr", ("hr_bpm",), codes.VITAL_SIGNS, (_loinc("8867-4", "Heart rate"),), "Heart rate", PER_MIN, "/min"
    ),
    Measure(
        "spo2",
        ("spo2_pct",),
        codes.VITAL_SIGNS,
        (
            _loinc("2708-6", "Oxygen saturation in Arterial blood"),
            _loinc("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
        ),
        "Oxygen saturation (SpO2)",
        "%",
        "%",
    ),
    Measure(
        "rr",
        ("rr_per_min",),
        codes.VITAL_SIGNS,
        (_loinc("9279-1", "Respiratory rate"),),
        "Respiratory rate",
        PER_MIN,
        "/min",
    ),
    Measure(
        "temp",
        ("temp_c",),
        codes.VITAL_SIGNS,
        (_loinc("8310-5", "Body temperature"),),
        "Body temperature",
        "Cel",
        "°C",
    ),
    Measure(
        "moaas",
        ("moaas",),
        codes.SURVEY,
        tuple(codes.total_codings(INSTRUMENTS["moaas"])),
        "MOAA/S level",
        "{score}",
        "{score}",
    ),
    Measure(
        "cadss",
        ("cadss_total",),
        codes.SURVEY,
        tuple(codes.total_codings(INSTRUMENTS["cadss"])),
        "CADSS total score",
        "{score}",
        "{score}",
    ),
)

_CATEGORY_DISPLAY = {codes.VITAL_SIGNS: "Vital Signs", codes.SURVEY: "Survey"}


class ReadingSource(Source):
    """One measurement kind of the chairside readings (``vs-<uuid>-<kind>``)."""

    model = Reading
    prefix = "vs"
    patient_field = "session__patient_id"
    updated_field = "recorded_at"  # entry time: see the module docstring
    date_fields = {"date": "observed_at"}
    sort_fields = {"_id": "pk", "_lastUpdated": "recorded_at", "date": "observed_at"}
    reference_fields = {"encounter": "session_id"}
    created_field = "recorded_at"

    def __init__(self, measure: Measure) -> None:
        self.measure = measure
        self._suffix = f"-{measure.kind}"

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        measured = reduce(or_, (Q(**{f"{f}__isnull": False}) for f in self.measure.fields))
        # The feed's rounded copies of monitor values (source "hl7") are served, at full precision and with
        # their device, from the monitor table (resources/monitor_readings.py): one Observation per value.
        return (
            Reading.objects.filter(measured, organization_id=organization_id)
            .exclude(source=MONITOR_COPY)
            .select_related("session")
        )

    def fhir_id(self, obj: Any) -> str:
        return f"{self.prefix}-{obj.pk}{self._suffix}"

    def parse_id(self, fhir_id: str) -> Any | None:
        if not fhir_id.endswith(self._suffix):
            return None
        return super().parse_id(fhir_id.removesuffix(self._suffix))

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        tokens = [v for v in flt.values if isinstance(v, Token)]
        if flt.name in ("component-code", "combo-code"):
            # The BP panel's components (8480-6, 8462-4): rows where that half was measured.
            parts = [
                Q(**{f"{field}__isnull": False})
                for field, coding in (_BP_COMPONENTS if self.measure.kind == "bp" else ())
                if any(token_matches(t, coding["system"], coding["code"]) for t in tokens)
            ]
            own = [(c["system"], c["code"]) for c in self.measure.codings] if flt.name == "combo-code" else []
            if any(token_matches(t, system, code) for t in tokens for system, code in own):
                return qs
            return qs.filter(reduce(or_, parts)) if parts else qs.none()
        if flt.name == "code":
            pairs = [(c["system"], c["code"]) for c in self.measure.codings]
        elif flt.name == "category":
            pairs = [(codes.OBSERVATION_CATEGORY, self.measure.category)]
        else:
            return qs.none()
        if any(token_matches(t, system, code) for t in tokens for system, code in pairs):
            return qs
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        r: Any = obj  # chairside.Observation
        m = self.measure
        category = {
            "system": codes.OBSERVATION_CATEGORY,
            "code": m.category,
            "display": _CATEGORY_DISPLAY[m.category],
        }
        resource: dict[str, Any] = {
            "resourceType": "Observation",
            "id": self.fhir_id(r),
            "meta": {"lastUpdated": instant(r.recorded_at)},
            "status": "final",
            "category": [{"coding": [category]}],
            "code": {"coding": [dict(c) for c in m.codings], "text": m.text},
            "subject": {"reference": f"Patient/{r.session.patient_id}"},
            "encounter": {"reference": f"Encounter/{r.session_id}"},
            "effectiveDateTime": instant(r.observed_at),
        }
        _VALUE[m.kind](resource, r, m)
        claimed = profile_claims(resource)
        if claimed:
            resource["meta"]["profile"] = claimed
        return resource


def profile_claims(resource: dict[str, Any]) -> list[str]:
    """The US Core profiles a reading conforms to (profiles.py): a vital-sign profile by its LOINC code, the
    screening-assessment profile for the survey kinds (MOAA/S, CADSS); none for any other reading."""
    codings = resource["code"]["coding"]
    found = profiles.vital_sign_profiles(codings)
    categories = {c["code"] for cat in resource.get("category", []) for c in cat.get("coding", [])}
    if codes.SURVEY in categories:
        found.append(profiles.SCREENING_ASSESSMENT)
    return found


def _single(resource: dict[str, Any], row: Any, m: Measure) -> None:
    resource["valueQuantity"] = _quantity(getattr(row, m.fields[0]), m.unit_display, m.unit)


def _blood_pressure(resource: dict[str, Any], row: Any, m: Measure) -> None:
    components = []
    for field, coding in _BP_COMPONENTS:
        component: dict[str, Any] = {"code": {"coding": [dict(coding)], "text": coding["display"]}}
        value = getattr(row, field)
        if value is None:
            component["dataAbsentReason"] = {
                "coding": [{"system": codes.DATA_ABSENT_REASON, "code": "not-performed"}]
            }
        else:
            component["valueQuantity"] = _quantity(value, MM_HG, MM_HG)
        components.append(component)
    resource["component"] = components


_VALUE: dict[str, Callable[[dict[str, Any], Any, Measure], None]] = {
    m.kind: (_blood_pressure if m.kind == "bp" else _single) for m in MEASURES
}

READING_SOURCES: tuple[ReadingSource, ...] = tuple(ReadingSource(m) for m in MEASURES)
