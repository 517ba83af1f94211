"""Keyset paging of searches: opaque cursors in ``next``/``previous`` links instead of offsets.

Offset paging shifted when monitor data arrived between two pages (a row stored before the offset pushed
the next page along: duplicates; one removed: a skip). A cursor instead names the last row shown (its sort
value and id) and the next page starts strictly after it, in the order ``(sort value, id)`` that every
source of a type shares (services.py merges several sources in that order). A cursor also carries the
moment of the first page: rows stored after it (``Source.created_field``) are left out of later pages, so
paging through a search yields exactly the rows that existed when it started, each once, and ``total``
stays the first page's count (rows changed meanwhile so that they no longer match simply drop out).

Order: ascending puts rows without a sort value last (descending first, the exact reverse), on both
databases. Ties are broken by the resource id as a string. Sorting by a value that changes (``_lastUpdated``,
an Encounter's start before check-in) can still move a changed row across the cursor.

A cursor is encrypted and authenticated (JWE ``dir`` + ``A256GCM`` with joserfc, the project's JOSE
library, keyed from ``SECRET_KEY``): the sort value of a row (a date of service, a birth date) is PHI and must
not be readable in URLs or proxy logs, and a forged cursor is refused.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from django.db.models import F, Q
from django.db.models.expressions import OrderBy
from django.utils.crypto import salted_hmac
from joserfc import jwe
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from ketaclinic.interop.fhir.params import SearchError, Sort
from ketaclinic.interop.fhir.resources.base import Source

_ALGORITHMS: Final = ["dir", "A256GCM"]
_HEADER: Final = {"alg": "dir", "enc": "A256GCM"}
_UUID: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_UUID: Final = uuid.UUID(int=0)
_MAX_UUID: Final = uuid.UUID(int=(1 << 128) - 1)
# The smallest and largest primary key of each key type a source of several may have.
_KEY_RANGES: Final[dict[str, tuple[Any, Any]]] = {
    "UUIDField": (_MIN_UUID, _MAX_UUID),
    "BigAutoField": (0, (1 << 63) - 1),
}


@dataclass(frozen=True)
class Cursor:
    sort: str  # "", "date", "-date": the _sort the cursor belongs to
    value: Any  # the anchor row's sort value (None: no value, or sorting by _id)
    anchor: str  # the anchor row's resource id
    snapshot: datetime  # rows stored after this are not part of the search
    forward: bool  # True: the rows after the anchor (next); False: the rows before it (previous)


def _key() -> OctKey:
    return OctKey.import_key(salted_hmac("ketaclinic.fhir.cursor", "key", algorithm="sha256").digest())


def _pack(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return {"v": value}


def _unpack(packed: Any) -> Any:
    if not isinstance(packed, dict) or len(packed) != 1:
        raise ValueError("bad value")
    kind, text = next(iter(packed.items()))
    if kind == "dt":
        return datetime.fromisoformat(text)
    if kind == "d":
        return date.fromisoformat(text)
    if kind == "u":
        return uuid.UUID(text)
    return text


def sort_text(sort: Sort | None) -> str:
    return "" if sort is None else ("-" if sort.descending else "") + sort.key


def encode(cursor: Cursor) -> str:
    payload = {
        "s": cursor.sort,
        "k": _pack(cursor.value),
        "i": cursor.anchor,
        "t": cursor.snapshot.isoformat(),
        "f": cursor.forward,
    }
    return jwe.encrypt_compact(_HEADER, json.dumps(payload).encode(), _key(), algorithms=_ALGORITHMS)


def decode(text: str, sort: Sort | None) -> Cursor:
    """The cursor of a link this server wrote for the same ``_sort``; else SearchError naming _cursor."""
    try:
        plain = jwe.decrypt_compact(text, _key(), algorithms=_ALGORITHMS).plaintext
        data = json.loads(plain or b"")
        cursor = Cursor(
            sort=str(data["s"]),
            value=_unpack(data["k"]),
            anchor=str(data["i"]),
            snapshot=datetime.fromisoformat(data["t"]),
            forward=bool(data["f"]),
        )
    except (JoseError, ValueError, KeyError, TypeError):
        raise SearchError({"_cursor": "is not a cursor of this server (follow the Bundle's links)"}) from None
    if cursor.sort != sort_text(sort):
        raise SearchError({"_cursor": "belongs to a search with another _sort (follow the Bundle's links)"})
    return cursor


def field_for(source: Source, sort: Sort | None) -> str | None:
    """The model field a sort key orders by (None: by id only)."""
    if sort is None or sort.key == "_id":
        return None
    return source.sort_fields[sort.key]


def order_by(source: Source, sort: Sort | None, descending: bool) -> list[OrderBy]:
    field = field_for(source, sort)
    pk = F("pk").desc() if descending else F("pk").asc()
    if field is None:
        return [pk]
    return [F(field).desc(nulls_first=True) if descending else F(field).asc(nulls_last=True), pk]


def merge_key(source: Source, obj: Any, sort: Sort | None) -> tuple[bool, Any, str]:
    """The position of a row in the shared order: (no value, value, id); rows without a value sort last."""
    field = field_for(source, sort)
    value = None if field is None or sort is None else source.sort_value(obj, sort.key)
    return (field is not None and value is None, value if value is not None else "", source.fhir_id(obj))


class _Pk:
    def __init__(self, pk: Any) -> None:
        self.pk = pk


def _ids_beyond(source: Source, anchor: str, greater: bool) -> Q:
    """Rows of ``source`` whose resource id sorts after (``greater``) or before ``anchor`` as a string."""
    op = "gt" if greater else "lt"
    pk = source.parse_id(anchor)
    if pk is not None:  # the anchor is one of this source's rows: ids order as primary keys do
        return Q(**{f"pk__{op}": pk})
    # Another source's row (a type served by several tables). Every id of a source is its prefix + a
    # UUID or a fixed-width number (monitor readings) + its suffix, so its ids as text lie between those
    # of the smallest and the largest key, and the ids after the anchor are the keys after the one at the
    # anchor's position.
    kind = source.model._meta.pk.get_internal_type() if source.model._meta.pk is not None else ""
    if kind not in _KEY_RANGES:
        raise SearchError({"_cursor": "cannot continue here (restart the search)"})
    lowest, highest = (source.fhir_id(_Pk(key)) for key in _KEY_RANGES[kind])
    if anchor < lowest:
        return Q() if greater else Q(pk__in=[])
    if anchor > highest:
        return Q(pk__in=[]) if greater else Q()
    if kind != "UUIDField":  # the anchor lies among this source's ids but is none of them
        raise SearchError({"_cursor": "cannot continue here (restart the search)"})
    head = _common_prefix(lowest, highest)  # the prefix every id of this source starts with
    text = anchor[head : head + 36]
    if not _UUID.match(text):
        raise SearchError({"_cursor": "cannot continue here (restart the search)"})
    at = uuid.UUID(text)
    same = source.fhir_id(_Pk(at))
    beyond = Q(**{f"pk__{op}": at})
    if (same > anchor) if greater else (same < anchor):
        beyond |= Q(pk=at)
    return beyond


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def beyond_q(source: Source, sort: Sort | None, cursor: Cursor, descending: bool) -> Q:
    """Rows of ``source`` strictly after the cursor's anchor in the order ``descending`` gives."""
    greater = not descending
    ids = _ids_beyond(source, cursor.anchor, greater)
    field = field_for(source, sort)
    if field is None:
        return ids
    value = cursor.value
    null = Q(**{f"{field}__isnull": True})
    if greater:  # ascending, values then NULLs
        if value is None:
            return null & ids
        return Q(**{f"{field}__gt": value}) | null | (Q(**{field: value}) & ids)
    if value is None:  # descending: NULLs then values, downwards
        return ~null | (null & ids)
    return Q(**{f"{field}__lt": value}) | (Q(**{field: value}) & ids)


def snapshot_q(source: Source, snapshot: datetime) -> Q:
    if source.created_field is None:
        return Q()
    return Q(**{f"{source.created_field}__lte": snapshot})


def anchor_of(source: Source, obj: Any, sort: Sort | None) -> tuple[Any, str]:
    field = field_for(source, sort)
    value = None if field is None or sort is None else source.sort_value(obj, sort.key)
    return value, source.fhir_id(obj)


def make(
    rows: Sequence[tuple[Source, Any]], sort: Sort | None, snapshot: datetime, *, last: bool, forward: bool
) -> str:
    source, obj = rows[-1] if last else rows[0]
    value, anchor = anchor_of(source, obj, sort)
    return encode(Cursor(sort_text(sort), value, anchor, snapshot, forward))
