"""ORU^R01 parsing: the reference samples as they are, then synthetic vendor variants (interop.md §3.5)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from tests.samples import HL7_SAMPLES

from ketaclinic.interop.hl7 import (
    HL7ErrorCode,
    HL7ParseError,
    IssueKind,
    ParsedMessage,
    TimeSource,
    VitalKind,
    device_feed_evidence,
    is_device_feed,
    parse_oru,
    python_codec,
    read_header_only,
)
from ketaclinic.interop.hl7.errors import AckCode
from ketaclinic.interop.hl7.mdc import mdc_to_mdil, mdil_to_mdc

SAMPLES = HL7_SAMPLES


def sample(name: str) -> ParsedMessage:
    return parse_oru((SAMPLES / name).read_bytes())


def values(msg: ParsedMessage) -> dict[str, float]:
    return {o.kind.value: o.value for o in msg.observations}


def kinds_of_issues(msg: ParsedMessage) -> list[IssueKind]:
    return [i.kind for i in msg.issues]


PLUS5 = timezone(timedelta(hours=5))

# ---------------------------------------------------------------- the reference samples


def test_pcd01_nibp_sample() -> None:
    msg = sample("pcd01_nibp.hl7")
    assert values(msg) == {"sbp": 120.0, "dbp": 80.0, "map": 100.0}
    assert all(o.site == "nibp" and o.unit == "mm[Hg]" for o in msg.observations)
    # OBX 3-5 have no OBX-14; their containing OBX 2 (OBX-4 1.0.1) carries 20090813095715+0500.
    for obs in msg.observations:
        assert obs.observed_at == datetime(2009, 8, 13, 9, 57, 15, tzinfo=PLUS5)
        assert obs.time_source is TimeSource.PARENT_OBX
        assert obs.device_id == "0123456789ABCDEF"  # OBX-18 of OBX 1 (OBX-4 "1")
    assert [o.mdc_code for o in msg.observations] == [150021, 150022, 150023]
    assert msg.control_id == "MSGID1234"
    assert msg.sender.eui64 == "ACDE48234567ABCD"
    assert msg.device_id == "0123456789ABCDEF"
    assert msg.device_id_source == "OBX-18"
    assert str(msg.message_type) == "ORU^R01^ORU_R01"
    assert msg.header.timestamp == datetime(2009, 7, 13, 9, 0, 30, tzinfo=PLUS5)
    assert [(p.id, p.assigning_authority, p.type_code) for p in msg.patient_ids] == [
        ("789567", "Imaginary Hospital", "PI")
    ]
    assert msg.patient_name is not None and msg.patient_name.family == "Doe"
    assert msg.location is None
    assert msg.issues == ()  # the two header OBXs (no type, no value) are silently skipped
    assert is_device_feed(msg)


def test_gateway_sample_hr_arterial_and_pulmonary() -> None:
    msg = sample("pcd01_gateway_hr_arterial.hl7")
    by_kind = {(o.kind, o.site): o.value for o in msg.observations}
    assert by_kind == {
        (VitalKind.HR, "ecg"): 60.0,
        (VitalKind.SBP, "arterial"): 120.0,
        (VitalKind.DBP, "arterial"): 80.0,
        (VitalKind.MAP, "arterial"): 92.0,
        (VitalKind.PULSE, "arterial"): 60.0,  # 149522 MDC_BLD_PULS_RATE_INV
    }
    # PVC count and the three pulmonary pressures are known codes, reported as not tracked.
    not_tracked = [i.code.split("^")[0] for i in msg.issues if i.kind is IssueKind.NOT_TRACKED]
    assert not_tracked == ["148065", "150047", "150045", "150046"]
    assert kinds_of_issues(msg) == [IssueKind.NOT_TRACKED] * 4
    # No OBX-14: OBR-7 20081211144500 has no offset → naive, flagged.
    hr = msg.observations[0]
    assert hr.observed_at == datetime(2008, 12, 11, 14, 45, 0)
    assert hr.time_source is TimeSource.OBR
    assert not hr.time_has_offset
    # 2008-12-11 is winter in New York: UTC-5.
    local = hr.observed_at_in(ZoneInfo("America/New_York"))
    assert local is not None and local.utcoffset() == timedelta(hours=-5)
    assert msg.location is not None
    assert (msg.location.point_of_care, msg.location.room, msg.location.bed) == ("3 WEST ICU", "3001", "1")
    assert msg.location.text == "3 WEST ICU^3001^1"
    # No OBX-18 anywhere: the device is the EUI-64 in MSH-3.
    assert (msg.device_id, msg.device_id_source) == ("080019FFFF4F6AC0", "MSH-3")
    assert msg.observations[1].source_unit == "mm[Hg]^mm[Hg]^UCUM"


def test_oximeter_sample_ignores_waveform() -> None:
    msg = sample("continua_oximeter.hl7")
    assert values(msg) == {"spo2": 80.5}
    spo2 = msg.observations[0]
    assert spo2.unit == "%"
    assert spo2.observed_at == datetime(2009, 7, 15, 7, 7, 7, tzinfo=UTC)
    assert spo2.time_source is TimeSource.OBX
    assert msg.issues == ()  # the NA pleth waveform is ignored without noise
    assert msg.obx_count == 3


def test_thermometer_fahrenheit_converted() -> None:
    msg = sample("continua_thermometer_fahrenheit.hl7")
    (temp,) = msg.observations
    # (98.6 − 32) × 5/9 = 66.6 × 5/9 = 333/9 = 37.0 °C
    assert temp.kind is VitalKind.TEMP_C
    assert temp.value == 37.0
    assert temp.unit == "Cel"
    assert temp.site == "oral"
    assert temp.raw_value == "98.6"
    assert temp.source_unit == "266560^MDC_DIM_FAHR^MDC"


def test_continua_bp_ignores_time_sync_and_dtm() -> None:
    msg = sample("continua_bp.hl7")
    assert values(msg) == {"sbp": 120.0, "dbp": 80.0, "map": 100.0}
    assert msg.issues == ()
    # Time from the NIBP group OBX 3 (1.0.1), not from the DTM observation OBX 7.
    assert {o.observed_at for o in msg.observations} == {datetime(2009, 8, 13, 9, 57, 15, tzinfo=UTC)}


def test_lab_glucose_is_not_a_device_feed() -> None:
    msg = sample("lab_glucose_not_vitals.hl7")
    assert msg.control_id == "CNTRL-3456"
    assert msg.observations == ()
    assert not is_device_feed(msg)
    assert not msg.is_device_feed
    assert device_feed_evidence(msg) == ()
    assert msg.patient_ids[0].id == "555-44-4444"


@pytest.mark.parametrize(
    "name",
    [
        "pcd01_nibp.hl7",
        "pcd01_gateway_hr_arterial.hl7",
        "continua_oximeter.hl7",
        "continua_bp.hl7",
        "continua_thermometer_fahrenheit.hl7",
    ],
)
def test_device_samples_are_device_feeds_and_parse_as_text(name: str) -> None:
    raw = (SAMPLES / name).read_bytes()
    assert b"\r\n" in raw  # as committed upstream (README): the parser must normalise
    from_bytes = parse_oru(raw)
    from_text = parse_oru(raw.decode("utf-8"))
    assert from_bytes == from_text
    assert is_device_feed(from_bytes)


# ---------------------------------------------------------------- synthetic variants

MSH = "MSH|^~\\&|MON^0011223344556677^EUI-64||||20260301101500+0100||ORU^R01^ORU_R01|C42|P|2.6|||NE|AL"


def oru(
    *obx: str, msh: str = MSH, pid: str = "PID|||MRN7^^^CLINIC^MR", obr_time: str = "20260301101400"
) -> str:
    lines = [msh, pid, "PV1||O|KETA^^CHAIR-2", f"OBR|1|||182777000^monitoring of patient^SCT|||{obr_time}"]
    return "\r".join([*lines, *obx])


SBP = "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1|131|266016^MDC_DIM_MMHG^MDC|||||R"


@pytest.mark.parametrize("terminator", ["\r", "\r\n", "\n"])
def test_segment_terminators(terminator: str) -> None:
    text = oru(SBP).replace("\r", terminator) + terminator
    msg = parse_oru(text)
    assert values(msg) == {"sbp": 131.0}
    assert msg.location is not None and msg.location.bed == "CHAIR-2"


def test_mixed_terminators_and_blank_lines() -> None:
    text = MSH + "\r\n\r\nPID|||MRN7\nOBR|1\r" + SBP + "\n\n"
    assert values(parse_oru(text)) == {"sbp": 131.0}


def test_mdil_hex_codes() -> None:
    # 0002-4182: 2 × 65536 + 0x4182 (16768) = 147842 MDC_ECG_HEART_RATE (interop.md §3.3)
    # 0002-4a05: 131072 + 0x4a05 (18949) = 150021 NBP systolic; 0002-4bb8: 131072 + 19384 = 150456 SpO2
    msg = parse_oru(
        oru(
            "OBX||NM|0002-4182^HR^MDIL||72|0004-0aa0^bpm^MDIL|||||F",
            "OBX||NM|0002-4a05^NBPs^MDIL||128|0004-0f20^mmHg^MDIL|||||F",
            "OBX||NM|0002-4bb8^SpO2^MDIL||96|0004-0220^%^MDIL|||||F",
        )
    )
    assert values(msg) == {"hr": 72.0, "sbp": 128.0, "spo2": 96.0}
    assert [o.mdc_code for o in msg.observations] == [147842, 150021, 150456]
    assert msg.issues == ()  # "HR"/"NBPs" are vendor labels, not REFIDs: no mismatch
    assert msg.observations[0].source_code == "0002-4182^HR^MDIL"
    assert "MDIL" in msg.coding_systems and is_device_feed(msg)


def test_mdil_conversion_both_ways() -> None:
    assert mdil_to_mdc("0002-4182") == 147842
    assert mdil_to_mdc("0004-0f20") == 266016  # 4 × 65536 + 3872
    assert mdil_to_mdc("zz-1") is None
    assert mdc_to_mdil(150456) == "0002-4bb8"


def test_efficia_celsius_code_is_an_unknown_unit() -> None:
    # 0004-1710 = 4 × 65536 + 5904 = 268048 ≠ 268192 MDC_DIM_DEGC (interop.md §3.3 ⚠): reported.
    msg = parse_oru(oru("OBX||NM|188424^MDC_TEMP_ORAL^MDC||36.8|0004-1710^C^MDIL|||||F"))
    assert msg.observations == ()
    assert kinds_of_issues(msg) == [IssueKind.UNKNOWN_UNIT]
    assert "0004-1710" in msg.issues[0].message


def test_cuff_aliases_are_nibp() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|150301^MDC_PRESS_CUFF_SYS^MDC|1.1.1.1|118|266016^MDC_DIM_MMHG^MDC|||||R",
            "OBX|2|NM|150302^MDC_PRESS_CUFF_DIA^MDC|1.1.1.2|76|266016^MDC_DIM_MMHG^MDC|||||R",
            "OBX|3|NM|150303^MDC_PRESS_CUFF_MEAN^MDC|1.1.1.3|90|266016^MDC_DIM_MMHG^MDC|||||R",
        )
    )
    assert values(msg) == {"sbp": 118.0, "dbp": 76.0, "map": 90.0}
    assert {o.site for o in msg.observations} == {"nibp"}


def test_empty_values_are_reported_not_errors() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC|1.0.1.1||266016^MDC_DIM_MMHG^MDC|||||R",
            "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.2.1|97|262688^MDC_DIM_PERCENT^MDC|||||R",
            "OBX|3||150020^MDC_PRESS_BLD_NONINV^MDC|1.0.1|||||||X",  # header: silent
        )
    )
    assert values(msg) == {"spo2": 97.0}
    assert kinds_of_issues(msg) == [IssueKind.EMPTY_VALUE]
    assert msg.issues[0].sequence == 1


def test_ucum_units_and_aliases() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|149530^MDC_PULS_OXIM_PULS_RATE^MDC||88|{beat}/min^{beat}/min^UCUM|||||R",
            "OBX|2|NM|151562^MDC_RESP_RATE^MDC||16|{breath}/min^{breath}/min^UCUM|||||R",
            "OBX|3|NM|150344^MDC_TEMP^MDC||37.2|Cel^Cel^UCUM|||||R",
            "OBX|4|NM|188736^MDC_MASS_BODY_ACTUAL^MDC||81.5|kg|||||R",  # UCUM code, no system
        )
    )
    assert values(msg) == {"pulse": 88.0, "rr": 16.0, "temp_c": 37.2, "weight_kg": 81.5}
    assert msg.issues == ()


def test_unknown_unit_reported_not_guessed() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|150021^MDC_PRESS_BLD_NONINV_SYS^MDC||131|mmHg^mmHg^ISO+|||||R",
            "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97||||||R",
            "OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97|266016^MDC_DIM_MMHG^MDC|||||R",
        )
    )
    assert msg.observations == ()
    assert kinds_of_issues(msg) == [IssueKind.UNKNOWN_UNIT, IssueKind.UNKNOWN_UNIT, IssueKind.UNIT_MISMATCH]
    assert "no unit" in msg.issues[1].message


def test_refid_mismatch_keys_on_numeric_code() -> None:
    # Comen: 149522 labelled MDC_PULS_RATE (interop.md §3.5).
    msg = parse_oru(oru("OBX||NM|149522^MDC_PULS_RATE^MDC||74|264864^MDC_DIM_BEAT_PER_MIN^MDC|||||F"))
    (pulse,) = msg.observations
    assert (pulse.kind, pulse.mdc_code, pulse.refid, pulse.value) == (
        VitalKind.PULSE,
        149522,
        "MDC_BLD_PULS_RATE_INV",
        74.0,
    )
    assert kinds_of_issues(msg) == [IssueKind.REFID_MISMATCH]
    assert "MDC_PULS_RATE" in msg.issues[0].message


def test_refid_alias_is_not_a_mismatch_and_unconfirmed_code_is_flagged() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|151708^MDC_AWAY_CO2_ET^MDC||38|266016^MDC_DIM_MMHG^MDC|||||R",
            "OBX|2|NM|151594^MDC_CO2_RESP_RATE^MDC||12|264928^MDC_DIM_RESP_PER_MIN^MDC|||||R",
        )
    )
    assert values(msg) == {"etco2": 38.0, "rr": 12.0}
    assert msg.issues == ()
    assert [o.confirmed for o in msg.observations] == [True, False]


def test_unknown_and_proprietary_codes() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|999999^MDC_SOMETHING^MDC||5|262688^MDC_DIM_PERCENT^MDC|||||R",
            "OBX|2|NM|1234^SPO2^99MNDRY||95|%^%^UCUM|||||R",
            "OBX|3|NM|1234^MDC_PULS_OXIM_SAT_O2^99MNDRY||94|%^%^UCUM|||||R",  # REFID is standard
            "OBX|4|TX|888^NOTE^99MNDRY||free text|||||R",  # non-numeric unknown: ignored silently
        )
    )
    assert values(msg) == {"spo2": 94.0}
    assert kinds_of_issues(msg) == [IssueKind.UNKNOWN_CODE, IssueKind.UNKNOWN_CODE]


def test_alternate_coding_in_obx3_is_used() -> None:
    msg = parse_oru(oru("OBX|1|NM|X1^Pulse ox^L^150456^MDC_PULS_OXIM_SAT_O2^MDC||93|%^%^UCUM|||||R"))
    assert values(msg) == {"spo2": 93.0}


def test_bad_values_status_and_types() -> None:
    msg = parse_oru(
        oru(
            "OBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||abc|%^%^UCUM|||||R",
            "OBX|2|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||NaN|%^%^UCUM|||||R",
            "OBX|3|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||95|%^%^UCUM|||||X",
            "OBX|4|TX|150456^MDC_PULS_OXIM_SAT_O2^MDC||ninety|%^%^UCUM|||||R",
            "OBX|5|SN|150456^MDC_PULS_OXIM_SAT_O2^MDC||<^90|%^%^UCUM|||||R",
            "OBX|6|SN|147842^MDC_ECG_HEART_RATE^MDC||^64|/min^/min^UCUM|||||R",
            "OBX|7|ST|151562^MDC_RESP_RATE^MDC|| 15 |/min^/min^UCUM|||||R",
        )
    )
    assert values(msg) == {"hr": 64.0, "rr": 15.0}
    assert kinds_of_issues(msg) == [
        IssueKind.BAD_VALUE,
        IssueKind.BAD_VALUE,
        IssueKind.INVALID_STATUS,
        IssueKind.NOT_NUMERIC,
        IssueKind.BAD_VALUE,
    ]


# ---------------------------------------------------------------- times


def test_time_precedence_obx_parent_obr_msh() -> None:
    msg = parse_oru(
        oru(
            "OBX|1||150020^MDC_PRESS_BLD_NONINV^MDC|1.0.1|||||||X|||20260301100500-0330",
            SBP,  # 1.0.1.1 inherits the group's time
            "OBX|3|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.2.1|70|/min^/min^UCUM|||||R|||20260301101230.25",
            "OBX|4|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC|1.0.3.1|98|%^%^UCUM|||||R",
        )
    )
    sbp, hr, spo2 = msg.observations
    assert sbp.observed_at == datetime(2026, 3, 1, 10, 5, tzinfo=timezone(-timedelta(hours=3, minutes=30)))
    assert sbp.time_source is TimeSource.PARENT_OBX
    assert hr.observed_at == datetime(2026, 3, 1, 10, 12, 30, 250000)  # no offset: naive
    assert (hr.time_source, hr.time_has_offset) == (TimeSource.OBX, False)
    assert spo2.observed_at == datetime(2026, 3, 1, 10, 14)  # OBR-7
    assert spo2.time_source is TimeSource.OBR


def test_time_falls_back_to_msh_and_reports_bad_times() -> None:
    obx = "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC||70|/min^/min^UCUM|||||R|||20261399"
    msg = parse_oru(oru(obx, obr_time=""))
    (hr,) = msg.observations
    assert hr.observed_at == datetime(2026, 3, 1, 10, 15, tzinfo=timezone(timedelta(hours=1)))
    assert hr.time_source is TimeSource.MSH
    assert kinds_of_issues(msg) == [IssueKind.BAD_TIME]  # month 13


def test_each_obr_has_its_own_time() -> None:
    text = "\r".join(
        [
            MSH,
            "OBR|1|||X|||20260301090000+0000",
            "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.1|70|/min^/min^UCUM|||||R",
            "OBR|2|||X|||20260301091000+0000",
            "OBX|1|NM|147842^MDC_ECG_HEART_RATE^MDC|1.0.1.1|75|/min^/min^UCUM|||||R",
        ]
    )
    msg = parse_oru(text)
    assert [(o.value, o.observed_at.minute if o.observed_at else None) for o in msg.observations] == [
        (70.0, 0),
        (75.0, 10),
    ]
    assert [o.obx_sequence for o in msg.observations] == [1, 2]


# ---------------------------------------------------------------- patient, location, device


def test_empty_patient_ids_and_no_pid() -> None:
    assert parse_oru(oru(SBP, pid="PID|||")).patient_ids == ()
    no_pid = "\r".join([MSH, "OBR|1", SBP])
    msg = parse_oru(no_pid)
    assert msg.patient_ids == () and msg.patient_name is None and msg.location is None


def test_several_patient_ids() -> None:
    msg = parse_oru(oru(SBP, pid="PID|||111^^^A&1.2.3&ISO^MR~~222^^^B^PI"))
    assert [(p.id, p.assigning_authority, p.type_code) for p in msg.patient_ids] == [
        ("111", "A", "MR"),
        ("222", "B", "PI"),
    ]


def test_location_sub_components_and_escapes() -> None:
    msg = parse_oru(oru(SBP).replace("PV1||O|KETA^^CHAIR-2", "PV1||O|ICU&x^^BED\\T\\1&y^FAC"))
    loc = msg.location
    assert loc is not None
    assert (loc.point_of_care, loc.bed, loc.facility) == ("ICU", "BED&1", "FAC")


def test_device_id_from_msh_when_no_obx18_and_none_without_eui64() -> None:
    msg = parse_oru(oru(SBP))
    assert (msg.device_id, msg.device_id_source) == ("0011223344556677", "MSH-3")
    assert msg.observations[0].device_id == "0011223344556677"
    plain = parse_oru(oru(SBP, msh=MSH.replace("MON^0011223344556677^EUI-64", "LAB")))
    assert plain.device_id is None
    assert is_device_feed(plain)  # MDC codes still make it a device feed


def test_lab_style_message_is_not_a_device_feed() -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|LIS|LAB|||20260301||ORU^R01|L1|P|2.5",
            "OBR|1|||2345-7^Glucose^LN",
            "OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L|||||F",
        ]
    )
    msg = parse_oru(text)
    assert not is_device_feed(msg)
    assert kinds_of_issues(msg) == [IssueKind.UNKNOWN_CODE]


def test_charset_from_msh18_and_fallback() -> None:
    latin = oru(SBP, msh=MSH + "||8859/1").replace("MRN7^^^CLINIC", "MRN7^^^CLINIQUE É").encode("latin-1")
    msg = parse_oru(latin)
    assert msg.patient_ids[0].assigning_authority == "CLINIQUE É"
    assert msg.issues == ()
    broken = oru(SBP).encode("utf-8").replace(b"CLINIC", b"CLIN\xe9C")  # not UTF-8, no MSH-18
    msg = parse_oru(broken)
    assert kinds_of_issues(msg) == [IssueKind.CHARSET_FALLBACK]
    assert msg.patient_ids[0].assigning_authority == "CLINéC"


# ---------------------------------------------------------------- malformed


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\xff\xfe\x01garbage\x9c", "PID|||123\rOBX|1", "   \r\n", "MSH", "MSHA^~\\&|x"],
)
def test_not_hl7_raises_segment_error(data: str | bytes) -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(data)
    err = info.value
    assert err.code is HL7ErrorCode.SEGMENT_SEQUENCE_ERROR
    assert err.ack_code is AckCode.ERROR
    assert "not an HL7 v2 message" in err.message
    assert err.header is None


def test_wrong_message_type_is_rejected_with_header() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(MSH.replace("ORU^R01^ORU_R01", "ADT^A01^ADT_A01") + "\rPID|||1")
    err = info.value
    assert err.code is HL7ErrorCode.UNSUPPORTED_MESSAGE_TYPE
    assert err.ack_code is AckCode.REJECT
    assert err.fields == {"MSH-9": "ADT^A01^ADT_A01 is not supported"}
    assert err.header is not None and err.header.control_id == "C42"
    assert err.location is not None and (err.location.segment, err.location.field) == ("MSH", 9)


def test_wrong_event_and_version() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(MSH.replace("ORU^R01^ORU_R01", "ORU^R30"))
    assert info.value.code is HL7ErrorCode.UNSUPPORTED_EVENT_CODE
    with pytest.raises(HL7ParseError) as info:
        parse_oru(MSH.replace("|2.6|", "|3.0|"))
    assert info.value.code is HL7ErrorCode.UNSUPPORTED_VERSION_ID


def test_missing_header_fields_are_all_named() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(MSH.replace("ORU^R01^ORU_R01|C42", "|"))
    err = info.value
    assert err.code is HL7ErrorCode.REQUIRED_FIELD_MISSING
    assert set(err.fields) == {"MSH-9", "MSH-10"}
    assert "message type is missing" in str(err) and "control id is missing" in str(err)


def test_damaged_segment_in_the_middle() -> None:
    with pytest.raises(HL7ParseError) as info:
        parse_oru(oru(SBP).replace("\rPV1", "\r\x00\x17\xff\rPV1"))
    err = info.value
    assert err.code is HL7ErrorCode.SEGMENT_SEQUENCE_ERROR
    assert list(err.fields) == ["segment 3"]
    assert err.header is not None and err.header.control_id == "C42"


def test_read_header_only() -> None:
    header = read_header_only(MSH.replace("ORU^R01^ORU_R01", "ADT^A01"))
    assert header is not None and header.control_id == "C42" and str(header.message_type) == "ADT^A01"
    assert read_header_only(b"\xff\xfe") is None


def test_framing_characters_around_text_are_tolerated() -> None:
    assert values(parse_oru("\x0b" + oru(SBP) + "\x1c\r")) == {"sbp": 131.0}


def test_python_codec_for_msh18() -> None:
    assert python_codec("UNICODE UTF-8") == "utf-8"
    assert python_codec("8859/1") == "latin-1"
    assert python_codec("") == "utf-8"
