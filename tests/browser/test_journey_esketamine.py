"""A brand-new patient's esketamine (SPRAVATO) course, from an empty clinic, in Chromium (issue 14 point 8):
the administrator records the site's address, DEA registration and REMS certification; the front desk
registers the patient; the nurse takes the intake; the prescriber signs it and the screening; the patient
signs the esketamine consent on the tablet; the prescriber plans the label's course (56 mg on day 1, no
second-person check); the nurse receives a box of devices (counted in devices); the front desk books the
first session and marks the patient arrived; the nurse opens it, the gate passes (the setting's certification
read from the site record), two devices are given 5 minutes apart from the lot, readings are taken and the
patient is discharged after the label's 2 hours; the REMS Patient Monitoring Form is filled in from the
session (the setting's address prefilled), completed, signed off and printed; the register shows the two
devices drawn."""

from __future__ import annotations

from typing import Any

from tests.browser import journey_steps as steps
from tests.chairside.test_rems_form import pdf_text

from ketaclinic.chairside.models import Administration, RemsMonitoringForm
from ketaclinic.chairside.rems_services import check, form_of


def test_esketamine_course_with_the_rems_form_from_an_empty_clinic(clinic: Any, tmp_path: Any) -> None:
    steps.site_identifiers(clinic)
    patient = steps.register_patient(clinic, "Esme", "Nasalworth", "1966-08-21", "female", "62", "164")
    steps.intake(clinic, patient, not_childbearing="post_menopausal")
    steps.screen(clinic, patient, "Esketamine (SPRAVATO)")
    steps.consent_on_tablet(clinic, patient, "esketamine-intranasal", "Esme Nasalworth")
    plan = steps.plan_course(clinic, patient, "esk-trd-label", "56.0 mg")
    assert "2 × 28 mg, 5 minutes apart" in clinic.page(clinic.prescriber).inner_text("main")
    assert not plan.second_person_required
    steps.receive_stock(
        clinic, "esketamine", "Spravato 28 mg nasal spray", "ESK-J1", "device", "28", "12", "12"
    )
    session = steps.first_session(
        clinic, plan, **{"g-rems": "yes", "g-food": "3", "g-liq": "45", "g-nasal": "no"}
    )
    certified = clinic.page(clinic.nurse).inner_text(
        "#gate-items tr:has(td:text-is('REMS: setting certified'))"
    )
    assert "site record: certified, ID REMS-SET-20417" in certified, certified

    page = clinic.page(clinic.nurse)
    assert "lot ESK-J1" in page.inner_text("#a-lot") and "12 devices left" in page.inner_text("#a-lot")
    page.click("#give-device")
    page.wait_for_selector("#administrations tr:nth-child(1)")
    steps.pass_time(clinic, session, 5)
    page.click("#give-device")
    page.wait_for_selector("#administrations tr:nth-child(2)")
    assert page.locator("#give-device").count() == 0  # 56 mg: two devices, no third
    for minutes in (15, 25, 40, 40):
        steps.pass_time(clinic, session, minutes)
        steps.reading(page, session, "128/80 72 98 14 moaas 5 cadss 0")
    steps.discharge(clinic, session)
    devices = Administration.objects.filter(session=session, kind="nasal_device")
    assert [a.lot for a in devices] == ["ESK-J1", "ESK-J1"]
    steps.session_record(clinic, session, tmp_path, "Nasalworth", "ESK-J1")

    # The REMS Patient Monitoring Form: the session's times and the setting's address filled in, the rest by
    # keyboard, signed off by the monitoring nurse, and printed.
    page.click("#rems-link")
    page.click("button:has-text('Fill in from the session')")
    page.wait_for_selector(".rems-form")
    assert page.input_value(".rems-form input[name='setting.address1']") == "12 Harbor Street"
    typed = {"monitoring_hcp.last_name": "Nightingale", "monitoring_hcp.email": "nurse1@example.invalid"}
    for name in page.eval_on_selector_all(
        ".rems-form input[type=text]", "els => els.filter(e => !e.value).map(e => e.name)"
    ):
        if name in typed:
            page.fill(f".rems-form input[name='{name}']", typed[name])
    for name in page.eval_on_selector_all(
        ".rems-form input[type=radio][value='']:checked", "els => els.map(e => e.name)"
    ):
        page.check(f".rems-form input[name='{name}'][value='no']")
    page.click("button:has-text('Save answers')")
    page.wait_for_load_state()
    page.click("button:has-text('Sign off as monitoring HCP')")
    page.wait_for_load_state()
    form = RemsMonitoringForm.objects.get(session=session)
    assert form.signed_off_by == clinic.nurse, page.inner_text("main")[:2000]
    assert form_of(form).total_monitoring_minutes >= 120 and not check(form).missing
    pdf = page.request.get(page.get_attribute("a:has-text('Form PDF')", "href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    printed = pdf_text(pdf.body(), tmp_path)
    assert "12 Harbor Street" in printed and "Nightingale" in printed, printed[:3000]
    steps.register_shows(clinic, session, "ESK-J1", "1", uses=2)
