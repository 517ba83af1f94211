"""A real syslog collector on localhost for the tests: RFC 6587 octet-counted TCP and UDP, appending each
received message to a file with a prefix of its own (as rsyslog's file output would), never rewriting it."""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


class _Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.received = 0
        self.arrived = threading.Condition(self.lock)

    def append(self, message: bytes, peer: str) -> None:
        text = message.decode("utf-8", "replace").replace("\n", " ")
        with self.arrived:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(f"{datetime.now(UTC).isoformat()} from={peer} {text}\n")
            self.received += 1
            self.arrived.notify_all()


class _Tcp(socketserver.StreamRequestHandler):
    server: Any

    def handle(self) -> None:
        while True:
            length = b""
            while (char := self.rfile.read(1)) not in (b" ", b""):
                length += char
            if not length:
                return
            self.server.store.append(self.rfile.read(int(length)), self.client_address[0])


class _Udp(socketserver.BaseRequestHandler):
    server: Any

    def handle(self) -> None:
        self.server.store.append(self.request[0], self.client_address[0])


class _ThreadingTcp(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls: ssl.SSLContext | None = None

    def get_request(self) -> tuple[Any, Any]:
        sock, address = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


class Collector:
    def __init__(self, path: Path, protocol: str = "tcp", tls: ssl.SSLContext | None = None) -> None:
        """``protocol``: tcp (RFC 6587 octet counting), udp, or tls (RFC 5425: TCP framing inside ``tls``)."""
        self.store = _Store(path)
        self.path = path
        stream = protocol in ("tcp", "tls")
        server_class: Any = _ThreadingTcp if stream else socketserver.ThreadingUDPServer
        self.server = server_class(("127.0.0.1", 0), _Tcp if stream else _Udp)
        self.server.store = self.store
        self.server.tls = tls
        self.url = f"{protocol}://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        with self.store.arrived:
            if not self.store.arrived.wait_for(lambda: self.store.received >= count, timeout):
                raise AssertionError(f"the collector received {self.store.received} of {count} messages")

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
