from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ketaclinic.accounts import services
from ketaclinic.accounts.models import Organization, Site, User
from ketaclinic.core.access import ROLE_LABELS


class Command(BaseCommand):
    help = (
        "Create a staff account. Each person gets their own account and one role: admin, prescriber, nurse or "
        "front_desk. The password is asked for (or read from standard input with --password-stdin); the person "
        "sets up their authenticator app at their first sign-in. Creating an organization: pass --org-name too."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=sorted(ROLE_LABELS))
        parser.add_argument("--org", required=True, help="organization slug, e.g. harbor-clinics")
        parser.add_argument("--org-name", help="create the organization with this name if it does not exist")
        parser.add_argument(
            "--site", action="append", default=[], help="site code the person works at (repeatable)"
        )
        parser.add_argument("--all-sites", action="store_true", help="sees patients of every site")
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--password-stdin", action="store_true", help="read the password from standard input"
        )

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            if not options["org_name"]:
                raise CommandError(f"No organization {options['org']!r}; add --org-name to create it.")
            org = Organization.objects.create(slug=options["org"], name=options["org_name"])
        if User.objects.filter(username=options["username"]).exists():
            raise CommandError(f"The username {options['username']!r} is taken.")
        sites = list(Site.objects.filter(organization=org, code__in=options["site"]))
        missing = set(options["site"]) - {s.code for s in sites}
        if missing:
            raise CommandError(f"Unknown site code(s) for {org.slug}: {', '.join(sorted(missing))}")
        if options["password_stdin"]:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass("Password (12 characters or more): ")
            if password != getpass.getpass("Again: "):
                raise CommandError("The passwords differ.")
        candidate = User(
            username=options["username"],
            first_name=options["first_name"],
            last_name=options["last_name"],
            email=options["email"],
        )
        try:
            validate_password(password, candidate)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        user = services.create_account(
            organization=org,
            username=options["username"],
            password=password,
            role=options["role"],
            sites=sites,
            first_name=options["first_name"],
            last_name=options["last_name"],
            email=options["email"],
            all_sites=options["all_sites"],
        )
        self.stdout.write(
            f"Created {user.username} ({ROLE_LABELS[user.role]}) in {org.name}. "
            "They set up two-factor sign-in at their first sign-in."
        )
