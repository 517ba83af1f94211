"""Controlled-substance register use cases (security.md §4, DEA 21 CFR 1304; Part 11 as the design model).

Every change to a lot's balance is one append-only, hash-chained ``LedgerEntry`` carrying the running
balance: receipts (1304.21(d): date received, containers, supplier name, address and DEA number), use for a
patient's treatment session (1304.22(c); drawn = administered + wasted, a database constraint; a waste is
signed by a witness who is someone else and re-authenticates with password and authenticator code at that
moment), counts (1304.11: opening or closing of business; a difference needs a reason), losses (with the
DEA notice deadlines) and corrections (a reversing entry with a reason: nothing is ever edited). Appends are
serialised like the audit log's (PostgreSQL advisory lock; SQLite ``BEGIN IMMEDIATE``). Each use case also
writes the audit log. Services never commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature, signature_errors
from ketaclinic.accounts.models import Site, User
from ketaclinic.accounts.services import covered_sites as sites_for
from ketaclinic.audit import services as audit
from ketaclinic.audit.chain import canonical_json
from ketaclinic.audit.models import Action
from ketaclinic.core.access import ADMIN, CLINICIANS
from ketaclinic.core.models import Notification
from ketaclinic.ledger.models import EntryKind, LedgerEntry, StockLot, Unit

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


def qty(value: Decimal) -> str:
    """A quantity as staff write it: 100, 7.5, 0.25 (no trailing zeros, no exponent)."""
    text = f"{value.normalize():f}"
    return "0" if text in ("-0", "") else text


class LedgerError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LedgerInputError(LedgerError):
    """``errors`` names every bad field; nothing was stored."""

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
        lot.entries.order_by("-seq").select_related("by", "witness", "patient", "corrects", "corrected_by")
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


def sessions_for_use(*, user: User, lot: StockLot, request: HttpRequest | None = None) -> list[Any]:
    """The sessions a draw from ``lot`` can be recorded for: the lot's drug at its site, under way or
    discharged since yesterday. Their patients' names are shown, so the read is audited."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status, TreatmentSession

    _require(user, HANDLERS, "record controlled-substance use")
    since = timezone.localdate(timezone.now(), lot.site.zone) - timedelta(days=1)
    rows = list(
        TreatmentSession.objects.filter(
            site=lot.site,
            drug=lot.drug,
            status__in=[*ACTIVE_STATUSES, Status.DISCHARGED],
            scheduled_at__gte=datetime.combine(since, time.min, tzinfo=lot.site.zone),
        )
        .select_related("patient", "chair")
        .order_by("scheduled_at")
    )
    audit.record(
        user=user,
        action=Action.QUERY,
        category=CATEGORY,
        object_type="StockLot",
        object_id=lot.pk,
        request=request,
        detail=f"{len(rows)} sessions offered for stock use",
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
    for name in HASHED:
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


def verify_chain(organization_id: int) -> int | None:
    """The seq of the first entry whose number, link or hash does not check out; None when all do."""
    prev, expected = GENESIS, 1
    for row in LedgerEntry.objects.filter(organization_id=organization_id).order_by("seq").values():
        fields = {name: row.get(name) for name in HASHED}
        if (
            row["seq"] != expected
            or row["prev_hash"] != prev
            or entry_hash(prev, fields) != row["entry_hash"]
        ):
            return int(row["seq"])
        prev, expected = row["entry_hash"], expected + 1
    return None


def _append(
    *,
    user: User,
    lot: StockLot,
    kind: str,
    quantity: Decimal,
    at: datetime,
    request: HttpRequest | None,
    **extra: Any,
) -> LedgerEntry:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_ID])
        current = balance(lot)
        after = current + quantity
        if after < 0:
            raise LedgerInputError(
                {
                    "quantity": f"more than the {qty(current)} {lot.unit} left in lot {lot.lot}: check the count"
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
        entry.entry_hash = entry_hash(prev, {name: getattr(entry, name) for name in HASHED})
        entry.save(force_insert=True)
        audit.record(
            user=user,
            action=Action.ADD,
            category=CATEGORY,
            patient=entry.patient,
            organization=lot.organization,
            object_type="LedgerEntry",
            object_id=entry.pk,
            after={"seq": seq, "kind": kind, "lot": lot.lot, "quantity": str(quantity), "balance": str(after)}
            | ({"reason": extra["reason"]} if extra.get("reason") else {}),
            request=request,
        )
        return entry


# --- input ---------------------------------------------------------------------------------------------


def _quantity(raw: Any, name: str, errors: dict[str, str], *, zero: bool = False) -> Decimal | None:
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
    if value != value.quantize(Decimal("0.001")):
        errors[name] = "has more than 3 decimals"
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


# --- use cases -----------------------------------------------------------------------------------------


def receive(
    *, user: User, site: Site, data: dict[str, Any], request: HttpRequest | None = None
) -> LedgerEntry:
    """Containers received into a site's stock (1304.21(d)). ``data``: drug, product, ndc, lot, expiry,
    unit, mg_per_unit, quantity (in the unit, all containers together), containers, supplier_name,
    supplier_address, supplier_dea, received_on."""
    _require(user, HANDLERS, "receive controlled substances")
    if site not in sites_for(user):
        raise LedgerError("No such site.")
    errors: dict[str, str] = {}
    drug = str(data.get("drug") or "")
    if drug not in ("ketamine", "esketamine"):
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
    strength = _quantity(data.get("mg_per_unit"), "mg_per_unit", errors)
    quantity = _quantity(data.get("quantity"), "quantity", errors)
    containers_raw = str(data.get("containers") or "").strip()
    containers = int(containers_raw) if containers_raw.isdigit() and int(containers_raw) > 0 else None
    if containers is None:
        errors["containers"] = "is a whole number of containers, at least 1"
    today = timezone.localdate(timezone.now(), site.zone)
    received_on = _date(data.get("received_on"), "received_on", errors)
    if received_on is not None and received_on > today:
        errors["received_on"] = "is in the future"
    expiry = _date(data.get("expiry"), "expiry", errors)
    if expiry is not None and expiry < today:
        errors["expiry"] = "has passed: expired stock is not received"
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


def _date(raw: Any, name: str, errors: dict[str, str]) -> date | None:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw or "").strip())
    except ValueError:
        errors[name] = f"{raw!r} is not a date (YYYY-MM-DD)" if raw else "is required"
        return None


def _witness_signs(
    witness: User | None, user: User, password: str, code: str, errors: dict[str, str]
) -> None:
    """security.md §4 software rules 2–3: the witness is someone else, an active clinician of the clinic,
    and re-authenticates now (password and authenticator code) — the shared co-signature rule."""
    if witness is None:
        errors["witness"] = "a waste needs a witness"
        return
    signature_errors(
        signature=Signature(witness, password, code),
        actor=user,
        roles=CLINICIANS,
        field="witness",
        errors=errors,
        purpose="witness",
        must_differ=True,
    )


def record_use(
    *,
    user: User,
    lot: StockLot,
    session: Any,
    drawn: Any,
    administered: Any,
    wasted: Any,
    witness: User | None = None,
    witness_password: str = "",
    witness_code: str = "",
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """Stock drawn for a patient's treatment session (1304.22(c)): drawn = administered + wasted; a waste is
    witnessed (``_witness_signs``). The balance falls by what was drawn."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status

    _require(user, HANDLERS, "record controlled-substance use")
    errors: dict[str, str] = {}
    if session.organization_id != lot.organization_id or session.site_id != lot.site_id:
        errors["session"] = "is not a session at this lot's site"
    elif session.drug != lot.drug:
        errors["session"] = f"is a {session.drug} session; this lot is {lot.drug}"
    elif session.status not in (*ACTIVE_STATUSES, Status.DISCHARGED):
        errors["session"] = f"is {session.get_status_display().lower()}: stock is used during a session"
    d = _quantity(drawn, "drawn", errors)
    a = _quantity(administered, "administered", errors, zero=True)
    w = _quantity(wasted, "wasted", errors, zero=True)
    if d is not None and a is not None and w is not None and a + w != d:
        errors["wasted"] = f"given + wasted must equal drawn ({qty(a)} + {qty(w)} ≠ {qty(d)} {lot.unit})"
    if w:
        _witness_signs(witness, user, witness_password, witness_code, errors)
    if lot.expiry < timezone.localdate(timezone.now(), lot.site.zone):
        errors["lot"] = f"expired on {lot.expiry.isoformat()}"
    if errors:
        raise LedgerInputError(errors)
    assert d is not None and a is not None and w is not None
    now = timezone.now().replace(microsecond=0)
    signed = bool(w)
    return _append(
        user=user,
        lot=lot,
        kind=EntryKind.USE,
        quantity=-d,
        at=now,
        request=request,
        session_id=session.pk,
        patient_id=session.patient_id,
        drawn=d,
        administered=a,
        wasted=w,
        witness_id=witness.pk if signed and witness is not None else None,
        witness_signed_at=now if signed else None,
    )


def count(
    *,
    user: User,
    lot: StockLot,
    counted: Any,
    count_time: str,
    reason: str = "",
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """An inventory count of one lot (1304.11: taken at opening or close of business). The difference from
    the register's balance is booked with a reason; a shortfall may be a reportable loss (``LOSS_NOTICE``)."""
    _require(user, HANDLERS, "count controlled substances")
    errors: dict[str, str] = {}
    value = _quantity(counted, "counted", errors, zero=True)
    if count_time not in ("opening", "closing"):
        errors["count_time"] = "say whether the count was taken at opening or at close of business"
    current = balance(lot)
    if value is not None and value != current and len(reason.strip()) < 3:
        errors["reason"] = (
            f"the count differs from the register ({qty(value)} counted, {qty(current)} expected): say why"
        )
    if errors:
        raise LedgerInputError(errors)
    assert value is not None
    return _append(
        user=user,
        lot=lot,
        kind=EntryKind.COUNT,
        quantity=value - current,
        at=timezone.now().replace(microsecond=0),
        request=request,
        counted=value,
        count_time=count_time,
        reason=reason.strip(),
    )


def report_loss(
    *, user: User, lot: StockLot, quantity: Any, reason: str, request: HttpRequest | None = None
) -> LedgerEntry:
    """Stock lost, stolen or broken: booked out with the reason, and every administrator of the clinic is
    notified with the DEA deadlines (``LOSS_NOTICE``)."""
    _require(user, HANDLERS, "report a loss")
    errors: dict[str, str] = {}
    value = _quantity(quantity, "quantity", errors)
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
    for admin in User.objects.filter(organization_id=lot.organization_id, role=ADMIN, is_active=True):
        Notification.objects.create(
            organization_id=lot.organization_id,
            recipient=admin,
            kind="controlled-substance-loss",
            message=f"{qty(value)} {lot.unit} of {lot.product} lot {lot.lot} reported lost at {lot.site.name}. "
            f"{LOSS_NOTICE}"[:400],
            link=f"/ledger/lots/{lot.pk}/",
        )
    return entry


def correct(
    *, user: User, entry: LedgerEntry, reason: str, request: HttpRequest | None = None
) -> LedgerEntry:
    """Undo a wrong entry by a reversing one with the reason (Part 11.10(e): the original stays visible);
    the right entry is then recorded anew."""
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
    )
