"""Bulk export (FHIR Bulk Data Access ``$export``, asynchronous pattern) and the command-line export.

Kick-off stores a ``BulkExport`` and enqueues a ``fhir.export`` job (``ketaclinic worker`` runs it); the job
writes one NDJSON file per type into ``BulkExportFile`` rows and audits one ``export`` row per patient
exported. Status and files are answered to the same client only. ``write_directory`` is the same export
written straight to disk for ``ketaclinic fhir export DIR``.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.models import Organization
from ketaclinic.accounts.services import system_user
from ketaclinic.audit.models import Action
from ketaclinic.core import jobs
from ketaclinic.interop.fhir.auth import Forbidden, Grant
from ketaclinic.interop.fhir.models import ApiClient, BulkExport, BulkExportFile, ExportStatus
from ketaclinic.interop.fhir.params import SearchError, parse_date
from ketaclinic.interop.fhir.resources import REGISTRY
from ketaclinic.interop.fhir.scopes import READ, Context, parse_scopes
from ketaclinic.interop.fhir.services import audit_disclosure, patient_resources

log = logging.getLogger("ketaclinic.fhir")
JOB_KIND = "fhir.export"
OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
KICKOFF_PARAMS = frozenset({"_type", "_since", "_outputFormat"})


@dataclass(frozen=True)
class ExportRequest:
    types: tuple[str, ...]
    since: datetime | None


def parse_kickoff(pairs: Iterable[tuple[str, str]], *, grant: Grant, system_level: bool) -> ExportRequest:
    """Check the kick-off parameters and that the grant may export every type asked (Forbidden if not).

    A system-level export needs system/ scopes for every type; ``Patient/$export`` takes any context."""
    errors: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in KICKOFF_PARAMS:
            errors[name] = "is not a parameter of $export (use _type, _since, _outputFormat)"
        elif name in values:
            errors[name] = "is given more than once"
        else:
            values[name] = value
    since = None
    if "_since" in values:
        try:
            moment = parse_date(values["_since"])
            if moment.prefix != "eq":
                raise ValueError("takes no prefix")
            since = moment.start
        except ValueError as exc:
            errors["_since"] = str(exc)
    if "_outputFormat" in values and values["_outputFormat"] not in OUTPUT_FORMATS:
        errors["_outputFormat"] = "only NDJSON is produced (application/fhir+ndjson)"
    # Definitional types (Questionnaire) hold no patient data and are not exported.
    types = tuple(t for t in values.get("_type", "").split(",") if t) or tuple(
        name for name, rtype in REGISTRY.items() if rtype.definitions is None
    )
    unknown = [t for t in types if t not in REGISTRY]
    definitional = [t for t in types if t in REGISTRY and REGISTRY[t].definitions is not None]
    if unknown:
        errors["_type"] = f"unknown resource type(s): {', '.join(unknown)}"
    elif definitional:
        errors["_type"] = f"{', '.join(definitional)}: definitions, not patient data; read them with a search"
    if errors:
        raise SearchError(errors)
    allowed = []
    for name in types:
        try:
            context = grant.context_for(REGISTRY[name], READ)
        except Forbidden:
            if "_type" in values:
                raise
            continue
        if system_level and context is not Context.SYSTEM:
            raise Forbidden("A system-level $export needs system/ scopes.")
        allowed.append(name)
    if not allowed:
        raise Forbidden("The token's scopes allow no resource type to be exported.")
    return ExportRequest(tuple(allowed), since)


def start(
    *, grant: Grant, wanted: ExportRequest, request_url: str, request: HttpRequest | None
) -> BulkExport:
    assert grant.client_pk is not None
    export = BulkExport.objects.create(
        organization_id=grant.organization_id,
        client_id=grant.client_pk,
        scopes=" ".join(str(s) for s in grant.scopes),
        patient_id=grant.patient_id,
        types=list(wanted.types),
        since=wanted.since,
        request_url=request_url[:2000],
    )
    jobs.enqueue(JOB_KIND, {"export": str(export.pk)})
    audit_disclosure(
        grant=grant,
        action=Action.EXPORT,
        object_type="BulkExport",
        object_id=str(export.pk),
        patient_ids=[],
        request=request,
        detail=f"$export requested: {', '.join(wanted.types)}",
    )
    return export


def grant_for_export(export: BulkExport) -> Grant:
    client: ApiClient = export.client
    return Grant(
        organization_id=export.organization_id,
        scopes=parse_scopes(export.scopes),
        audit_user=client.service_user,
        client_id=client.client_id,
        client_pk=client.pk,
        patient_id=export.patient_id,
        acting_user=client.acting_user,
    )


def ndjson(resources: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in resources)


def _generate(
    grant: Grant, types: Iterable[str], since: datetime | None
) -> dict[str, tuple[int, str, set[Any]]]:
    out: dict[str, tuple[int, str, set[Any]]] = {}
    for name in types:
        pairs = list(patient_resources(grant, REGISTRY[name], None, since))
        out[name] = (len(pairs), ndjson(r for _pk, r in pairs), {pk for pk, _r in pairs})
    return out


@jobs.handler(JOB_KIND)
def run_export(payload: dict[str, Any]) -> None:
    export = BulkExport.objects.select_related("client", "client__service_user").get(pk=payload["export"])
    if export.status == ExportStatus.DONE:
        return
    started = timezone.now()
    grant = grant_for_export(export)
    try:
        with transaction.atomic():
            produced = _generate(grant, export.types, export.since)
            for name, (count, text, _patients) in produced.items():
                BulkExportFile.objects.create(export=export, resource_type=name, count=count, ndjson=text)
            patients = set().union(*(p for _c, _t, p in produced.values())) if produced else set()
            audit_disclosure(
                grant=grant,
                action=Action.EXPORT,
                object_type="BulkExport",
                object_id=str(export.pk),
                patient_ids=sorted(patients, key=str),
                request=None,
                detail=f"$export {export.pk}: "
                + ", ".join(f"{n} {c}" for n, (c, _t, _p) in produced.items()),
            )
    except Exception as exc:  # reported to the client through the status URL
        log.exception("FHIR export %s failed", export.pk)
        export.status, export.error = ExportStatus.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    else:
        export.status = ExportStatus.DONE
    export.transaction_time, export.finished_at = started, timezone.now()
    export.save(update_fields=["status", "error", "transaction_time", "finished_at"])


def manifest(export: BulkExport, *, base: str) -> dict[str, Any]:
    assert export.transaction_time is not None
    from ketaclinic.interop.fhir.resources.base import instant

    return {
        "transactionTime": instant(export.transaction_time),
        "request": export.request_url,
        "requiresAccessToken": True,
        "output": [
            {
                "type": f.resource_type,
                "url": f"{base}$export-file/{export.pk}/{f.resource_type}.ndjson",
                "count": f.count,
            }
            for f in export.files.order_by("resource_type")
        ],
        "error": [],
    }


def find(grant: Grant, export_id: uuid.UUID) -> BulkExport | None:
    """An export of this client, made with scopes the requesting token still holds (issue 15, Low): another
    client's export, or one made with a broader token than this one (a token narrowed to
    ``system/Observation.rs`` asking for an earlier ``system/*.rs`` export), or for another patient, is
    not found. Each file is checked again against the token's scopes (``may_read_file``)."""
    export = BulkExport.objects.filter(
        pk=export_id, client_id=grant.client_pk, organization_id=grant.organization_id
    ).first()
    if export is None or export.patient_id != grant.patient_id:
        return None
    made_with = parse_scopes(export.scopes)
    if not all(any(held.covers(scope) for held in grant.scopes) for scope in made_with):
        return None
    return export


def may_read_file(grant: Grant, resource_type: str) -> bool:
    """Whether the token's scopes allow reading ``resource_type`` at all (a file of another type is not
    served, even from an export this token may see)."""
    if resource_type not in REGISTRY:
        return False
    try:
        grant.context_for(REGISTRY[resource_type], READ)
    except Forbidden:
        return False
    return True


def write_directory(
    *,
    organization: Organization,
    directory: Path,
    types: Iterable[str] | None = None,
    since: datetime | None = None,
) -> dict[str, int]:
    """Export every resource of the organization to ``<directory>/<Type>.ndjson``; audited as the
    ``system:fhir-export`` service account. Returns {type: count}."""
    user = system_user("fhir-export", organization)
    names = tuple(types or (name for name, rtype in REGISTRY.items() if rtype.definitions is None))
    grant = Grant(
        organization_id=organization.pk,
        scopes=parse_scopes("system/*.rs"),
        audit_user=user,
        client_id="",
        audit_client="cli",
    )
    directory.mkdir(parents=True, exist_ok=True)
    produced = _generate(grant, names, since)
    counts: dict[str, int] = {}
    patients: set[Any] = set()
    for name, (count, text, pks) in produced.items():
        (directory / f"{name}.ndjson").write_text(text, encoding="utf-8")
        counts[name] = count
        patients |= pks
    audit_disclosure(
        grant=grant,
        action=Action.EXPORT,
        object_type="BulkExport",
        object_id=str(directory)[:64],
        patient_ids=sorted(patients, key=str),
        request=None,
        detail="fhir export to " + str(directory) + ": " + ", ".join(f"{n} {c}" for n, c in counts.items()),
    )
    return counts
