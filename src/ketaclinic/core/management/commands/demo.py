from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.accounts.models import Organization
from ketaclinic.core import demo


class Command(BaseCommand):
    help = (
        "Load the demo clinic: organization 'demo' with two sites, a login for every role and 40 plainly "
        "fictional patients, then print the logins with their authenticator (TOTP) secrets. Running it again "
        "changes nothing. Refuses to run when a real organization exists, unless --force. "
        "--codes prints the current 6-digit code of every demo login (for trying the demo without a phone)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--codes", action="store_true", help="only print the current demo TOTP codes")
        parser.add_argument("--json", action="store_true", help="print the logins as JSON")
        parser.add_argument("--force", action="store_true", help="load even if other organizations exist")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["codes"]:
            for username, *_ in demo.STAFF:
                self.stdout.write(f"{username:<22} {demo.current_code(username)}")
            return
        if Organization.objects.exclude(slug=demo.ORG_SLUG).exists() and not options["force"]:
            raise CommandError(
                "This database holds a real organization; the demo (with published passwords) "
                "is not loaded. Use --force only on a test system."
            )
        changed, logins = demo.load_demo()
        if options["json"]:
            self.stdout.write(json.dumps({"changed": changed, "logins": [asdict(x) for x in logins]}))
            return
        self.stdout.write("Demo clinic " + ("loaded." if changed else "already present; nothing changed."))
        self.stdout.write("")
        self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD})")
        self.stdout.write(f"  {'username':<22} {'role':<14} {'sites':<40} {'TOTP secret':<34} code now")
        for x in logins:
            self.stdout.write(
                f"  {x.username:<22} {x.role:<14} {x.sites:<40} {x.totp_secret:<34} {x.current_code}"
            )
        self.stdout.write("")
        self.stdout.write(
            "Add a secret to an authenticator app, or run `ketaclinic demo --codes` for the current codes."
        )
