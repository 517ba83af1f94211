"""Soak: hundreds of SIGKILLs under write load (`make soak`; issue 15, point 5).

    python bench/soak.py [--kills 200] [--seed 1] [--postgres] [--min-gap 0.3] [--max-gap 1.5]

The web server and the monitor listener run as real processes on a fresh demo clinic (a SQLite file in a
temporary directory, or with --postgres a private PostgreSQL cluster made with initdb on a free port and
crashed with ``pg_ctl stop -m immediate`` at every kill — never the shared server). Writers keep the HL7
feed (MLLP), reading batches and esketamine doses (JSON API; each dose draws a device from the register)
and controlled-drug receipts (the form) going; at random moments
the server, the listener or both are killed with SIGKILL and restarted. Progress is printed after every
kill; the summary says how many writes were acknowledged, whether every one of them survived whole, and
whether the audit and register chains verify. Exit status 0 only if all of that holds.

The harness is tests/security/crash_harness.py; the suite runs it with a few kills
(tests/security/test_sigkill.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.security.crash_harness import (  # noqa: E402 - the repository root is put on the path above
    Acked,
    PrivatePostgres,
    crash_everything,
    postgres_bin,
    run,
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="a private PostgreSQL cluster, crashed too")
    parser.add_argument("--min-gap", type=float, default=0.3, help="shortest time between kills (s)")
    parser.add_argument("--max-gap", type=float, default=1.5, help="longest time between kills (s)")
    parser.add_argument(
        "--dose-sessions",
        type=int,
        default=None,
        help="esketamine sessions made ready for doses (default 8 + 2 x kills; 3 devices each)",
    )
    args = parser.parse_args()
    started = time.monotonic()

    def progress(done: int, acked: Acked) -> None:
        print(
            f"kill {done:>4}/{args.kills}  {time.monotonic() - started:7.1f} s  acknowledged: "
            f"HL7 {len(acked.hl7)}, reading batches {len(acked.batches)}, receipts {len(acked.lots)}, "
            f"doses {len(acked.doses)}",
            flush=True,
        )

    pg = None
    url = None
    killer = None
    if args.postgres:
        bindir = postgres_bin()
        if bindir is None:
            print("no PostgreSQL server binaries under /usr/lib/postgresql/*/bin: --postgres skipped")
            return 0
        pg = PrivatePostgres(bindir)
        url = pg.init()
        killer = crash_everything(pg)
        print(f"private PostgreSQL cluster in {pg.dir} on port {pg.port}")
    try:
        with tempfile.TemporaryDirectory(prefix="ketaclinic-soak-") as tmp:
            result = run(
                Path(tmp),
                kills=args.kills,
                seed=args.seed,
                database_url=url,
                killer=killer,
                min_gap=args.min_gap,
                max_gap=args.max_gap,
                progress=progress,
                dose_sessions=args.dose_sessions,
            )
    finally:
        if pg is not None:
            pg.destroy()
    acked = result.acked
    print()
    print(f"{result.kills} kills in {result.seconds:.0f} s ({'PostgreSQL' if args.postgres else 'SQLite'})")
    print(
        f"acknowledged: HL7 messages {len(acked.hl7)}, reading batches {len(acked.batches)}, "
        f"register receipts {len(acked.lots)}, doses {len(acked.doses)} (total {acked.total()})"
    )
    print(
        f"dose sessions given all their devices: {len(acked.full)} of the {acked.pool} made ready"
        + (
            " (all used: raise --dose-sessions to keep doses in the load to the end)"
            if len(acked.full) == acked.pool
            else ""
        )
    )
    print(f"not acknowledged while down (by answer): {dict(sorted(acked.unanswered.items()))}")
    for kind in ("hl7", "batches", "lots", "doses"):
        print(f"  {kind:8} missing {len(result.missing[kind])}  partial {len(result.partial[kind])}")
        if result.missing[kind] or result.partial[kind]:
            print(f"    missing: {result.missing[kind][:10]}  partial: {result.partial[kind][:10]}")
    print(f"audit chain verifies: {result.audit_ok}; `ketaclinic check`: {result.check_ok}")
    if not (result.audit_ok and result.check_ok):
        print(result.details)
    print("RESULT:", "ok" if result.ok else "FAILED")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
