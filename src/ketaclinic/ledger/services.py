"""Controlled-substance register use cases (security.md §4, DEA 21 CFR 1304; Part 11 as the design model).

Every change to a lot's balance is one append-only, hash-chained ``LedgerEntry`` carrying the running
balance: receipts (1304.21(d): date received, containers, supplier name, address and DEA number; units follow
the product — ``clinical/stock.py``), use for a dose at the chair (``ledger/draws.py``: recorded with the
administration, 1304.22(c)), counts (1304.11: opening or closing of business; a count that differs from the
register needs a reason and a second person who re-authenticates, and notifies the administrators),
inventories of a whole site (``ledger/inventory.py``), losses (with the DEA notice deadlines) and
corrections (a reversing entry with a reason: nothing is ever edited). Appends are serialised like the audit
log's (PostgreSQL advisory lock; SQLite ``BEGIN IMMEDIATE``). Each use case also writes the audit log.
Services never commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature, signature_errors
from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites as sites_for
from ketaclinic.audit import anchoring
from ketaclinic.audit import services as audit
from ketaclinic.audit.chain import ChainCheck, Row, canonical_json, check_chain
from ketaclinic.audit.models import Action
from ketaclinic.clinical.stock import ML, UNITS_BY_DRUG, amount_problem, unit_problem, words
from ketaclinic.core.access import ADMIN, CLINICIANS
from ketaclinic.core.errors import DomainError
from ketaclinic.core.models import Notification
from ketaclinic.core.plausible import date_problem
from ketaclinic.ledger.models import CountTime, EntryKind, LedgerEntry, StockLot, Unit

CATEGORY = "controlled-substances"
ADVISORY_LOCK_ID = 727_002  # arbitrary, fixed: "ledger append" on PostgreSQL
GENESIS = "0" * 64
HANDLERS = CLINICIANS  # who receive, use, count and correct stock
READERS = CLINICIANS | {ADMIN}  # who read the register
MAX_QUANTITY = Decimal("100000")
LOSS_NOTICE = (
    "Theft or significant loss: written notice to the DEA Field Division within 1 business day of discovery, "
    "then DEA Form 106 online within 45 days (21 CFR 1301.76(b); security.md §4)."
)
HASHED = (
    "seq",
    "organization_id",
    "lot_id",
    "kind",
    "at",
    "recorded_at",
    "by_id",
    "quantity",
    "balance_after",
    "session_id",
    "patient_id",
    "drawn",
    "administered",
    "wasted",
    "witness_id",
    "witness_signed_at",
    "containers",
    "supplier_name",
    "supplier_address",
    "supplier_dea",
    "counted",
    "count_time",
    "reason",
    "corrects_id",
)
#: Columns added after entries were first written (issue 14): they enter an entry's hash only when set, so
#: every entry stored before them still verifies.
HASHED_WHEN_SET = ("administration_id", "inventory_id")


def qty(value: Decimal) -> str:
    """A quantity as staff write it: 100, 7.5, 0.25 (no trailing zeros, no exponent)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


#: The furthest expiry a received lot may carry (issue 15: a lot dated 9999 or 2000 was accepted). An
#: operational plausibility bound, not a product's shelf life: a typed year is checked against it.
LONGEST_EXPIRY_DAYS = 10 * 365


class LedgerError(DomainError):
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LedgerInputError(LedgerError):
    """``errors`` names every bad field; nothing was stored."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


# --- reading -------------------------------------------------------------------------------------------


def _require(user: User, roles: frozenset[str], what: str) -> None:
    if user.role not in roles:
        raise LedgerError(f"Your role may not {what}.")


def balance(lot: StockLot) -> Decimal:
    last = lot.entries.order_by("-seq").values_list("balance_after", flat=True).first()
    return last if last is not None else Decimal(0)


@dataclass(frozen=True)
class StockLine:
    lot: StockLot
    balance: Decimal

    @property
    def mg(self) -> Decimal:
        return self.balance * self.lot.mg_per_unit


def stock(*, user: User, site: Site) -> list[StockLine]:
    """The site's lots with their balances (not audited: no patient data)."""
    _require(user, READERS, "see controlled-substance stock")
    if site not in sites_for(user):
        raise LedgerError("No such site.")
    lots = StockLot.objects.filter(site=site).order_by("drug", "product", "expiry", "lot")
    return [StockLine(lot, balance(lot)) for lot in lots]


def get_lot(*, user: User, lot_id: Any) -> StockLot:
    lot = StockLot.objects.filter(pk=lot_id, organization_id=user.org_id).select_related("site").first()
    if lot is None or lot.site not in sites_for(user):
        raise LedgerError("No such lot.")
    return lot


def entries_of(*, user: User, lot: StockLot, request: HttpRequest | None = None) -> list[LedgerEntry]:
    """A lot's entries, newest first; they name patients (use), so the read is audited."""
    _require(user, READERS, "read the controlled-substance register")
    rows = list(
        lot.entries.order_by("-seq").select_related(
            "by", "witness", "patient", "corrects", "corrected_by", "administration"
        )
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        object_type="StockLot",
        object_id=lot.pk,
        request=request,
        detail=f"{len(rows)} register entries of lot {lot.lot}",
    )
    return rows


def register(
    *, user: User, site: Site, since: date, until: date, request: HttpRequest | None = None
) -> list[LedgerEntry]:
    """The site's register for [since, until] (site days), in entry order: the readily retrievable
    record of receipts, dispensing/administration, counts, losses and corrections (1304.04, 1304.22(c))."""
    _require(user, READERS, "read the controlled-substance register")
    if site not in sites_for(user):
        raise LedgerError("No such site.")
    errors: dict[str, str] = {}
    if until < since:
        errors["until"] = "is before the start of the period"
    elif (until - since).days > 3 * 366:
        errors["since"] = "the period is longer than three years"
    if errors:
        raise LedgerInputError(errors)
    zone = site.zone
    begin = datetime.combine(since, time.min, tzinfo=zone)
    end = datetime.combine(until + timedelta(days=1), time.min, tzinfo=zone)
    rows = list(
        LedgerEntry.objects.filter(lot__site=site, at__gte=begin, at__lt=end)
        .order_by("seq")
        .select_related("lot", "by", "witness", "patient", "corrects")
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        object_type="Site",
        object_id=site.pk,
        request=request,
        detail=f"register {since.isoformat()} to {until.isoformat()}: {len(rows)} entries",
    )
    return rows


# --- the chain -----------------------------------------------------------------------------------------


def _payload(fields: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    names = [*HASHED, *(n for n in HASHED_WHEN_SET if fields.get(n) is not None)]
    for name in names:
        value = fields.get(name)
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat()
        elif isinstance(value, Decimal):
            value = f"{value:.3f}"
        elif value is not None and name.endswith("_id"):
            value = str(value)
        out[name] = value
    return out


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(_payload(fields)).encode("utf-8"))
    return digest.hexdigest()


class RegisterChain:
    """One organization's register as a ``ChainSource`` (audit.anchoring): anchored, published and
    compared exactly like the audit log, as chain ``register:<organization id>``."""

    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.name = f"register:{organization_id}"

    def head(self) -> tuple[int, str] | None:
        return (
            LedgerEntry.objects.filter(organization_id=self.organization_id)
            .order_by("-seq")
            .values_list("seq", "entry_hash")
            .first()
        )

    def rows(self, from_seq: int = 1) -> Iterator[Row]:
        entries = LedgerEntry.objects.filter(organization_id=self.organization_id, seq__gte=from_seq)
        for row in entries.order_by("seq").values().iterator(chunk_size=2000):
            fields = {name: row.get(name) for name in (*HASHED, *HASHED_WHEN_SET)}
            yield Row(
                int(row["seq"]), row["prev_hash"], row["entry_hash"], entry_hash(row["prev_hash"], fields)
            )


def verify_chain(organization_id: int) -> int | None:
    """The seq of the first entry whose number, link or hash does not check out; None when all do. (The
    rows only; ``check_register`` also compares the anchor and the published checkpoints.)"""
    result = check_chain(
        f"register:{organization_id}",
        RegisterChain(organization_id).rows(),
        signer=None,
        anchor=None,
        use_anchor=False,
    )
    return result.first_bad_seq


def check_register(organization_id: int, **options: Any) -> ChainCheck:
    """The register's rows, its signed anchor and its published checkpoints (as ``audit.verify``)."""
    return anchoring.check(RegisterChain(organization_id), **options)


def _append(
    *,
    user: User,
    lot: StockLot,
    kind: str,
    quantity: Decimal,
    at: datetime,
    request: HttpRequest | None,
    audited: dict[str, Any] | None = None,
    **extra: Any,
) -> LedgerEntry:
    """Append one entry to the organization's chain (the balance may not fall below 0). ``audited``: more
    for the audit entry's ``after`` (a witness, a difference, who was notified)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_ID])
        current = balance(lot)
        after = current + quantity
        if after < 0:
            raise LedgerInputError(
                {
                    "quantity": f"{words(-quantity, lot.unit)} is more than the {words(current, lot.unit)} left "
                    f"in lot {lot.lot}: check the count"
                }
            )
        last = (
            LedgerEntry.objects.filter(organization_id=lot.organization_id)
            .order_by("-seq")
            .values_list("seq", "entry_hash")
            .first()
        )
        seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
        fields: dict[str, Any] = {
            "seq": seq,
            "organization_id": lot.organization_id,
            "lot_id": lot.pk,
            "kind": kind,
            "at": at,
            "recorded_at": timezone.now().replace(microsecond=0),
            "by_id": user.pk,
            "quantity": quantity.quantize(Decimal("0.001")),
            "balance_after": after.quantize(Decimal("0.001")),
            **extra,
        }
        entry = LedgerEntry(prev_hash=prev, **fields)
        # Hashed from the row as it will be stored (blank texts "", absent values None), as verify_chain reads it.
        entry.entry_hash = entry_hash(
            prev, {name: getattr(entry, name) for name in (*HASHED, *HASHED_WHEN_SET)}
        )
        entry.save(force_insert=True)
        transaction.on_commit(
            partial(anchoring.advance, RegisterChain(lot.organization_id), began_here=seq == 1)
        )
        audit.record(
            user=user,
            action=Action.ADD,
            category=CATEGORY,
            patient=entry.patient,
            organization=lot.organization,
            object_type="LedgerEntry",
            object_id=entry.pk,
            after={"seq": seq, "kind": kind, "lot": lot.lot, "quantity": str(quantity), "balance": str(after)}
            | ({"reason": extra["reason"]} if extra.get("reason") else {})
            | (audited or {}),
            request=request,
        )
        return entry


# --- input ---------------------------------------------------------------------------------------------


def quantity_in(
    raw: Any, name: str, errors: dict[str, str], *, unit: str | None = None, zero: bool = False
) -> Decimal | None:
    """A typed quantity: a number above 0 (or 0 when ``zero``), at most ``MAX_QUANTITY``, and one the
    register holds exactly in ``unit`` (whole devices and tablets, mL to 0.001 mL). Never rounded."""
    if raw is None or str(raw).strip() == "":
        errors[name] = "is required"
        return None
    try:
        value = Decimal(str(raw).strip().replace(",", "."))
    except InvalidOperation:
        errors[name] = f"{raw!r} is not a number"
        return None
    if not value.is_finite() or value < 0 or (value == 0 and not zero) or value > MAX_QUANTITY:
        errors[name] = (
            f"{raw} is not a quantity (more than 0{' or 0' if zero else ''}, at most {qty(MAX_QUANTITY)})"
        )
        return None
    problem = amount_problem(value, unit or ML)
    if problem:
        errors[name] = problem
        return None
    return value


def _text(raw: Any, name: str, errors: dict[str, str], *, longest: int, required: bool = True) -> str:
    text = str(raw or "").strip()
    if required and not text:
        errors[name] = "is required"
    elif len(text) > longest:
        errors[name] = f"is longer than {longest} characters"
    return text


def _site_moment(site: Site, day: date) -> datetime:
    """Noon of ``day`` at the site when it is not today, else now: when a dated event happened."""
    if day == timezone.localdate(timezone.now(), site.zone):
        return timezone.now().replace(microsecond=0)
    return datetime.combine(day, time(12), tzinfo=site.zone)


def _date(raw: Any, name: str, errors: dict[str, str]) -> date | None:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw or "").strip())
    except ValueError:
        errors[name] = f"{raw!r} is not a date (YYYY-MM-DD)" if raw else "is required"
        return None


def witness_signs(
    signature: Signature | None, user: User, errors: dict[str, str], *, field: str, purpose: str, site: Site
) -> User | None:
    """security.md §4 software rules 2–3: the second person is someone else, an active nurse or prescriber
    of the clinic working at the lot's site, and re-authenticates now (password and authenticator code) —
    the shared co-signature rule (accounts/cosign.py)."""
    return signature_errors(
        signature=signature or Signature(None),
        actor=user,
        roles=CLINICIANS,
        field=field,
        errors=errors,
        purpose=purpose,
        must_differ=True,
        site=site,
    )


NOTICE_LENGTH = 400  # core.models.Notification.message


def notify_admins(*, lot: StockLot, kind: str, message: str, short: str) -> list[str]:
    """A notification to every active administrator of the clinic; returns their user names (for the
    audit entry). A message longer than a notification holds is not cut: the ``short`` one (which names the
    lot and points to its page, where everything is) is sent instead."""
    if len(message) > NOTICE_LENGTH:
        message = short
    assert len(message) <= NOTICE_LENGTH, message
    names = []
    for admin in User.objects.filter(organization_id=lot.organization_id, role=ADMIN, is_active=True):
        Notification.objects.create(
            organization_id=lot.organization_id,
            recipient=admin,
            kind=kind,
            message=message,
            link=f"/ledger/lots/{lot.pk}/",
        )
        names.append(admin.get_username())
    return names


# --- use cases -----------------------------------------------------------------------------------------


def receive(
    *, user: User, site: Site, data: dict[str, Any], request: HttpRequest | None = None
) -> LedgerEntry:
    """Containers received into a site's stock (1304.21(d)). ``data``: drug, product, ndc, lot, expiry,
    unit, mg_per_unit, quantity (in the unit, all containers together), containers, supplier_name,
    supplier_address, supplier_dea, received_on. The unit follows the product (``clinical/stock.py``:
    esketamine in whole 28-mg devices; ketamine in mL or whole tablets)."""
    _require(user, HANDLERS, "receive controlled substances")
    if site not in sites_for(user):
        raise LedgerError("No such site.")
    errors: dict[str, str] = {}
    drug = str(data.get("drug") or "")
    if drug not in UNITS_BY_DRUG:
        errors["drug"] = "choose ketamine or esketamine"
    unit = str(data.get("unit") or "")
    if unit not in Unit.values:
        errors["unit"] = f"choose one of {', '.join(Unit.values)}"
    product = _text(data.get("product"), "product", errors, longest=200)
    lot_number = _text(data.get("lot"), "lot", errors, longest=60)
    ndc = _text(data.get("ndc"), "ndc", errors, longest=20, required=False)
    supplier = _text(data.get("supplier_name"), "supplier_name", errors, longest=200)
    address = _text(data.get("supplier_address"), "supplier_address", errors, longest=300)
    dea = _text(data.get("supplier_dea"), "supplier_dea", errors, longest=9).upper()
    if dea and (len(dea) != 9 or not dea.isalnum()):
        errors["supplier_dea"] = "is 9 letters and digits, as printed on the supplier's invoice"
    strength = quantity_in(data.get("mg_per_unit"), "mg_per_unit", errors)
    if strength is not None and "drug" not in errors and "unit" not in errors:
        problem = unit_problem(drug=drug, unit=unit, mg_per_unit=strength)
        if problem:
            errors["unit" if unit not in UNITS_BY_DRUG[drug] else "mg_per_unit"] = problem
    quantity = quantity_in(
        data.get("quantity"), "quantity", errors, unit=unit if unit in Unit.values else None
    )
    containers_raw = str(data.get("containers") or "").strip()
    containers = int(containers_raw) if containers_raw.isdigit() and int(containers_raw) > 0 else None
    if containers is None:
        errors["containers"] = "is a whole number of containers, at least 1"
    elif unit == Unit.DEVICE and quantity is not None and containers != quantity:
        errors["containers"] = (
            f"{containers} containers for {words(quantity, unit)}: each device is one container"
        )
    today = timezone.localdate(timezone.now(), site.zone)
    received_on = _date(data.get("received_on"), "received_on", errors)
    if received_on is not None and (why := date_problem(received_on, today=today)):
        errors["received_on"] = why
    expiry = _date(data.get("expiry"), "expiry", errors)
    if expiry is not None and expiry < today:
        errors["expiry"] = "has passed: expired stock is not received"
    elif expiry is not None and (
        why := date_problem(
            expiry,
            today=today,
            latest=today + timedelta(days=LONGEST_EXPIRY_DAYS),
            what_latest=f"{LONGEST_EXPIRY_DAYS // 365} years from today, longer than any product keeps",
        )
    ):
        errors["expiry"] = f"{why}: check the date on the label"
    if errors:
        raise LedgerInputError(errors)
    assert strength is not None and quantity is not None and received_on is not None and expiry is not None
    lot, created = StockLot.objects.get_or_create(
        site=site,
        product=product,
        lot=lot_number,
        defaults={
            "organization_id": site.organization_id,
            "drug": drug,
            "ndc": ndc,
            "expiry": expiry,
            "unit": unit,
            "mg_per_unit": strength,
        },
    )
    if not created and (lot.drug, lot.unit, lot.mg_per_unit, lot.expiry) != (drug, unit, strength, expiry):
        raise LedgerInputError({"lot": f"lot {lot_number} of {product} is registered with other details"})
    return _append(
        user=user,
        lot=lot,
        kind=EntryKind.RECEIPT,
        quantity=quantity,
        at=_site_moment(site, received_on),
        request=request,
        containers=containers,
        supplier_name=supplier,
        supplier_address=address,
        supplier_dea=dea,
    )


@dataclass(frozen=True)
class Counted:
    """One lot's count, checked: what was counted, the containers on hand, and why it differs (if it does)."""

    lot: StockLot
    counted: Decimal
    expected: Decimal
    containers: int | None
    reason: str

    @property
    def difference(self) -> Decimal:
        return self.counted - self.expected


def check_count(
    *,
    lot: StockLot,
    counted: Any,
    containers: Any,
    reason: str,
    errors: dict[str, str],
    prefix: str = "",
    containers_required: bool = False,
) -> Counted | None:
    """A count of ``lot`` as typed: a quantity of its unit (0 allowed), the containers on hand (sealed and
    opened), and a reason when it differs from the register's balance."""
    value = quantity_in(counted, f"{prefix}counted", errors, unit=lot.unit, zero=True)
    boxes: int | None = None
    raw_boxes = str(containers if containers is not None else "").strip()
    if raw_boxes:
        if raw_boxes.isdigit() and int(raw_boxes) <= MAX_QUANTITY:
            boxes = int(raw_boxes)
        else:
            errors[f"{prefix}containers"] = f"{raw_boxes!r} is not a whole number of containers"
    elif containers_required:
        errors[f"{prefix}containers"] = "is required: how many containers (sealed and opened) are on hand"
    current = balance(lot)
    why = reason.strip()
    if value is not None and value != current and len(why) < 3:
        errors[f"{prefix}reason"] = (
            f"the count differs from the register ({words(value, lot.unit)} counted, "
            f"{words(current, lot.unit)} expected): say why"
        )
    if value is None or f"{prefix}containers" in errors or f"{prefix}reason" in errors:
        return None
    return Counted(lot=lot, counted=value, expected=current, containers=boxes, reason=why)


def book_count(
    *,
    user: User,
    count: Counted,
    count_time: str,
    witness: User | None,
    at: datetime,
    inventory_id: Any = None,
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """Append a checked count (the difference booked), and tell the administrators when it differs."""
    lot = count.lot
    notified: list[str] = []
    if count.difference:
        sign = "+" if count.difference > 0 else "−"
        notified = notify_admins(
            lot=lot,
            kind="controlled-substance-count",
            message=(
                f"Count of lot {lot.lot} at {lot.site.name} differs from the register: "
                f"{words(count.counted, lot.unit)} counted, {words(count.expected, lot.unit)} expected "
                f"({sign}{words(abs(count.difference), lot.unit)}); counted by {user.display_name}, "
                f"second person {witness.display_name if witness else '—'}."
                + (
                    " A shortfall may be a reportable loss: see the lot's page."
                    if count.difference < 0
                    else ""
                )
            ),
            short=f"A count of lot {lot.lot} differs from the register: see the lot's page.",
        )
    return _append(
        user=user,
        lot=lot,
        kind=EntryKind.COUNT,
        quantity=count.difference,
        at=at,
        request=request,
        audited={
            "difference": qty(count.difference),
            "witness": witness.get_username() if witness else None,
            "notified": notified,
        }
        if count.difference
        else None,
        counted=count.counted,
        containers=count.containers,
        count_time=count_time,
        reason=count.reason,
        witness_id=witness.pk if witness is not None else None,
        witness_signed_at=at if witness is not None else None,
        inventory_id=inventory_id,
    )


def count(
    *,
    user: User,
    lot: StockLot,
    counted: Any,
    count_time: str,
    reason: str = "",
    containers: Any = None,
    witness: Signature | None = None,
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """A count of one lot (1304.11: taken at opening or close of business). A count that differs from the
    register's balance needs the reason and a second person who signs now (re-authenticating); the
    difference is booked, every administrator is notified, and a shortfall may be a reportable loss
    (``LOSS_NOTICE``). A count that agrees may be signed too, but need not be."""
    _require(user, HANDLERS, "count controlled substances")
    errors: dict[str, str] = {}
    if count_time not in CountTime.values:
        errors["count_time"] = "say whether the count was taken at opening or at close of business"
    checked = check_count(lot=lot, counted=counted, containers=containers, reason=reason, errors=errors)
    differs = "reason" in errors or (checked is not None and bool(checked.difference))
    signer: User | None = None
    if differs or (witness is not None and witness.given):
        signer = witness_signs(
            witness,
            user,
            errors,
            field="witness",
            purpose="a count that differs from the register" if differs else "second count",
            site=lot.site,
        )
    if errors:
        raise LedgerInputError(errors)
    assert checked is not None
    return book_count(
        user=user,
        count=checked,
        count_time=count_time,
        witness=signer,
        at=timezone.now().replace(microsecond=0),
        request=request,
    )


def report_loss(
    *, user: User, lot: StockLot, quantity: Any, reason: str, request: HttpRequest | None = None
) -> LedgerEntry:
    """Stock lost, stolen or broken: booked out with the reason, and every administrator of the clinic is
    notified with the DEA deadlines (``LOSS_NOTICE``)."""
    _require(user, HANDLERS, "report a loss")
    errors: dict[str, str] = {}
    value = quantity_in(quantity, "quantity", errors, unit=lot.unit)
    if len(reason.strip()) < 3:
        errors["reason"] = "say what happened"
    if errors:
        raise LedgerInputError(errors)
    assert value is not None
    entry = _append(
        user=user,
        lot=lot,
        kind=EntryKind.LOSS,
        quantity=-value,
        at=timezone.now().replace(microsecond=0),
        request=request,
        reason=reason.strip(),
    )
    notify_admins(
        lot=lot,
        kind="controlled-substance-loss",
        message=f"{words(value, lot.unit)} of lot {lot.lot} ({lot.get_drug_display()}) reported lost at "
        f"{lot.site.name}. {LOSS_NOTICE}",
        short=f"Loss reported for lot {lot.lot}: see the lot's page. {LOSS_NOTICE}",
    )
    return entry


def correct(
    *, user: User, entry: LedgerEntry, reason: str, request: HttpRequest | None = None
) -> LedgerEntry:
    """Undo a wrong entry by a reversing one with the reason (Part 11.10(e): the original stays visible);
    the right entry is then recorded anew (a dose's draw: on the session page)."""
    _require(user, HANDLERS, "correct the register")
    if entry.kind == EntryKind.CORRECTION:
        raise LedgerError("A correction is not corrected: record the right entry instead.")
    if LedgerEntry.objects.filter(corrects=entry).exists():
        raise LedgerError(f"Entry {entry.seq} was already corrected.")
    if len(reason.strip()) < 3:
        raise LedgerInputError({"reason": "say what was wrong"})
    return _append(
        user=user,
        lot=entry.lot,
        kind=EntryKind.CORRECTION,
        quantity=-entry.quantity,
        at=timezone.now().replace(microsecond=0),
        request=request,
        reason=reason.strip(),
        corrects_id=entry.pk,
        session_id=entry.session_id,
        patient_id=entry.patient_id,
        administration_id=entry.administration_id,
    )
