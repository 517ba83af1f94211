"""Unknown senders: the messages the feed held for review, and an administrator's decision on them.

A message with readings from a monitor nobody registered, or from an address not allowed for its
monitor, is stored *held* (feed.py, trust.py; issue 15 M2): its text only, no readings, nothing charted.
An administrator sees them here grouped by the monitor they name and the address they came from, and
either

- **accepts** the group: the monitor is registered (or, when it is registered already, the address is
  added to its allowed addresses) so that its next messages are charted as usual, and the held messages
  are read now into *unmatched readings* — never into a treatment session, since the session they were
  measured in may be over; a nurse attaches them to the right patient from the Unmatched readings page;
- or **discards** it: the messages stay as received, marked discarded, and nothing is read from them.

Both are audited. Keyword-only, never commit (the request owns the transaction).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db.models import Case, CharField, Count, F, Max, Min, Q, QuerySet, When
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Chair, User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.interop.hl7.errors import HL7ParseError
from ketaclinic.interop.hl7.model import ParsedMessage
from ketaclinic.interop.hl7.parse import parse_oru
from ketaclinic.monitoring.models import HL7Message, MonitorDevice, ReviewStatus
from ketaclinic.monitoring.rows import insert_readings, reading_rows
from ketaclinic.monitoring.services import (
    CATEGORY,
    MonitoringValidationError,
    Page,
    check_device_fields,
    device_snapshot,
    page_bounds,
    record_device,
)
from ketaclinic.monitoring.trust import SourceError, host_network

GROUPS_PER_PAGE = 25
HELD_PER_RELEASE = 5000  # messages read per accept (a group past this is accepted in several goes)


@dataclass
class HeldGroup:
    """The held messages naming one monitor from one address."""

    identifier: str  # the monitor the messages name: EUI-64, else the PV1-3 location
    address: str
    messages: int
    first_received: datetime
    last_received: datetime
    reason: str
    certificate: str
    device: MonitorDevice | None = None  # registered already (sent from another address)
    latest_values: list[str] = field(default_factory=list)


def _held(user: User) -> QuerySet[HL7Message]:
    return HL7Message.objects.filter(organization_id=user.org_id, review_status=ReviewStatus.HELD)


def _named(identifier: str) -> Q:
    """Held messages naming ``identifier`` as their monitor (its EUI-64, else the PV1-3 location)."""
    return Q(device_identifier=identifier) | (Q(device_identifier="") & Q(location=identifier))


def held_count(*, user: User) -> int:
    return _held(user).count()


def held_groups(*, user: User, page: int = 1) -> Page[HeldGroup]:
    """One page of held groups, newest first. Reads no message text but the latest message of each group
    on the page (for its values)."""
    named_as = Case(
        When(device_identifier="", then=F("location")),
        default=F("device_identifier"),
        output_field=CharField(),
    )
    rows = (
        _held(user)
        .annotate(named=named_as)
        .values("named", "source_address")
        .annotate(
            messages=Count("id"),
            first=Min("received_at"),
            last=Max("received_at"),
            latest=Max("id"),
        )
        .order_by("-last", "named", "source_address")
    )
    total = rows.count()
    number, pages, shown = page_bounds(total, page, GROUPS_PER_PAGE)
    chunk = list(rows[shown])
    latest = {
        m.pk: m
        for m in HL7Message.objects.filter(pk__in=[r["latest"] for r in chunk]).only(
            "raw", "held_reason", "peer_certificate", "received_at"
        )
    }
    named = [r["named"] for r in chunk]
    devices = {
        d.identifier: d
        for d in MonitorDevice.objects.filter(organization_id=user.org_id, identifier__in=named)
    }
    out: list[HeldGroup] = []
    for r, identifier in zip(chunk, named, strict=True):
        message = latest[r["latest"]]
        out.append(
            HeldGroup(
                identifier=identifier,
                address=r["source_address"],
                messages=r["messages"],
                first_received=r["first"],
                last_received=r["last"],
                reason=message.held_reason,
                certificate=message.peer_certificate,
                device=devices.get(identifier),
                latest_values=_values(message),
            )
        )
    return Page(out, number, pages, total)


def _parsed(message: HL7Message) -> ParsedMessage | None:
    """A held message read again (it was read, within the limits, when it arrived; ``raw`` is its text)."""
    try:
        return parse_oru(message.raw)
    except HL7ParseError:
        return None


def _values(message: HL7Message) -> list[str]:
    """The vital signs of a held message, for the reviewer (no patient identifiers)."""
    parsed = _parsed(message)
    if parsed is None:
        return []
    return [f"{o.kind.value.upper()} {o.value:g} {o.unit}" for o in parsed.observations[:12]]


def _group(user: User, identifier: str, address: str) -> QuerySet[HL7Message]:
    return _held(user).filter(_named(identifier), source_address=address)


def release_held(
    *,
    user: User,
    identifier: str,
    address: str,
    label: str = "",
    chair: Chair | None = None,
    request: HttpRequest | None = None,
) -> tuple[MonitorDevice, int]:
    """Accept the held messages naming ``identifier`` from ``address``: register the monitor (or allow the
    address for it) and read the messages into unmatched readings. Returns the monitor and the number of
    messages read."""
    # Registered exactly as the messages name it: that is what the feed looks up.
    messages = list(_group(user, identifier, address).select_for_update().order_by("id")[:HELD_PER_RELEASE])
    errors: dict[str, str] = {}
    if not messages:
        errors["group"] = (
            "These messages are no longer waiting: a colleague accepted or discarded them already."
        )
    network = ""
    if address:
        try:
            network = host_network(address)
        except SourceError as exc:
            errors["address"] = str(exc)
    device = MonitorDevice.objects.filter(organization_id=user.org_id, identifier=identifier).first()
    if device is None:
        errors |= check_device_fields(identifier, label.strip(), chair, user)
        if chair is not None and chair.monitors.filter(active=True).exists():
            errors["chair"] = f"Chair {chair} already has a monitor; take that one off the chair first."
    if errors:
        raise MonitoringValidationError(errors)
    before = device_snapshot(device) if device is not None else None
    if device is None:
        device = MonitorDevice(
            organization_id=user.org_id,
            identifier=identifier,
            label=label.strip(),
            chair=chair,
            site=chair.site if chair is not None else None,
            allowed_sources=[],
        )
    sources = [str(s) for s in device.allowed_sources or []]
    if network and network not in sources:
        sources.append(network)
    device.allowed_sources = sources
    if before is None or before["allowed_sources"] != sources:
        record_device(
            user=user,
            device=device,
            before=before,
            request=request,
            detail=f"accepted under Unknown senders: messages from {address or 'this system'}",
        )
    read, unreadable = _read_into_unmatched(user=user, device=device, messages=messages)
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        organization=device.organization,
        object_type="HL7Message",
        object_id=messages[-1].pk,
        before={"review_status": "held", "messages": [m.pk for m in messages]},
        after={"review_status": "released", "readings": read},
        request=request,
        detail=f"{len(messages)} held message(s) of monitor {identifier} from {address or 'this system'} "
        f"accepted; {read} reading(s) added to unmatched readings"
        + (f"; {unreadable} message(s) could not be read again and have no readings" if unreadable else ""),
    )
    return device, len(messages)


def _read_into_unmatched(
    *, user: User, device: MonitorDevice, messages: Sequence[HL7Message]
) -> tuple[int, int]:
    """Read held messages into unbound readings of ``device`` (no patient, no session, no alert: a nurse
    attaches them, and the alerts run then) and mark them released. Returns (readings, messages that could
    not be read again: none expected, since each was read when it arrived; counted in the audit entry)."""
    site_id = device.chair.site_id if device.chair is not None else device.site_id
    zone: Any = UTC
    if site_id is not None:
        from ketaclinic.accounts.models import Site

        zone = zoneinfo.ZoneInfo(Site.objects.get(pk=site_id).time_zone)
    now = timezone.now()
    count = unreadable = 0
    for message in messages:
        parsed = _parsed(message)
        if parsed is None:
            unreadable += 1
            continue
        rows = reading_rows(
            parsed,
            organization_id=user.org_id,
            site_id=site_id,
            patient_id=None,
            chair_id=device.chair_id,
            device_id=device.pk,
            received=message.received_at,
            bound=False,
            zone=zone,
        )
        insert_readings([r._replace(message_id=message.pk) for r in rows])
        count += len(rows)
    HL7Message.objects.filter(pk__in=[m.pk for m in messages]).update(
        review_status=ReviewStatus.RELEASED, reviewed_by=user, reviewed_at=now, device=device
    )
    return count, unreadable


def discard_held(*, user: User, identifier: str, address: str, request: HttpRequest | None = None) -> int:
    """Mark the held messages naming ``identifier`` from ``address`` discarded (kept as received, never
    read). Returns how many."""
    ids = list(_group(user, identifier, address).select_for_update().values_list("id", flat=True))
    if not ids:
        raise MonitoringValidationError(
            {"group": "These messages are no longer waiting: a colleague accepted or discarded them already."}
        )
    HL7Message.objects.filter(pk__in=ids, review_status=ReviewStatus.HELD).update(
        review_status=ReviewStatus.DISCARDED, reviewed_by=user, reviewed_at=timezone.now()
    )
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        organization=user.organization,
        object_type="HL7Message",
        object_id=ids[-1],
        before={"review_status": "held", "messages": ids},
        after={"review_status": "discarded"},
        request=request,
        detail=f"{len(ids)} held message(s) naming monitor {identifier} from {address or 'this system'} "
        "discarded unread",
    )
    return len(ids)
