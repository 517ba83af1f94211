"""MLLP over TLS with client certificates (IHE ATNA node authentication, issue 15 point 3): a monitor with
a certificate from the clinic's CA is answered and its certificate named on the message; one without a
certificate, with a certificate from another CA, or speaking plain MLLP, gets nothing stored.

The throwaway CA and certificates are made with ``openssl`` (the ``cryptography`` package is not
installed in this environment); the clients are Python's ssl module, a real TLS peer."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ketaclinic.interop.hl7.simulator import make_vitals_message
from ketaclinic.monitoring.models import HL7Message
from ketaclinic.monitoring.trust import server_context

from .conftest import ThreadedListener, register_monitor

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
SB, EB, CR = b"\x0b", b"\x1c", b"\r"
EUI = "0011223344556677"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _ca(cwd: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/O=Test/CN={name}", cwd=cwd,
    )  # fmt: skip


def _signed(cwd: Path, name: str, ca: str, subject: str, extensions: str) -> None:
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=cwd,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-CAcreateserial",
        "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=cwd,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Path:
    d = tmp_path_factory.mktemp("pki")
    _ca(d, "clinic-ca")
    _ca(d, "rogue-ca")
    _signed(d, "server", "clinic-ca", "/O=Test Clinic/CN=localhost",
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    _signed(d, "monitor", "clinic-ca", "/O=Test Clinic/CN=monitor-bay-4", "extendedKeyUsage=clientAuth\n")
    _signed(d, "intruder", "rogue-ca", "/O=Elsewhere/CN=monitor-bay-4", "extendedKeyUsage=clientAuth\n")
    return d


@pytest.fixture
def tls_listener(pki: Path, transactional_db: Any, org: Any, site: Any) -> Any:
    register_monitor(org, EUI)
    context = server_context(
        cert=str(pki / "server.pem"), key=str(pki / "server.key"), ca=str(pki / "clinic-ca.pem")
    )
    lst = ThreadedListener(listener_options={"ssl_context": context}, organization=org, default_site=site)
    yield lst
    lst.stop()


def message(cid: str) -> bytes:
    text = make_vitals_message(
        device_eui64=EUI, bed="C1", patient_id=None, at=timezone.now(),
        sbp=120, dbp=80, hr=60, spo2=98, rr=14, control_id=cid,
    )  # fmt: skip
    return SB + text.encode() + EB + CR


def client_context(pki: Path, cert: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki / "clinic-ca.pem"))
    if cert is not None:
        context.load_cert_chain(str(pki / f"{cert}.pem"), str(pki / f"{cert}.key"))
    return context


def exchange_tls(lst: ThreadedListener, pki: Path, cert: str | None, cid: str) -> bytes:
    """What comes back over TLS for one message ("" when the listener refused the peer)."""
    raw = b""
    try:
        with socket.create_connection((lst.host, lst.port), timeout=10) as plain:
            with client_context(pki, cert).wrap_socket(plain, server_hostname="localhost") as sock:
                sock.sendall(message(cid))
                while not raw.endswith(EB + CR):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    raw += chunk
    except (ssl.SSLError, ConnectionError, TimeoutError):
        pass
    return raw


def test_a_monitor_with_the_clinics_certificate_is_answered_and_named(tls_listener: Any, pki: Path) -> None:
    ack = exchange_tls(tls_listener, pki, "monitor", "TLS1")
    assert b"MSA|AA|TLS1" in ack
    row = HL7Message.objects.get()
    assert row.peer_certificate == "O=Test Clinic, CN=monitor-bay-4"
    assert row.readings.count() == 5


@pytest.mark.parametrize("cert", [None, "intruder"], ids=["no certificate", "another CA's certificate"])
def test_a_peer_without_a_valid_client_certificate_gets_nothing_stored(
    tls_listener: Any, pki: Path, cert: str | None
) -> None:
    assert exchange_tls(tls_listener, pki, cert, "TLS2") == b""
    assert not HL7Message.objects.exists()


def test_plain_mllp_to_the_tls_port_is_not_read(tls_listener: Any) -> None:
    with socket.create_connection((tls_listener.host, tls_listener.port), timeout=10) as sock:
        sock.sendall(message("PLAIN1"))
        try:
            answer = sock.recv(65536)
        except ConnectionError:
            answer = b""
    assert b"MSA" not in answer
    assert not HL7Message.objects.exists()


def test_the_command_names_what_tls_is_missing(db: Any, org: Any, pki: Path) -> None:
    with pytest.raises(CommandError) as missing:
        call_command("mllp", "--tls-cert", str(pki / "server.pem"))
    assert "missing: key, CA" in str(missing.value)
    with pytest.raises(CommandError) as unreadable:
        call_command(
            "mllp", "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "monitor.key"),
            "--tls-ca", str(pki / "clinic-ca.pem"),
        )  # fmt: skip
    assert "could not be loaded" in str(unreadable.value)  # a key that is not the certificate's
    with pytest.raises(CommandError) as bad:
        call_command("mllp", "--idle-timeout", "1", "--max-connections-per-address", "0")
    assert "--idle-timeout must be between 10 and 86400" in str(bad.value)
    assert "--max-connections-per-address must be between 1 and 100000" in str(bad.value)
