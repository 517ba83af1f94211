"""Published parameter sets, each with its source next to it (pk.md = /work/shared/reference/pk.md).

Models are frozen values. To change a configurable default (an absorption choice, a CV), build a
variant with `dataclasses.replace`; the result names what it used and flags what is unconfirmed.

Racemic ketamine disposition: Domino 1984, Kamp 2020 (arterial 3-cmt part as SimTIVA encodes it),
Clements 1981 (Clements250), plus Hijazi 2003, Herd 2007 and Hornik 2018 (ICU/children; kept for
validation against pk.md §2 and clearly labelled). Racemic extravascular routes add a first-order
absorption depot (pk.md §1d). Esketamine: Perez-Ruixo 2021 (pk.md §1b).

Default racemic model: Kamp 2020, because it pools 14 raw data sets (the largest base) and, being
arterial, predicts higher and longer concentrations than the venous observations (pk.md §2: +37 % at
the end of a 0.5 mg/kg/40 min infusion), which errs on the side of caution for recovery timing.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from .regimen import Drug, Route


class SampleSite(StrEnum):
    """Where the concentrations a model predicts were measured."""

    ARTERIAL = "arterial"
    VENOUS = "venous"
    PLASMA_MODEL_FITTED = "plasma, model-fitted"


class Scale(StrEnum):
    LOG = "log-normal"  # spread = coefficient of variation
    LOGIT = "logit-normal"  # spread = standard deviation on the logit scale


@dataclass(frozen=True)
class Variability:
    """Inter-individual variability of one parameter. spread None = not published: the population's
    configurable default is used and the output flags it as unconfirmed."""

    parameter: str
    spread: float | None
    scale: Scale
    source: str

    @property
    def confirmed(self) -> bool:
        return self.spread is not None


@dataclass(frozen=True)
class AbsorptionPoint:
    """Bioavailability and time to peak observed at a dose (dose None = any dose)."""

    dose_mg: float | None
    bioavailability: float
    tmax_min: float


@dataclass(frozen=True)
class Absorption:
    """First-order absorption for one extravascular route of racemic ketamine.

    ka_per_min None = no published absorption rate: it is derived at run time so that the typical
    patient's curve peaks at the published tmax (flagged as an unconfirmed, configurable default).
    With several points, bioavailability is interpolated linearly in session dose and clamped at the
    ends; tmax_min is then the single value used for the rate.
    """

    route: Route
    points: tuple[AbsorptionPoint, ...]
    tmax_min: float
    source: str
    bioavailability_confirmed: bool
    ka_per_min: float | None = None

    def bioavailability_at(self, dose_mg: float) -> float:
        pts = sorted(self.points, key=lambda p: p.dose_mg or 0.0)
        if len(pts) == 1 or dose_mg <= (pts[0].dose_mg or 0.0):
            return pts[0].bioavailability
        for lo, hi in itertools.pairwise(pts):
            d0, d1 = lo.dose_mg or 0.0, hi.dose_mg or 0.0
            if dose_mg <= d1:
                return lo.bioavailability + (hi.bioavailability - lo.bioavailability) * (dose_mg - d0) / (
                    d1 - d0
                )
        return pts[-1].bioavailability

    def dose_outside_studied(self, dose_mg: float) -> bool:
        doses = [p.dose_mg for p in self.points if p.dose_mg is not None]
        return bool(doses) and not (min(doses) <= dose_mg <= max(doses))


class WeightScaling(StrEnum):
    PER_KG = "linear per kg"  # every volume and clearance ∝ WT
    ALLOMETRIC = "allometric to 70 kg"  # V ∝ WT/70, CL and Q ∝ (WT/70)^0.75


@dataclass(frozen=True)
class MammillaryModel:
    """A central compartment exchanging with peripheral ones; elimination from the central one.

    Volumes in L and clearances in L/min, per kg (PER_KG) or for 70 kg (ALLOMETRIC).
    """

    key: str
    name: str
    drug: Drug
    sample_site: SampleSite
    source: str
    fitted_population: str
    scaling: WeightScaling
    v1_l: float
    cl_l_min: float
    q_l_min: tuple[float, ...]
    vp_l: tuple[float, ...]
    absorption: tuple[Absorption, ...]
    variability: tuple[Variability, ...]
    unconfirmed: tuple[str, ...] = ()

    @property
    def routes(self) -> frozenset[Route]:
        return frozenset({Route.IV, *(a.route for a in self.absorption)})

    def absorption_for(self, route: Route) -> Absorption:
        for a in self.absorption:
            if a.route is route:
                return a
        raise KeyError(route)

    def disposition(self, weight_kg: float) -> tuple[float, float, tuple[float, ...], tuple[float, ...]]:
        """V1, CL, (Q…), (Vp…) in L and L/min for a body weight."""
        if self.scaling is WeightScaling.PER_KG:
            fv = fc = weight_kg
        else:
            fv, fc = weight_kg / 70.0, (weight_kg / 70.0) ** 0.75
        return (
            self.v1_l * fv,
            self.cl_l_min * fc,
            tuple(q * fc for q in self.q_l_min),
            tuple(v * fv for v in self.vp_l),
        )


def _micro(
    v1_l_per_kg: float, k10: float, k12: float, k21: float, k13: float | None = None, k31: float | None = None
) -> tuple[float, float, tuple[float, ...], tuple[float, ...]]:
    """Per-kg V1, CL, Q, Vp from V1 and micro-constants (1/min): CL = k10·V1, Q = k1j·V1, Vj = Q/kj1."""
    q = [k12 * v1_l_per_kg]
    vp = [k12 * v1_l_per_kg / k21]
    if k13 is not None and k31 is not None:
        q.append(k13 * v1_l_per_kg)
        vp.append(k13 * v1_l_per_kg / k31)
    return v1_l_per_kg, k10 * v1_l_per_kg, tuple(q), tuple(vp)


_H: Final = 60.0  # min per hour

# --- Racemic extravascular routes (pk.md §1d; clinical.md §3.1) ---------------------------------
IM_ABSORPTION: Final = Absorption(
    route=Route.IM,
    # F 93 %: Clements 1982 J Pharm Sci 71:539 [2°] (pk.md §1d; primary unconfirmed, clinical.md §3.1).
    # Cmax at 5–15 min (Miller's Anesthesia [2°], pk.md §1d): the midpoint, 10 min, sets the rate.
    points=(AbsorptionPoint(None, 0.93, 10.0),),
    tmax_min=10.0,
    source="pk.md §1d: F 93 % (Clements 1982 [2°]); Cmax 5–15 min (Miller's Anesthesia [2°])",
    bioavailability_confirmed=False,
)
SUBLINGUAL_ABSORPTION: Final = Absorption(
    route=Route.SUBLINGUAL,
    # Rolan 2014 wafer, Br J Clin Pharmacol 77:1011: F 29 % (90 % CI 27–31), median Tmax 0.75 h [V].
    points=(AbsorptionPoint(None, 0.29, 45.0),),
    tmax_min=45.0,
    source="pk.md §1d: Rolan 2014 (F 29 %, median Tmax 0.75 h) [V]",
    bioavailability_confirmed=True,
)
ORAL_ABSORPTION: Final = Absorption(
    route=Route.ORAL,
    # Chong 2006, Pain Med 7:469: F 23 ± 9 %, Tmax 0.96 ± 0.8 h [V] (one study for both numbers).
    points=(AbsorptionPoint(None, 0.23, 57.6),),
    tmax_min=57.6,
    source="pk.md §1d: Chong 2006 (F 23 %, Tmax 0.96 h) [V]",
    bioavailability_confirmed=True,
)
INTRANASAL_RACEMIC_ABSORPTION: Final = Absorption(
    route=Route.INTRANASAL,
    # Pharmacotherapy 2022;42:298 Table 6 [V]: F 17/13/11 % and Tmax 23/14/16 min at 10/30/50 mg.
    # Tmax used for the rate: 16 min, the median of the three.
    points=(
        AbsorptionPoint(10.0, 0.17, 23.0),
        AbsorptionPoint(30.0, 0.13, 14.0),
        AbsorptionPoint(50.0, 0.11, 16.0),
    ),
    tmax_min=16.0,
    source="pk.md §1d: Pharmacotherapy 2022 Table 6 (F 17/13/11 % at 10/30/50 mg; Tmax 23/14/16 min) [V]",
    bioavailability_confirmed=True,
)
RACEMIC_ABSORPTION: Final = (
    IM_ABSORPTION,
    SUBLINGUAL_ABSORPTION,
    ORAL_ABSORPTION,
    INTRANASAL_RACEMIC_ABSORPTION,
)

# No IIV is published in pk.md for the racemic models. CL borrows Fanta 2015's 13 % (S-ketamine,
# pk.md §1b) and is flagged as borrowed; everything else uses the population default (unconfirmed).
_BORROWED_CL_CV: Final = 0.13  # Fanta 2015 CL IIV 13 % (S-ketamine), pk.md §1b
_RACEMIC_VARIABILITY_NAMES: Final = ("V1", "Q2", "V2", "Q3", "V3")
_ROUTE_KEYS: Final = tuple(r.value for r in (Route.IM, Route.SUBLINGUAL, Route.ORAL, Route.INTRANASAL))


def _racemic_variability(n_peripheral: int) -> tuple[Variability, ...]:
    names = _RACEMIC_VARIABILITY_NAMES[: 1 + 2 * n_peripheral]
    out = [
        Variability("CL", None, Scale.LOG, "not published in pk.md: default CV (unconfirmed)"),
        *(Variability(n, None, Scale.LOG, "not published in pk.md: default CV (unconfirmed)") for n in names),
    ]
    for key in _ROUTE_KEYS:
        out.append(Variability(f"ka_{key}", None, Scale.LOG, "not published: default CV (unconfirmed)"))
        out.append(Variability(f"F_{key}", None, Scale.LOGIT, "not published: default SD (unconfirmed)"))
    return tuple(out)


def _with_borrowed_cl(var: tuple[Variability, ...]) -> tuple[Variability, ...]:
    src = "Fanta 2015 CL IIV 13 % for S-ketamine (pk.md §1b), borrowed for racemic: unconfirmed"
    return tuple(
        Variability("CL", _BORROWED_CL_CV, Scale.LOG, src) if v.parameter == "CL" else v for v in var
    )


_D_V1, _D_CL, _D_Q, _D_VP = _micro(0.063, 0.4381, 0.5921, 0.2470, 0.5900, 0.0146)
DOMINO_1984: Final = MammillaryModel(
    key="domino1984",
    name="Domino 1984",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.ARTERIAL,
    # V1 0.063 L/kg; k10 0.4381, k12 0.5921, k13 0.5900, k21 0.2470, k31 0.0146 /min (opentiva values).
    source=(
        "Domino 1984, Clin Pharmacol Ther 36:645 [2°], as encoded in stanpumpR, opentiva and SimTIVA "
        "(pk.md §1a)"
    ),
    fitted_population="adults",
    scaling=WeightScaling.PER_KG,
    v1_l=_D_V1,
    cl_l_min=_D_CL,
    q_l_min=_D_Q,
    vp_l=_D_VP,
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(2)),
    unconfirmed=(
        "Domino 1984: sampling site not checked in the paper; pk.md §2 classes it with the arterial-type "
        "models",
    ),
)

KAMP_2020: Final = MammillaryModel(
    key="kamp2020",
    name="Kamp 2020 (arterial 3-cmt part)",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.ARTERIAL,
    # V1 25, V2 56, V3 157 L × WT/70; CL 84, Q2 161, Q3 79 L/h × (WT/70)^0.75 (SimTIVA pharmacology.js).
    source="Kamp 2020, Anesthesiology 133:1192; arterial part as encoded in SimTIVA (pk.md §1a)",
    fitted_population="14 pooled data sets (adults)",
    scaling=WeightScaling.ALLOMETRIC,
    v1_l=25.0,
    cl_l_min=84.0 / _H,
    q_l_min=(161.0 / _H, 79.0 / _H),
    vp_l=(56.0, 157.0),
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(2)),
    unconfirmed=("Kamp 2020: the venous delay compartments are not encoded (parameters not found)",),
)

_C_V1, _C_CL, _C_Q, _C_VP = _micro(1.7522, 0.0109, 0.0186, 0.0137)
CLEMENTS_1981: Final = MammillaryModel(
    key="clements1981",
    name="Clements 1981 (Clements250)",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.PLASMA_MODEL_FITTED,
    # V1 1.7522 L/kg; k10 0.0109, k12 0.0186, k21 0.0137 /min (opentiva class Clements250).
    source="Clements & Nimmo 1981, Br J Anaesth 53:27; opentiva Clements250 (pk.md §1a)",
    fitted_population="adults, 250 µg/kg bolus",
    scaling=WeightScaling.PER_KG,
    v1_l=_C_V1,
    cl_l_min=_C_CL,
    q_l_min=_C_Q,
    vp_l=_C_VP,
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(1)),
    unconfirmed=("Clements 1981: opentiva values not checked against the paper (pk.md §1a)",),
)

_HJ_V1, _HJ_CL, _HJ_Q, _HJ_VP = _micro(1.08, 0.0333, 0.0088, 0.0030)
HIJAZI_2003: Final = MammillaryModel(
    key="hijazi2003",
    name="Hijazi 2003 (ICU, brain/spinal injury)",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.PLASMA_MODEL_FITTED,
    # V1 1.08 L/kg; k10 0.0333, k12 0.0088, k21 0.0030 /min (opentiva class Hijazi).
    source="Hijazi 2003, Br J Anaesth, doi:10.1093/bja/aeg028; opentiva Hijazi (pk.md §1a)",
    fitted_population="ICU patients with brain or spinal injury",
    scaling=WeightScaling.PER_KG,
    v1_l=_HJ_V1,
    cl_l_min=_HJ_CL,
    q_l_min=_HJ_Q,
    vp_l=_HJ_VP,
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(1)),
    unconfirmed=("Hijazi 2003: CL 36 mL/kg/min looks high; check the paper (pk.md §1a)",),
)

HERD_2007: Final = MammillaryModel(
    key="herd2007",
    name="Herd 2007 (children 1–14 y)",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.PLASMA_MODEL_FITTED,
    # V1 38.7, V2 102 L/70 kg; CL 90, Q 215 L/h/70 kg, allometric (opentiva class Herd).
    source="Herd 2007, Paediatr Anaesth, doi:10.1111/j.1460-9592.2006.02145.x (pk.md §1a)",
    fitted_population="children 1–14 y",
    scaling=WeightScaling.ALLOMETRIC,
    v1_l=38.7,
    cl_l_min=90.0 / _H,
    q_l_min=(215.0 / _H,),
    vp_l=(102.0,),
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(1)),
)

HORNIK_2018: Final = MammillaryModel(
    key="hornik2018",
    name="Hornik 2018 (children)",
    drug=Drug.KETAMINE,
    sample_site=SampleSite.PLASMA_MODEL_FITTED,
    # V1 32.8, V2 152 L/70 kg; CL 38.9, Q 54.9 L/h/70 kg, allometric (opentiva class Hornik).
    source="Hornik 2018, J Clin Pharmacol, doi:10.1002/jcph.1116 (pk.md §1a)",
    fitted_population="children, 2–176 kg",
    scaling=WeightScaling.ALLOMETRIC,
    v1_l=32.8,
    cl_l_min=38.9 / _H,
    q_l_min=(54.9 / _H,),
    vp_l=(152.0,),
    absorption=RACEMIC_ABSORPTION,
    variability=_with_borrowed_cl(_racemic_variability(1)),
)


@dataclass(frozen=True)
class PerezRuixoModel:
    """Perez-Ruixo 2021 esketamine + noresketamine model (pk.md §1b). Rates in 1/h, volumes in L.

    Structure (the printed ODEs contain typos; this follows Fig. 1 and the derived checks in pk.md):
    nasal depot –ka_n→ central; swallowed part (1−FRn)·Fgut zero-order over Dsw into a gut depot
    –ka_sw→ liver; oral solution Fgut zero-order over Dpo into a depot –ka_po→ liver; central ⇄ Vp1
    (Q1), Vp2 (Q2), liver Vh (Qh, well stirred); liver eliminates by kel (other metabolites) and kmet
    (→ noresketamine central Vcn ⇄ Vpn via Q3, eliminated by CLn). Each device after the first in a
    session has FRn × 0.62. Typical hepatic E = 0.722, CL = Qh·E = 109 L/h (pk.md §1b, derived).
    """

    key: str = "perezruixo2021"
    name: str = "Perez-Ruixo 2021"
    drug: Drug = Drug.ESKETAMINE
    sample_site: SampleSite = SampleSite.PLASMA_MODEL_FITTED
    source: str = (
        "Perez-Ruixo 2021, Clin Pharmacokinet 60:501, doi:10.1007/s40262-020-00953-4; Table 3 as "
        "transcribed in nlmixr2lib (pk.md §1b)"
    )
    fitted_population: str = "820 healthy subjects and TRD patients"
    vc_l: float = 192.0  # Vc
    q1_l_h: float = 84.3  # Q1
    vp1_l: float = 143.0  # Vp1
    q2_l_h: float = 37.6  # Q2
    vp2_l: float = 417.0  # Vp2
    qh_l_h: float = 151.0  # Qh, hepatic blood flow
    vh_l: float = 101.0  # Vh, hepato-portal
    kel_h: float = 1.11  # to other metabolites
    kmet_h: float = 2.77  # to noresketamine
    frn: float = 0.54  # nasal-cavity fraction of the first 28-mg device
    frn_later_device_factor: float = 0.62  # each further device: FRn × 0.62
    ka_n_h: float = 2.93  # nasal absorption, direct to central
    dsw_h: float = 0.53  # zero-order duration of the swallowed part
    ka_sw_h: float = 1.45
    dpo_h: float = 0.32  # zero-order duration of an oral solution
    ka_po_h: float = 0.97
    fgut: float = 0.64
    vcn_l: float = 70.0  # noresketamine Vcn/F (apparent)
    cln_l_h: float = 38.0  # CLn/F
    vpn_l: float = 115.0  # Vpn/F
    q3_l_h: float = 26.1  # Q3/F
    asian_kel_factor: float = 0.36  # Asian → kel × 0.36
    asian_cln_factor: float = 0.81  # Asian → CLn × 0.81
    japanese_frn_factor: float = 1.34  # Japanese → FRn × 1.34
    qh_decline_l_h_per_year_over_60: float = 2.19  # Qh − 2.19 L/h per year above 60
    mg_per_device: float = 28.0  # FRn was estimated per 28-mg device
    variability: tuple[Variability, ...] = (
        Variability("Vc", 0.275, Scale.LOG, "Perez-Ruixo 2021 Table 3 (pk.md §1b)"),
        Variability("Vp1", 0.493, Scale.LOG, "Perez-Ruixo 2021 Table 3 (pk.md §1b)"),
        Variability("Qh", 0.232, Scale.LOG, "Perez-Ruixo 2021 Table 3 (pk.md §1b)"),
        Variability("kel", 1.20, Scale.LOG, "Perez-Ruixo 2021 Table 3 (pk.md §1b)"),
        Variability("ka_n", 0.615, Scale.LOG, "Perez-Ruixo 2021 Table 3 (pk.md §1b)"),
        # 70.8 "on the logit scale": read as the SD of an additive logit-scale eta (as nlmixr2lib does).
        Variability("FRn", 0.708, Scale.LOGIT, "Perez-Ruixo 2021 Table 3 (pk.md §1b), SD on logit scale"),
        # The paper also has IIV on these; the values are not in pk.md, so the default CV is used.
        Variability("Vh", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
        Variability("ka_sw", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
        Variability("ka_po", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
        Variability("kmet", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
        Variability("Vcn", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
        Variability("CLn", None, Scale.LOG, "IIV in the paper, value not in pk.md: default (unconfirmed)"),
    )
    unconfirmed: tuple[str, ...] = (
        "Perez-Ruixo 2021: noresketamine AUC is over-predicted 1.4–1.56× (nlmixr2lib caveat, pk.md §1b)",
    )

    @property
    def routes(self) -> frozenset[Route]:
        return frozenset({Route.IV, Route.INTRANASAL, Route.ORAL})


PEREZ_RUIXO_2021: Final = PerezRuixoModel()

PKModel = MammillaryModel | PerezRuixoModel

MODELS: Final[dict[str, PKModel]] = {
    m.key: m
    for m in (KAMP_2020, DOMINO_1984, CLEMENTS_1981, HIJAZI_2003, HERD_2007, HORNIK_2018, PEREZ_RUIXO_2021)
}
_ALIASES: Final = {
    "domino": "domino1984",
    "kamp": "kamp2020",
    "clements": "clements1981",
    "clements250": "clements1981",
    "hijazi": "hijazi2003",
    "herd": "herd2007",
    "hornik": "hornik2018",
    "perezruixo": "perezruixo2021",
    "perez-ruixo": "perezruixo2021",
}
DEFAULT_MODEL: Final = {Drug.KETAMINE: "kamp2020", Drug.ESKETAMINE: "perezruixo2021"}


def get_model(name: str) -> PKModel:
    """Look a model up by key or short name (case-insensitive). Raises KeyError if unknown."""
    key = name.strip().lower().replace(" ", "").replace("_", "")
    key = _ALIASES.get(key, key)
    return MODELS[key]


def models_for(drug: Drug) -> tuple[PKModel, ...]:
    return tuple(m for m in MODELS.values() if m.drug is drug)
