"""The MLLP listener: asyncio for the sockets, one writer thread for the database.

Each connection reads frames with the pure decoder (interop/hl7/mllp.py) and hands them to the writer;
the writer takes everything queued (up to ``max_batch`` frames), parses and stores them in ONE
transaction (feed.FeedStore), and only then resolves the futures the connections wait on; the
connection writes the ACKs in order. Database work never runs on the event loop, so a slow commit
delays ACKs but never stops the listener reading, framing or accepting connections. Group commit is
what makes the throughput: one fsync per batch instead of one per message (bench/README.md "## mllp").

Malformed input never stalls a connection: junk between frames is logged and skipped, an oversized
frame is answered AR, a message that cannot be parsed AE/AR, and decoding resumes at the next start
block. A connection that drops mid-frame loses only that unacknowledged frame.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import queue
import signal
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from django.db import connection
from django.utils import timezone

from ketaclinic.interop.hl7.mllp import DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecoder, Junk, Oversized
from ketaclinic.monitoring.feed import FeedStore
from ketaclinic.monitoring.prepare import Inbound, Outcome, Prepared, prepare, prepare_many

log = logging.getLogger(__name__)


@dataclass
class _Job:
    item: Inbound
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]
    prepared: Prepared | None = None  # parsed already (on the event loop), else the writer parses


@dataclass
class ListenerStats:
    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    batches: int = 0
    junk_events: int = 0
    by_code: dict[str, int] = field(default_factory=dict)


class Writer:
    """A thread that owns one database connection and stores batches."""

    def __init__(
        self,
        make_store: Callable[[], FeedStore],
        *,
        max_batch: int = 1000,
        parse_workers: int = 0,
    ) -> None:
        self._make_store = make_store
        self.max_batch = max_batch
        self.parse_workers = parse_workers
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mllp-writer", daemon=True)
        self.batches = 0
        self.ready = threading.Event()
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self.ready.wait()
        if self.failed is not None:
            raise RuntimeError(f"the monitor feed could not start: {self.failed}") from self.failed

    def submit(self, item: Inbound, prepared: Prepared | None = None) -> asyncio.Future[Outcome]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Outcome] = loop.create_future()
        self._queue.put(_Job(item, loop, fut, prepared))
        return fut

    def stop(self, timeout: float = 30.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _next_batch(self, *, block: bool, timeout: float) -> tuple[list[_Job], bool]:
        """Everything queued (up to ``max_batch``); ``True`` when a stop request was seen."""
        batch: list[_Job] = []
        try:
            job = self._queue.get(timeout=timeout) if block else self._queue.get_nowait()
        except queue.Empty:
            return batch, False
        if job is None:
            return batch, True
        batch.append(job)
        while len(batch) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is None:
                return batch, True
            batch.append(nxt)
        return batch, False

    def _run(self) -> None:
        try:
            store = self._make_store()
            pool = None
            if self.parse_workers > 0:
                # spawn, not fork: this process has threads; the workers import only the pure parser.
                pool = ProcessPoolExecutor(
                    self.parse_workers, mp_context=multiprocessing.get_context("spawn")
                )
                pool.submit(prepare_many, []).result(60)  # fail now, not on the first message
        except BaseException as exc:  # surfaced by start()
            self.failed = exc
            self.ready.set()
            return
        self.ready.set()
        pending: tuple[list[_Job], list[Future[list[Prepared]]]] | None = None
        try:
            while True:
                # With a parse pool, the next batch is parsed in the workers while this thread stores
                # the previous one (a two-stage pipeline); without one, both happen here.
                batch, stop = self._next_batch(block=pending is None, timeout=store.audit_every)
                parsing = None
                if batch and pool is not None:
                    parsing = (batch, self._submit_parse(pool, batch))
                if pending is not None:
                    self._store_parsed(store, *pending)
                    pending = None
                if parsing is not None:
                    pending = parsing
                elif batch:
                    preps = [j.prepared if j.prepared is not None else prepare(j.item) for j in batch]
                    self._process(store, batch, preps)
                elif not stop:
                    store.flush_audit()  # idle: close the audit range of what was stored
                if stop:
                    if pending is not None:
                        self._store_parsed(store, *pending)
                    return
        finally:
            store.flush_audit()
            connection.close()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _submit_parse(self, pool: ProcessPoolExecutor, batch: list[_Job]) -> list[Future[list[Prepared]]]:
        items = [j.item for j in batch]
        size = max(1, -(-len(items) // self.parse_workers))
        return [pool.submit(prepare_many, items[i : i + size]) for i in range(0, len(items), size)]

    def _store_parsed(self, store: FeedStore, batch: list[_Job], parts: list[Future[list[Prepared]]]) -> None:
        try:
            preps = [p for part in parts for p in part.result()]
        except Exception:  # a worker died: parse here rather than lose the batch
            log.exception("parse worker failed; parsing in the listener")
            preps = [prepare(j.item) for j in batch]
        self._process(store, batch, preps)

    def _process(self, store: FeedStore, batch: list[_Job], preps: list[Prepared]) -> None:
        try:
            outcomes = store.process_prepared(preps)
        except BaseException as exc:  # never leave a connection waiting
            log.exception("writer failed on a batch")
            for j in batch:
                j.loop.call_soon_threadsafe(_set_exception, j.future, exc)
            return
        self.batches += 1
        # One wake-up of each event loop per batch, not one per message.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Outcome], Outcome]]] = {}
        for j, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(j.loop, []).append((j.future, outcome))
        for loop, results in by_loop.items():
            loop.call_soon_threadsafe(_set_results, results)


def _set_results(results: list[tuple[asyncio.Future[Outcome], Outcome]]) -> None:
    for fut, outcome in results:
        if not fut.done():
            fut.set_result(outcome)


def _set_exception(fut: asyncio.Future[Outcome], exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class MLLPListener:
    def __init__(
        self,
        make_store: Callable[[], FeedStore],
        *,
        host: str = "127.0.0.1",
        port: int = 2575,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        max_batch: int = 1000,
        parse_workers: int = 0,
        parse_in_loop: bool = False,
    ) -> None:
        self.host, self.port = host, port
        # ``parse_in_loop``: parse each frame on the event loop as it arrives instead of in the writer, so
        # that parsing overlaps the writer's SQLite work and fsync (which release the GIL). Measured slower
        # on 2 shared cores (1,000 connections: 3,100-3,800 vs 5,200-7,100 obs/s, more CPU per message:
        # the two threads then fight for the GIL), so off by default (bench/README.md "## mllp").
        self.parse_in_loop = parse_in_loop and parse_workers == 0
        self.max_frame_bytes = max_frame_bytes
        self.writer = Writer(make_store, max_batch=max_batch, parse_workers=parse_workers)
        self.stats = ListenerStats()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.writer.start)
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, limit=1 << 16, backlog=4096
        )
        sock = self._server.sockets[0]
        self.port = sock.getsockname()[1]

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        await asyncio.to_thread(self.writer.stop)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername or "")
        self.stats.connections += 1
        self.stats.open_connections += 1
        decoder = FrameDecoder(self.max_frame_bytes)
        try:
            while True:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                pending: list[asyncio.Future[Outcome]] = []
                now = timezone.now()
                for event in decoder.feed(chunk):
                    if isinstance(event, Frame):
                        inbound = Inbound(event.payload, peer, now)
                        pending.append(self.writer.submit(inbound, self._prepare(inbound)))
                    elif isinstance(event, Oversized):
                        log.warning("MLLP %s: %s", peer, event.reason)
                        item = Inbound(event.head, peer, now, oversized=True, limit=event.limit)
                        pending.append(self.writer.submit(item))
                    else:
                        self._junk(peer, event)
                for fut in pending:
                    outcome = await fut
                    self.stats.messages += 1
                    self.stats.by_code[outcome.code.value] = self.stats.by_code.get(outcome.code.value, 0) + 1
                    writer.write(outcome.ack)
                if pending:
                    await writer.drain()
            for event in decoder.close():
                if isinstance(event, Junk):
                    self._junk(peer, event)
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            log.info("MLLP %s: connection lost (%s)", peer, exc)
        except asyncio.CancelledError:
            # Shutdown: unacknowledged messages are sent again by the monitor when it reconnects.
            log.info("MLLP %s: closed at shutdown", peer)
        except Exception:
            log.exception("MLLP %s: connection failed", peer)
        finally:
            self.stats.open_connections -= 1
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, OSError):
                pass

    def _prepare(self, item: Inbound) -> Prepared | None:
        if not self.parse_in_loop:
            return None
        try:
            return prepare(item)
        except Exception:  # prepare reports parser failures itself; anything else: the writer tries
            log.exception("preparing a message on the event loop failed")
            return None

    def _junk(self, peer: str, event: Junk) -> None:
        self.stats.junk_events += 1
        if event.is_whitespace:
            return
        log.warning("MLLP %s: %s: %d bytes skipped", peer, event.reason, len(event.data))


async def run(listener: MLLPListener, *, ready: Callable[[MLLPListener], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop accepting and let the writer finish its queue."""
    await listener.start()
    if ready is not None:
        ready(listener)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    if sys.platform != "win32":
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    serve = asyncio.create_task(listener.serve_forever())
    await stop.wait()
    serve.cancel()
    await listener.close()
