"""The exact linear solver against hand-computed closed forms and a tight ODE integration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ketaclinic.pk.linear import BolusInput, LinearSystem, RateInput, SolverError, solve_linear
from ketaclinic.pk.models import KAMP_2020, PEREZ_RUIXO_2021
from ketaclinic.pk.odecheck import solve_ode
from ketaclinic.pk.regimen import Covariates, Drug, Regimen, iv_infusion, nasal_devices
from ketaclinic.pk.systems import build


def one_cmt(v_l: float = 10.0, k: float = 0.1, ka: float | None = None) -> LinearSystem:
    """1-cmt (state 0 central) with an optional depot (state 1); output in ng/mL."""
    n = 1 if ka is None else 2
    a = np.zeros((1, n, n))
    a[0, 0, 0] = -k
    if ka is not None:
        a[0, 1, 1] = -ka
        a[0, 0, 1] = ka
    out = np.zeros((1, 1, n))
    out[0, 0, 0] = 1000.0 / v_l
    return LinearSystem(a, out, (1,) if ka is not None else ())


def one(x: float) -> np.ndarray:
    return np.array([x])


def test_bolus_matches_exponential_and_exact_auc() -> None:
    # 100 mg into V = 10 L, k = 0.1/min: C = 10 mg/L · e^{−0.1t} = 10000·e^{−0.1t} ng/mL.
    # C(10) = 10000/e = 3678.794; ∫0..10 = 10000·(1 − e^{−1})/0.1 = 63212.056 ng·min/mL.
    sol = solve_linear(
        one_cmt(), (BolusInput(0.0, 0, one(100.0)),), (), np.array([0.0, 10.0]), np.array([10.0])
    )
    assert sol.values[0, 0, 0] == pytest.approx(10000.0, rel=1e-12)
    assert sol.values[0, 0, 1] == pytest.approx(10000.0 / math.e, rel=1e-12)
    assert sol.integrals[0, 0, 0] == pytest.approx(63212.0558828558, rel=1e-12)


def test_zero_order_infusion_matches_closed_form() -> None:
    # R = 2 mg/min for 30 min, CL = k·V = 1 L/min: C(30) = 2000·(1 − e^{−3}) = 1900.4259;
    # C(40) = C(30)·e^{−1} = 699.1220.
    sol = solve_linear(one_cmt(), (), (RateInput(0.0, 30.0, 0, one(2.0)),), np.array([30.0, 40.0]))
    assert sol.values[0, 0, 0] == pytest.approx(2000 * (1 - math.exp(-3)), rel=1e-12)
    assert sol.values[0, 0, 1] == pytest.approx(2000 * (1 - math.exp(-3)) * math.exp(-1), rel=1e-12)


def test_first_order_absorption_with_ka_equal_to_k_uses_the_limit_form() -> None:
    # ka = k = 0.1: C = D·k·t·e^{−kt}/V (pk.md §5). t = 10: 100·0.1·10·e^{−1}/10 mg/L = 3678.794 ng/mL.
    # The coincident eigenvalues are separated by a 1e-6 relative nudge, so agreement is ~1e-6.
    sol = solve_linear(one_cmt(ka=0.1), (BolusInput(0.0, 1, one(100.0)),), (), np.array([10.0]))
    assert sol.values[0, 0, 0] == pytest.approx(1000 * 100 * 0.1 * 10 * math.exp(-1) / 10, rel=1e-5)


def test_first_order_absorption_general_form() -> None:
    # ka = 0.3, k = 0.1: C = D·ka/(V(ka−k))·(e^{−kt} − e^{−ka·t}) = 100·0.3/(10·0.2)·(e^{−1} − e^{−3}) mg/L
    # at t = 10 → 15·(0.367879 − 0.049787) = 4.771380 mg/L.
    sol = solve_linear(one_cmt(ka=0.3), (BolusInput(0.0, 1, one(100.0)),), (), np.array([10.0]))
    assert sol.values[0, 0, 0] == pytest.approx(1000 * 15 * (math.exp(-1) - math.exp(-3)), rel=1e-12)


def kamp_system() -> LinearSystem:
    reg = Regimen(Drug.KETAMINE, (iv_infusion(35.0, 40.0),))
    return build(KAMP_2020, reg, Covariates(weight_kg=70.0), {}, 1).system


def test_superposition_two_doses_equal_sum_of_shifted_single_doses() -> None:
    sys = kamp_system()
    t = np.linspace(0, 600, 1201)
    both = solve_linear(sys, (BolusInput(0.0, 0, one(20.0)), BolusInput(30.0, 0, one(10.0))), (), t).values
    first = solve_linear(sys, (BolusInput(0.0, 0, one(20.0)),), (), t).values
    second_at_zero = solve_linear(sys, (BolusInput(0.0, 0, one(10.0)),), (), t - 30.0).values
    np.testing.assert_allclose(both, first + second_at_zero, rtol=1e-11, atol=1e-9)


def test_rate_changes_equal_sum_of_separate_infusions() -> None:
    # 1 mg/min for 0–10, 3 mg/min for 10–25, paused 25–30, 2 mg/min for 30–40 (total 75 mg).
    sys = kamp_system()
    t = np.linspace(0, 300, 601)
    pieces = ((0.0, 10.0, 1.0), (10.0, 25.0, 3.0), (30.0, 40.0, 2.0))
    together = solve_linear(sys, (), tuple(RateInput(a, b, 0, one(r)) for a, b, r in pieces), t)
    separate = sum(solve_linear(sys, (), (RateInput(a, b, 0, one(r)),), t).values for a, b, r in pieces)
    np.testing.assert_allclose(together.values, separate, rtol=1e-11, atol=1e-9)


def test_bolus_equals_a_very_short_infusion() -> None:
    # 35 mg as a bolus vs over 1e-4 min: after 1 min the curves differ by O(Δ·λmax) ≈ 1e-4.
    sys = kamp_system()
    t = np.linspace(1, 240, 240)
    bolus = solve_linear(sys, (BolusInput(0.0, 0, one(35.0)),), (), t).values
    short = solve_linear(sys, (), (RateInput(0.0, 1e-4, 0, one(35.0 / 1e-4)),), t).values
    np.testing.assert_allclose(short, bolus, rtol=1e-4)


def with_sink(system: LinearSystem) -> LinearSystem:
    """Add a compartment that collects everything eliminated; output = total amount in all states."""
    a = system.matrix[0]
    n = a.shape[0]
    big = np.zeros((1, n + 1, n + 1))
    big[0, :n, :n] = a
    big[0, n, :n] = -a.sum(axis=0)  # what leaves the system from each compartment
    out = np.ones((1, 1, n + 1))
    return LinearSystem(big, out, system.depot_states)


def test_mass_balance_esketamine_nasal_dose() -> None:
    # One 28-mg device: FRn·28 to the nose at once, (1 − FRn)·Fgut·28 swallowed over 0.53 h.
    # After 31.8 min everything has entered: (0.54 + 0.46·0.64)·28 = 0.8344·28 = 23.3632 mg.
    built = build(PEREZ_RUIXO_2021, Regimen(Drug.ESKETAMINE, (nasal_devices(1),)), Covariates(), {}, 1)
    t = np.array([10.0, 31.8, 60.0, 600.0, 1440.0])
    total = solve_linear(with_sink(built.system), built.boluses, built.rates, t).values[0, 0]
    # at 10 min: 15.12 mg nasal + 10/31.8 of the swallowed 8.2432 mg = 15.12 + 2.5922 = 17.7122 mg
    assert total[0] == pytest.approx(15.12 + 8.2432 * 10 / 31.8, rel=1e-9)
    np.testing.assert_allclose(total[1:], 23.3632, rtol=1e-9)


def test_matches_lsoda_for_the_esketamine_model() -> None:
    built = build(PEREZ_RUIXO_2021, Regimen(Drug.ESKETAMINE, (nasal_devices(3),)), Covariates(), {}, 1)
    t = np.arange(0.0, 1441.0, 1.0)
    exact = solve_linear(built.system, built.boluses, built.rates, t).values[0]
    ode = solve_ode(built.system, built.boluses, built.rates, t)
    meaningful = exact > 1e-3 * exact.max(axis=1, keepdims=True)
    rel = np.abs(exact - ode)[meaningful] / exact[meaningful]
    assert rel.max() < 1e-6


def test_complex_eigenvalues_are_rejected() -> None:
    # A rotation-like matrix is not a compartment system.
    a = np.array([[[-0.1, 1.0], [-1.0, -0.1]]])
    with pytest.raises(SolverError):
        solve_linear(
            LinearSystem(a, np.ones((1, 1, 2))), (BolusInput(0.0, 0, one(1.0)),), (), np.array([1.0])
        )


def test_state_is_zero_before_the_first_input() -> None:
    sol = solve_linear(one_cmt(), (BolusInput(5.0, 0, one(100.0)),), (), np.array([0.0, 4.999, 5.0]))
    assert sol.values[0, 0].tolist()[:2] == [0.0, 0.0]
    assert sol.values[0, 0, 2] == pytest.approx(10000.0)


def test_many_patients_at_once_equal_one_by_one() -> None:
    a = np.zeros((3, 1, 1))
    a[:, 0, 0] = [-0.1, -0.2, -0.05]
    out = np.full((3, 1, 1), 100.0)
    sys = LinearSystem(a, out)
    t = np.array([0.0, 3.0, 7.0])
    sol = solve_linear(sys, (BolusInput(0.0, 0, np.array([1.0, 2.0, 3.0])),), (), t)
    # patient 2: 3 mg · 100 · e^{−0.05·7} = 300·0.704688 = 211.406
    assert sol.values[2, 0, 2] == pytest.approx(300 * math.exp(-0.35), rel=1e-12)
    assert sol.values[1, 0, 1] == pytest.approx(200 * math.exp(-0.6), rel=1e-12)
