"""An implausible value over a real MLLP connection (issue 16 points 3 and 6): the monitor gets an AA in its
own HL7 version with a warning naming the OBX-5, which hl7apy's strict parser accepts; the value is stored,
marked, and left off the chart."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from hl7.client import MLLPClient
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message
from tests.fhir.conftest import get_token
from tests.fhir.device_feed import EUI, message

from ketaclinic.interop.fhir import auth

from .conftest import ThreadedListener, register_monitor


@pytest.mark.parametrize("version", ["2.4", "2.6"])
def test_the_ack_warns_in_the_senders_version(
    transactional_db: Any, org: Any, site: Any, nurse: Any, make_patient: Any, version: str
) -> None:
    from ketaclinic.monitoring.models import VitalReading
    from ketaclinic.monitoring.services import recent_for_patient

    patient = make_patient(nurse, mrn="M90")
    register_monitor(org, EUI)
    at = timezone.now().replace(microsecond=0) - timedelta(minutes=2)
    text = message(at=at, mrn="M90", cid=f"V{version}", version=version)
    listener = ThreadedListener(organization=org, default_site=site)
    try:
        with MLLPClient(listener.host, listener.port) as client:
            ack = client.send_message(text).decode()
    finally:
        listener.stop()
    ack = ack.strip("\x0b\x1c\r")
    parsed = parse_message(ack, validation_level=VALIDATION_LEVEL.STRICT)
    assert parsed.validate() is True
    segments = {s.split("|")[0]: s.split("|") for s in ack.split("\r")}
    assert segments["MSH"][11] == version  # MSH-12 (MSH-1 is the separator itself)
    assert segments["MSA"][1:3] == ["AA", f"V{version}"]
    err = segments["ERR"]
    if version == "2.4":  # ERR-1 only: segment^sequence^field^code&text&table; the text in MSA-3
        assert len(err) == 2 and err[1] == "OBX^2^5^0&Message accepted&HL70357"
        assert "DBP 400 mmHg" in segments["MSA"][3]
    else:
        assert (err[1], err[2], err[4]) == ("", "OBX^2^5", "W")
        assert "DBP 400 mmHg is outside the plausible range" in err[8]
    row = VitalReading.objects.get(patient=patient, kind="dbp")
    assert row.value == 400 and row.implausible
    assert VitalReading.objects.get(patient=patient, kind="spo2").value == 96.6
    (reading_set,) = recent_for_patient(patient=patient)[0]
    assert reading_set.implausible and not any(v.startswith("DBP") for v in reading_set.values)
    # Round trip to the FHIR JSON an EHR reads: nothing rounded, the diastolic marked.
    api_client, secret = auth.create_client(organization=org, name="EHR", scopes="system/Observation.rs")
    token = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    bundle = (
        Client().get(f"/fhir/Observation?patient={patient.pk}", HTTP_AUTHORIZATION=f"Bearer {token}").json()
    )
    values = {
        e["resource"]["code"]["text"]: e["resource"].get("valueQuantity", {}).get("value")
        for e in bundle["entry"]
    }
    assert (values["Oxygen saturation (SpO2)"], values["Heart rate"], values["Perfusion index"]) == (
        96.6,
        72.5,
        2.35,
    )
    panel = next(e["resource"] for e in bundle["entry"] if e["resource"]["code"]["text"] == "Blood pressure")
    assert [
        c.get("interpretation", [{}])[0].get("coding", [{}])[0].get("code") for c in panel["component"]
    ] == [
        None,
        "implausible",
        None,
    ]
