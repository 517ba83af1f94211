"""A plan shows the predicted concentration curve and band for its planned dose (issue: PK, item 6)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ketaclinic import pk
from ketaclinic.treatment import services
from ketaclinic.treatment.exposure import plan_exposure, planned_regimen

from .test_plans import plan_data


def test_iv_plan_curve_is_the_planned_dose_over_the_protocol_time(
    nurse: Any, prescriber: Any, patient: Any, site: Any, setup: Any, sign_in: Any
) -> None:
    setup.open_site(site)
    setup.screened(nurse, prescriber, patient)
    plan = services.create_plan(user=prescriber, patient=patient, data=plan_data())
    regimen, _text = planned_regimen(plan)  # type: ignore[misc]
    [infusion] = regimen.events
    # 0.5 mg/kg × 70 kg = 35 mg over 40 min → 0.875 mg/min, stopping at 40 min
    assert infusion.segments[0].rate_mg_per_min == pytest.approx(35 / 40) and infusion.stop_min == 40
    exposure = plan_exposure(plan)
    assert exposure is not None and exposure.result.bands is not None
    direct = pk.simulate(
        regimen,
        None,
        [float(t) for t in range(361)],
        covariates=pk.Covariates(weight_kg=70.0, age_years=exposure.result.covariates.age_years),
    )
    assert exposure.result.cmax_ng_ml == pytest.approx(direct.cmax_ng_ml, rel=1e-9)
    bands = exposure.result.bands
    assert bands.cmax_ng_ml.p5 < exposure.result.cmax_ng_ml < bands.cmax_ng_ml.p95
    html = sign_in(Client(), prescriber).get(f"/plans/{plan.pk}/").content.decode()
    section = html.split('id="plan-exposure"')[1].split("</section>")[0]
    assert "<svg" in section and "5–95 % of virtual patients" in section and "35 mg IV over 40 min" in section
