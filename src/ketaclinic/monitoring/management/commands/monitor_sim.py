"""``ketaclinic monitor-sim``: simulated bedside monitors (see ketaclinic.monitoring.simulate)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from ketaclinic.monitoring import simulate


class Command(BaseCommand):
    help = simulate.build_parser().description or ""

    def run_from_argv(self, argv: list[str]) -> None:
        # The simulator has its own argparse parser (and needs no database): pass the arguments through.
        sys.exit(simulate.main(argv[2:]))

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("args", nargs="*", help="monitor-sim options, e.g. --chairs 10 --interval 1s")

    def handle(self, *args: Any, **options: Any) -> None:
        code = simulate.main(list(args))
        if code:
            sys.exit(code)
