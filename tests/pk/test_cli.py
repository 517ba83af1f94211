"""`ketaclinic pk simulate` via main([...])."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ketaclinic.pk.cli import main

IV = ["simulate", "--drug", "ketamine", "--route", "iv", "--dose", "0.5mg/kg", "--weight-kg", "70"]


def run_json(capsys: pytest.CaptureFixture[str], args: list[str]) -> dict[str, object]:
    assert main([*args, "--json"]) == 0
    out: dict[str, object] = json.loads(capsys.readouterr().out)
    return out


def test_iv_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, [*IV, "--duration", "40min", "--at", "40,80,110", "--model", "kamp"])
    assert out["model"] == "kamp2020" and out["sample_site"] == "arterial"
    # pk.md §2 derived for Kamp: 253 / 74 / 54 ng/mL at 40 / 80 / 110 min
    at = out["at"]
    assert isinstance(at, dict)
    assert at["40"] == pytest.approx(253, abs=0.6)
    assert at["80"] == pytest.approx(74, abs=0.6)
    assert at["110"] == pytest.approx(54, abs=0.6)
    assert out["cmax_ng_ml"] == pytest.approx(253.1, abs=0.1) and out["tmax_min"] == 40.0
    assert out["dose_mg"] == 35.0
    assert isinstance(out["auc_ng_h_ml"], float) and "bands" not in out
    assert isinstance(out["threshold"], dict) and out["threshold"]["ng_ml"] == 100.0


def test_population_bands_in_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = [*IV, "--duration", "40min", "--at", "40", "--population", "200", "--seed", "3"]
    a = run_json(capsys, args)
    b = run_json(capsys, args)
    bands = a["bands"]
    assert isinstance(bands, dict)
    assert bands == b["bands"]
    at40 = bands["at"]["40"]
    assert at40["p5"] <= at40["p50"] <= at40["p95"]
    assert bands["n"] == 200 and bands["seed"] == 3
    assert any("IIV" in u for u in a["unconfirmed"])  # type: ignore[attr-defined]


def test_esketamine_devices_and_covariates(capsys: pytest.CaptureFixture[str]) -> None:
    base = ["simulate", "--drug", "esketamine", "--route", "intranasal", "--dose", "84mg"]
    out = run_json(capsys, base)
    assert out["model"] == "perezruixo2021" and out["cmax_ng_ml"] == pytest.approx(101.0, rel=0.02)
    jp = run_json(capsys, [*base, "--ancestry", "japanese", "--age", "45"])
    assert jp["cmax_ng_ml"] == pytest.approx(131.3, rel=0.02)  # pk.md §2 row 12
    late = run_json(capsys, [*base, "--device-times", "0,20,45"])
    assert late["cmax_ng_ml"] < out["cmax_ng_ml"]  # type: ignore[operator]
    assert out["metabolite"]["name"] == "noresketamine"  # type: ignore[index]


def test_other_racemic_routes(capsys: pytest.CaptureFixture[str]) -> None:
    for route, tmax in (("im", 10.0), ("sublingual", 45.0), ("oral", 57.5)):
        out = run_json(
            capsys,
            ["simulate", "--drug", "ketamine", "--route", route, "--dose", "50mg", "--weight-kg", "70"],
        )
        assert out["tmax_min"] == pytest.approx(tmax, abs=0.5)
    bolus = run_json(capsys, [*IV, "--duration", "0"])
    assert bolus["tmax_min"] == 0.0


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (
            ["simulate", "--drug", "ketamine", "--route", "iv", "--dose", "0.5mg/kg", "--duration", "40min"],
            "--weight-kg",
            "weight",
        ),
        (
            ["simulate", "--drug", "esketamine", "--route", "intranasal", "--dose", "50mg"],
            "--dose",
            "multiple of 28",
        ),
        (
            ["simulate", "--drug", "esketamine", "--route", "sublingual", "--dose", "56mg"],
            "--route",
            "sublingual",
        ),
        ([*IV[:-1], "-70", "--duration", "40min"], "--weight-kg", "more than 0"),
        (
            [
                "simulate",
                "--drug",
                "ketamine",
                "--route",
                "oral",
                "--dose",
                "50mg",
                "--weight-kg",
                "70",
                "--duration",
                "5min",
            ],
            "--duration",
            "IV",
        ),
        (IV, "--duration", "--duration"),
        ([*IV, "--duration", "40min", "--at", "40,-5"], "--at", "0 min or later"),
        ([*IV, "--duration", "40min", "--model", "perezruixo"], "--model", "esketamine model"),
        ([*IV, "--duration", "40min", "--plot", "x.pdf"], "--plot", ".svg or .png"),
        (["simulate", "--drug", "ketamine", "--route", "iv", "--dose", "lots"], "--dose", "not a dose"),
    ],
)
def test_bad_arguments_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], args: list[str], field: str, words: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    line = next((ln for ln in err.splitlines() if ln.strip().startswith(f"{field}:")), "")
    assert words in line, err


def test_all_problems_are_reported_together(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "simulate",
        "--drug",
        "ketamine",
        "--route",
        "iv",
        "--dose",
        "0.5mg/kg",
        "--age",
        "-3",
        "--population",
        "0",
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    for field in ("--weight-kg", "--duration", "--age", "--population"):
        assert f"{field}:" in err


def test_unknown_choice_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--drug", "propofol", "--route", "iv", "--dose", "1mg"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["simulate", "--help"]) == 0
    assert "--weight-kg" in capsys.readouterr().out


def test_models_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "kamp2020" in out and "perezruixo2021" in out and "arterial" in out


def test_text_output_and_plots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    svg = tmp_path / "curve.svg"
    assert main([*IV, "--duration", "40min", "--population", "100", "--plot", str(svg), "--at", "40"]) == 0
    text = capsys.readouterr().out
    assert "Kamp 2020" in text and "arterial" in text and "at 40 min" in text and "Unconfirmed" in text
    content = svg.read_text()
    assert content.startswith("<svg") and "<script" not in content
    assert "Ketamine IV 0.5 mg/kg (35 mg) over 40 min — Kamp 2020" in content
    assert "threshold 100 ng/mL" in content and "5–95 %" in content and "Time (min)" in content
    png = tmp_path / "curve.png"
    assert (
        main(
            [
                "simulate",
                "--drug",
                "esketamine",
                "--route",
                "intranasal",
                "--dose",
                "56mg",
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
