"""Who may send monitor readings, how much, and over what: the feed's settings, source addresses, TLS.

Issue 15 M2: the MLLP port took vital signs from anyone, and a forged BP 190/100 landed in a patient's
active session. Now a message's readings are charted only when it comes from a registered monitor
(``MonitorDevice``, by its EUI-64 or PV1-3 location) *and* from one of that monitor's allowed source
addresses (``MonitorDevice.allowed_sources``: addresses or networks in CIDR notation). Anything else is
kept apart, unread, for an administrator to review (``HL7Message.review_status = held``; services
``release_held`` / ``discard_held``) and never charted into a session. A new monitor is allowed from
this computer only (``127.0.0.1`` and ``::1``: the simulator, or an integration engine on the same host)
until an administrator enters its address.

Optionally the listener speaks MLLP over TLS and requires a client certificate signed by the clinic's
own certificate authority (IHE ATNA "node authentication": mutual TLS, TLS 1.2 or later,
security.md §2 (d)(9)); the certificate's subject is kept with each message.
"""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Final

from django.conf import settings

from ketaclinic.interop.hl7.bounds import FeedLimits

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOCAL_ONLY: Final = ("127.0.0.1/32", "::1/128")
MAX_SOURCES: Final = 32  # networks per monitor: a monitor has one address, a gateway pair a few


def default_sources() -> list[str]:
    """A monitor registered without addresses sends from this computer only."""
    return list(LOCAL_ONLY)


def feed_limits() -> FeedLimits:
    """The listener's limits from the ``KETACLINIC_HL7_*`` settings."""
    return FeedLimits(
        max_message_bytes=settings.KETACLINIC_HL7_MAX_MESSAGE_BYTES,
        max_obx=settings.KETACLINIC_HL7_MAX_OBX,
        max_readings=settings.KETACLINIC_HL7_MAX_READINGS,
        earliest=datetime(settings.KETACLINIC_HL7_EARLIEST_YEAR, 1, 1, tzinfo=UTC),
        clock_skew=timedelta(minutes=settings.KETACLINIC_HL7_CLOCK_SKEW_MIN),
    )


class SourceError(ValueError):
    """An allowed-address entry that is not an address or network; the message names the entry."""


def parse_sources(text: str | Iterable[str]) -> list[str]:
    """Addresses and networks typed by an administrator (separated by commas, spaces or lines) as
    normalised CIDR strings (``10.0.4.17`` → ``10.0.4.17/32``). Raises :class:`SourceError` naming the
    first entry that is not one, or a network with host bits set (``10.0.4.17/24``: say ``10.0.4.0/24``)."""
    entries = text.replace(",", " ").split() if isinstance(text, str) else [str(t).strip() for t in text]
    out: list[str] = []
    for entry in entries:
        if not entry:
            continue
        try:
            network = ipaddress.ip_network(entry, strict=True)
        except ValueError:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise SourceError(
                    f"{entry!r} is not an IP address or network (e.g. 10.0.4.17 or 10.0.4.0/24)."
                ) from None
            raise SourceError(
                f"{entry!r} has host bits set; write the network's first address "
                f"({ipaddress.ip_network(entry, strict=False)})."
            ) from None
        if network.prefixlen == 0:
            raise SourceError(
                f"{entry!r} would allow every address; enter the monitor's own address or network."
            )
        text_form = str(network)
        if text_form not in out:
            out.append(text_form)
    if len(out) > MAX_SOURCES:
        raise SourceError(f"Enter at most {MAX_SOURCES} addresses or networks ({len(out)} given).")
    return out


@lru_cache(maxsize=4096)
def networks(sources: tuple[str, ...]) -> tuple[Network, ...]:
    """Parsed networks of a stored list (cached: the same few lists come back with every batch). An entry
    that does not parse (only a hand-edited database could hold one) allows nothing."""
    out: list[Network] = []
    for s in sources:
        try:
            out.append(ipaddress.ip_network(s, strict=False))
        except ValueError:
            continue
    return tuple(out)


def as_sources(stored: Any) -> tuple[str, ...]:
    """``MonitorDevice.allowed_sources`` as stored (a list, or its JSON text from plain SQL) → a tuple."""
    if isinstance(stored, str):
        import json

        try:
            stored = json.loads(stored)
        except ValueError:
            return ()
    if not isinstance(stored, list | tuple):
        return ()
    return tuple(str(s) for s in stored)


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(found, ipaddress.IPv6Address) and found.ipv4_mapped is not None:
        return found.ipv4_mapped  # a dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d
    return found


def address_allowed(address: str, allowed: Sequence[Network]) -> bool:
    found = _address(address)
    return found is not None and any(found in net for net in allowed)


def host_network(address: str) -> str:
    """The one-address network of ``address`` (what "allow this address" adds)."""
    found = _address(address)
    if found is None:
        raise SourceError(f"{address!r} is not an IP address.")
    return str(ipaddress.ip_network(found))


# ---------------------------------------------------------------- TLS


def server_context(*, cert: str, key: str, ca: str) -> ssl.SSLContext:
    """A TLS server context that requires a client certificate signed by ``ca`` (mutual TLS, TLS 1.2+).

    Raises ``ValueError`` naming what is missing or unreadable (the command turns it into its error)."""
    missing = [name for name, value in (("certificate", cert), ("key", key), ("CA", ca)) if not value]
    if missing:
        raise ValueError(
            "MLLP over TLS needs the listener's certificate, its key and the CA that signs the monitors' "
            f"certificates; missing: {', '.join(missing)} (KETACLINIC_HL7_TLS_CERT, _KEY, _CA or "
            "--tls-cert, --tls-key, --tls-ca)."
        )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.verify_mode = ssl.CERT_REQUIRED
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"the listener's certificate {cert} or key {key} could not be loaded: {exc}"
        ) from exc
    try:
        context.load_verify_locations(cafile=ca)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"the CA file {ca} could not be loaded: {exc}") from exc
    return context


def certificate_subject(peercert: Any) -> str:
    """``CN=…, O=…`` of a verified peer certificate (``SSLObject.getpeercert()``); "" without one."""
    if not isinstance(peercert, dict):
        return ""
    parts: list[str] = []
    for rdn in peercert.get("subject", ()):
        for name, value in rdn:
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU"}.get(name)
            if short:
                parts.append(f"{short}={value}")
    return ", ".join(parts)[:200]
