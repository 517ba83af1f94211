"""``ketaclinic fhir client ...``: register, list and deactivate the systems that read data over FHIR."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ketaclinic.accounts.models import Organization, User
from ketaclinic.interop.fhir import auth
from ketaclinic.interop.fhir.models import ApiClient
from ketaclinic.patients.models import Patient


class Command(BaseCommand):
    help = (
        "Manage FHIR API clients (EHRs, billing, research systems). 'create' registers a client and prints "
        "its id and secret ONCE: give them to the other system's administrator over a safe channel; the "
        "secret cannot be shown again. 'list' shows the clients of an organization; 'deactivate' stops a "
        "client at once (its tokens stop working)."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="register a client and print its secret once")
        create.add_argument("--org", required=True, help="organization slug, e.g. harbor-clinics")
        create.add_argument("--name", required=True, help="what the client is, e.g. 'Harbor EHR'")
        create.add_argument(
            "--scope",
            action="append",
            default=[],
            help="SMART scope it may be granted, e.g. system/*.rs or system/Patient.rs (repeatable)",
        )
        create.add_argument(
            "--patient", help="patient id (UUID) for a patient-facing client (patient/ scopes)"
        )
        create.add_argument("--user", help="staff username whose access user/ scopes follow")
        create.add_argument("--json", action="store_true", help="print JSON")
        listing = sub.add_parser("list", help="list an organization's clients")
        listing.add_argument("--org", required=True)
        listing.add_argument("--json", action="store_true", help="print JSON")
        off = sub.add_parser("deactivate", help="stop a client; its tokens stop working")
        off.add_argument("client_id")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "deactivate":
            client = ApiClient.objects.filter(client_id=options["client_id"]).first()
            if client is None:
                raise CommandError(f"No client {options['client_id']!r}.")
            auth.deactivate_client(client=client)
            self.stdout.write(f"Client {client.client_id} ({client.name}) is deactivated.")
            return
        org = Organization.objects.filter(slug=options["org"]).first()
        if org is None:
            raise CommandError(f"No organization {options['org']!r}.")
        if action == "list":
            rows = [
                {"client_id": c.client_id, "name": c.name, "scopes": c.allowed_scopes, "active": c.active}
                for c in ApiClient.objects.filter(organization=org)
            ]
            if options["json"]:
                self.stdout.write(json.dumps(rows, indent=2))
            for row in [] if options["json"] else rows:
                state = "active" if row["active"] else "inactive"
                self.stdout.write(f"{row['client_id']}  {row['name']}  [{row['scopes']}]  {state}")
            return
        patient = user = None
        if options["patient"]:
            patient = Patient.objects.filter(pk=_uuid(options["patient"]), organization=org).first()
            if patient is None:
                raise CommandError(f"No patient {options['patient']!r} in {org.slug}.")
        if options["user"]:
            user = User.objects.filter(username=options["user"], organization=org).first()
            if user is None:
                raise CommandError(f"No staff account {options['user']!r} in {org.slug}.")
        try:
            client, secret = auth.create_client(
                organization=org,
                name=options["name"],
                scopes=" ".join(options["scope"]),
                patient=patient,
                acting_user=user,
            )
        except auth.ClientError as exc:
            raise CommandError("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        out = {"client_id": client.client_id, "client_secret": secret, "scopes": client.allowed_scopes}
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
            return
        self.stdout.write(f"client_id:     {client.client_id}")
        self.stdout.write(f"client_secret: {secret}")
        self.stdout.write(f"scopes:        {client.allowed_scopes}")
        self.stdout.write(
            "The secret is shown only now. Store it in the other system; it cannot be recovered."
        )


def _uuid(text: str) -> Any:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a patient id (UUID).") from None
