"""`ketaclinic score INSTRUMENT VALUE... [--json]` via main(argv)."""

from __future__ import annotations

import json

import pytest

from ketaclinic.clinical.instruments import INSTRUMENTS
from ketaclinic.clinical.instruments.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_plain_output(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "phq9", "1", "1", "2", "1", "0", "1", "2", "1", "1")
    assert rc == 0 and err == ""
    # 1+1+2+1+0+1+2+1+1 = 10 → Moderate (10–14); item 9 = 1 → suicidality
    assert "Total: 10 of 0–27" in out
    assert "Band: Moderate (10–14)" in out
    assert "SUICIDALITY: PHQ-9 item 9 is 1" in out
    assert "rule phq9_item9_suicidality" in out
    assert len(out.splitlines()) < 15


def test_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "phq9", "0", "0", "0", "0", "0", "0", "0", "3", "0", "--json")
    assert rc == 0
    data = json.loads(out)
    assert {"instrument", "total", "band", "flags", "subscores"} <= set(data)
    assert data["instrument"] == "phq9"
    assert data["total"] == 3
    assert data["band"] == {"label": "Minimal", "low": 0, "high": 4}
    assert data["flags"] == []
    assert data["subscores"] == {}


def test_json_flags_and_subscores(capsys: pytest.CaptureFixture[str]) -> None:
    values = ["2"] * 20  # total 40, every item endorsed
    rc, out, _ = run(capsys, "pcl5", *values, "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["total"] == 40
    assert data["subscores"] == {"cluster_b": 10, "cluster_c": 4, "cluster_d": 14, "cluster_e": 12}
    assert [f["code"] for f in data["flags"]] == ["pcl5_provisional_ptsd_cutpoint", "pcl5_dsm5_pattern"]


def test_cssrs_values_and_risk(capsys: pytest.CaptureFixture[str]) -> None:
    # items 1–6: yes, yes, no, no, no, yes; item 6 within 3 months → high
    rc, out, _ = run(capsys, "cssrs-screen", "1", "1", "0", "0", "0", "1", "1", "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["total"] is None and data["risk"] == "high"
    assert [f["code"] for f in data["flags"]] == ["cssrs_suicide_risk"]
    assert data["flags"][0]["confirmed"] is False


def test_madrs_item10_flag_and_its_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    values = ["0"] * 9 + ["2"]
    rc, out, _ = run(capsys, "madrs", *values)
    assert rc == 0 and "SUICIDALITY: MADRS item 10 (suicidal thoughts) is 2 (above 0)" in out
    rc, out, _ = run(capsys, "madrs", *values, "--madrs-item10-above", "2", "--json")
    assert rc == 0 and json.loads(out)["flags"] == []
    rc, _, err = run(capsys, "phq9", *(["0"] * 9), "--madrs-item10-above", "2")
    assert rc == 2 and "applies to madrs only" in err
    rc, _, err = run(capsys, "madrs", *values, "--madrs-item10-above", "6")
    assert rc == 2 and "item 10 is scored 0–6" in err


def test_bpi_order_worst_least_average_now_then_interference(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "bpi-sf", "8", "2", "5", "4", "3", "3", "4", "5", "2", "6", "1", "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["subscores"]["severity"] == 4.75  # (8+2+5+4)/4
    assert data["subscores"]["interference"] == pytest.approx(24 / 7)  # (3+3+4+5+2+6+1)/7


def test_moaas_with_pre_dose(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "moaas", "3", "--pre-dose", "5", "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["pre_dose"] == 5
    assert [f["code"] for f in data["flags"]] == ["moaas_sedation"]
    rc, out, _ = run(capsys, "moaas", "5", "--pre-dose", "5")
    assert rc == 0 and "Flags: none" in out


def test_options_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    ymrs = ["4", "4", "4", "1", "0", "0", "0", "0", "0", "0", "0"]  # total 13
    rc, out, _ = run(capsys, "ymrs", *ymrs)
    assert rc == 0 and "MANIA" in out and "[unconfirmed]" in out
    rc, out, _ = run(capsys, "ymrs", *ymrs, "--ymrs-threshold", "13")
    assert rc == 0 and "Flags: none" in out
    pcl = ["4"] * 8 + ["0"] * 12  # total 32
    rc, out, _ = run(capsys, "pcl5", *pcl, "--pcl5-cutpoint", "31", "--json")
    assert [f["code"] for f in json.loads(out)["flags"]] == ["pcl5_provisional_ptsd_cutpoint"]


def test_invalid_values_exit_2_with_every_reason(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "phq9", "1", "1", "2", "x", "0", "1", "-1", "1")
    assert rc == 2 and out == ""
    assert "item 4: 'x' is not a whole number" in err
    assert "item 7: -1 is outside 0–3" in err
    assert "item 9: missing (8 values given, PHQ-9 needs 9)" in err


def test_invalid_setting_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "pcl5", *["0"] * 20, "--pcl5-cutpoint", "40")
    assert rc == 2 and out == ""
    assert "PCL-5 cut-point 40 is outside the published 31–33" in err
    rc, _, err = run(capsys, "moaas", "3", "--pre-dose", "7")
    assert rc == 2 and "baseline: 7 is outside 0–5" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "hamd", "1")
    assert rc == 2 and out == "" and "invalid choice" in err
    rc, _, err = run(capsys, "phq9")
    assert rc == 2 and "VALUE" in err
    rc, _, err = run(capsys, "phq9", *["0"] * 9, "--pre-dose", "5")
    assert rc == 2 and "--pre-dose applies to moaas only" in err


def test_help_lists_every_scale_and_its_order(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "ketaclinic score" in out
    for code in INSTRUMENTS:
        assert f"  {code} " in out
    assert "worst, least, average, now" in out
    assert "within the past 3 months" in out


@pytest.mark.parametrize("code", list(INSTRUMENTS))
def test_every_scale_scores_its_lowest_values(capsys: pytest.CaptureFixture[str], code: str) -> None:
    values = [str(i.low) for i in INSTRUMENTS[code].items]
    rc, out, _ = run(capsys, code, *values, "--json")
    assert rc == 0
    data = json.loads(out)
    assert data["instrument"] == code
    rng = INSTRUMENTS[code].score_range
    if code in ("cssrs-screen", "bpi-sf"):  # no total
        assert data["total"] is None
    else:
        assert rng is not None and data["total"] == rng.low  # all items at their lowest
