"""The pre-dose gate shows how old the consent and the pregnancy test are and refuses old ones (issue 14,
*Why*: a 2-year-old negative pregnancy test and a 400-day-old consent passed). Whether a test is needed comes
from the intake's childbearing potential; the interval is the clinic's setting, counted from the first
session of the course by default (clinical.md §11, unconfirmed). Driven through the session page and the
JSON API with CSRF-enforcing clients, from an empty clinic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import time_machine
from django.test import Client, override_settings
from django.utils import timezone
from tests.assessment.test_screening_overrides import token_from
from tests.consent.helpers import consent_on_file
from tests.ledger.stock import lot_for
from tests.treatment.conftest import complete_intake

from ketaclinic.assessment import services as assessment
from ketaclinic.chairside.models import GateCheck, TreatmentSession

from .journey import Api

T0 = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
M = timedelta(minutes=1)
IV_GATE = {"escort_confirmed": True, "ride_home_confirmed": True}


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(T0 - 30 * M, tick=False) as traveller:
        yield traveller


def intake(nurse: Any, prescriber: Any, patient: Any, *, sign: bool = True, **changes: Any) -> None:
    """A complete intake (a prescriber signs it) and a signed screening."""
    latest = assessment.latest_intake(patient)
    row = assessment.save_intake(
        user=nurse,
        patient=patient,
        data=complete_intake(**changes),
        base_version=latest.version if latest else None,
    )
    if sign:
        assessment.sign_intake(user=prescriber, intake=row)
        screening = assessment.run_screening(user=nurse, patient=patient)
        assessment.sign_screening(user=prescriber, screening=screening)


CAN_BECOME_PREGNANT = {"childbearing_potential": "yes", "childbearing_potential_reason": None}


def checked_in(desk: Api, patient: Any, consent_signed_on: str = "2026-12-01", **extra: Any) -> str:
    """Consent (signed on the tablet on ``consent_signed_on``), an IV session at T0, checked in with a calm
    baseline reading."""
    consent_on_file(
        desk.user,
        patient,
        "ketamine",
        signed_on=date.fromisoformat(consent_signed_on),
        expires_on=extra.get("expires_on"),
    )
    session = desk.ok(
        "/sessions",
        {
            "patient_id": str(patient.pk),
            "protocol_id": "iv-trd-elektd",
            "planned_dose_mg": "35",
            "scheduled_at": T0.isoformat(),
        },
        status=201,
    )
    desk.ok(f"/sessions/{session['id']}/transition", {"to": "checked_in", "version": session["version"]})
    desk.reading(session["id"], timezone.now(), "base")
    return str(session["id"])


def items(gate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {i["key"]: i for i in gate["items"]}


def test_a_two_year_old_negative_pregnancy_test_is_refused_at_the_chair(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient, **CAN_BECOME_PREGNANT)
    sid = checked_in(Api(nurse, sign_in), patient)
    page_client = sign_in(Client(enforce_csrf_checks=True), nurse)
    page = page_client.get(f"/sessions/{sid}/").content.decode()
    hint = page[page.index('id="gate-pregnancy"') :]
    hint = hint[: hint.index("</p>")]
    assert "Intake version 1: can become pregnant" in hint
    assert "a test taken within 7 days before the first session of the course" in hint
    assert "clinic default, unconfirmed" in hint and "No test recorded at a gate yet" in hint
    assert 'name="pregnancy_test_on" value=""' in page  # no date is filled in for the nurse
    posted = page_client.post(
        f"/sessions/{sid}/gate/",
        {
            "csrfmiddlewaretoken": token_from(page),
            "escort_confirmed": "yes",
            "ride_home_confirmed": "yes",
            "pregnancy_test": "negative",
            "pregnancy_test_on": "2024-12-07",
        },
        follow=True,
    )
    assert posted.status_code == 200
    shown = posted.content.decode()
    reason = (
        "Pregnancy test 2024-12-07 is 730 days old: the clinic accepts a test taken within 7 days before the "
        "first session of the course (this is the first session), so taken on or after 2026-11-30"
    )
    assert reason in shown and "Gate closed" in shown
    check = GateCheck.objects.get(session_id=sid)
    assert not check.passed
    assert {i["key"]: i["status"] for i in check.items}["pregnancy_test"] == "fail"
    # The next time, the form offers the recorded test again: its age is shown and judged again.
    again = page_client.get(f"/sessions/{sid}/").content.decode()
    assert "Last test recorded at a gate: negative, taken 2024-12-07 (730 days ago)" in again


def test_a_recent_negative_test_passes_and_a_positive_one_stops_the_gate(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient, **CAN_BECOME_PREGNANT)
    desk = Api(nurse, sign_in)
    sid = checked_in(desk, patient)
    gate = desk.ok(
        f"/sessions/{sid}/gate", IV_GATE | {"pregnancy_test": "negative", "pregnancy_test_on": "2026-12-03"}
    )
    item = items(gate)["pregnancy_test"]
    assert item["status"] == "pass" and item["reason"].startswith(
        "Pregnancy test negative, 2026-12-03 (4 days ago)"
    )
    assert item["confirmed"] is False and "clinical.md §11" in item["source"]
    assert gate["passed"]
    positive = desk.ok(
        f"/sessions/{sid}/gate", IV_GATE | {"pregnancy_test": "positive", "pregnancy_test_on": "2026-12-07"}
    )
    assert items(positive)["pregnancy_test"]["status"] == "fail" and not positive["passed"]


def test_not_indicated_only_when_the_signed_intake_records_no(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient)  # no: post-menopausal, signed
    desk = Api(nurse, sign_in)
    sid = checked_in(desk, patient)
    gate = desk.ok(f"/sessions/{sid}/gate", IV_GATE)
    item = items(gate)["pregnancy_test"]
    assert item["status"] == "not_applicable"
    assert item["reason"] == "Not needed: intake version 1: cannot become pregnant (Post-menopausal)"
    page = sign_in(Client(enforce_csrf_checks=True), nurse).get(f"/sessions/{sid}/").content.decode()
    assert 'name="pregnancy_test"' not in page and "Pregnancy test: not needed" in page
    # A newer intake version saying "yes" (not signed yet) is never hidden behind the signed "no".
    intake(nurse, prescriber, patient, sign=False, **CAN_BECOME_PREGNANT)
    stated = desk.ok(f"/sessions/{sid}/gate", IV_GATE | {"pregnancy_test": "not_indicated"})
    refused = items(stated)["pregnancy_test"]
    assert refused["status"] == "fail" and "“Not indicated” needs the intake" in refused["reason"]
    assert "intake version 2 (not signed by a prescriber yet): can become pregnant" in refused["reason"]


def test_a_400_day_old_consent_shows_its_age_and_cannot_be_overridden(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient)
    desk, rx = Api(nurse, sign_in), Api(prescriber, sign_in)
    sid = checked_in(desk, patient, consent_signed_on="2025-11-02")  # 400 days before 2026-12-07
    gate = desk.ok(f"/sessions/{sid}/gate", IV_GATE)
    consent = items(gate)["consent"]
    assert consent["status"] == "fail" and consent["overridable"] is False
    # Signed 400 days ago, valid 365 days (clinic policy, unconfirmed): expired, with its age on the gate.
    assert consent["reason"].startswith("Consent expired on 2026-11-02")
    assert "signed 2025-11-02, 400 days ago" in consent["reason"]
    assert consent["confirmed"] is False and "validity" in consent["source"]
    refused = rx.post(f"/sessions/{sid}/gate/overrides", {"item_key": "consent", "reason": "Signed on paper"})
    assert refused.status_code in (409, 422) and "cannot be overridden" in refused.content.decode()
    # A newly signed consent is current, and the gate shows its form version, date, age and expiry.
    consent_on_file(nurse, patient, "ketamine")
    fresh = items(desk.ok(f"/sessions/{sid}/gate", IV_GATE))["consent"]
    assert fresh["status"] == "pass"
    assert "signed 2026-12-07 (today)" in fresh["reason"] and "valid until 2027-12-07" in fresh["reason"]


def _dose_and_stop(desk: Api, prescriber: Any, sid: str, clock: Any, at: datetime) -> None:
    clock.move_to(at)
    lot = lot_for(TreatmentSession.objects.get(pk=sid), by=desk.user)
    desk.start_infusion(sid, prescriber, dose="35", rate="150", lot=lot)
    session = desk.get(f"/sessions/{sid}").json()
    desk.ok(
        f"/sessions/{sid}/transition",
        {"to": "stopped", "version": session["version"], "reason": "Test course: stopped after the start"},
    )


def test_a_test_taken_for_the_first_session_serves_the_course_unless_the_clinic_asks_before_each(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient, **CAN_BECOME_PREGNANT)
    desk = Api(nurse, sign_in)
    test = {"pregnancy_test": "negative", "pregnancy_test_on": "2026-12-02"}
    first = checked_in(desk, patient)
    assert desk.ok(f"/sessions/{first}/gate", IV_GATE | test)["passed"]
    _dose_and_stop(desk, prescriber, first, clock, T0)
    # Session 2 of the course, a week later: the same test (12 days old) counts from the first session.
    clock.move_to(T0 + timedelta(days=7) - 30 * M)
    second = desk.ok(
        "/sessions",
        {
            "patient_id": str(patient.pk),
            "protocol_id": "iv-trd-elektd",
            "planned_dose_mg": "35",
            "scheduled_at": (T0 + timedelta(days=7)).isoformat(),
        },
        status=201,
    )
    assert second["session_number"] == 2
    sid = str(second["id"])
    desk.ok(f"/sessions/{sid}/transition", {"to": "checked_in", "version": second["version"]})
    desk.reading(sid, timezone.now(), "base2")
    course = items(desk.ok(f"/sessions/{sid}/gate", IV_GATE | test))["pregnancy_test"]
    assert course["status"] == "pass"
    assert "12 days ago" in course["reason"] and "(first session 2026-12-07)" in course["reason"]
    with override_settings(KETACLINIC_PREGNANCY_TEST_BEFORE="session"):
        each = items(desk.ok(f"/sessions/{sid}/gate", IV_GATE | test))["pregnancy_test"]
    assert each["status"] == "fail"
    assert each["reason"] == (
        "Pregnancy test 2026-12-02 is 12 days old: the clinic accepts a test taken within 7 days before each "
        "session, so taken on or after 2026-12-07"
    )
    assert "before each session" in each["source"]


def test_another_organization_and_the_front_desk_cannot_check_the_gate(
    clock: Any, nurse: Any, prescriber: Any, patient: Any, outsider: Any, front_desk: Any, sign_in: Any
) -> None:
    intake(nurse, prescriber, patient, **CAN_BECOME_PREGNANT)
    sid = checked_in(Api(nurse, sign_in), patient)
    body = IV_GATE | {"pregnancy_test": "negative", "pregnancy_test_on": "2026-12-06"}
    assert Api(outsider, sign_in).post(f"/sessions/{sid}/gate", body).status_code == 404
    assert Api(front_desk, sign_in).post(f"/sessions/{sid}/gate", body).status_code == 403
    assert not GateCheck.objects.filter(session_id=sid).exists()
