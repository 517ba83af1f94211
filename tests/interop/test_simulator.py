"""Simulator: messages round-trip through our parser and python-hl7; the trajectory has the cited shape."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import hl7
import pytest

from ketaclinic.interop.hl7 import TimeSource, is_device_feed, parse_oru
from ketaclinic.interop.hl7.simulator import (
    EXAMPLE_BASELINE,
    STYLES,
    Baseline,
    Noise,
    SessionShape,
    Style,
    make_vitals_message,
    trajectory_messages,
    vitals_trajectory,
)

EST = timezone(timedelta(hours=-5))
AT = datetime(2026, 3, 1, 9, 40, 0, tzinfo=EST)
EUI = "0123456789ABCDEF"
NO_NOISE = Noise(sbp=0, dbp=0, hr=0, spo2=0, rr=0)


def message(style: Style = "mdc", **overrides: object) -> str:
    kwargs: dict[str, object] = {
        "device_eui64": EUI,
        "bed": "Chair 3",
        "patient_id": "MRN-77",
        "at": AT,
        "sbp": 142,
        "dbp": 91,
        "hr": 78,
        "spo2": 97,
        "rr": 15,
        "control_id": "SIM000001",
        "style": style,
    }
    kwargs.update(overrides)
    return make_vitals_message(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_through_our_parser(style: Style) -> None:
    msg = parse_oru(message(style))
    assert {o.kind.value: o.value for o in msg.observations} == {
        "sbp": 142.0,
        "dbp": 91.0,
        "hr": 78.0,
        "spo2": 97.0,
        "rr": 15.0,
    }
    assert msg.issues == ()
    assert msg.control_id == "SIM000001"
    assert msg.device_id == EUI and msg.sender.eui64 == EUI
    assert msg.location is not None and msg.location.bed == "Chair 3"
    assert [p.id for p in msg.patient_ids] == ["MRN-77"]
    assert {o.observed_at for o in msg.observations} == {AT}
    assert is_device_feed(msg)
    # Every value carries its own OBX-14 (the NIBP group OBX has it too).
    assert msg.observations[0].time_source is TimeSource.OBX


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_through_python_hl7(style: Style) -> None:
    text = message(style)
    assert "\n" not in text and not text.endswith("\r")
    parsed = hl7.parse(text)
    assert str(parsed.segment("MSH")[9]) == "ORU^R01^ORU_R01"
    assert str(parsed.segment("MSH")[10]) == "SIM000001"
    obx = parsed.segments("OBX")
    assert len(obx) == 6  # NIBP group header + 5 values
    assert [str(s[5]) for s in obx[1:]] == ["142", "91", "78", "97", "15"]
    assert str(parsed.segment("PV1")[3]) == "KETACLINIC^^Chair 3"


def test_styles_differ_as_documented() -> None:
    mdc, ucum, mdil = (message(s).split("\r") for s in STYLES)
    assert "266016^MDC_DIM_MMHG^MDC" in mdc[5]
    assert "mm[Hg]^mm[Hg]^UCUM" in ucum[5]
    assert mdil[5].startswith("OBX||NM|0002-4a05^NBPs^MDIL|")  # 150021 = 0x0002:0x4a05
    assert "|F|" in mdil[5] and "|2.4|" in mdil[0] and "PCD_DEC_001" not in mdil[0]
    assert mdc[0].endswith("PCD_DEC_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO")


def test_naive_time_has_no_offset() -> None:
    msg = parse_oru(message(at=datetime(2026, 3, 1, 9, 40)))
    assert all(not o.time_has_offset for o in msg.observations)
    assert msg.observations[0].observed_at == datetime(2026, 3, 1, 9, 40)


def test_missing_values_and_patient() -> None:
    text = message(sbp=None, dbp=None, spo2=None, rr=None, patient_id=None)
    msg = parse_oru(text)
    assert [(o.kind.value, o.value) for o in msg.observations] == [("hr", 78.0)]
    assert msg.patient_ids == ()
    assert len(hl7.parse(text).segments("OBX")) == 1  # no NIBP group without NIBP values


def test_mean_and_decimal_values() -> None:
    msg = parse_oru(message(mean=108, spo2=96.5))
    values = {o.kind.value: o.value for o in msg.observations}
    assert values["map"] == 108.0 and values["spo2"] == 96.5


def test_delimiters_in_bed_and_ids_are_escaped() -> None:
    text = message(bed="Room 2|Chair^B", patient_id="A&B")
    msg = parse_oru(text)
    assert msg.location is not None and msg.location.bed == "Room 2|Chair^B"
    assert msg.patient_ids[0].id == "A&B"
    assert "Room 2\\F\\Chair\\S\\B" in text


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="style"):
        message(style="hl7")
    with pytest.raises(ValueError, match="finite"):
        message(hr=math.nan)


# ---------------------------------------------------------------- trajectory


def test_shape_factor() -> None:
    shape = SessionShape()
    assert shape.factor(-5) == 0.0 and shape.factor(0) == 0.0
    assert shape.factor(40) == 1.0  # peak at 40 min (clinical.md §7.2, §2.6)
    assert shape.factor(20) == pytest.approx(0.5)  # sin²(π/4)
    assert shape.factor(65) == pytest.approx(0.5)  # cos²(π/4), halfway from 40 to 90
    assert shape.factor(90) == 0.0 and shape.factor(120) == 0.0  # resolved by 1.5 h


def test_noise_free_trajectory_values() -> None:
    shape = SessionShape(sbp_rise_mmhg=(10.0, 10.0), dbp_rise_mmhg=(6.0, 6.0))
    dose = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    traj = vitals_trajectory(
        baseline=EXAMPLE_BASELINE, dose_at=dose, seed=3, shape=shape, noise=NO_NOISE, surge=False
    )
    by_min = {s.minutes_post_dose: s for s in traj.samples}
    # −10 … 120 every 10 min: (120 − (−10)) / 10 + 1 = 14 readings.
    assert len(traj.samples) == 14
    assert by_min[-10].at == dose - timedelta(minutes=10)
    assert (by_min[-10].sbp, by_min[-10].dbp, by_min[-10].hr) == (120, 80, 60)
    # 20 min: factor 0.5 → 120 + 5 = 125, 80 + 3 = 83, 60 + 0.95 → 61.
    assert (by_min[20].sbp, by_min[20].dbp, by_min[20].hr) == (125, 83, 61)
    # 40 min: peak → 130/86, HR 60 + 1.9 = 61.9 → 62.
    assert (by_min[40].sbp, by_min[40].dbp, by_min[40].hr) == (130, 86, 62)
    assert (by_min[90].sbp, by_min[90].dbp) == (120, 80)
    assert {s.spo2 for s in traj.samples} == {98} and {s.rr for s in traj.samples} == {14}
    assert (traj.surge, traj.peak_sbp_rise_mmhg, traj.peak_dbp_rise_mmhg) == (False, 10.0, 6.0)


def test_forced_surge_peaks_at_label_thresholds() -> None:
    traj = vitals_trajectory(
        baseline=EXAMPLE_BASELINE,
        dose_at=AT,
        seed=1,
        noise=NO_NOISE,
        surge=True,
    )
    peak = max(traj.samples, key=lambda s: s.sbp)
    # Surge: +40/+25 mmHg at 40 min (clinical.md §2.6) → 160/105.
    assert (peak.minutes_post_dose, peak.sbp, peak.dbp) == (40, 160, 105)
    assert traj.surge


def test_default_rise_stays_within_reported_range() -> None:
    for seed in range(200):
        traj = vitals_trajectory(
            baseline=EXAMPLE_BASELINE, dose_at=AT, seed=seed, noise=NO_NOISE, surge=False
        )
        assert 3.28 <= traj.peak_sbp_rise_mmhg <= 16.0
        assert 3.17 <= traj.peak_dbp_rise_mmhg <= 11.0
        peak = next(s for s in traj.samples if s.minutes_post_dose == 40)
        assert 123 <= peak.sbp <= 136  # 120 + 3.28 → 123 … 120 + 16 = 136


def test_surges_are_occasional() -> None:
    # p = 0.0098 (clinical.md §7.2): over 5000 sessions expect 49, sd √(5000·0.0098·0.9902) ≈ 7.
    count = sum(
        vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=s, end_min=-10).surge
        for s in range(5000)
    )
    assert 20 <= count <= 85


def test_seeded_and_noisy() -> None:
    a = vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=7)
    b = vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=7)
    c = vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=8)
    assert a == b
    assert a.samples != c.samples
    assert len({s.sbp for s in a.samples}) > 3  # noise present


def test_spo2_never_above_100_and_rr_never_negative() -> None:
    base = Baseline(sbp=120, dbp=80, hr=60, spo2=100, rr=0)
    traj = vitals_trajectory(baseline=base, dose_at=AT, seed=5, noise=Noise(spo2=3, rr=3), end_min=600)
    assert max(s.spo2 for s in traj.samples) == 100
    assert min(s.rr for s in traj.samples) == 0


def test_trajectory_argument_checks() -> None:
    with pytest.raises(ValueError, match="interval"):
        vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=1, interval_min=0)
    with pytest.raises(ValueError, match="end_min"):
        vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=1, start_min=10, end_min=0)


def test_trajectory_messages_round_trip() -> None:
    traj = vitals_trajectory(baseline=EXAMPLE_BASELINE, dose_at=AT, seed=11, interval_min=30)
    texts = trajectory_messages(traj.samples, device_eui64=EUI, bed="Chair 1", patient_id="P1", style="ucum")
    assert len(texts) == len(traj.samples) == 5  # −10, 20, 50, 80, 110
    for i, (text, sample) in enumerate(zip(texts, traj.samples, strict=True), start=1):
        msg = parse_oru(text)
        assert msg.control_id == f"SIM{i:06d}"
        got = {o.kind.value: o.value for o in msg.observations}
        assert got == {
            "sbp": sample.sbp,
            "dbp": sample.dbp,
            "hr": sample.hr,
            "spo2": sample.spo2,
            "rr": sample.rr,
        }
        assert msg.observations[0].observed_at == sample.at
