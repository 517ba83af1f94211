"""Run the pure alert engine (clinical/alerts.py) on bound monitor readings and keep what it raises.

What needs a treatment session is not done here, by design, until the session app exists:

* Rises from baseline (SBP +40, DBP +25) and sedation need the session's pre-dose baseline and dose
  time; without a session the engine is called with ``baseline=None`` and ``dose_started_at=None`` and
  only the absolute thresholds fire (SBP/DBP high, HR high/low, SpO2 low, RR low). The session app should
  call :func:`evaluate_alerts` with ``context=`` returning the session's baseline, dose time and rules.
* The engine's "before dosing" wording (it assumes no dose time means pre-dose) is dropped from the
  message when there is no session, because a monitor reading's phase is unknown.
* The dedup key ("one open alert per key") is per patient and UTC day until a session key exists.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ketaclinic.clinical import alerts as engine
from ketaclinic.clinical.vitals import VitalReading as ClinicalReading
from ketaclinic.interop.hl7.mdc import VitalKind
from ketaclinic.monitoring.models import MonitoringAlert, VitalReading

# Which stored kind an alert points at (the reading row the alert links to).
_ALERT_KIND: Mapping[engine.AlertCode, tuple[str, ...]] = {
    engine.AlertCode.SBP_HIGH: (VitalKind.SBP,),
    engine.AlertCode.SBP_RISE: (VitalKind.SBP,),
    engine.AlertCode.DBP_HIGH: (VitalKind.DBP,),
    engine.AlertCode.DBP_RISE: (VitalKind.DBP,),
    engine.AlertCode.HR_HIGH: (VitalKind.HR, VitalKind.PULSE),
    engine.AlertCode.HR_LOW: (VitalKind.HR, VitalKind.PULSE),
    engine.AlertCode.SPO2_LOW: (VitalKind.SPO2,),
    engine.AlertCode.RR_LOW: (VitalKind.RR,),
    engine.AlertCode.TEMP_HIGH: (VitalKind.TEMP_C,),
    engine.AlertCode.TEMP_LOW: (VitalKind.TEMP_C,),
}


@dataclass(frozen=True)
class AlertContext:
    """What the session app knows about a reading's session (None today)."""

    session_key: str
    baseline: ClinicalReading | None = None
    dose_started_at: datetime | None = None
    rules: Mapping[engine.AlertCode, engine.AlertRule] | None = None  # None: the engine's defaults


class ReadingLike(Protocol):
    """A stored reading: a VitalReading or a rows.ReadingRow written in the same transaction."""

    @property
    def organization_id(self) -> int: ...
    @property
    def patient_id(self) -> Any: ...
    @property
    def chair_id(self) -> int | None: ...
    @property
    def message_id(self) -> int | None: ...
    @property
    def observed_at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def value(self) -> float: ...
    @property
    def bound(self) -> bool: ...


ContextFor = Callable[[ReadingLike], AlertContext | None]


def _reading_ids(readings: Sequence[ReadingLike]) -> list[int]:
    """:func:`_reading_id` of each reading, with one query for all of a batch's unsaved rows (the first
    stored row by id for the same message, kind and time, as _reading_id picks)."""
    unsaved = [r for r in readings if getattr(r, "pk", None) is None]
    found: dict[tuple[Any, str, datetime], int] = {}
    if unsaved:
        rows = (
            VitalReading.objects.filter(message_id__in={r.message_id for r in unsaved})
            .order_by("id")
            .values_list("id", "message_id", "kind", "observed_at")
        )
        for pk, message_id, kind, observed_at in rows:
            found.setdefault((message_id, kind, observed_at), int(pk))
    out: list[int] = []
    for r in readings:
        stored_pk = getattr(r, "pk", None)
        if stored_pk is not None:
            out.append(int(stored_pk))
            continue
        hit = found.get((r.message_id, r.kind, r.observed_at))
        if hit is None:
            raise LookupError("the reading an alert points at is not stored")
        out.append(hit)
    return out


def _reading_id(reading: ReadingLike) -> int:
    pk = getattr(reading, "pk", None)
    if pk is not None:
        return int(pk)
    found = (
        VitalReading.objects.filter(
            message_id=reading.message_id, kind=reading.kind, observed_at=reading.observed_at
        )
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    if found is None:
        raise LookupError("the reading an alert points at is not stored")
    return int(found)


def _no_session(reading: ReadingLike) -> AlertContext:
    return AlertContext(session_key=f"patient:{reading.patient_id}:{reading.observed_at:%Y-%m-%d}")


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)


def clinical_reading(rows: Sequence[ReadingLike]) -> ClinicalReading:
    """One moment's rows as the engine's reading. ECG heart rate is preferred over a pulse rate."""
    by_kind: dict[str, float] = {}
    for r in rows:
        by_kind.setdefault(r.kind, r.value)
    hr = by_kind.get(VitalKind.HR, by_kind.get(VitalKind.PULSE))
    return ClinicalReading(
        taken_at=rows[0].observed_at,
        sbp_mmhg=_int(by_kind.get(VitalKind.SBP)),
        dbp_mmhg=_int(by_kind.get(VitalKind.DBP)),
        hr_bpm=_int(hr),
        spo2_pct=_int(by_kind.get(VitalKind.SPO2)),
        rr_per_min=_int(by_kind.get(VitalKind.RR)),
        temp_c=by_kind.get(VitalKind.TEMP_C),
    )


_QUIET: dict[tuple[Any, ...], bool] = {}


def _quiet(reading: ClinicalReading) -> bool:
    """Whether the engine raises nothing for these values with no baseline and no dose time (readings
    outside a treatment session): then the answer depends on the values alone, so it is worked out once
    per distinct set of values (a feed sends the same few every second) instead of once per message."""
    key = (
        reading.sbp_mmhg,
        reading.dbp_mmhg,
        reading.hr_bpm,
        reading.spo2_pct,
        reading.rr_per_min,
        reading.temp_c,
        reading.moaas,
    )
    found = _QUIET.get(key)
    if found is None:
        raised = engine.evaluate_reading(
            reading=reading,
            baseline=None,
            dose_started_at=None,
            session_key="",
            rules=engine.DEFAULT_ALERT_RULES,
        )
        if len(_QUIET) >= 20000:
            _QUIET.clear()
        found = _QUIET[key] = not raised
    return found


def raises_nothing(readings: Sequence[ReadingLike]) -> bool:
    """Whether :func:`evaluate_alerts` (with no session ``context``) would store nothing for these bound
    readings: each moment's values are quiet. Works on rows without ids, so the feed can tell before it
    takes the write lock which messages need the engine inside the transaction."""
    groups: dict[tuple[Any, datetime], list[ReadingLike]] = defaultdict(list)
    for r in readings:
        if r.bound and r.patient_id is not None:
            groups[(r.patient_id, r.observed_at)].append(r)
    return all(_quiet(clinical_reading(rows)) for rows in groups.values())


def evaluate_alerts(
    readings: Sequence[ReadingLike], *, now: datetime, context: ContextFor | None = None
) -> int:
    """Evaluate saved, bound readings (grouped per message, patient and time); store new alerts.

    Returns how many alerts were stored. An open (unacknowledged) alert with the same key is not
    raised again. An implausible value (``implausible_reason``, interop/hl7/bounds.py) is not a measurement
    and is not judged: the feed warns in the ACK and the chart shows it struck out (issue 16 point 3).
    """
    groups: dict[tuple[Any, Any, datetime], list[ReadingLike]] = defaultdict(list)
    for r in readings:
        if getattr(r, "implausible_reason", ""):
            continue
        if r.bound and r.patient_id is not None:
            groups[(r.message_id, r.patient_id, r.observed_at)].append(r)
    found: list[MonitoringAlert] = []
    targets: list[ReadingLike] = []
    for rows in groups.values():
        first = rows[0]
        reading = clinical_reading(rows)
        if context is None and _quiet(reading):
            continue
        ctx = (context or _no_session)(first) or _no_session(first)
        raised = engine.evaluate_reading(
            reading=reading,
            baseline=ctx.baseline,
            dose_started_at=ctx.dose_started_at,
            session_key=ctx.session_key,
            rules=ctx.rules if ctx.rules is not None else engine.DEFAULT_ALERT_RULES,
        )
        for alert in raised:
            kinds = _ALERT_KIND.get(alert.code, ())
            targets.append(next((r for r in rows if r.kind in kinds), first))
            message = alert.message if ctx.dose_started_at else alert.message.replace(" before dosing", "")
            found.append(
                MonitoringAlert(
                    organization_id=first.organization_id,
                    patient_id=first.patient_id,
                    chair_id=first.chair_id,
                    reading_id=0,  # set below, with one query for the batch
                    code=alert.code.value,
                    severity=alert.severity.value,
                    message=message[:300],
                    rule_source=alert.source[:300],
                    rule_confirmed=alert.confirmed,
                    observed_at=alert.observed_at,
                    dedup_key=alert.dedup_key[:120],
                    created_at=now,
                )
            )
    if not found:
        return 0
    for alert_row, reading_id in zip(found, _reading_ids(targets), strict=True):
        alert_row.reading_id = reading_id
    open_keys = set(
        MonitoringAlert.objects.filter(
            dedup_key__in={a.dedup_key for a in found}, acknowledged_at__isnull=True
        ).values_list("dedup_key", flat=True)
    )
    new: list[MonitoringAlert] = []
    for a in found:
        if a.dedup_key not in open_keys:
            open_keys.add(a.dedup_key)
            new.append(a)
    MonitoringAlert.objects.bulk_create(new)
    return len(new)
