"""Turn a model, a regimen and per-patient random effects into a linear system with its inputs.

`etas` maps a parameter name to one random effect per virtual patient (zeros = typical patient);
see population.py. Log-normal parameters are θ·e^η, logit-normal ones logit⁻¹(logit θ + η).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .absorption import ka_for_tmax
from .linear import BolusInput, FloatArray, LinearSystem, RateInput
from .models import MammillaryModel, PerezRuixoModel, PKModel
from .regimen import Ancestry, Covariates, Dose, Infusion, NasalSession, Regimen, Route

_H = 60.0  # min per hour
_NG_ML_PER_MG_L = 1000.0  # 1 mg/L = 1000 ng/mL


@dataclass(frozen=True, eq=False)
class BuiltSystem:
    system: LinearSystem
    boluses: tuple[BolusInput, ...]
    rates: tuple[RateInput, ...]
    output_names: tuple[str, ...]
    used_parameters: frozenset[str]
    notes: tuple[str, ...]
    unconfirmed: tuple[str, ...]


class _Flows:
    """Accumulates a batch of rate matrices from named first-order flows."""

    def __init__(self, n_patients: int, n_states: int) -> None:
        self.matrix = np.zeros((n_patients, n_states, n_states))

    def add(self, src: int, dst: int | None, rate_per_min: FloatArray) -> None:
        self.matrix[:, src, src] -= rate_per_min
        if dst is not None:
            self.matrix[:, dst, src] += rate_per_min


def _eta(etas: Mapping[str, FloatArray], name: str, n: int) -> FloatArray:
    value = etas.get(name)
    return np.zeros(n) if value is None else np.asarray(value, dtype=np.float64)


def _log(etas: Mapping[str, FloatArray], name: str, typical: float | FloatArray, n: int) -> FloatArray:
    return np.asarray(typical, dtype=np.float64) * np.exp(_eta(etas, name, n))


def _logit(etas: Mapping[str, FloatArray], name: str, typical: float, n: int) -> FloatArray:
    shifted = np.log(typical / (1.0 - typical)) + _eta(etas, name, n)
    out: FloatArray = 1.0 / (1.0 + np.exp(-shifted))
    return out


def build(
    model: PKModel, regimen: Regimen, covariates: Covariates, etas: Mapping[str, FloatArray], n: int
) -> BuiltSystem:
    """The system for n patients. Inputs must already be validated (see solve.validate_inputs)."""
    if isinstance(model, MammillaryModel):
        return _build_mammillary(model, regimen, covariates, etas, n)
    return _build_perez_ruixo(model, regimen, covariates, etas, n)


def typical_ka(model: MammillaryModel, route: Route, weight_kg: float) -> float:
    """Absorption rate (1/min) used for a route: published, or derived from the published Tmax."""
    absorption = model.absorption_for(route)
    if absorption.ka_per_min is not None:
        return absorption.ka_per_min
    v1, cl, q, vp = model.disposition(weight_kg)
    return ka_for_tmax(v1, cl, q, vp, absorption.tmax_min)


def _build_mammillary(
    model: MammillaryModel, regimen: Regimen, covariates: Covariates, etas: Mapping[str, FloatArray], n: int
) -> BuiltSystem:
    weight = covariates.weight_kg
    assert weight is not None  # checked by validate_inputs
    v1_t, cl_t, q_t, vp_t = model.disposition(weight)
    n_per = len(q_t)
    v1 = _log(etas, "V1", v1_t, n)
    cl = _log(etas, "CL", cl_t, n)
    used = {"V1", "CL"}
    depot_routes = sorted((r for r in regimen.routes if r is not Route.IV), key=lambda r: r.value)
    depot_of: dict[Route, int] = {r: 1 + n_per + i for i, r in enumerate(depot_routes)}
    flows = _Flows(n, 1 + n_per + len(depot_routes))
    flows.add(0, None, cl / v1)
    for i in range(n_per):
        q = _log(etas, f"Q{i + 2}", q_t[i], n)
        vp = _log(etas, f"V{i + 2}", vp_t[i], n)
        used |= {f"Q{i + 2}", f"V{i + 2}"}
        flows.add(0, 1 + i, q / v1)
        flows.add(1 + i, 0, q / vp)
    notes: list[str] = []
    unconfirmed: list[str] = []
    for route in depot_routes:
        absorption = model.absorption_for(route)
        ka_typ = typical_ka(model, route, weight)
        flows.add(depot_of[route], 0, _log(etas, f"ka_{route.value}", ka_typ, n))
        used |= {f"ka_{route.value}", f"F_{route.value}"}
        if absorption.ka_per_min is None:
            unconfirmed.append(
                f"{route.value} absorption rate {ka_typ:.4g}/min derived so the typical curve peaks at the "
                f"published Tmax {absorption.tmax_min:g} min ({absorption.source}); configurable default"
            )
        if not absorption.bioavailability_confirmed:
            unconfirmed.append(f"{route.value} bioavailability from a secondary source ({absorption.source})")
        else:
            notes.append(f"{route.value} bioavailability and Tmax: {absorption.source}")

    boluses: list[BolusInput] = []
    rates: list[RateInput] = []
    for ev in regimen.events:
        if isinstance(ev, Infusion):
            for start, end, rate in ev.pieces():
                rates.append(RateInput(start, end, 0, np.full(n, rate)))
        elif isinstance(ev, Dose) and ev.route is Route.IV:
            boluses.append(BolusInput(ev.time_min, 0, np.full(n, ev.dose_mg)))
        else:
            absorption = model.absorption_for(ev.route)
            amount = ev.dose_mg if isinstance(ev, Dose) else ev.total_mg
            f_typ = absorption.bioavailability_at(amount)
            if absorption.dose_outside_studied(amount):
                unconfirmed.append(
                    f"{ev.route.value} dose {amount:g} mg is outside the studied doses; bioavailability "
                    f"{f_typ:.0%} taken from the nearest studied dose"
                )
            f = _logit(etas, f"F_{ev.route.value}", f_typ, n)
            times = (ev.time_min,) if isinstance(ev, Dose) else ev.device_times_min
            per_input = ev.dose_mg if isinstance(ev, Dose) else ev.mg_per_device
            for t in times:
                boluses.append(BolusInput(t, depot_of[ev.route], f * per_input))
    outputs = np.zeros((n, 1, flows.matrix.shape[1]))
    outputs[:, 0, 0] = _NG_ML_PER_MG_L / v1
    depots = tuple(depot_of[r] for r in depot_routes)
    return BuiltSystem(
        LinearSystem(flows.matrix, outputs, depots),
        tuple(boluses),
        tuple(rates),
        (model.drug.value,),
        frozenset(used),
        tuple(notes),
        tuple(dict.fromkeys(unconfirmed)),
    )


def _build_perez_ruixo(
    model: PerezRuixoModel, regimen: Regimen, covariates: Covariates, etas: Mapping[str, FloatArray], n: int
) -> BuiltSystem:
    asian = covariates.ancestry in (Ancestry.ASIAN, Ancestry.JAPANESE)
    japanese = covariates.ancestry is Ancestry.JAPANESE
    notes: list[str] = []
    age = covariates.age_years
    if age is None:
        notes.append("age not given: assumed 60 or younger (no effect on hepatic blood flow)")
        age = 0.0
    qh_typ = model.qh_l_h - model.qh_decline_l_h_per_year_over_60 * max(0.0, age - 60.0)
    if age > 60:
        notes.append(f"age {age:g}: hepatic blood flow {qh_typ:.1f} L/h (−2.19 L/h per year over 60)")
    if asian:
        notes.append("Asian ancestry: kel × 0.36 and noresketamine CLn × 0.81")
    if japanese:
        notes.append("Japanese ancestry: nasal fraction FRn × 1.34")

    vc = _log(etas, "Vc", model.vc_l, n)
    vp1 = _log(etas, "Vp1", model.vp1_l, n)
    qh = _log(etas, "Qh", qh_typ, n)
    vh = _log(etas, "Vh", model.vh_l, n)
    kel = _log(etas, "kel", model.kel_h, n) * (model.asian_kel_factor if asian else 1.0)
    kmet = _log(etas, "kmet", model.kmet_h, n)
    vcn = _log(etas, "Vcn", model.vcn_l, n)
    cln = _log(etas, "CLn", model.cln_l_h, n) * (model.asian_cln_factor if asian else 1.0)
    used = {"Vc", "Vp1", "Qh", "Vh", "kel", "kmet", "Vcn", "CLn"}

    nasal = Route.INTRANASAL in regimen.routes
    oral = Route.ORAL in regimen.routes
    depots: list[int] = []
    next_state = 0
    nasal_depot = gut_depot = oral_depot = -1
    if nasal:
        nasal_depot, gut_depot, next_state = 0, 1, 2
        depots += [nasal_depot, gut_depot]
        used |= {"ka_n", "FRn", "ka_sw"}
    if oral:
        oral_depot, next_state = next_state, next_state + 1
        depots.append(oral_depot)
        used.add("ka_po")
    central, p1, p2, liver, nor_c, nor_p = range(next_state, next_state + 6)
    flows = _Flows(n, next_state + 6)
    per_min = 1.0 / _H
    flows.add(central, p1, model.q1_l_h / vc * per_min)
    flows.add(p1, central, model.q1_l_h / vp1 * per_min)
    flows.add(central, p2, model.q2_l_h / vc * per_min)
    flows.add(p2, central, np.full(n, model.q2_l_h / model.vp2_l * per_min))
    flows.add(central, liver, qh / vc * per_min)
    flows.add(liver, central, qh / vh * per_min)
    flows.add(liver, None, kel * per_min)
    flows.add(liver, nor_c, kmet * per_min)
    flows.add(nor_c, None, cln / vcn * per_min)
    flows.add(nor_c, nor_p, model.q3_l_h / vcn * per_min)
    flows.add(nor_p, nor_c, np.full(n, model.q3_l_h / model.vpn_l * per_min))
    if nasal:
        flows.add(nasal_depot, central, _log(etas, "ka_n", model.ka_n_h, n) * per_min)
        flows.add(gut_depot, liver, _log(etas, "ka_sw", model.ka_sw_h, n) * per_min)
    if oral:
        flows.add(oral_depot, liver, _log(etas, "ka_po", model.ka_po_h, n) * per_min)

    frn = _logit(etas, "FRn", model.frn, n) * (model.japanese_frn_factor if japanese else 1.0)
    boluses: list[BolusInput] = []
    rates: list[RateInput] = []
    capped = False
    dsw, dpo = model.dsw_h * _H, model.dpo_h * _H
    for ev in regimen.events:
        if isinstance(ev, Infusion):
            for start, end, rate in ev.pieces():
                rates.append(RateInput(start, end, central, np.full(n, rate)))
        elif isinstance(ev, Dose) and ev.route is Route.IV:
            boluses.append(BolusInput(ev.time_min, central, np.full(n, ev.dose_mg)))
        elif isinstance(ev, Dose):  # oral solution: Fgut·D zero-order over Dpo, then ka_po into the liver
            rates.append(
                RateInput(
                    ev.time_min, ev.time_min + dpo, oral_depot, np.full(n, model.fgut * ev.dose_mg / dpo)
                )
            )
        elif isinstance(ev, NasalSession):
            for k, t in enumerate(sorted(ev.device_times_min)):
                frn_k = frn * (model.frn_later_device_factor if k > 0 else 1.0)
                capped = capped or bool(np.any(frn_k > 1.0))
                frn_k = np.minimum(frn_k, 1.0)
                boluses.append(BolusInput(t, nasal_depot, frn_k * ev.mg_per_device))
                swallowed = (1.0 - frn_k) * model.fgut * ev.mg_per_device / dsw
                rates.append(RateInput(t, t + dsw, gut_depot, swallowed))
    if capped:
        notes.append("some virtual patients had a nasal fraction above 1; it was capped at 1")
    outputs = np.zeros((n, 2, next_state + 6))
    outputs[:, 0, central] = _NG_ML_PER_MG_L / vc
    outputs[:, 1, nor_c] = _NG_ML_PER_MG_L / vcn
    return BuiltSystem(
        LinearSystem(flows.matrix, outputs, tuple(depots)),
        tuple(boluses),
        tuple(rates),
        ("esketamine", "noresketamine"),
        frozenset(used),
        tuple(notes),
        (),
    )
