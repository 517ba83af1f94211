"""The client's address of a request, behind trusted proxies or not (issue 15 M3).

Behind a TLS proxy every connection comes from the proxy, so lockouts keyed on the connection's address lock
everyone out together. The proxy passes the client's address in ``X-Forwarded-For``, but anyone can send
that header: it is believed only when the connection comes from a proxy the operator named in
``KETACLINIC_TRUSTED_PROXIES`` (default: none). The header is then read from the right — each proxy appends
the address it received the request from — skipping trusted proxies; the first other address is the
client's. Entries left of it were written by the client and are ignored.

One function for django-axes (``AXES_CLIENT_IP_CALLABLE``), the audit log and the self-report limits.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in configured)


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [2001:db8::1]:443
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # 203.0.113.7:51234
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(remote_addr: str, forwarded_for: str, trusted: tuple[str, ...]) -> str | None:
    """The client's address from the connection's address and the X-Forwarded-For header (None: the
    connection's address is not an IP address, e.g. a Unix socket without a proxy)."""
    peer = _parse(remote_addr)
    if peer is None:
        return None
    networks = _networks(trusted)
    if not any(peer in net for net in networks):
        return str(peer)
    client = peer
    for hop in reversed([h for h in forwarded_for.split(",") if h.strip()]):
        address = _parse(hop)
        if address is None:
            break  # a trusted proxy passed something that is not an address: stop at that proxy
        client = address
        if not any(address in net for net in networks):
            break
    return str(client)


def client_address(request: HttpRequest) -> str | None:
    return resolve(
        str(request.META.get("REMOTE_ADDR", "")),
        str(request.META.get("HTTP_X_FORWARDED_FOR", "")),
        tuple(getattr(settings, "KETACLINIC_TRUSTED_PROXIES", ())),
    )
