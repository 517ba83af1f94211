"""``ketaclinic mllp --processes N``: several listener processes on one port and one SQLite file.

The listener runs as a subprocess (as in production). Checked: every message from many connections is
acknowledged AA and stored once with its readings; the same message sent on several connections at the
same moment (a monitor that resends after a reconnect) is stored once although different processes may
receive it; a listener process that dies is started again by the parent and no acknowledged reading is
lost; SIGTERM to the parent stops every process.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.monitoring import test_crash as crash
from tests.servers import read_ack


def _start(env: dict[str, str], processes: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "mllp", "--port", "0", "--processes", str(processes)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on"), line
    return proc, int(line.rsplit(":", 1)[1])


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(k) for k in (task / "children").read_text().split()]
    return out


def _setup(tmp_path: Path) -> dict[str, str]:
    env = crash._env(tmp_path)
    crash._django(env, "migrate", "--noinput")
    crash._django(
        env,
        "shell",
        "-c",
        "from ketaclinic.accounts.models import Organization, Site;"
        "o=Organization.objects.create(name='Multi', slug='multi');"
        "Site.objects.create(organization=o, code='main', name='Main', time_zone='UTC');"
        # The streaming monitor, registered (allowed from this computer by default).
        "from ketaclinic.monitoring.models import MonitorDevice;"
        "MonitorDevice.objects.create(organization=o, identifier='00112233445566AA')",
    )
    return env


def _send_same(port: int, cid: str, results: list[bytes], barrier: threading.Barrier) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        barrier.wait(10)
        sock.sendall(crash._message(cid))
        results.append(read_ack(sock))


def test_several_processes_store_each_message_once(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    proc, port = _start(env, 2)
    try:
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_children(proc.pid)) == 2

        # Many connections streaming at once.
        acked: list[str] = []
        sent: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=crash._stream, args=(port, f"s{i}", acked, sent, stop)) for i in range(8)
        ]
        for t in threads:
            t.start()
        while len(acked) < 400 and time.monotonic() < deadline + 30:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join(20)
        assert len(acked) >= 400

        # The same message on eight connections at the same moment: every copy AA, stored once.
        results: list[bytes] = []
        barrier = threading.Barrier(8)
        same = [
            threading.Thread(target=_send_same, args=(port, "SAME-1", results, barrier)) for _ in range(8)
        ]
        for t in same:
            t.start()
        for t in same:
            t.join(30)
        assert len(results) == 8 and all(b"MSA|AA|SAME-1" in r for r in results)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0

    db = sqlite3.connect(tmp_path / "feed.sqlite3")
    stored = dict(
        db.execute(
            "SELECT m.control_id, COUNT(r.id) FROM monitoring_hl7message m "
            "LEFT JOIN monitoring_vitalreading r ON r.message_id = m.id GROUP BY m.id"
        ).fetchall()
    )
    assert [cid for cid in acked if cid not in stored] == []
    assert all(stored[cid] == crash.READINGS_PER_MESSAGE for cid in acked)
    rows = db.execute("SELECT COUNT(*) FROM monitoring_hl7message WHERE control_id = 'SAME-1'").fetchone()
    assert rows == (1,)
    total, distinct = db.execute(
        "SELECT COUNT(*), COUNT(DISTINCT control_id) FROM monitoring_hl7message"
    ).fetchone()
    assert total == distinct  # nothing stored twice
    # Both processes wrote their audit entries, each naming itself.
    details = [d for (d,) in db.execute("SELECT detail FROM audit_auditentry WHERE client = 'hl7'")]
    assert any("listener 1 of 2" in d or "listener 2 of 2" in d for d in details)


def test_a_listener_process_that_dies_is_started_again(tmp_path: Path) -> None:
    env = _setup(tmp_path)
    proc, port = _start(env, 2)
    try:
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = set(_children(proc.pid))
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        while time.monotonic() < deadline + 20:
            now = set(_children(proc.pid))
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.05)
        now = set(_children(proc.pid))
        assert len(now) == 2 and victim not in now
        # The port still answers, on every new connection.
        for i in range(6):
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(crash._message(f"after-{i}"))
                assert f"MSA|AA|after-{i}".encode() in read_ack(sock)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0


def test_the_write_ahead_log_restarts_while_monitors_write_all_the_time(tmp_path: Path) -> None:
    """The listener's checkpointer (PASSIVE, then RESTART under the write lock) lets the log start again
    from its beginning although a writer commits without pause; without the locked step the log of a
    busy feed only ever grew (gigabytes in minutes of benchmark)."""
    from ketaclinic.monitoring.listener import ProcessLock, _Checkpointer

    path = tmp_path / "wal.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute("CREATE TABLE t (x BLOB)")
    lock = ProcessLock(str(path) + ".mllp-lock")
    checkpointer = _Checkpointer(str(path), 0.2, ProcessLock(str(path) + ".mllp-lock"))
    written = 0
    stop_at = time.monotonic() + 3
    try:
        while time.monotonic() < stop_at:
            with lock:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("INSERT INTO t VALUES (?)", [(os.urandom(2000),) for _ in range(20)])
                db.execute("COMMIT")
            written += 20 * 2000
    finally:
        checkpointer.stop()
    wal = (tmp_path / "wal.sqlite3-wal").stat().st_size
    assert written > 4_000_000
    assert wal < written / 4  # restarted, not grown by everything written
    assert db.execute("SELECT count(*) FROM t").fetchone()[0] == written // 2000


def _stats_lines(proc: subprocess.Popen[str], count: int, timeout: float) -> list[dict[str, object]]:
    """The next ``count`` 'feed stats' lines the listener processes print (JSON after the prefix)."""
    import json
    import queue

    lines: queue.SimpleQueue[str] = queue.SimpleQueue()

    def read() -> None:
        assert proc.stdout is not None
        for _ in range(count):
            lines.put(proc.stdout.readline())

    threading.Thread(target=read, daemon=True).start()
    out = []
    for _ in range(count):
        line = lines.get(timeout=timeout)
        assert line.startswith("feed stats "), line
        out.append(json.loads(line.removeprefix("feed stats ")))
    return out


def test_usr1_prints_each_processes_feed_statistics_without_message_content(tmp_path: Path) -> None:
    """An operator asks a busy listener what it is doing (``kill -USR1``): one line per process with what
    it stored since the last line, how long it waited for and held the write lock, and the checkpoint
    steps under the lock; never a control id or other message content. Stopping prints the last lines."""
    env = _setup(tmp_path)
    proc, port = _start(env, 2)
    try:
        deadline = time.monotonic() + 20
        while len(_children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        acked: list[str] = []
        sent: list[str] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=crash._stream, args=(port, f"u{i}", acked, sent, stop)) for i in range(6)
        ]
        for t in threads:
            t.start()
        time.sleep(2.5)  # more than two checkpoint intervals
        stop.set()
        for t in threads:
            t.join(20)
        os.kill(proc.pid, signal.SIGUSR1)
        first = _stats_lines(proc, 2, 20)
        # The next request reports only what happened since: nothing.
        os.kill(proc.pid, signal.SIGUSR1)
        second = _stats_lines(proc, 2, 20)
    finally:
        proc.send_signal(signal.SIGTERM)
        final = _stats_lines(proc, 2, 30)
        proc.wait(30)
    assert proc.returncode == 0
    assert len(acked) > 50
    assert sorted(str(s["process"]) for s in first) == ["listener 1 of 2", "listener 2 of 2"]
    assert sum(int(s["messages"]) for s in first) == len(acked)  # type: ignore[call-overload]
    busy = [s for s in first if s["messages"]]  # the kernel may hand every connection to one process
    assert busy
    for s in busy:
        assert 1 <= int(s["batches"]) <= int(s["messages"])  # type: ignore[call-overload]
        assert 0 < float(s["write_lock_held_share"]) < 1  # type: ignore[arg-type]
        assert 0 <= float(s["write_lock_wait_share"]) < 1  # type: ignore[arg-type]
        assert float(s["store_ms_per_batch"]) > 0  # type: ignore[arg-type]
    # Only the first process checkpoints; it did so about once a second while the feed ran.
    steps = {s["process"]: s["checkpoint_locked_steps"] for s in first}
    assert steps["listener 2 of 2"] == 0 and int(steps["listener 1 of 2"]) >= 2  # type: ignore[call-overload]
    assert all(s["messages"] == 0 and s["batches"] == 0 for s in second)
    assert all(s["messages"] == 0 for s in final)
    text = repr(first + second + final)
    assert not any(cid in text for cid in acked) and "PID" not in text and "MRN" not in text
