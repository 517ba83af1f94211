"""SIGKILL under write load (issue 15, point 5; security.md §5.5).

A real clinic in a temporary directory (the demo, on a file SQLite database or a PostgreSQL URL): the web
server (`ketaclinic serve`, uvicorn) and the monitor listener (`ketaclinic mllp`) run as child processes
while writers keep three kinds of write going through the real edges:

* the HL7 feed: bedside-monitor messages over MLLP, each acknowledged AA by control id;
* readings: batches posted to the JSON API (signed-in nurse, CSRF, second factor), each with an
  idempotency key, acknowledged 201/200;
* controlled-drug register writes: stock receipts through the Controlled drugs form, acknowledged by the
  redirect to the new lot;
* doses: esketamine nasal devices posted to the JSON API (``/api/sessions/<id>/administrations``), each
  drawing one device from a lot in the register, acknowledged 201 with the administration's id. Before the
  first kill a pool of sessions is made ready (tests/security/dose_pool.py: consent, check-in, baseline,
  gate open) and the writer gives each its planned devices, moving to the next when one is full. The dose
  API has no idempotency key, so the harness keeps the ids it was answered with.

At random moments the server, the listener or both are killed with SIGKILL (their whole process group) and
started again. At the end every acknowledged write must be in the database, whole (a message with all its
readings, a batch with its readings, a lot with its receipt entry, a dose with its stock draw and a draw
with its dose, no device given twice — no half of a use case), and the audit
chain and the register chain must verify (`ketaclinic audit verify`, `ketaclinic check`).

Used by tests/security/test_sigkill.py (a few kills in CI) and bench/soak.py (`make soak`, 200 or more).
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from tests.security.dose_pool import DEVICES_PER_SESSION
from tests.servers import read_ack, vitals_frame

ROOT = Path(__file__).parents[2]
DEVICE = "00112233445566AA"
READINGS_PER_MESSAGE = 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Acked:
    hl7: list[str] = field(default_factory=list)
    batches: list[str] = field(default_factory=list)
    lots: list[str] = field(default_factory=list)
    doses: list[str] = field(default_factory=list)  # administration ids answered 201
    full: list[str] = field(default_factory=list)  # dose-pool sessions given all their devices
    pool: int = 0  # dose-pool sessions made ready
    unanswered: dict[str, int] = field(default_factory=dict)  # status (or "no answer") → count, not acked
    lock: threading.Lock = field(default_factory=threading.Lock)

    def miss(self, status: object) -> None:
        with self.lock:
            key = str(status)
            self.unanswered[key] = self.unanswered.get(key, 0) + 1

    def add(self, kind: str, key: str) -> None:
        with self.lock:
            getattr(self, kind).append(key)

    def total(self) -> int:
        return len(self.hl7) + len(self.batches) + len(self.lots) + len(self.doses)


class Clinic:
    """The clinic's processes in ``root``, on ``database_url`` (default: a SQLite file in ``root``)."""

    def __init__(self, root: Path, database_url: str | None = None) -> None:
        self.root = root
        self.env = dict(os.environ)
        self.env.update(
            KETACLINIC_VAR_DIR=str(root),
            KETACLINIC_DATABASE_URL=database_url or f"sqlite:///{root / 'clinic.sqlite3'}",
            KETACLINIC_SECRET_KEY="sigkill-harness-secret-" + "x" * 40,
            KETACLINIC_SECURE_COOKIES="0",
            DJANGO_SETTINGS_MODULE="ketaclinic.settings",
            PYTHONPATH=str(ROOT / "src"),
        )
        self.env.pop("KETACLINIC_TEST_DB", None)
        # The anchor key as a production clinic keeps it: a 0600 file outside the data directory
        # (`ketaclinic check` fails on a key derived from the secret key).
        import secrets
        import tempfile

        keys = Path(tempfile.mkdtemp(prefix="ketaclinic-anchor-key-"))
        key_file = keys / "anchor.key"
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)
        self.env["KETACLINIC_ANCHOR_KEY_FILE"] = str(key_file)
        self.key_dir = keys
        self.web_port = free_port()
        self.mllp_port = free_port()
        self.web: subprocess.Popen[bytes] | None = None
        self.mllp: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}

    # -- commands ---------------------------------------------------------------------------------------

    def manage(
        self, *args: str, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def shell(self, code: str) -> Any:
        out = self.manage("shell", "-c", code).stdout.strip().splitlines()
        return json.loads(out[-1])

    def prepare(self) -> None:
        self.manage("migrate", "--noinput")
        self.manage("demo")
        self.info = self.shell(
            "import json;from django.utils import timezone;"
            "from ketaclinic.accounts.models import Organization, Site;"
            "from ketaclinic.chairside.models import TreatmentSession;"
            "from ketaclinic.monitoring.models import MonitorDevice;"
            "o=Organization.objects.get(slug='demo');"
            "MonitorDevice.objects.get_or_create(organization=o, identifier='" + DEVICE + "');"
            "s=TreatmentSession.objects.filter(organization=o, patient__site__code='harbor',"
            " status__in=['checked_in','pre_dose','dosing','monitoring','recovery']).order_by('scheduled_at').first();"
            "print(json.dumps({'session': str(s.pk), 'started': s.scheduled_at.isoformat(),"
            " 'site': Site.objects.get(organization=o, code='harbor').pk}))"
        )

    def prepare_doses(self, count: int) -> None:
        """``count`` esketamine sessions with the gate open and a lot of devices for all of them."""
        self.info["doses"] = self.shell(
            f"import json, sys; sys.path.insert(0, {str(ROOT)!r});"
            "from tests.security.dose_pool import make;"
            f"print(json.dumps(make({count})))"
        )

    # -- processes --------------------------------------------------------------------------------------

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "django", *args],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: a kill reaches every worker it started
        )

    def start(self, which: str = "both") -> None:
        if which in ("web", "both"):
            self.web = self._spawn(
                "serve", "--host", "127.0.0.1", "--port", str(self.web_port), "--no-sweeps"
            )
        if which in ("mllp", "both"):
            self.mllp = self._spawn("mllp", "--host", "127.0.0.1", "--port", str(self.mllp_port))
        self.wait_ready(which)

    def wait_ready(self, which: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ok = True
            if which in ("web", "both"):
                try:
                    ok &= requests.get(f"{self.base}/healthz", timeout=2).status_code == 200
                except requests.RequestException:
                    ok = False
            if which in ("mllp", "both"):
                try:
                    socket.create_connection(("127.0.0.1", self.mllp_port), timeout=1).close()
                except OSError:
                    ok = False
            if ok:
                return
            time.sleep(0.1)
        raise TimeoutError(f"{which} did not start")

    def kill(self, which: str) -> None:
        for name in ("web", "mllp") if which == "both" else (which,):
            proc: subprocess.Popen[bytes] | None = getattr(self, name)
            if proc is None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(30)
            setattr(self, name, None)

    def stop(self) -> None:
        for name in ("web", "mllp"):
            proc: subprocess.Popen[bytes] | None = getattr(self, name)
            if proc is None:
                continue
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
            setattr(self, name, None)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    # -- signing in -------------------------------------------------------------------------------------

    def signed_in(self, username: str = "demo.nurse") -> requests.Session:
        code = self.shell(
            f"import json;from ketaclinic.core import demo;print(json.dumps(demo.current_code('{username}')))"
        )
        http = requests.Session()
        http.get(f"{self.base}/accounts/login/", timeout=10)
        token = http.cookies.get("ketaclinic-csrf")
        password = self.shell(
            "import json;from ketaclinic.core import demo;print(json.dumps(demo.DEMO_PASSWORD))"
        )
        r = http.post(
            f"{self.base}/accounts/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token},
            timeout=10,
        )
        r.raise_for_status()
        token = http.cookies.get("ketaclinic-csrf")
        r = http.post(
            f"{self.base}/accounts/mfa/", data={"token": code, "csrfmiddlewaretoken": token}, timeout=10
        )
        assert http.get(f"{self.base}/", timeout=10, allow_redirects=False).status_code == 200, "signed in"
        return http


# --------------------------------------------------------------------------- a private PostgreSQL


def postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this computer (/usr/lib/postgresql/*/bin), if any."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb into a temporary directory, a free port): the harness may
    crash it with ``pg_ctl stop -m immediate``. Never the shared server. Run as the ``postgres`` account
    when this process is root (initdb refuses root)."""

    def __init__(self, bindir: Path) -> None:
        import tempfile

        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="ketaclinic-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            import shutil

            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=120)

    def init(self) -> str:
        self._run(
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        self.start()
        self._run(
            str(self.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "clinic"
        )
        return f"postgresql://postgres@127.0.0.1:{self.port}/clinic"

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=on"
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.dir / "log"),
            "-w",
            "start",
        )

    def crash(self) -> None:
        """Stop at once, without a checkpoint: the next start recovers from the write-ahead log."""
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def destroy(self) -> None:
        import shutil

        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def crash_everything(pg: PrivatePostgres) -> Callable[[Clinic, str], None]:
    """The PostgreSQL variant's kill: the database stops immediately under load, then the processes die."""

    def kill(clinic: Clinic, which: str) -> None:
        pg.crash()
        time.sleep(0.2)  # the writers meet a database that is gone
        clinic.kill(which)
        pg.start()

    return kill


# --------------------------------------------------------------------------- writers


def _hl7(cid: str) -> bytes:
    return vitals_frame(
        cid, device=DEVICE, at=datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    )


def hl7_writer(clinic: Clinic, acked: Acked, stop: threading.Event, prefix: str) -> None:
    n = 0
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", clinic.mllp_port), timeout=10) as sock:
                while not stop.is_set():
                    cid = f"{prefix}-{n:06d}"
                    n += 1
                    sock.sendall(_hl7(cid))
                    if b"MSA|AA|" + cid.encode() in read_ack(sock):
                        acked.add("hl7", cid)
        except OSError:
            time.sleep(0.05)  # killed: wait for the restart


def readings_writer(clinic: Clinic, http: requests.Session, acked: Acked, stop: threading.Event) -> None:
    n = 0
    session = clinic.info["session"]
    while not stop.is_set():
        key = f"soak-{os.getpid()}-{n:06d}"
        n += 1
        at = (datetime.now(UTC) - timedelta(seconds=2)).isoformat()
        body = {
            "readings": [{"observed_at": at, "sbp_mmhg": 118, "dbp_mmhg": 76, "hr_bpm": 64, "spo2_pct": 98}]
        }
        try:
            r = http.post(
                f"{clinic.base}/api/sessions/{session}/observations",
                json=body,
                headers={"X-CSRFToken": http.cookies.get("ketaclinic-csrf") or "", "Idempotency-Key": key},
                timeout=15,
            )
        except requests.RequestException:
            acked.miss("no answer")
            time.sleep(0.05)
            continue
        if r.status_code in (200, 201):
            acked.add("batches", key)
        elif r.status_code in (401, 403, 422):  # the harness's own mistake, not a crash
            raise AssertionError(f"readings refused: {r.status_code} {r.text[:300]}")
        else:  # the process or the database was going down: nothing acknowledged
            acked.miss(r.status_code)


def ledger_writer(clinic: Clinic, http: requests.Session, acked: Acked, stop: threading.Event) -> None:
    n = 0
    # The demo's Harbor Street site is in New York: its day, not the server's UTC date (tomorrow after 19:00).
    today = datetime.now(ZoneInfo("America/New_York")).date()
    while not stop.is_set():
        lot = f"SOAK-{os.getpid()}-{n:06d}"
        n += 1
        data = {
            "site": clinic.info["site"],
            "drug": "ketamine",
            "product": "Ketamine HCl 50 mg/mL, 10 mL vial",
            "lot": lot,
            "unit": "mL",
            "mg_per_unit": "50",
            "quantity": "10",
            "containers": "1",
            "supplier_name": "Demo Pharma Distribution",
            "supplier_address": "100 Wholesale Way, Springfield",
            "supplier_dea": "RD0000000",
            "received_on": today.isoformat(),
            "expiry": (today + timedelta(days=400)).isoformat(),
            "csrfmiddlewaretoken": http.cookies.get("ketaclinic-csrf") or "",
        }
        try:
            r = http.post(f"{clinic.base}/ledger/receive/", data=data, allow_redirects=False, timeout=15)
        except requests.RequestException:
            acked.miss("no answer")
            time.sleep(0.05)
            continue
        if r.status_code == 302 and "/ledger/lots/" in r.headers.get("Location", ""):
            acked.add("lots", lot)
        elif r.status_code in (200, 403) or (
            r.status_code == 302 and "login" in r.headers.get("Location", "")
        ):
            raise AssertionError(f"receipt refused: {r.status_code} {r.text[:300]}")
        else:
            acked.miss(r.status_code)


def dose_writer(
    clinic: Clinic, http: requests.Session, acked: Acked, stop: threading.Event, gap: float
) -> None:
    """One nasal device at a time through the API, every ``gap`` seconds, into the pool's sessions in turn.

    A 422 on a session already written to means it is full (its last device was stored but its answer lost
    to a kill, so the session moved on to monitoring): the writer goes to the next. A 422 on a session never
    written to is the harness's own mistake."""
    pool = list(clinic.info["doses"]["sessions"])
    acked.pool = len(pool)
    lot = clinic.info["doses"]["lot"]
    given = 0  # devices acknowledged in the current session
    tried = False  # anything sent to the current session (acknowledged or not)
    while pool and not stop.is_set():
        session = pool[0]
        try:
            r = http.post(
                f"{clinic.base}/api/sessions/{session}/administrations",
                json={"kind": "nasal_device", "lot_id": lot},
                headers={"X-CSRFToken": http.cookies.get("ketaclinic-csrf") or ""},
                timeout=15,
            )
        except requests.RequestException:
            tried = True
            acked.miss("no answer")
            time.sleep(0.05)
            continue
        if r.status_code == 201:
            acked.add("doses", str(r.json()["id"]))
            given += 1
            tried = True
        elif r.status_code == 422 and tried and ("dosing" in r.text or "device" in r.text):
            # Full: its last device was stored but the answer was lost to a kill.
            given = DEVICES_PER_SESSION
        elif r.status_code in (401, 403, 404, 422):
            raise AssertionError(f"dose refused: {r.status_code} {r.text[:500]}")
        else:
            tried = True
            acked.miss(r.status_code)
        if given >= DEVICES_PER_SESSION:
            acked.add("full", pool.pop(0))
            given, tried = 0, False
        stop.wait(gap)


# --------------------------------------------------------------------------- the run


@dataclass
class Result:
    kills: int
    acked: Acked
    missing: dict[str, list[str]]
    partial: dict[str, list[str]]
    audit_ok: bool
    check_ok: bool
    details: str
    seconds: float

    @property
    def ok(self) -> bool:
        return (
            not any(self.missing.values())
            and not any(self.partial.values())
            and self.audit_ok
            and self.check_ok
        )


VERIFY = """
import json
from ketaclinic.chairside.models import Administration, IngestBatch, Observation
from ketaclinic.ledger.models import LedgerEntry, StockLot
from ketaclinic.monitoring.models import HL7Message, VitalReading
from django.db.models import Count
acked = json.load(open({path!r}))
msgs = dict(HL7Message.objects.filter(control_id__in=acked['hl7']).annotate(n=Count('readings')).values_list('control_id', 'n'))
batches = dict(IngestBatch.objects.filter(key__in=acked['batches']).annotate(n=Count('observation')).values_list('key', 'n'))
lots = dict(StockLot.objects.filter(lot__in=acked['lots']).annotate(n=Count('entries')).values_list('lot', 'n'))
# Whole use cases, acknowledged or not: every stored message has its readings, every lot its receipt.
half_msgs = list(HL7Message.objects.filter(control_id__startswith='K').annotate(n=Count('readings')).exclude(n={per}).values_list('control_id', flat=True))
half_lots = list(StockLot.objects.filter(lot__startswith='SOAK-').annotate(n=Count('entries')).exclude(n=1).values_list('lot', flat=True))
# Doses: every administration in the pool's sessions (acknowledged or not) has exactly one draw of one
# device from the pool's lot, every draw from that lot has its dose, no device number is given twice or
# beyond the plan, and the lot's balance is what was received less what was drawn.
given = Administration.objects.filter(session_id__in=acked['pool']['sessions'])
doses = {{str(i): n for i, n in given.annotate(n=Count('stock_draws')).values_list('id', 'n')}}
half_doses = [f'dose {{i}}: {{n}} draws' for i, n in doses.items() if n != 1]
uses = LedgerEntry.objects.filter(lot_id=acked['pool']['lot'], kind='use')
half_doses += [f'draw {{e.seq}} without a dose of the pool' for e in uses if str(e.administration_id) not in doses]
half_doses += [f'draw {{e.seq}} of {{e.drawn}}' for e in uses if e.drawn != 1 or e.quantity != -1]
twice = given.values('session_id', 'device_number').annotate(n=Count('id')).filter(n__gt=1)
half_doses += [f"session {{t['session_id']}} device {{t['device_number']}} given {{t['n']}} times" for t in twice]
half_doses += [f'device {{a.device_number}} of {{a.session_id}} beyond the plan' for a in given if not 1 <= (a.device_number or 0) <= {devices}]
entries = list(LedgerEntry.objects.filter(lot_id=acked['pool']['lot']).order_by('seq'))
received = sum(e.quantity for e in entries if e.kind == 'receipt')
if entries and entries[-1].balance_after != received - uses.count():
    half_doses.append(f'lot balance {{entries[-1].balance_after}} after {{received}} received and {{uses.count()}} drawn')
print(json.dumps({{
  'missing': {{'hl7': [c for c in acked['hl7'] if c not in msgs],
              'batches': [k for k in acked['batches'] if k not in batches],
              'lots': [x for x in acked['lots'] if x not in lots],
              'doses': [i for i in acked['doses'] if i not in doses]}},
  'partial': {{'hl7': half_msgs + [c for c, n in msgs.items() if n != {per}],
              'batches': [k for k, n in batches.items() if n != 1],
              'lots': half_lots,
              'doses': half_doses}},
}}))
"""


def run(
    root: Path,
    *,
    kills: int,
    database_url: str | None = None,
    seed: int = 0,
    min_gap: float = 0.3,
    max_gap: float = 1.5,
    progress: Callable[[int, Acked], None] | None = None,
    killer: Callable[[Clinic, str], None] | None = None,
    dose_sessions: int | None = None,
    dose_gap: float = 0.25,
) -> Result:
    """``kills`` SIGKILLs of the server, the listener or both, at random moments under load.

    ``dose_sessions`` esketamine sessions are made ready for the dose writer (default ``8 + 2 × kills``,
    enough for a device every ``dose_gap`` seconds); when all are full the writer stops giving doses.

    ``killer(clinic, which)`` replaces the kill itself (the PostgreSQL variant also stops its database
    with ``pg_ctl stop -m immediate`` there)."""
    started = time.monotonic()
    rng = random.Random(seed)
    clinic = Clinic(root, database_url)
    clinic.prepare()
    clinic.prepare_doses(dose_sessions if dose_sessions is not None else 8 + 2 * kills)
    clinic.start()
    http = clinic.signed_in()
    acked = Acked()
    stop = threading.Event()
    failures: list[BaseException] = []

    def guard(fn: Callable[..., None], *args: Any) -> Callable[[], None]:
        def body() -> None:
            try:
                fn(*args)
            except BaseException as exc:
                failures.append(exc)
                stop.set()

        return body

    threads = [
        threading.Thread(target=guard(hl7_writer, clinic, acked, stop, "K1")),
        threading.Thread(target=guard(hl7_writer, clinic, acked, stop, "K2")),
        threading.Thread(target=guard(readings_writer, clinic, http, acked, stop)),
        threading.Thread(target=guard(ledger_writer, clinic, http, acked, stop)),
        threading.Thread(target=guard(dose_writer, clinic, http, acked, stop, dose_gap)),
    ]
    for t in threads:
        t.start()
    done = 0
    try:
        while done < kills and not stop.is_set():
            time.sleep(rng.uniform(min_gap, max_gap))
            which = rng.choice(["web", "mllp", "both"])
            (killer or (lambda c, w: c.kill(w)))(clinic, which)
            done += 1
            clinic.start(which)
            if progress is not None:
                progress(done, acked)
        time.sleep(max_gap)  # writes after the last restart
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        clinic.stop()
    if failures:
        raise failures[0]
    path = root / "acked.json"
    path.write_text(
        json.dumps(
            {
                "hl7": acked.hl7,
                "batches": acked.batches,
                "lots": acked.lots,
                "doses": acked.doses,
                "pool": clinic.info["doses"],
            }
        )
    )
    found = clinic.shell(VERIFY.format(path=str(path), per=READINGS_PER_MESSAGE, devices=DEVICES_PER_SESSION))
    audit = clinic.manage("audit", "verify", check=False)
    check = clinic.manage("clinic_check", check=False)
    import shutil

    shutil.rmtree(clinic.key_dir, ignore_errors=True)
    return Result(
        kills=done,
        acked=acked,
        missing=found["missing"],
        partial=found["partial"],
        audit_ok=audit.returncode == 0,
        check_ok=check.returncode == 0,
        details=(audit.stdout + audit.stderr + check.stdout + check.stderr)[-2000:],
        seconds=time.monotonic() - started,
    )
