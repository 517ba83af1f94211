"""The predicted exposure of a plan's dose (issue: PK simulator, item 6): the typical concentration curve
and the 5–95 % band of virtual patients for session 1 as planned, drawn as a server-rendered SVG."""

from __future__ import annotations

from dataclasses import dataclass

from ketaclinic import pk
from ketaclinic.charts.exposure import concentration_chart
from ketaclinic.treatment.library import as_protocol
from ketaclinic.treatment.models import Plan

POPULATION = pk.Population(n=500, seed=11)
HORIZON_MIN = 360.0


@dataclass(frozen=True)
class PlanExposure:
    result: pk.SimulationResult
    svg: str
    regimen_text: str


def planned_regimen(plan: Plan) -> tuple[pk.Regimen, str] | None:
    protocol = as_protocol(plan.protocol)
    dose = float(plan.dose_mg)
    route = protocol.route.value
    if protocol.drug.value == "esketamine":
        devices = round(dose / pk.regimen.ESKETAMINE_MG_PER_DEVICE)
        if devices < 1:
            return None
        return pk.Regimen(
            pk.Drug.ESKETAMINE, (pk.nasal_devices(devices),)
        ), f"{dose:g} mg: {devices} devices 5 min apart"
    _, rule = protocol.dose_for_session(1)
    if route == "iv":
        minutes = float(rule.duration_min or 40)  # 40 min: the standard IV regimen (clinical.md §1.1)
        return pk.Regimen(
            pk.Drug.KETAMINE, (pk.iv_infusion(dose, minutes),)
        ), f"{dose:g} mg IV over {minutes:g} min"
    pk_route = {"im": pk.Route.IM, "sublingual": pk.Route.SUBLINGUAL, "oral": pk.Route.ORAL}.get(route)
    if pk_route is None:
        return None
    return pk.Regimen(pk.Drug.KETAMINE, (pk.Dose(0.0, dose, pk_route),)), f"{dose:g} mg {route}"


def plan_exposure(plan: Plan) -> PlanExposure | None:
    planned = planned_regimen(plan)
    if planned is None:
        return None
    regimen, text = planned
    patient = plan.patient
    weight = float(patient.weight_kg) if patient.weight_kg else 70.0
    age = (patient.site.today() - patient.date_of_birth).days / 365.25 if patient.date_of_birth else None
    try:
        result = pk.simulate(
            regimen,
            None,
            [float(t) for t in range(int(HORIZON_MIN) + 1)],
            covariates=pk.Covariates(weight_kg=weight, age_years=age),
            population=POPULATION,
        )
    except pk.PKError:
        return None
    svg = concentration_chart(
        result, title=f"Predicted concentration for session 1: {text}", horizon_min=HORIZON_MIN
    )
    return PlanExposure(result=result, svg=svg, regimen_text=text)
