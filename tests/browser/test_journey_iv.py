"""A brand-new patient's IV ketamine course, from an empty clinic, in Chromium (issue 14 point 8): the front
desk registers the patient; the nurse takes the intake; the prescriber signs it and the screening; the patient
signs the consent on the tablet; the prescriber plans ELEKT-D and the nurse checks the dose; the nurse
receives the vials; the front desk books the first session and marks the patient arrived; the nurse opens the
session, the gate passes, the infusion is started from the lot with the prescriber's second signature,
readings are taken, the infusion stopped and the patient discharged; the register shows the draw."""

from __future__ import annotations

from typing import Any

from tests.browser import journey_steps as steps

from ketaclinic.chairside.models import Administration


def test_iv_ketamine_course_from_an_empty_clinic(clinic: Any, tmp_path: Any) -> None:
    patient = steps.register_patient(clinic, "Ivo", "Infusionson", "1975-03-02", "male", "80", "180")
    steps.intake(clinic, patient, not_childbearing="male_at_birth")
    steps.screen(clinic, patient, "Ketamine (racemic)")
    steps.consent_on_tablet(clinic, patient, "ketamine-iv", "Ivo Infusionson")
    plan = steps.plan_course(clinic, patient, "iv-trd-elektd", "40.0 mg")  # 0.5 mg/kg × 80 kg
    steps.check_dose(clinic, plan)
    steps.receive_stock(clinic, "ketamine", "Ketamine HCl 10 mg/mL, 20 mL vial", "K-IV-1", "mL", "10", "200")
    session = steps.first_session(clinic, plan)

    # 40 mg (4 mL of the 10 mg/mL lot) in a 100 mL bag over 40 minutes, checked by the prescriber.
    page = clinic.page(clinic.nurse)
    assert "lot K-IV-1" in page.inner_text("#i-lot")
    page.fill("#i-given", "4")
    page.fill("#i-vol", "100")
    page.fill("#i-rate", "150")
    steps.cosign(page, "i", clinic.prescriber)
    page.click("#start-infusion")
    page.wait_for_selector("#change-rate")
    assert "60 mg/h" in page.inner_text("#administrations")
    for minutes in (10, 10, 10):
        steps.pass_time(clinic, session, minutes)
        steps.reading(page, session, "126/80 74 98 14 moaas 4 cadss 2")
    steps.pass_time(clinic, session, 10)
    page.click("#stop-infusion")
    page.wait_for_selector("#session-status:has-text('Monitoring')")
    for minutes in (15, 15, 15, 15):
        steps.pass_time(clinic, session, minutes)
        steps.reading(page, session, "122/78 70 98 14 moaas 5 cadss 0")
    steps.discharge(clinic, session)
    start = Administration.objects.get(session=session, kind="infusion_start")
    assert (start.dose_mg, start.verified_by, start.lot) == (40, clinic.prescriber, "K-IV-1")
    steps.session_record(clinic, session, tmp_path, "Infusionson", "K-IV-1")
    steps.register_shows(clinic, session, "K-IV-1", "4")
