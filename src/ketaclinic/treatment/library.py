"""Protocol library use cases: on-demand sync of the built-ins, listing, copying and editing (admins).

Versions are immutable rows; an edit stores the next version after ``validate_protocol`` (via
``clinical.protocols.edit_protocol`` / ``protocol_from_dict``) accepts it. Built-in protocols are read-only:
a clinic copies one (``copy_protocol``) and edits the copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest

from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.clinical import protocols as engine
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.core.access import ADMIN
from ketaclinic.core.errors import DomainError
from ketaclinic.core.limits import too_long
from ketaclinic.treatment.models import ProtocolVersion

CATEGORY = "protocol-library"


class LibraryError(DomainError):
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LibraryValidationError(LibraryError):
    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class LibraryConflict(LibraryError):
    pass


def sync_builtins() -> int:
    """Store any built-in protocol version not yet in the database; returns how many were added."""
    have = set(ProtocolVersion.objects.filter(organization__isnull=True).values_list("key", "version"))
    added = 0
    for protocol in PROTOCOLS.values():
        if (protocol.id, protocol.version) in have:
            continue
        try:
            with transaction.atomic():
                ProtocolVersion.objects.create(
                    organization=None,
                    key=protocol.id,
                    version=protocol.version,
                    name=protocol.name,
                    drug=protocol.drug.value,
                    route=protocol.route.value,
                    data=engine.protocol_to_dict(protocol),
                    change_note="built-in library",
                )
            added += 1
        except IntegrityError:  # a concurrent request stored it first
            continue
    return added


def _visible(user: User) -> QuerySet[ProtocolVersion]:
    return ProtocolVersion.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=user.organization_id)
    )


def latest_versions(user: User) -> list[ProtocolVersion]:
    """The latest version of every protocol the user's clinic may use, built-ins first."""
    sync_builtins()
    latest: dict[str, ProtocolVersion] = {}
    for row in _visible(user).order_by("key", "-version"):
        latest.setdefault(row.key, row)
    return sorted(latest.values(), key=lambda r: (not r.built_in, r.key))


def get_version(user: User, key: str, version: int | None = None) -> ProtocolVersion:
    sync_builtins()
    qs = _visible(user).filter(key=key)
    if version is not None:
        qs = qs.filter(version=version)
    row = qs.order_by("-version").first()
    if row is None:
        raise LibraryError(f"There is no protocol with the ID '{key}'.")
    return row


def versions_of(user: User, key: str) -> list[ProtocolVersion]:
    return list(_visible(user).filter(key=key).select_related("created_by").order_by("-version"))


def as_protocol(row: ProtocolVersion) -> engine.Protocol:
    return engine.protocol_from_dict(row.data)


def protocol_for(*, organization_id: int, key: str, version: int | None = None) -> engine.Protocol:
    """The protocol a session or plan uses: the clinic's own copy or a built-in, by key and version
    (latest when ``version`` is None). Raises ``engine.UnknownProtocol``."""
    builtin = PROTOCOLS.get(key)
    if builtin is not None and (version is None or version == builtin.version):
        return builtin
    rows = ProtocolVersion.objects.filter(
        Q(organization__isnull=True) | Q(organization_id=organization_id), key=key
    )
    if version is not None:
        rows = rows.filter(version=version)
    row = rows.order_by("-version").first()
    if row is None:
        raise engine.UnknownProtocol(key)
    return as_protocol(row)


def _require_admin(user: User) -> None:
    if user.role != ADMIN:
        raise LibraryError("Only administrators may change the protocol library.")


def copy_protocol(
    *, user: User, source: ProtocolVersion, new_id: str, name: str, request: HttpRequest | None = None
) -> ProtocolVersion:
    _require_admin(user)
    new_id = (new_id or "").strip()
    errors: dict[str, str] = {}
    if new_id in PROTOCOLS or _visible(user).filter(key=new_id).exists():
        errors["new_id"] = "this ID is already used: choose another"
    try:
        copied = engine.copy_protocol(as_protocol(source), new_id=new_id, name=(name or "").strip() or None)
    except engine.ProtocolValidationError as exc:
        errors.update({("new_id" if k == "id" else k): v for k, v in exc.errors.items()})
    if errors:
        raise LibraryValidationError(errors)
    row = ProtocolVersion.objects.create(
        organization_id=user.organization_id,
        key=copied.id,
        version=copied.version,
        name=copied.name,
        drug=copied.drug.value,
        route=copied.route.value,
        data=engine.protocol_to_dict(copied),
        change_note=f"copied from {source.key}@{source.version}",
        created_by=user,
    )
    audit.record(
        user=user,
        action=Action.ADD,
        category=CATEGORY,
        object_type="ProtocolVersion",
        object_id=row.pk,
        after={"protocol": str(row), "based_on": f"{source.key}@{source.version}"},
        request=request,
    )
    return row


@dataclass(frozen=True)
class EditResult:
    row: ProtocolVersion


def edit_protocol(
    *,
    user: User,
    key: str,
    base_version: int,
    text: str,
    change_note: str = "",
    request: HttpRequest | None = None,
) -> ProtocolVersion:
    """Store the edited JSON as the next version of the clinic's protocol ``key``."""
    _require_admin(user)
    current = (
        ProtocolVersion.objects.filter(organization_id=user.org_id, key=key).order_by("-version").first()
    )
    if current is None:
        raise LibraryError(
            "Built-in protocols cannot be edited: copy the protocol first, then edit the copy."
        )
    if current.version != base_version:
        raise LibraryConflict(
            f"Someone saved version {current.version} while you were editing; your changes were not saved."
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LibraryValidationError({"protocol": f"not valid JSON: {exc.msg} (line {exc.lineno})"}) from None
    if not isinstance(data, dict):
        raise LibraryValidationError({"protocol": "must be a JSON object"})
    changes = {k: v for k, v in data.items() if k not in ("schema", "id", "version", "based_on")}
    errors: dict[str, str] = {}
    limit = ProtocolVersion._meta.get_field("change_note").max_length or 0
    if (problem := too_long(change_note.strip(), label="What changed and why", limit=limit)) is not None:
        errors["change_note"] = problem
    for k in ("id", "based_on"):
        if k in data and data[k] != current.data.get(k):
            errors[k] = "cannot be edited (copy the protocol instead)"
    if errors:
        raise LibraryValidationError(errors)
    try:
        edited = engine.edit_protocol(as_protocol(current), changes)
    except engine.ProtocolValidationError as exc:
        raise LibraryValidationError(dict(exc.errors)) from None
    try:
        with transaction.atomic():
            row = ProtocolVersion.objects.create(
                organization_id=user.organization_id,
                key=edited.id,
                version=edited.version,
                name=edited.name,
                drug=edited.drug.value,
                route=edited.route.value,
                data=engine.protocol_to_dict(edited),
                change_note=change_note.strip(),
                created_by=user,
            )
    except IntegrityError:
        raise LibraryConflict(
            "Someone saved a new version at the same moment; reload and try again."
        ) from None
    audit.record(
        user=user,
        action=Action.CHANGE,
        category=CATEGORY,
        object_type="ProtocolVersion",
        object_id=row.pk,
        before={"protocol": str(current), "data": current.data},
        after={"protocol": str(row), "data": row.data},
        request=request,
        detail=change_note.strip(),
    )
    return row
