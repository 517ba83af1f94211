"""Suicidality flags reach the prescriber and on-duty clinicians; self-report links are one-time and safe."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from tests.csrf_pages import token_of

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.models import Notification
from ketaclinic.measures import services
from ketaclinic.measures.models import SafetyAlert, ScaleAdministration, SelfReportLink

ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 2}


@pytest.fixture
def prescribed(patient: Any, prescriber: Any) -> Any:
    patient.prescriber = prescriber
    patient.save()
    return patient


def test_item9_raises_an_alert_for_the_prescriber_and_on_duty_nurse(
    prescribed: Any, prescriber: Any, nurse: Any, front_desk: Any, site: Any, make_user: Any, org: Any
) -> None:
    nurse.on_duty_site = site
    nurse.save()
    off_duty = make_user("nurse-off", org, "nurse", [site])
    saved = services.record_administration(user=nurse, patient=prescribed, instrument="phq9", answers=ITEM9)
    alert = SafetyAlert.objects.get(administration=saved)
    assert alert.kind == "suicidality" and "item 9" in alert.message.lower()
    assert set(alert.recipients.all()) == {prescriber, nurse}
    assert off_duty not in alert.recipients.all() and front_desk not in alert.recipients.all()
    assert Notification.objects.filter(recipient=prescriber, kind="suicidality").exists()


def test_no_prescriber_and_nobody_on_duty_falls_back_to_the_sites_clinicians(
    patient: Any, nurse: Any, prescriber: Any
) -> None:
    saved = services.record_administration(user=nurse, patient=patient, instrument="phq9", answers=ITEM9)
    assert set(SafetyAlert.objects.get(administration=saved).recipients.all()) == {nurse, prescriber}


def test_alert_stays_on_the_home_page_until_acknowledged_with_a_note(
    prescribed: Any, prescriber: Any, nurse: Any, sign_in: Any
) -> None:
    services.record_administration(user=nurse, patient=prescribed, instrument="phq9", answers=ITEM9)
    alert = SafetyAlert.objects.get()
    client = sign_in(Client(), prescriber)
    assert b'id="critical-alerts"' in client.get("/").content
    client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": ""})
    alert.refresh_from_db()
    assert alert.acknowledged_at is None
    assert b'id="critical-alerts"' in client.get("/").content
    client.post(f"/alerts/{alert.pk}/acknowledge/", {"note": "Called patient; safety plan reviewed."})
    alert.refresh_from_db()
    assert alert.acknowledged_by == prescriber and "safety plan" in alert.acknowledgement_note
    assert b'id="critical-alerts"' not in client.get("/").content
    assert AuditEntry.objects.filter(category="safety-alert", user=prescriber).exists()


def test_qids_item12_and_cssrs_high_also_raise_alerts(nurse: Any, patient: Any) -> None:
    qids = {str(i): 0 for i in range(1, 17)} | {"12": 1}
    services.record_administration(user=nurse, patient=patient, instrument="qids-sr16", answers=qids)
    cssrs = {"1": 1, "2": 1, "3": 0, "4": 1, "5": 0, "6": 0, "6_recent": 0}
    services.record_administration(user=nurse, patient=patient, instrument="cssrs-screen", answers=cssrs)
    assert SafetyAlert.objects.filter(kind="suicidality").count() == 2


def test_link_token_is_stored_hashed(nurse: Any, patient: Any) -> None:
    link, token = services.create_link(user=nurse, patient=patient, instruments=["phq9", "gad7"])
    assert token not in link.token_hash and len(link.token_hash) == 64
    assert not SelfReportLink.objects.filter(token_hash=token).exists()
    assert link.expires_at - link.created_at >= timedelta(hours=71, minutes=59)


def test_only_instruments_with_published_wording_can_be_sent(nurse: Any, patient: Any) -> None:
    with pytest.raises(services.ScaleInputError, match="choose from"):
        services.create_link(user=nurse, patient=patient, instruments=["madrs"])


def test_patient_page_shows_first_name_and_questions_only(nurse: Any, patient: Any) -> None:
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    page = Client().get(f"/r/{token}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Hello Testa" in html
    assert "Examplesson" not in html and patient.mrn not in html and "1980" not in html
    assert "Little interest or pleasure in doing things" in html
    assert page["Cache-Control"] == "no-store"


def _submit(token: str, answers: dict[str, int], prefix: str = "phq9", client: Client | None = None) -> Any:
    client = client or Client()
    client.get(f"/r/{token}/")
    return client.post(f"/r/{token}/", {f"{prefix}-item_{k}": v for k, v in answers.items()})


def test_submission_is_stored_once_and_the_link_cannot_be_reused(nurse: Any, patient: Any) -> None:
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    done = _submit(token, ITEM9)
    assert done.status_code == 200 and b"Thank you" in done.content
    assert b"988" in done.content  # the site's crisis resources after a suicidality flag
    saved = ScaleAdministration.objects.get()
    assert saved.entered_by_kind == "patient" and saved.entered_by.username.startswith(
        "system:patient-self-report"
    )
    again = _submit(token, ITEM9)
    assert again.status_code == 410 and ScaleAdministration.objects.count() == 1


def test_incomplete_submission_keeps_the_link_open_and_stores_nothing(nurse: Any, patient: Any) -> None:
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    partial = _submit(token, {"1": 2})
    assert partial.status_code == 422 and b"Please answer every question" in partial.content
    assert ScaleAdministration.objects.count() == 0
    assert _submit(token, ITEM9).status_code == 200


def test_expired_link_is_refused(nurse: Any, patient: Any) -> None:
    link, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    SelfReportLink.objects.filter(pk=link.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client().get(f"/r/{token}/").status_code == 410


def test_guessing_tokens_is_rate_limited_but_never_blocks_a_valid_link(
    settings: Any, nurse: Any, patient: Any
) -> None:
    """Issue 15 (Low): 20 wrong guesses from one address blocked valid links from the same waiting-room
    address. Guesses are still slowed per address; a valid link opens and submits from that address."""
    settings.KETACLINIC_SELF_REPORT_MAX_FAILURES = 5
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    waiting_room = Client(enforce_csrf_checks=True, REMOTE_ADDR="198.51.100.7")
    for i in range(5):
        assert waiting_room.get(f"/r/guess{i}/").status_code == 410
    assert waiting_room.get("/r/guess-again/").status_code == 429  # further guesses: too many attempts
    # Another patient in the same waiting room, with their real link: it opens and their answers are kept.
    page = waiting_room.get(f"/r/{token}/")
    assert page.status_code == 200 and "Hello Testa" in page.content.decode()
    done = waiting_room.post(
        f"/r/{token}/",
        {
            **{f"phq9-item_{k}": v for k, v in ITEM9.items()},
            "csrfmiddlewaretoken": token_of(page.content.decode()),
        },
    )
    assert done.status_code == 200 and ScaleAdministration.objects.count() == 1
    # A used link stays closed, and failures from the address are still refused.
    assert waiting_room.get(f"/r/{token}/").status_code == 429
    assert Client(REMOTE_ADDR="198.51.100.8").get(f"/r/{token}/").status_code == 410


def test_a_link_is_locked_after_repeated_invalid_submissions(nurse: Any, patient: Any) -> None:
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    for _ in range(10):
        assert _submit(token, {"1": 2}).status_code == 422
    assert Client().get(f"/r/{token}/").status_code == 410


def test_staff_sessions_cannot_fill_in_a_patients_self_report(
    front_desk: Any, nurse: Any, patient: Any, sign_in: Any
) -> None:
    """Issue 15 (Low): front desk (who may not enter scales) filled in a patient's link and stored a PHQ-9
    of 27 as the patient's own answers. A signed-in staff session is refused; the link stays the patient's."""
    _, token = services.create_link(user=nurse, patient=patient, instruments=["phq9"])
    all_threes = {f"phq9-item_{i}": 3 for i in range(1, 10)}
    for person in (front_desk, nurse):
        desk = sign_in(Client(enforce_csrf_checks=True), person)
        page = desk.get(f"/r/{token}/")
        assert page.status_code == 403 and b"signed in as staff" in page.content
        assert b"Little interest" not in page.content
        data = {**all_threes, "csrfmiddlewaretoken": token_of(desk.get("/").content.decode())}
        refused = desk.post(f"/r/{token}/", data)
        assert refused.status_code == 403 and b"signed in as staff" in refused.content  # not a CSRF refusal
    assert ScaleAdministration.objects.count() == 0
    # The patient's own device still opens the link.
    assert Client().get(f"/r/{token}/").status_code == 200


def test_a_plan_job_emails_a_pre_session_link(settings: Any, patient: Any, prescriber: Any) -> None:
    from django.core import mail

    from ketaclinic.core import jobs

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    patient.email = "testa@example.invalid"
    patient.prescriber = prescriber
    patient.save()
    jobs.enqueue(
        "measures.pre_session_link",
        {"patient_id": str(patient.pk), "instruments": ["phq9", "gad7"], "purpose": "day before session 3"},
    )
    assert jobs.run_due_jobs() == 1
    link = SelfReportLink.objects.get()
    assert link.instruments == ["phq9", "gad7"] and link.created_by == prescriber
    [message] = mail.outbox
    assert message.to == ["testa@example.invalid"] and "/r/" in message.body
    token = message.body.split("/r/")[1].split("/")[0]
    assert Client().get(f"/r/{token}/").status_code == 200
    assert "PHQ" not in message.body and "Examplesson" not in message.body  # no clinical content by email


def test_no_email_on_file_is_recorded_not_lost(settings: Any, patient: Any) -> None:
    from django.core import mail

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert services.send_pre_session_link(patient_id=patient.pk, instruments=["phq9"], purpose="x") is None
    assert mail.outbox == []
    assert AuditEntry.objects.filter(category="self-report-link", detail__startswith="not sent").exists()


def test_a_ymrs_mania_flag_alerts_for_bipolar_or_unknown_patients_only(
    nurse: Any, prescriber: Any, patient: Any, make_patient: Any
) -> None:
    from ketaclinic.assessment import services as assessment

    high = {str(i): 4 for i in range(1, 12)}  # YMRS 7 × 4 + 4 × 4 = 44, far above the threshold
    services.record_administration(user=nurse, patient=patient, instrument="ymrs", answers=high)
    assert SafetyAlert.objects.filter(patient=patient, kind="mania").count() == 1  # no intake: possible
    unipolar = make_patient(nurse, given_name="Uni", family_name="Polar")
    from tests.treatment import conftest as module  # the complete, eligible intake used by the plan tests

    assessment.save_intake(user=nurse, patient=unipolar, data=module.complete_intake(), base_version=None)
    saved = services.record_administration(user=nurse, patient=unipolar, instrument="ymrs", answers=high)
    assert any(f["kind"] == "mania" for f in saved.flags)  # the flag is recorded…
    assert not SafetyAlert.objects.filter(patient=unipolar, kind="mania").exists()  # …no alert: not bipolar


def test_an_alert_left_unacknowledged_goes_to_every_clinician_of_the_site(
    prescribed: Any, prescriber: Any, nurse: Any, front_desk: Any, site: Any, sign_in: Any, settings: Any
) -> None:
    """Raised for the prescriber only; after KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS (a clinic default) the
    site's nurses get it too, once, on their home page, and everyone on it is reminded."""
    settings.KETACLINIC_SAFETY_ALERT_ESCALATE_HOURS = 2
    raised = timezone.now() - timedelta(hours=3)
    saved = services.record_administration(
        user=prescriber, patient=prescribed, instrument="phq9", answers=ITEM9, administered_at=raised
    )
    alert = SafetyAlert.objects.get(administration=saved)
    assert set(alert.recipients.all()) == {prescriber}
    assert services.escalate_safety_alerts(now=raised + timedelta(hours=1, minutes=59)) == 0
    assert services.escalate_safety_alerts(now=raised + timedelta(hours=2)) == 1
    alert.refresh_from_db()
    assert alert.escalated_at is not None and set(alert.recipients.all()) == {prescriber, nurse}
    assert front_desk not in alert.recipients.all()
    reminders = Notification.objects.filter(kind="suicidality", message__startswith="Still unacknowledged")
    assert set(reminders.values_list("recipient", flat=True)) == {prescriber.pk, nurse.pk}
    assert services.escalate_safety_alerts() == 0  # once per alert
    entry = AuditEntry.objects.get(object_type="SafetyAlert", object_id=str(alert.pk), action="change")
    assert entry.detail.startswith("unacknowledged suicidality alert escalated") and "nurse1" in entry.after
    home = sign_in(Client(), nurse).get("/").content.decode()
    assert 'id="critical-alerts"' in home and "unacknowledged, escalated" in home


def test_an_acknowledged_alert_is_not_escalated_and_the_worker_runs_the_sweep(
    prescribed: Any, prescriber: Any, nurse: Any
) -> None:
    from ketaclinic.core import jobs
    from ketaclinic.core.models import Job

    earlier = timezone.now() - timedelta(hours=5)
    saved = services.record_administration(
        user=prescriber, patient=prescribed, instrument="phq9", answers=ITEM9, administered_at=earlier
    )
    acknowledged = SafetyAlert.objects.get(administration=saved)
    services.acknowledge_alert(user=prescriber, alert_id=acknowledged.pk, note="Called the patient, safe")
    later = services.record_administration(
        user=prescriber, patient=prescribed, instrument="phq9", answers=ITEM9, administered_at=earlier
    )
    open_one = SafetyAlert.objects.get(administration=later)
    jobs.ensure_recurring()
    assert Job.objects.filter(kind="measures.sweep", finished_at__isnull=True).count() == 1
    jobs.run_due_jobs()
    acknowledged.refresh_from_db()
    open_one.refresh_from_db()
    assert acknowledged.escalated_at is None and open_one.escalated_at is not None
    assert Job.objects.filter(kind="measures.sweep", finished_at__isnull=True).count() == 1  # next run queued


def _csrf_post(client: Client, url: str, data: dict[str, Any]) -> Any:
    page = client.get(url).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, f"no CSRF token on {url}"
    return client.post(url, data | {"csrfmiddlewaretoken": match.group(1)})


def test_madrs_item10_and_a_cssrs_item2_yes_entered_on_the_page_each_raise_an_alert(
    prescribed: Any, prescriber: Any, nurse: Any, site: Any, sign_in: Any
) -> None:
    nurse.on_duty_site = site
    nurse.save()
    client = sign_in(Client(enforce_csrf_checks=True), nurse)
    base = f"/patients/{prescribed.pk}/scales/new"
    madrs = {f"item_{i}": "0" for i in range(1, 10)} | {"item_10": "2"}
    form = client.get(f"{base}/madrs/").content.decode()
    rules = form[form.index("Answers that raise a safety alert") : form.index("</section>")]
    assert "MADRS item 10 (suicidal thoughts) above the clinic threshold" in rules
    assert "default, unconfirmed" in rules
    assert client.post(f"{base}/madrs/", madrs).status_code == 403  # no CSRF token: refused
    assert _csrf_post(client, f"{base}/madrs/", madrs).status_code == 302
    cssrs = {"item_1": "0", "item_2": "1", "item_3": "0", "item_4": "0", "item_5": "0", "item_6": "0"}
    assert _csrf_post(client, f"{base}/cssrs-screen/", cssrs).status_code == 302  # no total: no crash
    page = client.get(f"/patients/{prescribed.pk}/scales/").content.decode()
    assert "C-SSRS Screener: saved — flagged: C-SSRS screener triage: low risk" in page
    alerts = {a.rule_code: a for a in SafetyAlert.objects.filter(patient=prescribed, kind="suicidality")}
    assert set(alerts) == {"madrs_item10_suicidality", "cssrs_suicide_risk"}
    assert "item 10 (suicidal thoughts) is 2" in alerts["madrs_item10_suicidality"].message
    assert "triage: low risk (item 2 yes → low)" in alerts["cssrs_suicide_risk"].message
    for alert in alerts.values():
        assert set(alert.recipients.all()) == {prescriber, nurse}
        assert alert.acknowledged_at is None
    assert Notification.objects.filter(recipient=prescriber, kind="suicidality").count() == 2
    versions = dict(ScaleAdministration.objects.values_list("instrument", "instrument_version"))
    assert versions == {"madrs": "2", "cssrs-screen": "2"}
    home = sign_in(Client(), prescriber).get("/").content.decode()
    banner = home.split('id="critical-alerts"', 1)[1].split("</section>", 1)[0]
    assert "2 critical alerts at your sites" in banner


def test_madrs_item10_of_0_and_a_cssrs_with_no_yes_raise_nothing(nurse: Any, patient: Any) -> None:
    services.record_administration(
        user=nurse, patient=patient, instrument="madrs", answers={str(i): 3 for i in range(1, 10)} | {"10": 0}
    )
    cssrs = {"1": 0, "2": 0, "6": 0}
    services.record_administration(user=nurse, patient=patient, instrument="cssrs-screen", answers=cssrs)
    assert not SafetyAlert.objects.exists()
