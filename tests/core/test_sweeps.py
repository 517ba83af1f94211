"""The safety sweeps always run (issue 13, point 8): ``ketaclinic serve`` runs the job loop in a thread, each
sweep leaves a heartbeat, and the home page of clinicians and administrators (and ``ketaclinic check``)
says plainly when the sweeps have not run for three of their intervals."""

from __future__ import annotations

import io
import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.management import call_command
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from ketaclinic.chairside.models import SessionAlert, TreatmentSession
from ketaclinic.core import jobs
from ketaclinic.core.models import Heartbeat, Job

NOTICE = "Background safety checks are not running"


def home(sign_in: Any, user: Any) -> str:
    response = sign_in(Client(enforce_csrf_checks=True), user).get("/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_home_page_says_so_when_the_sweeps_never_ran_and_not_after_they_run(
    nurse: Any, prescriber: Any, admin: Any, front_desk: Any, sign_in: Any
) -> None:
    for person in (nurse, prescriber, admin):
        html = home(sign_in, person)
        assert NOTICE in html and "not escalated" in html and "ketaclinic worker" in html
        assert "never checked on this system" in html
    assert NOTICE not in home(sign_in, front_desk)  # the front desk cannot act on it
    jobs.ensure_recurring()
    assert jobs.run_due_jobs() == 2  # both sweeps were due
    assert set(Heartbeat.objects.values_list("name", flat=True)) == {"chairside.sweep", "measures.sweep"}
    for person in (nurse, prescriber, admin):
        assert NOTICE not in home(sign_in, person)


def test_the_notice_comes_back_when_a_sweep_stops_for_three_intervals(nurse: Any, sign_in: Any) -> None:
    jobs.ensure_recurring()
    jobs.run_due_jobs()
    start = timezone.now()
    with time_machine.travel(start + timedelta(minutes=2, seconds=50)):
        assert jobs.sweeps_status().running
        assert NOTICE not in home(sign_in, nurse)
    with time_machine.travel(start + timedelta(minutes=3, seconds=10)):  # every minute; 3 missed
        status = jobs.sweeps_status()
        assert not status.running and [s.kind for s in status.stopped] == ["chairside.sweep"]
        html = home(sign_in, nurse)
        assert NOTICE in html and "Overdue readings and unacknowledged session alerts: last checked" in html
    with time_machine.travel(start + timedelta(minutes=3, seconds=20)):
        assert jobs.run_due_jobs() == 1  # the chairside sweep, due again since one minute
        assert NOTICE not in home(sign_in, nurse)


def test_a_failed_sweep_leaves_no_heartbeat(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(payload: dict[str, Any]) -> None:
        raise OperationalError("database is locked")

    monkeypatch.setitem(jobs.HANDLERS, "chairside.sweep", broken)
    jobs.ensure_recurring()
    jobs.run_due_jobs()
    assert list(Heartbeat.objects.values_list("name", flat=True)) == ["measures.sweep"]
    assert not jobs.sweeps_status().running


def test_a_sweep_whose_job_failed_for_good_is_queued_again_by_the_loop(
    db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Inside the test's transaction Django would close the connection after the round (it is not in
    # autocommit), which on PostgreSQL ends the test's transaction: keep it.
    monkeypatch.setattr(jobs, "close_old_connections", lambda: None)
    monkeypatch.setattr(jobs.connection, "close", lambda: None)
    jobs.ensure_recurring()
    Job.objects.filter(kind="chairside.sweep").update(finished_at=timezone.now(), error="gave up")
    stop = threading.Event()
    ran: list[int] = []

    def once(count: int) -> None:
        ran.append(count)
        stop.set()

    jobs.work(interval=0.01, stop=stop, on_ran=once)
    assert ran == [2] and Heartbeat.objects.filter(name="chairside.sweep").exists()


def test_the_loop_survives_a_database_error(db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    stop = threading.Event()
    real = jobs.run_due_jobs

    def flaky(limit: int = 100) -> int:
        calls.append("round")
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        stop.set()
        return real(limit)

    monkeypatch.setattr(jobs, "run_due_jobs", flaky)
    monkeypatch.setattr(jobs, "close_old_connections", lambda: None)  # keep the test's transaction
    monkeypatch.setattr(jobs.connection, "close", lambda: None)
    jobs.work(interval=0.01, stop=stop)
    assert calls == ["round", "round"] and Heartbeat.objects.count() == 2


def test_the_sweeps_overdue_alert_and_escalation_run_under_the_loop(
    nurse: Any, prescriber: Any, patient: Any, site: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the heartbeat stands for: an unacknowledged critical alert reaches the prescriber."""
    session = TreatmentSession.objects.create(
        organization=site.organization,
        patient=patient,
        site=site,
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=35,
        scheduled_at=timezone.now() - timedelta(hours=1),
        status="monitoring",
        dose_started_at=timezone.now() - timedelta(minutes=40),
        created_by=nurse,
    )
    alert = SessionAlert.objects.create(
        organization=site.organization,
        session=session,
        code="dbp_high",
        severity="critical",
        message="BP 150/112",
        source="clinical.md §7.3",
        dedup_key="dbp",
        raised_at=timezone.now() - timedelta(minutes=16),
    )
    jobs.ensure_recurring()
    jobs.run_due_jobs()
    alert.refresh_from_db()
    assert alert.escalated_at is not None
    assert prescriber.notifications.filter(kind="session-alert").exists()


# --------------------------------------------------------------------------- ketaclinic serve


def _serve(monkeypatch: pytest.MonkeyPatch, *args: str) -> list[bool]:
    """Run ``ketaclinic serve`` with uvicorn replaced by a wait for the first heartbeat (at most 20 s)."""
    import uvicorn

    seen: list[bool] = []

    def fake_run(*a: Any, **kw: Any) -> None:
        deadline = time.monotonic() + (20 if "--no-sweeps" not in args else 1.5)
        while time.monotonic() < deadline:
            if Heartbeat.objects.filter(name="chairside.sweep").exists():
                seen.append(True)
                return
            time.sleep(0.1)
        seen.append(False)

    monkeypatch.setattr(uvicorn, "run", fake_run)
    call_command("serve", *args, stdout=io.StringIO())
    return seen


def test_serve_runs_the_sweeps_in_a_thread_and_stops_it(
    transactional_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = {t.name for t in threading.enumerate()}
    assert _serve(monkeypatch) == [True]  # a sweep ran while uvicorn was serving
    assert "ketaclinic-jobs" not in {t.name for t in threading.enumerate()} - before  # stopped on exit
    assert jobs.sweeps_status().running


def test_serve_with_no_sweeps_runs_none(transactional_db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _serve(monkeypatch, "--no-sweeps") == [False]
    assert not Heartbeat.objects.exists()


# --------------------------------------------------------------------------- ketaclinic check


def test_check_reports_whether_the_sweeps_run(db: Any) -> None:
    def sweeps() -> str:
        out = io.StringIO()
        call_command("clinic_check", "--json", stdout=out)
        return str(json.loads(out.getvalue())["background_sweeps"])

    assert sweeps().startswith("NOT RUNNING (chairside.sweep never ran, measures.sweep never ran)")
    jobs.ensure_recurring()
    jobs.run_due_jobs()
    assert sweeps().startswith("ok (last ran ")
