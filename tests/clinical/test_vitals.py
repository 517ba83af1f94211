"""Vital-sign validation, the chairside parser and reading cadence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ketaclinic.clinical.vitals import (
    DEFAULT_PLAUSIBILITY,
    ESKETAMINE_CADENCE,
    IV_CADENCE,
    Checkpoint,
    CheckpointCadence,
    PlausibleRange,
    Treatment,
    VitalField,
    VitalReading,
    VitalsValidationError,
    default_cadence,
    minutes_between,
    next_reading_due,
    overdue,
    parse_chairside_line,
    reading_errors,
    validate_reading,
)

T0 = datetime(2025, 3, 3, 14, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def good(**changes: object) -> VitalReading:
    base = VitalReading(taken_at=T0, sbp_mmhg=142, dbp_mmhg=88, hr_bpm=76, spo2_pct=97, rr_per_min=14)
    return replace(base, **changes)


# --------------------------------------------------------------------------- validation


def test_valid_reading_is_returned_unchanged() -> None:
    reading = good(temp_c=36.8, moaas=5, cadss_total=0)
    assert validate_reading(reading) is reading


@pytest.mark.parametrize(
    ("attr", "low", "high", "key"),
    [
        ("sbp_mmhg", 40, 300, "sbp"),
        ("hr_bpm", 20, 250, "hr"),
        ("spo2_pct", 50, 100, "spo2"),
        ("rr_per_min", 0, 60, "rr"),
        ("moaas", 0, 5, "moaas"),
        ("cadss_total", 0, 92, "cadss"),
    ],
)
def test_plausibility_edges_both_sides(attr: str, low: int, high: int, key: str) -> None:
    # The bounds themselves are accepted; one unit beyond either side is rejected.
    dbp = {"dbp_mmhg": 30} if attr == "sbp_mmhg" else {}  # keep DBP below a low SBP
    assert reading_errors(good(**{attr: low}, **dbp)) == {}
    assert reading_errors(good(**{attr: high})) == {}
    assert key in reading_errors(good(**{attr: low - 1}, **dbp))
    assert key in reading_errors(good(**{attr: high + 1}))


def test_dbp_edges() -> None:
    # DBP range 20–200 and must stay below SBP: use SBP 250 so only the range matters.
    assert reading_errors(good(sbp_mmhg=250, dbp_mmhg=20)) == {}
    assert reading_errors(good(sbp_mmhg=250, dbp_mmhg=200)) == {}
    assert reading_errors(good(sbp_mmhg=250, dbp_mmhg=19)) == {"dbp": "DBP 19 is outside 20–200 mmHg"}
    assert reading_errors(good(sbp_mmhg=250, dbp_mmhg=201)) == {"dbp": "DBP 201 is outside 20–200 mmHg"}


def test_temperature_edges_and_message() -> None:
    assert reading_errors(good(temp_c=30.0)) == {}
    assert reading_errors(good(temp_c=45.0)) == {}
    assert reading_errors(good(temp_c=45.1)) == {"temp": "Temperature 45.1 is outside 30–45 °C"}


def test_error_message_names_value_range_and_unit() -> None:
    with pytest.raises(VitalsValidationError) as exc:
        validate_reading(good(sbp_mmhg=400))
    assert exc.value.errors == {"sbp": "SBP 400 is outside 40–300 mmHg"}
    assert str(exc.value) == "SBP 400 is outside 40–300 mmHg"


def test_every_bad_field_is_named_at_once() -> None:
    with pytest.raises(VitalsValidationError) as exc:
        validate_reading(good(sbp_mmhg=400, hr_bpm=300, spo2_pct=101, rr_per_min=None, moaas=6))
    assert exc.value.errors == {
        "sbp": "SBP 400 is outside 40–300 mmHg",
        "hr": "HR 300 is outside 20–250 bpm",
        "spo2": "SpO2 101 is outside 50–100 %",
        "rr": "RR missing",
        "moaas": "MOAA/S 6 is outside 0–5",
    }


def test_dbp_must_be_below_sbp() -> None:
    assert reading_errors(good(sbp_mmhg=120, dbp_mmhg=119)) == {}
    assert reading_errors(good(sbp_mmhg=120, dbp_mmhg=120)) == {"dbp": "DBP 120 must be below SBP 120"}


def test_required_fields_can_be_relaxed_for_partial_readings() -> None:
    spo2_only = VitalReading(taken_at=T0, spo2_pct=95)
    assert set(reading_errors(spo2_only)) == {"sbp", "dbp", "hr", "rr"}
    assert reading_errors(spo2_only, required=frozenset()) == {}


def test_ranges_are_configurable_and_marked() -> None:
    assert DEFAULT_PLAUSIBILITY[VitalField.SBP].confirmed is False
    assert DEFAULT_PLAUSIBILITY[VitalField.MOAAS].confirmed is True
    narrow = {**DEFAULT_PLAUSIBILITY, VitalField.HR: replace(DEFAULT_PLAUSIBILITY[VitalField.HR], high=200)}
    assert reading_errors(good(hr_bpm=201), ranges=narrow) == {"hr": "HR 201 is outside 20–200 bpm"}
    assert isinstance(narrow[VitalField.HR], PlausibleRange)


# --------------------------------------------------------------------------- chairside parser


def parse(line: str) -> VitalReading:
    return parse_chairside_line(line, taken_at=T0)


def parse_errors(line: str) -> dict[str, str]:
    with pytest.raises(VitalsValidationError) as exc:
        parse(line)
    return exc.value.errors


def test_parse_positional_line() -> None:
    assert parse("142/88 76 97 14") == good()


@pytest.mark.parametrize(
    "line",
    [
        "  142/88    76  97   14  ",
        "142 / 88 76 97 14",
        "142/88, 76, 97, 14",
        "bp 142/88 hr 76 spo2 97 rr 14",
        "rr 14 spo2 97% hr 76 bp 142/88",
        "BP142/88 HR:76 SpO2=97 RR 14",
        "hr 76 142/88 97 14",  # bare numbers fill the first free of HR, SpO2, RR
        "142/88 spo2 97 76 14",
        "142/88 pulse 76 sat 97 resp 14",
    ],
)
def test_parse_is_tolerant(line: str) -> None:
    assert parse(line) == good()


def test_parse_optional_labelled_extras() -> None:
    reading = parse("142/88 76 97 14 moaas 4 t 36.8 cadss 12")
    assert (reading.moaas, reading.temp_c, reading.cadss_total) == (4, 36.8, 12)
    assert parse("142/88 76 97 14 t 36,8").temp_c == 36.8  # decimal comma
    assert parse("142/88 76 97 14 moaa/s 3").moaas == 3


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("", {"line": "Empty line: type e.g. '142/88 76 97 14' (BP HR SpO2 RR)"}),
        ("400/88 76 97 14", {"sbp": "SBP 400 is outside 40–300 mmHg"}),
        ("120/130 76 97 14", {"dbp": "DBP 130 must be below SBP 120"}),
        ("142/88 76 97", {"rr": "RR missing"}),
        ("142/88 76 97 14 12", {"extra:12": "Unexpected value '12': label it (e.g. 'moaas 4', 't 36.8')"}),
        ("xx 142/88 76 97 14", {"unreadable:xx": "Could not read 'xx'"}),
        ("1420/88 76 97 14", {"bp": "BP '1420/88' is not like 142/88"}),
        ("hr 76 hr 80 142/88 97 14", {"hr": "HR given twice"}),
        ("142/88 150/90 76 97 14", {"bp": "BP given twice"}),
        ("142/88 76 97 14 t 98.6", {"temp": "Temperature 98.6 is outside 30–45 °C"}),
        ("142/88 76 97 14 t abc", {"temp": "Temperature 'abc' is not a number like 36.8"}),
        ("142/88 76% 97 14", {"hr": "HR '76%' is not a whole number"}),
        ("142/88 76 97 rr", {"rr": "'rr' has no value after it"}),
    ],
)
def test_parse_errors_are_clear(line: str, expected: dict[str, str]) -> None:
    assert parse_errors(line) == expected


def test_parse_reports_every_problem_together() -> None:
    # Unreadable token, implausible HR and missing RR in one line -> three messages at once.
    assert parse_errors("142/88 300 97 foo") == {
        "unreadable:foo": "Could not read 'foo'",
        "hr": "HR 300 is outside 20–250 bpm",
        "rr": "RR missing",
    }


def test_parse_label_without_value_followed_by_label() -> None:
    assert parse_errors("142/88 hr spo2 97 rr 14") == {"hr": "'hr' has no value after it"}


def test_parse_partial_line_when_allowed() -> None:
    reading = parse_chairside_line("spo2 93 moaas 4", taken_at=T0, required=frozenset())
    assert (reading.spo2_pct, reading.moaas, reading.sbp_mmhg) == (93, 4, None)


# --------------------------------------------------------------------------- cadence


def test_default_cadences_come_from_reference() -> None:
    assert default_cadence(Treatment.KETAMINE_IV) is IV_CADENCE
    assert (IV_CADENCE.during_infusion_every_min, IV_CADENCE.after_infusion_every_min) == (10, 15)
    assert "Riva-Posse" in IV_CADENCE.source and IV_CADENCE.grace_confirmed is False
    assert default_cadence(Treatment.ESKETAMINE_NASAL) is ESKETAMINE_CADENCE
    assert [c.minutes_after_dose for c in ESKETAMINE_CADENCE.checkpoints] == [40, 120]
    # Every other route has a clinic default (tests/clinical/test_route_cadence.py); none raises.
    assert all(default_cadence(t) is not None for t in Treatment)


def test_baseline_due_before_dosing() -> None:
    due = next_reading_due(cadence=IV_CADENCE, reading_times=[], now=at(-10), dose_started_at=None)
    assert due is not None and due.label == "baseline before dosing" and due.due_at == at(-10)
    # Once a baseline exists nothing more is due until dosing starts.
    assert (
        next_reading_due(cadence=IV_CADENCE, reading_times=[at(-5)], now=at(-2), dose_started_at=None) is None
    )


def iv_due(times: list[float], now: float, end: float | None = 40) -> tuple[str, datetime]:
    due = next_reading_due(
        cadence=IV_CADENCE,
        reading_times=[at(m) for m in times],
        now=at(now),
        dose_started_at=T0,
        infusion_ended_at=None if end is None else at(end),
    )
    assert due is not None
    return due.label, due.due_at


def test_iv_every_10_min_during_infusion() -> None:
    # Baseline at -5, start at 0: first due at 0 + 10.
    assert iv_due([-5], now=3) == ("every 10 min during infusion", at(10))
    # Reading at 10 -> next at 20.
    assert iv_due([-5, 10], now=12) == ("every 10 min during infusion", at(20))
    # Running with no planned end: stays 10-minutely.
    assert iv_due([-5, 50], now=52, end=None) == ("every 10 min during infusion", at(60))


def test_iv_switches_to_15_min_after_infusion() -> None:
    # Last reading 38, infusion ends 40: 38 + 10 = 48 > 40, so the after-infusion cadence applies: 38 + 15.
    assert iv_due([-5, 38], now=41) == ("every 15 min after infusion", at(53))
    # Last reading 30: 30 + 10 = 40 ≤ end 40 -> still the during-infusion reading at 40.
    assert iv_due([-5, 30], now=35) == ("every 10 min during infusion", at(40))
    assert iv_due([-5, 55], now=60) == ("every 15 min after infusion", at(70))


def test_iv_missed_reading_is_overdue_after_grace() -> None:
    # Last reading 20 -> due 30; grace 5 min -> overdue only after 35.
    due = next_reading_due(cadence=IV_CADENCE, reading_times=[at(20)], now=at(35), dose_started_at=T0)
    assert due is not None and due.due_at == at(30)
    assert not overdue(due=due, now=at(35))
    assert overdue(due=due, now=at(35) + timedelta(seconds=1))
    assert not overdue(due=None, now=at(500))


def esk_due(times: list[float], now: float, cadence: CheckpointCadence = ESKETAMINE_CADENCE) -> str | None:
    due = next_reading_due(
        cadence=cadence, reading_times=[at(m) for m in times], now=at(now), dose_started_at=T0
    )
    return None if due is None else f"{due.label}@{minutes_between(T0, due.due_at)}"


def test_esketamine_checkpoints() -> None:
    assert esk_due([-5], now=10) == "~40 min post-dose@40"
    # Window 5 min: a reading at 35 (= 40 − 5) counts, one at 34 does not.
    assert esk_due([-5, 35], now=36) == "before discharge@120"
    assert esk_due([-5, 34], now=36) == "~40 min post-dose@40"
    # A late reading (50) still fills the 40-min slot.
    assert esk_due([-5, 50], now=51) == "before discharge@120"
    # Reading at 115 (= 120 − 5) fills the pre-discharge slot; nothing else is due.
    assert esk_due([-5, 40, 115], now=116) is None


def test_esketamine_40_min_overdue_edges() -> None:
    due = next_reading_due(cadence=ESKETAMINE_CADENCE, reading_times=[at(-5)], now=at(44), dose_started_at=T0)
    # Due 40, window 5: 45 is still on time, 45:01 is overdue.
    assert not overdue(due=due, now=at(45))
    assert overdue(due=due, now=at(45) + timedelta(seconds=1))


def test_checkpoint_cadence_then_every() -> None:
    cadence = CheckpointCadence(
        checkpoints=(Checkpoint(minutes_after_dose=40, label="40 min", source="protocol", confirmed=True),),
        then_every_min=30,
    )
    # After the 40-min checkpoint (reading at 41): next at 41 + 30 = 71.
    assert esk_due([-5, 41], now=45, cadence=cadence) == "every 30 min until discharge@71"


def test_nothing_due_after_discharge() -> None:
    due = next_reading_due(
        cadence=IV_CADENCE, reading_times=[at(10)], now=at(130), dose_started_at=T0, discharged_at=at(125)
    )
    assert due is None


def test_minutes_between_rounds_down() -> None:
    assert minutes_between(T0, T0 + timedelta(seconds=59)) == 0
    assert minutes_between(T0, T0 + timedelta(minutes=40, seconds=59)) == 40
    assert minutes_between(T0, T0 - timedelta(seconds=30)) == -1
