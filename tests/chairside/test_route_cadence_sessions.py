"""IM and sublingual sessions are reminded to take readings and flagged when one is missed (issue 13, point 7:
"IM and sublingual sessions get no vital-sign reminders; an IM dose peaks at 5–15 min"). The sweep the worker
runs every minute raises the overdue alert, as for IV and esketamine."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from ketaclinic.chairside import services
from ketaclinic.chairside.jobs import sweep
from ketaclinic.chairside.models import SessionAlert

from .conftest import reading


def _dosed(nurse: Any, patient: Any, protocol_id: str, t0: Any, dose_mg: int) -> Any:
    session = services.schedule_session(
        user=nurse,
        patient=patient,
        protocol_id=protocol_id,
        scheduled_at=t0 - timedelta(minutes=30),
        planned_dose_mg=dose_mg,
    )
    services.transition(user=nurse, session=session, to="checked_in", at=t0 - timedelta(minutes=25))
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 - timedelta(minutes=5), 126, 80)
    )
    # The dose itself (gate, injection or tablet) is another part of the session's tests: here the session is
    # simply in monitoring with its first dose at t0, which is all the cadence reads.
    session.status, session.dose_started_at = "monitoring", t0
    session.save()
    return session


@pytest.mark.parametrize(
    ("protocol_id", "dose_mg", "due_min", "label"),
    [
        ("im-clinic-template", 35, 20, "every 10 min in the first 60 min after the dose"),
        ("sl-clinic-template", 10, 25, "every 15 min until discharge"),
    ],
)
def test_a_missed_reading_raises_an_overdue_alert(
    consented: Any, nurse: Any, t0: Any, protocol_id: str, dose_mg: int, due_min: int, label: str
) -> None:
    session = _dosed(nurse, consented, protocol_id, t0, dose_mg)
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 + timedelta(minutes=10), 132, 84)
    )
    due = services.next_due(session, now=t0 + timedelta(minutes=11))
    assert due is not None and due.label == label and due.due_at == t0 + timedelta(minutes=due_min)
    assert not due.confirmed and "unconfirmed" in due.source
    # Within the 5-minute grace: nothing yet.
    with time_machine.travel(t0 + timedelta(minutes=due_min + 5), tick=False):
        sweep({"repeat": False})
    assert not SessionAlert.objects.filter(session=session, code="reading_overdue").exists()
    with time_machine.travel(t0 + timedelta(minutes=due_min + 6), tick=False):
        sweep({"repeat": False})
    alert = SessionAlert.objects.get(session=session, code="reading_overdue")
    assert f"the {label} reading was due 6 min ago" in alert.message
    assert alert.severity == "info" and not alert.confirmed


def test_an_im_session_after_the_first_hour_is_read_every_15_minutes(
    consented: Any, nurse: Any, t0: Any
) -> None:
    session = _dosed(nurse, consented, "im-clinic-template", t0, 35)
    services.record_observation(
        user=nurse, session=session, reading=reading(t0 + timedelta(minutes=60), 130, 82)
    )
    due = services.next_due(session, now=t0 + timedelta(minutes=61))
    assert due is not None and due.due_at == t0 + timedelta(minutes=75)
    assert due.label == "every 15 min until discharge"
