"""Monitor feed throughput and ACK latency: the MLLP listener into SQLite, against a plain bulk insert.

    python bench/mllp.py [--seconds 5] [--paced-seconds 10] [--connections 1,100,1000] [--quick] [--json]

Loopback only. The listener runs as its own process (``python -m django mllp``, as in production) on a
fresh file SQLite database (WAL, synchronous=FULL); this process is the load generator (asyncio).
Every message is a simulator ORU^R01 (interop/hl7/simulator.py, MDC style) with 5 vitals
(SBP, DBP, HR, SpO2, RR) and the MRN of a registered patient, so every reading is bound and the alert
engine runs on it; 1 % of the monitors send a high blood pressure, so alerts are raised too.

Scenarios, in one run, on one database:

1. closed loop at 1, 100 and 1,000 connections: each connection sends its next message as soon as the
   previous one is acknowledged (original-mode ACK, one message in flight per connection), for
   ``--seconds``; observations/s = readings in AA-acknowledged messages / elapsed;
2. paced: 1,000 connections at one message per second each (phases spread over the second) for
   ``--paced-seconds``: p50/p99 ACK latency (send → ACK received);
3. baseline: the same message and reading rows inserted again with plain multi-row INSERTs
   (``executemany``), 1,000 messages per transaction, into the same database in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import queue
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
READINGS_PER_MESSAGE = 5


def setup(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KETACLINIC_VAR_DIR=str(tmp),
        KETACLINIC_DATABASE_URL=f"sqlite:///{tmp / 'bench.sqlite3'}",
        KETACLINIC_SECRET_KEY="bench-secret-key-" + "x" * 40,
        DJANGO_SETTINGS_MODULE="ketaclinic.settings",
        PYTHONPATH=str(ROOT / "src"),
    )
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env


def populate(monitors: int) -> None:
    from ketaclinic.accounts.models import Chair, Organization, Site, User
    from ketaclinic.monitoring.models import MonitorDevice
    from ketaclinic.monitoring.simulate import device_eui64
    from ketaclinic.patients.models import Patient

    org = Organization.objects.create(name="Bench", slug="bench")
    site = Site.objects.create(organization=org, code="main", name="Main", time_zone="UTC")
    user = User.objects.create_user(username="bench", password="x" * 16, organization=org, role="nurse")
    Patient.objects.bulk_create(
        Patient(
            organization=org,
            site=site,
            mrn=f"B{i:06d}",
            given_name="Bench",
            family_name=f"Patient{i}",
            given_norm="bench",
            family_norm=f"patient{i}",
            date_of_birth=date(1980, 1, 1),
            sex="female",
            created_by=user,
            updated_by=user,
        )
        for i in range(monitors)
    )
    chairs = Chair.objects.bulk_create(
        Chair(organization=org, site=site, label=f"C{i:04d}") for i in range(monitors)
    )
    MonitorDevice.objects.bulk_create(
        MonitorDevice(organization=org, site=site, identifier=device_eui64(i), chair=chairs[i])
        for i in range(monitors)
    )


def start_listener(
    env: dict[str, str], parse_workers: int, processes: int
) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "django",
            "mllp",
            "--port",
            "0",
            "--organization",
            "bench",
            "--parse-workers",
            str(parse_workers),
            "--processes",
            str(processes),
            # Every simulated monitor connects from this computer: the per-address cap (64 by default,
            # issue 15) would close all but 64 of them.
            "--max-connections-per-address",
            "100000",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("listening on"):
        raise RuntimeError(f"listener did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


class ListenerStats:
    """The listener's own account of a scenario: its 'feed stats' lines (``kill -USR1``, one per listener
    process, monitoring/listener.FeedStats), read from its standard output and combined."""

    def __init__(self, proc: subprocess.Popen[str], processes: int) -> None:
        self.proc, self.processes = proc, processes
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("feed stats "):
                self._lines.put(line.removeprefix("feed stats "))

    def since_last(self) -> dict[str, float]:
        """What the listener processes did since the previous call."""
        os.kill(self.proc.pid, signal.SIGUSR1)
        lines = [json.loads(self._lines.get(timeout=30)) for _ in range(self.processes)]
        msgs = sum(s["messages"] for s in lines)
        batches = sum(s["batches"] for s in lines)
        steps = [s for s in lines if s["checkpoint_locked_steps"]]
        return {
            "messages_per_batch": msgs / batches if batches else 0.0,
            "store_ms_per_batch": sum(s["store_ms_per_batch"] * s["batches"] for s in lines) / batches
            if batches
            else 0.0,
            # Shares of the scenario's time, added over the processes (they take turns holding the lock;
            # the wait share is the average number of processes waiting).
            "write_lock_held_share": sum(s["write_lock_held_share"] for s in lines),
            "write_lock_wait_share": sum(s["write_lock_wait_share"] for s in lines),
            "checkpoint_locked_steps": sum(s["checkpoint_locked_steps"] for s in lines),
            "checkpoint_locked_ms_p50": steps[0]["checkpoint_locked_ms_p50"] if steps else float("nan"),
            "checkpoint_locked_ms_max": max(s["checkpoint_locked_ms_max"] for s in steps)
            if steps
            else float("nan"),
        }


def template(i: int) -> bytes:
    """Monitor ``i``'s message with the control id left as ``{CID}``."""
    from ketaclinic.interop.hl7.simulator import make_vitals_message
    from ketaclinic.monitoring.simulate import device_eui64

    high = i % 100 == 0  # 1 % of monitors: BP 186/112 raises SBP/DBP alerts
    text = make_vitals_message(
        device_eui64=device_eui64(i),
        bed=f"C{i:04d}",
        patient_id=f"B{i:06d}",
        at=datetime.now(UTC),
        sbp=186 if high else 121,
        dbp=112 if high else 79,
        hr=64,
        spo2=98,
        rr=14,
        control_id="{CID}",
    )
    return SB + text.encode() + EB + CR


class Client(asyncio.Protocol):
    """One monitor connection of the load generator: an asyncio Protocol (no coroutine per message, so
    the generator's own CPU per message stays small next to the listener's; it is measured and printed).
    One message in flight (original-mode ACK): the next is sent when the ACK arrives, or at the next
    paced slot, whichever is later."""

    def __init__(self, i: int, tag: str, done: asyncio.Future[None], stop_at: float) -> None:
        self.i, self.tag, self.n = i, tag, 0
        self.parts = template(i).split(b"{CID}")
        self.done, self.stop_at = done, stop_at
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.expect = b""
        self.t0 = 0.0
        self.lat: list[float] = []
        self.ok = 0
        self.slots: list[float] | None = None  # paced: send times (perf_counter)
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def send(self) -> None:
        assert self.transport is not None
        self.n += 1
        cid = f"{self.tag}{self.i}-{self.n}".encode()
        self.expect = b"MSA|AA|" + cid + b"\r"
        self.t0 = time.perf_counter()
        self.transport.write(cid.join(self.parts))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            cut = self.buf.find(EB + CR)
            if cut < 0:
                return
            ack, self.buf = self.buf[: cut + 2], self.buf[cut + 2 :]
            now = time.perf_counter()
            self.lat.append((now - self.t0) * 1000)
            self.ok += self.expect in ack or ack.endswith(self.expect[:-1] + EB + CR)
            self.next(now)

    def next(self, now: float) -> None:
        if self.slots is None:
            if now < self.stop_at:
                self.send()
            elif not self.done.done():
                self.done.set_result(None)
            return
        if not self.slots:
            if not self.done.done():
                self.done.set_result(None)
            return
        at = self.slots.pop(0)
        if at <= now:
            self.send()
        else:
            self.loop.call_later(at - now, self.send)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _clients(port: int, connections: int, tag: str, stop_at: float) -> list[Client]:
    loop = asyncio.get_running_loop()
    out: list[Client] = []

    async def one(i: int) -> None:
        client = Client(i, tag, loop.create_future(), stop_at)
        await loop.create_connection(lambda: client, "127.0.0.1", port)
        out.append(client)

    for start in range(0, connections, 200):
        await asyncio.gather(*(one(i) for i in range(start, min(connections, start + 200))))
    return out


def _gen_cpu() -> float:
    t = os.times()
    return t.user + t.system


def _finish(clients: list[Client], elapsed: float, cpu: float) -> dict[str, float]:
    lat = [x for c in clients for x in c.lat]
    ok = sum(c.ok for c in clients)
    for c in clients:
        assert c.transport is not None
        c.transport.close()
    return {
        "connections": len(clients),
        "messages_aa": ok,
        "sent": len(lat),
        "obs_per_s": ok * READINGS_PER_MESSAGE / elapsed,
        "msgs_per_s": ok / elapsed,
        "ack_ms_p50": pct(lat, 0.5),
        "ack_ms_p99": pct(lat, 0.99),
        "ack_ms_max": max(lat) if lat else float("nan"),
        "generator_cpu_ms_per_msg": cpu * 1000 / len(lat) if lat else float("nan"),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (the parse workers), from Linux /proc."""
    total = 0.0
    for p in [pid, *_children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        kids = (task / "children").read_text().split() if (task / "children").exists() else []
        for k in kids:
            out += [int(k), *_children(int(k))]
    return out


def measured(pid: int, run: dict[str, float], cpu_before: float) -> dict[str, float]:
    used = cpu_seconds(pid) - cpu_before
    run["listener_cpu_s"] = used
    run["listener_cpu_ms_per_msg"] = used * 1000 / run["messages_aa"] if run["messages_aa"] else float("nan")
    return run


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p * len(s)))] if s else float("nan")


async def closed_loop(port: int, connections: int, seconds: float, tag: str) -> dict[str, float]:
    clients = await _clients(port, connections, tag, stop_at=float("inf"))
    cpu0 = _gen_cpu()
    t0 = time.perf_counter()
    for c in clients:
        c.stop_at = t0 + seconds
        c.send()
    await asyncio.gather(*(c.done for c in clients))
    return _finish(clients, time.perf_counter() - t0, _gen_cpu() - cpu0)


async def paced(port: int, connections: int, seconds: float, tag: str) -> dict[str, float]:
    clients = await _clients(port, connections, tag, stop_at=float("inf"))
    loop = asyncio.get_running_loop()
    rng = random.Random(7)
    cpu0 = _gen_cpu()
    t_start = time.perf_counter() + 0.5
    for c in clients:
        phase = rng.random()
        c.slots = [t_start + phase + k for k in range(int(seconds))]
        c.next(time.perf_counter())
    await asyncio.gather(*(c.done for c in clients))
    elapsed = time.perf_counter() - t_start
    del loop
    return _finish(clients, elapsed, _gen_cpu() - cpu0)


def bulk_baseline(limit_messages: int) -> dict[str, float]:
    """Insert copies of stored rows with plain multi-row INSERTs, 1,000 messages per transaction."""
    from django.db import transaction

    from ketaclinic.monitoring.models import HL7Message, VitalReading
    from ketaclinic.monitoring.rows import MessageRow, ReadingRow, insert_messages, insert_readings

    msgs = list(HL7Message.objects.order_by("id")[:limit_messages])
    by_msg: dict[int, list[VitalReading]] = {}
    for r in VitalReading.objects.filter(message_id__in=[m.pk for m in msgs]):
        by_msg.setdefault(r.message_id or 0, []).append(r)
    rows_m = [
        MessageRow(
            m.organization_id, m.sender, m.control_id + "-bulk", m.digest, m.message_type, m.received_at,
            m.peer, m.raw, m.ack_code, m.ack_error, m.device_feed, m.device_id, m.location, m.issues,
        )
        for m in msgs
    ]  # fmt: skip
    t0 = time.perf_counter()
    readings = 0
    for start in range(0, len(msgs), 1000):
        with transaction.atomic():
            ids = insert_messages(rows_m[start : start + 1000])
            rows_r = [
                ReadingRow(
                    r.organization_id, r.site_id, r.patient_id, r.chair_id, r.device_id, new_id,
                    r.observed_at, r.received_at, r.time_source, r.kind, r.value, r.unit, r.source,
                    r.bound, r.mapping_confirmed, r.source_code, r.source_unit, r.first_of_set,
                )
                for m, new_id in zip(msgs[start : start + 1000], ids, strict=True)
                for r in by_msg.get(m.pk, [])
            ]  # fmt: skip
            insert_readings(rows_r)
            readings += len(rows_r)
    elapsed = time.perf_counter() - t0
    return {"messages": len(msgs), "readings": readings, "obs_per_s": readings / elapsed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/mllp.py", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="closed-loop time per scenario")
    parser.add_argument("--paced-seconds", type=int, default=10, help="paced scenario length")
    parser.add_argument("--connections", default="1,100,1000", help="closed-loop connection counts")
    parser.add_argument("--paced-connections", type=int, default=1000)
    parser.add_argument(
        "--parse-workers",
        type=int,
        default=0,
        help="listener --parse-workers (default 0: parse in the listener)",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="listener processes (ketaclinic mllp --processes; default 2, this machine class's core count)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=3.0,
        help="pause before each scenario (s), so that one scenario's write-back (the listener copying the "
        "write-ahead log of a saturation run into the database file) does not land in the next one's figures",
    )
    parser.add_argument("--quick", action="store_true", help="1 s per scenario, 3 s paced (smoke test)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.paced_seconds, args.settle = 1.0, 3, 0.5
    counts = [int(c) for c in args.connections.split(",")]
    monitors = max([*counts, args.paced_connections])

    tmp = Path(tempfile.mkdtemp(prefix="ketaclinic-bench-mllp-"))
    env = setup(tmp)
    populate(monitors)
    proc, port = start_listener(env, args.parse_workers, args.processes)
    results: dict[str, object] = {
        "load_before": os.getloadavg(),
        "cpus": os.cpu_count(),
        "parse_workers": args.parse_workers,
        "processes": args.processes,
    }
    # The load generator keeps the latencies it measures; a garbage collection in this process would show
    # as ACK latency that is not the listener's, so collection is off while the scenarios run.
    gc.collect()
    gc.freeze()
    gc.disable()
    listener = ListenerStats(proc, args.processes)
    try:
        results["warmup"] = asyncio.run(closed_loop(port, 10, 1.0, "w"))
        runs = []
        for c in counts:
            time.sleep(args.settle)
            listener.since_last()
            before = cpu_seconds(proc.pid)
            run = measured(proc.pid, asyncio.run(closed_loop(port, c, args.seconds, f"c{c}-")), before)
            runs.append(run | {"listener": listener.since_last()})
        results["closed_loop"] = runs
        time.sleep(args.settle)
        listener.since_last()
        before = cpu_seconds(proc.pid)
        run = measured(
            proc.pid, asyncio.run(paced(port, args.paced_connections, args.paced_seconds, "p")), before
        )
        results["paced"] = run | {"listener": listener.since_last()}
    finally:
        gc.enable()
        proc.terminate()
        proc.wait(60)
    from ketaclinic.monitoring.models import HL7Message, MonitoringAlert, VitalReading

    stored_msgs = HL7Message.objects.count()
    results["stored"] = {
        "messages": stored_msgs,
        "readings": VitalReading.objects.count(),
        "bound": VitalReading.objects.filter(bound=True).count(),
        "alerts": MonitoringAlert.objects.count(),
    }
    acked = sum(
        r["messages_aa"]  # type: ignore[index]
        for r in [results["warmup"], *results["closed_loop"], results["paced"]]  # type: ignore[misc]
    )
    sent_all = acked == sum(
        r["sent"]  # type: ignore[index]
        for r in [results["warmup"], *results["closed_loop"], results["paced"]]  # type: ignore[misc]
    )
    results["check"] = {
        "acked_AA": acked,
        "every_message_AA": sent_all,
        "stored_equals_acked": stored_msgs == acked,
        "readings_equal_5_per_message": results["stored"]["readings"] == READINGS_PER_MESSAGE * acked,  # type: ignore[index]
    }
    results["bulk_insert"] = bulk_baseline(stored_msgs)
    base = results["bulk_insert"]["obs_per_s"]  # type: ignore[index]
    for row in results["closed_loop"]:  # type: ignore[attr-defined]
        row["ratio_to_bulk"] = row["obs_per_s"] / base
    results["load_after"] = os.getloadavg()
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print(
        f"listener processes {results['processes']}; cpus {results['cpus']}, load average before {results['load_before']}, after {results['load_after']}"
    )
    print("closed loop (one message in flight per connection):")
    print(
        f"{'conns':>6} {'obs/s':>9} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'÷ bulk':>7} {'CPU ms/msg':>10} "
        f"{'gen ms/msg':>10} {'msg/batch':>9} {'lock held':>9}"
    )
    for row in results["closed_loop"]:  # type: ignore[attr-defined]
        print(
            f"{row['connections']:>6} {row['obs_per_s']:>9.0f} {row['msgs_per_s']:>8.0f} "
            f"{row['ack_ms_p50']:>8.1f} {row['ack_ms_p99']:>8.1f} {row['ratio_to_bulk']:>7.3f} "
            f"{row['listener_cpu_ms_per_msg']:>10.2f} {row['generator_cpu_ms_per_msg']:>10.3f} "
            f"{row['listener']['messages_per_batch']:>9.1f} {row['listener']['write_lock_held_share']:>9.0%}"
        )
    p = results["paced"]
    print(
        f"paced: {p['connections']} connections x 1 msg/s for {args.paced_seconds} s: {p['messages_aa']} AA of "  # type: ignore[index]
        f"{p['sent']}; ACK p50 {p['ack_ms_p50']:.1f} ms, p99 {p['ack_ms_p99']:.1f} ms, max {p['ack_ms_max']:.1f} ms; "  # type: ignore[index]
        f"listener CPU {p['listener_cpu_ms_per_msg']:.2f} ms/msg, generator {p['generator_cpu_ms_per_msg']:.3f} ms/msg"  # type: ignore[index]
    )
    ls = p["listener"]  # type: ignore[index]
    print(
        f"  listener during paced: {ls['messages_per_batch']:.1f} messages per batch, {ls['store_ms_per_batch']:.2f} ms "
        f"per batch; write lock held {ls['write_lock_held_share']:.0%} of the time (processes waiting for it: "
        f"{ls['write_lock_wait_share']:.2f} on average); checkpoint steps under the lock: "
        f"{ls['checkpoint_locked_steps']}, p50 {ls['checkpoint_locked_ms_p50']:.1f} ms, max "
        f"{ls['checkpoint_locked_ms_max']:.1f} ms"
    )
    b = results["bulk_insert"]
    print(
        f"bulk insert baseline: {b['readings']} readings in {b['messages']} messages, {b['obs_per_s']:.0f} obs/s"
    )  # type: ignore[index]
    print(f"stored: {results['stored']}")
    print(f"check: {results['check']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
