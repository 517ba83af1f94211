"""The fast OBX reader (interop/hl7/obx.py ``read_obx_fast``) gives exactly what the full tolerant reader
gives: on every shared sample, on the simulator's three styles, and on fuzzed variants of both (values,
types, codes, units, statuses, times, escapes, whitespace, repetitions, terminators). Comparison is of the
whole ParsedMessage (frozen dataclasses compare field by field), or of the error when parsing fails."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.samples import HL7_SAMPLES

from ketaclinic.interop.hl7 import obx, parse
from ketaclinic.interop.hl7.errors import HL7ParseError
from ketaclinic.interop.hl7.parse import parse_oru
from ketaclinic.interop.hl7.simulator import STYLES, make_vitals_message

SAMPLES = HL7_SAMPLES
SAMPLE_FILES = sorted(p for p in SAMPLES.glob("*.hl7"))


def _sim(style: str = "mdc", *, at: datetime | None = None) -> str:
    return make_vitals_message(
        device_eui64="0012345678ABCDEF",
        bed="C0001",
        patient_id="B000001",
        at=at or datetime(2026, 11, 27, 9, 0, 0, tzinfo=UTC),
        sbp=121,
        dbp=79,
        hr=64,
        spo2=98,
        rr=14,
        control_id="X1",
        style=style,  # type: ignore[arg-type]
    )


def _outcome(data: str | bytes, fast: bool) -> Any:
    try:
        return parse_oru(data, fast=fast)
    except HL7ParseError as exc:
        return ("error", exc.code, exc.message, exc.fields, exc.header)


def _same(data: str | bytes) -> None:
    assert _outcome(data, True) == _outcome(data, False)


def test_there_are_samples() -> None:
    assert len(SAMPLE_FILES) >= 6


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: p.name)
def test_samples_parse_the_same(path: Path) -> None:
    _same(path.read_bytes())
    _same(path.read_text(encoding="latin-1"))


@pytest.mark.parametrize("style", STYLES)
def test_simulator_styles_parse_the_same(style: str) -> None:
    _same(_sim(style))


def test_the_fast_reader_takes_the_simulator_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not vacuous: a clean simulator message never reaches the full reader (6 OBX: 1 header + 5 vitals)."""
    calls: list[int] = []
    real = obx.read_obx

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(parse, "read_obx", counting)
    msg = parse_oru(_sim("mdc"))
    assert calls == [] and len(msg.observations) == 5
    parse_oru(_sim("mdc"), fast=False)
    assert len(calls) == 6


def test_an_unusual_obx_falls_back_and_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty typed value (issue "not measured") goes to the full reader, which reports it."""
    text = _sim("mdc").replace("|64|264864", "||264864")
    msg = parse_oru(text)
    assert [o.kind.value for o in msg.observations] == ["sbp", "dbp", "spo2", "rr"]
    assert [i.kind.value for i in msg.issues] == ["empty_value"]
    _same(text)


# Fragments swapped into OBX fields of the simulator message and of the samples.
_VALUES = ["121", " 121 ", "121.5", "-3", "1e2", "NaN", "Infinity", "abc", "", "^", "12~13", "1_0", "\\F\\1"]
_TYPES = ["NM", "nm", "SN", "ST", "CWE", "", " NM ", "NM^x"]
_STATUSES = ["R", "F", "X", "x", "D", "W", "", " R ", "R~X"]
_TIMES = [
    "20261127090000+0000",
    "20261127090000",
    "2026112709",
    "2026",
    "2026-11-27",
    "",
    "20261327090000",
    "x",
]
_UNITS = [
    "266016^MDC_DIM_MMHG^MDC",
    "mm[Hg]^mm[Hg]^UCUM",
    "264864^MDC_DIM_BEAT_PER_MIN^MDC",
    "262688^MDC_DIM_PERCENT^MDC",
    "268048^C^MDC",
    "",
    "^^^266016^MDC_DIM_MMHG^MDC",
    "kPa^kPa^UCUM",
    "\\S\\",
    " 266016^MDC_DIM_MMHG^MDC ",
    "266016^MDC_DIM_MMHG^MDC~262688^MDC_DIM_PERCENT^MDC",
]
_CODES = [
    "150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
    "150021^MDC_PRESS_BLD_NONINV_DIA^MDC",
    "0002-4182^HR^MDIL",
    "150021",
    "^MDC_PULS_OXIM_SAT_O2",
    "999999^UNKNOWN^MDC",
    "150045^MDC_PRESS_BLD_ART_PULM_SYS^MDC",
    "8867-4^Heart rate^LN",
    "150021^MDC_PRESS_BLD_NONINV_SYS^99VENDOR^150301^MDC_PRESS_CUFF_SYS^MDC",
    "",
    " 150456^MDC_PULS_OXIM_SAT_O2^MDC ",
    "150456^MDC_PULS_OXIM_SAT_O2^MDC~150021^MDC_PRESS_BLD_NONINV_SYS^MDC",
]
_CONTAINMENT = ["1.0.1.1", "1.0.1", "", "1", " 1.0.2.1 ", "1.0.9.9"]
_DEVICES = ["0012345678ABCDEF^EUI-64", "", "OTHER", " X ~Y"]
_FIELDS = {
    2: _TYPES,
    3: _CODES,
    4: _CONTAINMENT,
    5: _VALUES,
    6: _UNITS,
    11: _STATUSES,
    14: _TIMES,
    18: _DEVICES,
}


def _mutate(text: str, edits: list[tuple[int, int, str]], terminator: str) -> str:
    segs = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    obx_at = [i for i, s in enumerate(segs) if s.startswith("OBX")]
    for which, field, value in edits:
        if not obx_at:
            break
        i = obx_at[which % len(obx_at)]
        parts = segs[i].split("|")
        parts += [""] * (field + 1 - len(parts))
        parts[field] = value
        segs[i] = "|".join(parts)
    return terminator.join(segs)


_BASES = [_sim(s) for s in STYLES] + [p.read_text(encoding="latin-1") for p in SAMPLE_FILES]
_edit = st.sampled_from(sorted(_FIELDS)).flatmap(
    lambda f: st.tuples(st.integers(0, 20), st.just(f), st.sampled_from(_FIELDS[f]))
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(_BASES),
    edits=st.lists(_edit, max_size=6),
    terminator=st.sampled_from(["\r", "\r\n", "\n"]),
)
def test_fuzzed_variants_parse_the_same(
    base: str, edits: list[tuple[int, int, str]], terminator: str
) -> None:
    _same(_mutate(base, edits, terminator))


@settings(max_examples=200, deadline=None)
@given(
    field=st.sampled_from(sorted(_FIELDS)),
    junk=st.text(alphabet="0123456789.^~&\\ |-+ABCMDNX_", max_size=12),
    which=st.integers(0, 10),
)
def test_random_field_text_parses_the_same(field: int, junk: str, which: int) -> None:
    _same(_mutate(_sim("mdc"), [(which, field, junk)], "\r"))


@pytest.mark.parametrize("base", range(len(_BASES)))
def test_padded_and_repeated_fields_parse_the_same(base: int) -> None:
    """Deterministic: every OBX field of every base message, padded with blanks, or with a second
    repetition, or emptied."""
    text = _BASES[base].replace("\r\n", "\r").replace("\n", "\r")
    segs = text.split("\r")
    for i, seg in enumerate(segs):
        if not seg.startswith("OBX"):
            continue
        parts = seg.split("|")
        for f in range(1, len(parts)):
            for variant in (f" {parts[f]} ", f"{parts[f]}~{parts[f]}", "", f"{parts[f]}^"):
                changed = [*parts[:f], variant, *parts[f + 1 :]]
                _same("\r".join([*segs[:i], "|".join(changed), *segs[i + 1 :]]))


def _msh_variants(text: str) -> list[str]:
    msh = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")[0]
    parts = msh.split("|")
    parts += [""] * (23 - len(parts))
    out = [msh]
    for f in range(2, len(parts)):  # parts[f] is MSH-(f+1)
        for variant in (f" {parts[f]} ", f"{parts[f]}~{parts[f]}", "", f"{parts[f]}^x ^", "a^b^c^d^e~^^^^"):
            out.append("|".join([*parts[:f], variant, *parts[f + 1 :]]))
    return out


@pytest.mark.parametrize("base", range(len(_BASES)))
def test_plain_header_reader_matches_the_full_one(base: int) -> None:
    """parse.read_header's fast branch (no escapes, default delimiters) equals the full reader."""
    from ketaclinic.interop.hl7.er7 import DEFAULT_ENCODING, parse_segment

    checked = 0
    for raw in _msh_variants(_BASES[base]):
        seg = parse_segment(raw, DEFAULT_ENCODING)
        if "\\" in "".join(seg.fields[3:]):
            continue
        assert parse._read_header_plain(seg) == parse._read_header_full(seg), raw
        checked += 1
    assert checked > 50
