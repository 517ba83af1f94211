"""The session page's predicted curve is computed from the actual administration record."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from tests.conftest import sign
from tests.ledger.stock import lot_for

from ketaclinic import pk
from ketaclinic.chairside import services
from ketaclinic.chairside.exposure import regimen_for, session_exposure


def _devices(nurse: Any, session: Any, t0: Any, gaps: list[int]) -> None:
    for minutes in gaps:
        services.record_administration(
            user=nurse,
            session=session,
            kind="nasal_device",
            at=t0 + timedelta(minutes=minutes),
            entered_at=t0 + timedelta(minutes=minutes),
            lot_id=lot_for(session).pk,
        )


def test_devices_enter_the_model_at_their_actual_times(open_gate: Any, nurse: Any, t0: Any) -> None:
    _devices(nurse, open_gate, t0, [0, 7, 15])
    open_gate.refresh_from_db()
    regimen = regimen_for(open_gate, list(open_gate.administrations.order_by("at")))
    assert regimen is not None
    [nasal] = regimen.events
    assert nasal.device_times_min == (0.0, 7.0, 15.0)
    exposure = session_exposure(open_gate)
    assert exposure is not None
    direct = pk.simulate(
        regimen, None, [float(i) for i in range(0, 301)], covariates=pk.Covariates(weight_kg=70)
    )
    assert exposure.result.cmax_ng_ml == pytest.approx(direct.cmax_ng_ml, rel=1e-6)
    assert "Perez-Ruixo" in exposure.result.model.name


def test_spacing_changes_the_prediction(open_gate: Any, nurse: Any, t0: Any, esk_session: Any) -> None:
    _devices(nurse, open_gate, t0, [0, 5, 10])
    open_gate.refresh_from_db()
    tight = session_exposure(open_gate)
    regimen = pk.Regimen(pk.Drug.ESKETAMINE, (pk.NasalSession((0.0, 30.0, 60.0), 28.0),))
    spread = pk.simulate(
        regimen, None, [float(i) for i in range(0, 301)], covariates=pk.Covariates(weight_kg=70)
    )
    assert tight is not None and tight.result.cmax_ng_ml > spread.cmax_ng_ml


def test_session_page_shows_the_curve_beside_the_readings(
    open_gate: Any, nurse: Any, t0: Any, sign_in: Any
) -> None:
    _devices(nurse, open_gate, t0, [0, 5, 10])
    services.record_observation(
        user=nurse,
        session=open_gate,
        reading=services.vital_rules.VitalReading(
            taken_at=t0 + timedelta(minutes=40), sbp_mmhg=150, dbp_mmhg=90, hr_bpm=80, cadss_total=14
        ),
    )
    html = sign_in(Client(), nurse).get(f"/sessions/{open_gate.pk}/").content.decode()
    section = html.split('id="exposure"')[1].split("</section>")[0]
    assert section.count("<svg") == 2 and "CADSS 14" in section and "Observed readings" in section
    assert "A prediction, not a measurement" in section


def test_iv_rate_change_slows_delivery_in_proportion(
    consented: Any, nurse: Any, prescriber: Any, t0: Any
) -> None:
    session = services.schedule_session(
        user=nurse, patient=consented, protocol_id="iv-trd-elektd", scheduled_at=t0, planned_dose_mg=40
    )
    session.status, session.gate_opened_at = "pre_dose", t0 - timedelta(minutes=5)
    session.save()
    from django.utils import timezone

    from ketaclinic.chairside.models import GateCheck

    GateCheck.objects.create(
        organization_id=session.organization_id,
        session=session,
        answers={},
        items=[],
        passed=True,
        evaluated_at=timezone.now(),
        by=prescriber,
    )
    services.record_administration(
        user=nurse,
        session=session,
        kind="infusion_start",
        at=t0,
        entered_at=t0,
        lot_id=lot_for(session).pk,  # 10 mg/mL
        given="4",
        container_volume_ml=100,
        dose_mg=40,
        rate_ml_per_h=150,  # 0.4 mg/mL → 60 mg/h: 40 mg over 40 min
        verifier=sign(prescriber),
    )
    services.record_administration(
        user=nurse,
        session=session,
        kind="rate_change",
        at=t0 + timedelta(minutes=20),
        entered_at=t0 + timedelta(minutes=20),
        rate_ml_per_h=75,
        note="BP rising: rate halved",
        verifier=sign(prescriber),
    )
    session.refresh_from_db()
    regimen = regimen_for(session, list(session.administrations.order_by("at")))
    [infusion] = regimen.events
    # 40 mg over the protocol's 40 min = 1 mg/min at 150 mL/h; halving the pump rate halves it:
    # 20 mg in the first 20 min, the other 20 mg at 0.5 mg/min take 40 min → planned stop at 60 min.
    assert [(s.start_min, s.rate_mg_per_min) for s in infusion.segments] == [(0.0, 1.0), (20.0, 0.5)]
    assert infusion.stop_min == pytest.approx(60.0)
