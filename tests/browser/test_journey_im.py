"""A brand-new patient's IM ketamine course, from an empty clinic, in Chromium (issue 14 point 8): registered
at the front desk, intake by the nurse, intake and screening signed by the prescriber, the IM consent signed
on the tablet, the clinic's IM template planned (0.5 mg/kg) and its dose checked by the nurse, 50 mg/mL vials
received, the first session booked and the patient marked arrived, the gate passed, the injection drawn
from the lot and checked by the prescriber with their password and authenticator code, readings for the
template's 2 hours, discharge; the session report and the register show the dose and the draw."""

from __future__ import annotations

from typing import Any

from tests.browser import journey_steps as steps

from ketaclinic.chairside.models import Administration


def test_im_ketamine_course_from_an_empty_clinic(clinic: Any, tmp_path: Any) -> None:
    patient = steps.register_patient(clinic, "Imre", "Deltoidson", "1971-11-30", "male", "80", "178")
    steps.intake(clinic, patient, not_childbearing="male_at_birth")
    steps.screen(clinic, patient, "Ketamine (racemic)")
    steps.consent_on_tablet(clinic, patient, "ketamine-im", "Imre Deltoidson")
    plan = steps.plan_course(clinic, patient, "im-clinic-template", "40.0 mg")  # 0.5 mg/kg × 80 kg
    steps.check_dose(clinic, plan)
    steps.receive_stock(clinic, "ketamine", "Ketamine HCl 50 mg/mL, 10 mL vial", "K-IM-1", "mL", "50", "50")
    session = steps.first_session(clinic, plan)
    steps.record_dose(clinic, session, "K-IM-1", "0.8", cosigner=clinic.prescriber)  # 40 mg of 50 mg/mL
    steps.observe(clinic, session, (15, 15, 30, 30, 32), "124/80 72 98 14 moaas 5 cadss 0")
    steps.discharge(clinic, session)
    dose = Administration.objects.get(session=session)
    assert (dose.kind, dose.dose_mg, dose.verified_by) == ("injection", 40, clinic.prescriber)
    steps.session_record(clinic, session, tmp_path, "Deltoidson", "K-IM-1")
    steps.register_shows(clinic, session, "K-IM-1", "0.8")
