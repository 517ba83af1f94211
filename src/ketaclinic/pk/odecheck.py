"""Reference ODE integration of the same linear systems (for tests and bench/pk.py only).

Integrates dx/dt = A·x + u(t) with scipy's LSODA piece by piece between input events, applying
boluses as jumps, so that it sees exactly the problem the closed form solves. Needs scipy, which is
a development dependency; it is imported lazily so the package itself does not require it.
"""

from __future__ import annotations

import numpy as np

from .linear import BolusInput, FloatArray, LinearSystem, RateInput


def solve_ode(
    system: LinearSystem,
    boluses: tuple[BolusInput, ...],
    rates: tuple[RateInput, ...],
    times_min: FloatArray,
    patient: int = 0,
    rtol: float = 1e-10,
    atol: float = 1e-14,
) -> FloatArray:
    """Outputs (m, T) for one patient of the batch."""
    from scipy.integrate import solve_ivp

    a = system.matrix[patient]
    c = system.outputs[patient]
    n = a.shape[0]
    times = np.asarray(times_min, dtype=np.float64)
    events = sorted({b.time_min for b in boluses} | {r.start_min for r in rates} | {r.end_min for r in rates})
    out = np.zeros((c.shape[0], times.size))
    if not events:
        return out
    x = np.zeros(n)
    edges = [*events, max(float(times.max()), events[-1]) + 1.0]
    for k, t0 in enumerate(events):
        for b in boluses:
            if b.time_min == t0:
                x[b.state] += float(np.asarray(b.amount_mg)[patient])
        u = np.zeros(n)
        for r in rates:
            if r.start_min <= t0 < r.end_min:
                u[r.state] += float(np.asarray(r.rate_mg_per_min)[patient])
        t1 = edges[k + 1]
        inside = (times >= t0) & (times < t1) if k + 1 < len(events) else times >= t0
        t_eval = times[inside]
        sol = solve_ivp(
            lambda _t, y, u=u: a @ y + u,
            (t0, t1),
            x,
            method="LSODA",
            rtol=rtol,
            atol=atol,
            t_eval=np.concatenate([t_eval, [t1]]),
            jac=lambda _t, _y: a,
        )
        out[:, inside] = c @ sol.y[:, :-1]
        x = sol.y[:, -1].copy()
    return out
