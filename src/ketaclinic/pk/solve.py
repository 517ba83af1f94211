"""simulate(): the one entry point the app calls.

    result = simulate(Regimen(Drug.KETAMINE, (iv_infusion(35, 40),)), "kamp2020",
                      covariates=Covariates(weight_kg=70), population=Population(n=1000, seed=1))

The typical patient (all random effects zero) gives the headline curve and numbers; a population,
if asked for, adds 5th/50th/95th percentile bands. Every result names the model, its source and
whether it predicts arterial, venous or "plasma, model-fitted" concentrations, and lists every
unconfirmed default it relied on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .errors import PKValidationError, raise_if_errors
from .linear import FloatArray, LinearSystem, solve_linear
from .metrics import Threshold, default_threshold, exposure
from .models import DEFAULT_MODEL, MODELS, MammillaryModel, PerezRuixoModel, PKModel, SampleSite, get_model
from .population import Population, percentile_bands, sample_etas, unconfirmed_variability
from .regimen import Covariates, Dose, Drug, Infusion, NasalSession, Regimen, Route
from .systems import build

DEFAULT_STEP_MIN = 0.5
MIN_HORIZON_MIN = 24 * 60.0  # AUC0–24 h, as in Perez-Ruixo Table 4
TAIL_AFTER_LAST_MIN = 12 * 60.0
MAX_GRID_POINTS = 200_000


@dataclass(frozen=True)
class ModelInfo:
    key: str
    name: str
    drug: Drug
    sample_site: SampleSite
    source: str
    fitted_population: str


@dataclass(frozen=True)
class Spread:
    """5th, 50th and 95th percentile of a per-patient quantity."""

    p5: float
    p50: float
    p95: float


@dataclass(frozen=True, eq=False)
class PopulationBands:
    n: int
    seed: int
    p5_ng_ml: FloatArray
    p50_ng_ml: FloatArray
    p95_ng_ml: FloatArray
    cmax_ng_ml: Spread
    tmax_min: Spread
    auc_ng_h_ml: Spread
    time_above_threshold_min: Spread
    fraction_reaching_threshold: float
    fraction_above_threshold_at_end: float
    falls_below_threshold_min: Spread | None  # among patients who reached it and fell below in time


@dataclass(frozen=True, eq=False)
class SimulationResult:
    model: ModelInfo
    regimen: Regimen
    covariates: Covariates
    times_min: FloatArray
    concentration_ng_ml: FloatArray  # typical patient, parent drug
    metabolite_name: str | None
    metabolite_ng_ml: FloatArray | None
    cmax_ng_ml: float
    tmax_min: float
    auc_ng_h_ml: float  # exact, over auc_window_min
    auc_window_min: tuple[float, float]
    threshold: Threshold
    time_above_threshold_min: float
    falls_below_threshold_min: float | None  # None: never reached, or still above at the end
    reaches_threshold: bool
    above_threshold_at_end: bool
    bands: PopulationBands | None
    unconfirmed: tuple[str, ...]
    notes: tuple[str, ...]

    def at(self, time_min: float) -> float:
        """Typical concentration at a time (exact on grid points, linear in between)."""
        self._check_inside(time_min)
        return float(np.interp(time_min, self.times_min, self.concentration_ng_ml))

    def _check_inside(self, time_min: float) -> None:
        if not (self.times_min[0] <= time_min <= self.times_min[-1]):
            raise ValueError(
                f"{time_min:g} min is outside the simulated {self.times_min[0]:g}–{self.times_min[-1]:g} min"
            )

    def band_at(self, time_min: float) -> Spread | None:
        if self.bands is None:
            return None
        self._check_inside(time_min)
        b = self.bands
        return Spread(
            *(float(np.interp(time_min, self.times_min, a)) for a in (b.p5_ng_ml, b.p50_ng_ml, b.p95_ng_ml))
        )


def resolve_model(model: PKModel | str | None, drug: Drug) -> PKModel:
    if model is None:
        return MODELS[DEFAULT_MODEL[drug]]
    if isinstance(model, str):
        try:
            return get_model(model)
        except KeyError:
            known = ", ".join(sorted(MODELS))
            raise PKValidationError({"model": f"unknown model '{model}' (known: {known})"}) from None
    return model


def _route_list(model: PKModel) -> str:
    return ", ".join(sorted(r.value for r in model.routes))


def validate_inputs(
    regimen: Regimen,
    model: PKModel,
    covariates: Covariates,
    population: Population | None,
    threshold_ng_ml: float | None,
) -> dict[str, str]:
    """Every problem with the inputs, by field."""
    errors: dict[str, str] = {}
    try:
        regimen.validate()
    except PKValidationError as exc:
        errors.update(exc.errors)
    errors.update(covariates.validate())
    if population is not None:
        errors.update(population.validate())
    if threshold_ng_ml is not None and not (math.isfinite(threshold_ng_ml) and threshold_ng_ml > 0):
        errors["threshold"] = "the threshold must be a concentration above 0 ng/mL"
    if model.drug is not regimen.drug:
        errors["model"] = (
            f"{model.name} is a {model.drug.value} model; the regimen gives {regimen.drug.value}"
        )
        return errors
    bad_routes = sorted(r.value for r in regimen.routes - model.routes)
    if bad_routes:
        errors["route"] = (
            f"{regimen.drug.value} cannot be simulated by the {', '.join(bad_routes)} route with "
            f"{model.name} "
            f"(available: {_route_list(model)})"
        )
    for i, ev in enumerate(regimen.events):
        if isinstance(ev, Dose) and ev.route is Route.INTRANASAL:
            errors[f"events[{i}].route"] = (
                "record intranasal doses as a nasal session with each device's time"
            )
        if isinstance(model, PerezRuixoModel) and isinstance(ev, NasalSession):
            if ev.mg_per_device != model.mg_per_device:
                errors[f"events[{i}].mg_per_device"] = (
                    f"esketamine nasal devices hold {model.mg_per_device:g} mg each "
                    f"(got {ev.mg_per_device:g})"
                )
    if isinstance(model, MammillaryModel) and covariates.weight_kg is None and "weight_kg" not in errors:
        errors["weight_kg"] = f"{model.name} scales with body weight: give the patient's weight in kg"
    return errors


def _default_grid(regimen: Regimen, extra: Sequence[float], horizon_min: float | None) -> FloatArray:
    start = min(0.0, regimen.first_event_min)
    end = (
        horizon_min
        if horizon_min is not None
        else max(
            regimen.first_event_min + MIN_HORIZON_MIN,
            regimen.last_event_min + TAIL_AFTER_LAST_MIN,
            *(t + DEFAULT_STEP_MIN for t in extra),
        )
    )
    if (end - start) / DEFAULT_STEP_MIN > MAX_GRID_POINTS:
        raise_if_errors(
            {"horizon_min": f"the simulated time is too long (at most {MAX_GRID_POINTS // 120} h)"}
        )
    grid = np.arange(start, end + DEFAULT_STEP_MIN / 2, DEFAULT_STEP_MIN)
    marks: list[float] = list(extra)
    for ev in regimen.events:
        if isinstance(ev, Dose):
            marks.append(ev.time_min)
        elif isinstance(ev, Infusion):
            marks += [p for piece in ev.pieces() for p in piece[:2]]
        else:
            marks += list(ev.device_times_min)
    marks = [m for m in marks if start <= m <= end]
    return np.unique(np.concatenate([grid, np.asarray(marks, dtype=np.float64)]))


def _spread(values: FloatArray) -> Spread:
    p5, p50, p95 = np.percentile(values, (5.0, 50.0, 95.0))
    return Spread(float(p5), float(p50), float(p95))


def simulate(
    regimen: Regimen,
    model: PKModel | str | None = None,
    times_min: Sequence[float] | FloatArray | None = None,
    *,
    covariates: Covariates | None = None,
    population: Population | None = None,
    threshold_ng_ml: float | None = None,
    at_min: Sequence[float] = (),
    horizon_min: float | None = None,
) -> SimulationResult:
    """Concentrations of the regimen under the model.

    times_min: output grid (ascending, ≥ 2 points); default 0.5-min steps to 24 h after the first
        dose (or 12 h after the last), plus every dosing time and the at_min times.
    threshold_ng_ml: default = lower edge of the dissociative range (metrics.default_threshold).
    Raises PKValidationError naming every bad input.
    """
    covariates = covariates or Covariates()
    pk_model = resolve_model(model, regimen.drug)
    errors = validate_inputs(regimen, pk_model, covariates, population, threshold_ng_ml)
    if times_min is not None:
        grid = np.asarray(times_min, dtype=np.float64)
        if grid.ndim != 1 or grid.size < 2 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0):
            errors["times_min"] = "give at least two finite output times in increasing order"
    else:
        if horizon_min is not None and not (math.isfinite(horizon_min) and horizon_min > 0):
            errors["horizon_min"] = "the simulated time must be more than 0 min"
        if any(not math.isfinite(t) or t < 0 for t in at_min):
            errors["at"] = "requested times must be 0 min or later"
        elif horizon_min is not None and any(t > horizon_min for t in at_min):
            errors["at"] = f"requested times must fall within the simulated {horizon_min:g} min"
        grid = np.zeros(2)
    raise_if_errors(errors)
    if times_min is None:
        grid = _default_grid(regimen, at_min, horizon_min)
    if grid.size > MAX_GRID_POINTS:
        raise_if_errors({"times_min": f"too many output times ({grid.size}; at most {MAX_GRID_POINTS})"})
    threshold = (
        Threshold(threshold_ng_ml, "set by the user", True)
        if threshold_ng_ml is not None
        else default_threshold(regimen.drug)
    )
    window = np.array([grid[0], grid[-1]])

    typ = build(pk_model, regimen, covariates, {}, 1)
    sol = solve_linear(typ.system, typ.boluses, typ.rates, grid, window)
    # Round-off can leave values like −3e-13 where the exact answer is 0; amounts cannot be negative.
    values = np.maximum(sol.values, 0.0)
    conc = values[0, 0]
    auc = float(sol.integrals[0, 0, 1] - sol.integrals[0, 0, 0]) / 60.0
    ex = exposure(grid, conc[None, :], threshold.value_ng_ml)
    unconfirmed = list(pk_model.unconfirmed) + list(typ.unconfirmed)
    if not threshold.confirmed:
        unconfirmed.append(f"threshold {threshold.value_ng_ml:g} ng/mL: {threshold.source}")

    bands = None
    if population is not None:
        etas = sample_etas(pk_model.variability, population)
        pop = build(pk_model, regimen, covariates, etas, population.n)
        parent_only = LinearSystem(pop.system.matrix, pop.system.outputs[:, :1, :], pop.system.depot_states)
        psol = solve_linear(parent_only, pop.boluses, pop.rates, grid, window)
        pconc = np.maximum(psol.values[:, 0, :], 0.0)
        pauc = (psol.integrals[:, 0, 1] - psol.integrals[:, 0, 0]) / 60.0
        pex = exposure(grid, pconc, threshold.value_ng_ml)
        q = percentile_bands(pconc)
        fell = pex.falls_below_min[np.isfinite(pex.falls_below_min)]
        bands = PopulationBands(
            n=population.n,
            seed=population.seed,
            p5_ng_ml=q[5.0],
            p50_ng_ml=q[50.0],
            p95_ng_ml=q[95.0],
            cmax_ng_ml=_spread(pex.cmax_ng_ml),
            tmax_min=_spread(pex.tmax_min),
            auc_ng_h_ml=_spread(pauc),
            time_above_threshold_min=_spread(pex.time_above_min),
            fraction_reaching_threshold=float(np.mean(pex.reached)),
            fraction_above_threshold_at_end=float(np.mean(pex.above_at_end)),
            falls_below_threshold_min=_spread(fell) if fell.size else None,
        )
        unconfirmed += list(unconfirmed_variability(pk_model.variability, pop.used_parameters, population))
        unconfirmed += [u for u in pop.unconfirmed if u not in unconfirmed]
        notes_extra = pop.notes
    else:
        notes_extra = ()

    metabolite = typ.output_names[1] if len(typ.output_names) > 1 else None
    falls = float(ex.falls_below_min[0])
    return SimulationResult(
        model=ModelInfo(
            pk_model.key,
            pk_model.name,
            pk_model.drug,
            pk_model.sample_site,
            pk_model.source,
            pk_model.fitted_population,
        ),
        regimen=regimen,
        covariates=covariates,
        times_min=grid,
        concentration_ng_ml=conc,
        metabolite_name=metabolite,
        metabolite_ng_ml=values[0, 1] if metabolite else None,
        cmax_ng_ml=float(ex.cmax_ng_ml[0]),
        tmax_min=float(ex.tmax_min[0]),
        auc_ng_h_ml=auc,
        auc_window_min=(float(grid[0]), float(grid[-1])),
        threshold=threshold,
        time_above_threshold_min=float(ex.time_above_min[0]),
        falls_below_threshold_min=falls if math.isfinite(falls) else None,
        reaches_threshold=bool(ex.reached[0]),
        above_threshold_at_end=bool(ex.above_at_end[0]),
        bands=bands,
        unconfirmed=tuple(dict.fromkeys(unconfirmed)),
        notes=tuple(dict.fromkeys(typ.notes + tuple(n for n in notes_extra if "capped" in n))),
    )
