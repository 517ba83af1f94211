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

from ketaclinic.interop.hl7.model import PatientIdentifier
from ketaclinic.monitoring.models import MonitorDevice
from ketaclinic.patients.models import Patient


@dataclass(frozen=True)
class DeviceInfo:
    id: uuid.UUID
    site_id: int | None
    chair_id: int | None
    chair_site_id: int | None
    active: bool


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

    def clear(self) -> None:
        self._asked.clear()
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
            cols = ", ".join(q(meta.get_field(n).column) for n in ("id", "patient", "site", "chair"))
            marks = ", ".join(["%s"] * len(ACTIVE_STATUSES))
            self._sessions_sql = (
                f"SELECT {cols} FROM {q(meta.db_table)} WHERE {q(meta.get_field('organization').column)} = %s "  # noqa: S608
                f"AND {q(meta.get_field('status').column)} IN ({marks}) "
                f"ORDER BY {q(meta.get_field('scheduled_at').column)} DESC"
            )
        to_uuid = meta.get_field("id").to_python
        with connection.cursor() as cursor:
            cursor.execute(self._sessions_sql, [organization_id, *[str(s) for s in ACTIVE_STATUSES]])
            fetched = cursor.fetchall()
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
            .values_list("id", "site_id", "chair_id", "chair__site_id", "active")
            .first()
        )
        info = DeviceInfo(*row) if row else None
        self._devices[key] = (now, info)
        return info

    def prefetch(self, organization_id: int, identifiers: Iterable[str], mrns: Iterable[str]) -> None:
        """Load every device and patient of a batch that is not cached (or expired) in two queries.

        Refresh-ahead: when something must be loaded, every key asked for within the last ``ttl`` whose
        entry is older than ``ttl / 2`` is reloaded with it. The working set then expires together and
        is reloaded by one query per ``ttl`` instead of a few keys (two ORM queries, ~1 ms) in nearly
        every batch when 1,000 monitors send once a second (bench/README.md "## mllp"). Entries are only
        ever fresher than without it."""
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

        def ahead(cache: dict[tuple[int, str], Any], kind: str) -> set[str]:
            return {
                key
                for (org, key), (at, _) in cache.items()
                if org == organization_id
                and now - at >= self.ttl / 2
                and now - self._asked.get((org, kind, key), -1e9) < self.ttl
            }

        want_devices = {i for i in identifiers if stale(self._devices, i)}
        if want_devices:
            want_devices |= ahead(self._devices, "d")
            for key in want_devices:
                self._devices[(organization_id, key)] = (now, None)
            rows = MonitorDevice.objects.filter(
                organization_id=organization_id, identifier__in=want_devices
            ).values_list("identifier", "id", "site_id", "chair_id", "chair__site_id", "active")
            for ident, *rest in rows:
                self._devices[(organization_id, ident)] = (now, DeviceInfo(*rest))
        want_mrns = {m for m in mrns if stale(self._patients, m)}
        if want_mrns:
            want_mrns |= ahead(self._patients, "p")
            for key in want_mrns:
                self._patients[(organization_id, key)] = (now, None)
            found = Patient.objects.filter(organization_id=organization_id, mrn__in=want_mrns).values_list(
                "mrn", "id", "site_id"
            )
            for mrn, pid, site_id in found:
                self._patients[(organization_id, mrn)] = (now, (pid, site_id))

    def remember_device(self, organization_id: int, identifier: str, info: DeviceInfo) -> None:
        self._devices[(organization_id, identifier)] = (time.monotonic(), info)

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
    device = None
    for ident in (device_identifier, location):
        if ident:
            device = c.device(organization_id, ident)
            if device is not None:
                break
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

    sessions = TreatmentSession.objects.filter(organization_id=organization_id, status__in=ACTIVE_STATUSES)
    fields = ("id", "patient_id", "site_id", "chair_id")
    if chair_id is not None:
        row = sessions.filter(chair_id=chair_id).order_by("-scheduled_at").values_list(*fields).first()
        if row is not None:
            return row  # type: ignore[return-value]
    if patient_id is not None:
        row = sessions.filter(patient_id=patient_id).order_by("-scheduled_at").values_list(*fields).first()
        if row is not None:
            return row  # type: ignore[return-value]
    return None
