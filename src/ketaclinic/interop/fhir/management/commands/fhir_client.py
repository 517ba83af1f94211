"""``ketaclinic fhir client ...``: register, list and deactivate the systems that read data over FHIR.

A hospital's system is registered with its public keys (``--jwks-file`` or ``--jwks-url``: SMART Backend
Services, ``private_key_jwt``); a shared secret (``--secret``) is an explicit choice for local tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from ketaclinic.accounts.models import Organization, User
from ketaclinic.interop.fhir import auth
from ketaclinic.interop.fhir.models import ApiClient
from ketaclinic.patients.models import Patient


class Command(BaseCommand):
    help = (
        "Manage FHIR API clients (EHRs, billing, research systems). 'create' (or 'add') registers a client: "
        "with its PUBLIC keys (--jwks-file keys.json or --jwks-url https://...; SMART Backend Services, the "
        "client signs a JWT assertion with its private key, which never leaves it), or with --secret for a "
        "local tool (the secret is printed ONCE: it cannot be shown again). 'list' shows the clients of an "
        "organization; 'deactivate' stops a client at once (its tokens stop working)."
    )

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser(
            "create", aliases=["add"], help="register a client by its public keys (or --secret)"
        )
        create.add_argument(
            "--org", "--organization", dest="org", required=True, help="organization slug, e.g. harbor"
        )
        create.add_argument("--name", required=True, help="what the client is, e.g. 'Harbor EHR'")
        create.add_argument(
            "--scope",
            "--scopes",
            dest="scope",
            action="append",
            default=[],
            help="SMART scopes it may be granted, e.g. system/*.rs or 'system/Patient.rs system/Observation.rs'",
        )
        keys = create.add_mutually_exclusive_group()
        keys.add_argument("--jwks-file", help="the client's PUBLIC JWK Set (JSON file with RS384/ES384 keys)")
        keys.add_argument("--jwks-url", help="the https:// URL where the client publishes its JWK Set")
        keys.add_argument(
            "--secret", action="store_true", help="a shared secret instead of keys (local tools only)"
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
        if action == "add":
            action = "create"
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
                {
                    "client_id": c.client_id,
                    "name": c.name,
                    "scopes": c.allowed_scopes,
                    "auth_method": c.auth_method,
                    **({"jwks_url": c.jwks_url} if c.jwks_url else {}),
                    **({"kids": [k.get("kid") for k in c.jwks["keys"]]} if c.jwks else {}),
                    "active": c.active,
                }
                for c in ApiClient.objects.filter(organization=org)
            ]
            if options["json"]:
                self.stdout.write(json.dumps(rows, indent=2))
            for row in [] if options["json"] else rows:
                state = "active" if row["active"] else "inactive"
                self.stdout.write(
                    f"{row['client_id']}  {row['name']}  [{row['scopes']}]  {row['auth_method']}  {state}"
                )
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
        if not (options["jwks_file"] or options["jwks_url"] or options["secret"]):
            raise CommandError(
                "Say how the client authenticates: --jwks-file FILE or --jwks-url URL (its public keys; "
                "SMART Backend Services), or --secret (a shared secret, for local tools only)."
            )
        definition = {
            "organization": org,
            "name": options["name"],
            "scopes": " ".join(options["scope"]),
            "patient": patient,
            "acting_user": user,
        }
        secret = None
        try:
            if options["secret"]:
                client, secret = auth.create_client(**definition)
            else:
                jwks = _read_jwks(options["jwks_file"]) if options["jwks_file"] else None
                client = auth.register_backend_client(
                    **definition, jwks=jwks, jwks_url=options["jwks_url"] or ""
                )
        except auth.ClientError as exc:
            raise CommandError("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
        out: dict[str, Any] = {
            "client_id": client.client_id,
            "auth_method": client.auth_method,
            "scopes": client.allowed_scopes,
        }
        if secret is not None:
            out["client_secret"] = secret
        if client.jwks:
            out["kids"] = [k["kid"] for k in client.jwks["keys"]]
        if client.jwks_url:
            out["jwks_url"] = client.jwks_url
        if options["json"]:
            self.stdout.write(json.dumps(out, indent=2))
            return
        self.stdout.write(f"client_id:     {client.client_id}")
        self.stdout.write(f"auth method:   {client.auth_method}")
        self.stdout.write(f"scopes:        {client.allowed_scopes}")
        if secret is not None:
            self.stdout.write(f"client_secret: {secret}")
            self.stdout.write(
                "The secret is shown only now. Store it in the other system; it cannot be recovered."
            )
        else:
            keys = ", ".join(out.get("kids", [])) or client.jwks_url
            self.stdout.write(f"public keys:   {keys}")
            self.stdout.write(
                "The client signs a JWT assertion (RS384 or ES384) with iss = sub = its client_id and aud "
                "= this server's /fhir/token URL (docs/operations.md)."
            )


def _read_jwks(path: str) -> Any:
    """The JSON of a JWK Set file, or a CommandError saying what the file is instead."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CommandError(f"--jwks-file {path}: cannot be read ({exc.strerror}).") from None
    except UnicodeDecodeError:
        raise CommandError(f"--jwks-file {path}: not a text file (expected a JWK Set in JSON).") from None
    head = text.lstrip()[:60]
    if head.startswith("-----BEGIN") and "PRIVATE" in head:
        raise CommandError(
            f"--jwks-file {path} is a PRIVATE key: it must never be given to this server. Give the PUBLIC "
            "JWK Set (docs/operations.md shows how to make one)."
        )
    if head.startswith("-----BEGIN"):
        raise CommandError(
            f"--jwks-file {path} is a PEM file; give the public key as a JWK Set in JSON "
            '({"keys": [{"kty": ..., "kid": ..., ...}]}; docs/operations.md shows how).'
        )
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--jwks-file {path}: not JSON ({exc}).") from None


def _uuid(text: str) -> Any:
    import uuid

    try:
        return uuid.UUID(text)
    except ValueError:
        raise CommandError(f"{text!r} is not a patient id (UUID).") from None
