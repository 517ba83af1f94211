"""Talking to real server processes the tests started: waiting for ``ketaclinic serve`` to answer, and
framing a monitor's vitals message for the MLLP listener and reading its acknowledgement."""

from __future__ import annotations

import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import requests


def wait_until_healthy(proc: subprocess.Popen[Any], base: str, log: Path, *, seconds: float = 120) -> None:
    """Poll ``/healthz`` until it answers 200; fail with the server's own log if it exits or never answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError("serve did not start:\n" + log.read_text())
        time.sleep(0.5)


SB, EB, CR = b"\x0b", b"\x1c", b"\r"


def vitals_frame(cid: str, *, device: str, at: datetime) -> bytes:
    """One MLLP-framed ORU^R01 with ordinary vitals (120/80, 60, 98 %, 14) from ``device`` at bed C1."""
    from ketaclinic.interop.hl7.simulator import make_vitals_message

    text = make_vitals_message(
        device_eui64=device,
        bed="C1",
        patient_id=None,
        at=at,
        sbp=120,
        dbp=80,
        hr=60,
        spo2=98,
        rr=14,
        control_id=cid,
    )
    return SB + text.encode() + EB + CR


def read_ack(sock: socket.socket) -> bytes:
    """Read one framed acknowledgement; ``ConnectionError`` when the listener closes first."""
    data = b""
    while not data.endswith(EB + CR):
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data
