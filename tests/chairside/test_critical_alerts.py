"""Alerts that cannot be missed (issue 13, point 8): an open critical chair alert or suicidality alert shows
as a banner on the home page of every nurse and prescriber of the site, at the top of the session page and
on the live board; never on another site's or organization's pages; the home page never says "Nothing
waiting for you" beneath one. Views are driven with CSRF-enforcing clients and the token of the page."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from ketaclinic.accounts.models import Chair
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import board, reading_services
from ketaclinic.chairside.models import SessionAlert, TreatmentSession
from ketaclinic.clinical.vitals import VitalReading
from ketaclinic.measures import services as measures
from ketaclinic.measures.models import SafetyAlert

ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 2}
NOTHING = "Nothing waiting for you"


def chair_session(
    user: Any, patient: Any, site: Any, chair: str, *, status: str = "monitoring"
) -> TreatmentSession:
    now = timezone.now()
    return TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        chair=Chair.objects.get_or_create(organization=site.organization, site=site, label=chair)[0],
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=Decimal("35"),
        scheduled_at=now - timedelta(minutes=50),
        status=status,
        status_changed_at=now - timedelta(minutes=40),
        dose_started_at=now - timedelta(minutes=40),
        created_by=user,
    )


def dbp_112(session: TreatmentSession, nurse: Any, minutes_ago: int = 12) -> SessionAlert:
    """A reading of 150/112 through the alert engine: DBP ≥110 is critical (clinical.md §2.6, label Table 6)."""
    reading_services.record_observation(
        user=nurse,
        session=session,
        reading=VitalReading(
            taken_at=timezone.now() - timedelta(minutes=minutes_ago),
            sbp_mmhg=150,
            dbp_mmhg=112,
            hr_bpm=80,
            spo2_pct=97,
            rr_per_min=14,
        ),
    )
    return SessionAlert.objects.get(session=session, code="dbp_high", acknowledged_at__isnull=True)


def client_for(sign_in: Any, user: Any) -> Client:
    return sign_in(Client(enforce_csrf_checks=True), user)


def page(client: Client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return response.content.decode()


def token(html: str) -> str:
    """The CSRF token the page's own forms carry."""
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def banner(html: str, element_id: str) -> str:
    """The text of the banner section with this id ('' when the page has none)."""
    found = re.search(rf'<(section|div) [^>]*id="{element_id}".*?</\1>', html, re.S)
    return found.group(0) if found else ""


@pytest.fixture
def nurse_b(make_user: Any, org: Any, second_site: Any) -> Any:
    return make_user("nurse-north", org, "nurse", [second_site])


@pytest.fixture
def prescriber_b(make_user: Any, org: Any, second_site: Any) -> Any:
    return make_user("prescriber-north", org, "prescriber", [second_site])


@pytest.fixture
def chair_alert(nurse: Any, patient: Any, site: Any) -> SessionAlert:
    return dbp_112(chair_session(nurse, patient, site, "Chair 3"), nurse)


# --------------------------------------------------------------------------- home page: chair alerts


def test_a_critical_chair_alert_is_on_the_home_page_of_every_clinician_of_its_site_only(
    chair_alert: SessionAlert,
    nurse: Any,
    prescriber: Any,
    nurse_b: Any,
    front_desk: Any,
    outsider: Any,
    admin: Any,
    sign_in: Any,
) -> None:
    for person in (nurse, prescriber):
        html = page(client_for(sign_in, person), "/")
        shown = banner(html, "critical-alerts")
        assert "1 critical alert at your sites" in shown
        assert (
            "Main Street · Chair 3" in shown and "BP 150/112" in shown
        )  # where, and the reading the alert names
        assert "open <strong>12 min</strong>" in shown  # how long nobody has acknowledged it
        assert f'href="/sessions/{chair_alert.session_id}/#critical-banner"' in shown  # where to acknowledge
        assert NOTHING not in html
    # Another site of the organization, another organization, and staff who do not treat: no banner.
    for person in (nurse_b, outsider, front_desk, admin):
        html = page(client_for(sign_in, person), "/")
        assert 'id="critical-alerts"' not in html and "150/112" not in html
    assert NOTHING in page(client_for(sign_in, nurse_b), "/")


def test_the_banner_read_is_audited_once_per_page_with_the_count(
    chair_alert: SessionAlert, nurse: Any, sign_in: Any
) -> None:
    client = client_for(sign_in, nurse)
    before = AuditEntry.objects.count()
    page(client, "/")
    entries = list(AuditEntry.objects.filter(category="critical-alerts").order_by("seq"))
    assert AuditEntry.objects.count() > before and len(entries) == 1
    assert entries[0].user == nurse and entries[0].action == "query"
    assert entries[0].detail == "home page: 1 open critical alert(s) (1 at a chair, 0 suicidality)"


def test_an_all_sites_clinician_sees_every_site_and_warnings_or_ended_sessions_are_not_banners(
    nurse: Any,
    patient: Any,
    site: Any,
    second_site: Any,
    nurse_b: Any,
    make_patient: Any,
    make_user: Any,
    org: Any,
    sign_in: Any,
) -> None:
    north = chair_session(nurse_b, make_patient(nurse_b, family_name="Northpatient"), second_site, "N1")
    dbp_112(north, nurse_b)
    warning = chair_session(nurse, patient, site, "Chair 1")
    SessionAlert.objects.create(
        organization=site.organization,
        session=warning,
        code="hr_high",
        severity="warning",
        message="HR 125",
        source="x",
        dedup_key="hr",
        raised_at=timezone.now(),
    )
    ended = chair_session(
        nurse, make_patient(nurse, family_name="Gonehome"), site, "Chair 2", status="discharged"
    )
    SessionAlert.objects.create(
        organization=site.organization,
        session=ended,
        code="dbp_high",
        severity="critical",
        message="DBP 115 (after discharge)",
        source="x",
        dedup_key="dbp",
        raised_at=timezone.now(),
    )
    roaming = make_user("nurse-roaming", org, "nurse", [], all_sites=True)
    shown = banner(page(client_for(sign_in, roaming), "/"), "critical-alerts")
    assert "North Road · N1" in shown and "HR 125" not in shown and "after discharge" not in shown
    assert 'id="critical-alerts"' not in page(client_for(sign_in, nurse), "/")  # only the warning at Main


# --------------------------------------------------------------------------- session page


def test_the_session_page_banner_acknowledges_this_chair_and_points_to_the_others(
    chair_alert: SessionAlert, nurse: Any, prescriber: Any, make_patient: Any, site: Any, sign_in: Any
) -> None:
    other = chair_session(nurse, make_patient(nurse, family_name="Otherchair"), site, "Chair 7")
    other_alert = dbp_112(other, nurse, minutes_ago=3)
    client = client_for(sign_in, prescriber)
    html = page(client, f"/sessions/{chair_alert.session_id}/")
    top = html.split('<div class="page-head">')[0]  # the banner comes before everything else on the page
    shown = banner(top, "critical-banner")
    assert (
        "this chair (Chair 3)" in shown and "BP 150/112" in shown and "open <strong>12 min</strong>" in shown
    )
    assert f'action="/sessions/{chair_alert.session_id}/alerts/{chair_alert.pk}/acknowledge/"' in shown
    assert "Other chairs with a critical alert" in shown
    assert f'href="/sessions/{other.pk}/#alerts">Main Street · Chair 7</a>' in shown
    assert "Otherchair" not in shown  # the other chair is named by its chair, not its patient
    # Without the page's CSRF token the acknowledgement is refused; with it, it is recorded.
    url = f"/sessions/{chair_alert.session_id}/alerts/{chair_alert.pk}/acknowledge/"
    assert client.post(url, {"note": "Repeat BP in 5 min, prescriber saw the patient"}).status_code == 403
    response = client.post(
        url, {"note": "Repeat BP in 5 min, prescriber saw the patient", "csrfmiddlewaretoken": token(html)}
    )
    assert (
        response.status_code == 302 and response["Location"] == f"/sessions/{chair_alert.session_id}/#alerts"
    )
    chair_alert.refresh_from_db()
    assert chair_alert.acknowledged_by == prescriber
    html = page(client, f"/sessions/{chair_alert.session_id}/")
    shown = banner(html, "critical-banner")
    assert "this chair" not in shown and "Chair 7" in shown  # the other chair is still open
    other_alert.refresh_from_db()
    assert other_alert.acknowledged_at is None
    assert "1 critical alert at your sites" in banner(page(client, "/"), "critical-alerts")


def test_no_banner_on_a_quiet_session_page_and_none_from_another_site(
    nurse: Any, patient: Any, site: Any, nurse_b: Any, second_site: Any, make_patient: Any, sign_in: Any
) -> None:
    quiet = chair_session(nurse, patient, site, "Chair 1")
    dbp_112(chair_session(nurse_b, make_patient(nurse_b, family_name="North"), second_site, "N1"), nurse_b)
    html = page(client_for(sign_in, nurse), f"/sessions/{quiet.pk}/")
    text = re.sub(r"<[^>]+>", " ", html)  # what the page shows (a token in an attribute may hold "N1")
    assert 'id="critical-banner"' not in html and not re.search(r"\bN1\b", text)


# --------------------------------------------------------------------------- suicidality alerts


@pytest.fixture
def item9_alert(patient: Any, prescriber: Any, nurse: Any) -> SafetyAlert:
    """A PHQ-9 with item 9 = 2 entered for a patient whose prescriber is the only recipient."""
    patient.prescriber = prescriber
    patient.save()
    measures.record_administration(user=nurse, patient=patient, instrument="phq9", answers=ITEM9)
    alert = SafetyAlert.objects.get()
    assert set(alert.recipients.all()) == {prescriber}
    return alert


def test_an_item9_alert_is_on_the_home_page_of_every_clinician_of_the_site(
    item9_alert: SafetyAlert,
    nurse: Any,
    prescriber: Any,
    nurse_b: Any,
    outsider: Any,
    make_user: Any,
    org: Any,
    site: Any,
    sign_in: Any,
) -> None:
    colleague = make_user("nurse-colleague", org, "nurse", [site])  # not a recipient, not on duty
    for person in (prescriber, nurse, colleague):
        html = page(client_for(sign_in, person), "/")
        shown = banner(html, "critical-alerts")
        assert "SUICIDALITY · Main Street" in shown and "item 9" in shown.lower()
        assert "Examplesson, Testa" in shown and f'action="/alerts/{item9_alert.pk}/acknowledge/"' in shown
        assert NOTHING not in html
        assert 'id="safety-alerts"' not in html  # shown once, in the banner
    for person in (nurse_b, outsider):
        html = page(client_for(sign_in, person), "/")
        assert "Examplesson" not in html and 'id="critical-alerts"' not in html


def test_another_sites_clinician_cannot_acknowledge_it_a_colleague_of_the_site_can(
    item9_alert: SafetyAlert, nurse: Any, nurse_b: Any, prescriber: Any, sign_in: Any
) -> None:
    stranger = client_for(sign_in, nurse_b)
    html = page(stranger, "/")
    stranger.post(
        f"/alerts/{item9_alert.pk}/acknowledge/",
        {"note": "Not my patient but acknowledging", "csrfmiddlewaretoken": token(html)},
    )
    item9_alert.refresh_from_db()
    assert item9_alert.acknowledged_at is None
    client = client_for(sign_in, nurse)
    html = page(client, "/")
    client.post(
        f"/alerts/{item9_alert.pk}/acknowledge/",
        {"note": "Phoned the patient: safe, safety plan reviewed", "csrfmiddlewaretoken": token(html)},
    )
    item9_alert.refresh_from_db()
    assert item9_alert.acknowledged_by == nurse
    for person in (nurse, prescriber):
        html = page(client_for(sign_in, person), "/")
        assert 'id="critical-alerts"' not in html and NOTHING in html


def test_the_session_page_shows_this_patients_item9_alert_and_acknowledging_comes_back_here(
    item9_alert: SafetyAlert, nurse: Any, patient: Any, site: Any, sign_in: Any
) -> None:
    session = chair_session(nurse, patient, site, "Chair 2")
    client = client_for(sign_in, nurse)
    html = page(client, f"/sessions/{session.pk}/")
    shown = banner(html, "critical-banner")
    assert (
        "SUICIDALITY · this patient" in shown and f'action="/alerts/{item9_alert.pk}/acknowledge/"' in shown
    )
    response = client.post(
        f"/alerts/{item9_alert.pk}/acknowledge/",
        {
            "note": "Asked about safety; prescriber informed",
            "next": f"/sessions/{session.pk}/",
            "csrfmiddlewaretoken": token(html),
        },
    )
    assert response["Location"] == f"/sessions/{session.pk}/"
    assert 'id="critical-banner"' not in page(client, f"/sessions/{session.pk}/")


def test_acknowledging_never_redirects_to_another_host(
    item9_alert: SafetyAlert, nurse: Any, sign_in: Any
) -> None:
    client = client_for(sign_in, nurse)
    html = page(client, "/")
    response = client.post(
        f"/alerts/{item9_alert.pk}/acknowledge/",
        {
            "note": "Phoned the patient, safe",
            "next": "https://evil.example/",
            "csrfmiddlewaretoken": token(html),
        },
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_other_patients_item9_alerts_are_counted_on_the_session_page_without_names(
    item9_alert: SafetyAlert, nurse: Any, site: Any, make_patient: Any, sign_in: Any
) -> None:
    session = chair_session(nurse, make_patient(nurse, family_name="Inthechair"), site, "Chair 4")
    shown = banner(page(client_for(sign_in, nurse), f"/sessions/{session.pk}/"), "critical-banner")
    assert "1 suicidality alert for other patients of your sites is open" in shown
    assert "Examplesson" not in shown


# --------------------------------------------------------------------------- live board


def test_the_board_banner_names_chair_reading_and_time_not_the_patient(
    chair_alert: SessionAlert,
    item9_alert: SafetyAlert,
    nurse: Any,
    site: Any,
    nurse_b: Any,
    second_site: Any,
    make_patient: Any,
    sign_in: Any,
) -> None:
    dbp_112(chair_session(nurse_b, make_patient(nurse_b, family_name="North"), second_site, "N1"), nurse_b)
    html = page(client_for(sign_in, nurse), "/board/main/")
    shown = banner(html, "board-banner")
    assert (
        "1 critical alert not acknowledged" in shown
        and "<strong>Chair 3</strong>" in shown
        and "BP 150/112" in shown
    )
    assert f'data-since="{timezone.localtime(chair_alert.raised_at, site.zone).isoformat()}"' in shown
    assert ">12 min</span>" in shown
    assert f'href="/sessions/{chair_alert.session_id}/#critical-banner"' in shown
    assert "1 suicidality alert</strong> for patients of this site is not acknowledged" in shown
    assert "Examplesson" not in shown and "N1" not in shown  # no names; not another site's chairs
    entry = AuditEntry.objects.filter(category="live-board").latest("seq")
    assert entry.detail == "live board opened: 1 active chair(s), 2 open critical alert(s)"


def _feed(site: Any, user: Any) -> board.BoardFeed:
    return board.BoardFeed(site=site, user_id=user.pk, session_key="k")


def test_the_board_stream_pushes_the_banner_when_an_alert_opens_and_when_it_is_acknowledged(
    nurse: Any, patient: Any, site: Any
) -> None:
    session = chair_session(nurse, patient, site, "Chair 5")
    feed = _feed(site, nurse)
    opening = feed.opening()
    assert "event: banner\ndata: \n" in "".join(opening)  # the banner is empty: nothing open
    assert feed.poll() == []
    alert = dbp_112(session, nurse, minutes_ago=1)
    events = feed.poll()
    pushed = [e for e in events if e.startswith("event: banner\n")]
    assert len(pushed) == 1 and "Chair 5" in pushed[0] and "critical alert not acknowledged" in pushed[0]
    assert any(e.startswith(f"event: chair-{session.pk}\n") for e in events)  # the card changes as before
    assert feed.poll() == []
    reading_services.acknowledge_alert(user=nurse, alert_id=alert.pk, note="Repeat BP, prescriber told")
    pushed = [e for e in feed.poll() if e.startswith("event: banner\n")]
    assert pushed == ["event: banner\ndata: \n\n"]  # cleared


def test_the_board_stream_pushes_the_banner_when_an_item9_alert_opens(
    nurse: Any, patient: Any, prescriber: Any, site: Any
) -> None:
    chair_session(nurse, patient, site, "Chair 5")
    feed = _feed(site, nurse)
    feed.opening()
    with time_machine.travel(timezone.now() + timedelta(seconds=1)):
        measures.record_administration(user=nurse, patient=patient, instrument="phq9", answers=ITEM9)
    pushed = [e for e in feed.poll() if e.startswith("event: banner\n")]
    assert len(pushed) == 1 and "1 suicidality alert" in pushed[0] and "Examplesson" not in pushed[0]
