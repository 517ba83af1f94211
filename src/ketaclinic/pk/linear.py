"""Exact solution of linear, time-invariant compartment systems for many patients at once.

Every model in this package is linear between dosing events: dx/dt = A·x + u(t), where x holds the
drug amount (mg) in each compartment, A (1/min) the first-order transfer and elimination rates, and
u(t) the inputs (instant boluses and piecewise-constant zero-order rates). The solution is a sum of
exponentials. We diagonalise A = V·diag(λ)·V⁻¹ once per patient and work in modal coordinates
z = V⁻¹·x, where each mode evolves on its own:

    z(t) = z(t₀)·e^{λΔ} + r·Δ·φ₁(λΔ)                  (Δ = t − t₀, r = modal input rate)
    ∫z  = z(t₀)·Δ·φ₁(λΔ) + r·Δ²·φ₂(λΔ)                 (exact AUC)

with φ₁(x) = (eˣ−1)/x and φ₂(x) = (eˣ−1−x)/x², both evaluated without cancellation near x = 0.
This is the "ADVAN"-style state advance described in pk.md §5 (Abuhelwa 2015; stanpumpR
`advanceClosedForm0.R`), written for an arbitrary matrix so that the mammillary models and the
non-mammillary Perez-Ruixo model (liver compartment, metabolite, swallowed depot) share one exact
engine. Only the (few) dosing events are looped over in Python; the output times and the patients
are handled by numpy broadcasting.

Eigenvalues of these compartment systems are real (each reversible block satisfies detailed balance,
and depots/metabolites only feed forward). An absorption rate that coincides with a disposition
eigenvalue makes the eigenvector matrix singular; in that (measure-zero) case the outflow rates of
the declared depot states are scaled by 1 + 1e-6 (a change far below any parameter's precision),
which keeps the result within about 1e-6 of the exact limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

_GAP_TOLERANCE: Final = 1e-7  # relative gap below which two eigenvalues count as coincident
_DEPOT_NUDGE: Final = 1e-6  # relative change applied to a depot's outflow to separate them
_CHUNK_ELEMENTS: Final = 2_000_000  # patients·modes·times per work chunk (bounds memory)


class SolverError(ValueError):
    """The linear system cannot be solved exactly (e.g. a defective matrix)."""


@dataclass(frozen=True)
class LinearSystem:
    """A batch of linear compartment systems, one per virtual patient.

    matrix: (P, n, n) rates in 1/min; column j holds the flows out of compartment j.
    outputs: (P, m, n); output k = outputs[p, k] · x (e.g. 1000/V1 gives ng/mL from mg).
    depot_states: compartments that only empty (absorption depots); their outflow may be nudged by
        1e-6 if their rate coincides with another eigenvalue.
    """

    matrix: FloatArray
    outputs: FloatArray
    depot_states: tuple[int, ...] = ()

    @property
    def n_patients(self) -> int:
        return int(self.matrix.shape[0])

    @property
    def n_states(self) -> int:
        return int(self.matrix.shape[1])


@dataclass(frozen=True)
class BolusInput:
    """An instant input of amount_mg (one value per patient) into a compartment."""

    time_min: float
    state: int
    amount_mg: FloatArray


@dataclass(frozen=True)
class RateInput:
    """A constant zero-order input (mg/min, one value per patient) on [start_min, end_min)."""

    start_min: float
    end_min: float
    state: int
    rate_mg_per_min: FloatArray


@dataclass(frozen=True, eq=False)
class LinearSolution:
    """Outputs (P, m, T) at times_min, and exact integrals ∫₋∞ᵗ output dt (P, m, K) at integral_times_min."""

    times_min: FloatArray
    values: FloatArray
    integral_times_min: FloatArray
    integrals: FloatArray


def _phi1(x: FloatArray) -> FloatArray:
    """(eˣ − 1)/x, accurate for small |x|."""
    small = np.abs(x) < 1e-5
    safe = np.where(small, 1.0, x)
    out: FloatArray = np.where(small, 1.0 + x / 2.0 + x * x / 6.0, np.expm1(x) / safe)
    return out


def _phi2(x: FloatArray) -> FloatArray:
    """(eˣ − 1 − x)/x², accurate for small |x|."""
    small = np.abs(x) < 1e-3
    safe = np.where(small, 1.0, x)
    series = 0.5 + x / 6.0 + x * x / 24.0 + x * x * x / 120.0
    out: FloatArray = np.where(small, series, (np.expm1(x) - x) / (safe * safe))
    return out


def _coincident(lam: FloatArray) -> npt.NDArray[np.bool_]:
    """Per patient: True if two eigenvalues are closer than the relative tolerance."""
    srt = np.sort(lam, axis=1)
    gaps = np.diff(srt, axis=1)
    scale = np.maximum(np.abs(srt[:, 1:]), np.abs(srt[:, :-1]))
    scale = np.where(scale == 0.0, 1.0, scale)
    bad: npt.NDArray[np.bool_] = np.any(gaps <= _GAP_TOLERANCE * scale, axis=1)
    return bad


def _eigen(matrix: FloatArray) -> tuple[FloatArray, FloatArray]:
    values, vectors = np.linalg.eig(matrix)
    if np.iscomplexobj(values):
        if np.max(np.abs(values.imag)) > 1e-9 * max(1.0, float(np.max(np.abs(values.real)))):
            raise SolverError("the compartment matrix has complex eigenvalues; the model is not supported")
        values = values.real
        vectors = vectors.real
    return np.asarray(values, dtype=np.float64), np.asarray(vectors, dtype=np.float64)


def decompose(system: LinearSystem) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Eigenvalues λ (P, n), eigenvectors V (P, n, n) and V⁻¹ (P, n, n), separating coincident ones."""
    matrix = np.array(system.matrix, dtype=np.float64)
    lam, vec = _eigen(matrix)
    bad = _coincident(lam)
    if np.any(bad):
        if not system.depot_states:
            raise SolverError("the model has repeated eigenvalues and no depot to separate them")
        for k, state in enumerate(system.depot_states):
            matrix[bad, :, state] *= 1.0 + _DEPOT_NUDGE * (k + 1)
        lam_bad, vec_bad = _eigen(matrix[bad])
        if np.any(_coincident(lam_bad)):
            raise SolverError("the model has repeated eigenvalues that could not be separated")
        lam[bad] = lam_bad
        vec[bad] = vec_bad
    inv = np.asarray(np.linalg.inv(vec), dtype=np.float64)
    return lam, vec, inv


@dataclass(frozen=True, eq=False)
class _Modal:
    lam: FloatArray  # (P, n)
    gain: FloatArray  # (P, m, n)
    breaks: FloatArray  # (M,)
    z_start: FloatArray  # (P, n, M) modal state just after the inputs at each break
    rate: FloatArray  # (P, n, M) modal input rate on [break, next break)
    i_start: FloatArray  # (P, n, M) modal cumulative integral at each break
    has_rate: tuple[bool, ...]  # per interval: any input rate at all
    nonzero: bool  # every eigenvalue ≠ 0, so the one-exponential forms apply


def _advance(system: LinearSystem, boluses: tuple[BolusInput, ...], rates: tuple[RateInput, ...]) -> _Modal:
    n_pat, n_states = system.n_patients, system.n_states
    lam, vec, inv = decompose(system)
    gain = np.matmul(system.outputs, vec)
    breaks = sorted({b.time_min for b in boluses} | {r.start_min for r in rates} | {r.end_min for r in rates})
    jumps = [inv[:, :, b.state] * np.asarray(b.amount_mg, dtype=np.float64)[:, None] for b in boluses]
    modal_rates = [
        inv[:, :, r.state] * np.asarray(r.rate_mg_per_min, dtype=np.float64)[:, None] for r in rates
    ]
    nonzero = bool(np.all(np.abs(lam) > 1e-300))
    inv_lam = 1.0 / lam if nonzero else np.zeros_like(lam)
    z = np.zeros((n_pat, n_states))
    integral = np.zeros((n_pat, n_states))
    rate = np.zeros((n_pat, n_states))
    zs: list[FloatArray] = []
    rs: list[FloatArray] = []
    ins: list[FloatArray] = []
    has_rate: list[bool] = []
    active = False
    for m, t0 in enumerate(breaks):
        if m > 0:
            dt = t0 - breaks[m - 1]
            x = lam * dt
            if nonzero:
                em1 = np.expm1(x)
                p1 = em1 * inv_lam  # (e^{λΔ} − 1)/λ
                integral = integral + z * p1
                if active:
                    integral = integral + rate * (p1 - dt) * inv_lam
                z = z + z * em1 + (rate * p1 if active else 0.0)
            else:
                p1 = dt * _phi1(x)
                integral = integral + z * p1 + rate * (dt * dt) * _phi2(x)
                z = z * np.exp(x) + rate * p1
        for b, jump in zip(boluses, jumps, strict=True):
            if b.time_min == t0:
                z = z + jump
        live = [mr for r, mr in zip(rates, modal_rates, strict=True) if r.start_min <= t0 < r.end_min]
        active = bool(live)
        rate = sum(live[1:], live[0]) if live else np.zeros((n_pat, n_states))
        zs.append(z)
        rs.append(rate)
        ins.append(integral)
        has_rate.append(active)
    stack = (lambda arrs: np.stack(arrs, axis=2)) if breaks else (lambda _a: np.zeros((n_pat, n_states, 0)))
    return _Modal(
        lam,
        gain,
        np.asarray(breaks, dtype=np.float64),
        stack(zs),
        stack(rs),
        stack(ins),
        tuple(has_rate),
        nonzero,
    )


def _evaluate(modal: _Modal, times: FloatArray, integral: bool) -> FloatArray:
    """Outputs (or their integrals) at arbitrary times: sort the times so each inter-event interval
    is one contiguous block, then broadcast over patients × modes × block times."""
    n_pat, n_out, n_states = modal.gain.shape
    if modal.breaks.size == 0 or times.size == 0:
        return np.zeros((n_pat, n_out, times.size))
    order = np.argsort(times, kind="stable")
    ts = times[order]
    idx = np.searchsorted(modal.breaks, ts, side="right") - 1
    bounds = np.searchsorted(idx, np.arange(modal.breaks.size + 1), side="left")
    # With λ ≠ 0 the value is (z₀ + r/λ)·e^{λΔ} − r/λ: one exponential per element and one matrix
    # product per interval. A zero eigenvalue (a non-eliminating sink) needs the φ₁ form.
    fast = modal.nonzero and not integral
    if fast:
        steady = modal.rate / modal.lam[:, :, None]  # (P, n, M)
        # per interval, contiguous: weights (M, P, m, n) and offsets (M, P, m, 1)
        weights = np.ascontiguousarray(
            np.moveaxis(modal.gain[:, :, :, None] * (modal.z_start + steady)[:, None, :, :], 3, 0)
        )
        offsets = np.ascontiguousarray(np.moveaxis(np.matmul(modal.gain, steady), 2, 0))[..., None]
    chunk = max(1, _CHUNK_ELEMENTS // max(1, n_states * ts.size))
    sorted_out = np.zeros((n_pat, n_out, ts.size))
    for lo in range(0, n_pat, chunk):
        hi = min(n_pat, lo + chunk)
        lam = modal.lam[lo:hi, :, None]
        for m in range(modal.breaks.size):
            b0, b1 = int(bounds[m]), int(bounds[m + 1])
            if b1 <= b0:
                continue
            dt = ts[b0:b1] - modal.breaks[m]
            x = lam * dt
            if fast:
                np.exp(x, out=x)
                block = np.matmul(weights[m, lo:hi], x)
                if modal.has_rate[m]:
                    block -= offsets[m, lo:hi]
            else:
                z0 = modal.z_start[lo:hi, :, m, None]
                p1 = dt * _phi1(x)
                if integral:
                    modal_t = modal.i_start[lo:hi, :, m, None] + z0 * p1
                    if modal.has_rate[m]:
                        modal_t = modal_t + modal.rate[lo:hi, :, m, None] * (dt * dt) * _phi2(x)
                else:
                    modal_t = z0 * np.exp(x) + modal.rate[lo:hi, :, m, None] * p1
                block = np.matmul(modal.gain[lo:hi], modal_t)
            sorted_out[lo:hi, :, b0:b1] = block
    if np.all(order[1:] > order[:-1]):  # times were already in order
        return sorted_out
    out = np.empty_like(sorted_out)
    out[:, :, order] = sorted_out
    return out


def solve_linear(
    system: LinearSystem,
    boluses: tuple[BolusInput, ...],
    rates: tuple[RateInput, ...],
    times_min: FloatArray,
    integral_times_min: FloatArray | None = None,
) -> LinearSolution:
    """Outputs at each time (all states are zero before the first input), and their exact integrals
    from the first input up to each of integral_times_min."""
    times = np.asarray(times_min, dtype=np.float64)
    itimes = np.asarray(integral_times_min if integral_times_min is not None else [], dtype=np.float64)
    modal = _advance(system, boluses, rates)
    return LinearSolution(times, _evaluate(modal, times, False), itimes, _evaluate(modal, itimes, True))
