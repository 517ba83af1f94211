"""The MLLP listener: asyncio for the sockets, one writer thread for the database.

Each connection (an asyncio Protocol, ``_Connection``) reads frames with the pure decoder
(interop/hl7/mllp.py) and hands them to the writer; the writer takes everything queued (up to
``max_batch`` frames), parses and stores them in ONE transaction (feed.FeedStore), and only then hands
each outcome back to its connection on the event loop (one wake-up per batch), which writes the ACKs in
order. Database work never runs on the event loop, so a slow commit delays ACKs but never stops the
listener reading, framing or accepting connections. Group commit is what makes the throughput: one
fsync per batch instead of one per message (bench/README.md "## mllp"). ``ketaclinic mllp --processes N``
runs N of these on one listening socket (management/commands/mllp.py); on SQLite they take turns to
write through :class:`ProcessLock`.

Malformed input never stalls a connection: junk between frames is logged and skipped, an oversized
frame is answered AE without being buffered (the framing keeps at most the size limit of it), a message
that cannot be parsed AE/AR, and decoding resumes at the next start block. A connection that drops
mid-frame loses only that unacknowledged frame.

Bounds on connections (issue 15 M2): a connection that has delivered no complete message for
``idle_timeout`` seconds is closed (a monitor reconnects when it next sends; a half-sent frame dribbled
byte by byte does not count as activity), and one address may hold at most
``max_connections_per_address`` connections to this process (more are closed at once). With
``ssl_context`` the listener speaks MLLP over TLS and requires a client certificate (trust.py).
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import multiprocessing
import os
import queue
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from django.db import connection
from django.utils import timezone

from ketaclinic.interop.hl7.mllp import DEFAULT_MAX_FRAME_BYTES, Frame, FrameDecoder, Junk, Oversized
from ketaclinic.monitoring.feed import FeedStore
from ketaclinic.monitoring.prepare import Inbound, Outcome, Prepared, prepare, prepare_many
from ketaclinic.monitoring.trust import certificate_subject

log = logging.getLogger(__name__)


class _Receiver(Protocol):
    """Where the writer sends a job's outcome (on the receiver's event loop, in submission order)."""

    loop: asyncio.AbstractEventLoop

    def deliver(self, outcome: Outcome) -> None: ...

    def failed(self, exc: BaseException) -> None: ...


@dataclass
class _Job:
    item: Inbound
    receiver: _Receiver


@dataclass
class ListenerStats:
    connections: int = 0
    open_connections: int = 0
    messages: int = 0
    batches: int = 0
    junk_events: int = 0
    idle_closed: int = 0
    refused_connections: int = 0  # over the per-address cap
    by_code: dict[str, int] = field(default_factory=dict)


class FeedStats:
    """What one listener process did since its last report: message and batch counts, time spent storing,
    waiting for and holding the write lock, and the checkpoint steps taken under it. Counts and timings
    only, never message content. ``kill -USR1`` on a listener prints one line of it (``feed stats {…}``,
    JSON), as does every listener process when it stops; bench/mllp.py reads them."""

    def __init__(self, listener: MLLPListener) -> None:
        self.listener = listener
        self._last = self._totals()
        self._since = time.monotonic()

    def _totals(self) -> dict[str, float]:
        writer = self.listener.writer
        lock = writer.store.write_lock if writer.store is not None else None
        return {
            "messages": writer.messages,
            "batches": writer.batches,
            "store": writer.store_seconds,
            "lock_wait": lock.waited if isinstance(lock, ProcessLock) else 0.0,
            "lock_held": lock.held if isinstance(lock, ProcessLock) else 0.0,
        }

    def report(self) -> dict[str, object]:
        now, totals = time.monotonic(), self._totals()
        seconds = max(now - self._since, 1e-9)
        d = {k: totals[k] - self._last[k] for k in totals}
        self._last, self._since = totals, now
        checkpointer = self.listener.writer.checkpointer
        steps: list[float] = []
        if checkpointer is not None:
            steps, checkpointer.locked_ms = checkpointer.locked_ms, []
        steps.sort()
        store = self.listener.writer.store
        batches = int(d["batches"])
        return {
            "process": (store.label if store is not None else "") or "listener",
            "seconds": round(seconds, 3),
            "messages": int(d["messages"]),
            "batches": batches,
            "messages_per_batch": round(d["messages"] / batches, 2) if batches else 0.0,
            "store_ms_per_batch": round(d["store"] * 1000 / batches, 3) if batches else 0.0,
            "write_lock_wait_share": round(d["lock_wait"] / seconds, 4),
            "write_lock_held_share": round(d["lock_held"] / seconds, 4),
            "checkpoint_locked_steps": len(steps),
            "checkpoint_locked_ms_p50": round(steps[len(steps) // 2], 2) if steps else None,
            "checkpoint_locked_ms_max": round(steps[-1], 2) if steps else None,
        }

    def print_line(self) -> None:
        line = "feed stats " + json.dumps(self.report())
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class Writer:
    """A thread that owns one database connection and stores batches."""

    def __init__(
        self,
        make_store: Callable[[], FeedStore],
        *,
        max_batch: int = 1000,
        parse_workers: int = 0,
        checkpoints: bool = True,
    ) -> None:
        self._make_store = make_store
        # Whether this process runs the WAL checkpoint thread (with --processes, only the first does).
        self.checkpoints = checkpoints
        self.max_batch = max_batch
        self.parse_workers = parse_workers
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="mllp-writer", daemon=True)
        self.batches = 0
        self.messages = 0
        self.store_seconds = 0.0  # in FeedStore.process_prepared: planning, waiting for the lock, writing
        self.store: FeedStore | None = None
        self.checkpointer: _Checkpointer | None = None
        self.ready = threading.Event()
        self.failed: BaseException | None = None

    def start(self) -> None:
        self._thread.start()
        self.ready.wait()
        if self.failed is not None:
            raise RuntimeError(f"the monitor feed could not start: {self.failed}") from self.failed

    def submit(self, item: Inbound, receiver: _Receiver) -> None:
        """Queue ``item``; ``receiver.deliver(outcome)`` is called on its loop once the batch committed."""
        self._queue.put(_Job(item, receiver))

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
        checkpointer: _Checkpointer | None = None
        try:
            store = self.store = self._make_store()
            lock = None
            if connection.vendor == "sqlite" and database_path():
                # Other listener processes (--processes) and this process's checkpointer write too.
                store.write_lock = ProcessLock(lock_path())
                lock = ProcessLock(lock_path())  # the checkpointer's own (a flock belongs to an open file)
            checkpointer = self.checkpointer = _Checkpointer.for_connection(
                run_thread=self.checkpoints, lock=lock
            )
            pool = None
            if self.parse_workers > 0:
                # spawn, not fork: this process has threads; the workers import only the pure parser.
                pool = ProcessPoolExecutor(
                    self.parse_workers, mp_context=multiprocessing.get_context("spawn")
                )
                pool.submit(prepare_many, [], store.limits).result(60)  # fail now, not on the first message
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
                    preps = [prepare(j.item, store.limits) for j in batch]
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
            if checkpointer is not None:
                checkpointer.stop()
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def _submit_parse(self, pool: ProcessPoolExecutor, batch: list[_Job]) -> list[Future[list[Prepared]]]:
        items = [j.item for j in batch]
        size = max(1, -(-len(items) // self.parse_workers))
        limits = self.store.limits if self.store is not None else None
        return [
            pool.submit(prepare_many, items[i : i + size], *([limits] if limits else []))
            for i in range(0, len(items), size)
        ]

    def _store_parsed(self, store: FeedStore, batch: list[_Job], parts: list[Future[list[Prepared]]]) -> None:
        try:
            preps = [p for part in parts for p in part.result()]
        except Exception:  # a worker died: parse here rather than lose the batch
            log.exception("parse worker failed; parsing in the listener")
            preps = [prepare(j.item, store.limits) for j in batch]
        self._process(store, batch, preps)

    def _process(self, store: FeedStore, batch: list[_Job], preps: list[Prepared]) -> None:
        started = time.perf_counter()
        try:
            outcomes = store.process_prepared(preps)
        except BaseException as exc:  # never leave a connection waiting
            log.exception("writer failed on a batch")
            for j in batch:
                j.receiver.loop.call_soon_threadsafe(j.receiver.failed, exc)
            return
        self.store_seconds += time.perf_counter() - started
        self.batches += 1
        self.messages += len(batch)
        # One wake-up of each event loop per batch, not one per message.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Receiver, Outcome]]] = {}
        for j, outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(j.receiver.loop, []).append((j.receiver, outcome))
        for loop, results in by_loop.items():
            loop.call_soon_threadsafe(_deliver_all, results)


class ProcessLock:
    """An exclusive lock between the listener processes of one SQLite database, held for each write
    transaction. SQLite lets one writer in at a time anyway, but a process that finds the database busy
    sleeps and polls (1, 2, 5, 10… ms); waiting on this lock instead wakes it the moment the other
    process commits. Each process parses and prepares its next batch while another writes.

    Two ``fcntl.flock`` files beside the database: the lock itself and a gate in front of it, held
    while waiting for the lock. A process that has just released the lock and comes back at once must
    first pass the gate, which the waiting process holds, so the processes take turns instead of one
    re-taking the lock again and again while the other's ACKs wait (measured: bench/README.md "## mllp")."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fds: tuple[int, int] | None = None
        # Seconds spent waiting for the lock and holding it (the statistics line: FeedStats).
        self.waited = 0.0
        self.held = 0.0
        self._taken_at = 0.0

    def __call__(self) -> ProcessLock:
        return self

    def __enter__(self) -> ProcessLock:
        import fcntl

        if self._fds is None:
            self._fds = (
                os.open(self.path + ".gate", os.O_RDWR | os.O_CREAT, 0o600),
                os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600),
            )
        gate, lock = self._fds
        asked = time.perf_counter()
        # Blocking calls release the GIL: only this writer thread waits.
        fcntl.flock(gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        self._taken_at = time.perf_counter()
        self.waited += self._taken_at - asked
        return self

    def __exit__(self, *exc: object) -> None:
        import fcntl

        assert self._fds is not None
        fcntl.flock(self._fds[1], fcntl.LOCK_UN)
        self.held += time.perf_counter() - self._taken_at


class _Checkpointer:
    """Copies the SQLite write-ahead log into the database file from its own thread and connection.

    By default SQLite does this inside the COMMIT that crosses 1,000 WAL pages, so every few hundred
    monitor batches one ACK waited for a checkpoint (copy and fsync of megabytes): the tail of the ACK
    latency. The writer's connection turns that off (``wal_autocheckpoint=0``) and this thread checkpoints
    every ``interval`` seconds instead, in two steps: PASSIVE checkpoints, which copy what is in the
    log without blocking anyone, then — holding the listeners' write lock, so only for the moment it
    takes to copy the few pages written since — a RESTART checkpoint, after which the next write starts
    the log from its beginning. Without the second step a log that is written to all the time never
    restarts: it grew by gigabytes in minutes of benchmark (and every commit extended the file). The web
    application's connections keep their own automatic checkpoints. With several listener processes only
    the first runs one (bench/README.md "## mllp")."""

    PASSES = 6  # at most, before the step under the lock
    LEFT_FOR_LOCKED_STEP = 64  # pages: stop the passes once a pass found fewer new ones than this

    def __init__(self, path: str, interval: float, lock: ProcessLock | None) -> None:
        import sqlite3

        self._db = sqlite3.connect(path, timeout=20, check_same_thread=False)
        # The RESTART step waits at most this long (ms) for a web request's read to end (else: next time).
        self._db.execute("PRAGMA busy_timeout=5")
        self._lock = lock
        self.interval = interval
        # How long each step under the write lock took (ms), since FeedStats last took them.
        self.locked_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mllp-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def for_connection(
        cls, interval: float = 1.0, *, run_thread: bool = True, lock: ProcessLock | None = None
    ) -> _Checkpointer | None:
        if connection.vendor != "sqlite":
            return None
        connection.ensure_connection()
        raw = connection.connection
        raw.execute("PRAGMA wal_autocheckpoint=0")
        # A bigger page cache for the writer: the indexes of a busy feed outgrow SQLite's 2 MB default.
        raw.execute("PRAGMA cache_size=-65536")
        # Small temporary tables (IN lists, sorting) in memory: on disk each one cost a file created and
        # deleted, several times a second.
        raw.execute("PRAGMA temp_store=MEMORY")
        # After a checkpoint has emptied the log, the file is cut back to this size (bytes).
        raw.execute("PRAGMA journal_size_limit=67108864")
        path = database_path()
        return cls(path, interval, lock) if path and run_thread else None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint()

    def checkpoint(self) -> None:
        try:
            # Copy what is there without blocking anyone, in passes: each copies what the writers added
            # during the one before (a fraction), until that is a few pages, so that little is left for the
            # step under the lock: its sync of the database file is what the writers wait for (5–50 ms
            # when it followed two passes; fewer pages, shorter waits: bench/README.md "## mllp").
            copied = -1
            for _ in range(self.PASSES):
                _busy, frames, done = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if copied >= 0 and frames - copied < self.LEFT_FOR_LOCKED_STEP:
                    break
                copied = done
            if self._lock is not None:
                with self._lock:
                    started = time.perf_counter()
                    self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()
                    self.locked_ms.append((time.perf_counter() - started) * 1000)
        except Exception:
            log.exception("WAL checkpoint failed; will retry")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.checkpoint()
        self._db.close()


def database_path() -> str:
    """The SQLite database file of this thread's connection, as SQLite resolved it ("" in memory)."""
    connection.ensure_connection()
    return str(connection.connection.execute("PRAGMA database_list").fetchone()[2] or "")


def lock_path() -> str:
    """The listeners' write-lock file beside the database: every listener process derives the same one."""
    return database_path() + ".mllp-lock"


def _deliver_all(results: list[tuple[_Receiver, Outcome]]) -> None:
    for receiver, outcome in results:
        receiver.deliver(outcome)


class _Connection(asyncio.Protocol):
    """One monitor connection: frames go to the writer as they arrive; ACKs are written in order as the
    writer delivers them (no coroutine or future per message: at thousands of messages a second those
    cost more than the framing). A sender that runs more than ``max_outstanding`` messages ahead of its
    ACKs, or that stops reading its ACKs, is paused until it catches up."""

    def __init__(self, listener: MLLPListener) -> None:
        self.listener = listener
        self.loop = asyncio.get_running_loop()
        self.decoder = FrameDecoder(listener.max_frame_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.address = ""
        self.certificate = ""
        self.outstanding = 0
        self.last_message = self.loop.time()  # when the last complete frame arrived (idle timeout)
        self._counted = False
        self._paused_reading = False
        self._write_blocked = False
        self._closing = False

    # ---------------------------------------------------------------- asyncio callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peername = transport.get_extra_info("peername")
        if isinstance(peername, tuple):
            self.address = str(peername[0])
            self.peer = f"{peername[0]}:{peername[1]}"
        else:
            self.peer = str(peername or "")
        listener = self.listener
        stats = listener.stats
        stats.connections += 1
        stats.open_connections += 1
        listener.connections.add(self)
        per_address = listener.by_address.get(self.address, 0)
        if per_address >= listener.max_connections_per_address:
            stats.refused_connections += 1
            log.warning(
                "MLLP %s: %d connections from this address already open (the most allowed); closed",
                self.peer,
                per_address,
            )
            transport.abort()
            return
        listener.by_address[self.address] = per_address + 1
        self._counted = True
        if listener.ssl_context is not None:
            ssl_object = transport.get_extra_info("ssl_object")
            self.certificate = certificate_subject(ssl_object.getpeercert() if ssl_object else None)

    def data_received(self, data: bytes) -> None:
        listener = self.listener
        now = timezone.now()
        for event in self.decoder.feed(data):
            if isinstance(event, Frame):
                inbound = Inbound(
                    event.payload, self.peer, now, address=self.address, certificate=self.certificate
                )
                self.outstanding += 1
                listener.writer.submit(inbound, self)
            elif isinstance(event, Oversized):
                log.warning("MLLP %s: %s", self.peer, event.reason)
                self.outstanding += 1
                listener.writer.submit(
                    Inbound(
                        event.head,
                        self.peer,
                        now,
                        oversized=True,
                        limit=event.limit,
                        address=self.address,
                        certificate=self.certificate,
                    ),
                    self,
                )
            else:
                listener.junk(self.peer, event)
                continue
            self.last_message = self.loop.time()
        self._flow()

    def eof_received(self) -> bool | None:
        for event in self.decoder.close():
            if isinstance(event, Junk):
                self.listener.junk(self.peer, event)
        # Keep the socket open for writing until the outstanding ACKs are sent (half-close).
        if self.outstanding:
            self._closing = True
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None:
            log.info("MLLP %s: connection lost (%s)", self.peer, exc)
        listener = self.listener
        listener.stats.open_connections -= 1
        listener.connections.discard(self)
        if self._counted:
            self._counted = False
            left = listener.by_address.get(self.address, 1) - 1
            if left > 0:
                listener.by_address[self.address] = left
            else:
                listener.by_address.pop(self.address, None)
        self.transport = None

    def pause_writing(self) -> None:
        self._write_blocked = True
        self._flow()

    def resume_writing(self) -> None:
        self._write_blocked = False
        self._flow()

    def idle_for(self, now: float) -> float:
        """Seconds since the last complete message (0 while ACKs are still owed to it)."""
        return 0.0 if self.outstanding else now - self.last_message

    def close_idle(self) -> None:
        log.info("MLLP %s: no message for %.0f s; connection closed", self.peer, self.listener.idle_timeout)
        self.listener.stats.idle_closed += 1
        if self.transport is not None:
            self.transport.close()

    # ---------------------------------------------------------------- from the writer

    def deliver(self, outcome: Outcome) -> None:
        self.outstanding -= 1
        stats = self.listener.stats
        stats.messages += 1
        code = outcome.code.value
        stats.by_code[code] = stats.by_code.get(code, 0) + 1
        transport = self.transport
        if transport is None or transport.is_closing():
            return  # the monitor went away; it sends the message again when it reconnects
        transport.write(outcome.ack)
        if self._closing and not self.outstanding:
            transport.close()
        else:
            self._flow()

    def failed(self, exc: BaseException) -> None:
        """The writer could not answer (it logged why): drop the connection so the monitor resends."""
        self.outstanding -= 1
        if self.transport is not None:
            self.transport.abort()

    def _flow(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        should_pause = self._write_blocked or self.outstanding >= self.listener.max_outstanding
        if should_pause and not self._paused_reading:
            transport.pause_reading()
            self._paused_reading = True
        elif not should_pause and self._paused_reading:
            transport.resume_reading()
            self._paused_reading = False


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
        max_outstanding: int = 1000,
        sock: socket.socket | None = None,
        checkpoints: bool = True,
        idle_timeout: float = 600.0,
        max_connections_per_address: int = 64,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.max_frame_bytes = max_frame_bytes
        self.max_outstanding = max_outstanding
        self.idle_timeout = idle_timeout
        self.max_connections_per_address = max_connections_per_address
        self.ssl_context = ssl_context
        self.writer = Writer(
            make_store,
            max_batch=max_batch,
            parse_workers=parse_workers,
            checkpoints=checkpoints,
        )
        self.stats = ListenerStats()
        self.connections: set[_Connection] = set()
        self.by_address: dict[str, int] = {}  # open connections per peer address
        self._sock = sock  # a listening socket shared with other listener processes (--processes)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.writer.start)
        loop = asyncio.get_running_loop()
        # A TLS handshake that does not finish in time is dropped too (a connection cannot idle in it).
        context = self.ssl_context
        handshake = min(30.0, self.idle_timeout) if context is not None else None
        if self._sock is not None:
            self._server = await loop.create_server(
                lambda: _Connection(self),
                sock=self._sock,
                backlog=4096,
                ssl=context,
                ssl_handshake_timeout=handshake,
            )
        else:
            self._server = await loop.create_server(
                lambda: _Connection(self),
                self.host,
                self.port,
                backlog=4096,
                ssl=context,
                ssl_handshake_timeout=handshake,
            )
        self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.create_task(self._close_idle())

    async def _close_idle(self) -> None:
        """Every few seconds (a quarter of the timeout, at most 5 s): close the connections that have
        delivered no complete message for ``idle_timeout`` seconds. One pass over the connections, not a
        timer per message."""
        loop = asyncio.get_running_loop()
        every = max(0.05, min(5.0, self.idle_timeout / 4))
        while True:
            await asyncio.sleep(every)
            now = loop.time()
            for conn in [c for c in self.connections if c.idle_for(now) >= self.idle_timeout]:
                conn.close_idle()

    async def serve_forever(self) -> None:
        assert self._server is not None
        async with self._server:
            await self._server.serve_forever()

    async def close(self) -> None:
        """Stop accepting, close the connections (unacknowledged messages are sent again by the monitors
        when they reconnect), then let the writer finish its queue."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            if conn.transport is not None:
                conn.transport.close()
        if self._server is not None:
            await self._server.wait_closed()
        await asyncio.to_thread(self.writer.stop)

    def junk(self, peer: str, event: Junk) -> None:
        self.stats.junk_events += 1
        if event.is_whitespace:
            return
        log.warning("MLLP %s: %s: %d bytes skipped", peer, event.reason, len(event.data))


async def run(listener: MLLPListener, *, ready: Callable[[MLLPListener], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM, then stop accepting and let the writer finish its queue. SIGUSR1 prints
    the statistics line of :class:`FeedStats` (since the last one); stopping prints the last."""
    await listener.start()
    # Everything loaded so far (Django, the models, the caches) lives as long as the process: move it out
    # of the garbage collector's sight, so that a full collection walks only what the feed made since
    # and does not stall the ACKs for tens of milliseconds (bench/README.md "## mllp").
    gc.collect()
    gc.freeze()
    if ready is not None:
        ready(listener)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stats = FeedStats(listener)
    if sys.platform != "win32":
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        loop.add_signal_handler(signal.SIGUSR1, stats.print_line)
    serve = asyncio.create_task(listener.serve_forever())
    await stop.wait()
    serve.cancel()
    await listener.close()
    stats.print_line()
