"""Publishing chain anchors off the host, and reading back what was published (issue 15 H3).

Every time an anchor advances, the signed checkpoint ``chain seq hash mac`` is sent as one RFC 5424 syslog
message to a collector on another host (``KETACLINIC_ANCHOR_SYSLOG``: ``udp://``, ``tcp://`` with RFC 6587
octet-counting framing, or ``tls://`` as RFC 5425). The collector appends; the application can add records but
never rewrite those already received, so a person who later rewrites the database and the local anchor file
cannot make the published record agree.

Python's ``logging.handlers.SysLogHandler`` writes RFC 3164-style messages and frames TCP with a trailing NUL
rather than RFC 6587 octet counting, which RFC 5424 collectors misread; the few lines below do it right.

``read_published(path)`` parses the collector's file (or an export of it): any line holding
``ketaclinic-anchor chain=… seq=… hash=… mac=…`` counts, whatever prefix the collector's template adds.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import ssl
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from ketaclinic import config

log = logging.getLogger("ketaclinic.audit.publish")

FACILITY_LOG_AUDIT = 13  # RFC 5424 §6.2.1 "log audit"
SEVERITY_NOTICE = 5
APP_NAME = "ketaclinic"
MSGID = "anchor"
TIMEOUT_S = 3.0
RECORD = re.compile(
    r"ketaclinic-anchor chain=(?P<chain>[a-z]+(?::\d+)?) seq=(?P<seq>\d+) hash=(?P<hash>[0-9a-f]{64}) "
    r"mac=(?P<mac>[0-9a-f]{64})(?P<reset> reset)?"
)


@dataclass(frozen=True)
class Published:
    """One checkpoint as the collector received it; ``reset``: a verified restore or re-keying starts the
    chain's published history again from here (later numbers of the abandoned history no longer count)."""

    chain: str
    seq: int
    hash: str
    mac: str
    reset: bool
    line: int


def record_text(chain: str, seq: int, head_hash: str, mac: str, *, reset: bool = False) -> str:
    return f"ketaclinic-anchor chain={chain} seq={seq} hash={head_hash} mac={mac}{' reset' if reset else ''}"


def rfc5424(text: str, *, now: datetime | None = None) -> bytes:
    """``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`` (RFC 5424 §6), no structured data."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    host = (socket.gethostname() or "-")[:255].replace(" ", "-")
    pri = FACILITY_LOG_AUDIT * 8 + SEVERITY_NOTICE
    return f"<{pri}>1 {stamp} {host} {APP_NAME} {os.getpid()} {MSGID} - {text}".encode()


class SyslogPublisher:
    """One connection per process, re-opened after an error; thread-safe."""

    def __init__(self, url: str, ca_file: str = "") -> None:
        self.scheme, self.host, self.port = config.syslog_url("KETACLINIC_ANCHOR_SYSLOG", url)
        self.ca_file = ca_file
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def _connect(self) -> socket.socket:
        if self.scheme == "udp":
            family = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0][0]
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.settimeout(TIMEOUT_S)
            sock.connect((self.host, self.port))
            return sock
        raw = socket.create_connection((self.host, self.port), timeout=TIMEOUT_S)
        if self.scheme == "tls":
            context = ssl.create_default_context(cafile=self.ca_file or None)
            return context.wrap_socket(raw, server_hostname=self.host)
        return raw

    def send(self, message: bytes) -> None:
        frame = message if self.scheme == "udp" else str(len(message)).encode() + b" " + message
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._sock is None:
                        self._sock = self._connect()
                    self._sock.sendall(frame)
                    return
                except OSError:
                    self.close_locked()
                    if attempt == 2:
                        raise

    def close_locked(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        with self._lock:
            self.close_locked()


_publishers: dict[tuple[str, str], SyslogPublisher] = {}
_publishers_lock = threading.Lock()


def publisher() -> SyslogPublisher | None:
    url = settings.KETACLINIC_ANCHOR_SYSLOG
    if not url:
        return None
    key = (url, settings.KETACLINIC_ANCHOR_SYSLOG_CA)
    with _publishers_lock:
        if key not in _publishers:
            _publishers[key] = SyslogPublisher(*key)
        return _publishers[key]


def publish(chain: str, seq: int, head_hash: str, mac: str, *, reset: bool = False) -> bool:
    """Send one checkpoint; False (and an error in the log) when no collector took it. Never raises: the
    clinic's work has committed already, and the next anchor publishes a later head."""
    target = publisher()
    if target is None:
        return False
    try:
        target.send(rfc5424(record_text(chain, seq, head_hash, mac, reset=reset)))
    except OSError as exc:
        log.error("anchor %s #%s not published to %s: %s", chain, seq, settings.KETACLINIC_ANCHOR_SYSLOG, exc)
        return False
    return True


class PublishedError(Exception):
    """The published records cannot be read: the chain cannot be compared with them."""


def read_published(path: Path) -> list[Published]:
    found: list[Published] = []
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                for match in RECORD.finditer(line):
                    found.append(
                        Published(
                            chain=match["chain"],
                            seq=int(match["seq"]),
                            hash=match["hash"],
                            mac=match["mac"],
                            reset=bool(match["reset"]),
                            line=number,
                        )
                    )
    except OSError as exc:
        raise PublishedError(f"the published anchors {path} cannot be read: {exc.strerror}") from exc
    return found


def published_path() -> Path | None:
    configured = settings.KETACLINIC_ANCHOR_PUBLISHED_FILE
    return Path(configured) if configured else None
