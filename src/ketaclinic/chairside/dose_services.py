"""Dose events at the chair: nasal devices, infusion start / rate change / stop, IM and sublingual doses.

Every dose goes through the one dose check (clinical/dose_check.py), as the plan and the scheduling form
do: the dose and its rate against the protocol's and the reference's limits for this patient's weight,
reconciled with the session's planned dose, its time between the gate opening and now. Who may decide
past a limit is the check's ``Decision``; this module collects those decisions, verifies signatures
(accounts/cosign.py: password and authenticator code, never a name from a list) and refuses the rest with
field errors (the API's 422).

A dose comes from a lot of the site's stock (issue 14, ``ledger/draws.py``): product, strength, lot number
and expiry are the lot's, never typed; the dose check uses the lot's strength (the IV final concentration is
the dose ÷ the bag volume, the volume drawn the dose ÷ this lot's mg/mL); the register's draw (drawn = given
+ wasted, a waste witnessed) is written with the administration, in one savepoint, so neither stands without
the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ketaclinic.accounts.cosign import Signature, signature_errors
from ketaclinic.accounts.models import User
from ketaclinic.audit import services as audit
from ketaclinic.audit.models import Action
from ketaclinic.chairside.models import (
    Administration,
    AdministrationKind,
    Status,
    TreatmentSession,
)
from ketaclinic.chairside.services import (
    SessionInputError,
    _bump,
    body_of,
    dose_rule_for,
    finding_errors,
    protocol_of,
    transition,
)
from ketaclinic.clinical.dose_check import (
    Decided,
    Decision,
    DoseFinding,
    Subject,
    check_against_plan,
    check_concentration,
    check_device,
    check_dose_time,
    check_infusion_rate,
    check_session_dose,
    planned_devices,
    unresolved,
)
from ketaclinic.clinical.dose_types import ESKETAMINE_DEVICE_MG
from ketaclinic.clinical.stock import ML
from ketaclinic.core.access import CLINICIANS, PRESCRIBER
from ketaclinic.core.limits import too_many_places
from ketaclinic.core.plausible import time_problem
from ketaclinic.ledger import draws
from ketaclinic.ledger.models import StockLot
from ketaclinic.ledger.services import witness_signs

# --- administrations ----------------------------------------------------------------------------------


def _decimal(value: Any, name: str, errors: dict[str, str], *, low: Decimal, high: Decimal) -> Decimal | None:
    if value in (None, ""):
        errors[name] = "is required"
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        errors[name] = f"{value!r} is not a number"
        return None
    if not number.is_finite() or not low <= number <= high:
        errors[name] = f"{value} is outside {low}–{high}"
        return None
    label, unit = _NUMBER_LABELS.get(name, (name, ""))
    if (problem := too_many_places(number, label=label, places=_PLACES, unit=unit)) is not None:
        errors[name] = problem  # the column keeps 2 places: never round a dose without a word
        return None
    return number


#: What the record keeps of a typed dose, strength, volume or rate (Administration's decimal columns).
_PLACES = 2
_NUMBER_LABELS: dict[str, tuple[str, str]] = {
    "dose_mg": ("Dose", "mg"),
    "concentration_mg_ml": ("Concentration", "mg/mL"),
    "container_volume_ml": ("Final volume", "mL"),
    "rate_ml_per_h": ("Pump rate", "mL/h"),
    "rate_mg_per_h": ("Rate", "mg/h"),
}


_KINDS_BY_ROUTE: dict[str, frozenset[str]] = {
    "esketamine": frozenset({AdministrationKind.NASAL_DEVICE}),
    "iv": frozenset(
        {AdministrationKind.INFUSION_START, AdministrationKind.RATE_CHANGE, AdministrationKind.INFUSION_STOP}
    ),
    "im": frozenset({AdministrationKind.INJECTION}),
    "sublingual": frozenset({AdministrationKind.SUBLINGUAL}),
}
_STARTS_PRODUCT = frozenset(
    {
        AdministrationKind.NASAL_DEVICE,
        AdministrationKind.INFUSION_START,
        AdministrationKind.INJECTION,
        AdministrationKind.SUBLINGUAL,
    }
)
#: IV infusions, IV rate changes and IM injections are checked by a second person who re-authenticates
#: (a clinic safety rule from the product issues, not a reference fact; dosing.SECOND_PERSON_SOURCE).
_SECOND_PERSON = frozenset(
    {AdministrationKind.INFUSION_START, AdministrationKind.RATE_CHANGE, AdministrationKind.INJECTION}
)
_FIELDS: dict[Subject, str] = {
    Subject.DOSE: "dose_mg",
    Subject.RATE: "rate_ml_per_h",
    Subject.CONCENTRATION: "container_volume_ml",
    Subject.DEVICES: "kind",
    Subject.BODY: "weight_kg",
    Subject.BASIS: "dose_basis",
    Subject.TIME: "at",
}


@dataclass(frozen=True)
class _Measured:
    dose: Decimal | None = None
    concentration: Decimal | None = None
    container: Decimal | None = None
    final_concentration: Decimal | None = None
    rate_ml: Decimal | None = None
    rate_mg: Decimal | None = None
    device_number: int | None = None


def record_administration(
    *,
    user: User,
    session: TreatmentSession,
    kind: str,
    at: datetime | None = None,
    lot_id: Any = None,
    given: Any = None,
    wasted: Any = None,
    container_volume_ml: Any = None,
    dose_mg: Any = None,
    rate_ml_per_h: Any = None,
    rate_mg_per_h: Any = None,
    verifier: Signature | None = None,
    prescriber: Signature | None = None,
    waste_witness: Signature | None = None,
    decision_reason: str = "",
    late_entry_reason: str = "",
    note: str = "",
    expected_version: int | None = None,
    request: HttpRequest | None = None,
    entered_at: datetime | None = None,
) -> Administration:
    """One dose event. The first one starts dosing (the gate must be open); the last device, the infusion
    stop, an injection or a sublingual dose moves the session to monitoring.

    ``at`` is when it happened (default now); ``entered_at`` is when it is recorded (always now, except
    for the demo loader replaying a morning). ``verifier``: the second person for IV/IM doses and rate
    changes; ``prescriber`` and ``decision_reason``: a prescriber's signed decision past a limit (more
    than planned, faster than the protocol) or the reason for a dose outside the usual range.
    ``rate_mg_per_h`` is accepted for old callers and must agree with rate × concentration.

    The stock: ``lot_id`` names the lot of the session's site and drug the dose is drawn from (in date on
    the day of the dose); ``given`` is the amount put into the dose in the lot's unit (required for solution:
    it must be the dose ÷ the lot's strength; devices and tablets default to the dose's whole count) and
    ``wasted`` what was drawn and not given. A waste is witnessed: by the second person who signs an IV or IM
    dose, else by ``waste_witness``. Rate changes and the stop draw nothing."""
    entered = entered_at or timezone.now()
    stated = at or entered
    # Judged first: the rest reads the day in the site's zone, which a year-1 time cannot even give.
    if why := time_problem(stated, born=session.patient.date_of_birth, now=entered):
        raise SessionInputError({"at": why})
    errors: dict[str, str] = {}
    route_key = "esketamine" if session.drug == "esketamine" else session.route
    if kind not in _KINDS_BY_ROUTE.get(route_key, frozenset()):
        errors["kind"] = f"{kind!r} does not fit a {session.get_route_display().lower()} session"
    if session.status not in (Status.PRE_DOSE, Status.DOSING):
        errors["session"] = (
            f"doses are recorded during dosing (the session is {session.get_status_display().lower()})"
        )
    previous = list(session.administrations.all())
    stock_lot: StockLot | None = None
    if kind in _STARTS_PRODUCT:
        stock_lot = draws.lot_for_dose(
            session=session, lot_id=lot_id, on=timezone.localdate(stated, session.site.zone), errors=errors
        )
    else:
        for name, value in (("lot_id", lot_id), ("given", given), ("wasted", wasted)):
            if value not in (None, ""):
                errors[name] = f"a {kind.replace('_', ' ')} draws nothing from stock: leave it empty"
    if errors:
        raise SessionInputError(errors)

    timing = check_dose_time(stated_at=stated, entered_at=entered, gate_opened_at=session.gate_opened_at)
    findings: list[DoseFinding] = list(timing.findings)
    strength = stock_lot.mg_per_unit if stock_lot is not None and stock_lot.unit == ML else None
    measured = _measure(
        kind, session, previous, errors, strength, container_volume_ml, dose_mg, rate_ml_per_h
    )
    draw: draws.Draw | None = None
    if stock_lot is not None and measured.dose is not None and not errors:
        draw = draws.check_draw(
            lot=stock_lot, dose_mg=measured.dose, given=given, wasted=wasted, errors=errors
        )
    if rate_mg_per_h not in (None, "") and measured.rate_mg is not None:
        typed_mg_h = _decimal(
            rate_mg_per_h, "rate_mg_per_h", errors, low=Decimal("0"), high=Decimal("100000")
        )
        if typed_mg_h is not None and abs(typed_mg_h - measured.rate_mg) > Decimal("0.05"):
            errors["rate_mg_per_h"] = (
                f"{typed_mg_h} mg/h does not match {measured.rate_ml} mL/h × {measured.final_concentration} mg/mL "
                f"= {measured.rate_mg:.2f} mg/h"
            )
    if errors:
        raise SessionInputError(errors)
    findings += _dose_findings(kind, session, previous, measured, stated)

    # Who decided: the second person, the prescriber, the reasons.
    signed_prescriber: User | None = None
    reason = decision_reason.strip()
    needs_prescriber = any(f.decision is Decision.PRESCRIBER_DECISION for f in findings)
    if prescriber is not None and prescriber.given:
        signed_prescriber = signature_errors(
            signature=prescriber,
            actor=user,
            roles={PRESCRIBER},
            field="prescriber",
            errors=errors,
            purpose="prescriber's decision",
            must_differ=False,
            site=session.site,
        )
    elif needs_prescriber and not reason:
        errors.setdefault("decision_reason", "write the reason for going past the limit")
    signed_verifier: User | None = None
    if kind in _SECOND_PERSON:
        same = (
            signed_prescriber is not None
            and verifier is not None
            and verifier.signer is not None
            and verifier.signer.pk == signed_prescriber.pk
        )
        if same and signed_prescriber is not None and signed_prescriber.pk != user.pk:
            # The prescriber who signed the decision also checked the dose: one signature, once (a code is
            # accepted only once).
            signed_verifier = signed_prescriber
        else:
            signed_verifier = signature_errors(
                signature=verifier or Signature(None),
                actor=user,
                roles=CLINICIANS,
                field="verified_by",
                errors=errors,
                purpose="second-person check of an IV or IM dose",
                must_differ=True,
                site=session.site,
            )
    witness: User | None = None
    if draw is not None and draw.wasted:
        witness = _waste_witness(user, session, kind, signed_verifier, waste_witness, errors)
    if kind == AdministrationKind.RATE_CHANGE and len(note.strip()) < 3:
        errors["note"] = "say why the rate changes (e.g. 'BP 172/104: rate halved, prescriber informed')"
    # A soft limit was already decided when the session's dose was planned (the session keeps the
    # prescriber's reason); a new one needs a prescriber now.
    session_reason = session.dose_override_reason if session.dose_decided_by_id else ""
    decided = Decided(
        reason=late_entry_reason,
        prescriber_reason=reason or session_reason,
        by_prescriber=user.role == PRESCRIBER or (bool(session_reason) and not reason),
        prescriber_signed=signed_prescriber is not None,
    )
    left = unresolved(findings, decided)
    errors.update(
        finding_errors(left, _FIELDS, reason_field="decision_reason", is_prescriber=user.role == PRESCRIBER)
    )
    if errors:
        raise SessionInputError(errors)

    warning = "; ".join(f.message for f in findings if f.decision is Decision.WARN)
    decided_past = [
        f for f in findings if f.decision in (Decision.PRESCRIBER_DECISION, Decision.PRESCRIBER_REASON)
    ]
    last = previous[-1] if previous else None
    with transaction.atomic():  # the dose, its draw, the session's move and the audit: all or nothing
        administration = _store(
            user=user,
            session=session,
            kind=kind,
            stated=stated,
            entered=entered,
            stock_lot=stock_lot,
            last=last,
            measured=measured,
            signed_verifier=signed_verifier,
            signed_prescriber=signed_prescriber,
            warning=warning,
            note=note,
            timing_clock=timing.clock_at,
            late_entry_reason=late_entry_reason.strip() if timing.late else "",
            decided_past=decided_past,
            reason=reason,
        )
        entry = None
        if draw is not None:
            try:
                entry = draws.append_use(
                    user=user,
                    administration=administration,
                    draw=draw,
                    witness=witness,
                    signed_at=entered.replace(microsecond=0),
                    request=request,
                )
            except draws.LedgerInputError as exc:
                raise SessionInputError(exc.errors) from None
        _advance(user, session, kind, measured, stated, timing.clock_at, expected_version, request)
        _audit(
            user, session, administration, measured, signed_verifier, decided_past, warning, entry, request
        )
    return administration


def _waste_witness(
    user: User,
    session: TreatmentSession,
    kind: str,
    signed_verifier: User | None,
    waste_witness: Signature | None,
    errors: dict[str, str],
) -> User | None:
    """Who witnesses a waste: the second person who signed this IV or IM dose (one signature for the one
    act: a code is accepted once), or the ``waste_witness`` who signs now."""
    if waste_witness is not None and waste_witness.given:
        if signed_verifier is not None and waste_witness.signer is not None:
            if waste_witness.signer.pk == signed_verifier.pk:
                return signed_verifier
        return witness_signs(
            waste_witness,
            user,
            errors,
            field="waste_witness",
            purpose="witness to the waste",
            site=session.site,
        )
    if kind in _SECOND_PERSON:
        return signed_verifier  # the verifier's own problems are reported under verified_by
    return witness_signs(
        None, user, errors, field="waste_witness", purpose="a waste needs a witness", site=session.site
    )


def _store(
    *,
    user: User,
    session: TreatmentSession,
    kind: str,
    stated: datetime,
    entered: datetime,
    stock_lot: StockLot | None,
    last: Administration | None,
    measured: _Measured,
    signed_verifier: User | None,
    signed_prescriber: User | None,
    warning: str,
    note: str,
    timing_clock: datetime,
    late_entry_reason: str,
    decided_past: list[DoseFinding],
    reason: str,
) -> Administration:
    """The administration row: what the lot says (product, strength, lot number, expiry) for a dose drawn
    from stock; a rate change or the stop carries the running infusion's."""
    if stock_lot is not None:
        product, lot_number, expiry = stock_lot.product, stock_lot.lot, stock_lot.expiry
        strength = stock_lot.mg_per_unit if stock_lot.unit == ML else None
    else:
        product = last.product if last else ""
        lot_number = last.lot if last else ""
        expiry = last.expiry if last else stated.date()
        strength = last.concentration_mg_ml if last else None
    return Administration.objects.create(
        organization_id=session.organization_id,
        session=session,
        kind=kind,
        at=stated,
        drug=session.drug,
        stock_lot=stock_lot,
        product=product,
        concentration_mg_ml=strength,
        container_volume_ml=measured.container,
        final_concentration_mg_ml=measured.final_concentration,
        lot=lot_number,
        expiry=expiry,
        dose_mg=measured.dose,
        rate_ml_per_h=measured.rate_ml,
        rate_mg_per_h=measured.rate_mg.quantize(Decimal("0.01")) if measured.rate_mg is not None else None,
        device_number=measured.device_number,
        given_by=user,
        verified_by=signed_verifier,
        warning=warning,
        note=note.strip(),
        recorded_at=entered,
        clock_at=timing_clock,
        late_entry_reason=late_entry_reason,
        decided_by=signed_prescriber
        or (user if decided_past and reason and user.role == PRESCRIBER else None),
        decision_reason=reason if decided_past else "",
    )


def _audit(
    user: User,
    session: TreatmentSession,
    administration: Administration,
    measured: _Measured,
    signed_verifier: User | None,
    decided_past: list[DoseFinding],
    warning: str,
    entry: Any,
    request: HttpRequest | None,
) -> None:
    stated, entered = administration.at, administration.recorded_at
    audit.record(
        user=user,
        action=Action.ADD,
        category="administration",
        patient=session.patient,
        object_type="Administration",
        object_id=administration.pk,
        request=request,
        after={
            "kind": administration.kind,
            "at": stated.isoformat(),
            "entered_at": entered.isoformat(),
            "dose_mg": str(measured.dose) if measured.dose is not None else None,
            "rate_ml_per_h": str(measured.rate_ml) if measured.rate_ml is not None else None,
            "mg_per_h": str(administration.rate_mg_per_h)
            if administration.rate_mg_per_h is not None
            else None,
            "final_concentration_mg_ml": (
                str(measured.final_concentration) if measured.final_concentration is not None else None
            ),
            "lot": administration.lot,
            "stock_lot": str(administration.stock_lot_id) if administration.stock_lot_id else None,
            "register_entry": entry.seq if entry is not None else None,
            "drawn": str(entry.drawn) if entry is not None else None,
            "wasted": str(entry.wasted) if entry is not None else None,
            "verified_by": signed_verifier.username if signed_verifier else None,
            "decided_by": administration.decided_by.username if administration.decided_by else None,
            "decision": [f.code for f in decided_past],
            "decision_reason": administration.decision_reason or None,
            "late_entry_reason": administration.late_entry_reason or None,
            "warning": warning,
        },
    )


def _measure(
    kind: str,
    session: TreatmentSession,
    previous: list[Administration],
    errors: dict[str, str],
    strength: Decimal | None,
    container_volume_ml: Any,
    dose_mg: Any,
    rate_ml_per_h: Any,
) -> _Measured:
    """Parse what the nurse typed into numbers (plausibility only: the clinical limits come next).
    ``strength``: the mg/mL of the solution lot the dose is drawn from (None for devices and tablets)."""
    if kind == AdministrationKind.NASAL_DEVICE:
        number = sum(1 for a in previous if a.kind == AdministrationKind.NASAL_DEVICE) + 1
        return _Measured(dose=Decimal(str(ESKETAMINE_DEVICE_MG)), device_number=number)
    if kind in (AdministrationKind.INJECTION, AdministrationKind.SUBLINGUAL):
        dose = _decimal(dose_mg, "dose_mg", errors, low=Decimal("0.1"), high=Decimal("1000"))
        conc = strength if kind == AdministrationKind.INJECTION else None
        return _Measured(dose=dose, concentration=conc, final_concentration=conc)
    start = next((a for a in previous if a.kind == AdministrationKind.INFUSION_START), None)
    if kind == AdministrationKind.INFUSION_START:
        if start is not None:
            errors["kind"] = "the infusion was already started: record a rate change or the stop"
        dose = _decimal(dose_mg, "dose_mg", errors, low=Decimal("0.1"), high=Decimal("1000"))
        conc = strength
        container = None
        if container_volume_ml not in (None, ""):
            container = _decimal(
                container_volume_ml, "container_volume_ml", errors, low=Decimal("1"), high=Decimal("2000")
            )
        rate = _decimal(rate_ml_per_h, "rate_ml_per_h", errors, low=Decimal("0.1"), high=Decimal("2000"))
        if dose is None or conc is None or rate is None or errors:
            return _Measured()
        final = conc
        if container is not None:
            if container < dose / conc:
                errors["container_volume_ml"] = (
                    f"{container} mL is less than the drug volume {dose / conc:.3f} mL ({dose} mg of the lot's "
                    f"{conc.normalize():f} mg/mL)"
                )
                return _Measured()
            final = dose / container
        return _Measured(
            dose=dose,
            concentration=conc,
            container=container,
            final_concentration=final,
            rate_ml=rate,
            rate_mg=rate * final,
        )
    if start is None:
        errors["kind"] = "the infusion has not been started"
        return _Measured()
    if any(a.kind == AdministrationKind.INFUSION_STOP for a in previous):
        errors["kind"] = "the infusion is already stopped"
        return _Measured()
    running: Decimal | None = start.final_concentration_mg_ml or start.concentration_mg_ml
    if kind == AdministrationKind.RATE_CHANGE:
        rate = _decimal(rate_ml_per_h, "rate_ml_per_h", errors, low=Decimal("0"), high=Decimal("2000"))
        if rate is None or running is None:
            return _Measured()
        return _Measured(final_concentration=running, rate_ml=rate, rate_mg=rate * running)
    return _Measured(final_concentration=running)  # infusion stop


def _dose_findings(
    kind: str,
    session: TreatmentSession,
    previous: list[Administration],
    measured: _Measured,
    stated: datetime,
) -> list[DoseFinding]:
    """The clinical side: the one dose check for what this administration gives."""
    protocol = protocol_of(session)
    rule = dose_rule_for(protocol, session.session_number)
    body = body_of(session.patient)
    planned = float(session.planned_dose_mg)
    given_before = float(
        sum((a.dose_mg or Decimal(0)) for a in previous if a.kind != AdministrationKind.RATE_CHANGE)
    )
    findings: list[DoseFinding] = []
    if kind == AdministrationKind.NASAL_DEVICE:
        devices = [a for a in previous if a.kind == AdministrationKind.NASAL_DEVICE]
        assert measured.device_number is not None
        findings += check_device(
            planned_dose_mg=planned,
            device_number=measured.device_number,
            at=stated,
            previous_at=devices[-1].at if devices else None,
        )
        return findings
    if kind == AdministrationKind.INFUSION_STOP:
        return findings
    if kind == AdministrationKind.RATE_CHANGE:
        start = next(a for a in previous if a.kind == AdministrationKind.INFUSION_START)
        assert measured.final_concentration is not None and measured.rate_ml is not None
        if measured.rate_ml > 0:
            findings += check_infusion_rate(
                protocol=protocol,
                rule=rule,
                body=body,
                final_mg_ml=float(measured.final_concentration),
                rate_ml_per_h=float(measured.rate_ml),
                dose_mg=float(start.dose_mg or session.planned_dose_mg),
            ).findings
        return findings
    assert measured.dose is not None
    dose = float(measured.dose)
    # The dose given in this session so far plus this one, against every limit (hard limits bind even
    # when a prescriber signs for more than planned).
    findings += check_session_dose(
        protocol=protocol,
        rule=rule,
        dose_mg=given_before + dose,
        body=body,
        basis=session.dose_basis,
    ).findings
    findings += check_against_plan(planned_dose_mg=planned, given_before_mg=given_before, this_mg=dose)
    if kind == AdministrationKind.INFUSION_START:
        assert measured.final_concentration is not None and measured.rate_ml is not None
        findings += check_concentration(
            protocol=protocol, rule=rule, final_mg_ml=float(measured.final_concentration)
        )
        findings += check_infusion_rate(
            protocol=protocol,
            rule=rule,
            body=body,
            final_mg_ml=float(measured.final_concentration),
            rate_ml_per_h=float(measured.rate_ml),
            dose_mg=dose,
        ).findings
    return findings


def _advance(
    user: User,
    session: TreatmentSession,
    kind: str,
    measured: _Measured,
    stated: datetime,
    clock_at: datetime,
    expected_version: int | None,
    request: HttpRequest | None,
) -> None:
    """Move the session on: the first dose starts dosing (and the clocks); the last one ends it."""
    if session.status == Status.PRE_DOSE:
        transition(
            user=user,
            session=session,
            to=Status.DOSING,
            expected_version=expected_version,
            request=request,
            at=stated,
        )
        expected_version = None
    fields: dict[str, Any] = {}
    if session.dose_started_at is None:
        fields["dose_started_at"] = stated
        fields["dose_clock_at"] = clock_at
    finished = (
        kind == AdministrationKind.NASAL_DEVICE
        and measured.device_number == planned_devices(float(session.planned_dose_mg))
    ) or kind in (
        AdministrationKind.INFUSION_STOP,
        AdministrationKind.INJECTION,
        AdministrationKind.SUBLINGUAL,
    )
    if finished:
        fields["dosing_ended_at"] = stated
        fields["dose_end_clock_at"] = clock_at
    if fields:
        _bump(session, expected_version, **fields)
        expected_version = None
    if finished:
        transition(
            user=user,
            session=session,
            to=Status.MONITORING,
            expected_version=expected_version,
            request=request,
            at=stated,
        )
