"""A brand-new patient's sublingual ketamine course, from an empty clinic, in Chromium (issue 14 point 8):
registered at the front desk, intake by the nurse, intake and screening signed by the prescriber, the
sublingual consent signed on the tablet, the clinic's sublingual template planned (10 mg, no second-person
check), a box of 10 mg tablets received (counted in tablets), the first session booked and the patient marked
arrived, the gate passed, one tablet given from the lot, readings for the template's 2 hours, discharge; the
session report and the register show the dose and the tablet drawn."""

from __future__ import annotations

from typing import Any

from tests.browser import journey_steps as steps

from ketaclinic.chairside.models import Administration


def test_sublingual_ketamine_course_from_an_empty_clinic(clinic: Any, tmp_path: Any) -> None:
    patient = steps.register_patient(clinic, "Sula", "Tabletta", "1963-04-12", "female", "68", "170")
    steps.intake(clinic, patient, not_childbearing="post_menopausal")
    steps.screen(clinic, patient, "Ketamine (racemic)")
    steps.consent_on_tablet(clinic, patient, "ketamine-sublingual", "Sula Tabletta")
    plan = steps.plan_course(clinic, patient, "sl-clinic-template", "10.0 mg")
    assert not plan.second_person_required
    steps.receive_stock(
        clinic, "ketamine", "Ketamine 10 mg sublingual tablet", "K-SL-1", "tablet", "10", "30", "1"
    )
    session = steps.first_session(clinic, plan)
    steps.record_dose(clinic, session, "K-SL-1", "1")
    steps.observe(clinic, session, (15, 15, 30, 30, 32), "120/76 68 99 14 moaas 5 cadss 0")
    steps.discharge(clinic, session)
    dose = Administration.objects.get(session=session)
    assert (dose.kind, dose.dose_mg, dose.lot) == ("sublingual", 10, "K-SL-1")
    steps.session_record(clinic, session, tmp_path, "Tabletta", "K-SL-1")
    steps.register_shows(clinic, session, "K-SL-1", "1")
