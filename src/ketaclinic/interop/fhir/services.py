"""FHIR read, search and ``$everything``: the rows a grant may see, in pages, each access audited.

Every query starts from ``Grant.rows`` (organization, then the scope's compartment), so a request can
never reach another organization. One audit row is written per patient whose data a response discloses
(action ``query``, client ``fhir``, the client id in ``detail``), in the request's transaction.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest

from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.interop.fhir.auth import Forbidden, Grant
from ketaclinic.interop.fhir.params import Search, Sort
from ketaclinic.interop.fhir.resources import REGISTRY, ResourceType
from ketaclinic.interop.fhir.resources.base import Source
from ketaclinic.interop.fhir.scopes import READ, SEARCH
from ketaclinic.patients.models import Patient

CATEGORY = "fhir"


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]]
    total: int


def _order(source: Source, sort: Sort | None) -> tuple[str, str]:
    key = sort.key if sort else "_id"
    field = source.sort_fields[key]
    return (f"-{field}", "-pk") if sort and sort.descending else (field, "pk")


def _merge_key(source: Source, obj: Any, sort: Sort | None) -> tuple[Any, str]:
    key = sort.key if sort else "_id"
    fhir_id = source.fhir_id(obj)
    return ("" if key == "_id" else source.sort_value(obj, key), fhir_id)


def _page_rows(
    sets: list[tuple[Source, QuerySet[Any]]], sort: Sort | None, offset: int, count: int
) -> tuple[list[tuple[Source, Any]], int]:
    total = sum(qs.count() for _source, qs in sets)
    if count == 0 or offset >= total:
        return [], total
    if len(sets) == 1:
        source, qs = sets[0]
        return [(source, obj) for obj in qs.order_by(*_order(source, sort))[offset : offset + count]], total
    # Several tables serve this type: take the first offset+count of each in order and merge.
    streams = [
        [(_merge_key(s, o, sort), n, s, o) for o in qs.order_by(*_order(s, sort))[: offset + count]]
        for n, (s, qs) in enumerate(sets)
    ]
    merged = heapq.merge(*streams, key=lambda row: row[0], reverse=bool(sort and sort.descending))
    rows = [(s, o) for _k, _n, s, o in merged]
    return rows[offset : offset + count], total


def audit_disclosure(
    *,
    grant: Grant,
    action: str,
    object_type: str,
    object_id: str,
    patient_ids: Iterable[Any],
    request: HttpRequest | None,
    detail: str,
) -> None:
    """One audit row per patient disclosed (or one without a patient when nothing was)."""
    ids = list(dict.fromkeys(patient_ids))
    patients: list[Patient | None] = list(
        Patient.objects.filter(pk__in=ids, organization_id=grant.organization_id)
    )
    text = f"client {grant.client_id or grant.audit_client}: {detail}"
    for patient in patients or [None]:
        audit.record(
            user=grant.audit_user,
            action=action,
            category=CATEGORY,
            patient=patient,
            object_type=object_type,
            object_id=object_id,
            request=request,
            client=grant.audit_client,
            detail=text,
        )


def search(
    *, grant: Grant, rtype: ResourceType, query: Search, request: HttpRequest | None, detail: str = ""
) -> Page:
    if rtype.definitions is not None:
        return _search_definitions(grant=grant, rtype=rtype, query=query, request=request, detail=detail)
    sets = grant.rows(rtype, SEARCH)
    filtered = []
    for source, qs in sets:
        for flt in query.filters:
            qs = source.filter(qs, flt)
        filtered.append((source, qs))
    rows, total = _page_rows(filtered, query.sort, query.offset, query.count)
    resources = [source.to_fhir(obj, "") for source, obj in rows]
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type=rtype.name,
        object_id="search",
        patient_ids=[source.patient_pk(obj) for source, obj in rows],
        request=request,
        detail=f"search {rtype.name}: {detail}"[:380],
    )
    return Page(resources, total)


def read(*, grant: Grant, rtype: ResourceType, fhir_id: str, request: HttpRequest | None) -> dict[str, Any]:
    """One resource by id. Another organization's (or compartment's) resource is simply not found."""
    context = grant.context_for(rtype, READ)
    if rtype.definitions is not None:
        return _read_definition(grant=grant, rtype=rtype, fhir_id=fhir_id, request=request)
    found = rtype.source_for(fhir_id)
    if found is None:
        raise NotFound(f"{rtype.name}/{fhir_id} is not known.")
    source, pk = found
    obj = grant.restrict(source, context).filter(pk=pk).first()
    if obj is None:
        raise NotFound(f"{rtype.name}/{fhir_id} is not known.")
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type=rtype.name,
        object_id=fhir_id,
        patient_ids=[source.patient_pk(obj)],
        request=request,
        detail=f"read {rtype.name}/{fhir_id}",
    )
    return source.to_fhir(obj, "")


def _search_definitions(
    *, grant: Grant, rtype: ResourceType, query: Search, request: HttpRequest | None, detail: str
) -> Page:
    """Search a definitional type (Questionnaire): no table, no patient compartment; filters in Python."""
    grant.context_for(rtype, SEARCH)
    assert rtype.definitions is not None and rtype.matches is not None
    matches = rtype.matches
    found = [r for r in rtype.definitions() if all(matches(r, flt) for flt in query.filters)]
    found.sort(key=lambda r: str(r["id"]), reverse=bool(query.sort and query.sort.descending))
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type=rtype.name,
        object_id="search",
        patient_ids=[],
        request=request,
        detail=f"search {rtype.name}: {detail}"[:380],
    )
    return Page(found[query.offset : query.offset + query.count], len(found))


def _read_definition(
    *, grant: Grant, rtype: ResourceType, fhir_id: str, request: HttpRequest | None
) -> dict[str, Any]:
    assert rtype.definitions is not None
    for resource in rtype.definitions():
        if resource["id"] == fhir_id:
            audit_disclosure(
                grant=grant,
                action=Action.QUERY,
                object_type=rtype.name,
                object_id=fhir_id,
                patient_ids=[],
                request=request,
                detail=f"read {rtype.name}/{fhir_id}",
            )
            return resource
    raise NotFound(f"{rtype.name}/{fhir_id} is not known.")


def patient_resources(
    grant: Grant, rtype: ResourceType, patient_ids: QuerySet[Any] | list[Any] | None, since: Any = None
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Every resource of ``rtype`` the grant may read, optionally for some patients or changed since a
    moment: (patient pk, resource) pairs, streamed."""
    for source, qs in grant.rows(rtype, READ):
        if patient_ids is not None:
            qs = source.of_patients(qs, patient_ids)
        if since is not None:
            qs = qs.filter(**{f"{source.updated_field}__gt": since})
        for obj in qs.order_by(*_order(source, None)).iterator(chunk_size=500):
            yield source.patient_pk(obj), source.to_fhir(obj, "")


def everything(*, grant: Grant, patient_id: str, request: HttpRequest | None) -> list[dict[str, Any]]:
    """``Patient/{id}/$everything``: the patient and every resource of theirs the grant may read.

    Needs read access to Patient; other types are included when the scopes cover them."""
    patient = read_patient(grant=grant, patient_id=patient_id)
    resources = [patient]
    for rtype in REGISTRY.values():
        if rtype.name == "Patient":
            continue
        try:
            grant.context_for(rtype, READ)
        except Forbidden:
            continue
        resources += [r for _pk, r in patient_resources(grant, rtype, [patient["id"]])]
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type="Patient",
        object_id=f"{patient_id}/$everything",
        patient_ids=[patient["id"]],
        request=request,
        detail=f"Patient/{patient_id}/$everything: {len(resources)} resources",
    )
    return resources


def read_patient(*, grant: Grant, patient_id: str) -> dict[str, Any]:
    rtype = REGISTRY["Patient"]
    context = grant.context_for(rtype, READ)
    found = rtype.source_for(patient_id)
    obj = None
    if found is not None:
        source, pk = found
        obj = grant.restrict(source, context).filter(pk=pk).first()
    if found is None or obj is None:
        raise NotFound(f"Patient/{patient_id} is not known.")
    return found[0].to_fhir(obj, "")
