"""REMS Patient Monitoring Form: assembled from a session built with the ORM, completeness blocking
sign-off, optimistic locking, submission, the due/overdue queue, the form PDF, the pages and their roles."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import rems_fields
from ketaclinic.chairside import rems_services as rs
from ketaclinic.chairside.models import (
    Administration,
    DischargeRecord,
    GateCheck,
    Observation,
    RemsMonitoringForm,
    TreatmentSession,
)

# Answers staff give on the page for what the record cannot tell (concomitant meds, phone …).
STAFF_ANSWERS = {
    "patient.first_treatment": "yes",
    "concomitant_medications.benzodiazepines": "no",
    "concomitant_medications.non_benzodiazepine_sedative_hypnotics": "no",
    "concomitant_medications.psychostimulants": "yes",
    "concomitant_medications.maois": "no",
    "concomitant_medications.other_sedation_dissociation_respiratory_or_bp_meds": "no",
    "monitoring_hcp.last_name": "Okafor",
    "monitoring_hcp.phone": "555-0100",
    "monitoring_hcp.email": "nurse1@example.org",
    "respiratory_depression": "no",
    "serious_adverse_event": "no",
}


def pdf_text(pdf: bytes, tmp_path: Any) -> str:
    if shutil.which("pdftotext") is None:
        reason = "pdftotext (poppler-utils) is not installed: cannot read the PDF's text back"
        if os.environ.get("CI"):
            pytest.fail(reason)  # CI installs it (.ci/run): a missing tool must not pass silently there
        pytest.skip(reason)
    path = tmp_path / "out.pdf"
    path.write_bytes(pdf)
    result = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True)
    return " ".join(result.stdout.decode().split())  # one space between words: wrapped lines join up


def build_esketamine_session(
    *, patient: Any, site: Any, nurse: Any, t0: Any, discharged: bool = True
) -> TreatmentSession:
    """Two devices 5 min apart (56 mg), readings before, at 40 min, at 90 and at 125 min; discharge at 130."""
    org = patient.organization
    session = TreatmentSession.objects.create(
        organization=org,
        patient=patient,
        site=site,
        protocol_id="esk-trd-label",
        drug="esketamine",
        route="intranasal",
        planned_dose_mg=56,
        scheduled_at=t0 - timedelta(minutes=30),
        status="discharged" if discharged else "monitoring",
        dose_started_at=t0,
        discharged_at=t0 + timedelta(minutes=130) if discharged else None,
        ready_at=t0 + timedelta(minutes=90) if discharged else None,
        created_by=nurse,
    )
    for number, minute in ((1, 0), (2, 5)):
        Administration.objects.create(
            organization=org,
            session=session,
            kind="nasal_device",
            at=t0 + timedelta(minutes=minute),
            drug="esketamine",
            product="Spravato 28 mg nasal device",
            lot="LOT-4471",
            expiry=date(2027, 6, 30),
            dose_mg=28,
            device_number=number,
            given_by=nurse,
        )
    for minute, sbp, dbp, moaas, cadss in (
        (-10, 138, 86, 5, 0),
        (40, 152, 94, 4, 12),
        (90, 134, 82, 5, 3),
        (125, 130, 80, 5, 0),
    ):
        if minute > 0 and not discharged and minute > 90:
            continue
        Observation.objects.create(
            organization=org,
            session=session,
            observed_at=t0 + timedelta(minutes=minute),
            sbp_mmhg=sbp,
            dbp_mmhg=dbp,
            hr_bpm=76,
            spo2_pct=98,
            rr_per_min=14,
            moaas=moaas,
            cadss_total=cadss,
            entered_by=nurse,
        )
    GateCheck.objects.create(
        organization=org,
        session=session,
        answers={"rems_patient_enrolled": True},
        items=[{"key": "baseline_vitals", "status": "pass", "reason": "BP 138/86 within 140/90"}],
        passed=True,
        evaluated_at=t0 - timedelta(minutes=15),
        by=nurse,
    )
    if discharged:
        DischargeRecord.objects.create(
            organization=org,
            session=session,
            criteria=[{"criterion": "vitals", "met": True, "reason": "At 125 min: BP 130/80 acceptable"}],
            escort_present=True,
            driving_advice_given=True,
            decided_at=t0 + timedelta(minutes=130),
            by=nurse,
        )
    return session


@pytest.fixture
def t0() -> Any:
    return timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)


@pytest.fixture
def esk(patient: Any, site: Any, nurse: Any, t0: Any) -> TreatmentSession:
    site.address_line1, site.address_line2 = "12 Harbor Street", "Suite 3"
    site.city, site.state, site.zip_code = "Springfield", "IL", "62701"
    site.save()
    return build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=t0)


def test_form_is_assembled_from_the_session(esk: Any, nurse: Any, t0: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk, request=None)
    f = row.data["fields"]
    assert (f["patient.first_name"], f["patient.last_name"], f["patient.birthdate"]) == (
        "Testa",
        "Examplesson",
        "1980-05-17",
    )
    assert f["patient.sex"] == "Female" and f["patient.enrolled"] is True
    assert f["monitoring_hcp.first_name"] == "Nurse1"  # the signed-in clinician
    assert (f["setting.name"], f["setting.address1"], f["setting.address2"]) == (
        "Main Street",
        "12 Harbor Street",
        "Suite 3",
    )
    assert (f["setting.city"], f["setting.state"], f["setting.zip_code"]) == ("Springfield", "IL", "62701")
    # 2 devices × 28 mg = 56 mg → the form's "56 mg" choice.
    assert (f["dose"], f["dose_other_mg"], f["lot_number"]) == ("56", None, "LOT-4471")
    # First device at t0, discharge at t0+130 → 130 min; ready at t0+90 → 90 min.
    assert (f["total_monitoring_minutes"], f["minutes_until_ready"]) == (130, 90)
    assert f["bp_before_administration"] == {"sbp_mmhg": 138, "dbp_mmhg": 86}  # last before the first device
    assert f["bp_40_min"] == {"sbp_mmhg": 152, "dbp_mmhg": 94}
    assert f["bp_before_completion"] == {"sbp_mmhg": 130, "dbp_mmhg": 80}  # last at/before discharge
    assert f["vitals_acceptable_before_administration"] is True  # gate item passed
    assert f["vitals_acceptable_before_completion"] is True  # discharge vitals criterion met
    assert f["sedation"] is True  # MOAA/S 5 pre-dose → 4 at 40 min
    assert f["dissociation"] is True  # CADSS 12 > presence threshold 4
    local_day = timezone.localtime(t0, esk.site.zone).date()
    assert f["treatment_date"] == local_day.isoformat()
    assert row.due_on == local_day + timedelta(days=7)
    # Never assumed "no": the record cannot answer these, so they stay missing.
    for name in (
        "concomitant_medications.benzodiazepines",
        "concomitant_medications.maois",
        "respiratory_depression",
        "serious_adverse_event",
        "monitoring_hcp.phone",
    ):
        assert f[name] is None, name
    assert AuditEntry.objects.filter(
        action="add", object_type="RemsMonitoringForm", patient=esk.patient
    ).exists()


def test_sign_off_is_refused_naming_every_missing_field(esk: Any, nurse: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    with pytest.raises(rs.RemsIncomplete) as caught:
        rs.sign_off(user=nurse, form=row, expected_version=row.version)
    assert caught.value.missing == [
        "patient.first_treatment",
        "concomitant_medications.benzodiazepines",
        "concomitant_medications.non_benzodiazepine_sedative_hypnotics",
        "concomitant_medications.psychostimulants",
        "concomitant_medications.maois",
        "concomitant_medications.other_sedation_dissociation_respiratory_or_bp_meds",
        "monitoring_hcp.last_name",
        "monitoring_hcp.phone",
        "monitoring_hcp.email",
        "respiratory_depression",
        "serious_adverse_event",
    ]
    message = str(caught.value)
    for text in (
        "Patient: First treatment?",
        "Concomitant medications: MAOIs",
        "Monitoring healthcare provider: Telephone",
    ):
        assert text in message
    row.refresh_from_db()
    assert row.signed_off_at is None

    rs.update_rems_form(user=nurse, form=row, data=STAFF_ANSWERS, expected_version=row.version)
    signed = rs.sign_off(user=nurse, form=row, expected_version=row.version)
    assert signed.signed_off_by == nurse and signed.data["signature"]["name"] == nurse.display_name
    with pytest.raises(rs.RemsError, match="signed off"):
        rs.update_rems_form(user=nurse, form=row, data={"lot_number": "X"}, expected_version=row.version)


def test_rule_violations_also_block_sign_off(esk: Any, nurse: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    rs.update_rems_form(
        user=nurse, form=row, data={**STAFF_ANSWERS, "total_monitoring_minutes": "110"}, expected_version=None
    )
    with pytest.raises(rs.RemsIncomplete) as caught:
        rs.sign_off(user=nurse, form=row, expected_version=None)
    assert caught.value.missing == []
    assert caught.value.violations == ["Total monitoring time 110 min is under the required 120 min"]


def test_bad_answers_are_all_named_and_nothing_is_saved(esk: Any, nurse: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    version = row.version
    with pytest.raises(rs.RemsInputError) as caught:
        rs.update_rems_form(
            user=nurse,
            form=row,
            data={"bp_40_min": "150", "sedation": "maybe", "dose": "70", "patient.middle_initial": "Jo"},
            expected_version=version,
        )
    assert set(caught.value.errors) == {"bp_40_min", "sedation", "dose", "patient.middle_initial"}
    assert "systolic/diastolic" in caught.value.errors["bp_40_min"]
    row.refresh_from_db()
    assert row.version == version and row.data["fields"]["bp_40_min"] == {"sbp_mmhg": 152, "dbp_mmhg": 94}


def test_second_editor_gets_a_conflict_and_the_first_edit_survives(
    esk: Any, nurse: Any, prescriber: Any
) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    seen = row.version
    mine = RemsMonitoringForm.objects.get(pk=row.pk)
    theirs = RemsMonitoringForm.objects.get(pk=row.pk)
    rs.update_rems_form(
        user=nurse, form=mine, data={"monitoring_hcp.phone": "555-0100"}, expected_version=seen
    )
    with pytest.raises(rs.RemsConflict) as caught:
        rs.update_rems_form(
            user=prescriber, form=theirs, data={"monitoring_hcp.phone": "555-0199"}, expected_version=seen
        )
    assert caught.value.current.version == seen + 1
    row.refresh_from_db()
    assert row.data["fields"]["monitoring_hcp.phone"] == "555-0100"


def test_refresh_keeps_staff_answers_and_updates_derived_values(esk: Any, nurse: Any, t0: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    rs.update_rems_form(
        user=nurse,
        form=row,
        data={"bp_40_min": "150/90", "monitoring_hcp.phone": "555"},
        expected_version=None,
    )
    TreatmentSession.objects.filter(pk=esk.pk).update(discharged_at=t0 + timedelta(minutes=140))
    esk.refresh_from_db()
    row = rs.assemble_rems_form(user=nurse, session=esk)
    f = row.data["fields"]
    assert f["bp_40_min"] == {"sbp_mmhg": 150, "dbp_mmhg": 90}  # staff's answer wins
    assert f["monitoring_hcp.phone"] == "555"
    assert f["total_monitoring_minutes"] == 140  # re-derived: t0 → t0+140


def test_only_esketamine_sessions_have_a_form(esk: Any, nurse: Any, front_desk: Any) -> None:
    TreatmentSession.objects.filter(pk=esk.pk).update(drug="ketamine", route="iv")
    esk.refresh_from_db()
    with pytest.raises(rs.RemsError, match="esketamine"):
        rs.assemble_rems_form(user=nurse, session=esk)
    with pytest.raises(PermissionDenied):
        rs.assemble_rems_form(user=front_desk, session=esk)


def _complete_and_sign(session: Any, nurse: Any) -> RemsMonitoringForm:
    row = rs.assemble_rems_form(user=nurse, session=session)
    rs.update_rems_form(user=nurse, form=row, data=STAFF_ANSWERS, expected_version=None)
    return rs.sign_off(user=nurse, form=row, expected_version=None)


def test_queue_lists_due_and_overdue_and_drops_submitted(
    patient: Any, make_patient: Any, site: Any, nurse: Any, front_desk: Any
) -> None:
    site.address_line1, site.city, site.state, site.zip_code = (
        "12 Harbor Street",
        "Springfield",
        "IL",
        "62701",
    )
    site.save()
    now = timezone.now().replace(second=0, microsecond=0)
    recent = build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=now - timedelta(days=2))
    other = make_patient(nurse, given_name="Olive", family_name="Overdue")
    late = build_esketamine_session(patient=other, site=site, nurse=nurse, t0=now - timedelta(days=10))
    rs.assemble_rems_form(user=nurse, session=late)
    today = timezone.localdate(now, site.zone)
    items = rs.rems_queue(user=front_desk, site=site, today=today)
    assert [i.session.pk for i in items] == [late.pk, recent.pk]  # most urgent first
    late_item, recent_item = items
    # Session 10 days ago: due 10 − 7 = 3 days ago → overdue by 3; session 2 days ago: 7 − 2 = 5 days left.
    assert (late_item.days_left, late_item.overdue, late_item.days_overdue, late_item.state) == (
        -3,
        True,
        3,
        "draft",
    )
    assert (recent_item.days_left, recent_item.overdue, recent_item.state) == (5, False, "not started")

    row = _complete_and_sign(late, nurse)
    with pytest.raises(rs.RemsInputError):
        rs.mark_submitted(user=front_desk, form=row, confirmation_number="  ")
    rs.mark_submitted(user=front_desk, form=row, confirmation_number="PMF-20931")
    assert [i.session.pk for i in rs.rems_queue(user=front_desk, site=site, today=today)] == [recent.pk]
    with pytest.raises(rs.RemsError, match="already"):
        rs.mark_submitted(user=front_desk, form=row, confirmation_number="PMF-20931")
    assert AuditEntry.objects.filter(object_type="RemsMonitoringForm", after__contains="PMF-20931").exists()


def test_unsigned_form_cannot_be_marked_submitted(esk: Any, nurse: Any, front_desk: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    with pytest.raises(rs.RemsError, match="signed-off"):
        rs.mark_submitted(user=front_desk, form=row, confirmation_number="X1")


def test_queue_is_confined_to_the_organization(esk: Any, nurse: Any, outsider: Any) -> None:
    rs.assemble_rems_form(user=nurse, session=esk)
    assert rs.rems_queue(user=outsider) == []


def test_form_pdf_marks_a_draft_and_lists_every_field(esk: Any, nurse: Any, tmp_path: Any) -> None:
    row = rs.assemble_rems_form(user=nurse, session=esk)
    pdf, name = rs.print_rems_form(user=nurse, form=row)
    assert pdf.startswith(b"%PDF") and name.endswith(".pdf") and "Examplesson" not in name
    text = pdf_text(pdf, tmp_path)
    assert "DRAFT — incomplete" in text
    for expected in (
        "Examplesson, Testa",
        "1980-05-17",
        "LOT-4471",
        "152/94",
        "138/86",
        "130/80",
        "56 mg",
        "Main Street",
        "Springfield",
        "MISSING",
        "Concomitant medications: MAOIs",
    ):
        assert expected in text, expected
    for title, items in rems_fields.SECTIONS:  # every section and every question, by its label
        assert title in text
        for name_, label in items:
            assert " ".join(label.split()[:3]) in text, name_
    assert AuditEntry.objects.filter(action="print", object_type="RemsMonitoringForm").count() == 1

    signed = _complete_and_sign(esk, nurse)
    text = pdf_text(rs.print_rems_form(user=nurse, form=signed)[0], tmp_path)
    assert "DRAFT" not in text
    assert f"Signed off by {nurse.display_name}" in text and "MISSING" not in text


# --- pages -----------------------------------------------------------------------------------------------


def test_form_page_edit_sign_off_and_pdf(esk: Any, nurse: Any, sign_in: Any) -> None:
    client = sign_in(Client(), nurse)
    url = f"/sessions/{esk.pk}/rems/"
    page = client.get(url)
    assert page.status_code == 200 and b"Fill in from the session" in page.content
    assert client.post(f"{url}assemble/").status_code == 302
    page = client.get(url)
    assert b"Still missing (11)" in page.content and b'href="#f-monitoring-hcp-phone"' in page.content
    row = RemsMonitoringForm.objects.get(session=esk)

    refused = client.post(f"{url}sign-off/", {"version": row.version})
    assert refused.status_code == 422
    assert "Monitoring healthcare provider: Telephone" in refused.content.decode()

    bad = client.post(url, {"version": row.version, "bp_40_min": "152-94"})
    assert bad.status_code == 422 and "systolic/diastolic" in bad.content.decode()
    stale = row.version
    assert client.post(url, {"version": row.version, **STAFF_ANSWERS}).status_code == 302
    conflict = client.post(url, {"version": stale, "monitoring_hcp.phone": "555-0111"})
    assert conflict.status_code == 409 and "changed this form" in conflict.content.decode()

    row.refresh_from_db()
    assert client.post(f"{url}sign-off/", {"version": row.version}).status_code == 302
    row.refresh_from_db()
    assert row.signed_off_by == nurse

    pdf = client.get(f"{url}pdf/")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"].startswith("attachment;") and pdf["Cache-Control"] == "no-store"
    assert pdf.content.startswith(b"%PDF")


def test_front_desk_sees_the_queue_and_marks_submitted_but_cannot_edit(
    esk: Any, nurse: Any, front_desk: Any, sign_in: Any, site: Any
) -> None:
    row = _complete_and_sign(esk, nurse)
    client = sign_in(Client(), front_desk)
    assert client.get(f"/sessions/{esk.pk}/rems/").status_code == 403
    assert client.get(f"/sessions/{esk.pk}/report/pdf/").status_code == 403
    queue = client.get(f"/rems/queue/?site={site.pk}")
    assert queue.status_code == 200 and "Examplesson" in queue.content.decode()
    assert client.get(f"/sessions/{esk.pk}/rems/pdf/").status_code == 200  # signed off: printable to submit
    done = client.post(
        f"/sessions/{esk.pk}/rems/submitted/", {"confirmation_number": "PMF-1", "site": site.pk}
    )
    assert done.status_code == 302 and done["Location"] == f"/rems/queue/?site={site.pk}"
    row.refresh_from_db()
    assert (row.confirmation_number, row.submitted_by) == ("PMF-1", front_desk)
    assert "Examplesson" not in client.get("/rems/queue/").content.decode()


def test_other_organization_gets_404(esk: Any, nurse: Any, outsider: Any, sign_in: Any) -> None:
    rs.assemble_rems_form(user=nurse, session=esk)
    client = sign_in(Client(), outsider)
    assert client.get(f"/sessions/{esk.pk}/rems/").status_code == 404
    assert client.get(f"/sessions/{esk.pk}/rems/pdf/").status_code == 404
    assert client.get(f"/sessions/{esk.pk}/report/pdf/").status_code == 404


def test_a_form_prepared_during_monitoring_leaves_the_end_for_later(
    patient: Any, site: Any, nurse: Any, t0: Any
) -> None:
    session = build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=t0, discharged=False)
    row = rs.assemble_rems_form(user=nurse, session=session)
    f = row.data["fields"]
    # Not discharged: no end of monitoring yet, so no total time, no "before completion" BP, no ready time.
    assert (f["total_monitoring_minutes"], f["bp_before_completion"], f["minutes_until_ready"]) == (
        None,
        None,
        None,
    )
    assert f["bp_40_min"] == {"sbp_mmhg": 152, "dbp_mmhg": 94}
    missing = rs.check(row).missing
    assert {"total_monitoring_minutes", "bp_before_completion", "minutes_until_ready"} <= set(missing)


def test_front_desk_cannot_print_an_unsigned_form(
    esk: Any, nurse: Any, front_desk: Any, sign_in: Any
) -> None:
    rs.assemble_rems_form(user=nurse, session=esk)
    client = sign_in(Client(), front_desk)
    response = client.get(f"/sessions/{esk.pk}/rems/pdf/")
    assert response.status_code == 302 and response["Location"] == "/rems/queue/"
    assert not AuditEntry.objects.filter(action="print").exists()


def test_home_page_counts_due_and_overdue_forms_without_names(
    patient: Any, make_patient: Any, site: Any, nurse: Any, front_desk: Any, admin: Any, sign_in: Any
) -> None:
    site.address_line1, site.city, site.state, site.zip_code = (
        "12 Harbor Street",
        "Springfield",
        "IL",
        "62701",
    )
    site.save()
    now = timezone.now().replace(second=0, microsecond=0)
    build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=now - timedelta(days=2))
    other = make_patient(nurse, given_name="Olive", family_name="Overdue")
    build_esketamine_session(patient=other, site=site, nurse=nurse, t0=now - timedelta(days=10))
    home = sign_in(Client(), front_desk).get("/").content.decode()
    card = home.split('id="rems-due"', 1)[1].split("</section>", 1)[0]
    assert "<strong>1 overdue</strong>, 1 due within the week" in card and "/rems/queue/" in card
    assert "Overdue" not in card and "Examplesson" not in card
    assert 'id="rems-due"' not in sign_in(Client(), admin).get("/").content.decode()  # not a submitter
