"""Deriving a first-order absorption rate from a published time to peak.

For racemic IM, sublingual, oral and intranasal ketamine no absorption rate constant is published
in the reference (pk.md §1d), only F and Tmax. We therefore choose ka so that the typical patient's
curve (first-order input into the chosen disposition model) peaks exactly at the published Tmax.
This is a configurable default, flagged as unconfirmed in every result that uses it.

With unit-bolus response C(t) = Σ Aᵢ e^{−μᵢt}, a first-order input gives (pk.md §5)
    C(t) ∝ Σ Aᵢ (e^{−μᵢt} − e^{−ka·t}) / (ka − μᵢ),
whose slope at t = Tmax changes sign once as ka grows; bisection on log ka finds the root.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .linear import FloatArray, LinearSystem, decompose


def _slope(mu: FloatArray, coef: FloatArray, ka: float, t: float) -> float:
    diff = ka - mu
    near = np.abs(diff) < 1e-12 * max(ka, 1e-300)
    diff = np.where(near, 1e-12 * ka, diff)
    return float(np.sum(coef * (ka * np.exp(-ka * t) - mu * np.exp(-mu * t)) / diff))


@lru_cache(maxsize=256)
def ka_for_tmax(
    v1_l: float, cl_l_min: float, q_l_min: tuple[float, ...], vp_l: tuple[float, ...], tmax_min: float
) -> float:
    """Absorption rate (1/min) that puts the peak of a mammillary model's curve at tmax_min."""
    n = 1 + len(q_l_min)
    a = np.zeros((1, n, n))
    a[0, 0, 0] = -(cl_l_min + sum(q_l_min)) / v1_l
    for i, (q, v) in enumerate(zip(q_l_min, vp_l, strict=True), start=1):
        a[0, 0, i] = q / v
        a[0, i, i] = -q / v
        a[0, i, 0] = q / v1_l
    out = np.zeros((1, 1, n))
    out[0, 0, 0] = 1.0 / v1_l
    lam, vec, inv = decompose(LinearSystem(a, out))
    mu = -lam[0]
    coef = (out[0, 0] @ vec[0]) * inv[0, :, 0]  # unit-bolus coefficients Aᵢ
    lo, hi = np.log(1e-5), np.log(1e2)
    s_lo = _slope(mu, coef, float(np.exp(lo)), tmax_min)
    s_hi = _slope(mu, coef, float(np.exp(hi)), tmax_min)
    if not (s_lo > 0 > s_hi):
        raise ValueError(f"no absorption rate gives a peak at {tmax_min} min for this model")
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _slope(mu, coef, float(np.exp(mid)), tmax_min) > 0:
            lo = mid
        else:
            hi = mid
    return float(np.exp(0.5 * (lo + hi)))
