"""``ketaclinic monitor-sim``: bedside monitors for demos and load tests, streaming PCD-01 over MLLP.

Each chair is one monitor (its own EUI-64) on one persistent connection. It walks a seeded session
trajectory from interop/hl7/simulator.py (baseline, the blood-pressure rise that peaks about 40 min
after the dose, sometimes a surge) and sends one ORU^R01 every ``--interval``, stamped with the wall
clock; each message advances the simulated session by ``--minutes-per-message``. It waits for each ACK
(original mode), reconnects when the connection drops and sends the unacknowledged message again.

No Django here: the simulator is a client and needs no database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ketaclinic.interop.hl7.mllp import Frame, FrameDecoder, encode_frame
from ketaclinic.interop.hl7.simulator import (
    EXAMPLE_BASELINE,
    STYLES,
    Style,
    VitalsSample,
    make_vitals_message,
    vitals_trajectory,
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


def parse_duration(text: str) -> float:
    """'1s', '500ms', '2m' or a number of seconds → seconds."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 1s, 500ms or 2m")
    value = float(match.group(1))
    unit = match.group(2) or "s"
    seconds = value / 1000 if unit == "ms" else value * 60 if unit == "m" else value
    if seconds <= 0:
        raise ValueError("the interval must be longer than zero")
    return seconds


def device_eui64(chair: int) -> str:
    """A stable EUI-64 per simulated chair (locally administered range, 02…)."""
    return f"02AB5100{chair:08X}"


@dataclass
class SimStats:
    sent: int = 0
    acked: dict[str, int] = field(default_factory=dict)
    reconnects: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        lat = sorted(self.latencies_ms)

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

        return {
            "sent": self.sent,
            "acks": dict(self.acked),
            "reconnects": self.reconnects,
            "ack_ms_p50": pct(0.50),
            "ack_ms_p99": pct(0.99),
        }


@dataclass(frozen=True)
class ChairPlan:
    chair: int
    style: Style
    patient_id: str | None
    seed: int
    surge: bool | None


def _samples(plan: ChairPlan, minutes_per_message: float, round_: int) -> list[VitalsSample]:
    traj = vitals_trajectory(
        baseline=EXAMPLE_BASELINE,
        dose_at=datetime(2000, 1, 1, tzinfo=UTC),  # only the shape is used; times are the wall clock
        seed=plan.seed * 1000 + round_,
        interval_min=minutes_per_message,
        surge=plan.surge,
    )
    return list(traj.samples)


def read_ack_code(frame: bytes, control_id: str) -> str:
    """MSA-1 of an ACK frame if MSA-2 is ``control_id`` (else '??')."""
    for segment in frame.decode("utf-8", "replace").split("\r"):
        if segment.startswith("MSA"):
            parts = segment.split(segment[3])
            if len(parts) > 2 and parts[2] == control_id:
                return parts[1]
    return "??"


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, decoder: FrameDecoder, payload: bytes
) -> bytes:
    writer.write(payload)
    await writer.drain()
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            raise ConnectionError("the listener closed the connection")
        frames = [e for e in decoder.feed(chunk) if isinstance(e, Frame)]
        if frames:
            return frames[0].payload


async def run_chair(
    plan: ChairPlan,
    *,
    host: str,
    port: int,
    interval: float,
    count: int | None,
    minutes_per_message: float,
    stats: SimStats,
    stop: asyncio.Event,
    start_delay: float = 0.0,
) -> None:
    await asyncio.sleep(start_delay)
    sent = 0
    round_ = 0
    samples = _samples(plan, minutes_per_message, round_)
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter, FrameDecoder] | None = None
    next_at = time.monotonic()
    while not stop.is_set() and (count is None or sent < count):
        if not samples:
            round_ += 1
            samples = _samples(plan, minutes_per_message, round_)
        s = samples.pop(0)
        cid = f"S{plan.chair:04d}-{round_:03d}-{sent:07d}"
        text = make_vitals_message(
            device_eui64=device_eui64(plan.chair),
            bed=f"CHAIR{plan.chair}",
            patient_id=plan.patient_id,
            at=datetime.now(UTC),
            sbp=s.sbp,
            dbp=s.dbp,
            hr=s.hr,
            spo2=s.spo2,
            rr=s.rr,
            control_id=cid,
            style=plan.style,
        )
        payload = encode_frame(text, "latin-1" if plan.style == "mdil" else "utf-8")
        while not stop.is_set():
            try:
                if conn is None:
                    r, w = await asyncio.open_connection(host, port)
                    conn = (r, w, FrameDecoder())
                t0 = time.perf_counter()
                stats.sent += 1
                ack = await _exchange(conn[0], conn[1], conn[2], payload)
                stats.latencies_ms.append((time.perf_counter() - t0) * 1000)
                code = read_ack_code(ack, cid)
                stats.acked[code] = stats.acked.get(code, 0) + 1
                break
            except OSError:
                stats.reconnects += 1
                if conn is not None:
                    conn[1].close()
                conn = None
                await asyncio.sleep(min(5.0, interval))
        sent += 1
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except TimeoutError:
                pass
        else:
            next_at = time.monotonic()
    if conn is not None:
        conn[1].close()


async def simulate(
    *,
    chairs: int,
    host: str,
    port: int,
    interval: float,
    count: int | None,
    style: str,
    mrns: list[str],
    minutes_per_message: float,
    surge_chairs: int,
    seed: int,
    duration: float | None = None,
) -> SimStats:
    rng = random.Random(seed)
    stats = SimStats()
    stop = asyncio.Event()
    plans = [
        ChairPlan(
            chair=i + 1,
            style=STYLES[i % len(STYLES)] if style == "mixed" else style,  # type: ignore[arg-type]
            patient_id=mrns[i] if i < len(mrns) else None,
            seed=rng.randrange(1 << 30),
            surge=True if i < surge_chairs else None,
        )
        for i in range(chairs)
    ]
    tasks = [
        asyncio.create_task(
            run_chair(
                p,
                host=host,
                port=port,
                interval=interval,
                count=count,
                minutes_per_message=minutes_per_message,
                stats=stats,
                stop=stop,
                start_delay=interval * i / max(1, chairs),  # spread the chairs over one interval
            )
        )
        for i, p in enumerate(plans)
    ]
    try:
        if duration is not None:
            await asyncio.wait(tasks, timeout=duration)
            stop.set()
        await asyncio.gather(*tasks)
    finally:
        stop.set()
    return stats


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ketaclinic monitor-sim",
        description=(
            "Pretend to be bedside monitors: each chair streams realistic vital signs (HL7 ORU^R01) to the "
            "monitor listener (ketaclinic mllp), for demonstrations and load tests. Not for patients."
        ),
    )
    parser.add_argument("--chairs", type=int, default=4, help="number of chairs (monitors), default 4")
    parser.add_argument("--interval", default="1s", help="time between messages per chair: 1s, 500ms, 2m")
    parser.add_argument("--host", default="127.0.0.1", help="listener address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=2575, help="listener port (default 2575)")
    parser.add_argument("--count", type=int, help="messages per chair, then stop (default: run until Ctrl-C)")
    parser.add_argument("--duration", help="stop after this long, e.g. 30s or 5m")
    parser.add_argument(
        "--style", default="mdc", choices=[*STYLES, "mixed"], help="coding style of the monitor"
    )
    parser.add_argument(
        "--mrn", action="append", default=[], help="MRN sent in PID-3 by chair 1, 2, … (repeatable)"
    )
    parser.add_argument(
        "--minutes-per-message",
        type=float,
        default=1.0,
        help="session minutes each message advances (default 1: a 2-hour session in 130 messages)",
    )
    parser.add_argument("--surge-chairs", type=int, default=0, help="the first K chairs have a BP surge")
    parser.add_argument("--seed", type=int, default=1, help="random seed (same seed, same vitals)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    errors = []
    try:
        interval = parse_duration(args.interval)
    except ValueError as exc:
        errors.append(f"--interval: {exc}")
        interval = 1.0
    duration = None
    if args.duration:
        try:
            duration = parse_duration(args.duration)
        except ValueError as exc:
            errors.append(f"--duration: {exc}")
    if args.chairs < 1:
        errors.append("--chairs: at least one chair")
    if args.count is not None and args.count < 1:
        errors.append("--count: at least one message")
    if not 0 < args.port < 65536:
        errors.append("--port: a TCP port between 1 and 65535")
    if args.minutes_per_message <= 0:
        errors.append("--minutes-per-message: must be more than zero")
    if errors:
        for e in errors:
            print(f"ketaclinic monitor-sim: {e}", file=sys.stderr)
        return 2
    try:
        stats = asyncio.run(
            simulate(
                chairs=args.chairs,
                host=args.host,
                port=args.port,
                interval=interval,
                count=args.count,
                style=args.style,
                mrns=args.mrn,
                minutes_per_message=args.minutes_per_message,
                surge_chairs=args.surge_chairs,
                seed=args.seed,
                duration=duration,
            )
        )
    except KeyboardInterrupt:
        return 0
    summary = stats.as_dict()
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"sent {summary['sent']} message(s); acknowledgements {summary['acks']}; "
            f"reconnects {summary['reconnects']}; ACK p50 {summary['ack_ms_p50']} ms, p99 {summary['ack_ms_p99']} ms"
        )
    return 0
