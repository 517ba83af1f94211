"""``ketaclinic monitor-sim``: arguments, and a short run against the running listener."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.monitoring.conftest import ThreadedListener, register_monitor

from ketaclinic.monitoring.simulate import device_eui64, main, parse_duration, read_ack_code


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1.0), ("500ms", 0.5), ("2m", 120.0), ("3", 3.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "fast", "0s", "-1s", "1h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_every_bad_option_is_named_and_exit_code_is_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--chairs", "0", "--interval", "soon", "--port", "70000", "--count", "0"]) == 2
    err = capsys.readouterr().err
    for option in ("--chairs", "--interval", "--port", "--count"):
        assert f"monitor-sim: {option}:" in err


def test_ack_code_is_read_for_the_right_control_id() -> None:
    ack = b"MSH|^~\\&|KETACLINIC|||||ACK^R01^ACK|X|P|2.6\rMSA|AE|C-1\rERR||"
    assert read_ack_code(ack, "C-1") == "AE"
    assert read_ack_code(ack, "C-2") == "??"
    assert device_eui64(10) == "02AB51000000000A"  # 16 hex digits


def test_streams_chairs_over_persistent_connections(
    running_listener: ThreadedListener, org: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from ketaclinic.monitoring.models import HL7Message, MonitorDevice, VitalReading

    for chair in (1, 2, 3):
        register_monitor(org, device_eui64(chair))  # allowed from this computer, where the simulator runs
    code = main(
        [
            "--chairs", "3", "--interval", "20ms", "--count", "4", "--style", "mixed",
            "--port", str(running_listener.port), "--json",
        ]
    )  # fmt: skip
    assert code == 0
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert summary["sent"] == 12 and summary["acks"] == {"AA": 12} and summary["reconnects"] == 0
    assert HL7Message.objects.count() == 12
    # 3 chairs x 4 messages x 5 vitals, in the mdc, ucum and Philips mdil styles alike
    assert VitalReading.objects.count() == 60
    assert MonitorDevice.objects.count() == 3
    assert running_listener.listener.stats.connections == 3  # one persistent connection per chair
