"""Every protocol in the library, taken through a whole session by the JSON API from an empty clinic:
consent → scheduling with the calculated dose → check-in → baseline → every-session scales → gate (and a
prescriber's decision on the screening item) → doses by the protocol's route, with a second person where
the rules name one → readings → discharge refused before the minimum, allowed after it.

The clock is frozen and moved as a morning at the chair would move (time-machine); the client signs in
again after each jump, as a nurse's screen would after the idle time-out. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from tests.consent.helpers import consent_body
from tests.ledger.stock import ketamine_ml, spravato

from ketaclinic.chairside.models import Administration, TreatmentSession
from ketaclinic.clinical.conditions import Drug, Route
from ketaclinic.clinical.dosing import calculate_dose
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.clinical.protocols import ObservationAnchor, Protocol

from .journey import Api, signature

T0 = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)  # a Monday, 09:00 in New York (the site's zone)
M = timedelta(minutes=1)


def _gate_answers(protocol: Protocol) -> dict[str, Any]:
    answers: dict[str, Any] = {
        "escort_confirmed": True,
        "ride_home_confirmed": True,
        "pregnancy_test": "negative",
        "pregnancy_test_on": date(2026, 12, 7),
    }
    if protocol.drug is Drug.ESKETAMINE:
        answers |= {
            "rems_patient_enrolled": True,
            "rems_setting_certified": True,
            "hours_since_food": 3,
            "minutes_since_liquids": 45,
            "nasal_steroid_or_decongestant_today": False,
        }
    return answers


def _minimum_after_first_dose(protocol: Protocol) -> int:
    """Minutes from the first dose until the protocol's observation minimum is over."""
    dose_min = protocol.phases[0].dose.duration_min or 0
    observe = protocol.monitoring.observation_min
    if protocol.monitoring.observation_anchor is ObservationAnchor.END_OF_DOSE:
        return dose_min + observe
    return max(observe, 120 if protocol.drug is Drug.ESKETAMINE else observe)


@pytest.mark.parametrize("protocol_id", sorted(PROTOCOLS))
def test_every_protocol_a_whole_session_through_the_api(
    protocol_id: str, nurse: Any, prescriber: Any, make_patient: Any, sign_in: Any, site: Any
) -> None:
    protocol = PROTOCOLS[protocol_id]
    with time_machine.travel(T0 - 30 * M, tick=False) as clock:
        patient = make_patient(nurse, sex="male", weight_kg=80, height_cm=180)
        # The site's stock: Spravato devices, ketamine 10 mg/mL (IV, and sublingual solution), 50 mg/mL (IM).
        devices, k10, k50 = (
            spravato(nurse, site),
            ketamine_ml(nurse, site, "10"),
            ketamine_ml(nurse, site, "50"),
        )
        calc = calculate_dose(protocol=protocol, weight_kg=80, height_cm=180)
        desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
        desk.ok(
            f"/patients/{patient.pk}/consents",
            consent_body(protocol.drug.value, "2026-12-07", route=protocol.route.value),
            status=201,
        )
        session = desk.ok(
            "/sessions",
            {
                "patient_id": str(patient.pk),
                "protocol_id": protocol.id,
                "planned_dose_mg": f"{calc.dose_mg:.2f}",
                "scheduled_at": T0.isoformat(),
            },
            status=201,
        )
        sid = session["id"]
        assert session["session_number"] == 1 and session["protocol_version"] == protocol.version
        clock.move_to(T0 - 20 * M)
        session = desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": session["version"]})
        clock.move_to(T0 - 15 * M)
        desk.reading(sid, T0 - 15 * M, "base")
        # Every-session scales (YMRS for bipolar depression, MADRS for KetECT): taken before the gate.
        for scale in protocol.scales:
            if any(t.value == "every_session" for t in scale.timing):
                code = scale.scale.replace("_", "-")
                items = 11 if code == "ymrs" else 10
                desk.ok(
                    f"/patients/{patient.pk}/scales",
                    {"instrument": code, "answers": {str(i): 0 for i in range(1, items + 1)}},
                    status=201,
                )
        clock.move_to(T0 - 10 * M)
        gate = desk.ok(f"/sessions/{sid}/gate", _gate_answers(protocol))
        status = {item["key"]: item["status"] for item in gate["items"]}
        assert status["consent"] == "pass" and status["baseline_vitals"] == "pass"
        assert status["pre_session_scales"] in ("pass", "not_applicable") and status["suicidality"] == "pass"
        assert [k for k, v in status.items() if v in ("fail", "needs_decision")] == ["screening"]
        assert not gate["passed"]
        # No signed screening in this empty clinic: the prescriber records the decision to proceed.
        gate = rx.ok(
            f"/sessions/{sid}/gate/overrides",
            {"item_key": "screening", "reason": "Screening signed on paper at the intake visit"},
        )
        assert gate["passed"] and gate["session"]["gate_opened_at"] is not None

        # Doses at T0, by route.
        clock.move_to(T0)
        if protocol.drug is Drug.ESKETAMINE:
            devices_given = round(calc.dose_mg / 28)
            for n in range(devices_given):
                clock.move_to(T0 + 5 * n * M)
                desk.refresh()
                row = desk.ok(
                    f"/sessions/{sid}/administrations",
                    {"kind": "nasal_device", "lot_id": str(devices.pk)},
                    status=201,
                )
                assert row["device_number"] == n + 1 and row["warning"] == ""
                assert (row["lot"], row["drawn"]) == (devices.lot, "1.000")
            extra = desk.refused(
                f"/sessions/{sid}/administrations", {"kind": "nasal_device", "lot_id": str(devices.pk)}
            )
            assert "kind" in extra or "session" in extra
            assert devices.entries.filter(kind="use").count() == devices_given
        elif protocol.route is Route.IV:
            minutes = protocol.phases[0].dose.duration_min or 40
            rate = round(100 / (minutes / 60), 2)  # the dose in 100 mL over the protocol's time
            row = desk.ok(
                f"/sessions/{sid}/administrations",
                {
                    "kind": "infusion_start",
                    "lot_id": str(k10.pk),
                    "given": f"{calc.dose_mg / 10:.3f}",
                    "container_volume_ml": "100",
                    "dose_mg": f"{calc.dose_mg:.2f}",
                    "rate_ml_per_h": str(rate),
                    "verifier": signature(prescriber),
                },
                status=201,
            )
            assert row["verified_by"] == prescriber.pk and row["concentration_mg_ml"] == "10.000"
            assert float(row["rate_mg_per_h"]) == pytest.approx(calc.dose_mg / (minutes / 60), abs=0.05)
            for k in range(1, minutes // 10 + 1):  # every 10 minutes during the infusion
                clock.move_to(T0 + 10 * k * M - M)
                desk.refresh()
                desk.reading(sid, T0 + 10 * k * M - M, f"i{k}")
            clock.move_to(T0 + minutes * M)
            desk.refresh()
            desk.ok(f"/sessions/{sid}/administrations", {"kind": "infusion_stop"}, status=201)
        else:
            lot = k50 if protocol.route is Route.IM else k10
            body: dict[str, Any] = {
                "kind": "injection" if protocol.route is Route.IM else "sublingual",
                "lot_id": str(lot.pk),
                "given": f"{calc.dose_mg / float(lot.mg_per_unit):.3f}",
                "dose_mg": f"{calc.dose_mg:.2f}",
            }
            if protocol.route is Route.IM:
                body |= {"verifier": signature(prescriber)}
            desk.ok(f"/sessions/{sid}/administrations", body, status=201)

        stored = TreatmentSession.objects.get(pk=sid)
        assert stored.status == "monitoring" and stored.dose_clock_at is not None
        given = sum(float(a.dose_mg or 0) for a in Administration.objects.filter(session=stored))
        assert given == pytest.approx(calc.dose_mg, abs=0.01)

        # Readings until the minimum observation is over; discharge refused a little before, allowed after.
        end = _minimum_after_first_dose(protocol)
        start = protocol.phases[0].dose.duration_min or 0 if protocol.route is Route.IV else 0
        for k, at in enumerate(range(start + 15, end + 1, 15)):
            clock.move_to(T0 + at * M)
            desk.refresh()
            desk.reading(sid, T0 + at * M, f"p{k}")
        clock.move_to(T0 + (end - 5) * M)
        desk.refresh()
        early = desk.get(f"/sessions/{sid}/discharge").json()
        assert "min_monitoring" in early["blocking"], early
        discharge = {"clinically_stable": True, "escort_present": True, "driving_advice_given": True}
        refused = desk.refused(f"/sessions/{sid}/discharge", discharge)
        assert "criterion.min_monitoring" in refused
        clock.move_to(T0 + (end + 1) * M)
        desk.refresh()
        done = desk.ok(f"/sessions/{sid}/discharge", discharge)
        assert done["session"]["status"] == "discharged" and done["overridden_by"] is None
