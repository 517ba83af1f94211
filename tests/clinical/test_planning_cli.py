"""The planning CLI: ketaclinic protocols / dose / schedule."""

from __future__ import annotations

import json

import pytest

from ketaclinic.clinical.planning_cli import main
from ketaclinic.clinical.protocol_library import PROTOCOLS

DOSE = ["dose", "--protocol", "iv-trd-elektd", "--weight-kg", "80", "--height-cm", "180"]


def test_protocols_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols"]) == 0
    out = capsys.readouterr().out
    for pid in PROTOCOLS:
        assert pid in out
    assert "Esketamine (SPRAVATO) · intranasal · Treatment-resistant depression" in out


def test_protocols_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocols", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in rows] == list(PROTOCOLS)
    elektd = rows[0]
    assert (elektd["drug"], elektd["route"], elektd["indications"]) == ("ketamine", "iv", ["trd", "mdd"])


def test_dose_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DOSE, "--concentration", "10", "--bag-ml", "100"]) == 0
    out = capsys.readouterr().out
    # 0.5 × 80 = 40 mg; 4 mL of 10 mg/mL; 96 mL diluent; 100 mL over 40 min = 150 mL/h
    assert "Dose: 40.00 mg" in out
    assert "Draw up: 4.00 mL of 10 mg/mL" in out
    assert "Add 96.00 mL diluent to make 100 mL" in out
    assert "Pump rate: 150.0 mL/h" in out
    assert "SECOND-PERSON CHECK REQUIRED" in out


def test_dose_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DOSE, "--concentration", "50", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["dose_mg"] == pytest.approx(40.0) and data["volume_to_draw_ml"] == pytest.approx(0.8)
    assert data["basis"] == "actual" and data["second_person_check"] is True


def test_dose_esketamine_devices(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "dose",
        "--protocol",
        "esk-trd-label",
        "--weight-kg",
        "70",
        "--height-cm",
        "170",
        "--session",
        "2",
    ]
    assert main([*args, "--amount", "84"]) == 0
    out = capsys.readouterr().out
    assert "+ 0 min  Device 1" in out and "+10 min  Device 3" in out


def test_ideal_basis_needs_sex(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DOSE, "--basis", "ideal"]) == 2
    assert "sex" in capsys.readouterr().err
    assert main([*DOSE, "--basis", "ideal", "--sex", "male"]) == 0
    # IBW 74.99 kg × 0.5 = 37.50 mg
    assert "Dose: 37.50 mg" in capsys.readouterr().out


def test_undiluted_100_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DOSE, "--concentration", "100"]) == 2
    assert "REFUSED" in capsys.readouterr().err


def test_soft_limit_needs_override_reason(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*DOSE, "--amount", "0.9"]) == 2
    assert "--override-reason" in capsys.readouterr().err
    assert main([*DOSE, "--amount", "0.9", "--override-reason", "no response at 0.75"]) == 0
    assert "Dose: 72.00 mg" in capsys.readouterr().out  # 0.9 × 80


def test_bad_inputs_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dose", "--protocol", "nope", "--weight-kg", "80", "--height-cm", "180"]) == 2
    assert "no protocol with the ID 'nope'" in capsys.readouterr().err
    assert main(["dose", "--protocol", "iv-trd-elektd", "--weight-kg", "800", "--height-cm", "18"]) == 2
    err = capsys.readouterr().err
    assert "weight_kg" in err and "height_cm" in err
    assert main(["dose", "--protocol", "iv-trd-elektd"]) == 2  # missing required options
    assert main([*DOSE, "--concentration", "20"]) == 2  # not a stocked strength


def test_schedule_default_site(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["schedule", "--protocol", "iv-trd-elektd", "--start", "2026-03-07", "--weight-kg", "80"]) == 0
    )
    out = capsys.readouterr().out
    assert "default opening Mon–Fri 08:00–18:00, unlimited capacity" in out
    assert "Mon 9 Mar 2026 08:00" in out and "(= 40.0 mg at 80 kg actual weight)" in out
    assert "Sat 7 Mar: clinic closed on Saturdays" in out


def test_schedule_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "schedule",
        "--protocol",
        "esk-trd-label",
        "--start",
        "2026-03-02",
        "--tz",
        "America/New_York",
        "--json",
    ]
    assert main(args) == 0
    data = json.loads(capsys.readouterr().out)
    first = data["sessions"][0]
    assert first["start"] == "2026-03-02T08:00:00-05:00" and first["dose_text"] == "56 mg"
    assert data["zone"] == "America/New_York" and "unlimited capacity" in data["site"]
    assert len(data["sessions"]) == 16  # 8 + 4 + the first 4 of the open-ended phase


def test_schedule_bad_inputs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "--protocol", "iv-trd-elektd", "--start", "2026-02-30"]) == 2
    assert "--start" in capsys.readouterr().err
    assert (
        main(["schedule", "--protocol", "iv-trd-elektd", "--start", "2026-03-02", "--tz", "Mars/Olympus"])
        == 2
    )
    assert "--tz" in capsys.readouterr().err


def test_help_is_written_for_staff(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dose", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: ketaclinic dose" in out and "vial strength" in out
