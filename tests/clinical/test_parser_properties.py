"""Property-based tests of the two parsers a clinician types into (issue 15, point 5).

The nurse's reading line ("126/80 72 98 14", labelled parts in any order): whatever is typed, the parser
returns a reading or refuses with its own error naming the field — never another exception; what it
accepts is exactly what was typed (no rounding, no clipping: an implausible value or a temperature with
more decimals than the record keeps is refused, not changed).

Units: the dose parser of the PK command (``0.5 mg/kg``, ``56 mg``) and the monitor units (OBX-6: UCUM,
MDC codes and REFIDs, °F to °C): any text resolves to a known unit or to none (never a guess, never an
exception), and every conversion of a finite value is finite and exact to the unit's definition.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketaclinic.clinical.vitals import (
    DEFAULT_PLAUSIBILITY,
    VitalField,
    VitalReading,
    VitalsValidationError,
    parse_chairside_line,
)
from ketaclinic.interop.hl7 import mdc
from ketaclinic.interop.hl7.obx import _canonical
from ketaclinic.pk.cli import _dose_mg

AT = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
NONE = frozenset[VitalField]()


def _in(field: VitalField) -> st.SearchStrategy[int]:
    bounds = DEFAULT_PLAUSIBILITY[field]
    return st.integers(int(bounds.low), int(bounds.high))


@st.composite
def readings(draw: st.DrawFn) -> dict[str, int]:
    sbp = draw(st.integers(41, 300))
    dbp = draw(st.integers(20, min(200, sbp - 1)))
    return {
        "sbp": sbp,
        "dbp": dbp,
        "hr": draw(_in(VitalField.HR)),
        "spo2": draw(_in(VitalField.SPO2)),
        "rr": draw(_in(VitalField.RR)),
    }


def _same(reading: VitalReading, v: dict[str, int]) -> None:
    assert (reading.sbp_mmhg, reading.dbp_mmhg, reading.hr_bpm, reading.spo2_pct, reading.rr_per_min) == (
        v["sbp"],
        v["dbp"],
        v["hr"],
        v["spo2"],
        v["rr"],
    )


typed = st.text(
    st.sampled_from("0123456789/ .,;:=%-+abcdefghijklmnopqrstuvwxyzBPHRSO2T\t\u00a0٣") | st.characters(),
    max_size=60,
)


@FAST
@given(typed)
def test_any_line_is_read_or_refused_with_named_fields(line: str) -> None:
    try:
        reading = parse_chairside_line(line, taken_at=AT, required=NONE)
    except VitalsValidationError as exc:
        assert exc.errors and all(isinstance(k, str) and v for k, v in exc.errors.items())
    else:
        assert isinstance(reading, VitalReading)


@FAST
@given(readings(), st.sampled_from([" ", "  ", ", ", "; ", "\t"]))
def test_a_positional_line_reads_exactly_what_was_typed(values: dict[str, int], sep: str) -> None:
    line = sep.join(
        [f"{values['sbp']}/{values['dbp']}", str(values["hr"]), str(values["spo2"]), str(values["rr"])]
    )
    _same(parse_chairside_line(line, taken_at=AT), values)


@FAST
@given(
    readings(),
    st.randoms(use_true_random=False),
    st.sampled_from(["{k} {v}", "{k}:{v}", "{k}={v}", "{k}{v}"]),
)
def test_labelled_parts_in_any_order_read_the_same(
    values: dict[str, int], rng: random.Random, shape: str
) -> None:
    parts = [
        shape.format(k=rng.choice(["bp", "BP"]), v=f"{values['sbp']} / {values['dbp']}").replace(" / ", "/"),
        shape.format(k=rng.choice(["hr", "HR", "pulse", "p"]), v=values["hr"]),
        shape.format(k=rng.choice(["spo2", "sat", "SpO2"]), v=f"{values['spo2']}{rng.choice(['', '%'])}"),
        shape.format(k=rng.choice(["rr", "resp"]), v=values["rr"]),
    ]
    rng.shuffle(parts)
    _same(parse_chairside_line("  ".join(parts), taken_at=AT), values)


@FAST
@given(readings(), st.integers(300, 450))
def test_a_temperature_to_a_tenth_is_kept_exactly(values: dict[str, int], tenths: int) -> None:
    text = f"{tenths // 10}.{tenths % 10}"
    line = f"{values['sbp']}/{values['dbp']} {values['hr']} {values['spo2']} {values['rr']} t {text}"
    reading = parse_chairside_line(line, taken_at=AT)
    assert reading.temp_c == float(text)
    comma = parse_chairside_line(line.replace(text, text.replace(".", ",")), taken_at=AT)
    assert comma.temp_c == float(text)


@FAST
@given(readings(), st.integers(3000, 4500), st.integers(1, 9))
def test_a_temperature_with_more_decimals_is_refused_not_rounded(
    values: dict[str, int], hundredths: int, last: int
) -> None:
    line = f"{values['sbp']}/{values['dbp']} {values['hr']} {values['spo2']} {values['rr']} t {hundredths / 100:.2f}{last}"
    with pytest.raises(VitalsValidationError) as refused:
        parse_chairside_line(line, taken_at=AT)
    assert "temp" in " ".join(refused.value.errors).lower() or "temperature" in str(refused.value).lower()


@FAST
@given(readings(), st.sampled_from(["hr", "spo2", "rr"]), st.integers(0, 9999))
def test_an_implausible_value_is_refused_naming_its_field_and_limit(
    values: dict[str, int], field: str, value: int
) -> None:
    which = {"hr": VitalField.HR, "spo2": VitalField.SPO2, "rr": VitalField.RR}[field]
    bounds = DEFAULT_PLAUSIBILITY[which]
    values = {**values, field: value}
    line = f"{values['sbp']}/{values['dbp']} hr {values['hr']} spo2 {values['spo2']} rr {values['rr']}"
    if bounds.low <= value <= bounds.high:
        _same(parse_chairside_line(line, taken_at=AT), values)
        return
    with pytest.raises(VitalsValidationError) as refused:
        parse_chairside_line(line, taken_at=AT)
    message = refused.value.errors[which.value]
    assert str(value) in message and f"{int(bounds.high)}" in message


# --------------------------------------------------------------------------- units


def _dose(text: str, weight: float | None = None) -> tuple[float, dict[str, str]]:
    errors: dict[str, str] = {}
    mg, _label = _dose_mg(argparse.Namespace(dose=text, weight_kg=weight), errors)
    return mg, errors


@FAST
@given(st.text(max_size=30), st.none() | st.floats(20, 250))
def test_any_dose_text_is_read_or_refused(text: str, weight: float | None) -> None:
    mg, errors = _dose(text, weight)
    assert errors or mg > 0


@FAST
@given(
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(1000), places=3),
    st.sampled_from(["mg", "MG", "mg/kg", "Mg/Kg"]),
    st.sampled_from(["", " ", "  "]),
    st.floats(20, 250),
)
def test_a_dose_reads_exactly_in_its_unit(amount: Decimal, unit: str, space: str, weight: float) -> None:
    mg, errors = _dose(f"{amount}{space}{unit}", weight)
    assert errors == {}
    expected = float(str(amount)) * (weight if unit.lower() == "mg/kg" else 1)
    assert mg == expected


unit_text = st.text(max_size=20) | st.sampled_from(
    [u.ucum for u in mdc.UNITS] + [u.refid for u in mdc.UNITS] + [str(u.mdc_code) for u in mdc.UNITS]
)


@FAST
@given(unit_text, unit_text, st.sampled_from(["UCUM", "MDC", "", "MDIL", "LN", "99X"]) | st.text(max_size=6))
def test_any_unit_resolves_to_a_known_unit_or_none(code: str, text: str, system: str) -> None:
    found = mdc.lookup_unit(code, text, system)
    assert found is None or found in mdc.UNITS


@pytest.mark.parametrize("unit", mdc.UNITS, ids=lambda u: u.refid)
def test_every_unit_is_found_by_each_of_its_names(unit: mdc.UnitDef) -> None:
    assert mdc.lookup_unit(unit.ucum, "", "UCUM").quantity is unit.quantity  # type: ignore[union-attr]
    assert mdc.lookup_unit(str(unit.mdc_code), unit.refid, "MDC") is unit
    assert mdc.lookup_unit("", unit.refid, "") is unit


@FAST
@given(
    st.sampled_from(mdc.UNITS),
    st.decimals(allow_nan=True, allow_infinity=True) | st.text(max_size=12),
)
def test_conversion_is_finite_and_exact_to_the_unit_definition(
    unit: mdc.UnitDef, value: Decimal | str
) -> None:
    text = str(value)
    got = _canonical(unit, text)
    try:
        number = Decimal(text)
    except Exception:
        assert got is None
        return
    if not number.is_finite():
        assert got is None
        return
    expected = float(number * unit.scale + unit.offset)
    if got is None:
        assert not (abs(expected) < float("inf"))
    else:
        assert got == expected


def test_fahrenheit_is_converted_by_its_definition() -> None:
    fahrenheit = mdc.lookup_unit("[degF]", "", "UCUM")
    assert fahrenheit is not None
    assert _canonical(fahrenheit, "98.6") == pytest.approx(37.0)
    assert _canonical(fahrenheit, "32") == 0.0


@pytest.mark.parametrize("code", ["¹", "²⁵", "٣", "１５００２１"])
@pytest.mark.parametrize("component", [3, 6])
def test_a_monitor_code_in_other_digits_is_unknown_not_a_crash(code: str, component: int) -> None:
    """Unicode digits in OBX-3 (what was measured) or OBX-6 (its unit): not an MDC code, so the reading is
    reported unknown by the reader — never a ValueError out of the parser (the feed then refused the whole
    message as a parser failure), and fullwidth digits are not read as the MDC code they look like."""
    from ketaclinic.interop.hl7.errors import HL7ParseError
    from ketaclinic.interop.hl7.parse import parse_oru
    from ketaclinic.interop.hl7.simulator import make_vitals_message

    text = make_vitals_message(
        device_eui64="00112233445566AA",
        bed="C1",
        patient_id=None,
        at=AT,
        sbp=120,
        dbp=80,
        hr=60,
        spo2=98,
        rr=14,
        control_id="U1",
    )
    segments = text.split("\r")
    at = next(i for i, s in enumerate(segments) if s.startswith("OBX") and "NONINV_SYS" in s)
    fields = segments[at].split("|")
    fields[component] = f"{code}^MDC_X^MDC"
    segments[at] = "|".join(fields)
    try:
        parse_oru("\r".join(segments))
    except HL7ParseError:
        pass
    assert mdc.code_number(code, "MDC") is None
