"""Store a batch of monitor messages in one transaction and say how to acknowledge each.

The listener (listener.py) hands whole batches of frames to :meth:`FeedStore.process` on its writer
thread; the ACK for a message is built only after the transaction holding its readings has committed
(interop.md §3.4: ACK AA only after commit). One failing message does not fail its neighbours: when the
batch transaction fails, the messages are retried one transaction each, and a message that still fails
is answered AR 207 (application internal error) so the monitor sends it again.

Repeats: the key is (sender = MSH-3[@MSH-4], MSH-10, SHA-256 of the content with CR line ends). A
message sent again (same key) is acknowledged again and stored once. A *different* message that reuses
an MSH-10 (some devices restart their counter; the reference samples all use MSGID1234) is stored and
flagged in ``HL7Message.issues`` rather than dropped, because dropping it would lose readings.

Audit: every HL7Message row is the record of one write (sender, peer, time, content). The tamper-evident
audit chain gets one entry per second of feed (``audit_every``) under a service account, written in the
same transaction as the batch it closes and naming the HL7Message id range it covers; after a crash the
next entry starts at the end of the last committed one. One chain append per batch costs ~1.7 ms, which
at low batch sizes is most of the ACK latency budget (bench/README.md "## mllp"). A nurse attaching
unbound readings to a patient is audited per patient (services.py).

Times: an observation time without a UTC offset is the device's local time, read in the zone of the
chair's site, else the monitor's site, else the patient's site, else the listener's ``--site``, else UTC
(design.md: aware UTC in storage). A message with no time at all gets its receipt time
(``time_source="received"``). A time outside the plausible window (interop/hl7/bounds.py: not before
``KETACLINIC_HL7_EARLIEST_YEAR``, not more than ``KETACLINIC_HL7_CLOCK_SKEW_MIN`` after receipt) makes
the message an AE naming the field: stored as received, without readings (issue 15 H2).

Limits (bounds.py, checked in prepare.py): a message over the size, OBX or reading limit is answered AE
and nothing of it is stored (issue 15 H4).

Senders (trust.py, issue 15 M2): readings are stored and charted only for a registered monitor sending
from one of its allowed addresses. Any other message with readings is stored *held* — its text only, no
reading rows, nothing forwarded to a session, no alert — and acknowledged AA (it is safely kept) until an
administrator accepts or discards it (services.release_held / discard_held). At most
``KETACLINIC_HL7_REVIEW_QUEUE_MAX`` messages wait; past that they are refused AR and not stored, so an
unknown sender cannot fill the database. Monitors are no longer registered by the feed on first sight.
"""

from __future__ import annotations

import logging
import time
import zoneinfo
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.utils import timezone

from ketaclinic.accounts.models import Organization, Site, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.interop.hl7.ack import AckError, build_aa, build_ack, errors_from, new_control_id
from ketaclinic.interop.hl7.bounds import (
    FeedLimits,
    implausible_time,
    implausible_value,
    time_error,
    time_location,
)
from ketaclinic.interop.hl7.errors import AckCode, ErrorLocation, HL7ErrorCode, HL7ParseError, Severity
from ketaclinic.interop.hl7.mllp import encode_frame
from ketaclinic.interop.hl7.model import ParsedMessage, TimeSource, is_device_feed
from ketaclinic.interop.hl7.parse import python_codec
from ketaclinic.monitoring.alerts import evaluate_alerts, raises_nothing
from ketaclinic.monitoring.binding import BindingCache, DeviceInfo, bind_reading, known_device
from ketaclinic.monitoring.models import HL7Message, ReviewStatus
from ketaclinic.monitoring.prepare import Inbound, Outcome, Prepared, prepare
from ketaclinic.monitoring.rows import (
    READING_MESSAGE_ID,
    MessageRow,
    ReadingRow,
    insert_message_params,
    insert_reading_params,
    message_params,
    reading_params,
    reading_rows,
    stored_keys,
    touch_devices,
)
from ketaclinic.monitoring.trust import address_allowed, feed_limits

log = logging.getLogger(__name__)
AUDIT_CATEGORY = "monitoring"
RAW_LIMIT = 1 << 20  # characters of a message kept in HL7Message.raw
LAST_SEEN_EVERY = 30.0  # seconds between updates of MonitorDevice.last_seen_at


@dataclass
class _Counts:
    messages: int = 0
    readings: int = 0
    bound: int = 0
    alerts: int = 0

    def add(self, messages: int, readings: int, bound: int, alerts: int) -> None:
        self.messages += messages
        self.readings += readings
        self.bound += bound
        self.alerts += alerts


def implausible_warnings(parsed: ParsedMessage | None) -> list[AckError]:
    """One warning (ERR severity W, code 0 "message accepted") per implausible value of a device feed,
    naming its OBX-5: the value is stored and marked, and the monitor's log says which field was doubted."""
    if parsed is None or not parsed.observations:
        return []
    out = []
    for obs in parsed.observations:
        why = implausible_value(obs.kind, obs.value)
        if why is not None:
            out.append(
                AckError(
                    HL7ErrorCode.MESSAGE_ACCEPTED,
                    f"OBX-5 of OBX {obs.obx_sequence} ({obs.refid}): {why}; stored and marked implausible, "
                    "not charted. Check the monitor and its sensor.",
                    ErrorLocation("OBX", obs.obx_sequence, 5),
                    Severity.WARNING,
                )
            )
    return out


def _reused(p: Prepared) -> str:
    return (
        f"MSH-10 {p.control_id} from {p.sender} was used before for a different message; "
        "stored as a separate message."
    )


@dataclass
class _Planned:
    """One message of a batch as worked out before the write lock (FeedStore._plan)."""

    prep: Prepared
    message: MessageRow
    message_params: tuple[Any, ...]
    readings: list[ReadingRow]  # message_id left None until the message is stored
    reading_params: list[tuple[Any, ...]]
    session_id: Any  # the treatment session the readings belong to, or None
    evaluate: bool  # the alert engine must see the readings (bound, and not known to be quiet)

    def mark_reused(self) -> None:
        """A stored message has this MSH-10 with different content: stored anyway, flagged."""
        self.prep.issues.append(_reused(self.prep))
        self.message_params = message_params(self.message)


def _last_audited(organization_id: int) -> int:
    """The last HL7Message id covered by a committed feed audit entry (0 when none)."""
    from ketaclinic.audit.models import AuditEntry

    last = (
        AuditEntry.objects.filter(
            organization_id=organization_id, category=AUDIT_CATEGORY, object_type="HL7Message", client="hl7"
        )
        .order_by("-seq")
        .values_list("object_id", flat=True)
        .first()
    )
    return int(last) if last and last.isdigit() else 0


class FeedStore:
    """Stores batches for one organization. One instance per writer thread (it caches lookups)."""

    def __init__(
        self,
        *,
        organization: Organization,
        default_site: Site | None = None,
        mrn_authorities: frozenset[str] | None = None,
        run_alerts: bool = True,
        cache_ttl: float = 5.0,
        audit_every: float = 1.0,
        write_lock: Callable[[], AbstractContextManager[Any]] = nullcontext,
        label: str = "",
        limits: FeedLimits | None = None,
        review_queue_max: int | None = None,
    ) -> None:
        self.organization = organization
        # What one message may carry and when its times are plausible (KETACLINIC_HL7_*, trust.feed_limits).
        self.limits = limits if limits is not None else feed_limits()
        self.review_queue_max = (
            review_queue_max if review_queue_max is not None else settings.KETACLINIC_HL7_REVIEW_QUEUE_MAX
        )
        self._held_now: int | None = None  # messages waiting for review, counted once per batch
        self.default_site = default_site
        self.mrn_authorities = mrn_authorities
        self.run_alerts = run_alerts
        self.cache = BindingCache(ttl=cache_ttl)
        self._zones: dict[int, tzinfo] = {}
        self._service_user: User | None = None
        self.audit_every = audit_every
        # Held around each write transaction: several listener processes on one SQLite file take turns
        # through it (listener.ProcessLock) instead of polling SQLite's busy handler.
        self.write_lock = write_lock
        self.label = label  # "listener 2 of 4" in the audit entries when there are several processes
        self._audited_upto: int | None = None
        self._last_audit = -1e9
        self._pending_audit = _Counts()
        self._last_stored = 0
        self._last_seen: dict[Any, float] = {}

    # ------------------------------------------------------------------ public

    def process(self, items: Sequence[Inbound]) -> list[Outcome]:
        return self.process_prepared([prepare(item, self.limits) for item in items])

    def process_prepared(self, preps: Sequence[Prepared]) -> list[Outcome]:
        """Store messages already run through :func:`prepare` (here or in a worker process).

        The batch is planned first — bindings, rows, which messages need the alert engine — with reads
        only and no lock; the write lock and the transaction then cover just the repeat check, the
        inserts and what must see the stored rows. With several listener processes one plans while
        another writes (bench/README.md "## mllp")."""
        issues_before = [len(p.issues) for p in preps]
        for p in preps:
            p.unpack()
        try:
            self._store(preps)
        except Exception:
            log.exception("storing a batch of %d message(s) failed; retrying one by one", len(preps))
            self._recover()
            for p, n in zip(preps, issues_before, strict=True):
                p.duplicate = p.stored = False
                p.readings = 0
                del p.issues[n:]
                try:
                    self._store([p])
                except Exception as exc:
                    log.exception("storing message %r failed", p.control_id)
                    self._recover()
                    p.stored, p.readings = False, 0
                    p.internal_error = (
                        f"The message could not be stored ({type(exc).__name__}); send it again."
                    )
        return [self._outcome(p) for p in preps]

    # ------------------------------------------------------------------ helpers

    def _recover(self) -> None:
        self.cache.clear()
        try:
            close_old_connections()
            if connection.connection is not None and not connection.is_usable():
                connection.close()
        except Exception:
            connection.close()

    def _zone(self, site_id: int | None) -> tzinfo:
        sid = site_id if site_id is not None else (self.default_site.pk if self.default_site else None)
        if sid is None:
            return UTC
        if sid not in self._zones:
            name = Site.objects.filter(pk=sid).values_list("time_zone", flat=True).first() or "UTC"
            self._zones[sid] = zoneinfo.ZoneInfo(name)
        return self._zones[sid]

    def service_user(self) -> User:
        if self._service_user is None:
            username = f"hl7-listener-{self.organization.pk}"
            user, _ = User.objects.get_or_create(
                username=username,
                defaults={
                    "organization": self.organization,
                    "is_service": True,
                    "first_name": "Monitor feed",
                    "is_active": False,  # a system account cannot sign in
                },
            )
            self._service_user = user
        return self._service_user

    def _outcome(self, p: Prepared) -> Outcome:
        now = timezone.now()
        cid = new_control_id()
        if p.internal_error:
            err = AckError(HL7ErrorCode.APPLICATION_INTERNAL_ERROR, p.internal_error)
            text = build_ack(p.header, code=AckCode.REJECT, errors=[err], control_id=cid, now=now)
            code = AckCode.REJECT
        elif p.error is not None:
            code = p.error.ack_code
            text = build_ack(p.header, code=code, errors=errors_from(p.error), control_id=cid, now=now)
        elif p.header is not None and (warnings := implausible_warnings(p.parsed)):
            code = AckCode.ACCEPT
            text = build_ack(p.header, errors=warnings, control_id=cid, now=now)
        elif p.header is not None:
            code = AckCode.ACCEPT
            text = build_aa(p.header, control_id=cid, now=now)  # = build_ack, from a cached template
        else:
            code = AckCode.ACCEPT
            text = build_ack(p.header, control_id=cid, now=now)
        codec = python_codec(p.header.charset if p.header else "")
        # In the sender's character set (MSH-18), so that MSA-2 comes back byte for byte; a character of
        # our own ERR text that the set lacks (an ellipsis in 8859/1) becomes "?". Escaping keeps the MLLP
        # block characters out of the text (er7.escape).
        try:
            frame = encode_frame(text.encode(codec, "replace"))
        except ValueError:  # never expected (escaped); an answer all the same, for this message alone
            log.exception("ACK for %r could not be framed", p.control_id)
            err = AckError(HL7ErrorCode.APPLICATION_INTERNAL_ERROR, "The message could not be answered.")
            code = AckCode.REJECT
            frame = encode_frame(build_ack(None, code=code, errors=[err], control_id=cid, now=now))
        return Outcome(frame, code, p.control_id, p.stored, p.duplicate, p.readings)

    # ------------------------------------------------------------------ the transaction

    def _store(self, preps: Sequence[Prepared]) -> None:
        now = timezone.now()
        plan = self._plan(preps)
        with self.write_lock(), transaction.atomic():
            self._write(now, plan)

    def _plan(self, preps: Sequence[Prepared]) -> list[_Planned]:
        """Everything about a batch that needs no write: repeats within the batch, the time window, who
        sent it (a registered monitor from an allowed address, else held for review), the message and
        reading rows (with the message id left open), bindings and sessions, which messages the alert
        engine must see."""
        org = self.organization.pk
        plan: list[_Planned] = []
        storable = [p for p in preps if not p.refused]
        parsed = [p.parsed for p in storable if p.parsed is not None]
        self.cache.load_sessions(org)  # one query per batch, not two per message
        self._held_now = None
        try:
            self.cache.prefetch(
                org,
                [i for m in parsed for i in (m.device_id, m.location.text if m.location else None) if i],
                [pid.id.strip() for m in parsed for pid in m.patient_ids],
            )
            seen: set[tuple[str, str, str]] = set()
            used: set[tuple[str, str]] = set()
            for p in storable:
                if p.key in seen:
                    p.duplicate = True
                    continue
                if (p.sender, p.control_id) in used and p.control_id:
                    p.issues.append(_reused(p))
                seen.add(p.key)
                used.add((p.sender, p.control_id))
                planned = self._plan_one(p)
                if planned is not None:
                    plan.append(planned)
        finally:
            self.cache.forget_sessions()
        return plan

    def _plan_one(self, p: Prepared) -> _Planned | None:
        """One message's rows; None when it is refused without being stored (the review queue is full)."""
        parsed = p.parsed
        feed = parsed is not None and is_device_feed(parsed)
        device = None
        if parsed is not None and feed:
            location = parsed.location.text if parsed.location else None
            device = known_device(self.cache, self.organization.pk, parsed.device_id, location)
        if parsed is not None and p.error is None:
            site = (device.chair_site_id or device.site_id) if device is not None else None
            p.error = self._time_error(p, parsed, self._zone(site))
        held = ""
        if parsed is not None and feed and p.error is None and parsed.observations:
            held = self._untrusted(p, parsed, device)
            if held and not self._queue_has_room():
                p.error, p.refused = self._queue_full(p), True
                log.warning("monitor feed: review queue full; refused %s from %s", p.control_id, p.item.peer)
                return None
        if parsed is not None and feed and p.error is None:
            p.issues += [w.message for w in implausible_warnings(parsed)]
        msg = self._message_row(p, device, held)
        readings, session_id = ([], None) if held or p.error is not None else self._reading_rows(p, msg)
        bound = bool(readings) and readings[0].bound
        return _Planned(
            p,
            msg,
            message_params(msg),
            readings,
            reading_params(readings),
            session_id,
            bound and (session_id is not None or not raises_nothing(readings)),
        )

    def _time_error(self, p: Prepared, parsed: ParsedMessage, zone: tzinfo) -> HL7ParseError | None:
        """The AE for the first time in the message outside the plausible window (bounds.py): MSH-7 and
        each observation's time, a device's local time read in its site's zone. Each distinct time is
        judged once (a message repeats one time in every OBX)."""
        received, limits = p.item.received_at, self.limits
        checked: set[datetime] = set()
        header_time = parsed.header.timestamp
        times = [(header_time, TimeSource.MSH, 1)] if header_time is not None else []
        times += [
            (o.observed_at, o.time_source, o.obx_sequence) for o in parsed.observations if o.observed_at
        ]
        for moment, source, sequence in times:
            if moment in checked:
                continue
            checked.add(moment)
            aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)
            why = implausible_time(aware, received, limits)
            if why is not None:
                location = time_location(source, sequence)
                return time_error(aware, why, location=location, header=parsed.header)
        return None

    def _untrusted(self, p: Prepared, parsed: ParsedMessage, device: DeviceInfo | None) -> str:
        """Why the message's readings must wait for review (trust.py), or "" when its sender is trusted:
        a registered monitor, sending from one of its allowed addresses."""
        named = parsed.device_id or (parsed.location.text if parsed.location else "") or "no monitor named"
        address = p.item.address
        if device is None:
            where = f" from {address}" if address else ""
            return f"Unknown monitor ({named}){where}: not registered on the Bedside monitors page."
        if address is not None and not address_allowed(address, device.allowed):
            return f"Monitor {named} sent from {address}, which is not one of its allowed addresses."
        return ""

    def _queue_has_room(self) -> bool:
        if self._held_now is None:
            self._held_now = HL7Message.objects.filter(
                organization_id=self.organization.pk, review_status=ReviewStatus.HELD
            ).count()
        if self._held_now >= self.review_queue_max:
            return False
        self._held_now += 1
        return True

    def _queue_full(self, p: Prepared) -> HL7ParseError:
        return HL7ParseError(
            HL7ErrorCode.APPLICATION_INTERNAL_ERROR,
            f"This monitor or its address is not registered, and {self.review_queue_max} messages from "
            "unregistered senders already wait for review; the message was not stored. Ask the clinic to "
            "register the monitor, then send it again.",
            fields={"MSH-3": "sender not registered; review queue full"},
            header=p.header,
        )

    def _write(self, now: datetime, plan: list[_Planned]) -> None:
        """The batch's writes, in the caller's transaction under the write lock."""
        if plan:
            existing: set[tuple[str, str, str]] = set()
            used: set[tuple[str, str]] = set()
            for sender, cid, digest in stored_keys(self.organization.pk, {e.prep.control_id for e in plan}):
                existing.add((sender, cid, digest))
                used.add((sender, cid))
            # Repeats of stored messages are acknowledged, not stored again.
            for e in plan:
                if e.prep.key in existing:
                    e.prep.duplicate = True
                elif (e.prep.sender, e.prep.control_id) in used and e.prep.control_id:
                    e.mark_reused()
            plan = [e for e in plan if not e.prep.duplicate]
        if not plan:
            return
        message_ids = insert_message_params([e.message_params for e in plan])
        at = READING_MESSAGE_ID
        insert_reading_params(
            [
                (*r[:at], msg_id, *r[at + 1 :])
                for e, msg_id in zip(plan, message_ids, strict=True)
                for r in e.reading_params
            ]
        )
        for e in plan:
            e.prep.stored = True
            e.prep.readings = len(e.readings)
        # "Last message" on the monitors page: updated at most every LAST_SEEN_EVERY seconds per monitor,
        # not in every batch (one UPDATE less per commit).
        mono = time.monotonic()
        devices = {
            e.message.device_id
            for e in plan
            if e.message.device_id is not None and not e.message.review_status
        }
        due = {d for d in devices if mono - self._last_seen.get(d, -1e9) >= LAST_SEEN_EVERY}
        if due:
            touch_devices(due, now)
            transaction.on_commit(lambda: self._last_seen.update(dict.fromkeys(due, mono)))
        forwarded = self._forward_to_sessions(
            [e.prep for e in plan], message_ids, [e.session_id for e in plan]
        )
        # Readings of a treatment session are judged by the session's alert engine (with its baseline and
        # dose time); the monitor-level rules cover the rest. Messages whose values raise nothing were
        # found in the plan; only the others go through the engine here.
        bound = 0
        judge: list[ReadingRow] = []
        for e, msg_id in zip(plan, message_ids, strict=True):
            if not e.readings or not e.readings[0].bound or msg_id in forwarded:
                continue
            bound += len(e.readings)
            if e.evaluate:
                judge += [r._replace(message_id=msg_id) for r in e.readings]
        alerts = evaluate_alerts(judge, now=now) if self.run_alerts and judge else 0
        batch = _Counts(len(message_ids), sum(len(e.readings) for e in plan), bound, alerts)
        last_id = message_ids[-1]
        mono = time.monotonic()
        wrote = mono - self._last_audit >= self.audit_every
        if wrote:
            self._write_audit(last_id, batch)
        # Bookkeeping only once the transaction commits (a rolled-back batch is retried and counted again).
        transaction.on_commit(lambda: self._committed(batch, last_id, mono if wrote else None))

    def _committed(self, batch: _Counts, last_id: int, audited_at: float | None) -> None:
        self._last_stored = max(self._last_stored, last_id)
        if audited_at is None:
            self._pending_audit.add(batch.messages, batch.readings, batch.bound, batch.alerts)
        else:
            self._audited_upto, self._last_audit, self._pending_audit = last_id, audited_at, _Counts()

    def _write_audit(self, last_id: int, batch: _Counts | None = None) -> None:
        """One chained audit entry per ``audit_every`` seconds, in the transaction of the batch that
        writes it, naming the HL7Message id range it covers (the messages are the per-message record).
        After a crash the next entry starts where the last committed one ended, so no range is missed."""
        if self._audited_upto is None:
            self._audited_upto = _last_audited(self.organization.pk)
        c = _Counts()
        for part in (self._pending_audit, batch or _Counts()):
            c.add(part.messages, part.readings, part.bound, part.alerts)
        audit.record(
            user=self.service_user(),
            action=Action.ADD,
            category=AUDIT_CATEGORY,
            organization=self.organization,
            object_type="HL7Message",
            object_id=last_id,
            client="hl7",
            detail=(
                f"monitor feed{f' ({self.label})' if self.label else ''}: messages "
                f"{self._audited_upto + 1}..{last_id}; this listener since its last "
                f"entry: {c.messages} message(s), {c.readings} reading(s), {c.bound} bound to a patient, "
                f"{c.alerts} alert(s)"
            ),
        )

    def flush_audit(self) -> None:
        """Write the audit entry for messages stored since the last one (the writer calls this when idle)."""
        if self._pending_audit.messages == 0:
            return
        last_id, mono = self._last_stored, time.monotonic()
        try:
            with self.write_lock(), transaction.atomic():
                self._write_audit(last_id)
                transaction.on_commit(lambda: self._committed(_Counts(), last_id, mono))
        except Exception:
            log.exception("writing the monitor feed audit entry failed; will retry")
            self._recover()

    def _message_row(self, p: Prepared, device: DeviceInfo | None, held: str) -> MessageRow:
        """The message's row: ``held`` (the reason) when it waits for review instead of being read."""
        parsed = p.parsed
        feed = parsed is not None and is_device_feed(parsed)
        error_text = ""
        if p.error is not None:
            error_text = str(p.error)
        return MessageRow(
            organization_id=self.organization.pk,
            sender=p.sender[:250],
            control_id=p.control_id[:199],
            digest=p.digest,
            message_type=str(p.header.message_type)[:30] if p.header else "",
            received_at=p.item.received_at,
            peer=p.item.peer[:64],
            raw=p.text[:RAW_LIMIT],
            ack_code=(p.error.ack_code if p.error else AckCode.ACCEPT).value,
            ack_error=error_text,
            device_feed=feed,
            device_id=device.id if device is not None else None,
            location=(parsed.location.text[:200] if parsed and parsed.location else ""),
            issues=p.issues,
            device_identifier=(parsed.device_id or "")[:120] if parsed is not None else "",
            source_address=(p.item.address or "")[:45],
            peer_certificate=p.item.certificate[:200],
            review_status=ReviewStatus.HELD.value if held else "",
            held_reason=held[:300],
        )

    def _forward_to_sessions(
        self, owners: Sequence[Prepared], message_ids: Sequence[int], sessions: Sequence[Any]
    ) -> set[int]:
        """Put each session-bound message's vitals on its treatment session as one chairside reading per
        observation time (alerts, live board, session report, FHIR follow). Returns the forwarded message ids.
        A reading the session refuses (implausible, session closed) stays in the monitor table only."""
        from ketaclinic.chairside import services as chairside
        from ketaclinic.chairside.models import TreatmentSession
        from ketaclinic.clinical.vitals import VitalReading

        forwarded: set[int] = set()
        fields = {
            "sbp": "sbp_mmhg",
            "dbp": "dbp_mmhg",
            "hr": "hr_bpm",
            "spo2": "spo2_pct",
            "rr": "rr_per_min",
        }
        for p, msg_id, session_id in zip(owners, message_ids, sessions, strict=True):
            if session_id is None or p.parsed is None:
                continue
            session = TreatmentSession.objects.select_related("patient", "site").filter(pk=session_id).first()
            if session is None:
                continue
            zone = self._zone(session.site_id)
            by_time: dict[datetime, dict[str, Any]] = {}
            for obs in p.parsed.observations:
                observed = obs.observed_at_in(zone) or p.item.received_at
                values = by_time.setdefault(observed, {})
                if implausible_value(obs.kind, obs.value) is not None:
                    # Not a measurement: kept (marked) in the monitor table, never put on the session chart;
                    # the set's other values still go (the whole set used to be refused for it).
                    continue
                kind = obs.kind.value
                if kind in fields:
                    values[fields[kind]] = round(obs.value)
                elif kind == "pulse" and "hr_bpm" not in values:
                    values["hr_bpm"] = round(obs.value)
                elif kind == "temp_c":
                    values["temp_c"] = round(obs.value, 1)
            for observed, values in sorted(by_time.items()):
                if not values:
                    continue
                try:
                    with transaction.atomic():
                        chairside.record_observation(
                            user=self.service_user(),
                            session=session,
                            reading=VitalReading(taken_at=observed, **values),
                            source="hl7",
                            client="hl7",
                        )
                except chairside.SessionError as exc:
                    p.issues.append(f"not added to the treatment session: {exc}")
                    continue
                forwarded.add(msg_id)
        return forwarded

    def _reading_rows(self, p: Prepared, msg: MessageRow) -> tuple[list[ReadingRow], Any]:
        """The message's reading rows (``message_id`` left ``None``) and the treatment session they
        belong to, if any."""
        parsed = p.parsed
        if parsed is None or not msg.device_feed or not parsed.observations:
            return [], None
        binding = bind_reading(
            organization_id=self.organization.pk,
            device_identifier=parsed.device_id,
            location=parsed.location.text if parsed.location else None,
            patient_identifiers=parsed.patient_ids,
            observed_at=parsed.header.timestamp,
            cache=self.cache,
            mrn_authorities=self.mrn_authorities,
        )
        site_id = binding.site_id if binding.site_id is not None else getattr(self.default_site, "pk", None)
        rows = reading_rows(
            parsed,
            organization_id=self.organization.pk,
            site_id=site_id,
            patient_id=binding.patient_id,
            chair_id=binding.chair_id,
            device_id=binding.device.id if binding.device else msg.device_id,
            received=p.item.received_at,
            bound=binding.bound,
            zone=self._zone(site_id),
            session_id=binding.session_id,
        )
        return rows, binding.session_id
