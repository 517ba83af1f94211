"""`ketaclinic serve` runs several worker processes, so one slow request cannot stall the clinic, and the
background sweeps still run once (issue 15, serving). Real processes, real HTTP, a real SQLite file."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from tests.servers import wait_until_healthy

# A site that adds one page to the application: it holds the interpreter lock for seconds (a regular
# expression that backtracks, as a runaway page does in C code), so the worker that runs it can do nothing
# else, not even accept a connection.
SETTINGS = """
from ketaclinic.settings import *  # noqa: F403

ROOT_URLCONF = "slowsite_urls"
"""
URLS = """
import os
import re
from pathlib import Path

from django.http import HttpResponse
from django.urls import include, path

from ketaclinic.core.access import public


@public
def slow(request):
    Path(os.environ["SLOWSITE_STARTED"]).write_text(str(os.getpid()))
    re.match(r"(a+)+$", "a" * 24 + "b")
    return HttpResponse(str(os.getpid()))


urlpatterns = [path("slow/", slow), path("", include("ketaclinic.urls"))]
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str, dict[str, str]]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "slowsite_settings.py").write_text(textwrap.dedent(SETTINGS))
    (site / "slowsite_urls.py").write_text(textwrap.dedent(URLS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KETACLINIC_", "DJANGO_"))}
    env.update(
        KETACLINIC_VAR_DIR=str(tmp_path / "var"),
        DJANGO_SETTINGS_MODULE="slowsite_settings",
        PYTHONPATH=os.pathsep.join([str(site), *filter(None, [os.environ.get("PYTHONPATH")])]),
        SLOWSITE_STARTED=str(tmp_path / "slow-started"),
        KETACLINIC_WEB_WORKERS="2",  # the default is 4; two keep the test light on a 2-core CI machine
    )
    subprocess.run(
        [sys.executable, "-m", "ketaclinic.cli", "migrate", "--no-input"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ketaclinic.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(proc, base, tmp_path / "serve.log")
        yield proc, base, env
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_a_slow_request_does_not_stall_the_health_check(
    server: tuple[subprocess.Popen[str], str, dict[str, str]], tmp_path: Path
) -> None:
    proc, base, env = server
    slow: dict[str, Any] = {}

    def run_slow() -> None:
        started = time.monotonic()
        response = requests.get(f"{base}/slow/", timeout=300)
        slow.update(status=response.status_code, seconds=time.monotonic() - started)

    thread = threading.Thread(target=run_slow)
    thread.start()
    marker = Path(env["SLOWSITE_STARTED"])
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert time.monotonic() < deadline, "the slow page never started"
        time.sleep(0.05)
    time.sleep(0.3)  # the slow page is now inside its regular expression
    answered = []
    for _ in range(5):
        started = time.monotonic()
        response = requests.get(f"{base}/healthz", timeout=30)
        answered.append((response.status_code, time.monotonic() - started))
        assert thread.is_alive(), "the slow page ended before the health checks: nothing was proven"
    thread.join(timeout=300)
    assert slow["status"] == 200
    assert all(code == 200 for code, _ in answered)
    assert max(seconds for _, seconds in answered) < 2.0, (answered, slow)

    # The sweeps ran, and only in the supervising process, never once per worker.
    owner = f"{socket.gethostname()}:{proc.pid}"[:80]
    db = sqlite3.connect(Path(env["KETACLINIC_VAR_DIR"]) / "ketaclinic.sqlite3")
    try:
        runners = {
            row[0] for row in db.execute("SELECT DISTINCT claimed_by FROM core_job WHERE claimed_by != ''")
        }
        pending = dict(
            db.execute(
                "SELECT kind, COUNT(*) FROM core_job WHERE finished_at IS NULL"
                " AND kind IN ('chairside.sweep', 'measures.sweep') GROUP BY kind"
            ).fetchall()
        )
        beats = {row[0] for row in db.execute("SELECT ran_by FROM core_heartbeat")}
    finally:
        db.close()
    assert runners == {owner} and beats == {owner}
    assert pending == {"chairside.sweep": 1, "measures.sweep": 1}
