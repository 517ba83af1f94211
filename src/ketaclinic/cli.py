"""The ``ketaclinic`` command: one entry point for operators and scripts.

Clinical calculators (score, pk, protocols, dose, schedule) run without a database. Everything else is a
Django management command underneath, so ``ketaclinic manage <command>`` reaches the rest.
"""

from __future__ import annotations

import importlib
import os
import sys

PURE: dict[str, tuple[str, str, bool]] = {
    # name: (module, description, pass the subcommand name through)
    "score": (
        "ketaclinic.clinical.instruments.cli",
        "score a rating scale (PHQ-9, MADRS, …) from its answers",
        False,
    ),
    "pk": ("ketaclinic.pk.cli", "simulate ketamine/esketamine concentrations (pk simulate --help)", False),
    "protocols": ("ketaclinic.clinical.planning_cli", "list the treatment protocols and their IDs", True),
    "dose": (
        "ketaclinic.clinical.planning_cli",
        "calculate a dose for a protocol and a patient's size",
        True,
    ),
    "schedule": ("ketaclinic.clinical.planning_cli", "print the dated sessions of a protocol's course", True),
}
DJANGO: dict[str, tuple[str, str]] = {
    "serve": ("serve", "run the web application (uvicorn) on 127.0.0.1:8000"),
    "migrate": ("migrate", "create or upgrade the database tables"),
    "createuser": ("createuser", "create a staff account with a role"),
    "demo": ("demo", "load the demo clinic (safe to run twice)"),
    "worker": ("worker", "run background jobs from the database queue"),
    "audit": ("audit", "verify the tamper-evident audit log (audit verify)"),
    "backup": ("backup", "write a consistent backup of the database"),
    "restore": ("restore", "restore a backup, then check integrity and the audit chain"),
    "check": ("clinic_check", "check settings, database integrity and the audit chain"),
    "mllp": ("mllp", "receive bedside-monitor vitals over HL7 v2/MLLP (port 2575)"),
    "monitor-sim": ("monitor_sim", "stream simulated bedside-monitor vitals for demos and load tests"),
    "fhir": ("fhir_", "FHIR API tools: fhir client … (API clients), fhir export DIR (bulk NDJSON)"),
    "outcomes": ("outcomes", "the clinic's outcomes for a period (counts only; --json)"),
}


def usage() -> str:
    lines = [
        "usage: ketaclinic <command> [options]   (ketaclinic <command> --help for details)",
        "",
        "commands:",
    ]
    for name, (_, text) in DJANGO.items():
        lines.append(f"  {name:<11} {text}")
    for name, (_, text, _) in PURE.items():
        lines.append(f"  {name:<11} {text}")
    lines.append(f"  {'manage':<11} run any Django management command (advanced)")
    lines += ["", "Settings come from KETACLINIC_* environment variables; see docs/operations.md."]
    return "\n".join(lines)


#: Files the application creates — the SQLite database and its WAL/SHM files, the e-mail outbox (self-report
#: links), exports, backups, uploads — are readable by the service account only (security.md; issue 15 M6).
PRIVATE_UMASK = 0o077


def main(argv: list[str] | None = None) -> int:
    os.umask(PRIVATE_UMASK)
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command in PURE:
        module_name, _, pass_name = PURE[command]
        module = importlib.import_module(module_name)
        result: int = module.main([command, *rest] if pass_name else rest)
        return result
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.settings")
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        print(f"ketaclinic: configuration error: {exc}", file=sys.stderr)
        return 2
    from django.core.management import execute_from_command_line

    if command == "manage":
        execute_from_command_line(["ketaclinic manage", *rest])
        return 0
    if command not in DJANGO:
        print(f"ketaclinic: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    target = DJANGO[command][0]
    if command == "fhir":
        if not rest or rest[0] not in ("client", "export"):
            print(
                "usage: ketaclinic fhir client … | ketaclinic fhir export DIR   (add --help for details)",
                file=sys.stderr,
            )
            return 2
        target, rest = f"fhir_{rest[0]}", rest[1:]
    try:
        execute_from_command_line([f"ketaclinic {command}", target, *rest])
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
