"""Benchmark: exact closed-form PK (ketaclinic.pk) against scipy LSODA on the same problems.

    python bench/pk.py            # 1,000 virtual patients; LSODA timed on 25 of them and scaled
    python bench/pk.py --quick    # 200 patients; LSODA on 5

Problems (24 h at 1-min resolution = 1,441 output times per patient):
  1. racemic ketamine 0.5 mg/kg over 40 min, 70 kg, Kamp 2020 with the default population variability;
  2. esketamine 84 mg intranasal (3 devices 5 min apart), Perez-Ruixo 2021 with its published IIV.
Reports the speed ratio, the largest relative difference between the two methods over points where
the concentration is meaningfully above 0 (> 0.1 % of that patient's peak), and the time for a
single typical curve.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ketaclinic.pk.linear import solve_linear
from ketaclinic.pk.models import KAMP_2020, PEREZ_RUIXO_2021, PKModel
from ketaclinic.pk.odecheck import solve_ode
from ketaclinic.pk.population import Population, sample_etas
from ketaclinic.pk.regimen import Covariates, Drug, Regimen, iv_infusion, nasal_devices
from ketaclinic.pk.solve import simulate
from ketaclinic.pk.systems import build

TIMES = np.arange(0.0, 24 * 60 + 1.0, 1.0)
RTOL, ATOL = 1e-10, 1e-14  # LSODA tolerances (amounts in mg)
MEANINGFUL = 1e-3  # compare only where C > 0.1 % of the patient's own peak


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_case(
    label: str, model: PKModel, regimen: Regimen, covariates: Covariates, n: int, n_ode: int
) -> dict[str, float]:
    etas = sample_etas(model.variability, Population(n=n, seed=2024))

    def closed_form() -> np.ndarray:
        built = build(model, regimen, covariates, etas, n)
        return solve_linear(built.system, built.boluses, built.rates, TIMES).values

    t_closed = best_of(closed_form, 3)
    exact = closed_form()
    built = build(model, regimen, covariates, etas, n)
    import scipy.integrate  # noqa: F401  (import outside the timed region)

    t0 = time.perf_counter()
    ode = np.stack(
        [solve_ode(built.system, built.boluses, built.rates, TIMES, p, RTOL, ATOL) for p in range(n_ode)]
    )
    t_ode_subset = time.perf_counter() - t0
    t_ode = t_ode_subset / n_ode * n
    ex = exact[:n_ode, 0]
    od = ode[:, 0]
    mask = ex > MEANINGFUL * ex.max(axis=1, keepdims=True)
    rel = float(np.max(np.abs(ex - od)[mask] / ex[mask]))

    typical = build(model, regimen, covariates, {}, 1)
    single_core = best_of(lambda: solve_linear(typical.system, typical.boluses, typical.rates, TIMES), 50)

    def single_full() -> object:
        b = build(model, regimen, covariates, {}, 1)
        return solve_linear(b.system, b.boluses, b.rates, TIMES)

    single_build = best_of(single_full, 50)
    single_sim = statistics.median(
        best_of(lambda: simulate(regimen, model, TIMES, covariates=covariates), 1) for _ in range(30)
    )
    print(f"\n{label}")
    print(f"  closed form, {n} patients x {TIMES.size} times: {t_closed * 1e3:9.1f} ms")
    print(
        f"  LSODA (rtol {RTOL:g}, atol {ATOL:g}), timed on {n_ode} patients ({t_ode_subset:.2f} s) and scaled "
        f"to {n}: {t_ode:9.1f} s"
    )
    print(f"  speed ratio (LSODA / closed form): {t_ode / t_closed:,.0f}x")
    print(f"  largest relative difference (C > {MEANINGFUL:g} x own peak, {n_ode} patients): {rel:.1e}")
    print(
        f"  single curve ({TIMES.size} times): solver {single_core * 1e3:.3f} ms, build + solve "
        f"{single_build * 1e3:.3f} ms, simulate() with metrics {single_sim * 1e3:.3f} ms"
    )
    return {"ratio": t_ode / t_closed, "rel": rel, "single_ms": single_build * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/pk.py", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 patients, LSODA on 5")
    args = parser.parse_args(argv)
    n, n_ode = (200, 5) if args.quick else (1000, 25)
    print(f"pk benchmark: {n} virtual patients, 24 h at 1-min resolution; numpy {np.__version__}")
    results = [
        run_case(
            "Ketamine 0.5 mg/kg IV over 40 min, 70 kg, Kamp 2020",
            KAMP_2020,
            Regimen(Drug.KETAMINE, (iv_infusion(35.0, 40.0),)),
            Covariates(weight_kg=70.0),
            n,
            n_ode,
        ),
        run_case(
            "Esketamine 84 mg intranasal (devices at 0/5/10 min), Perez-Ruixo 2021",
            PEREZ_RUIXO_2021,
            Regimen(Drug.ESKETAMINE, (nasal_devices(3),)),
            Covariates(),
            n,
            n_ode,
        ),
    ]
    ok = all(r["ratio"] >= 100 and r["rel"] <= 1e-6 and r["single_ms"] < 1.0 for r in results)
    print(f"\ntargets (>=100x, rel. diff <= 1e-6, single curve < 1 ms): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
