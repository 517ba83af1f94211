"""simulate(): validation, reporting, populations."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from ketaclinic.pk.errors import PKValidationError
from ketaclinic.pk.models import KAMP_2020, PEREZ_RUIXO_2021, Scale, Variability
from ketaclinic.pk.population import Population, sample_etas
from ketaclinic.pk.regimen import (
    Covariates,
    Dose,
    Drug,
    Infusion,
    NasalSession,
    RateSegment,
    Regimen,
    Route,
    iv_infusion,
    nasal_devices,
)
from ketaclinic.pk.solve import simulate

W70 = Covariates(weight_kg=70.0)
IV = Regimen(Drug.KETAMINE, (iv_infusion(35.0, 40.0),))


def test_every_bad_field_is_named_at_once() -> None:
    reg = Regimen(
        Drug.KETAMINE,
        (
            Dose(-1.0, 0.0, Route.IM),
            Infusion((RateSegment(10.0, 1.0), RateSegment(5.0, -2.0)), 3.0),
        ),
    )
    with pytest.raises(PKValidationError) as err:
        simulate(
            reg, "kamp2020", covariates=Covariates(weight_kg=-5, age_years=200), population=Population(0)
        )
    errors = err.value.errors
    assert set(errors) >= {
        "events[0].time_min",
        "events[0].dose_mg",
        "events[1].segments",
        "events[1].rate_mg_per_min",
        "events[1].stop_min",
        "weight_kg",
        "age_years",
        "population",
    }
    assert "Cannot simulate this dose" in err.value.message


def test_weight_is_required_by_racemic_models_but_not_by_perez_ruixo() -> None:
    with pytest.raises(PKValidationError) as err:
        simulate(IV, "domino")
    assert "weight" in err.value.errors["weight_kg"]
    simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(1),)))  # no weight needed


def test_route_and_drug_must_fit_the_model() -> None:
    with pytest.raises(PKValidationError) as err:
        simulate(Regimen(Drug.ESKETAMINE, (Dose(0.0, 28.0, Route.SUBLINGUAL),)))
    assert "sublingual" in err.value.errors["route"]
    with pytest.raises(PKValidationError) as err:
        simulate(IV, PEREZ_RUIXO_2021, covariates=W70)
    assert "esketamine model" in err.value.errors["model"]
    with pytest.raises(PKValidationError) as err:
        simulate(Regimen(Drug.ESKETAMINE, (NasalSession((0.0,), 20.0),)))
    assert "28 mg" in err.value.errors["events[0].mg_per_device"]
    with pytest.raises(PKValidationError) as err:
        simulate(IV, "nonsense", covariates=W70)
    assert "unknown model" in err.value.errors["model"]


def test_result_names_model_site_and_unconfirmed_defaults() -> None:
    res = simulate(Regimen(Drug.KETAMINE, (Dose(0.0, 35.0, Route.IM),)), covariates=W70)
    assert res.model.key == "kamp2020" and res.model.sample_site.value == "arterial"
    assert res.tmax_min == pytest.approx(10.0, abs=0.5)  # ka derived from the published 5–15 min
    joined = " ".join(res.unconfirmed)
    assert "im absorption rate" in joined and "secondary source" in joined
    assert "venous delay" in joined


def test_threshold_times_for_the_iv_regimen() -> None:
    # Kamp at 70 kg: rises through 100 ng/mL early in the infusion and falls below it after it stops.
    res = simulate(IV, "kamp2020", covariates=W70)
    assert res.threshold.value_ng_ml == 100.0
    assert res.reaches_threshold and res.falls_below_threshold_min is not None
    assert 40 < res.falls_below_threshold_min < 80
    # consistency: the curve is at the threshold at the reported time
    assert res.at(res.falls_below_threshold_min) == pytest.approx(100.0, rel=0.01)
    high = simulate(IV, "kamp2020", covariates=W70, threshold_ng_ml=400)
    assert not high.reaches_threshold and high.time_above_threshold_min == 0.0
    assert high.falls_below_threshold_min is None


def test_auc_is_exact_over_the_window() -> None:
    # 1 mg IV bolus into Kamp: AUC0–∞ = D/CL = 1 mg / 1.4 L/min = 0.7143 mg·min/L = 11.905 ng·h/mL.
    res = simulate(
        Regimen(Drug.KETAMINE, (Dose(0.0, 1.0, Route.IV),)), "kamp", covariates=W70, horizon_min=72 * 60
    )
    assert res.auc_ng_h_ml == pytest.approx(1 / 1.4 * 1000 / 60, rel=1e-4)


def test_population_bands_are_ordered_and_reproducible() -> None:
    pop = Population(n=400, seed=7)
    a = simulate(IV, "kamp2020", covariates=W70, population=pop)
    b = simulate(IV, "kamp2020", covariates=W70, population=pop)
    c = simulate(IV, "kamp2020", covariates=W70, population=replace(pop, seed=8))
    assert a.bands is not None and b.bands is not None and c.bands is not None
    assert np.all(a.bands.p5_ng_ml <= a.bands.p50_ng_ml) and np.all(a.bands.p50_ng_ml <= a.bands.p95_ng_ml)
    np.testing.assert_array_equal(a.bands.p50_ng_ml, b.bands.p50_ng_ml)
    assert not np.array_equal(a.bands.p50_ng_ml, c.bands.p50_ng_ml)
    s = a.bands.cmax_ng_ml
    assert s.p5 < s.p50 < s.p95
    assert any("IIV of V1: default 30%" in u for u in a.unconfirmed)


def test_population_without_variability_collapses_onto_the_typical_curve() -> None:
    pop = Population(n=20, seed=1, default_cv=0.0, cv_overrides={"CL": 0.0})
    res = simulate(IV, "kamp2020", covariates=W70, population=pop)
    assert res.bands is not None
    np.testing.assert_allclose(res.bands.p5_ng_ml, res.concentration_ng_ml, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(res.bands.p95_ng_ml, res.concentration_ng_ml, rtol=1e-12, atol=1e-12)
    # CL's CV was set explicitly; the others still say they rest on the (now 0 %) default
    iiv = [u for u in res.unconfirmed if u.startswith("IIV")]
    assert iiv and all("default 0%" in u for u in iiv) and not any("IIV of CL" in u for u in iiv)


def test_log_normal_and_logit_random_effects_have_the_published_spread() -> None:
    # kel CV 120 %: ω = sqrt(ln(1 + 1.2²)) = sqrt(ln 2.44) = 0.9445; FRn: SD 0.708 on the logit scale.
    # 5,000 draws: the SD's standard error is about 1 %, so allow 4 %.
    etas = sample_etas(PEREZ_RUIXO_2021.variability, Population(n=5_000, seed=3))
    assert float(np.std(etas["kel"])) == pytest.approx(math.sqrt(math.log(2.44)), rel=0.04)
    assert float(np.std(etas["FRn"])) == pytest.approx(0.708, rel=0.04)
    assert float(np.std(etas["Vh"])) == pytest.approx(math.sqrt(math.log(1.09)), rel=0.04)  # default 30 %
    v = Variability("x", None, Scale.LOG, "test")
    assert not v.confirmed


def test_esketamine_population_flags_unpublished_cvs_only() -> None:
    res = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(2),)), population=Population(200, seed=2))
    joined = " ".join(res.unconfirmed)
    assert "IIV of Vh" in joined and "IIV of ka_sw" in joined
    assert "IIV of Vc:" not in joined and "IIV of kel:" not in joined  # published in Table 3
    assert "IIV of ka_po" not in joined  # oral depot not used by a nasal dose


def test_requested_times_are_on_the_grid_exactly() -> None:
    res = simulate(IV, KAMP_2020, covariates=W70, at_min=(40.0, 83.3))
    assert 83.3 in res.times_min.tolist()
    assert res.at(40.0) == res.cmax_ng_ml


def test_rate_changes_and_pauses_in_an_infusion_record() -> None:
    # 20 mg over 20 min, 10 min pause, 15 mg over 10 min = 35 mg; the peak is at the end of the second run.
    inf = Infusion((RateSegment(0.0, 1.0), RateSegment(20.0, 0.0), RateSegment(30.0, 1.5)), 40.0)
    assert inf.total_mg == pytest.approx(35.0)
    res = simulate(Regimen(Drug.KETAMINE, (inf,)), "kamp", covariates=W70)
    assert res.tmax_min == 40.0
    assert res.at(30.0) < res.at(20.0)  # falls during the pause


def test_requested_times_beyond_a_day_extend_the_simulation() -> None:
    res = simulate(IV, KAMP_2020, covariates=W70, at_min=(2000.0,))
    assert res.times_min[-1] >= 2000.0 and res.auc_window_min[1] >= 2000.0
    assert 0 < res.at(2000.0) < res.at(1440.0)
    with pytest.raises(ValueError, match="outside the simulated"):
        res.at(5000.0)
    with pytest.raises(PKValidationError) as err:
        simulate(IV, KAMP_2020, covariates=W70, at_min=(600.0,), horizon_min=300.0)
    assert "within the simulated 300 min" in err.value.errors["at"]
