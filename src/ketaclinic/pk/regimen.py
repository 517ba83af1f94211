"""What was (or will be) given, and to whom: the input side of a simulation.

A `Regimen` is built from an administration record: each IV push, IM injection, lozenge or oral dose
is a `Dose` at its clock time; an IV infusion is an `Infusion` with its rate changes (a pause is a
segment with rate 0) and its stop time; an intranasal session is a `NasalSession` listing each
device's actual time (devices may be 5 min apart or irregular). Times are minutes from an origin
the caller chooses (usually the first administration of the session).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from .errors import raise_if_errors

# Label: one esketamine device = 28 mg (2 sprays); 5-minute rest between devices
# (clinical.md §2.1, Spravato IFU).
ESKETAMINE_MG_PER_DEVICE: Final = 28.0
ESKETAMINE_DEVICE_INTERVAL_MIN: Final = 5.0


class Drug(StrEnum):
    KETAMINE = "ketamine"  # racemic
    ESKETAMINE = "esketamine"  # S-ketamine


class Route(StrEnum):
    IV = "iv"
    IM = "im"
    INTRANASAL = "intranasal"
    SUBLINGUAL = "sublingual"
    ORAL = "oral"

    @property
    def label(self) -> str:
        """How the route is written on screen (IV, IM, intranasal …)."""
        return self.value.upper() if self in (Route.IV, Route.IM) else self.value


class Ancestry(StrEnum):
    UNSPECIFIED = "unspecified"
    ASIAN = "asian"  # non-Japanese Asian
    JAPANESE = "japanese"  # counts as Asian as well (Perez-Ruixo 2021 covariates)


@dataclass(frozen=True)
class Covariates:
    """Covariates a model may use. Unknown values stay None; models say what they assumed."""

    weight_kg: float | None = None
    age_years: float | None = None
    ancestry: Ancestry = Ancestry.UNSPECIFIED

    def validate(self) -> dict[str, str]:
        errors: dict[str, str] = {}
        if self.weight_kg is not None and not (math.isfinite(self.weight_kg) and 0 < self.weight_kg <= 400):
            errors["weight_kg"] = (
                f"weight {self.weight_kg} kg is not a body weight (give more than 0, up to 400 kg)"
            )
        if self.age_years is not None and not (math.isfinite(self.age_years) and 0 <= self.age_years <= 120):
            errors["age_years"] = f"age {self.age_years} is not an age in years (give 0–120)"
        return errors


@dataclass(frozen=True)
class Dose:
    """A single administration at one moment: IV push, IM injection, sublingual or oral dose."""

    time_min: float
    dose_mg: float
    route: Route


@dataclass(frozen=True)
class RateSegment:
    """From start_min the pump runs at rate_mg_per_min (0 = paused) until the next segment or stop."""

    start_min: float
    rate_mg_per_min: float


@dataclass(frozen=True)
class Infusion:
    """A zero-order IV infusion with rate changes; it stops at stop_min."""

    segments: tuple[RateSegment, ...]
    stop_min: float
    route: Route = field(default=Route.IV, init=False)

    @property
    def start_min(self) -> float:
        return self.segments[0].start_min if self.segments else 0.0

    def pieces(self) -> tuple[tuple[float, float, float], ...]:
        """(start, end, rate) for each segment, clipped at stop_min; zero-length pieces dropped."""
        out: list[tuple[float, float, float]] = []
        for i, seg in enumerate(self.segments):
            end = self.segments[i + 1].start_min if i + 1 < len(self.segments) else self.stop_min
            end = min(end, self.stop_min)
            if end > seg.start_min and seg.rate_mg_per_min > 0:
                out.append((seg.start_min, end, seg.rate_mg_per_min))
        return tuple(out)

    @property
    def total_mg(self) -> float:
        return sum((end - start) * rate for start, end, rate in self.pieces())


@dataclass(frozen=True)
class NasalSession:
    """One intranasal administration made of one or more devices, each at its actual time."""

    device_times_min: tuple[float, ...]
    mg_per_device: float
    route: Route = field(default=Route.INTRANASAL, init=False)

    @property
    def total_mg(self) -> float:
        return self.mg_per_device * len(self.device_times_min)

    @property
    def start_min(self) -> float:
        return min(self.device_times_min) if self.device_times_min else 0.0


Event = Dose | Infusion | NasalSession


def _finite_nonneg(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _event_errors(i: int, ev: Event) -> dict[str, str]:
    errors: dict[str, str] = {}
    key = f"events[{i}]"
    if isinstance(ev, Dose):
        if not _finite_nonneg(ev.time_min):
            errors[f"{key}.time_min"] = "the dose time must be 0 min or later"
        if not (math.isfinite(ev.dose_mg) and ev.dose_mg > 0):
            errors[f"{key}.dose_mg"] = f"the dose must be more than 0 mg (got {ev.dose_mg})"
    elif isinstance(ev, Infusion):
        if not ev.segments:
            errors[f"{key}.segments"] = "an infusion needs at least one rate segment"
        starts = [s.start_min for s in ev.segments]
        if any(not _finite_nonneg(s) for s in starts):
            errors[f"{key}.segments"] = "segment start times must be 0 min or later"
        elif any(b <= a for a, b in itertools.pairwise(starts)):
            errors[f"{key}.segments"] = "rate changes must be listed in time order, each after the previous"
        if any(not _finite_nonneg(s.rate_mg_per_min) for s in ev.segments):
            errors[f"{key}.rate_mg_per_min"] = "infusion rates must be 0 (paused) or more"
        if not math.isfinite(ev.stop_min) or (ev.segments and ev.stop_min <= ev.segments[0].start_min):
            errors[f"{key}.stop_min"] = "the infusion must stop after it starts"
        elif ev.segments and ev.total_mg <= 0 and f"{key}.rate_mg_per_min" not in errors:
            errors[f"{key}.rate_mg_per_min"] = "the infusion delivers no drug (all rates are 0)"
    else:
        if not ev.device_times_min:
            errors[f"{key}.device_times_min"] = "a nasal session needs at least one device time"
        elif any(not _finite_nonneg(t) for t in ev.device_times_min):
            errors[f"{key}.device_times_min"] = "device times must be 0 min or later"
        if not (math.isfinite(ev.mg_per_device) and ev.mg_per_device > 0):
            errors[f"{key}.mg_per_device"] = "each device must deliver more than 0 mg"
    return errors


@dataclass(frozen=True)
class Regimen:
    """Everything given in one simulation, for one drug."""

    drug: Drug
    events: tuple[Event, ...]

    def validate(self) -> None:
        """Raise PKValidationError naming every bad field."""
        errors: dict[str, str] = {}
        if not self.events:
            errors["events"] = "nothing was given: add at least one dose, infusion or nasal session"
        for i, ev in enumerate(self.events):
            errors.update(_event_errors(i, ev))
        raise_if_errors(errors)

    @property
    def routes(self) -> frozenset[Route]:
        return frozenset(ev.route for ev in self.events)

    @property
    def total_mg(self) -> float:
        return sum(ev.dose_mg if isinstance(ev, Dose) else ev.total_mg for ev in self.events)

    @property
    def first_event_min(self) -> float:
        return min((_start(ev) for ev in self.events), default=0.0)

    @property
    def last_event_min(self) -> float:
        """When the last input ends (infusion stop or last device/dose time)."""
        return max((_end(ev) for ev in self.events), default=0.0)


def _start(ev: Event) -> float:
    if isinstance(ev, Dose):
        return ev.time_min
    return ev.start_min


def _end(ev: Event) -> float:
    if isinstance(ev, Dose):
        return ev.time_min
    if isinstance(ev, Infusion):
        return ev.stop_min
    return max(ev.device_times_min, default=0.0)


def iv_infusion(dose_mg: float, duration_min: float, start_min: float = 0.0) -> Infusion:
    """A constant-rate infusion of dose_mg over duration_min (e.g. 0.5 mg/kg over 40 min)."""
    if not (math.isfinite(duration_min) and duration_min > 0):
        raise_if_errors({"duration_min": "an infusion needs a duration of more than 0 min"})
    return Infusion((RateSegment(start_min, dose_mg / duration_min),), start_min + duration_min)


def nasal_devices(
    n_devices: int,
    mg_per_device: float = ESKETAMINE_MG_PER_DEVICE,
    interval_min: float = ESKETAMINE_DEVICE_INTERVAL_MIN,
    start_min: float = 0.0,
) -> NasalSession:
    """n devices at a regular interval (label: 5 min between esketamine devices)."""
    return NasalSession(tuple(start_min + k * interval_min for k in range(n_devices)), mg_per_device)
