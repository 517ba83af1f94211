"""A dose's draw from stock: which lot a dose at the chair comes from, and the register entry recorded with it.

Issue 14 found the register and the clinical record apart: mL "given" to a patient whose session had no
dose, a dose recorded as "10 mg/mL · lot DEMO-K" while lot DEMO-K is 50 mg/mL, product, lot and expiry typed
by hand at the chair. Here:

* a dose picks its lot from the session's site's stock of the session's drug (``lots_for_dose``,
  ``lot_for_dose``): in date on the day of the dose, counted in a unit that suits the route (solution for IV
  and IM, solution or tablets sublingually, devices for esketamine — ``clinical/stock.py``), with stock left;
* the amount given is the dose divided by *that lot's* strength (``clinical.stock.units_for_dose``); for
  solution the nurse types the volume put into the dose and it must be that amount, so a volume drawn for
  another strength (3.63 mL of a 50 mg/mL lot for a 36.3 mg dose = 181.5 mg) is refused before anything is
  stored; devices and tablets are whole;
* the draw is a register USE entry naming the administration (``append_use``), written in the same
  transaction as the dose by ``chairside.dose_services.record_administration``: drawn = given + wasted
  (a database constraint), a waste signed by a second person who re-authenticates;
* a draw recorded apart from the dose (``record_use``: after a wrong draw was reversed by a correction)
  needs that administration, of the same session, without a draw standing.

Services never commit; the caller's transaction holds the dose and its draw together.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature
from ketaclinic.accounts.models import User
from ketaclinic.clinical.stock import ML, UNIT_WORDS, UNITS_BY_ROUTE, units_for_dose, words
from ketaclinic.ledger.models import EntryKind, LedgerEntry, StockLot
from ketaclinic.ledger.services import (
    HANDLERS,
    LedgerError,
    LedgerInputError,
    StockLine,
    _append,
    _require,
    balance,
    quantity_in,
    witness_signs,
)

if TYPE_CHECKING:
    from ketaclinic.chairside.models import Administration, TreatmentSession


def _route(session: TreatmentSession) -> str:
    return "intranasal" if session.drug == "esketamine" else session.route


def lots_for_dose(*, session: TreatmentSession, on: date) -> list[StockLine]:
    """The lots a dose of this session may be drawn from, first to expire first: the session's site and
    drug, a unit that suits the route, in date on ``on``, with stock left. No patient data: not audited."""
    allowed = UNITS_BY_ROUTE.get(_route(session), ())
    lots = StockLot.objects.filter(
        organization_id=session.organization_id,
        site_id=session.site_id,
        drug=session.drug,
        unit__in=allowed,
        expiry__gte=on,
    ).order_by("expiry", "product", "lot")
    lines = [StockLine(lot, balance(lot)) for lot in lots]
    return [line for line in lines if line.balance > 0]


def lot_for_dose(
    *, session: TreatmentSession, lot_id: Any, on: date, errors: dict[str, str], field: str = "lot_id"
) -> StockLot | None:
    """The lot ``lot_id`` names, when a dose of ``session`` given on ``on`` may come from it; else the
    reason under ``field``."""
    drug = session.get_drug_display().lower()
    if lot_id in (None, ""):
        errors[field] = f"choose the lot the dose is drawn from ({drug} stock at {session.site.name})"
        return None
    try:
        key = uuid.UUID(str(lot_id))
    except ValueError:
        errors[field] = f"{lot_id!r} is not a stock lot"
        return None
    lot = (
        StockLot.objects.filter(pk=key, organization_id=session.organization_id)
        .select_related("site")
        .first()
    )
    if lot is None:
        errors[field] = "no such lot in this clinic's stock"
        return None
    allowed = UNITS_BY_ROUTE.get(_route(session), ())
    if lot.site_id != session.site_id:
        errors[field] = f"lot {lot.lot} is stock of {lot.site.name}; this session is at {session.site.name}"
    elif lot.drug != session.drug:
        errors[field] = f"lot {lot.lot} is {lot.get_drug_display().lower()}; this is a {drug} session"
    elif lot.unit not in allowed:
        names = " or ".join(UNIT_WORDS[u][1] for u in allowed)
        errors[field] = (
            f"lot {lot.lot} is counted in {UNIT_WORDS[lot.unit][1]}: doses by "
            f"{session.get_route_display().lower()} are drawn from {names}"
        )
    elif lot.expiry < on:
        errors[field] = f"lot {lot.lot} expired on {lot.expiry.isoformat()}: an expired lot is not given"
    elif balance(lot) <= 0:
        errors[field] = (
            f"lot {lot.lot} has no stock left in the register: check the count or choose another lot"
        )
    return None if field in errors else lot


@dataclass(frozen=True)
class Draw:
    """What one dose takes from one lot, in the lot's unit: given (the dose ÷ the lot's strength) and wasted."""

    lot: StockLot
    given: Decimal
    wasted: Decimal

    @property
    def drawn(self) -> Decimal:
        return self.given + self.wasted


def strength_text(lot: StockLot) -> str:
    per = "mL" if lot.unit == ML else UNIT_WORDS[lot.unit][0]
    return f"{lot.mg_per_unit.normalize():f} mg/{per}"


def check_draw(
    *,
    lot: StockLot,
    dose_mg: Decimal,
    given: Any,
    wasted: Any,
    errors: dict[str, str],
    dose_field: str = "dose_mg",
) -> Draw | None:
    """The draw of a ``dose_mg`` dose from ``lot``. ``given``: the amount put into the dose, in the lot's
    unit — required for solution (it is checked against the dose and the lot's strength), for devices and
    tablets the dose's whole count when left out; ``wasted``: what was drawn and not given (default 0)."""
    needed = units_for_dose(dose_mg=dose_mg, mg_per_unit=lot.mg_per_unit, unit=lot.unit)
    if isinstance(needed, str):
        errors[dose_field] = needed
        return None
    if given in (None, "") and lot.unit != ML:
        amount: Decimal | None = needed
    elif given in (None, ""):
        errors["given"] = f"is required: the volume (mL) of lot {lot.lot} put into the dose"
        amount = None
    else:
        amount = quantity_in(given, "given", errors, unit=lot.unit)
    if amount is not None and amount != needed:
        errors["given"] = (
            f"{words(amount, lot.unit)} of lot {lot.lot} ({strength_text(lot)}) is "
            f"{(amount * lot.mg_per_unit).normalize():f} mg, not the {dose_mg.normalize():f} mg dose "
            f"({dose_mg.normalize():f} mg is {words(needed, lot.unit)} of this lot): check the strength on the label"
        )
    waste = quantity_in("0" if wasted in (None, "") else wasted, "wasted", errors, unit=lot.unit, zero=True)
    if amount is None or waste is None or "given" in errors:
        return None
    draw = Draw(lot=lot, given=amount, wasted=waste)
    left = balance(lot)
    if draw.drawn > left:
        errors["lot_id"] = (
            f"{words(draw.drawn, lot.unit)} is more than the {words(left, lot.unit)} left in lot {lot.lot}: "
            "check the count or choose another lot"
        )
        return None
    return draw


def append_use(
    *,
    user: User,
    administration: Administration,
    draw: Draw,
    witness: User | None,
    signed_at: datetime,
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """The register entry of a checked draw (1304.22(c)): the patient, the session and the dose it was
    for, drawn = given + wasted, the witness of a waste and when they signed. Dated when the dose was given."""
    session = administration.session
    try:
        return _append(
            user=user,
            lot=draw.lot,
            kind=EntryKind.USE,
            quantity=-draw.drawn,
            at=administration.at,
            request=request,
            audited={"administration": str(administration.pk), "dose_mg": str(administration.dose_mg)},
            session_id=session.pk,
            patient_id=session.patient_id,
            administration_id=administration.pk,
            drawn=draw.drawn,
            administered=draw.given,
            wasted=draw.wasted,
            witness_id=witness.pk if draw.wasted and witness is not None else None,
            witness_signed_at=signed_at if draw.wasted and witness is not None else None,
        )
    except LedgerInputError as exc:  # a colleague drew from the lot meanwhile: the balance fell short
        raise LedgerInputError({"lot_id": exc.errors.get("quantity", exc.message)}) from None


def standing_draw(administration: Administration) -> LedgerEntry | None:
    """The administration's draw that has not been reversed by a correction, if any."""
    return (
        LedgerEntry.objects.filter(
            administration=administration, kind=EntryKind.USE, corrected_by__isnull=True
        )
        .order_by("-seq")
        .first()
    )


def undrawn_doses(session: TreatmentSession) -> list[Administration]:
    """The session's doses from a stock lot whose draw stands nowhere in the register (it was reversed)."""
    rows = session.administrations.filter(stock_lot__isnull=False).select_related("stock_lot")
    return [a for a in rows if standing_draw(a) is None]


def record_use(
    *,
    user: User,
    administration: Administration,
    given: Any,
    wasted: Any,
    witness: Signature | None = None,
    request: HttpRequest | None = None,
) -> LedgerEntry:
    """The draw of a dose recorded apart from the dose: only for an administration whose draw is not in the
    register (a wrong one was reversed by a correction). A stock use always names its dose."""
    from ketaclinic.chairside.models import ACTIVE_STATUSES, Status

    _require(user, HANDLERS, "record controlled-substance use")
    session = administration.session
    lot = administration.stock_lot
    if lot is None or administration.dose_mg is None:
        raise LedgerInputError(
            {
                "administration": "this dose was not drawn from a stock lot here (a rate change, the stop, or a "
                "dose recorded before the chair drew from stock)"
            }
        )
    errors: dict[str, str] = {}
    if session.status not in (*ACTIVE_STATUSES, Status.DISCHARGED):
        errors["session"] = f"is {session.get_status_display().lower()}: stock is used during a session"
    standing = standing_draw(administration)
    if standing is not None:
        errors["administration"] = (
            f"this dose's draw is entry {standing.seq}: correct that entry first if it is wrong"
        )
    draw = check_draw(lot=lot, dose_mg=administration.dose_mg, given=given, wasted=wasted, errors=errors)
    signer = None
    if draw is not None and draw.wasted:
        signer = witness_signs(
            witness, user, errors, field="witness", purpose="witness to the waste", site=lot.site
        )
    if errors:
        raise LedgerInputError(errors)
    assert draw is not None
    return append_use(
        user=user,
        administration=administration,
        draw=draw,
        witness=signer,
        signed_at=timezone.now().replace(microsecond=0),
        request=request,
    )


__all__ = [
    "Draw",
    "LedgerError",
    "LedgerInputError",
    "append_use",
    "check_draw",
    "lot_for_dose",
    "lots_for_dose",
    "record_use",
    "standing_draw",
    "undrawn_doses",
]
