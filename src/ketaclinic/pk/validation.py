"""Predictions beside every validation point of pk.md §2 (regenerates docs/pk-validation.md tables).

    python -m ketaclinic.pk.validation        # prints the markdown tables

tests/pk/test_validation_doc.py checks that the document still holds exactly this output.
"""

from __future__ import annotations

import math

import numpy as np

from .linear import LinearSystem, decompose
from .models import DOMINO_1984, KAMP_2020, MODELS, PEREZ_RUIXO_2021, MammillaryModel, PKModel
from .regimen import (
    Ancestry,
    Covariates,
    Dose,
    Drug,
    NasalSession,
    Regimen,
    Route,
    iv_infusion,
    nasal_devices,
)
from .solve import simulate
from .systems import build

WEIGHT_KG = 70.0
RACEMIC_KEYS = ("domino1984", "kamp2020", "clements1981", "hijazi2003", "herd2007", "hornik2018")
OBSERVED_EOI_NG_ML = 185.0  # pk.md §2 row 1: Zarate 2006, venous, end of 0.5 mg/kg/40 min


def _pct(pred: float, ref: float) -> str:
    value = round(100 * (pred / ref - 1), 1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{value:+.1f} %"


def _racemic_iv_table() -> list[str]:
    reg = Regimen(Drug.KETAMINE, (iv_infusion(0.5 * WEIGHT_KG, 40.0),))
    lines = [
        "| Model | Sample site | 40 min | 80 min | 110 min | 230 min | 24 h | vs observed 185 at 40 min (row 1) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key in RACEMIC_KEYS:
        res = simulate(reg, key, covariates=Covariates(weight_kg=WEIGHT_KG), at_min=(40, 80, 110, 230, 1440))
        vals = " | ".join(f"{res.at(t):.1f}" for t in (40, 80, 110, 230)) + f" | {res.at(1440):.2f}"
        lines.append(
            f"| {res.model.name} | {res.model.sample_site.value} | {vals} | "
            f"{_pct(res.at(40), OBSERVED_EOI_NG_ML)} |"
        )
    return lines


def _clearance_l_min(model: PKModel) -> float:
    assert isinstance(model, MammillaryModel)
    return model.disposition(WEIGHT_KG)[1]


def _row3_and_more() -> list[str]:
    lines = [
        "| Row | Point (observed) | Model | Prediction | Difference / verdict |",
        "|---|---|---|---|---|",
    ]
    reg = Regimen(Drug.KETAMINE, (iv_infusion(0.5 * WEIGHT_KG, 40.0),))
    for model in (DOMINO_1984, KAMP_2020, MODELS["clements1981"]):
        res = simulate(reg, model, covariates=Covariates(weight_kg=WEIGHT_KG), at_min=(10, 20, 30, 40))
        during = [res.at(t) for t in (10, 20, 30, 40)]
        inside = all(100 <= c <= 250 for c in during[1:])
        lines.append(
            f"| 3 | 100–250 ng/mL during the infusion, with dissociation | {model.name} | "
            f"{' / '.join(f'{c:.0f}' for c in during)} at 10/20/30/40 min | "
            f"{'inside' if inside else 'partly outside'} the range from 20 min |"
        )
    bolus = Regimen(Drug.KETAMINE, (Dose(0.0, 10.0, Route.IV),))
    for model in (DOMINO_1984, KAMP_2020, MODELS["clements1981"]):
        res = simulate(
            bolus, model, covariates=Covariates(weight_kg=WEIGHT_KG), horizon_min=48 * 60, at_min=(2,)
        )
        auc_inf = 10.0 / _clearance_l_min(model) * 1000.0 / 60.0  # D/CL in mg·min/L → ng·h/mL (= µg·h/L)
        lines.append(
            f"| 4 | 10 mg IV: Cmax 296 ng/mL (Tmax 2 min), AUC 113 µg·h/L | {model.name} (70 kg assumed) | "
            f"C(2 min) {res.at(2):.0f} ng/mL; AUC0–∞ {auc_inf:.0f} ng·h/mL | "
            f"C(2 min) {_pct(res.at(2), 296)}; AUC {_pct(auc_inf, 113)} |"
        )
    rate = 0.041 * WEIGHT_KG  # 41 µg/kg/min
    for model in (DOMINO_1984, KAMP_2020, MODELS["clements1981"]):
        cl = _clearance_l_min(model)
        css = rate / cl * 1000.0
        per_kg = cl / WEIGHT_KG * 1000.0
        lines.append(
            f"| 5 | 41 µg/kg/min: steady state ≈ 2200 ng/mL; implied CL ≈ 19 mL/kg/min | {model.name} | "
            f"Css {css:.0f} ng/mL; CL {per_kg:.1f} mL/kg/min | Css {_pct(css, 2200)} |"
        )
    esk_bolus = simulate(Regimen(Drug.ESKETAMINE, (Dose(0.0, 20.0, Route.IV),)), PEREZ_RUIXO_2021)
    lines.append(
        f"| 6 | S-ketamine 20 mg IV: arterial peak 273 / 260 ng/mL | Perez-Ruixo 2021 (bolus) | "
        f"{esk_bolus.cmax_ng_ml:.0f} ng/mL | {_pct(esk_bolus.cmax_ng_ml, 273)}: miss (see text) |"
    )
    lines.append(
        "| 7 | S-ketamine steady state 159 / 1959 ng/mL | — | infusion rates not in the reference | "
        "not comparable |"
    )
    lines.append(
        "| 8 | venous concentration linear in TCI target (R = 0.997) | all | linear by construction | "
        "consistent (no values to compare) |"
    )
    return lines


def _esketamine_table() -> list[str]:
    published = {
        ("Caucasian <60 y", 1): (43.8, 147.0),
        ("Caucasian <60 y", 2): (72.5, 255.0),
        ("Caucasian <60 y", 3): (101.0, 362.0),
        ("Japanese <60 y", 2): (94.5, None),
        ("Japanese <60 y", 3): (131.3, None),
        ("Caucasian, age 70", 2): (73.8, 276.0),
        ("Caucasian, age 70", 3): (102.7, 391.0),
    }
    patients = {
        "Caucasian <60 y": Covariates(age_years=45),
        "Japanese <60 y": Covariates(age_years=45, ancestry=Ancestry.JAPANESE),
        "Caucasian, age 70": Covariates(age_years=70),
    }
    lines = [
        "| Row | Stratum | Dose | Published Cmax / AUC0–24 | Predicted (devices 5 min apart) | Difference | "
        "Predicted (one event, effective FRn) |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = {"Caucasian <60 y": "9–11", "Japanese <60 y": "12", "Caucasian, age 70": "13"}
    for (stratum, n_dev), (cmax, auc) in published.items():
        p = patients[stratum]
        a = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(n_dev),)), PEREZ_RUIXO_2021, covariates=p)
        b = simulate(
            Regimen(Drug.ESKETAMINE, (effective_frn_session(n_dev),)), _effective_model(n_dev), covariates=p
        )
        pub = f"{cmax:.1f} / {auc:.0f}" if auc else f"{cmax:.1f} / —"
        diff = _pct(a.cmax_ng_ml, cmax) + (f"; {_pct(a.auc_ng_h_ml, auc)}" if auc else "")
        lines.append(
            f"| {rows[stratum]} | {stratum} | {28 * n_dev} mg | {pub} | "
            f"{a.cmax_ng_ml:.1f} / {a.auc_ng_h_ml:.0f} | "
            f"{diff} | {b.cmax_ng_ml:.1f} / {b.auc_ng_h_ml:.0f} |"
        )
    return lines


def effective_frn_session(n_devices: int) -> NasalSession:
    """All devices of a dose as one event at t = 0 (used with _effective_model)."""
    return NasalSession(tuple(0.0 for _ in range(n_devices)), 28.0)


def _effective_model(n_devices: int) -> PKModel:
    """pk.md's derived check: one dose event at t = 0 with FRn_eff = FRn·(1 + (N−1)·0.62)/N on
    every device."""
    from dataclasses import replace

    m = PEREZ_RUIXO_2021
    frn_eff = m.frn * (1 + (n_devices - 1) * m.frn_later_device_factor) / n_devices
    return replace(m, frn=frn_eff, frn_later_device_factor=1.0)


def _label_rows() -> list[str]:
    m = PEREZ_RUIXO_2021
    lines = ["| Row | Point (label) | Prediction | Verdict |", "|---|---|---|---|"]
    tmax_after_last = []
    for n in (1, 2, 3):
        res = simulate(Regimen(Drug.ESKETAMINE, (nasal_devices(n),)), m)
        tmax_after_last.append(res.tmax_min - 5.0 * (n - 1))
    ok = all(20 <= t <= 40 for t in tmax_after_last)
    lines.append(
        f"| 14 | Tmax 20–40 min after the last spray | {' / '.join(f'{t:.1f}' for t in tmax_after_last)} min "
        f"(28/56/84 mg) | {'inside' if ok else 'outside'} |"
    )
    t_half = esketamine_terminal_half_life_h()
    lines.append(
        f"| 14 | terminal t½ 7–12 h | {t_half:.1f} h | {'inside' if 7 <= t_half <= 12 else 'outside'} |"
    )
    clint = m.vh_l * (m.kel_h + m.kmet_h)
    e = clint / (m.qh_l_h + clint)
    cl = m.qh_l_h * e
    vss = m.vc_l + m.vp1_l + m.vp2_l
    lines.append(
        f"| 15 | IV: CL 89 L/h, Vss 709 L | CL = Qh·E = {cl:.0f} L/h (E = {e:.3f}); "
        f"Vc+Vp1+Vp2 = {vss:.0f} L | "
        f"CL {_pct(cl, 89)}, Vss {_pct(vss, 709)} |"
    )
    iv = simulate(Regimen(Drug.ESKETAMINE, (iv_infusion(28.0, 40.0),)), m)
    po = simulate(Regimen(Drug.ESKETAMINE, (Dose(0.0, 84.0, Route.ORAL),)), m)
    lines.append(
        f"| derived | 28 mg IV over 40 min: Cmax 99.5 at 40 min | "
        f"{iv.cmax_ng_ml:.1f} at {iv.tmax_min:g} min | "
        f"{_pct(iv.cmax_ng_ml, 99.5)} |"
    )
    lines.append(
        f"| derived | 84 mg oral: Cmax 25.8 at 86 min | {po.cmax_ng_ml:.1f} at {po.tmax_min:g} min | "
        f"{_pct(po.cmax_ng_ml, 25.8)} |"
    )
    return lines


def esketamine_terminal_half_life_h() -> float:
    """ln 2 / slowest eigenvalue of the esketamine block (central, Vp1, Vp2, liver; no depots for IV)."""
    built = build(
        PEREZ_RUIXO_2021, Regimen(Drug.ESKETAMINE, (Dose(0.0, 1.0, Route.IV),)), Covariates(), {}, 1
    )
    block = built.system.matrix[:, :4, :4]
    sub = LinearSystem(block, built.system.outputs[:, :, :4])
    rates = -decompose(sub)[0][0]
    return math.log(2) / float(np.min(rates)) / 60.0


def markdown() -> str:
    parts = [
        "### Racemic IV 0.5 mg/kg over 40 min, 70 kg (rows 1–2; ng/mL)",
        "",
        *_racemic_iv_table(),
        "",
        "### Other racemic and S-ketamine points (rows 3–8)",
        "",
        *_row3_and_more(),
        "",
        "### Esketamine intranasal, Perez-Ruixo 2021 Table 4 (rows 9–13; Cmax ng/mL, AUC0–24 ng·h/mL)",
        "",
        *_esketamine_table(),
        "",
        "### Esketamine label and derived checks (rows 14–15)",
        "",
        *_label_rows(),
    ]
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    print(markdown(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
