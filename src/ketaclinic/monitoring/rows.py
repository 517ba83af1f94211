"""Fast insert of messages and vital readings from plain tuples.

The monitor feed writes thousands of readings a second; building a model instance per reading and
letting ``bulk_create`` prepare every field costs more than parsing the message (bench/README.md
"## mllp"). ``MessageRow`` and ``ReadingRow`` carry the columns of :class:`HL7Message` and
:class:`VitalReading`; the insert functions write them with the connection's cursor, inside the caller's
transaction. The column list is read from the model, so a renamed field fails loudly here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field
from django.db.models.options import Options

from ketaclinic.interop.hl7.bounds import implausible_value
from ketaclinic.interop.hl7.mdc import TERMS_BY_CODE, VitalKind, code_number
from ketaclinic.interop.hl7.mdc import TERMS_BY_REFID as _TERMS_BY_REFID
from ketaclinic.interop.hl7.model import ParsedMessage, TimeSource
from ketaclinic.monitoring.models import HL7Message, MonitorDevice, ReadingSource, VitalReading

# Plain strings of the enums a reading row stores (an enum member's ``.value`` is a slow attribute).
_KIND_TEXT: dict[Any, str] = {k: k.value for k in VitalKind}
_TIME_SOURCE_TEXT: dict[Any, str] = {t: t.value for t in TimeSource}
_HL7_SOURCE = str(ReadingSource.HL7.value)


def db() -> Any:
    """The default database's wrapper for this thread. The hot path takes it once per call: every
    attribute read through ``django.db.connection`` goes through a thread-local proxy, which cost more
    than the queries it ran (bench/README.md "## mllp")."""
    return connections[DEFAULT_DB_ALIAS]


def column(meta: Options[Any], name: str) -> str:
    """The database column of the model's concrete field ``name``: model metadata for the plain SQL here."""
    field = meta.get_field(name)
    assert isinstance(field, Field) and field.column is not None, f"{name} is not a concrete field"
    return field.column


_QMARK: dict[str, str] = {}


def fetch(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """Rows of one query (``%s`` placeholders; none for a statement that returns no rows) in the caller's
    transaction. On SQLite through the raw sqlite3 connection: Django's cursor wrapper (query rewriting,
    debug hooks) cost more than the small queries of a monitor batch. Values come back as the database
    stores them (UUIDs as hex text on SQLite): callers convert with the model field's ``to_python``."""
    d = db()
    if d.vendor == "sqlite":
        d.ensure_connection()
        q = _QMARK.get(sql)
        if q is None:
            q = _QMARK[sql] = sql.replace("%s", "?")
        return list(d.connection.execute(q, params).fetchall())
    with d.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description is not None else []


class ReadingRow(NamedTuple):
    organization_id: int
    site_id: int | None
    patient_id: uuid.UUID | None
    chair_id: int | None
    device_id: uuid.UUID | None
    message_id: int | None
    observed_at: datetime
    received_at: datetime
    time_source: str
    kind: str
    value: float
    unit: str
    source: str
    bound: bool
    mapping_confirmed: bool
    source_code: str
    source_unit: str
    first_of_set: bool = True
    mdc_code: int | None = None
    bp_component: bool = False
    implausible_reason: str = ""
    session_id: uuid.UUID | None = None


class MessageRow(NamedTuple):
    organization_id: int
    sender: str
    control_id: str
    digest: str
    message_type: str
    received_at: datetime
    peer: str
    raw: str
    ack_code: str
    ack_error: str
    device_feed: bool
    device_id: uuid.UUID | None
    location: str
    issues: list[str]
    device_identifier: str = ""
    source_address: str = ""
    peer_certificate: str = ""
    review_status: str = ""
    held_reason: str = ""


def _columns(model: Any, names: Sequence[str]) -> list[str]:
    by_attname = {f.attname: f.column for f in model._meta.concrete_fields}
    return [by_attname[n] for n in names]


_SQL: dict[tuple[Any, ...], str] = {}


def _insert_sql(model: Any, names: Sequence[str], rows: int = 1, returning: bool = False) -> str:
    """The INSERT text, built once per shape and database vendor (a batch of 1,000 readings used to
    rebuild it every time)."""
    key = (db().vendor, model, tuple(names), rows, returning)
    found = _SQL.get(key)
    if found is None:
        found = _SQL[key] = _build_insert_sql(model, names, rows, returning)
    return found


def _build_insert_sql(model: Any, names: Sequence[str], rows: int, returning: bool) -> str:
    q = db().ops.quote_name
    cols = ", ".join(q(c) for c in _columns(model, names))
    one = "(" + ", ".join(["%s"] * len(names)) + ")"
    values = ", ".join([one] * rows)
    tail = f" RETURNING {q(model._meta.pk.column)}" if returning else ""
    # Only model metadata (quoted) and placeholders go into the text; every value is a parameter.
    return f"INSERT INTO {q(model._meta.db_table)} ({cols}) VALUES {values}{tail}"  # noqa: S608


class _Prepared:
    """Database forms of the UUIDs and times that repeat across rows and batches (the same monitors,
    patients and seconds come back every second), kept per database vendor and bounded."""

    LIMIT = 20000

    def __init__(self) -> None:
        d = db()
        self.native_uuid = d.features.has_native_uuid_field
        self.adapt = d.ops.adapt_datetimefield_value
        self.times: dict[datetime, Any] = {}
        self.uuids: dict[uuid.UUID, Any] = {}

    def uuid(self, value: uuid.UUID | None) -> Any:
        if value is None or self.native_uuid:
            return value
        found = self.uuids.get(value)
        if found is None:
            if len(self.uuids) >= self.LIMIT:
                self.uuids.clear()
            found = self.uuids[value] = value.hex
        return found

    def time(self, value: datetime) -> Any:
        found = self.times.get(value)
        if found is None:
            if len(self.times) >= self.LIMIT:
                self.times.clear()
            found = self.times[value] = self.adapt(value)
        return found


_PREPARED: dict[str, _Prepared] = {}


def _prepared() -> _Prepared:
    vendor = db().vendor
    found = _PREPARED.get(vendor)
    if found is None:
        found = _PREPARED[vendor] = _Prepared()
    return found


# Rows per multi-row INSERT on SQLite: one statement per chunk (SQLite allows 32,766 parameters), so the
# B-tree work of a whole chunk runs in one call without the GIL; ``executemany`` would take and release
# the GIL around every row, which lets the event loop thread stall the writer (bench/README.md "## mllp").
SQLITE_CHUNK_ROWS = 1000


def _sqlite_insert(model: Any, names: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """Multi-row INSERTs on the raw SQLite connection (``?`` parameters, no query rewriting)."""
    raw = db().connection
    for start in range(0, len(rows), SQLITE_CHUNK_ROWS):
        part = rows[start : start + SQLITE_CHUNK_ROWS]
        key = ("sqlite-qmark", model, tuple(names), len(part))
        sql = _SQL.get(key)
        if sql is None:
            sql = _SQL[key] = _build_insert_sql(model, names, len(part), False).replace("%s", "?")
        raw.execute(sql, [v for row in part for v in row])


def reading_params(rows: Sequence[ReadingRow]) -> list[tuple[Any, ...]]:
    """The database parameters of ``rows``, in :class:`ReadingRow` order (``message_id`` at
    :data:`READING_MESSAGE_ID`). The feed builds them before it takes the write lock."""
    p = _prepared()
    uid, tm = p.uuid, p.time
    return [
        (o, site, uid(patient), chair, uid(device), msg, tm(obs), tm(rec), *rest, uid(session))
        for (o, site, patient, chair, device, msg, obs, rec, *rest, session) in rows
    ]


READING_MESSAGE_ID = ReadingRow._fields.index("message_id")


def insert_readings(rows: Sequence[ReadingRow]) -> None:
    """Insert ``rows`` (ids are not returned: look a row up by message and kind when needed)."""
    if rows:
        insert_reading_params(reading_params(rows))


def insert_reading_params(data: Sequence[tuple[Any, ...]]) -> None:
    """Insert readings given as :func:`reading_params` tuples, inside the caller's transaction."""
    if not data:
        return
    d = db()
    if d.vendor == "sqlite":
        d.ensure_connection()
        _sqlite_insert(VitalReading, ReadingRow._fields, data)
        return
    with d.cursor() as cursor:
        cursor.executemany(_insert_sql(VitalReading, ReadingRow._fields), data)


def message_params(m: MessageRow) -> tuple[Any, ...]:
    """The database parameters of one message row (without its id), in :class:`MessageRow` order."""
    p = _prepared()
    return (
        m.organization_id,
        m.sender,
        m.control_id,
        m.digest,
        m.message_type,
        p.time(m.received_at),
        m.peer,
        m.raw,
        m.ack_code,
        m.ack_error,
        m.device_feed,
        p.uuid(m.device_id),
        m.location,
        json.dumps(m.issues) if m.issues else "[]",
        m.device_identifier,
        m.source_address,
        m.peer_certificate,
        m.review_status,
        m.held_reason,
    )


def insert_messages(rows: Sequence[MessageRow], chunk: int = 500) -> list[int]:
    """Insert ``rows`` and return their ids in order (see :func:`insert_message_params`)."""
    return insert_message_params([message_params(m) for m in rows], chunk)


def insert_message_params(params: Sequence[tuple[Any, ...]], chunk: int = 500) -> list[int]:
    """Insert messages given as :func:`message_params` tuples and return their ids in order.

    SQLite: the ids are given explicitly, following the table's AUTOINCREMENT counter, inside the
    caller's write transaction (which holds the database's only write lock, so nobody else can take
    them); this avoids reading a RETURNING row per message. PostgreSQL: multi-row INSERT … RETURNING, as
    ``bulk_create`` does."""
    if not params:
        return []
    d = db()
    if d.vendor == "sqlite":
        if not d.in_atomic_block:
            raise RuntimeError("insert_messages needs the caller's transaction (it reserves ids)")
        d.ensure_connection()
        raw = d.connection
        table = HL7Message._meta.db_table
        # The table name (model metadata) is the only text put in; it is also the parameter.
        top = f'coalesce((SELECT max("id") FROM "{table}"), 0))'  # noqa: S608
        sql = "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = ?), 0), " + top  # noqa: S608
        first = int(raw.execute(sql, [table]).fetchone()[0]) + 1
        ids = list(range(first, first + len(params)))
        _sqlite_insert(
            HL7Message,
            ("id", *MessageRow._fields),
            [(i, *row) for i, row in zip(ids, params, strict=True)],
        )
        return ids
    out: list[int] = []
    with d.cursor() as cursor:
        for start in range(0, len(params), chunk):
            part = params[start : start + chunk]
            flat: list[Any] = [v for row in part for v in row]
            cursor.execute(_insert_sql(HL7Message, MessageRow._fields, len(part), returning=True), flat)
            out += [int(r[0]) for r in cursor.fetchall()]
    if len(out) != len(params):
        raise RuntimeError("the database did not return an id for every message inserted")
    return out


def touch_devices(device_ids: Iterable[uuid.UUID], at: datetime) -> None:
    """Set ``MonitorDevice.last_seen_at`` of these monitors (plain SQL: one statement per batch)."""
    ids = [_prepared().uuid(i) for i in device_ids]
    if not ids:
        return
    meta = MonitorDevice._meta
    q = db().ops.quote_name
    # Only model metadata (quoted) goes into the text; every value is a parameter.
    sql = (
        f"UPDATE {q(meta.db_table)} SET {q(column(meta, 'last_seen_at'))} = %s "  # noqa: S608
        f"WHERE {q(meta.pk.column)} IN ({', '.join(['%s'] * len(ids))})"
    )
    fetch(sql, [_prepared().time(at), *ids])


def stored_keys(
    organization_id: int, control_ids: Iterable[str], chunk: int = 900
) -> list[tuple[str, str, str]]:
    """(sender, MSH-10, digest) of the stored messages with one of ``control_ids``: the repeat check of a
    batch, in plain SQL (the ORM's query compilation cost more than the query, once per batch)."""
    meta = HL7Message._meta
    sql = _STORED_KEYS.get(db().vendor)
    if sql is None:
        q = db().ops.quote_name
        cols = ", ".join(q(column(meta, n)) for n in ("sender", "control_id", "digest"))
        table, org_col, cid_col = (
            q(meta.db_table),
            q(column(meta, "organization")),
            q(column(meta, "control_id")),
        )
        # Only model metadata (quoted) goes into the text; every value is a parameter.
        sql = _STORED_KEYS[db().vendor] = (
            f"SELECT {cols} FROM {table} WHERE {org_col} = %s AND {cid_col} IN (%%KEYS%%)"  # noqa: S608
        )
    ids = list(control_ids)
    out: list[tuple[str, str, str]] = []
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        text = sql.replace("%%KEYS%%", ", ".join(["%s"] * len(part)))
        out += [(str(a), str(b), str(c)) for a, b, c in fetch(text, [organization_id, *part])]
    return out


_STORED_KEYS: dict[str, str] = {}


def reading_rows(
    parsed: ParsedMessage,
    *,
    organization_id: int,
    site_id: int | None,
    patient_id: Any,
    chair_id: int | None,
    device_id: Any,
    received: datetime,
    bound: bool,
    zone: tzinfo,
    session_id: Any = None,
) -> list[ReadingRow]:
    """A message's reading rows (``message_id`` left ``None``): one per observation, a device's local
    time read in ``zone``, the first row of each observation time leading its reading set, the first
    blood-pressure value of each time and measuring site leading its panel (the others ``bp_component``),
    an implausible value marked with the reason (bounds.implausible_value). Used for the feed and for a
    held message accepted after review (review.py)."""
    rows: list[ReadingRow] = []
    times: set[datetime] = set()
    observed_times: list[datetime] = []
    for obs in parsed.observations:
        observed = obs.observed_at
        if observed is not None and observed.tzinfo is None:
            observed = observed.replace(tzinfo=zone)  # = obs.observed_at_in(zone)
        observed_times.append(received if observed is None else observed)
    leads = panel_leads(
        [(_KIND_TEXT[o.kind], t, o.site) for o, t in zip(parsed.observations, observed_times, strict=True)]
    )
    for i, (obs, observed) in enumerate(zip(parsed.observations, observed_times, strict=True)):
        time_source = "received" if obs.observed_at is None else _TIME_SOURCE_TEXT[obs.time_source]
        kind = _KIND_TEXT[obs.kind]
        rows.append(
            ReadingRow(
                organization_id,
                site_id,
                patient_id,
                chair_id,
                device_id,
                None,
                observed,
                received,
                time_source,
                kind,
                obs.value,
                obs.unit,
                _HL7_SOURCE,
                bound,
                obs.confirmed,
                obs.source_code[:120],
                obs.source_unit[:120],
                observed not in times,
                obs.mdc_code,
                kind in BP_KINDS and i not in leads,
                _implausible(obs.kind, obs.value),
                session_id,
            )
        )
        times.add(observed)
    return rows


BP_KINDS: frozenset[str] = frozenset({VitalKind.SBP.value, VitalKind.DBP.value, VitalKind.MAP.value})
# Which value of a blood-pressure group leads its FHIR resource: the systolic, else the diastolic (a panel,
# 85354-9), else the mean, which alone is its own Observation (8478-0; resources/monitor_readings.py).
_LEAD_ORDER: dict[str, int] = {VitalKind.SBP.value: 0, VitalKind.DBP.value: 1, VitalKind.MAP.value: 2}


def panel_leads(values: Sequence[tuple[str, datetime, str | None]]) -> set[int]:
    """Indexes of the values (kind, time, measuring site) that lead their blood-pressure panel: one per time
    and site (NIBP and arterial pressures of one message are two panels). Non-BP values are not listed."""
    best: dict[tuple[datetime, str | None], tuple[int, int]] = {}
    for i, (kind, observed, site) in enumerate(values):
        rank = _LEAD_ORDER.get(kind)
        if rank is None:
            continue
        key = (observed, site)
        if key not in best or rank < best[key][0]:
            best[key] = (rank, i)
    return {i for _rank, i in best.values()}


def _implausible(kind: VitalKind, value: float) -> str:
    return (implausible_value(kind, value) or "")[:200]


def mdc_of(source_code: str) -> int | None:
    """The MDC code of an OBX-3 as sent (``150456^MDC_PULS_OXIM_SAT_O2^MDC``, MDIL hex, or a REFID only)."""
    parts = [*source_code.split("^"), "", "", ""]
    number = code_number(parts[0], parts[2])
    if number is not None and number in TERMS_BY_CODE:
        return number
    term = _TERMS_BY_REFID.get(parts[1].strip())
    return term.code if term is not None else None


def annotate_stored(rows: list[Any]) -> list[Any]:
    """Fill ``mdc_code``, ``bp_component`` and ``implausible_reason`` of stored rows of one reading set (one
    message and time, in id order) as :func:`reading_rows` fills new ones (migration 0006)."""
    sites = []
    for row in rows:
        row.mdc_code = row.mdc_code or mdc_of(row.source_code or "")
        term = TERMS_BY_CODE.get(row.mdc_code) if row.mdc_code is not None else None
        sites.append(term.site if term else None)
    leads = panel_leads([(r.kind, r.observed_at, site) for r, site in zip(rows, sites, strict=True)])
    for i, row in enumerate(rows):
        row.bp_component = row.kind in BP_KINDS and i not in leads
        try:
            row.implausible_reason = _implausible(VitalKind(row.kind), row.value)
        except ValueError:
            row.implausible_reason = ""
    return rows
