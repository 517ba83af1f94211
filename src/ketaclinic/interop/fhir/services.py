"""FHIR read, search and ``$everything``: the rows a grant may see, in pages, each access audited.

Every query starts from ``Grant.rows`` (organization, then the scope's compartment), so a request can
never reach another organization. One audit row is written per patient whose data a response discloses
(action ``query``, client ``fhir``, the client id in ``detail``), in the request's transaction.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from django.db.models import Max, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.interop.fhir import paging, subset
from ketaclinic.interop.fhir.auth import Forbidden, Grant
from ketaclinic.interop.fhir.params import Filter, ParamType, Search, Sort, Token
from ketaclinic.interop.fhir.resources import REGISTRY, ResourceType
from ketaclinic.interop.fhir.resources.base import Source
from ketaclinic.interop.fhir.scopes import READ, SEARCH
from ketaclinic.patients.models import Patient

CATEGORY = "fhir"


class NotFound(Exception):
    pass


# Included resources per _include/_revinclude value at most (R4 lets the server limit them; an outcome
# issue says when it did).
MAX_INCLUDED = 500


@dataclass(frozen=True)
class Page:
    resources: list[dict[str, Any]]
    total: int
    next_cursor: str = ""
    previous_cursor: str = ""
    included: list[dict[str, Any]] = field(default_factory=list)
    # (severity, code, diagnostics) for the Bundle's OperationOutcome entry (lenient handling, limits)
    issues: list[tuple[str, str, str]] = field(default_factory=list)


def _order(source: Source, sort: Sort | None) -> list[Any]:
    return paging.order_by(source, sort, bool(sort and sort.descending))


def _page_rows(
    sets: list[tuple[Source, QuerySet[Any]]], sort: Sort | None, offset: int, count: int
) -> tuple[list[tuple[Source, Any]], int]:
    """Offset paging (``_offset``, still read for old links): the rows at offset..offset+count."""
    total = sum(qs.count() for _source, qs in sets)
    if count == 0 or offset >= total:
        return [], total
    rows = _merged(sets, sort, offset + count, descending=bool(sort and sort.descending))
    return rows[offset : offset + count], total


def _merged(
    sets: list[tuple[Source, QuerySet[Any]]], sort: Sort | None, limit: int, *, descending: bool
) -> list[tuple[Source, Any]]:
    """The first ``limit`` rows of all sources in the shared order (paging.merge_key)."""
    if len(sets) == 1:
        source, qs = sets[0]
        return [(source, obj) for obj in qs.order_by(*paging.order_by(source, sort, descending))[:limit]]
    streams = [
        [
            (paging.merge_key(s, o, sort), n, s, o)
            for o in qs.order_by(*paging.order_by(s, sort, descending))[:limit]
        ]
        for n, (s, qs) in enumerate(sets)
    ]
    merged = heapq.merge(*streams, key=lambda row: row[0], reverse=descending)
    return [(s, o) for _k, _n, s, o in merged][:limit]


@dataclass(frozen=True)
class _Window:
    rows: list[tuple[Source, Any]]
    total: int
    next_cursor: str
    previous_cursor: str


def _window(sets: list[tuple[Source, QuerySet[Any]]], query: Search) -> _Window:
    """One page: by cursor (keyset, paging.py), else from ``_offset`` (0 on a first page)."""
    sort, count = query.sort, query.count
    descending = bool(sort and sort.descending)
    if not query.cursor:
        rows, total = _page_rows(sets, sort, query.offset, count)
        if not rows:
            return _Window([], total, "", "")
        more = query.offset + len(rows) < total
        if not more and not query.offset:
            return _Window(rows, total, "", "")  # one page holds it all: no cursor, no snapshot needed
        snapshot = _snapshot(sets)
        nxt = paging.make(rows, sort, snapshot, last=True, forward=True) if more else ""
        prev = paging.make(rows, sort, snapshot, last=False, forward=False) if query.offset else ""
        return _Window(rows, total, nxt, prev)
    cursor = paging.decode(query.cursor, sort)
    sets = [(s, qs.filter(paging.snapshot_q(s, cursor.snapshot))) for s, qs in sets]
    total = sum(qs.count() for _source, qs in sets)
    if count == 0:
        return _Window([], total, "", "")
    # Forward: the rows after the anchor in the search's order; backward: the rows before it, read in the
    # reverse order and turned round.
    reading = descending if cursor.forward else not descending
    beyond = [(s, qs.filter(paging.beyond_q(s, sort, cursor, reading))) for s, qs in sets]
    rows = _merged(beyond, sort, count + 1, descending=reading)
    more, rows = len(rows) > count, rows[:count]
    if not cursor.forward:
        rows.reverse()
    if not rows:
        return _Window([], total, "", "")
    has_next, has_previous = (more, True) if cursor.forward else (True, more)
    nxt = paging.make(rows, sort, cursor.snapshot, last=True, forward=True) if has_next else ""
    prev = paging.make(rows, sort, cursor.snapshot, last=False, forward=False) if has_previous else ""
    return _Window(rows, total, nxt, prev)


def _snapshot(sets: list[tuple[Source, QuerySet[Any]]]) -> datetime:
    """The moment a paged search starts: now, or the newest matching row if a clock put one later."""
    moments = [timezone.now()]
    for source, qs in sets:
        if source.created_field is not None:
            newest = qs.aggregate(newest=Max(source.created_field))["newest"]
            if newest is not None:
                moments.append(newest)
    return max(moments)


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
    page_query = query if query.summary != "count" else replace(query, count=0)
    window = _window(filtered, page_query)
    resources = [source.to_fhir(obj, "") for source, obj in window.rows]
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type=rtype.name,
        object_id="search",
        patient_ids=[source.patient_pk(obj) for source, obj in window.rows],
        request=request,
        detail=f"search {rtype.name}: {detail}"[:380],
    )
    issues = [("warning", "not-supported", f"{name}: {reason}; ignored") for name, reason in query.ignored]
    included = _included(grant, rtype, resources, query, request, issues)
    if query.summary in ("true", "text", "data"):
        resources = [subset.summarize(r, query.summary) for r in resources]
        included = [subset.summarize(r, query.summary) for r in included]
    elif query.elements:
        resources = [subset.elements(r, query.elements) for r in resources]
    return Page(
        resources,
        window.total,
        window.next_cursor,
        window.previous_cursor,
        included,
        issues,
    )


def _references(resource: dict[str, Any], path: str, target: str) -> list[str]:
    value = resource.get(path)
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    found = []
    for item in items:
        ref = item.get("reference", "") if isinstance(item, dict) else ""
        kind, _, ident = ref.partition("/")
        if kind == target and ident:
            found.append(ident)
    return found


def _included(
    grant: Grant,
    rtype: ResourceType,
    resources: list[dict[str, Any]],
    query: Search,
    request: HttpRequest | None,
    issues: list[tuple[str, str, str]],
) -> list[dict[str, Any]]:
    """The resources _include/_revinclude add to a page: only types the grant may read (others are left
    out silently, as R4 says), each type's disclosure audited, none repeated or already a match."""
    if not resources or not query.includes:
        return []
    seen = {(r["resourceType"], r["id"]) for r in resources}
    out: list[dict[str, Any]] = []
    for inc in query.includes:
        if inc.reverse:
            other = REGISTRY[inc.source]
            flt = Filter(inc.param, ParamType.REFERENCE, tuple(r["id"] for r in resources))
            target = other
        else:
            param = rtype.params[inc.param]
            target = REGISTRY[param.target]
            ids = list(dict.fromkeys(i for r in resources for i in _references(r, param.path, target.name)))
            if not ids:
                continue
            flt = Filter("_id", ParamType.TOKEN, tuple(Token(None, i) for i in ids))
        try:
            sets = grant.rows(target, READ)
        except Forbidden:
            continue
        rows = _merged([(s, s.filter(qs, flt)) for s, qs in sets], None, MAX_INCLUDED + 1, descending=False)
        if len(rows) > MAX_INCLUDED:
            rows = rows[:MAX_INCLUDED]
            issues.append(
                ("information", "too-costly", f"{inc}: only the first {MAX_INCLUDED} resources are included")
            )
        fresh = []
        for source, obj in rows:
            key = (target.name, source.fhir_id(obj))
            if key not in seen:
                seen.add(key)
                fresh.append((source, obj))
        if not fresh:
            continue
        out += [source.to_fhir(obj, "") for source, obj in fresh]
        audit_disclosure(
            grant=grant,
            action=Action.QUERY,
            object_type=target.name,
            object_id="search-include",
            patient_ids=[source.patient_pk(obj) for source, obj in fresh],
            request=request,
            detail=f"{'_revinclude' if inc.reverse else '_include'}={inc} of a {rtype.name} search",
        )
    return out


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
    """Search a definitional type (Questionnaire): no table, no patient compartment; filters in Python,
    paged by the same cursors (the anchor's id; definitions are ordered by id)."""
    grant.context_for(rtype, SEARCH)
    assert rtype.definitions is not None and rtype.matches is not None
    matches = rtype.matches

    def hit(resource: dict[str, Any], flt: Filter) -> bool:
        if flt.modifier == "not":
            return not matches(resource, replace(flt, modifier=""))
        return matches(resource, flt)

    found = [r for r in rtype.definitions() if all(hit(r, flt) for flt in query.filters)]
    descending = bool(query.sort and query.sort.descending)
    found.sort(key=lambda r: str(r["id"]), reverse=descending)
    count = 0 if query.summary == "count" else query.count
    start, snapshot = query.offset, timezone.now()
    rows = found[start : start + count]
    if query.cursor:
        cursor = paging.decode(query.cursor, query.sort)
        snapshot, anchor = cursor.snapshot, cursor.anchor
        ids = [str(r["id"]) for r in found]

        def beyond(ident: str) -> bool:  # after the anchor in the search's order
            return ident < anchor if descending else ident > anchor

        if cursor.forward:
            first = next((n for n, i in enumerate(ids) if beyond(i)), len(ids))
            rows = found[first : first + count]
        else:  # the rows before the anchor
            end = next((n for n, i in enumerate(ids) if beyond(i) or i == anchor), len(ids))
            rows = found[max(0, end - count) : end]
    sort = paging.sort_text(query.sort)
    nxt = prev = ""
    if rows and found.index(rows[-1]) + 1 < len(found):
        nxt = paging.encode(paging.Cursor(sort, None, str(rows[-1]["id"]), snapshot, forward=True))
    if rows and found.index(rows[0]) > 0:
        prev = paging.encode(paging.Cursor(sort, None, str(rows[0]["id"]), snapshot, forward=False))
    audit_disclosure(
        grant=grant,
        action=Action.QUERY,
        object_type=rtype.name,
        object_id="search",
        patient_ids=[],
        request=request,
        detail=f"search {rtype.name}: {detail}"[:380],
    )
    issues = [("warning", "not-supported", f"{name}: {reason}; ignored") for name, reason in query.ignored]
    resources = list(rows)
    if query.summary in ("true", "text", "data"):
        resources = [subset.summarize(r, query.summary) for r in resources]
    elif query.elements:
        resources = [subset.elements(r, query.elements) for r in resources]
    return Page(resources, len(found), nxt, prev, [], issues)


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
