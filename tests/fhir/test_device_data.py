"""Every value a bedside monitor sent reaches FHIR as sent (issue 16 point 3): MAP in the BP panel, pulse
rate from the oximeter, perfusion index, at full precision, with the Device that measured it, in a session
or not; an implausible value is served marked, warned in the ACK and kept off the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation
from tests.fhir.conftest import ids, iso, read, search
from tests.fhir.device_feed import EUI, MMHG, feed, message
from tests.monitoring.conftest import register_monitor

from ketaclinic.interop.fhir import profiles

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
def fed(org: Any, site: Any, nurse: Any, make_patient: Any) -> Any:
    """A monitor registered but in no chair; a patient identified by MRN in PID-3: readings outside any
    session, bound to the patient."""
    patient = make_patient(nurse, mrn="M77")
    device = register_monitor(org, EUI, label="Bay 3 monitor")
    outcomes = feed(org, site, message(at=T0, mrn="M77"))
    assert [o.code.value for o in outcomes] == ["AA"]
    return patient, device, outcomes[0]


def _by_text(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["code"]["text"]: e["resource"] for e in bundle["entry"]}


def _codings(resource: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in resource["code"]["coding"]]


def test_every_value_is_an_observation_at_full_precision_with_its_device(
    org: Any, bearer: Any, fed: Any
) -> None:
    patient, device, _outcome = fed
    h = bearer(org)
    bundle = search(h, f"/fhir/Observation?patient={patient.pk}&_count=50")
    Bundle.model_validate(bundle)
    found = _by_text(bundle)
    assert set(found) == {
        "Blood pressure",
        "Heart rate",
        "Oxygen saturation (SpO2)",
        "Pulse rate by pulse oximetry",
        "Perfusion index",
    }
    for resource in found.values():
        Observation.model_validate(resource)
        assert profiles.check(resource) == []  # the US Core profile it claims, met
        assert resource["device"] == {"reference": f"Device/{device.pk}"}
        assert resource["subject"] == {"reference": f"Patient/{patient.pk}"}
        assert "encounter" not in resource  # outside any session
        assert resource["effectiveDateTime"] == iso(T0)
        assert resource["category"][0]["coding"][0]["code"] == "vital-signs"
    # Full precision: nothing rounded on the way from OBX-5 to the JSON.
    assert found["Heart rate"]["valueQuantity"]["value"] == 72.5
    assert _codings(found["Heart rate"]) == [(LOINC, "8867-4"), (MDC, "147842")]
    spo2 = found["Oxygen saturation (SpO2)"]
    assert spo2["valueQuantity"] == {
        "value": 96.6,
        "unit": "%",
        "system": "http://unitsofmeasure.org",
        "code": "%",
    }
    assert _codings(spo2) == [(LOINC, "2708-6"), (LOINC, "59408-5"), (MDC, "150456")]
    pulse = found["Pulse rate by pulse oximetry"]
    assert (pulse["valueQuantity"]["value"], pulse["valueQuantity"]["code"]) == (71, "/min")
    assert _codings(pulse) == [(LOINC, "8889-8"), (MDC, "149530")]
    pi = found["Perfusion index"]
    assert pi["valueQuantity"]["value"] == 2.35 and _codings(pi) == [(MDC, "150488")]  # no LOINC in reference
    assert pi["code"]["coding"][0]["display"] == "MDC_BLD_PERF_INDEX"
    claims = {text: r["meta"].get("profile") for text, r in found.items()}
    assert claims == {
        "Blood pressure": [profiles.BLOOD_PRESSURE],
        "Heart rate": [profiles.HEART_RATE],
        "Oxygen saturation (SpO2)": [profiles.PULSE_OXIMETRY],
        "Pulse rate by pulse oximetry": None,  # 8889-8 is not a US Core vital sign
        "Perfusion index": None,
    }
    # BP: one panel with the mean pressure as a third component (interop.md §1.5).
    bp = found["Blood pressure"]
    assert _codings(bp) == [(LOINC, "85354-9"), (MDC, "150020")]
    assert "valueQuantity" not in bp
    components = {c["code"]["coding"][0]["code"]: c for c in bp["component"]}
    assert list(components) == ["8480-6", "8462-4", "8478-0"]
    assert components["8478-0"]["valueQuantity"]["value"] == 93.3
    assert [x["code"] for x in components["8478-0"]["code"]["coding"]] == ["8478-0", "150023"]
    assert components["8480-6"]["valueQuantity"]["value"] == 121


def test_an_implausible_value_is_kept_and_marked(org: Any, bearer: Any, fed: Any) -> None:
    patient, _device, outcome = fed
    bp = _by_text(search(bearer(org), f"/fhir/Observation?patient={patient.pk}"))["Blood pressure"]
    diastolic = next(c for c in bp["component"] if c["code"]["coding"][0]["code"] == "8462-4")
    assert diastolic["valueQuantity"]["value"] == 400  # kept as sent
    (interpretation,) = diastolic["interpretation"]
    assert interpretation["coding"][0]["code"] == "implausible"
    assert "outside the plausible range 20–200" in interpretation["text"]
    assert "not a measurement" in bp["note"][0]["text"]
    systolic = next(c for c in bp["component"] if c["code"]["coding"][0]["code"] == "8480-6")
    assert "interpretation" not in systolic
    Observation.model_validate(bp)
    # The ACK is an AA with a warning naming the field (ERR-2 OBX^2^5, severity W).
    ack = outcome.ack.decode().strip("\x0b\x1c\r")
    segments = {s.split("|")[0]: s.split("|") for s in ack.split("\r")}
    assert segments["MSA"][1] == "AA"
    err = segments["ERR"]
    assert (err[2], err[4]) == ("OBX^2^5", "W")
    assert "DBP 400 mmHg" in err[8]


def test_an_implausible_value_stays_off_the_chart_and_raises_no_alert(fed: Any) -> None:
    from ketaclinic.monitoring.models import MonitoringAlert, VitalReading
    from ketaclinic.monitoring.services import recent_for_patient

    patient, _device, _outcome = fed
    row = VitalReading.objects.get(patient=patient, kind="dbp")
    assert row.value == 400 and row.implausible and "20–200" in row.implausible_reason
    (reading_set,) = recent_for_patient(patient=patient)[0]
    assert not any(v.startswith("DBP") for v in reading_set.values)
    assert reading_set.implausible == [f"DBP 400 mm[Hg]: {row.implausible_reason}"]
    # DBP 400 would pass any "DBP high" threshold; it is not a measurement, so nothing is raised on it.
    assert not MonitoringAlert.objects.filter(patient=patient, code__startswith="dbp").exists()


@pytest.mark.parametrize(
    "query,wanted",
    [
        ({"code": f"{LOINC}|85354-9"}, {"Blood pressure"}),
        ({"code": f"{LOINC}|8478-0"}, set()),  # a MAP inside a panel is a component, not the panel's code
        ({"component-code": f"{LOINC}|8478-0"}, {"Blood pressure"}),
        ({"combo-code": f"{LOINC}|8478-0"}, {"Blood pressure"}),
        ({"combo-code": f"{MDC}|150023"}, {"Blood pressure"}),
        ({"component-code": f"{LOINC}|8462-4"}, {"Blood pressure"}),
        ({"code": f"{LOINC}|8889-8"}, {"Pulse rate by pulse oximetry"}),
        ({"code": f"{MDC}|149530"}, {"Pulse rate by pulse oximetry"}),
        ({"code": f"{MDC}|150488"}, {"Perfusion index"}),
        ({"code": f"{LOINC}|59408-5"}, {"Oxygen saturation (SpO2)"}),
        ({"code": "8867-4"}, {"Heart rate"}),
        (
            {"code": f"{LOINC}|", "_count": "50"},
            {"Blood pressure", "Heart rate", "Oxygen saturation (SpO2)", "Pulse rate by pulse oximetry"},
        ),
        (
            {"date": "ge2026-11-27T09:00", "category": "vital-signs"},
            {
                "Blood pressure",
                "Heart rate",
                "Oxygen saturation (SpO2)",
                "Pulse rate by pulse oximetry",
                "Perfusion index",
            },
        ),
        ({"date": "lt2026-11-27T09:00"}, set()),
    ],
)
def test_device_values_are_searchable(
    org: Any, bearer: Any, fed: Any, query: dict[str, str], wanted: set[str]
) -> None:
    patient, _device, _outcome = fed
    bundle = search(bearer(org), f"/fhir/Observation?{urlencode({'patient': str(patient.pk), **query})}")
    assert {e["resource"]["code"]["text"] for e in bundle.get("entry", [])} == wanted


def test_search_by_device(org: Any, site: Any, bearer: Any, fed: Any, nurse: Any, make_patient: Any) -> None:
    patient, device, _outcome = fed
    other_patient = make_patient(nurse, mrn="M78", given_name="Otto")
    other = register_monitor(org, "FEDCBA9876543210")
    feed(org, site, message(at=T0, mrn="M78", cid="D2", eui="FEDCBA9876543210"))
    h = bearer(org)
    mine = ids(h, f"/fhir/Observation?device=Device/{device.pk}&_count=50")
    theirs = ids(h, f"/fhir/Observation?device={other.pk}&_count=50")
    assert len(mine) == len(theirs) == 5 and not set(mine) & set(theirs)
    assert ids(h, f"/fhir/Observation?device={other.pk}&patient={patient.pk}") == []
    assert len(ids(h, f"/fhir/Observation?device={other.pk}&patient={other_patient.pk}")) == 5
    bad = Client().get("/fhir/Observation?device=Patient/123", **h)
    assert bad.status_code == 400 and "device" in bad.content.decode()


def test_a_mean_pressure_sent_alone_is_its_own_observation(
    org: Any, site: Any, bearer: Any, nurse: Any, make_patient: Any
) -> None:
    patient = make_patient(nurse, mrn="M79")
    register_monitor(org, EUI)
    feed(org, site, message(at=T0, mrn="M79", obx=(("150035^MDC_PRESS_BLD_ART_MEAN^MDC", "88.5", MMHG),)))
    bundle = search(bearer(org), f"/fhir/Observation?code={LOINC}|8478-0")
    (entry,) = bundle["entry"]
    resource = entry["resource"]
    Observation.model_validate(resource)
    assert resource["subject"] == {"reference": f"Patient/{patient.pk}"}
    assert _codings(resource) == [(LOINC, "8478-0"), (MDC, "150035")]
    assert resource["valueQuantity"]["value"] == 88.5


def test_unbound_readings_appear_once_attached(
    org: Any, site: Any, bearer: Any, nurse: Any, make_patient: Any
) -> None:
    from ketaclinic.monitoring.models import HL7Message
    from ketaclinic.monitoring.services import attach_readings, unbound_page

    patient = make_patient(nurse, mrn="M80")
    register_monitor(org, EUI)
    feed(org, site, message(at=T0, cid="U1"))  # no patient identifier, no chair: unbound
    h = bearer(org)
    assert ids(h, f"/fhir/Observation?patient={patient.pk}") == []
    (waiting,) = unbound_page(user=nurse).groups
    assert "DBP 400 mm[Hg] (implausible, not a measurement)" in waiting.values  # said to be one while waiting
    before = timezone.now()
    attach_readings(user=nurse, message_id=HL7Message.objects.get(control_id="U1").pk, mrn="M80")
    bundle = search(
        h, f"/fhir/Observation?patient={patient.pk}&_lastUpdated=ge{iso(before - timedelta(seconds=1))}"
    )
    assert len(bundle["entry"]) == 5


def test_device_read_and_search(org: Any, bearer: Any, fed: Any, outsider: Any) -> None:
    _patient, device, _outcome = fed
    h = bearer(org)
    resource = read(h, f"Device/{device.pk}")
    Device.model_validate(resource)
    assert resource["identifier"][0]["value"] == EUI
    assert resource["identifier"][0]["type"]["text"] == "EUI-64"
    assert resource["status"] == "active"
    assert resource["deviceName"] == [{"name": "Bay 3 monitor", "type": "user-friendly-name"}]
    assert ids(h, f"/fhir/Device?identifier={EUI}") == [str(device.pk)]
    assert ids(h, f"/fhir/Device?identifier={EUI.lower()}") == [str(device.pk)]
    assert ids(h, f"/fhir/Device?_id={device.pk}") == [str(device.pk)]
    assert ids(h, "/fhir/Device?identifier=0000000000000000") == []
    assert ids(h, "/fhir/Device?status=inactive") == []
    Bundle.model_validate(search(h, "/fhir/Device"))
    # Another organization's client never sees it.
    theirs = bearer(outsider.organization)
    assert Client().get(f"/fhir/Device/{device.pk}", **theirs).status_code == 404
    assert ids(theirs, "/fhir/Device") == []


def test_who_may_read_a_device(
    org: Any, site: Any, bearer: Any, fed: Any, nurse: Any, front_desk: Any, make_patient: Any
) -> None:
    patient, device, _outcome = fed
    unused = register_monitor(org, "1111222233334444")
    other = make_patient(nurse, mrn="M81", given_name="Ulla")
    # A user/ scope (a clinician's account) reads the organization's monitors, as the monitors page shows.
    staff = bearer(org, "user/Device.rs", acting_user=nurse)
    assert set(ids(staff, "/fhir/Device")) == {str(device.pk), str(unused.pk)}
    clerk = bearer(org, "user/Device.rs", acting_user=front_desk)
    assert Client().get("/fhir/Device", **clerk).status_code == 403
    # A patient/ scope reads only the monitors that measured that patient.
    own = bearer(org, "patient/Device.rs patient/Observation.rs", patient=patient)
    assert ids(own, "/fhir/Device") == [str(device.pk)]
    assert read(own, f"Device/{device.pk}")["id"] == str(device.pk)
    assert Client().get(f"/fhir/Device/{unused.pk}", **own).status_code == 404
    stranger = bearer(org, "patient/Device.rs", patient=other)
    assert ids(stranger, "/fhir/Device") == []
    assert Client().get(f"/fhir/Device/{device.pk}", **stranger).status_code == 404
    # $everything of the patient includes the monitor that measured them.
    everything = search(bearer(org), f"/fhir/Patient/{patient.pk}/$everything")
    kinds = [e["resource"]["resourceType"] for e in everything["entry"]]
    assert kinds.count("Device") == 1 and kinds.count("Observation") == 5


def test_in_session_readings_name_their_encounter_and_are_served_once(
    transactional_db: Any, org: Any, site: Any, nurse: Any, bearer: Any, make_patient: Any
) -> None:
    from tests.consent.helpers import consent_on_file

    from ketaclinic.accounts.models import Chair
    from ketaclinic.chairside import services as chairside
    from ketaclinic.chairside.models import Observation as ChairsideReading

    patient = make_patient(nurse, mrn="M82")
    chair = Chair.objects.create(organization=org, site=site, label="Chair 2")
    register_monitor(org, EUI, site=site, chair=chair)
    consent_on_file(nurse, patient, "esketamine")
    now = timezone.now()
    session = chairside.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=now - timedelta(minutes=30),
        planned_dose_mg=56,
        chair=chair,
    )
    chairside.transition(user=nurse, session=session, to="checked_in")
    at = (now - timedelta(minutes=5)).replace(microsecond=0)
    outcomes = feed(org, site, message(at=at, cid="S1"))
    assert outcomes[0].code.value == "AA"
    # The session got its rounded copy, without the implausible diastolic (the rest of the set still came).
    copy = ChairsideReading.objects.get(session=session, source="hl7")
    assert (copy.sbp_mmhg, copy.dbp_mmhg, copy.hr_bpm, copy.spo2_pct) == (121, None, 72, 97)
    h = bearer(org)
    bundle = search(h, f"/fhir/Observation?patient={patient.pk}&_count=50")
    resources = [e["resource"] for e in bundle["entry"]]
    # Served once, from the monitor table, at full precision: no vs-<uuid>-… copy of the same values.
    assert all(r["id"].startswith("mon-") for r in resources) and len(resources) == 5
    assert {r["encounter"]["reference"] for r in resources} == {f"Encounter/{session.pk}"}
    assert _by_text(bundle)["Oxygen saturation (SpO2)"]["valueQuantity"]["value"] == 96.6


def test_migration_fills_rows_stored_before_it(
    org: Any, site: Any, bearer: Any, nurse: Any, make_patient: Any
) -> None:
    """Rows stored before migration 0006 (no MDC code, every BP value its own lead, nothing marked) get the
    code from OBX-3 as sent, their panel grouping and their plausibility from the migration's data step; the
    FHIR view of them is then the same as of rows stored now."""
    from django.apps import apps

    from ketaclinic.monitoring.models import VitalReading

    patient = make_patient(nurse, mrn="M83", given_name="Olga")
    register_monitor(org, EUI)
    feed(org, site, message(at=T0, mrn="M83"))
    h = bearer(org)
    now = search(h, f"/fhir/Observation?patient={patient.pk}")["entry"]
    VitalReading.objects.update(mdc_code=None, bp_component=False, implausible_reason="")
    assert len(ids(h, f"/fhir/Observation?patient={patient.pk}")) == 7  # every BP value its own panel

    migration = __import__("ketaclinic.monitoring.migrations.0006_device_data_in_fhir", fromlist=["fill"])
    migration.fill(apps, None)

    assert set(VitalReading.objects.values_list("mdc_code", flat=True)) == {
        150021, 150022, 150023, 147842, 150456, 149530, 150488
    }  # fmt: skip
    assert VitalReading.objects.filter(bp_component=True).count() == 2
    assert VitalReading.objects.get(kind="dbp").implausible
    assert search(h, f"/fhir/Observation?patient={patient.pk}")["entry"] == now


def test_the_chart_shows_an_implausible_value_struck_out(
    org: Any, site: Any, nurse: Any, sign_in: Any, fed: Any
) -> None:
    patient, _device, _outcome = fed
    chart = sign_in(Client(), nurse).get(f"/patients/{patient.pk}/")
    assert chart.status_code == 200
    page = chart.content.decode()
    # The plausible values as readings; the diastolic 400 apart, struck out, with its reason.
    assert "SBP 121 mm[Hg], MAP 93.3 mm[Hg], HR 72.5 /min" in page
    assert '<del class="implausible">DBP 400 mm[Hg]: DBP 400 mmHg is outside the plausible range' in page
    assert "implausible: not a measurement, not charted" in page


def test_observations_include_their_device_and_a_device_revincludes_its_observations(
    org: Any, bearer: Any, fed: Any
) -> None:
    """``_include=Observation:device`` adds the monitor once (search.mode include); from the Device,
    ``_revinclude=Observation:device`` adds every value it measured."""
    patient, device, _outcome = fed
    h = bearer(org)
    bundle = search(h, f"/fhir/Observation?patient={patient.pk}&_include=Observation:device&_count=50")
    included = [e for e in bundle["entry"] if e["search"]["mode"] == "include"]
    assert [(e["resource"]["resourceType"], e["resource"]["id"]) for e in included] == [
        ("Device", str(device.pk))
    ]
    Device.model_validate(included[0]["resource"])
    back = search(h, f"/fhir/Device?_id={device.pk}&_revinclude=Observation:device")
    observations = [e["resource"] for e in back["entry"] if e["search"]["mode"] == "include"]
    assert len(observations) == 5 and {o["device"]["reference"] for o in observations} == {
        f"Device/{device.pk}"
    }
