"""SIGKILL while monitors stream: no acknowledged reading is lost (security.md §5.5 harness, one kill).

The listener runs as a subprocess on a file SQLite database (WAL, synchronous=FULL, as in production).
Clients stream over several persistent connections and record every control id acknowledged AA; the
listener is killed with SIGKILL mid-stream, restarted, and every acknowledged message must be in the
database with all its readings. Unacknowledged messages are sent again after the restart: each is
stored exactly once.
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
from datetime import UTC, datetime
from pathlib import Path

from tests.servers import read_ack, vitals_frame

ROOT = Path(__file__).parents[2]
READINGS_PER_MESSAGE = 5  # sbp, dbp, hr, spo2, rr


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KETACLINIC_VAR_DIR=str(tmp),
        KETACLINIC_DATABASE_URL=f"sqlite:///{tmp / 'feed.sqlite3'}",
        KETACLINIC_SECRET_KEY="crash-test-secret-" + "x" * 40,
        DJANGO_SETTINGS_MODULE="ketaclinic.settings",
        PYTHONPATH=str(ROOT / "src"),
    )
    env.pop("KETACLINIC_TEST_DB", None)
    return env


def _django(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", *args], env=env, check=True, capture_output=True, timeout=180
    )


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "mllp", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("listening on"), line
    return proc, int(line.rsplit(":", 1)[1])


def _message(cid: str) -> bytes:
    return vitals_frame(cid, device="00112233445566AA", at=datetime(2026, 3, 2, 14, 0, tzinfo=UTC))


def _stream(port: int, prefix: str, acked: list[str], sent: list[str], stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            n = 0
            while not stop.is_set():
                cid = f"{prefix}-{n:05d}"
                sent.append(cid)
                sock.sendall(_message(cid))
                ack = read_ack(sock)
                if b"MSA|AA|" + cid.encode() in ack:
                    acked.append(cid)
                n += 1
    except OSError:
        return  # the listener was killed


def test_sigkill_mid_stream_loses_no_acknowledged_reading(tmp_path: Path) -> None:
    env = _env(tmp_path)
    _django(env, "migrate", "--noinput")
    _django(
        env,
        "shell",
        "-c",
        "from ketaclinic.accounts.models import Organization, Site;"
        "o=Organization.objects.create(name='Crash', slug='crash');"
        "Site.objects.create(organization=o, code='main', name='Main', time_zone='UTC');"
        # The streaming monitor, registered (allowed from this computer by default).
        "from ketaclinic.monitoring.models import MonitorDevice;"
        "MonitorDevice.objects.create(organization=o, identifier='00112233445566AA')",
    )
    proc, port = _start(env)
    acked: list[str] = []
    sent: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_stream, args=(port, f"c{i}", acked, sent, stop)) for i in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < 300 and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # mid-stream: clients are still sending
    proc.wait(10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 300, "the listener did not acknowledge enough messages before the deadline"

    db = sqlite3.connect(tmp_path / "feed.sqlite3")
    stored = dict(
        db.execute(
            "SELECT m.control_id, COUNT(r.id) FROM monitoring_hl7message m "
            "LEFT JOIN monitoring_vitalreading r ON r.message_id = m.id GROUP BY m.id"
        ).fetchall()
    )
    missing = [cid for cid in acked if cid not in stored]
    assert missing == []
    assert all(stored[cid] == READINGS_PER_MESSAGE for cid in acked)

    # Restart; resend everything that was sent (acknowledged or not): each message is stored exactly once.
    proc, port = _start(env)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for cid in sent:
                sock.sendall(_message(cid))
                assert b"MSA|AA|" + cid.encode() in read_ack(sock)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    counts = db.execute("SELECT COUNT(*), COUNT(DISTINCT control_id) FROM monitoring_hl7message").fetchone()
    assert counts == (len(set(sent)), len(set(sent)))
    readings = db.execute("SELECT COUNT(*) FROM monitoring_vitalreading").fetchone()[0]
    assert readings == READINGS_PER_MESSAGE * len(set(sent))
