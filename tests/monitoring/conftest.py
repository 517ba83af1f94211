"""A listener running in a thread of the test process, against the test database.

pytest-django's SQLite test database is a shared-cache in-memory database, so the writer thread's own
connection sees the same tables; ``transactional_db`` makes the fixtures' rows committed and visible.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tests.samples import HL7_SAMPLES

HL7_DIR = HL7_SAMPLES


def sample(name: str) -> str:
    """A reference message with CR segment ends (the files use CRLF, MLLP traffic uses CR)."""
    path = HL7_DIR / name
    text = path.read_text(encoding="utf-8")
    return text.replace("\r\n", "\r").replace("\n", "\r").rstrip("\r")


def register_monitor(
    org: Any, identifier: str, *, sources: tuple[str, ...] | None = None, **fields: Any
) -> Any:
    """A monitor registered by an administrator; by default allowed from this computer only (where the
    test's MLLP peers connect from)."""
    from ketaclinic.monitoring.models import MonitorDevice
    from ketaclinic.monitoring.trust import LOCAL_ONLY

    return MonitorDevice.objects.create(
        organization=org, identifier=identifier, allowed_sources=list(sources or LOCAL_ONLY), **fields
    )


def device_of(message: str) -> str:
    """The monitor identifier the parser reads from a message (OBX-18 or the MSH-3 EUI-64)."""
    from ketaclinic.interop.hl7.parse import parse_oru

    found = parse_oru(message).device_id
    assert found
    return found


class ThreadedListener:
    def __init__(
        self, parse_workers: int = 0, listener_options: dict[str, Any] | None = None, **store_options: Any
    ) -> None:
        from ketaclinic.monitoring.feed import FeedStore
        from ketaclinic.monitoring.listener import MLLPListener

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        options: dict[str, Any] = {"max_frame_bytes": 64 * 1024} | (listener_options or {})
        self.listener = MLLPListener(
            lambda: FeedStore(**store_options), port=0, parse_workers=parse_workers, **options
        )
        asyncio.run_coroutine_threadsafe(self.listener.start(), self.loop).result(20)
        self.serving = asyncio.run_coroutine_threadsafe(self.listener.serve_forever(), self.loop)
        self.host, self.port = "127.0.0.1", self.listener.port

    def stop(self) -> None:
        self.serving.cancel()
        asyncio.run_coroutine_threadsafe(self.listener.close(), self.loop).result(20)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def running_listener(transactional_db: Any, org: Any, site: Any) -> Iterator[ThreadedListener]:
    lst = ThreadedListener(organization=org, default_site=site)
    yield lst
    lst.stop()
