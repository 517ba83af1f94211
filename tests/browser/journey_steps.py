"""The steps of a brand-new patient's course, from an empty clinic, through the screens staff use (issue 14
point 8). Nothing is pre-loaded: the organization, its site with two chairs and its staff with their
authenticator devices (tests/conftest.py); the patient, the intake, the screening, the consent, the plan, the
stock, the booking, the arrival, the gate, the doses, the readings and the discharge all go through the
pages, each by the person whose job it is, each on their own screen.

Time passes at the chair by ``shift`` (test_session_esketamine.py): every recorded time of the session moves
back, as if the nurse had entered them as they happened."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.utils import timezone
from tests.browser.test_ledger_waste import _receive
from tests.browser.test_session_esketamine import code, local, shift, sign_in
from tests.chairside.test_rems_form import pdf_text

from ketaclinic.accounts.models import Chair
from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.ledger.models import LedgerEntry
from ketaclinic.patients.models import Patient
from ketaclinic.treatment.models import Plan, PlanSession

PASSWORD = "correct horse battery staple"
#: The journeys' clinic is open every day (and where it is late morning when the test runs), so a course
#: session can be booked for today whenever the test runs.
ALWAYS_OPEN = {d: [["00:00", "23:59"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def midday_zone() -> str:
    """A time zone in which it is now between 10:00 and 13:00, so that a session booked for later today
    fits in the day whenever the test runs (Etc/GMT-N is N hours ahead of UTC)."""
    ahead = 11 - timezone.now().hour  # -12 … +11 hours: every one an Etc zone
    return "UTC" if ahead == 0 else f"Etc/GMT{-ahead:+d}"


def empty_clinic(site: Any) -> list[Any]:
    """The site the administrator set up: opening hours, a time zone, two chairs. Nothing else."""
    site.opening_hours = ALWAYS_OPEN
    site.time_zone = midday_zone()
    site.save()
    return [
        Chair.objects.create(organization=site.organization, site=site, label=f"Chair {n}") for n in (1, 2)
    ]


@dataclass
class Clinic:
    """One signed-in browser window per member of staff (the front desk's, the nurse's, the prescriber's)."""

    browser: Any
    base_url: str
    site: Any
    chairs: list[Any]
    admin: Any
    front_desk: Any
    nurse: Any
    prescriber: Any
    _pages: dict[int, Any] = field(default_factory=dict)
    #: Every answer of the server's that was an error (5xx), from any window: a journey has none.
    server_errors: list[str] = field(default_factory=list)

    def page(self, user: Any) -> Any:
        if user.pk not in self._pages:
            context = self.browser.new_context(base_url=self.base_url)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("response", self._note_error)
            sign_in(page, user)
            self._pages[user.pk] = page
        # One window at a time, as one pair of hands would: the other windows finish what they load first
        # (on SQLite the live server's request threads share one in-memory connection, which two overlapping
        # requests can find locked).
        for other, window in self._pages.items():
            if other != user.pk:
                window.wait_for_load_state("networkidle")
        return self._pages[user.pk]

    def _note_error(self, response: Any) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def close(self) -> None:
        for page in self._pages.values():
            page.context.close()
        assert not self.server_errors, self.server_errors


# --- the administrator ------------------------------------------------------------------------------

HARBOR = {
    "address_line1": "12 Harbor Street",
    "city": "Springfield",
    "state": "IL",
    "zip_code": "62701",
    "phone": "(217) 555-0100",
    "dea_registration": "BH2345672",
    "rems_certification_id": "REMS-SET-20417",
}


def site_identifiers(clinic: Clinic) -> None:
    """The administrator types the site's address, phone, DEA registration and REMS certification once."""
    page = clinic.page(clinic.admin)
    page.click("nav >> text=Sites")
    page.click("a:has-text('Settings')")
    for name, value in HARBOR.items():
        page.fill(f"#site-identifiers [name={name}]", value)
    page.select_option("#f-rems_certified", "yes")
    page.fill("#f-rems_certified_on", (timezone.localdate() - timedelta(days=30)).isoformat())
    page.click("button:has-text('Save registrant details')")
    page.wait_for_selector(".msg.success")


# --- front desk --------------------------------------------------------------------------------------


def register_patient(
    clinic: Clinic, given: str, family: str, born: str, sex: str, kg: str, cm: str
) -> Patient:
    page = clinic.page(clinic.front_desk)
    page.goto("/")
    page.click("text=Register a new patient")
    page.fill("#id_given_name", given)
    page.fill("#id_family_name", family)
    page.fill("#id_date_of_birth", born)
    page.select_option("#id_sex", sex)
    page.fill("#id_weight_kg", kg)
    page.fill("#id_height_cm", cm)
    page.click("button:has-text('Save')")
    page.wait_for_selector(f"h1:has-text('{family}, {given}')")
    return Patient.objects.get(family_name=family, given_name=given)


# --- intake and screening ----------------------------------------------------------------------------

#: Items the intake records as done ("yes"); every other yes/no item of the history is answered "No".
DONE = ("rems_enrolled", "ecg_done", "liver_function_tested", "renal_function_tested")
TRIALS = "sertraline | yes | 8 | yes | no response | yes\nvenlafaxine | yes | 10 | yes | no response | yes"


def intake(clinic: Clinic, patient: Patient, *, not_childbearing: str) -> None:
    """The nurse takes the history and the vitals; ``not_childbearing`` is the reason recorded with "No"."""
    page = clinic.page(clinic.nurse)
    page.goto(f"/patients/{patient.pk}/")
    page.click(".assessment-section a:has-text('Intake')")
    page.click("text=Start the intake")
    page.fill("#id_assessed_on", (timezone.localdate() - timedelta(days=1)).isoformat())
    page.select_option("#id_indication", "trd")
    page.check("input[name=diagnoses][value=trd]")
    page.select_option("#id_hepatic_impairment", "none")
    for name in page.eval_on_selector_all(
        ".intake-form select",
        "els => els.filter(e => [...e.options].some(o => o.value === 'no')).map(e => e.name)",
    ):
        page.select_option(f"select[name={name}]", "yes" if name in DONE else "no")
    page.select_option("#id_childbearing_potential_reason", not_childbearing)
    recent = (timezone.localdate() - timedelta(days=14)).isoformat()
    page.fill("#id_ecg_date", recent)
    page.fill("#id_labs_tested_on", recent)
    page.select_option("#id_medications_recorded", "recorded")  # recorded as none
    page.select_option("#id_trials_recorded", "recorded")
    page.fill("#id_trials_text", TRIALS)
    page.fill("#id_scale_phq9", "18")
    page.fill("#id_moca_score", "28")
    page.fill("#id_stop_bang_score", "1")
    page.fill("#id_systolic_bp", "122")
    page.fill("#id_diastolic_bp", "78")
    page.fill("#id_heart_rate", "70")
    page.click("button:has-text('Save intake')")
    page.wait_for_selector("a:has-text('Edit (new version)'), .msg.error")
    assert page.locator(".msg.error").count() == 0, page.inner_text("main")[:3000]


def screen(clinic: Clinic, patient: Patient, drug_label: str) -> None:
    """The prescriber signs the intake, runs the screening and signs it: ``drug_label`` is eligible."""
    page = clinic.page(clinic.prescriber)
    page.goto(f"/patients/{patient.pk}/")
    page.click(".assessment-section a:has-text('Intake')")
    page.click("text=Sign intake version 1")
    page.click("text=Run eligibility screening")
    page.wait_for_selector("h1:has-text('Eligibility screening')")
    page.click("text=Sign this screening")
    page.wait_for_selector("text=Signed by")
    assert drug_label in page.inner_text("main")


# --- consent -----------------------------------------------------------------------------------------


def consent_on_tablet(clinic: Clinic, patient: Patient, form: str, signer: str) -> None:
    """The nurse opens the consent form ``form`` (drug-route) on the tablet; the patient reads it, types
    their name and draws their signature; the nurse witnesses."""
    page = clinic.page(clinic.nurse)
    page.goto(f"/patients/{patient.pk}/")
    assert "No consent recorded yet" in page.inner_text("#chart-consents")
    page.click(f"#chart-consents a[data-form='{form}']")
    page.wait_for_selector("#signature-pad")
    page.fill("#signer-name", signer)
    page.click("#witnessed")
    box = page.locator("#signature-pad").bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 110)
    page.mouse.down()
    for step in range(1, 25):
        page.mouse.move(box["x"] + 30 + step * 14, box["y"] + 100 + (20 if step % 2 else -20), steps=3)
    page.mouse.up()
    page.click("#sign-consent")
    page.wait_for_selector("#consent-record")
    assert page.inner_text("#consent-status") == "current"
    page.goto(f"/patients/{patient.pk}/")
    assert "No consent recorded yet" not in page.inner_text("#chart-consents")


# --- plan, dose check, stock, booking, arrival -------------------------------------------------------


def plan_course(clinic: Clinic, patient: Patient, protocol: str, dose_text: str) -> Plan:
    """The prescriber plans the course from today; the page shows the calculated dose (``dose_text``)."""
    page = clinic.page(clinic.prescriber)
    page.goto(f"/patients/{patient.pk}/")
    page.click("a.button:has-text('New plan')")
    page.select_option("#id_protocol", protocol)
    page.fill("#id_start", timezone.localdate(timezone.now(), clinic.site.zone).isoformat())
    later = timezone.localtime(timezone.now(), clinic.site.zone) + timedelta(minutes=90)
    page.fill("#id_preferred_time", later.strftime("%H:%M"))
    page.click("button:has-text('Create plan')")
    page.wait_for_selector("h1:has-text('Treatment plan')")
    assert dose_text in page.inner_text("main"), page.inner_text("main")[:2000]
    return Plan.objects.get(patient=patient)


def check_dose(clinic: Clinic, plan: Plan) -> None:
    """The nurse, a second person, checks the plan's dose on the plan page."""
    page = clinic.page(clinic.nurse)
    page.goto(f"/patients/{plan.patient_id}/")
    page.click(f"a[href='/plans/{plan.pk}/']")
    assert "Awaiting second-person dose check" in page.inner_text("main")
    page.click("button:has-text('I have checked this dose')")
    page.wait_for_selector("text=Verified by Nurse1")


def receive_stock(
    clinic: Clinic,
    drug: str,
    product: str,
    lot: str,
    unit: str,
    strength: str,
    quantity: str,
    containers: str = "5",
) -> None:
    """The nurse receives a delivery into the site's stock on the register's screen."""
    page = clinic.page(clinic.nurse)
    page.goto("/")
    page.click("nav >> text=Controlled drugs")
    page.wait_for_selector("#receive")
    _receive(page, drug, product, lot, unit, strength, quantity, containers)
    page.wait_for_selector("#lot-balance, .msg.error")
    assert page.locator(".msg.error").count() == 0, page.inner_text("main")[:2000]


def book_first_session(clinic: Clinic, plan: Plan) -> PlanSession:
    """The front desk books session 1 into Chair 2 in a quarter of an hour: Calendar → Move beside it."""
    first = plan.sessions.get(number=1)
    at = (timezone.localtime(timezone.now(), clinic.site.zone) + timedelta(minutes=15)).replace(
        second=0, microsecond=0
    )
    page = clinic.page(clinic.front_desk)
    page.goto("/")
    page.click("nav >> text=Calendar")
    page.click(f"a.move-link[href$='session={first.pk}']")
    page.fill("#id_start", at.strftime("%Y-%m-%dT%H:%M"))
    page.select_option("#id_chair", str(clinic.chairs[1].pk))
    page.click("form:has(#id_start) button:has-text('Book')")
    page.wait_for_selector("text=Booked:")
    first.refresh_from_db()
    assert first.start == at and first.chair == clinic.chairs[1]
    return first


def arrive(clinic: Clinic, patient: Patient) -> None:
    """The patient comes in: the front desk marks them arrived from Today."""
    page = clinic.page(clinic.front_desk)
    page.goto("/")
    row = page.locator("#today tr", has_text=f"{patient.family_name}, {patient.given_name}")
    row.locator("button:has-text('Mark arrived')").click()
    page.wait_for_selector("#today .tag.arrived")


def open_session(clinic: Clinic, patient: Patient) -> TreatmentSession:
    """The nurse sees the arrival on Today, opens the session and checks the patient in at the chair."""
    page = clinic.page(clinic.nurse)
    page.goto("/")
    row = page.locator("#today tr", has_text=f"{patient.family_name}, {patient.given_name}")
    assert "arrived" in row.inner_text() and "dose check pending" not in row.inner_text()
    row.locator("button:has-text('Open session')").click()
    page.wait_for_selector("#check-in")
    page.click("#check-in")
    page.wait_for_selector("#gate")
    session = TreatmentSession.objects.get(patient=patient)
    assert session.chair == clinic.chairs[1]
    return session


# --- at the chair ------------------------------------------------------------------------------------


def reading(page: Any, session: TreatmentSession, line: str, minutes_ago: int = 0) -> None:
    at = timezone.now() - timedelta(minutes=minutes_ago)
    page.fill("#obs-at", local(at, session.site.zone))
    page.fill("#line", line)
    page.click("#readings button:has-text('Add reading')")
    page.wait_for_selector(f"#observations td:has-text('{line.split()[0]}')")


def gate(clinic: Clinic, session: TreatmentSession, **selects: str) -> None:
    """Baseline vitals, the gate's questions (escort, ride home and any ``selects``: element id → value),
    and the gate opens with every item passed (consent: the tablet's, screening: signed)."""
    page = clinic.page(clinic.nurse)
    reading(page, session, "124/78 70 98 14 moaas 5 cadss 0", minutes_ago=2)
    page.select_option("#g-escort", "yes")
    page.select_option("#g-ride", "yes")
    for element, value in selects.items():
        if page.locator(f"#{element}").evaluate("e => e.tagName") == "SELECT":
            page.select_option(f"#{element}", value)
        else:
            page.fill(f"#{element}", value)
    page.click("#check-gate")
    page.wait_for_selector("#gate-items")
    assert "Gate open" in page.inner_text("#gate-verdict"), page.inner_text("#gate")
    consent = page.inner_text("#gate-items tr:has(td:text-is('Consent'))")
    assert "Passed" in consent and "witnessed by Nurse1" in consent, consent


def first_session(clinic: Clinic, plan: Plan, **gate_answers: str) -> TreatmentSession:
    """On the day: booked, arrived, opened and checked in, the gate open (``gate_answers`` as for ``gate``)."""
    book_first_session(clinic, plan)
    arrive(clinic, plan.patient)
    session = open_session(clinic, plan.patient)
    gate(clinic, session, **gate_answers)
    return session


def cosign(page: Any, form: str, user: Any, prefix: str = "verified_by") -> None:
    """``user`` (at the nurse's side) picks their name and signs with password and authenticator code."""
    page.select_option(f"#{form}-{prefix}", str(user.pk))
    page.fill(f"#{form}-{prefix}-pw", PASSWORD)
    page.fill(f"#{form}-{prefix}-code", code(user))


def pass_time(clinic: Clinic, session: TreatmentSession, minutes: int) -> None:
    shift(TreatmentSession.objects.get(pk=session.pk), minutes)
    clinic.page(clinic.nurse).goto(f"/sessions/{session.pk}/")


def observe(clinic: Clinic, session: TreatmentSession, gaps: tuple[int, ...], line: str) -> None:
    """Readings as time passes: after each gap (minutes), the nurse types ``line``."""
    for minutes in gaps:
        pass_time(clinic, session, minutes)
        reading(clinic.page(clinic.nurse), session, line)


def record_dose(
    clinic: Clinic, session: TreatmentSession, lot: str, given: str, cosigner: Any = None
) -> None:
    """An injection or a sublingual dose: the lot picked from the site's stock, the amount put into the dose,
    and (where the form asks) the second person's signature."""
    page = clinic.page(clinic.nurse)
    page.select_option(
        "#m-lot",
        label=next(
            o
            for o in page.eval_on_selector_all("#m-lot option", "els => els.map(e => e.textContent)")
            if f"lot {lot}" in o
        ),
    )
    page.fill("#m-given", given)
    if cosigner is not None:
        cosign(page, "m", cosigner)
    page.click("#record-dose")
    page.wait_for_selector("#administrations, .msg.error")
    assert page.locator(".msg.error").count() == 0, page.inner_text("main")[:2000]
    assert f"lot {lot}" in page.inner_text("#administrations")
    assert "Monitoring" in page.inner_text("#session-status")


def discharge(clinic: Clinic, session: TreatmentSession) -> None:
    """Every criterion met: the nurse discharges, and the session record says so."""
    page = clinic.page(clinic.nurse)
    page.goto(f"/sessions/{session.pk}/#discharge")
    page.check("input[name=stable]")
    page.check("input[name=escort_present]")
    page.check("input[name=driving_advice_given]")
    page.click("#discharge-button")
    page.wait_for_load_state()
    assert "Patient discharged." in page.inner_text("main"), page.inner_text("main")[:1500]
    assert "Discharged" in page.inner_text("#session-status")
    assert TreatmentSession.objects.get(pk=session.pk).status == "discharged"


def session_record(clinic: Clinic, session: TreatmentSession, tmp_path: Any, *expected: str) -> str:
    """The session report (PDF), from the session page's link: read back, it holds each of ``expected``."""
    page = clinic.page(clinic.nurse)
    page.goto(f"/sessions/{session.pk}/")
    pdf = page.request.get(page.get_attribute("a:has-text('Session report (PDF)')", "href"))
    assert pdf.status == 200 and pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.body(), tmp_path)
    for words in expected:
        assert words in text, (words, text[:3000])
    return text


def register_shows(clinic: Clinic, session: TreatmentSession, lot: str, drawn: str, uses: int = 1) -> None:
    """The controlled-substance register lists ``uses`` draws of ``drawn`` from ``lot``, each tied to a dose
    of this session."""
    entries = LedgerEntry.objects.filter(kind="use", lot__lot=lot)
    assert entries.count() == uses
    assert all(e.administration is not None and e.administration.session_id == session.pk for e in entries)
    page = clinic.page(clinic.nurse)
    page.goto("/")
    page.click("nav >> text=Controlled drugs")
    page.click("a:has-text('Register')")
    page.wait_for_selector("#register")
    rows = page.locator("#register tbody tr", has_text=f"lot {lot}").filter(has_not_text="Received")
    assert rows.count() == uses, page.inner_text("#register")
    for n in range(uses):
        assert f"-{drawn}" in rows.nth(n).inner_text().replace(" ", ""), rows.nth(n).inner_text()
