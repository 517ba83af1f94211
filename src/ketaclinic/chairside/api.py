"""Treatment-session API: the whole session an integration (or a test) can drive — scheduling, check-in,
the pre-dose gate and its overrides, doses, readings in idempotent batches, alerts, discharge. Consent is
the consent app's API (``/api/patients/{id}/consents``, consent/api.py).

Every act calls the same use case as the session page, so every rule holds here too. Errors carry their
status: one handler maps the chairside errors (422 naming each field and its limit, 409 for a stale version
or a state that does not allow the act, 404 for what the caller may not see); endpoints never catch.

Signatures (a second person's check, a prescriber's decision) travel as ``{"user_id", "password", "code"}``:
the signer re-authenticates for that one act, exactly as at the chair.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Router, Schema, Status
from ninja.params import HeaderEx
from pydantic import Field

from ketaclinic.accounts.cosign import Signature
from ketaclinic.accounts.models import Chair, User
from ketaclinic.chairside import services
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.clinical.vitals import VitalReading
from ketaclinic.core.access import CLINICIANS, PRESCRIBER
from ketaclinic.core.api import FieldErrors, api_roles
from ketaclinic.core.fields import Bounded, Code, Line, Note, Reason
from ketaclinic.core.text import LINE_PATTERN
from ketaclinic.ledger.draws import standing_draw
from ketaclinic.patients import services as patients

router = Router(tags=["treatment sessions"])
#: ninja's typed header parameter: ``HeaderEx[type, {kwargs of ninja.Header}]``.
_IDEMPOTENCY_HEADER = {
    "alias": "Idempotency-Key",
    "default": None,
    "max_length": 100,
    "pattern": LINE_PATTERN,
}


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # api_roles lets only signed-in staff through
    return request.user


# --- shapes ---------------------------------------------------------------------------------------------


class SignatureIn(Schema):
    user_id: int = Field(description="The colleague who signs")
    password: Annotated[str, Bounded(256)]
    code: Annotated[str, Bounded(16)] = Field(description="Their current authenticator (TOTP) code")


class SessionIn(Schema):
    patient_id: UUID
    protocol_id: Code
    planned_dose_mg: Decimal
    scheduled_at: datetime
    chair_id: int | None = None
    dose_basis: Literal["actual", "ideal", "adjusted"] = "actual"
    dose_override_reason: Reason = Field(
        default="",
        description="A prescriber's reason, needed only when the dose is outside the protocol's usual range "
        "or above the clinic's soft mg ceiling (422 on this field says which limit)",
    )
    session_number: int | None = Field(
        default=None, ge=1, description="The course session this is (default: the next one for this protocol)"
    )
    chair_override_reason: Reason = Field(
        default="",
        description="Needed only when the chair is taken at that time (422 on this field names what holds "
        "it): why to use it anyway",
    )


class SessionOut(Schema):
    id: UUID
    patient_id: UUID
    protocol_id: str
    protocol_version: int
    drug: str
    route: str
    planned_dose_mg: Decimal
    session_number: int | None
    dose_basis: str
    scheduled_at: datetime
    status: str
    gate_opened_at: datetime | None
    dose_started_at: datetime | None
    dose_clock_at: datetime | None
    dosing_ended_at: datetime | None
    discharged_at: datetime | None
    ready_at: datetime | None
    version: int


class TransitionIn(Schema):
    to: Literal[
        "scheduled", "checked_in", "pre_dose", "dosing", "monitoring", "recovery", "discharged", "stopped"
    ]
    version: int
    reason: Reason = ""


class GateIn(Schema):
    rems_patient_enrolled: bool | None = None
    rems_setting_certified: bool | None = None
    hours_since_food: float | None = Field(default=None, ge=0, le=24 * 7)
    minutes_since_liquids: float | None = Field(default=None, ge=0, le=24 * 60 * 7)
    nasal_steroid_or_decongestant_today: bool | None = None
    minutes_since_nasal_steroid_or_decongestant: float | None = Field(default=None, ge=0, le=24 * 60 * 7)
    escort_confirmed: bool = False
    ride_home_confirmed: bool = False
    pregnancy_test: Literal["negative", "positive", "not_indicated"] | None = Field(
        default=None,
        description="not_indicated counts only where the intake, signed by a prescriber, records that the "
        "patient cannot become pregnant (then no answer is needed)",
    )
    pregnancy_test_on: date | None = Field(
        default=None,
        description="The date the test was taken; judged against the clinic's interval "
        "(KETACLINIC_PREGNANCY_TEST_DAYS, counted per KETACLINIC_PREGNANCY_TEST_BEFORE)",
    )


class GateItemOut(Schema):
    key: str
    title: str
    status: str
    reason: str
    source: str
    confirmed: bool
    overridable: bool
    overridden_by: str | None = None
    override_reason: str | None = None


class GateOut(Schema):
    passed: bool
    evaluated_at: datetime
    items: list[GateItemOut]
    session: SessionOut


class GateOverrideIn(Schema):
    item_key: Code
    reason: Reason


class ReadingIn(Schema):
    observed_at: datetime
    sbp_mmhg: int | None = None
    dbp_mmhg: int | None = None
    hr_bpm: int | None = None
    spo2_pct: int | None = None
    rr_per_min: int | None = None
    temp_c: float | None = None
    moaas: int | None = None
    cadss_total: int | None = None


class BatchIn(Schema):
    idempotency_key: Annotated[str, Bounded(100)] | None = Field(
        default=None, description="Or the Idempotency-Key header"
    )
    readings: list[ReadingIn]


class BatchOut(Schema):
    batch: str
    stored: int
    duplicate: bool


class AdministrationIn(Schema):
    kind: Literal["nasal_device", "infusion_start", "rate_change", "infusion_stop", "injection", "sublingual"]
    at: datetime | None = Field(default=None, description="When it happened (default now)")
    lot_id: UUID | None = Field(
        default=None,
        description="The stock lot the dose is drawn from: the session's site and drug, in date (GET "
        "/sessions/{id}/stock-lots). Product, strength, lot number and expiry come from the lot.",
    )
    given: Decimal | None = Field(
        default=None,
        description="What was put into the dose, in the lot's unit: mL (required for solution; must be the "
        "dose ÷ the lot's mg/mL), devices or tablets (default: the dose's whole count)",
    )
    wasted: Decimal | None = Field(
        default=None, description="Drawn but not given, in the lot's unit (default 0; a waste is witnessed)"
    )
    container_volume_ml: Decimal | None = Field(default=None, description="IV: final bag or syringe volume")
    dose_mg: Decimal | None = None
    rate_ml_per_h: Decimal | None = None
    verifier: SignatureIn | None = Field(
        default=None, description="The second person for an IV or IM dose and every rate change"
    )
    prescriber: SignatureIn | None = Field(
        default=None, description="A prescriber's signed decision past a limit (more than planned, faster)"
    )
    waste_witness: SignatureIn | None = Field(
        default=None,
        description="Who witnesses a waste when no second person signs the dose (devices, sublingual); "
        "for IV and IM doses the verifier witnesses it",
    )
    decision_reason: Reason = ""
    late_entry_reason: Reason = Field(default="", description="Needed when `at` is more than 10 min ago")
    note: Note = Field(default="", description="For a rate change: why")
    # Typed by hand before issue 14; refused now (the lot says them), never silently ignored.
    product: Line | None = Field(default=None, deprecated=True, description="Refused: send lot_id")
    concentration_mg_ml: Decimal | None = Field(
        default=None, deprecated=True, description="Refused: send lot_id"
    )
    lot: Line | None = Field(default=None, deprecated=True, description="Refused: send lot_id")
    expiry: date | None = Field(default=None, deprecated=True, description="Refused: send lot_id")


class StockLotOut(Schema):
    id: UUID
    product: str
    ndc: str
    lot: str
    expiry: date
    unit: str
    mg_per_unit: Decimal
    balance: Decimal


class AdministrationOut(Schema):
    id: UUID
    kind: str
    at: datetime
    recorded_at: datetime
    dose_mg: Decimal | None
    rate_ml_per_h: Decimal | None
    rate_mg_per_h: Decimal | None
    final_concentration_mg_ml: Decimal | None
    device_number: int | None
    warning: str
    verified_by: int | None
    decided_by: int | None
    status: str
    stock_lot: UUID | None
    product: str
    concentration_mg_ml: Decimal | None
    lot: str
    expiry: date
    register_entry: int | None = Field(description="The register entry of the draw (seq)")
    drawn: Decimal | None
    wasted: Decimal | None


class AcknowledgeIn(Schema):
    note: Note


class CriterionOut(Schema):
    criterion: str
    met: bool
    reason: str
    source: str
    confirmed: bool
    overridable: bool


class DischargeCheckOut(Schema):
    ready_at: datetime | None
    minutes_until_ready: int | None
    criteria: list[CriterionOut]
    blocking: list[str]


class DischargeIn(Schema):
    version: int | None = None
    clinically_stable: bool
    escort_present: bool
    driving_advice_given: bool
    overrides: dict[Code, Reason] = Field(
        default_factory=dict, description="criterion → reason, for criteria not met (needs `prescriber`)"
    )
    prescriber: SignatureIn | None = None


class DischargeOut(Schema):
    session: SessionOut
    decided_at: datetime
    overrides: list[dict[str, str]]
    overridden_by: int | None


# --- helpers --------------------------------------------------------------------------------------------


def _out(session: TreatmentSession) -> dict[str, Any]:
    return {name: getattr(session, name) for name in SessionOut.model_fields}


def _session(request: HttpRequest, session_id: UUID, purpose: str) -> TreatmentSession:
    return services.get_session(user=_user(request), session_id=session_id, request=request, purpose=purpose)


def _signature(request: HttpRequest, given: SignatureIn | None) -> Signature | None:
    if given is None:
        return None
    signer = User.objects.filter(pk=given.user_id, organization_id=_user(request).org_id).first()
    return Signature(signer, given.password, given.code)


def _gate_out(session: TreatmentSession) -> dict[str, Any]:
    check = session.gate_checks.first()
    assert check is not None
    overrides = {o["item_key"]: o for o in check.overrides}
    return {
        "passed": check.passed,
        "evaluated_at": check.evaluated_at,
        "items": [
            item
            | {
                "overridden_by": overrides.get(item["key"], {}).get("prescriber"),
                "override_reason": overrides.get(item["key"], {}).get("reason"),
            }
            for item in check.items
        ],
        "session": _out(session),
    }


# --- scheduling -----------------------------------------------------------------------------


@router.post("", response={201: SessionOut}, auth=api_roles(*CLINICIANS))
def create(request: HttpRequest, body: SessionIn) -> Status[dict[str, Any]]:
    patient = patients.get_related_patient(
        user=_user(request), patient_id=body.patient_id, request=request, purpose="api schedule"
    )
    chair = Chair.objects.filter(pk=body.chair_id, site=patient.site).first() if body.chair_id else None
    if body.chair_id and chair is None:
        raise FieldErrors({"chair_id": "is not a chair at the patient's site"})
    session = services.schedule_session(
        user=_user(request),
        patient=patient,
        protocol_id=body.protocol_id,
        scheduled_at=body.scheduled_at,
        planned_dose_mg=body.planned_dose_mg,
        chair=chair,
        chair_override_reason=body.chair_override_reason,
        dose_basis=body.dose_basis,
        dose_override_reason=body.dose_override_reason,
        session_number=body.session_number,
        request=request,
    )
    return Status(201, _out(session))


@router.get("/{session_id}", response=SessionOut, auth=api_roles(*CLINICIANS))
def read(request: HttpRequest, session_id: UUID) -> dict[str, Any]:
    return _out(_session(request, session_id, "api read"))


@router.post("/{session_id}/transition", response=SessionOut, auth=api_roles(*CLINICIANS))
def move(request: HttpRequest, session_id: UUID, body: TransitionIn) -> dict[str, Any]:
    """Check in, stop (with a reason), or move to monitoring/recovery. Dosing starts with the first dose;
    discharge has its own operation."""
    session = _session(request, session_id, "api transition")
    services.transition(
        user=_user(request),
        session=session,
        to=body.to,
        expected_version=body.version,
        reason=body.reason,
        request=request,
    )
    return _out(session)


# --- the pre-dose gate ----------------------------------------------------------------------------------


@router.post("/{session_id}/gate", response=GateOut, auth=api_roles(*CLINICIANS))
def gate(request: HttpRequest, session_id: UUID, body: GateIn) -> dict[str, Any]:
    """Answer the gate's questions; every item comes back with its status, reason and source. The gate
    opens when every item passes or a prescriber has overridden it (consent and REMS items never)."""
    session = _session(request, session_id, "api pre-dose gate")
    services.evaluate_gate(
        user=_user(request), session=session, answers=body.model_dump(exclude_none=True), request=request
    )
    return _gate_out(session)


@router.post("/{session_id}/gate/overrides", response=GateOut, auth=api_roles(PRESCRIBER))
def gate_override(request: HttpRequest, session_id: UUID, body: GateOverrideIn) -> dict[str, Any]:
    """A prescriber's decision to proceed despite one gate item, with the clinical reason."""
    session = _session(request, session_id, "api gate override")
    services.override_gate_item(
        user=_user(request), session=session, item_key=body.item_key, reason=body.reason, request=request
    )
    return _gate_out(session)


# --- doses and readings ---------------------------------------------------------------------------------


@router.post("/{session_id}/administrations", response={201: AdministrationOut}, auth=api_roles(*CLINICIANS))
def administer(request: HttpRequest, session_id: UUID, body: AdministrationIn) -> Status[dict[str, Any]]:
    """One dose event, checked by the same dose check as the plan and the chair (clinical/dose_check.py)."""
    session = _session(request, session_id, "api administration")
    typed = [n for n in ("product", "concentration_mg_ml", "lot", "expiry") if n in body.model_fields_set]
    if typed:
        raise services.SessionInputError(
            {
                name: "comes from the stock lot: send lot_id (GET /sessions/{id}/stock-lots) instead"
                for name in typed
            }
            | {
                "lot_id": "choose the lot the dose is drawn from; product, strength, lot and expiry are the lot's"
            }
        )
    row = services.record_administration(
        user=_user(request),
        session=session,
        kind=body.kind,
        at=body.at,
        lot_id=body.lot_id,
        given=body.given,
        wasted=body.wasted,
        container_volume_ml=body.container_volume_ml,
        dose_mg=body.dose_mg,
        rate_ml_per_h=body.rate_ml_per_h,
        verifier=_signature(request, body.verifier),
        prescriber=_signature(request, body.prescriber),
        waste_witness=_signature(request, body.waste_witness),
        decision_reason=body.decision_reason,
        late_entry_reason=body.late_entry_reason,
        note=body.note,
        request=request,
    )
    draw = standing_draw(row)
    return Status(
        201,
        {
            "id": row.pk,
            "kind": row.kind,
            "at": row.at,
            "recorded_at": row.recorded_at,
            "dose_mg": row.dose_mg,
            "rate_ml_per_h": row.rate_ml_per_h,
            "rate_mg_per_h": row.rate_mg_per_h,
            "final_concentration_mg_ml": row.final_concentration_mg_ml,
            "device_number": row.device_number,
            "warning": row.warning,
            "verified_by": row.verified_by_id,
            "decided_by": row.decided_by_id,
            "status": session.status,
            "stock_lot": row.stock_lot_id,
            "product": row.product,
            "concentration_mg_ml": row.concentration_mg_ml,
            "lot": row.lot,
            "expiry": row.expiry,
            "register_entry": draw.seq if draw is not None else None,
            "drawn": draw.drawn if draw is not None else None,
            "wasted": draw.wasted if draw is not None else None,
        },
    )


@router.get("/{session_id}/stock-lots", response=list[StockLotOut], auth=api_roles(*CLINICIANS))
def stock_lots(request: HttpRequest, session_id: UUID) -> list[dict[str, Any]]:
    """The lots a dose of this session may be drawn from now: the session's site and drug, a unit that suits
    the route, in date today, with stock left; first to expire first."""
    from django.utils import timezone

    from ketaclinic.ledger.draws import lots_for_dose

    session = _session(request, session_id, "api stock lots")
    lines = lots_for_dose(session=session, on=timezone.localdate(timezone.now(), session.site.zone))
    return [
        {
            "id": line.lot.pk,
            "product": line.lot.product,
            "ndc": line.lot.ndc,
            "lot": line.lot.lot,
            "expiry": line.lot.expiry,
            "unit": line.lot.unit,
            "mg_per_unit": line.lot.mg_per_unit,
            "balance": line.balance,
        }
        for line in lines
    ]


@router.post(
    "/{session_id}/observations", response={201: BatchOut, 200: BatchOut}, auth=api_roles(*CLINICIANS)
)
def observations(
    request: HttpRequest,
    session_id: UUID,
    body: BatchIn,
    idempotency_key: HeaderEx[str | None, _IDEMPOTENCY_HEADER] = None,
) -> Status[dict[str, Any]]:
    """Post readings in a batch. Resending the same idempotency key stores nothing twice (200, duplicate=true)."""
    session = _session(request, session_id, "api observations")
    key = (idempotency_key or body.idempotency_key or "").strip()
    readings = [
        VitalReading(taken_at=r.observed_at, **r.model_dump(exclude={"observed_at"})) for r in body.readings
    ]
    batch, created = services.ingest_batch(
        user=_user(request), session=session, key=key, readings=readings, request=request
    )
    return Status(
        201 if created else 200, {"batch": batch.key, "stored": batch.count, "duplicate": not created}
    )


@router.post(
    "/{session_id}/alerts/{alert_id}/acknowledge", response=dict[str, Any], auth=api_roles(*CLINICIANS)
)
def acknowledge(request: HttpRequest, session_id: UUID, alert_id: int, body: AcknowledgeIn) -> dict[str, Any]:
    _session(request, session_id, "api acknowledge")
    alert = services.acknowledge_alert(
        user=_user(request), alert_id=alert_id, note=body.note, request=request
    )
    return {
        "id": alert.pk,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
    }


# --- discharge ------------------------------------------------------------------------------------------


@router.get("/{session_id}/discharge", response=DischargeCheckOut, auth=api_roles(*CLINICIANS))
def discharge_check(request: HttpRequest, session_id: UUID) -> dict[str, Any]:
    """The discharge checklist now (as if stability, escort and driving advice were confirmed)."""
    session = _session(request, session_id, "api discharge check")
    view = services.assess_discharge(
        session=session, clinician_confirms_stable=True, escort_present=True, driving_advice_given=True
    )
    return {
        "ready_at": view.assessment.ready_at,
        "minutes_until_ready": view.assessment.minutes_until_ready,
        "criteria": [
            {
                "criterion": str(c.criterion),
                "met": c.met,
                "reason": c.reason,
                "source": c.source,
                "confirmed": c.confirmed,
                "overridable": c.overridable,
            }
            for c in view.assessment.criteria
        ],
        "blocking": [str(c.criterion) for c in view.blocking],
    }


@router.post("/{session_id}/discharge", response=DischargeOut, auth=api_roles(*CLINICIANS))
def discharge(request: HttpRequest, session_id: UUID, body: DischargeIn) -> dict[str, Any]:
    """Discharge: refused (422, a field per criterion not met) unless every criterion is met or a
    prescriber signs the reasons; critical alerts, open checklists and the esketamine 2 hours never."""
    session = _session(request, session_id, "api discharge")
    record = services.discharge(
        user=_user(request),
        session=session,
        clinician_confirms_stable=body.clinically_stable,
        escort_present=body.escort_present,
        driving_advice_given=body.driving_advice_given,
        overrides=body.overrides,
        prescriber=_signature(request, body.prescriber),
        expected_version=body.version,
        request=request,
    )
    return {
        "session": _out(session),
        "decided_at": record.decided_at,
        "overrides": record.overrides,
        "overridden_by": record.overridden_by_id,
    }
