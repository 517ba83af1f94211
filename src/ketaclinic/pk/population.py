"""Virtual populations: log-normal (or logit-normal) inter-individual variability with a seed.

For a log-normal parameter with coefficient of variation CV, η ~ N(0, ω²) with ω² = ln(1 + CV²) and
the individual value is θ·e^η. For a logit-normal one (a fraction), η ~ N(0, SD²) is added on the
logit scale. Parameters without a published CV use `default_cv` (configurable) and every result that
relies on them lists them as unconfirmed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np

from .errors import raise_if_errors
from .linear import FloatArray
from .models import Scale, Variability

# Not from a source: the brief asks for a configurable default where no CV is published.
DEFAULT_UNPUBLISHED_CV: Final = 0.30
MAX_POPULATION: Final = 5_000  # bands keep every curve in memory: 5,000 × 2,889 times ≈ 115 MB
PERCENTILES: Final = (5.0, 50.0, 95.0)


@dataclass(frozen=True)
class Population:
    """n virtual patients drawn reproducibly from `seed`."""

    n: int
    seed: int = 0
    default_cv: float = DEFAULT_UNPUBLISHED_CV
    cv_overrides: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if not (1 <= self.n <= MAX_POPULATION):
            errors["population"] = f"the number of virtual patients must be 1–{MAX_POPULATION} (got {self.n})"
        if self.seed < 0:
            errors["seed"] = "the seed must be 0 or more"
        if not (math.isfinite(self.default_cv) and 0 <= self.default_cv <= 3):
            errors["default_cv"] = "the default variability must be 0–3 (0–300 %)"
        bad = [k for k, v in self.cv_overrides.items() if not (math.isfinite(v) and 0 <= v <= 3)]
        if bad:
            errors["cv_overrides"] = f"variability must be 0–3 for {', '.join(sorted(bad))}"
        return errors

    def spread(self, v: Variability) -> float:
        if v.parameter in self.cv_overrides:
            return float(self.cv_overrides[v.parameter])
        return v.spread if v.spread is not None else self.default_cv


def sample_etas(variability: tuple[Variability, ...], population: Population) -> dict[str, FloatArray]:
    """One random effect per parameter and patient. Every term is drawn (in the model's order) even if
    the regimen does not use it, so a seed gives the same patients whatever the route."""
    raise_if_errors(population.validate())
    rng = np.random.default_rng(population.seed)
    etas: dict[str, FloatArray] = {}
    for v in variability:
        spread = population.spread(v)
        sd = math.sqrt(math.log1p(spread * spread)) if v.scale is Scale.LOG else spread
        etas[v.parameter] = rng.normal(0.0, 1.0, population.n) * sd
    return etas


def unconfirmed_variability(
    variability: tuple[Variability, ...], used: frozenset[str], population: Population
) -> tuple[str, ...]:
    """Names of the used parameters whose CV is a default or borrowed value."""
    out = []
    for v in variability:
        if v.parameter not in used or v.parameter in population.cv_overrides:
            continue
        if v.spread is None:
            out.append(f"IIV of {v.parameter}: default {population.default_cv:.0%} ({v.source})")
        elif "unconfirmed" in v.source:
            out.append(f"IIV of {v.parameter}: {v.spread:.0%} ({v.source})")
    return tuple(out)


def percentile_bands(values: FloatArray) -> dict[float, FloatArray]:
    """5th/50th/95th percentile over patients (axis 0)."""
    q = np.percentile(values, PERCENTILES, axis=0)
    return {p: np.asarray(q[i]) for i, p in enumerate(PERCENTILES)}
