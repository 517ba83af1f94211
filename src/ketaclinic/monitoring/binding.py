"""Which device, chair and patient a monitor reading belongs to.

:func:`bind_reading` is the one seam: today it maps device → chair (MonitorDevice assignment, by EUI-64 or
by the PV1-3 location text) and finds the patient by a PID-3 identifier equal to ``Patient.mrn`` in the
device's organization. When treatment sessions exist, the session app adds "chair → the session active in
that chair at ``observed_at``" here (and the patient of that session), and nothing else changes.

A PID-3 number from another hospital could equal one of our MRNs by chance; ``mrn_authorities`` (the
listener's ``--mrn-authority``) restricts matching to identifiers whose assigning authority is one of
ours (or empty).

Lookups are cached for a few seconds per listener thread (``BindingCache``): at monitor rates the same
devices and patients come back every second, and an assignment change takes effect within ``ttl``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models.options import Options

from ketaclinic.interop.hl7.model import PatientIdentifier
from ketaclinic.monitoring.models import MonitorDevice
from ketaclinic.monitoring.rows import column, fetch
from ketaclinic.monitoring.trust import Network, as_sources, networks
from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class DeviceInfo:
    id: uuid.UUID
    site_id: int | None
    chair_id: int | None
    chair_site_id: int | None
    active: bool
    allowed: tuple[Network, ...] = ()  # the networks it may send from (trust.py)

    @classmethod
    def from_row(
        cls,
        pk: uuid.UUID,
        site: int | None,
        chair: int | None,
        chair_site: int | None,
        active: Any,
        sources: Any,
    ) -> DeviceInfo:
        return cls(pk, site, chair, chair_site, bool(active), networks(as_sources(sources)))


@dataclass(frozen=True)
class Binding:
    device: DeviceInfo | None
    chair_id: int | None
    site_id: int | None
    patient_id: uuid.UUID | None
    patient_site_id: int | None
    session_id: Any = None  # filled by the session app
    reason: str = ""

    @property
    def bound(self) -> bool:
        return self.patient_id is not None


# (session id, patient id, site id, chair id)
SessionRow = tuple[uuid.UUID, uuid.UUID, int, int | None]


@dataclass
class BindingCache:
    ttl: float = 5.0
    _devices: dict[tuple[int, str], tuple[float, DeviceInfo | None]] = field(default_factory=dict)
    _patients: dict[tuple[int, str], tuple[float, tuple[uuid.UUID, int] | None]] = field(default_factory=dict)
    # Active treatment sessions of an organization, by chair and by patient: loaded once per stored batch
    # (load_sessions/forget_sessions), never kept across batches, so a session started a moment ago binds
    # the next batch's readings. Without it, bind_reading asked the database twice per message.
    _sessions: dict[int, tuple[dict[int, SessionRow], dict[uuid.UUID, SessionRow]]] = field(
        default_factory=dict
    )

    _sessions_sql: str | None = None
    # When each device ("d") or MRN ("p") key was last asked for by prefetch (for refresh-ahead).
    _asked: dict[tuple[int, str, str], float] = field(default_factory=dict)
    # (cache, organization) -> until when a refresh-ahead scan that found too little is not repeated.
    _quiet_until: dict[tuple[int, int], float] = field(default_factory=dict)

    def clear(self) -> None:
        self._asked.clear()
        self._quiet_until.clear()
        self._devices.clear()
        self._patients.clear()
        self._sessions.clear()

    def load_sessions(self, organization_id: int) -> None:
        """Read the organization's active treatment sessions (one query) for the batch being stored."""
        from ketaclinic.chairside.models import ACTIVE_STATUSES, TreatmentSession

        by_chair: dict[int, SessionRow] = {}
        by_patient: dict[uuid.UUID, SessionRow] = {}
        meta = TreatmentSession._meta
        if self._sessions_sql is None:
            # Plain SQL, built once: the ORM's query compilation cost more than the query itself, once per
            # batch. Only model metadata (quoted) goes into the text; the values are parameters.
            q = connection.ops.quote_name
            cols = ", ".join(q(column(meta, n)) for n in ("id", "patient", "site", "chair"))
            marks = ", ".join(["%s"] * len(ACTIVE_STATUSES))
            self._sessions_sql = (
                f"SELECT {cols} FROM {q(meta.db_table)} WHERE {q(column(meta, 'organization'))} = %s "  # noqa: S608
                f"AND {q(column(meta, 'status'))} IN ({marks}) "
                f"ORDER BY {q(column(meta, 'scheduled_at'))} DESC"
            )
        to_uuid = meta.get_field("id").to_python
        fetched = fetch(self._sessions_sql, [organization_id, *[str(s) for s in ACTIVE_STATUSES]])
        rows = [(to_uuid(i), to_uuid(p), s, c) for i, p, s, c in fetched]
        for row in rows:  # latest scheduled first, as _active_session's ORDER BY … LIMIT 1
            if row[3] is not None:
                by_chair.setdefault(row[3], row)
            by_patient.setdefault(row[1], row)
        self._sessions[organization_id] = (by_chair, by_patient)

    def forget_sessions(self) -> None:
        self._sessions.clear()

    def active_session(
        self, organization_id: int, chair_id: int | None, patient_id: uuid.UUID | None
    ) -> SessionRow | None:
        loaded = self._sessions.get(organization_id)
        if loaded is None:
            return _active_session(organization_id, chair_id, patient_id)
        by_chair, by_patient = loaded
        if chair_id is not None and chair_id in by_chair:
            return by_chair[chair_id]
        if patient_id is not None:
            return by_patient.get(patient_id)
        return None

    def device(self, organization_id: int, identifier: str) -> DeviceInfo | None:
        key = (organization_id, identifier)
        hit = self._devices.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        row = (
            MonitorDevice.objects.filter(organization_id=organization_id, identifier=identifier)
            .values_list("id", "site_id", "chair_id", "chair__site_id", "active", "allowed_sources")
            .first()
        )
        info = DeviceInfo.from_row(*row) if row else None
        self._devices[key] = (now, info)
        return info

    def prefetch(self, organization_id: int, identifiers: Iterable[str], mrns: Iterable[str]) -> None:
        """Load every device and patient of a batch that is not cached (or expired) in two queries.

        Refresh-ahead, a slice at a time: with each load, up to ``refresh_slice`` of the oldest entries
        that were asked for within ``ttl`` and are older than ``ttl / 2`` are reloaded too. The working
        set of 1,000 monitors that send every second is then renewed a few entries per batch and never
        expires (no batch misses), and no batch pays for reloading all of it at once, which stalled the
        ACKs for tens of milliseconds every few seconds (bench/README.md "## mllp"). Entries are only
        ever fresher than without it; one not asked for within ``ttl`` is dropped."""
        now = time.monotonic()
        identifiers = [i for i in identifiers if i]
        mrns = [m for m in mrns if m]
        for key in identifiers:
            self._asked[(organization_id, "d", key)] = now
        for key in mrns:
            self._asked[(organization_id, "p", key)] = now

        def stale(cache: dict[tuple[int, str], Any], key: str) -> bool:
            hit = cache.get((organization_id, key))
            return hit is None or now - hit[0] >= self.ttl

        want_devices = {i for i in identifiers if stale(self._devices, i)}
        want_devices |= self._due(self._devices, organization_id, "d", now)
        if want_devices:
            for key in want_devices:
                self._devices.pop((organization_id, key), None)
                self._devices[(organization_id, key)] = (now, None)  # moved to the end: newest
            for ident, *rest in self._query(_DEVICES_SQL, organization_id, want_devices):
                self._devices[(organization_id, ident)] = (now, DeviceInfo.from_row(*rest))
        want_mrns = {m for m in mrns if stale(self._patients, m)}
        want_mrns |= self._due(self._patients, organization_id, "p", now)
        if want_mrns:
            for key in want_mrns:
                self._patients.pop((organization_id, key), None)
                self._patients[(organization_id, key)] = (now, None)
            for mrn, pid, site_id in self._query(_PATIENTS_SQL, organization_id, want_mrns):
                self._patients[(organization_id, mrn)] = (now, (pid, site_id))

    refresh_slice: int = 64

    def _due(
        self, cache: dict[tuple[int, str], Any], organization_id: int, kind: str, now: float
    ) -> set[str]:
        """The oldest entries (the dict is in load order) due for a refresh; drops forgotten ones."""
        due: set[str] = set()
        forgotten: list[tuple[int, str]] = []
        first = next(iter(cache.values()), None)
        if first is None or now - first[0] < self.ttl / 2:
            return due
        # A scan that found less than a slice is not repeated for a moment (it walked up to a slice of
        # entries in every batch for nothing).
        checked = (id(cache), organization_id)
        if now < self._quiet_until.get(checked, 0.0):
            return due
        # Not a query for every key that turns due: wait for a slice's worth, unless the oldest entry
        # nears expiry (then whatever is due goes now).
        urgent = now - first[0] >= self.ttl * 0.8
        for key, (at, _) in cache.items():
            if now - at < self.ttl / 2 or len(due) >= self.refresh_slice:
                break
            if now - self._asked.get((key[0], kind, key[1]), -1e9) >= self.ttl:
                forgotten.append(key)
            elif key[0] == organization_id:
                due.add(key[1])
        for key in forgotten:
            del cache[key]
            self._asked.pop((key[0], kind, key[1]), None)
        if not urgent and len(due) < self.refresh_slice:
            self._quiet_until[checked] = now + self.ttl / 100
            return set()
        return due

    def _query(self, which: str, organization_id: int, keys: set[str]) -> list[tuple[Any, ...]]:
        """Plain SQL (the ORM's query compilation cost more than the query): devices or patients by key."""
        sql, convert = _lookup_sql(which)
        out: list[tuple[Any, ...]] = []
        ordered = sorted(keys)
        for start in range(0, len(ordered), 500):
            part = ordered[start : start + 500]
            text = sql.replace("%%KEYS%%", ", ".join(["%s"] * len(part)))
            out += [convert(row) for row in fetch(text, [organization_id, *part])]
        return out

    def patient(self, organization_id: int, mrn: str) -> tuple[uuid.UUID, int] | None:
        key = (organization_id, mrn)
        hit = self._patients.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        row = (
            Patient.objects.filter(organization_id=organization_id, mrn=mrn)
            .values_list("id", "site_id")
            .first()
        )
        found = (row[0], row[1]) if row else None
        self._patients[key] = (now, found)
        return found


_DEVICES_SQL = "devices"
_PATIENTS_SQL = "patients"
_LOOKUPS: dict[str, tuple[str, Any]] = {}


def _lookup_sql(which: str) -> tuple[str, Any]:
    """SQL text (with ``%%KEYS%%`` for the placeholders) and row converter; model metadata only."""
    found = _LOOKUPS.get(which)
    if found is not None:
        return found
    from ketaclinic.accounts.models import Chair

    q = connection.ops.quote_name
    if which == _DEVICES_SQL:
        dev, chair = MonitorDevice._meta, Chair._meta
        d, c = q(dev.db_table), q(chair.db_table)

        def col(meta: Options[Any], table: str, name: str) -> str:
            return f"{table}.{q(column(meta, name))}"

        sql = (
            f"SELECT {col(dev, d, 'identifier')}, {col(dev, d, 'id')}, {col(dev, d, 'site')}, "  # noqa: S608
            f"{col(dev, d, 'chair')}, {col(chair, c, 'site')}, {col(dev, d, 'active')}, "
            f"{col(dev, d, 'allowed_sources')} FROM {d} "
            f"LEFT OUTER JOIN {c} ON {col(dev, d, 'chair')} = {col(chair, c, 'id')} "
            f"WHERE {col(dev, d, 'organization')} = %s AND {col(dev, d, 'identifier')} IN (%%KEYS%%)"
        )
        to_uuid = dev.get_field("id").to_python

        def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
            ident, pk, site, chair_id, chair_site, active, sources = row
            return (ident, to_uuid(pk), site, chair_id, chair_site, bool(active), sources)

    else:
        pat = Patient._meta
        t = q(pat.db_table)
        sql = (
            f"SELECT {q(column(pat, 'mrn'))}, {q(column(pat, 'id'))}, "  # noqa: S608
            f"{q(column(pat, 'site'))} FROM {t} WHERE {q(column(pat, 'organization'))} = %s "
            f"AND {q(column(pat, 'mrn'))} IN (%%KEYS%%)"
        )
        to_uuid = pat.get_field("id").to_python

        def convert(row: tuple[Any, ...]) -> tuple[Any, ...]:
            return (row[0], to_uuid(row[1]), row[2])

    _LOOKUPS[which] = (sql, convert)
    return sql, convert


def _candidates(ids: Iterable[PatientIdentifier], authorities: frozenset[str] | None) -> list[str]:
    out: list[str] = []
    for pid in ids:
        value = pid.id.strip()
        if not value:
            continue
        if authorities is not None and pid.assigning_authority and pid.assigning_authority not in authorities:
            continue
        out.append(value)
    return out


def known_device(
    cache: BindingCache, organization_id: int, device_identifier: str | None, location: str | None
) -> DeviceInfo | None:
    """The registered monitor a message names: by its device identifier, else its PV1-3 location."""
    for ident in (device_identifier, location):
        if ident:
            device = cache.device(organization_id, ident)
            if device is not None:
                return device
    return None


def bind_reading(
    *,
    organization_id: int,
    device_identifier: str | None,
    location: str | None,
    patient_identifiers: Sequence[PatientIdentifier],
    observed_at: datetime | None,
    cache: BindingCache | None = None,
    mrn_authorities: frozenset[str] | None = None,
) -> Binding:
    """Bind one message's readings. ``observed_at`` is for the session app (active session at that time)."""
    c = cache or BindingCache(ttl=0)
    device = known_device(c, organization_id, device_identifier, location)
    chair_id = device.chair_id if device is not None and device.active else None
    site_id = None
    if device is not None:
        site_id = device.chair_site_id if chair_id is not None else device.site_id
    patient = None
    for mrn in _candidates(patient_identifiers, mrn_authorities):
        patient = c.patient(organization_id, mrn)
        if patient is not None:
            break
    session = c.active_session(organization_id, chair_id, patient[0] if patient else None)
    if session is not None:
        # The session active in the monitor's chair (or the identified patient's active session) owns the
        # reading: the patient is the session's patient.
        return Binding(
            device=device,
            chair_id=chair_id if chair_id is not None else session[3],
            site_id=session[2],
            patient_id=session[1],
            patient_site_id=session[2],
            session_id=session[0],
            reason="active treatment session in the chair"
            if chair_id is not None
            else "patient's active session",
        )
    if patient is not None:
        reason = "patient identifier"
    elif chair_id is not None:
        reason = "chair known, no active treatment session in it and no patient identifier matched"
    elif device is not None:
        reason = "monitor not assigned to a chair" if device.active else "monitor inactive"
    else:
        reason = "unknown monitor and no patient identifier matched"
    return Binding(
        device=device,
        chair_id=chair_id,
        site_id=site_id if site_id is not None else (patient[1] if patient else None),
        patient_id=patient[0] if patient else None,
        patient_site_id=patient[1] if patient else None,
        reason=reason,
    )


def _active_session(
    organization_id: int, chair_id: int | None, patient_id: uuid.UUID | None
) -> SessionRow | None:
    """(session id, patient id, site id, chair id) of the treatment session active in the chair, else of the
    identified patient's active session."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, TreatmentSession

    rows = (
        TreatmentSession.objects.filter(organization_id=organization_id, status__in=ACTIVE_STATUSES)
        .order_by("-scheduled_at")
        .values_list("id", "patient_id", "site_id", "chair_id")
    )
    if chair_id is not None:
        row = rows.filter(chair_id=chair_id).first()
        if row is not None:
            return row
    if patient_id is not None:
        row = rows.filter(patient_id=patient_id).first()
        if row is not None:
            return row
    return None
