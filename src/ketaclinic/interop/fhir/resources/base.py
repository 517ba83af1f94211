"""The shape every FHIR mapping follows: a resource type is served from one or more *sources* (tables).

A ``Source`` turns rows of one model into resources of one type and turns parsed search filters into
ORM filters. A ``ResourceType`` groups its sources with the search parameters and sort keys they share.
Observation, for instance, is served by rating-scale totals (ids ``score-<uuid>``) and by one source per
measurement kind of the chairside readings (ids ``vs-<uuid>-<kind>``, resources/vital_signs.py); search,
paging and export merge the sources in sort order.

Adding a resource type once its table exists (Condition, CarePlan…): write ``resources/<type>.py`` with a
Source subclass and a ``ResourceType``, add it to ``resources.REGISTRY``; the CapabilityStatement, scopes,
search, ``$everything`` and ``$export`` follow.

Rows that reach their patient through another row (a session's readings) name the path in
``patient_field`` (``"session__patient_id"``); ``patient_pk`` follows it, so select the related row in
``queryset``. A type without a patient (Device: a monitor serves many patients) sets ``patient_field = ""``
and says in ``of_patients`` which of its rows a patient's compartment holds (resources/device.py). ``updated_field``, ``date_fields`` and ``sort_fields`` may name annotations that ``queryset``
adds (an encounter's start is computed from its events).

Date parameters (params.py has the R4 rule): a ``date_fields`` entry is either one field (a point: the
moment, or the day of a DateField) or a ``DateSpan`` (a Period: the start field and the end field, an empty
end meaning ongoing). ``date_q`` turns the rule into conditions on the raw columns that an index can serve:
a stored moment is the second it is written as (``instant``), a date its day.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import DateTimeField, Model, Q, QuerySet

from ketaclinic.core.access import CLINICIANS
from ketaclinic.interop.fhir.params import DateRange, Filter, ParamType, Token


@dataclass(frozen=True)
class ParamDef:
    type: ParamType
    documentation: str
    # Reference parameters: the type they point to and the element holding the reference (for _include).
    target: str = ""
    path: str = ""


@dataclass(frozen=True)
class DateSpan:
    """A date parameter over a Period: ``low`` the start field, ``high`` the end field (NULL = ongoing).
    A row whose ``low`` is NULL has no period and matches no date search."""

    low: str
    high: str
    day: bool = False  # the fields hold dates (a day each), e.g. annotations over DateFields


COMMON_PARAMS: Mapping[str, ParamDef] = {
    "_id": ParamDef(ParamType.TOKEN, "Logical id of the resource."),
    "_lastUpdated": ParamDef(ParamType.DATE, "When the resource last changed (prefixes eq, ge, le, gt, lt)."),
}
PATIENT_PARAMS: Mapping[str, ParamDef] = {
    "patient": ParamDef(ParamType.REFERENCE, "The patient: Patient/<id>.", "Patient", "subject"),
    "subject": ParamDef(
        ParamType.REFERENCE, "The subject (always a Patient here): Patient/<id>.", "Patient", "subject"
    ),
}


def instant(moment: datetime) -> str:
    """An R4 ``instant``/``dateTime`` in UTC with seconds (timezone is required for instants)."""
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _second_floor(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _second_ceil(moment: datetime) -> datetime:
    floor = moment.replace(microsecond=0)
    return floor if floor == moment else floor + timedelta(seconds=1)


def _day_floor(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def _day_ceil(moment: datetime) -> date:
    day = _day_floor(moment)
    return day if datetime(day.year, day.month, day.day, tzinfo=UTC) == moment else day + timedelta(days=1)


def date_q(low: str, value: DateRange, *, high: str | None = None, date_only: bool = False) -> Q:
    """Rows whose value matches ``value`` by the R4 rule (params.date_matches).

    ``low``/``high``: the start and end fields of a Period (``high`` NULL = ongoing), or ``low`` alone for a
    point. The target interval is [low, high + one unit) at the unit the resource is written in (a second,
    or a day for ``date_only``), so each bound comparison becomes one comparison of a raw column:
    t_lo ≥ X ⇔ low ≥ ceil(X); t_lo < X ⇔ low < ceil(X); t_hi > X ⇔ high ≥ floor(X) (or ongoing);
    t_hi ≤ X ⇔ high < floor(X)."""
    ceil, floor = (_day_ceil, _day_floor) if date_only else (_second_ceil, _second_floor)
    end = high or low

    def lo_ge(x: datetime) -> Q:
        return Q(**{f"{low}__gte": ceil(x)})

    def lo_lt(x: datetime) -> Q:
        return Q(**{f"{low}__lt": ceil(x)})

    def hi_gt(x: datetime) -> Q:
        q = Q(**{f"{end}__gte": floor(x)})
        return q | Q(**{f"{end}__isnull": True}) if high else q

    def hi_le(x: datetime) -> Q:
        return Q(**{f"{end}__lt": floor(x)})

    s_lo, s_hi = value.start, value.end
    eq = lo_ge(s_lo) & hi_le(s_hi)
    rules = {
        "eq": lambda: eq,
        "ne": lambda: lo_lt(s_lo) | hi_gt(s_hi),
        "gt": lambda: hi_gt(s_hi),
        "lt": lambda: lo_lt(s_lo),
        "ge": lambda: hi_gt(s_hi) | eq,
        "le": lambda: lo_lt(s_lo) | eq,
        "sa": lambda: lo_ge(s_hi),
        "eb": lambda: hi_le(s_lo),
        "ap": lambda: lo_lt(s_hi) & hi_gt(s_lo),
    }
    condition = rules[value.prefix]()
    return condition & Q(**{f"{low}__isnull": False}) if high else condition


def any_of(parts: list[Q]) -> Q:
    """OR of the parts; an empty list matches nothing."""
    if not parts:
        return Q(pk__in=[])
    combined = parts[0]
    for part in parts[1:]:
        combined |= part
    return combined


def token_matches(token: Token, system: str, code: str) -> bool:
    """R4 token forms: ``system|code``, ``|code`` (no system), ``system|`` (any code), ``code`` (any system)."""
    if token.system is not None and token.system != system:
        return False
    return token.code is None or token.code == code


def matching_codes(tokens: Iterable[Token], system: str, codes: Iterable[str]) -> list[str]:
    """The codes of ``system`` (a finite value set) that any of ``tokens`` matches."""
    wanted = list(tokens)
    return [c for c in codes if any(token_matches(t, system, c) for t in wanted)]


class Source:
    """One table serving one FHIR resource type. Subclasses set the class attributes and ``to_fhir``."""

    model: type[Model]
    prefix: str = ""  # ids are "<prefix>-<pk>" when a type has several sources
    patient_field: str = "patient_id"
    updated_field: str = "updated_at"
    # parameter name -> model field (a point) or DateSpan (a period), for this source's date parameters
    date_fields: Mapping[str, str | DateSpan] = {}
    # sort key -> model field
    sort_fields: Mapping[str, str] = {}
    # reference parameter (other than patient/subject) -> the field holding the target's primary key
    reference_fields: Mapping[str, str] = {}
    # when a row was first stored (never changes): bounds a paged search to the rows of its first page
    created_field: str | None = None

    def queryset(self, organization_id: int) -> QuerySet[Any]:
        return self.model._default_manager.filter(organization_id=organization_id)

    def fhir_id(self, obj: Any) -> str:
        return f"{self.prefix}-{obj.pk}" if self.prefix else str(obj.pk)

    def parse_id(self, fhir_id: str) -> Any | None:
        """The primary key behind ``fhir_id`` if it belongs to this source, else None."""
        text = fhir_id
        if self.prefix:
            if not fhir_id.startswith(self.prefix + "-"):
                return None
            text = fhir_id[len(self.prefix) + 1 :]
        try:  # UUID keys (patients, scales) and integer keys (vital readings) alike
            return self.model._meta.pk.to_python(text) if self.model._meta.pk is not None else None
        except ValidationError:
            return None

    def patient_pk(self, obj: Any) -> Any:
        """The patient a row belongs to; None for a type without a patient (Device)."""
        if not self.patient_field:
            return None
        value = obj
        for part in self.patient_field.split("__"):
            value = getattr(value, part)
        return value

    def of_patients(self, qs: QuerySet[Any], patient_ids: Any) -> QuerySet[Any]:
        """The rows in these patients' compartment (a list or a queryset of patient pks). A type without a
        patient (``patient_field = ""``, Device) overrides this: its rows reach a patient through others."""
        return qs.filter(**{f"{self.patient_field}__in": patient_ids})

    def sort_value(self, obj: Any, key: str) -> Any:
        return getattr(obj, self.sort_fields[key])

    def filter(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        """Apply one parsed filter; its values are OR-ed. ``:not`` on a token keeps the rows the filter
        without it would not match (R4: including rows with no value)."""
        if flt.modifier == "not":
            matched = self.filter(qs, replace(flt, modifier=""))
            return qs.exclude(pk__in=matched.values("pk"))
        if flt.name == "_id":
            pks = [self.parse_id(v.code or "") for v in flt.values if isinstance(v, Token)]
            return qs.filter(pk__in=[pk for pk in pks if pk is not None])
        if flt.name == "_lastUpdated":
            return qs.filter(any_of([date_q(self.updated_field, v) for v in _dates(flt)]))
        if flt.name in ("patient", "subject") or flt.name in self.reference_fields:
            field = self.reference_fields.get(flt.name, self.patient_field)
            pks = [_uuid(v) for v in flt.values if isinstance(v, str)]
            return qs.filter(**{f"{field}__in": [pk for pk in pks if pk is not None]})
        if flt.name in self.date_fields:
            spec = self.date_fields[flt.name]
            low, high = (spec.low, spec.high) if isinstance(spec, DateSpan) else (spec, None)
            date_only = (isinstance(spec, DateSpan) and spec.day) or self._is_date(low)
            return qs.filter(any_of([date_q(low, v, high=high, date_only=date_only) for v in _dates(flt)]))
        return self.filter_param(qs, flt)

    def _is_date(self, field: str) -> bool:
        try:
            return not isinstance(self.model._meta.get_field(field), DateTimeField)
        except FieldDoesNotExist:  # an annotation of ``queryset``: a moment
            return False

    def filter_param(self, qs: QuerySet[Any], flt: Filter) -> QuerySet[Any]:
        """Type-specific parameters (code, category, identifier…). Unknown here: matches nothing."""
        return qs.none()

    def to_fhir(self, obj: Any, base_url: str) -> dict[str, Any]:
        raise NotImplementedError


def _dates(flt: Filter) -> list[DateRange]:
    return [v for v in flt.values if isinstance(v, DateRange)]


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class ResourceType:
    name: str
    sources: tuple[Source, ...]
    params: Mapping[str, ParamDef]
    sort_keys: tuple[str, ...]
    documentation: str
    # Roles whose staff may read this type through a user/ scope (the same roles the web pages allow).
    user_roles: frozenset[str] = CLINICIANS
    # A definitional type (Questionnaire) has no table and no patient: ``definitions`` returns every resource
    # of the type and ``matches`` decides one search filter; ``sources`` is empty (services.py searches and
    # reads these in Python, without the patient compartment).
    definitions: Callable[[], Sequence[dict[str, Any]]] | None = None
    matches: Callable[[dict[str, Any], Filter], bool] | None = None

    @property
    def param_types(self) -> dict[str, ParamType]:
        return {name: p.type for name, p in self.params.items()}

    @property
    def reference_targets(self) -> dict[str, str]:
        return {name: p.target for name, p in self.params.items() if p.type is ParamType.REFERENCE}

    def source_for(self, fhir_id: str) -> tuple[Source, Any] | None:
        for source in self.sources:
            pk = source.parse_id(fhir_id)
            if pk is not None:
                return source, pk
        return None
