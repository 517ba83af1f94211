"""The live board: scoping, the chair card, the change feed and the event stream (issue 5 item 6)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.test import AsyncClient, Client
from django.urls import resolve
from django.utils import timezone

from ketaclinic.accounts.models import Chair
from ketaclinic.audit.models import AuditEntry
from ketaclinic.chairside import board
from ketaclinic.chairside.models import Observation, SessionAlert, SessionEvent, TreatmentSession
from ketaclinic.core.middleware import SESSION_LAST_SEEN

NOW = timezone.now().replace(microsecond=0)


def make_session(
    user: Any,
    patient: Any,
    site: Any,
    *,
    status: str = "monitoring",
    drug: str = "ketamine",
    route: str = "iv",
    protocol_id: str = "iv-trd-elektd",
    chair: str | None = "Chair 1",
    dose_started_at: datetime | None = None,
    checked_in_at: datetime | None = None,
) -> TreatmentSession:
    chair_obj = (
        Chair.objects.get_or_create(organization=site.organization, site=site, label=chair)[0]
        if chair
        else None
    )
    session = TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        chair=chair_obj,
        protocol_id=protocol_id,
        drug=drug,
        route=route,
        planned_dose_mg=Decimal("35.00"),
        scheduled_at=NOW - timedelta(hours=1),
        status=status,
        status_changed_at=NOW - timedelta(minutes=50),
        dose_started_at=dose_started_at,
        created_by=user,
    )
    if checked_in_at is not None:
        SessionEvent.objects.create(
            organization=site.organization,
            session=session,
            from_status="scheduled",
            to_status="checked_in",
            at=checked_in_at,
            by=user,
        )
    return session


def observe(session: TreatmentSession, user: Any, at: datetime, **values: Any) -> Observation:
    return Observation.objects.create(
        organization=session.organization, session=session, observed_at=at, entered_by=user, **values
    )


def alert(
    session: TreatmentSession, severity: str, code: str, *, acknowledged_by: Any = None
) -> SessionAlert:
    return SessionAlert.objects.create(
        organization=session.organization,
        session=session,
        code=code,
        severity=severity,
        message=f"{code} message",
        source="clinical.md §7.2",
        dedup_key=code,
        raised_at=NOW - timedelta(minutes=5),
        acknowledged_by=acknowledged_by,
        acknowledged_at=NOW if acknowledged_by else None,
    )


@pytest.fixture
def quick_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(board, "POLL_SECONDS", 0.02)
    monkeypatch.setattr(board, "SIGNED_IN_CHECK_SECONDS", 0.0)


def end_stream(client: Any, chunks: Any) -> bytes:
    """Sign out so the stream ends by itself, and read the rest (closing it halfway through the test client
    would close the test's database connection)."""
    client.logout()
    return b"".join(chunks)


def ticket_url(html: str) -> str:
    found = re.search(r'sse-connect="([^"]+)"', html)
    assert found, "the page names its stream"
    return found.group(1).replace("&amp;", "&")


# --------------------------------------------------------------------------- pure pieces


def test_sparkline_points_are_scaled_into_the_box() -> None:
    svg = board.sparkline([[100, 120, 110]], width=64, height=22)
    # pad 2, step (64-4)/2 = 30 → x 2, 32, 62; y = 2 + (120 - v)/(120 - 100) * 18 → 20, 2, 11
    assert 'points="2.0,20.0 32.0,2.0 62.0,11.0"' in svg
    assert "style" not in svg and "<script" not in svg


def test_sparkline_needs_two_points_and_skips_gaps() -> None:
    assert board.sparkline([[98]]) == ""
    svg = board.sparkline([[100, None, 102]], width=64, height=22)
    # flat-ish data (span 2 < 4) is widened to 99..103; x 2 and 62; y = 2 + (103 - v)/4 * 18 → 15.5, 6.5
    assert 'points="2.0,15.5 62.0,6.5"' in svg


def test_elapsed_text() -> None:
    assert board.elapsed_text(42) == "42 min"
    assert board.elapsed_text(65) == "1 h 05 min"
    assert board.elapsed_text(None) == "–"


def test_sse_event_puts_every_line_on_its_own_data_line() -> None:
    assert board.sse_event("chair-x", "<a>\n<b>") == "event: chair-x\ndata: <a>\ndata: <b>\n\n"


# --------------------------------------------------------------------------- scoping and the page


def test_board_lists_only_active_sessions_of_the_site(
    client: Client, sign_in: Callable[..., Any], nurse: Any, site: Any, second_site: Any, make_patient: Any
) -> None:
    here = make_patient(nurse, given_name="Active", family_name="Here", site=site)
    done = make_patient(nurse, given_name="Done", family_name="Already", site=site)
    later = make_patient(nurse, given_name="Later", family_name="Today", site=site)
    north = make_patient(nurse, given_name="North", family_name="Chairperson", site=site)
    make_session(nurse, here, site, status="monitoring", chair="Chair 1")
    make_session(nurse, done, site, status="discharged", chair="Chair 2")
    make_session(nurse, later, site, status="scheduled", chair="Chair 3")
    make_session(nurse, north, second_site, status="dosing", chair="Chair 1")
    sign_in(client, nurse)
    response = client.get("/board/main/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "Here, Active" in body and here.mrn in body
    for hidden in ("Already", "Today", "Chairperson"):
        assert hidden not in body
    assert "1 active chair" in body
    assert 'style="' not in body and "<script>" not in body


def test_other_organization_and_uncovered_sites_are_not_found(
    client: Client,
    sign_in: Callable[..., Any],
    nurse: Any,
    outsider: Any,
    site: Any,
    second_site: Any,
    patient: Any,
) -> None:
    make_session(nurse, patient, site)
    sign_in(client, outsider)
    assert client.get("/board/north/").status_code == 404  # our site: not found for another organization
    assert client.get("/board/north/stream/?ticket=x").status_code == 404
    own = client.get("/board/main/")  # the outsider's own organization also has a site "main"
    assert own.status_code == 200 and patient.family_name not in own.content.decode()
    sign_in(client, nurse)
    assert client.get("/board/north/").status_code == 404  # same organization, a site she does not cover


def test_front_desk_and_administrators_do_not_see_the_board(
    client: Client, sign_in: Callable[..., Any], front_desk: Any, admin: Any, site: Any
) -> None:
    for user in (front_desk, admin):
        sign_in(client, user)
        assert client.get("/board/main/").status_code == 403


def test_board_index_goes_to_the_only_site(client: Client, sign_in: Callable[..., Any], nurse: Any) -> None:
    sign_in(client, nurse)
    response = client.get("/board/")
    assert response.status_code == 302 and response["Location"] == "/board/main/"


def test_one_audit_query_per_board_open_and_none_per_event(
    client: Client, sign_in: Callable[..., Any], nurse: Any, site: Any, patient: Any, quick_stream: None
) -> None:
    session = make_session(nurse, patient, site, dose_started_at=NOW - timedelta(minutes=5))
    sign_in(client, nurse)
    before = AuditEntry.objects.count()
    page = client.get("/board/main/")
    entries = list(AuditEntry.objects.order_by("seq")[before:])
    assert [(e.action, e.category, e.object_type) for e in entries] == [("query", "live-board", "Site")]
    assert entries[0].detail == "live board opened: 1 active chair(s), 0 open critical alert(s)"
    stream = client.get(ticket_url(page.content.decode()))
    assert not stream.is_async  # the WSGI test client gets the plain generator
    chunks = iter(stream.streaming_content)
    next(chunks)
    observe(session, nurse, NOW, hr_bpm=80)
    feed_events = next(chunks)
    assert b"chair-" in feed_events
    assert end_stream(client, chunks).startswith(b"event: expired")
    assert AuditEntry.objects.count() == before + 1


# --------------------------------------------------------------------------- the card


def test_card_shows_latest_vitals_trend_overdue_and_worst_open_alert(
    nurse: Any, site: Any, patient: Any
) -> None:
    start = NOW - timedelta(minutes=30)
    session = make_session(nurse, patient, site, dose_started_at=start)
    observe(session, nurse, start - timedelta(minutes=5), sbp_mmhg=128, dbp_mmhg=80, hr_bpm=70, spo2_pct=98)
    observe(
        session,
        nurse,
        start + timedelta(minutes=5),
        sbp_mmhg=140,
        dbp_mmhg=90,
        hr_bpm=88,
        spo2_pct=97,
        rr_per_min=14,
        moaas=4,
    )
    observe(session, nurse, start + timedelta(minutes=6), sbp_mmhg=150, dbp_mmhg=92)  # a BP-only recheck
    alert(session, "warning", "sbp_rise")
    alert(session, "critical", "sbp_high")
    alert(session, "critical", "spo2_low", acknowledged_by=nurse)
    card = board.load_cards(site, NOW)[0]
    # IV during the infusion (no end set): next reading 10 min after the last one (dose + 6) → dose + 16;
    # overdue after the 5-min grace → dose + 21; now is dose + 30 → overdue.
    assert card.due is not None and card.due.due_at == start + timedelta(minutes=16)
    assert card.overdue and card.changes_at is None
    assert card.elapsed_min == 30 and card.since_label == "since dose"
    assert [(c.label, c.value, c.stale) for c in card.cells] == [
        ("BP", "150/92", False),
        ("HR", "88", True),  # from the reading at dose + 5, not the latest one
        ("SpO₂", "97", True),
        ("RR", "14", True),
        ("MOAA/S", "4", True),
    ]
    assert card.open_alerts == 2 and card.worst_severity == "critical"  # the acknowledged one is not open
    html = board.render_card(card, site, NOW)
    assert f'sse-swap="chair-{session.pk}"' in html and 'hx-swap="outerHTML"' in html
    assert "OVERDUE" in html and "2 alerts · critical" in html and "150/92" in html
    assert (
        f'class="stale" title="measured {(start + timedelta(minutes=5)).astimezone(site.zone):%H:%M}"' in html
    )
    assert "<polyline" in html and 'style="' not in html
    assert "Examplesson, Testa" in html and patient.mrn in html


def test_esketamine_card_counts_from_check_in_then_from_the_first_device(
    nurse: Any, site: Any, patient: Any
) -> None:
    checked_in = NOW - timedelta(minutes=20)
    session = make_session(
        nurse,
        patient,
        site,
        status="pre_dose",
        drug="esketamine",
        route="intranasal",
        protocol_id="esk-trd-label",
        checked_in_at=checked_in,
    )
    card = board.load_cards(site, NOW)[0]
    assert card.since == checked_in and card.since_label == "since check-in" and card.elapsed_min == 20
    assert card.due is not None and card.due.label == "baseline before dosing" and not card.overdue
    session.dose_started_at = NOW - timedelta(minutes=60)
    session.save()
    observe(session, nurse, NOW - timedelta(minutes=19), sbp_mmhg=140, dbp_mmhg=88)
    card = board.load_cards(site, NOW)[0]
    # the reading at dose + 41 covers the ~40-min checkpoint (window 5: ≥ dose + 35); next is 120 min
    assert card.due is not None and card.due.due_at == session.dose_started_at + timedelta(minutes=120)
    assert not card.overdue and card.changes_at == session.dose_started_at + timedelta(minutes=125)
    assert card.protocol.startswith("Esketamine nasal spray")


def test_an_im_session_is_reminded_every_10_minutes_in_the_first_hour(
    nurse: Any, site: Any, patient: Any
) -> None:
    """IM used to show "no default cadence" and never a reminder (issue 13, point 7)."""
    session = make_session(
        nurse,
        patient,
        site,
        route="im",
        protocol_id="im-clinic-template",
        dose_started_at=NOW - timedelta(minutes=10),
    )
    card = board.load_cards(site, NOW)[0]
    assert card.due is not None and card.due.due_at == session.dose_started_at + timedelta(minutes=10)
    assert card.due.label == "every 10 min in the first 60 min after the dose" and not card.due.confirmed
    assert card.due_note == ""


# --------------------------------------------------------------------------- the change feed


def _feed(site: Any, nurse: Any) -> board.BoardFeed:
    return board.BoardFeed(site=site, user_id=nurse.pk, session_key="k")


def test_feed_sends_a_changed_chair_only(nurse: Any, site: Any, patient: Any, make_patient: Any) -> None:
    one = make_session(nurse, patient, site, dose_started_at=NOW - timedelta(minutes=2))
    other = make_session(
        nurse,
        make_patient(nurse, given_name="Second"),
        site,
        chair="Chair 2",
        dose_started_at=NOW - timedelta(minutes=2),
    )
    feed = _feed(site, nurse)
    opening = feed.opening(NOW)
    assert opening[0].startswith("event: board\n") and opening[1].startswith("event: summary\n")
    assert feed.poll(NOW) == []
    observe(one, nurse, NOW, sbp_mmhg=133, dbp_mmhg=77)
    events = feed.poll(NOW)
    assert events[0].startswith(f"event: chair-{one.pk}\n") and "133/77" in events[0]
    assert f"chair-{other.pk}" not in "".join(events)
    assert events[-1].startswith("event: summary\n")
    assert feed.poll(NOW) == []
    alert(other, "critical", "hr_high")
    events = feed.poll(NOW)
    assert events[0].startswith(f"event: chair-{other.pk}\n") and "1 alert · critical" in events[0]
    SessionAlert.objects.filter(session=other).update(acknowledged_by=nurse, acknowledged_at=NOW)
    assert "no alerts" in feed.poll(NOW)[0]


def test_feed_redraws_when_a_chair_arrives_or_leaves(nurse: Any, site: Any, patient: Any) -> None:
    session = make_session(nurse, patient, site, dose_started_at=NOW - timedelta(minutes=2))
    feed = _feed(site, nurse)
    feed.opening(NOW)
    TreatmentSession.objects.filter(pk=session.pk).update(status="discharged", version=2)
    events = feed.poll(NOW)
    assert events[0].startswith("event: board\n") and "No patients in chairs" in events[0]


def test_feed_resends_a_card_when_its_reading_falls_due(nurse: Any, site: Any, patient: Any) -> None:
    start = NOW - timedelta(minutes=8)
    session = make_session(nurse, patient, site, dose_started_at=start)
    feed = _feed(site, nurse)
    feed.opening(NOW)
    assert feed.poll(start + timedelta(minutes=15)) == []  # due at +10, late only after +15 (grace 5)
    events = feed.poll(start + timedelta(minutes=15, seconds=1))
    assert events[0].startswith(f"event: chair-{session.pk}\n") and "OVERDUE" in events[0]
    assert feed.poll(start + timedelta(minutes=16)) == []  # once


# --------------------------------------------------------------------------- the stream


def test_stream_needs_the_ticket_of_this_site_and_session(
    client: Client, sign_in: Callable[..., Any], nurse: Any, site: Any, quick_stream: None
) -> None:
    sign_in(client, nurse)
    assert client.get("/board/main/stream/").status_code == 403
    forged = board.issue_ticket(user=nurse, site=site, session_key="someone-elses")
    assert client.get(f"/board/main/stream/?ticket={forged}").status_code == 403
    url = ticket_url(client.get("/board/main/").content.decode())
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/event-stream")
    chunks = iter(response.streaming_content)
    assert next(chunks).startswith(b"retry: 2000")
    assert end_stream(client, chunks).startswith(b"event: expired")


def test_asgi_stream_yields_an_event_after_a_new_observation(
    sign_in: Callable[..., Any], nurse: Any, site: Any, patient: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(board, "POLL_SECONDS", 0.05)
    session = make_session(nurse, patient, site, dose_started_at=NOW - timedelta(minutes=3))
    client = AsyncClient()
    sign_in(client, nurse)

    async def run() -> tuple[str, str]:
        page = await client.get("/board/main/")
        response = await client.get(ticket_url(page.content.decode()))
        assert response["Content-Type"].startswith("text/event-stream") and response.is_async
        chunks = response.streaming_content.__aiter__()
        first = await chunks.__anext__()
        await sync_to_async(observe)(session, nurse, timezone.now(), sbp_mmhg=171, dbp_mmhg=99, hr_bpm=91)
        second = await chunks.__anext__()
        await chunks.aclose()
        return (
            first.decode() if isinstance(first, bytes) else first,
            second.decode() if isinstance(second, bytes) else second,
        )

    first, second = async_to_sync(run)()
    assert first.startswith("retry: 2000\n\nevent: board\n") and "Examplesson, Testa" in first
    assert f"event: chair-{session.pk}\n" in second and "171/99" in second


def test_stream_does_not_keep_an_idle_session_alive_and_ends_when_it_expires(
    client: Client,
    sign_in: Callable[..., Any],
    nurse: Any,
    site: Any,
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(board, "POLL_SECONDS", 0.01)
    monkeypatch.setattr(board, "SIGNED_IN_CHECK_SECONDS", 0.0)
    sign_in(client, nurse)
    url = ticket_url(client.get("/board/main/").content.decode())
    session = client.session
    ten_minutes_ago = (timezone.now() - timedelta(minutes=10)).isoformat()
    session[SESSION_LAST_SEEN] = ten_minutes_ago
    session.save()
    response = client.get(url)
    assert client.session[SESSION_LAST_SEEN] == ten_minutes_ago  # the stream did not refresh the idle clock
    chunks = iter(response.streaming_content)
    next(chunks)
    settings.KETACLINIC_IDLE_TIMEOUT = timedelta(minutes=9)  # now it is past the idle limit
    last = b"".join(chunks).decode()  # the generator ends by itself
    assert last.startswith("event: expired\n") and "Your session has ended" in last


def test_the_stream_view_is_marked_as_background_traffic() -> None:
    # SessionTimeoutMiddleware can skip the idle-clock refresh for views marked so (see the report).
    match = resolve("/board/main/stream/")
    assert match.func.background is True and match.url_name == "board_stream"
    assert not getattr(resolve("/board/main/").func, "background", False)


def test_stream_ends_when_the_user_signs_out(
    client: Client, sign_in: Callable[..., Any], nurse: Any, site: Any
) -> None:
    sign_in(client, nurse)
    feed = board.BoardFeed(site=site, user_id=nurse.pk, session_key=client.session.session_key)
    assert feed.signed_in()
    client.logout()
    assert not feed.signed_in()
