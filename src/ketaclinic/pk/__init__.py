"""Pure numpy pharmacokinetics: published models, exact closed-form solutions, populations.

    from ketaclinic.pk import Covariates, Drug, Population, Regimen, iv_infusion, simulate

    result = simulate(Regimen(Drug.KETAMINE, (iv_infusion(35.0, 40.0),)), "kamp2020",
                      covariates=Covariates(weight_kg=70), population=Population(n=1000, seed=1))
    result.model.sample_site, result.cmax_ng_ml, result.bands.p95_ng_ml, result.unconfirmed

See docs/pk-validation.md for how the models compare with the reference data.
"""

from .errors import PKError, PKValidationError
from .metrics import Threshold, default_threshold
from .models import DEFAULT_MODEL, MODELS, MammillaryModel, PerezRuixoModel, PKModel, SampleSite, get_model
from .population import Population
from .regimen import (
    Ancestry,
    Covariates,
    Dose,
    Drug,
    Event,
    Infusion,
    NasalSession,
    RateSegment,
    Regimen,
    Route,
    iv_infusion,
    nasal_devices,
)
from .solve import ModelInfo, PopulationBands, SimulationResult, Spread, simulate, validate_inputs

__all__ = [
    "DEFAULT_MODEL",
    "MODELS",
    "Ancestry",
    "Covariates",
    "Dose",
    "Drug",
    "Event",
    "Infusion",
    "MammillaryModel",
    "ModelInfo",
    "NasalSession",
    "PKError",
    "PKModel",
    "PKValidationError",
    "PerezRuixoModel",
    "Population",
    "PopulationBands",
    "RateSegment",
    "Regimen",
    "Route",
    "SampleSite",
    "SimulationResult",
    "Spread",
    "Threshold",
    "default_threshold",
    "get_model",
    "iv_infusion",
    "nasal_devices",
    "simulate",
    "validate_inputs",
]
