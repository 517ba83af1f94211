"""Perez-Ruixo 2021 esketamine: published Table 4, pk.md's derived checks, devices and covariates."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ketaclinic.pk.models import PEREZ_RUIXO_2021
from ketaclinic.pk.regimen import (
    Ancestry,
    Covariates,
    Dose,
    Drug,
    NasalSession,
    Regimen,
    Route,
    iv_infusion,
    nasal_devices,
)
from ketaclinic.pk.solve import SimulationResult, simulate
from ketaclinic.pk.systems import build
from ketaclinic.pk.validation import effective_frn_session

M = PEREZ_RUIXO_2021


def nasal(n_devices: int, covariates: Covariates | None = None) -> tuple[float, float]:
    res = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(n_devices),)), M, covariates=covariates)
    return res.cmax_ng_ml, res.auc_ng_h_ml


@pytest.mark.parametrize(
    ("n_devices", "covariates", "cmax", "auc"),
    [
        # pk.md §2 rows 9–13 = Perez-Ruixo Table 4 (model-based), devices 5 min apart (label),
        # AUC over 0–24 h after the first device.
        (1, Covariates(age_years=45), 43.8, 147.0),
        (2, Covariates(age_years=45), 72.5, 255.0),
        (3, Covariates(age_years=45), 101.0, 362.0),
        (2, Covariates(age_years=45, ancestry=Ancestry.JAPANESE), 94.5, None),
        (3, Covariates(age_years=45, ancestry=Ancestry.JAPANESE), 131.3, None),
        # "> 60 y" stratum: age 70 reproduces it (0.2 % / 0.4 %)
        (2, Covariates(age_years=70), 73.8, 276.0),
        (3, Covariates(age_years=70), 102.7, 391.0),
    ],
)
def test_published_table_4_within_2_percent(
    n_devices: int, covariates: Covariates, cmax: float, auc: float | None
) -> None:
    got_cmax, got_auc = nasal(n_devices, covariates)
    assert got_cmax == pytest.approx(cmax, rel=0.02)
    if auc is not None:
        assert got_auc == pytest.approx(auc, rel=0.02)


def effective(n_devices: int) -> tuple[float, float, SimulationResult]:
    frn_eff = M.frn * (1 + (n_devices - 1) * M.frn_later_device_factor) / n_devices
    model = replace(M, frn=frn_eff, frn_later_device_factor=1.0)
    res = simulate(
        Regimen(Drug.ESKETAMINE, (effective_frn_session(n_devices),)), model, at_min=(60, 120, 240, 480)
    )
    return res.cmax_ng_ml, res.auc_ng_h_ml, res


@pytest.mark.parametrize(("n", "cmax", "auc"), [(1, 43.9, 147), (2, 73.0, 254), (3, 102.2, 361)])
def test_pk_md_derived_check_with_one_event_and_effective_frn(n: int, cmax: float, auc: float) -> None:
    # pk.md §2: "one dose event at t=0, effective FRn = 0.54·(1+(N−1)·0.62)/N" gives 43.9/147, 73.0/254,
    # 102.2/361. Rounded to 0.1 ng/mL and 1 ng·h/mL.
    got_cmax, got_auc, _ = effective(n)
    assert got_cmax == pytest.approx(cmax, abs=0.06)
    assert got_auc == pytest.approx(auc, abs=0.6)


@pytest.mark.parametrize(
    ("n", "expected"), [(2, (66.9, 39.0, 16.8, 6.9, 1.4)), (3, (94.7, 55.9, 24.1, 9.8, 2.0))]
)
def test_pk_md_derived_concentrations_at_1_2_4_8_24_h(n: int, expected: tuple[float, ...]) -> None:
    _, _, res = effective(n)
    got = [res.at(60 * h) for h in (1, 2, 4, 8, 24)]
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=0.051)


def test_pk_md_derived_iv_and_oral() -> None:
    # pk.md §2: 28 mg IV over 40 min → Cmax 99.5 at 40 min; 84 mg oral → 25.8 at 86 min.
    iv = simulate(Regimen(Drug.ESKETAMINE, (iv_infusion(28.0, 40.0),)), M)
    assert iv.tmax_min == 40.0
    assert iv.cmax_ng_ml == pytest.approx(99.5, rel=0.01)
    po = simulate(Regimen(Drug.ESKETAMINE, (Dose(0.0, 84.0, Route.ORAL),)), M)
    assert po.cmax_ng_ml == pytest.approx(25.8, abs=0.06)
    assert po.tmax_min == pytest.approx(86, abs=1.0)


def test_two_devices_at_the_same_moment_equal_one_event_with_effective_frn() -> None:
    # Linear model: FRn·28 + 0.62·FRn·28 = 2·FRn_eff·28 with FRn_eff = 0.54·1.62/2 = 0.4374.
    t = np.arange(0.0, 600.0, 1.0)
    same_time = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((0.0, 0.0), 28.0),)), M, t)
    eff = replace(M, frn=0.54 * 1.62 / 2, frn_later_device_factor=1.0)
    single = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((0.0, 0.0), 28.0),)), eff, t)
    np.testing.assert_allclose(
        same_time.concentration_ng_ml, single.concentration_ng_ml, rtol=1e-10, atol=1e-9
    )


def test_each_device_at_its_actual_time_and_later_devices_get_the_decrement() -> None:
    # Devices at 0 and 47 min = device 1 alone + (a device with FRn × 0.62) given at 47 min.
    t = np.arange(0.0, 900.0, 0.5)
    both = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((47.0, 0.0), 28.0),)), M, t).concentration_ng_ml
    first = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((0.0,), 28.0),)), M, t).concentration_ng_ml
    later = replace(M, frn=M.frn * 0.62)
    second = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((47.0,), 28.0),)), later, t).concentration_ng_ml
    np.testing.assert_allclose(both, first + second, rtol=1e-10, atol=1e-10)


def test_irregular_device_spacing_changes_the_curve() -> None:
    regular = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(3),)), M)
    spread = simulate(Regimen(Drug.ESKETAMINE, (NasalSession((0.0, 15.0, 40.0), 28.0),)), M)
    assert spread.cmax_ng_ml < regular.cmax_ng_ml
    assert spread.auc_ng_h_ml == pytest.approx(regular.auc_ng_h_ml, rel=0.02)  # same dose, later tail


def matrix(covariates: Covariates) -> np.ndarray:
    built = build(M, Regimen(Drug.ESKETAMINE, (nasal_devices(2),)), covariates, {}, 1)
    per_hour: np.ndarray = built.system.matrix[0] * 60
    return per_hour


def test_age_over_60_lowers_hepatic_blood_flow() -> None:
    # States with nasal dosing: 0 nasal, 1 gut, 2 central, 3 Vp1, 4 Vp2, 5 liver, 6–7 noresketamine.
    # Age 70: Qh = 151 − 2.19·10 = 129.1 L/h → central→liver = 129.1/192 per h.
    assert matrix(Covariates(age_years=70))[5, 2] == pytest.approx(129.1 / 192)
    assert matrix(Covariates(age_years=60))[5, 2] == pytest.approx(151 / 192)
    assert matrix(Covariates())[5, 2] == pytest.approx(151 / 192)


def test_asian_and_japanese_covariates() -> None:
    # Asian: kel 1.11·0.36 = 0.3996/h; liver outflow = Qh/Vh + kel + kmet = 151/101 + 0.3996 + 2.77.
    a = matrix(Covariates(ancestry=Ancestry.ASIAN))
    assert -a[5, 5] == pytest.approx(151 / 101 + 0.3996 + 2.77)
    # noresketamine elimination: CLn 38·0.81 = 30.78 L/h over Vcn 70 L, plus Q3/Vcn = 26.1/70
    assert -a[6, 6] == pytest.approx(30.78 / 70 + 26.1 / 70)
    # Japanese: FRn 0.54·1.34 = 0.7236; first device 0.7236·28 = 20.2608 mg, second ×0.62 = 12.5617 mg.
    built = build(
        M, Regimen(Drug.ESKETAMINE, (nasal_devices(2),)), Covariates(ancestry=Ancestry.JAPANESE), {}, 1
    )
    amounts = [float(b.amount_mg[0]) for b in built.boluses]
    assert amounts == pytest.approx([20.2608, 12.56170])
    assert -built.system.matrix[0, 5, 5] * 60 == pytest.approx(
        151 / 101 + 0.3996 + 2.77
    )  # Japanese are Asian


def test_result_reports_noresketamine_and_model_site() -> None:
    res = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(2),)), M)
    assert res.metabolite_name == "noresketamine"
    assert res.metabolite_ng_ml is not None
    # pk.md §2 row 10: noresketamine Cmax 120 ng/mL (published Table 4 for 56 mg)
    assert float(res.metabolite_ng_ml.max()) == pytest.approx(120, rel=0.02)
    assert res.model.sample_site.value == "plasma, model-fitted"
    assert any("age not given" in n for n in res.notes)
