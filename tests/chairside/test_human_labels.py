"""Human labels wherever a code used to leak to clinicians (issue 14: "raw codes shown to clinicians
(`needs_decision`, `eligible_with_cautions`, `min_monitoring`, `supplier_dea`)").

A whole IV course from an empty clinic — intake with a benzodiazepine (eligible with cautions), a signed
screening, a plan, a session whose pre-dose BP needs a prescriber's decision, a 45 °C reading that raises the
temperature alert, discharge refused before the minimum and done after it, a refused stock receipt — and
every page a nurse or prescriber reads on the way is searched for the codes below in its visible text
(the session report PDF too). Codes are the values with an underscore: the ones that are not words.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import time_machine
from django.conf import settings
from django.test import Client
from tests.chairside.journey import Api
from tests.chairside.test_report_pdf import pdf_text
from tests.consent.helpers import consent_body
from tests.ledger.stock import ketamine_ml
from tests.pages import visible
from tests.treatment.conftest import open_site, screened

from ketaclinic.chairside.models import AdministrationKind, SessionAlert, Status
from ketaclinic.clinical.alerts import AlertCode, Emergency
from ketaclinic.clinical.discharge import Criterion
from ketaclinic.clinical.dose_types import DoseKind
from ketaclinic.clinical.dosing import calculate_dose
from ketaclinic.clinical.gate import GateItemKey, GateStatus
from ketaclinic.clinical.protocol_library import PROTOCOLS
from ketaclinic.clinical.screening_model import Decision, TrialOutcome
from ketaclinic.core import labels
from ketaclinic.treatment import library
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.models import PlanStatus, SessionStatus

T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)  # a Monday, 10:00 at the site
M = timedelta(minutes=1)
PROTOCOL = PROTOCOLS["iv-trd-elektd"]

#: Every code a clinician's page could show, from the vocabularies that leaked (and their neighbours).
LEDGER_FIELDS = ("supplier_dea", "supplier_name", "supplier_address", "mg_per_unit", "received_on")
CODES = sorted(
    {
        str(c)
        for vocabulary in (
            GateStatus,
            GateItemKey,
            Decision,
            Criterion,
            DoseKind,
            AlertCode,
            Emergency,
            Status,
            AdministrationKind,
            TrialOutcome,
            PlanStatus,
            SessionStatus,
        )
        for c in vocabulary
        if "_" in str(c)
    }
    | set(LEDGER_FIELDS)
)


def leaked(text: str) -> list[str]:
    return [code for code in CODES if code in text]


class Pages:
    def __init__(self, user: Any, sign_in: Any) -> None:
        self.user, self.sign_in = user, sign_in
        self.seen: dict[str, str] = {}

    def read(self, name: str, url: str, *, expect: int = 200, post: dict[str, Any] | None = None) -> str:
        client = self.sign_in(Client(enforce_csrf_checks=True), self.user)
        if post is None:
            response = client.get(url)
        else:
            client.get("/")
            token = client.cookies[settings.CSRF_COOKIE_NAME].value
            response = client.post(url, {**post, "csrfmiddlewaretoken": token})
        assert response.status_code == expect, (name, response.status_code)
        text = visible(response.content.decode())
        self.seen[name] = text
        return text


def test_a_whole_course_shows_clinicians_no_raw_code(
    nurse: Any, prescriber: Any, admin: Any, site: Any, make_patient: Any, sign_in: Any, tmp_path: Any
) -> None:
    assert {"needs_decision", "eligible_with_cautions", "min_monitoring", "supplier_dea"} <= set(CODES)
    with time_machine.travel(T0 - 60 * M, tick=False) as clock:
        open_site(site)
        patient = make_patient(nurse, sex="male", weight_kg=80, height_cm=180)
        benzo = [{"name": "clonazepam", "classes": ["benzodiazepine"], "diazepam_equivalent_mg_per_day": 4}]
        screening = screened(nurse, prescriber, patient, medications=benzo)
        assert screening.decisions["ketamine"] == Decision.ELIGIBLE_WITH_CAUTIONS
        plan = treatment.create_plan(
            user=prescriber,
            patient=patient,
            data={"protocol": PROTOCOL.id, "start": "2026-12-14", "preferred_time": "09:00"},
        )
        desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
        nurse_pages, rx_pages = Pages(nurse, sign_in), Pages(prescriber, sign_in)
        desk.ok(
            f"/patients/{patient.pk}/consents", consent_body("ketamine", T0.date().isoformat()), status=201
        )
        dose = calculate_dose(protocol=PROTOCOL, weight_kg=80, height_cm=180).dose_mg
        session = desk.ok(
            "/sessions",
            {
                "patient_id": str(patient.pk),
                "protocol_id": PROTOCOL.id,
                "planned_dose_mg": f"{dose:.2f}",
                "scheduled_at": T0.isoformat(),
            },
            status=201,
        )
        sid = session["id"]
        clock.move_to(T0 - 20 * M)
        desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": session["version"]})
        desk.reading(sid, T0 - 20 * M, "base", sbp_mmhg=150, dbp_mmhg=95)
        gate = desk.ok(
            f"/sessions/{sid}/gate",
            {"escort_confirmed": True, "ride_home_confirmed": True, "pregnancy_test": "not_indicated"},
        )
        status = {item["key"]: item["status"] for item in gate["items"]}
        assert status["baseline_vitals"] == GateStatus.NEEDS_DECISION, status
        page = nurse_pages.read("session at the gate", f"/sessions/{sid}/")
        assert "Needs a prescriber's decision" in page and "Not applicable" in page
        for key, value in status.items():
            if value in (GateStatus.FAIL, GateStatus.NEEDS_DECISION):
                rx.ok(
                    f"/sessions/{sid}/gate/overrides",
                    {"item_key": key, "reason": "BP rechecked; proceed today"},
                )

        clock.move_to(T0)
        lot = ketamine_ml(nurse, patient.site, "10", lot="K-LBL")
        desk.start_infusion(sid, prescriber, dose=f"{dose:.2f}", rate="150", lot=lot)
        clock.move_to(T0 + 10 * M)
        desk.reading(sid, T0 + 10 * M, "fever", temp_c=45.0)
        alerts = {a.code: a for a in SessionAlert.objects.filter(session_id=sid)}
        assert AlertCode.TEMP_HIGH in alerts
        clock.move_to(T0 + 40 * M)
        desk.ok(f"/sessions/{sid}/administrations", {"kind": "infusion_stop"}, status=201)
        desk.ok(
            f"/sessions/{sid}/alerts/{alerts[AlertCode.TEMP_HIGH].pk}/acknowledge",
            {"note": "Rechecked: 36.9 °C with another thermometer"},
        )
        clock.move_to(T0 + 50 * M)
        desk.reading(sid, T0 + 50 * M, "p1")
        assert "min_monitoring" in desk.get(f"/sessions/{sid}/discharge").json()["blocking"]
        page = nurse_pages.read("session before discharge", f"/sessions/{sid}/")
        assert "Minimum observation time" in page
        assert "Temperature ≥ 38 °C" in page  # the temperature rule beside the readings

        for minute in range(55, 170, 15):
            clock.move_to(T0 + minute * M)
            desk.refresh()
            desk.reading(sid, T0 + minute * M, f"r{minute}")
        desk.ok(
            f"/sessions/{sid}/discharge",
            {"clinically_stable": True, "escort_present": True, "driving_advice_given": True},
        )
        nurse_pages.read("session discharged", f"/sessions/{sid}/")
        rx_pages.read("chart", f"/patients/{patient.pk}/")
        rx_pages.read("intake", f"/patients/{patient.pk}/intake/")
        rx_pages.read("screening", f"/screenings/{screening.pk}/")
        page = rx_pages.read("plan", f"/plans/{plan.pk}/")
        assert "Eligible with cautions" in page
        rx_pages.read("new plan", f"/patients/{patient.pk}/plans/new/")
        nurse_pages.read("home", "/")
        nurse_pages.read("sessions", "/sessions/")
        nurse_pages.read("calendar", f"/calendar/?site={site.pk}")
        rx_pages.read("alert limits", f"/accounts/sites/{site.pk}/alerts/")
        assert "Ketamine (racemic), IV" in rx_pages.read("protocols", "/protocols/")
        library.copy_protocol(
            user=admin, source=library.get_version(admin, PROTOCOL.id), new_id="iv-ours", name="Our IV"
        )
        page = Pages(admin, sign_in).read("protocol editor", "/protocols/iv-ours/edit/")
        assert "Dose as mg/kg" in page
        rx_pages.seen["protocol editor"] = page
        page = nurse_pages.read(
            "stock receipt refused",
            "/ledger/receive/",
            post={"site": site.pk, "drug": "ketamine", "supplier_dea": "12"},
            expect=422,
        )
        assert "Supplier DEA number" in page
        rx.refresh()
        pdf = rx.client.get(f"/sessions/{sid}/report/pdf/")
        assert pdf.status_code == 200
        report = pdf_text(pdf.content, tmp_path)
        # The gate's status column wraps "Needs a prescriber's decision" over two lines.
        assert "Pre-dose vitals Needs a" in report and "Minimum observation" in report
        assert "45.0" in report  # the temperature reading in the vitals table
    found = {
        name: leaked(text) for name, text in {**nurse_pages.seen, **rx_pages.seen, "report": report}.items()
    }
    bad = {name: codes for name, codes in found.items() if codes}
    assert bad == {}, bad
    assert labels.label("needs_decision", "gate_status") == "Needs a prescriber's decision"
