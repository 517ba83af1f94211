"""Session report PDF: an IV session with a pump-rate change, readings, a scale, an acknowledged alert, an
emergency checklist, an adverse event and a discharge override — all read back from the PDF's text."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date, timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import rems_services as rs
from ketaclinic.chairside.models import (
    Administration,
    AdverseEvent,
    ChecklistRun,
    DischargeRecord,
    GateCheck,
    Observation,
    SessionAlert,
    SessionEvent,
    TreatmentSession,
)
from ketaclinic.chairside.reports import vitals_drawing
from ketaclinic.measures.models import ScaleAdministration


def pdf_text(pdf: bytes, tmp_path: Any) -> str:
    if shutil.which("pdftotext") is None:
        reason = "pdftotext (poppler-utils) is not installed: cannot read the PDF's text back"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs it (.ci/run): a missing tool must not pass silently there
        pytest.skip(reason)
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(result.stdout.decode().split())


@pytest.fixture
def iv_session(patient: Any, site: Any, nurse: Any, prescriber: Any) -> TreatmentSession:
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=5)
    org = patient.organization
    session = TreatmentSession.objects.create(
        organization=org,
        patient=patient,
        site=site,
        protocol_id="iv-0.5-40",
        drug="ketamine",
        route="iv",
        planned_dose_mg=35,
        scheduled_at=t0 - timedelta(minutes=30),
        status="discharged",
        dose_started_at=t0,
        dosing_ended_at=t0 + timedelta(minutes=40),
        discharged_at=t0 + timedelta(minutes=125),
        ready_at=t0 + timedelta(minutes=100),
        created_by=nurse,
    )
    SessionEvent.objects.create(
        organization=org,
        session=session,
        from_status="checked_in",
        to_status="pre_dose",
        at=t0 - timedelta(minutes=20),
        by=nurse,
    )
    GateCheck.objects.create(
        organization=org,
        session=session,
        answers={},
        items=[
            {
                "key": "screening",
                "title": "Screening signed",
                "status": "fail",
                "reason": "No signed screening",
            }
        ],
        overrides=[
            {
                "item_key": "screening",
                "reason": "Signed on paper this morning",
                "prescriber": "Dr Prescriber1",
            }
        ],
        passed=True,
        evaluated_at=t0 - timedelta(minutes=15),
        by=nurse,
    )
    common = {
        "organization": org,
        "session": session,
        "drug": "ketamine",
        "product": "Ketamine HCl 50 mg/mL",
        "concentration_mg_ml": 50,
        "lot": "KX-2210",
        "expiry": date(2027, 1, 31),
        "given_by": nurse,
    }
    Administration.objects.create(
        kind="infusion_start", at=t0, dose_mg=35, rate_ml_per_h=84, verified_by=prescriber, **common
    )
    Administration.objects.create(
        kind="rate_change", at=t0 + timedelta(minutes=15), rate_ml_per_h=60, note="slowed for BP", **common
    )
    Administration.objects.create(kind="infusion_stop", at=t0 + timedelta(minutes=40), **common)
    for minute, sbp, dbp, hr, spo2 in (
        (-10, 124, 78, 70, 98),
        (10, 150, 92, 84, 97),
        (40, 182, 104, 96, 95),
        (70, 140, 86, 80, 97),
        (120, 126, 80, 72, 98),
    ):
        Observation.objects.create(
            organization=org,
            session=session,
            observed_at=t0 + timedelta(minutes=minute),
            sbp_mmhg=sbp,
            dbp_mmhg=dbp,
            hr_bpm=hr,
            spo2_pct=spo2,
            rr_per_min=14,
            moaas=5,
            cadss_total=6 if minute == 40 else 0,
            mental_status="calm" if minute == 120 else "",
            entered_by=nurse,
        )
    SessionAlert.objects.create(
        organization=org,
        session=session,
        code="sbp_high",
        severity="critical",
        message="SBP 182 at 40 min is at or above 180",
        source="clinical.md §7.3",
        dedup_key="sbp_high:40",
        raised_at=t0 + timedelta(minutes=40),
        acknowledged_by=prescriber,
        acknowledged_at=t0 + timedelta(minutes=42),
        note="Rechecked, infusion already stopped",
    )
    ChecklistRun.objects.create(
        organization=org,
        session=session,
        code="hypertensive_surge",
        title="Hypertensive surge",
        steps=[
            {
                "text": "Recheck BP in 5 minutes",
                "done_at": (t0 + timedelta(minutes=45)).isoformat(),
                "by": "Nurse1",
            },
            {"text": "Call the prescriber", "done_at": None, "by": None},
        ],
        started_at=t0 + timedelta(minutes=41),
        started_by=nurse,
    )
    AdverseEvent.objects.create(
        organization=org,
        session=session,
        term="Blood pressure increased",
        severity="moderate",
        serious=False,
        onset_at=t0 + timedelta(minutes=40),
        action_taken="Infusion rate reduced",
        outcome="resolved",
        recorded_by=nurse,
    )
    DischargeRecord.objects.create(
        organization=org,
        session=session,
        criteria=[
            {"criterion": "vitals", "met": True, "reason": "At 120 min: BP 126/80, HR 72 acceptable"},
            {"criterion": "dissociation", "met": False, "reason": "No CADSS recorded after 40 min"},
        ],
        overrides=[{"criterion": "dissociation", "reason": "Patient oriented and calm", "by": "Prescriber1"}],
        escort_present=True,
        driving_advice_given=True,
        decided_at=t0 + timedelta(minutes=125),
        by=prescriber,
    )
    ScaleAdministration.objects.create(
        organization=org,
        patient=patient,
        instrument="cadss",
        instrument_version="1",
        answers={},
        total=6,
        band="",
        flags=[],
        entered_by_kind="clinician",
        entered_by=nurse,
        administered_at=t0 + timedelta(minutes=40),
        session_id=session.pk,
    )
    ScaleAdministration.objects.create(  # another session's scale: not in this report
        organization=org,
        patient=patient,
        instrument="phq9",
        instrument_version="1",
        answers={},
        total=17,
        band="moderately severe",
        flags=[],
        entered_by_kind="clinician",
        entered_by=nurse,
        administered_at=t0 - timedelta(days=3),
    )
    return session


def test_session_report_holds_the_whole_session(iv_session: Any, nurse: Any, tmp_path: Any) -> None:
    pdf, name = rs.print_session_report(user=nurse, session=iv_session)
    assert pdf.startswith(b"%PDF") and "Examplesson" not in name
    text = pdf_text(pdf, tmp_path)
    for expected in (
        "Treatment session report",
        "Examplesson, Testa",
        # dose timeline: start at 0 with the rate, a change at +15, the stop at +40
        "Infusion started",
        "+0",
        "84.00 mL/h",
        "Infusion rate changed",
        "+15",
        "60.00 mL/h",
        "slowed for BP",
        "Infusion stopped",
        "+40",
        "KX-2210 (2027-01-31)",
        # vitals plot legend and table
        "SBP mmHg",
        "DBP mmHg",
        "HR bpm",
        "SpO2 %",
        "minutes from first dose",
        "182/104",
        # the scale of this session only
        "CADSS 6",  # the scale given in this session, by name
        # alert with its acknowledgement
        "SBP 182 at 40 min is at or above 180",
        "Rechecked, infusion already stopped",
        # checklist with a done and a pending step
        "Hypertensive surge",
        "Recheck BP in 5 minutes",
        "not done",
        # adverse event
        "Blood pressure increased",
        "Infusion rate reduced",
        # gate override and discharge criteria with the override
        "Signed on paper this morning",
        "No CADSS recorded after 40 min",
        "Patient oriented and calm",
    ):
        assert expected in text, expected
    assert "PHQ-9" not in text and "phq9" not in text
    entry = AuditEntry.objects.get(action="print", object_type="TreatmentSession")
    assert entry.patient_id == iv_session.patient_id


def test_vitals_plot_has_a_line_per_measure_against_minutes() -> None:
    points = [
        (-10.0, {"sbp": 124, "dbp": 78, "hr": 70, "spo2": None}),
        (40.0, {"sbp": 182, "dbp": 104, "hr": 96, "spo2": None}),
    ]
    drawing = vitals_drawing(points, width=400)
    plot = next(c for c in drawing.contents if isinstance(c, LinePlot))
    legend = next(c for c in drawing.contents if isinstance(c, Legend))
    # No SpO2 values → three lines; x is minutes from the first dose.
    assert plot.data == [
        [(-10.0, 124.0), (40.0, 182.0)],
        [(-10.0, 78.0), (40.0, 104.0)],
        [(-10.0, 70.0), (40.0, 96.0)],
    ]
    assert [name for _, name in legend.colorNamePairs] == ["SBP mmHg", "DBP mmHg", "HR bpm"]
    # x axis from min(−10, 0) − 5 = −15 to 40 + 5 = 45
    assert (plot.xValueAxis.valueMin, plot.xValueAxis.valueMax) == (-15, 45)


def test_report_page_answers_a_pdf_attachment(iv_session: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    response = client.get(f"/sessions/{iv_session.pk}/report/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith('attachment; filename="session-report-')
    assert response["Cache-Control"] == "no-store" and response.content.startswith(b"%PDF")
