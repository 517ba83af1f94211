"""A whole esketamine session at the chair in Chromium: check-in, gate, three devices 5 min apart, readings,
a BP alert raised and acknowledged, discharge refused at 90 min and allowed after 120 (issue: sessions)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.clock import clinic_today
from tests.consent.helpers import consent_on_file
from tests.ledger.stock import ketamine_ml, spravato

from ketaclinic.chairside import services
from ketaclinic.chairside.models import Administration, GateCheck, Observation, SessionAlert, TreatmentSession


def sign_in(page: Any, user: Any) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", "correct horse battery staple")
    page.click("button[type=submit]")
    page.wait_for_url("**/accounts/mfa/")
    device = TOTPDevice.objects.get(user=user)
    page.fill("#id_token", f"{TOTP(device.bin_key).token():06d}")
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/"))


def local(at: Any, zone: Any) -> str:
    return timezone.localtime(at, zone).strftime("%Y-%m-%dT%H:%M")


def shift(session: TreatmentSession, minutes: int) -> None:
    """Let time pass: move every recorded time of the session (and when it was entered) back by ``minutes``."""
    delta = timedelta(minutes=minutes)
    for field in (
        "dose_started_at",
        "dosing_ended_at",
        "dose_clock_at",
        "dose_end_clock_at",
        "gate_opened_at",
        "scheduled_at",
        "status_changed_at",
    ):
        if getattr(session, field):
            setattr(session, field, getattr(session, field) - delta)
    session.save()
    for a in Administration.objects.filter(session=session):
        Administration.objects.filter(pk=a.pk).update(
            at=a.at - delta, recorded_at=a.recorded_at - delta, clock_at=a.clock_at - delta
        )
    for o in Observation.objects.filter(session=session):
        Observation.objects.filter(pk=o.pk).update(
            observed_at=o.observed_at - delta, recorded_at=o.recorded_at - delta
        )
    for g in GateCheck.objects.filter(session=session):
        GateCheck.objects.filter(pk=g.pk).update(evaluated_at=g.evaluated_at - delta)


def test_esketamine_session_from_check_in_to_discharge(
    browser_page: Any, patient: Any, nurse: Any, prescriber: Any
) -> None:
    consent_on_file(nurse, patient, "esketamine")
    devices = spravato(nurse, patient.site, lot="LOT-ESK-1")  # the site's stock the devices come from
    now = timezone.now()
    session = services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="esk-trd-label",
        scheduled_at=now,
        planned_dose_mg=84,
        session_number=3,
    )
    zone = patient.site.zone
    page = browser_page
    sign_in(page, nurse)
    page.goto(f"/sessions/{session.pk}/")
    page.click("#check-in")
    page.wait_for_selector("#gate")

    # Baseline by keyboard, then the gate.
    page.fill("#obs-at", local(now - timedelta(minutes=5), zone))
    page.fill("#line", "128/82 72 98 14 moaas 5 cadss 0")
    page.keyboard.press("Enter")
    page.wait_for_selector("#observations td:has-text('128/82')")
    page.select_option("#g-rems", "yes")
    page.select_option("#g-cert", "yes")
    page.fill("#g-food", "3")
    page.fill("#g-liq", "60")
    page.select_option("#g-nasal", "no")
    page.select_option("#g-escort", "yes")
    page.select_option("#g-ride", "yes")
    page.select_option("#g-preg", "negative")
    assert page.input_value("#g-pregon") == ""  # the nurse enters the date the test was taken
    page.fill("#g-pregon", clinic_today().isoformat())
    page.click("#check-gate")
    assert "Gate closed" in page.inner_text("#gate-verdict")  # no signed screening in the record yet
    assert page.locator("#give-device").count() == 0
    assert page.locator("form:has(input[value='screening']) button").count() == 0  # nurses cannot override

    # The prescriber, on their own workstation, records the decision to proceed.
    desk = browser_page.context.browser.new_context(base_url=browser_page.url.split("/sessions/")[0])
    prescriber_page = desk.new_page()
    sign_in(prescriber_page, prescriber)
    prescriber_page.goto(f"/sessions/{session.pk}/#gate")
    prescriber_page.fill(
        "form:has(input[value='screening']) input[name=reason]", "Screening signed on paper this morning"
    )
    prescriber_page.click("form:has(input[value='screening']) button")
    prescriber_page.wait_for_selector("#gate-verdict:has-text('Gate open')")
    desk.close()

    # A device dated before the gate opened (a typing slip: 05:00) is refused, and nothing is stored.
    page.goto(f"/sessions/{session.pk}/")
    assert "lot LOT-ESK-1" in page.inner_text("#a-lot") and "30 devices left" in page.inner_text("#a-lot")
    page.fill("#a-at", local(now - timedelta(hours=2), zone))
    page.click("#give-device")
    assert "before the pre-dose gate opened" in page.inner_text(".msg.error")
    assert not Administration.objects.filter(session=session).exists()

    # Three devices, 5 minutes apart, each entered as it is given.
    for n in range(3):
        if n:
            shift(TreatmentSession.objects.get(pk=session.pk), 5)  # five minutes pass
            page.goto(f"/sessions/{session.pk}/")
        page.click("#give-device")
        page.wait_for_selector(f"#administrations tr:nth-child({n + 1})")
    assert TreatmentSession.objects.get(pk=session.pk).status == "monitoring"
    assert "warning" not in page.inner_text("#administrations").lower()
    assert "lot LOT-ESK-1" in page.inner_text("#administrations")
    assert devices.entries.filter(kind="use").count() == 3  # each device drawn from the lot with its dose
    assert page.locator("#give-device").count() == 0  # a 4th device would be another dose
    shift(TreatmentSession.objects.get(pk=session.pk), 40)
    first = TreatmentSession.objects.get(pk=session.pk).dose_started_at
    page.goto(f"/sessions/{session.pk}/")

    # A BP surge at 40 minutes raises a critical alert; the nurse acknowledges it with a note.
    page.fill("#line", "184/96 88 97 14 moaas 4 cadss 12")
    page.fill("#obs-at", local(first + timedelta(minutes=40), zone))
    page.click("#readings button:has-text('Add reading')")
    page.wait_for_selector(".alert.severity-critical")
    assert "184/96" in page.inner_text("#alerts")
    page.fill(".alert.severity-critical input[name=note]", "Repeat BP 5 min, prescriber informed")
    page.click(".alert.severity-critical button:has-text('Acknowledge')")
    page.wait_for_selector(".alert.severity-critical.acknowledged")
    assert SessionAlert.objects.get(session=session, code="sbp_high").acknowledged_by == nurse
    page.fill("#line", "132/84 74 98 14 moaas 5 cadss 0")
    page.fill("#obs-at", local(first + timedelta(minutes=50), zone))
    page.click("#readings button:has-text('Add reading')")
    page.wait_for_selector("#observations td:has-text('132/84')")

    # Now 50 minutes: shift 40 minutes to be at 90, and try to discharge.
    shift(TreatmentSession.objects.get(pk=session.pk), 40)
    page.goto(f"/sessions/{session.pk}/#discharge")
    page.check("input[name=stable]")
    page.check("input[name=escort_present]")
    page.check("input[name=driving_advice_given]")
    page.click("#discharge-button")
    page.wait_for_selector("text=Discharge refused")
    assert "minimum 120" in page.inner_text("main")
    assert TreatmentSession.objects.get(pk=session.pk).status == "monitoring"

    # After 120 minutes: allowed.
    shift(TreatmentSession.objects.get(pk=session.pk), 35)
    page.goto(f"/sessions/{session.pk}/#discharge")
    page.check("input[name=stable]")
    page.check("input[name=escort_present]")
    page.check("input[name=driving_advice_given]")
    page.click("#discharge-button")
    page.wait_for_load_state()
    assert "Patient discharged." in page.inner_text("main"), page.inner_text("main")[:1500]
    discharged = TreatmentSession.objects.get(pk=session.pk)
    assert discharged.status == "discharged" and discharged.ready_at is not None

    # The REMS Patient Monitoring Form: filled in from the session, the rest answered by keyboard, signed off.
    page.click("#rems-link")
    page.click("button:has-text('Fill in from the session')")
    page.wait_for_selector(".rems-form")
    answers = {
        "monitoring_hcp.phone": "555-0100",
        "monitoring_hcp.last_name": "Nightingale",
        "monitoring_hcp.email": "nurse1@example.invalid",
        "setting.address1": "1 Main Street",
        "setting.city": "Springfield",
        "setting.state": "IL",
        "setting.zip_code": "62701",
    }
    empty = page.evaluate(
        "() => [...document.querySelectorAll('.rems-form input[type=text]')].filter(e => !e.value).map(e => e.name)"
    )
    for name in empty:
        if name in answers:
            page.fill(f".rems-form input[name='{name}']", answers[name])
    unanswered = page.evaluate(
        "() => [...document.querySelectorAll('.rems-form input[type=radio][value=\"\"]:checked')].map(e => e.name)"
    )
    for name in unanswered:
        page.check(f".rems-form input[name='{name}'][value='no']")
    page.click("button:has-text('Save answers')")
    page.wait_for_load_state()
    page.click("button:has-text('Sign off as monitoring HCP')")
    page.wait_for_load_state()
    from ketaclinic.chairside.models import RemsMonitoringForm

    form = RemsMonitoringForm.objects.get(session=session)
    assert form.signed_off_by == nurse, page.inner_text("main")[:1500]
    from ketaclinic.chairside.rems_services import check, form_of

    assert form_of(form).total_monitoring_minutes >= 120 and not check(form).missing
    pdf = page.request.get(f"/sessions/{session.pk}/rems/pdf/")
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")


def test_iv_session_with_a_pump_rate_change(
    browser_page: Any, patient: Any, nurse: Any, prescriber: Any
) -> None:
    consent_on_file(nurse, patient, "ketamine", "iv")
    ketamine_ml(nurse, patient.site, "10", lot="KET-55")
    session = services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id="iv-trd-elektd",
        scheduled_at=timezone.now(),
        planned_dose_mg=35,
    )
    services.transition(user=nurse, session=session, to="checked_in")
    services.record_observation(
        user=nurse,
        session=session,
        reading=services.vital_rules.VitalReading(
            taken_at=timezone.now() - timedelta(minutes=2),
            sbp_mmhg=124,
            dbp_mmhg=78,
            hr_bpm=70,
            spo2_pct=98,
            rr_per_min=14,
        ),
    )
    services.evaluate_gate(
        user=nurse,
        session=session,
        answers={
            "escort_confirmed": True,
            "ride_home_confirmed": True,
            "pregnancy_test": "negative",
            "pregnancy_test_on": clinic_today(),
        },
    )
    services.override_gate_item(
        user=prescriber,
        session=session,
        item_key="screening",
        reason="Screening reviewed at the intake visit",
    )
    page = browser_page
    sign_in(page, nurse)
    page.goto(f"/sessions/{session.pk}/")

    def start_form(volume: str) -> None:
        page.fill("#i-given", "3.5")  # 35 mg of the lot's 10 mg/mL
        page.fill("#i-vol", volume)
        page.fill("#i-rate", "150")

    # 10 mg/mL undiluted at 150 mL/h is 1,500 mg/h: refused, and the second person is asked for.
    start_form("")
    page.click("#start-infusion")
    refused = page.inner_text("main")
    assert "second-person check" in refused and "1500.0 mg/h" in refused
    assert not Administration.objects.filter(session=session).exists()
    # Diluted to 100 mL (0.35 mg/mL → 52.5 mg/h, 40 min), checked by the prescriber with password and code.
    start_form("100")
    page.select_option("#i-verified_by", str(prescriber.pk))
    page.fill("#i-verified_by-pw", "correct horse battery staple")
    page.fill("#i-verified_by-code", code(prescriber))
    page.click("#start-infusion")
    page.wait_for_selector("#change-rate")
    assert "52.5 mg/h" in page.inner_text("#administrations")
    # Ten times the rate: refused even with a second person.
    page.fill("#r-rate", "1500")
    page.fill("#r-note", "pump programmed")
    page.select_option("#r-verified_by", str(prescriber.pk))
    page.fill("#r-verified_by-pw", "correct horse battery staple")
    page.fill("#r-verified_by-code", code(prescriber))
    page.click("#change-rate")
    assert "faster than the protocol ever allows" in page.inner_text(".msg.error")
    page.fill("#r-rate", "100")
    page.fill("#r-note", "BP 168/98 at 20 min")
    page.select_option("#r-verified_by", str(prescriber.pk))
    page.fill("#r-verified_by-pw", "correct horse battery staple")
    page.fill("#r-verified_by-code", code(prescriber))
    page.click("#change-rate")
    page.wait_for_selector("#administrations td:has-text('100 mL/h')")
    page.click("#stop-infusion")
    page.wait_for_selector("#session-status:has-text('Monitoring')")
    rates = list(
        Administration.objects.filter(session=session)
        .order_by("at", "pk")
        .values_list("kind", "rate_ml_per_h", "verified_by")
    )
    assert [k for k, *_ in rates] == ["infusion_start", "rate_change", "infusion_stop"]
    assert rates[0][1:] == (150, prescriber.pk) and rates[1][1:] == (100, prescriber.pk)


def code(user: Any) -> str:
    """A fresh authenticator code for ``user`` (the device forgets earlier uses within the 30-s step)."""
    TOTPDevice.objects.filter(user=user).update(last_t=-1)
    return f"{TOTP(TOTPDevice.objects.get(user=user).bin_key).token():06d}"
