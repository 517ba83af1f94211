"""Break-glass: off by default; when on, a reasoned, time-limited grant that alerts every admin."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.models import Notification


@pytest.fixture
def far_patient(org: Any, second_site: Any, make_user: Any, make_patient: Any) -> Any:
    there = make_user("nurse-north", org, "nurse", [second_site])
    return make_patient(there, given_name="Far", family_name="Away")


def test_break_glass_is_off_by_default(nurse: Any, sign_in: Any, far_patient: Any) -> None:
    nurse.break_glass_allowed = True
    nurse.save()
    client = sign_in(Client(), nurse)
    page = client.get(f"/patients/{far_patient.pk}/break-glass/")
    assert page.status_code == 403 and b"not available" in page.content
    assert client.post(f"/patients/{far_patient.pk}/break-glass/", {"reason": "x" * 20}).status_code == 403
    assert client.get(f"/patients/{far_patient.pk}/").status_code == 302


def test_break_glass_opens_the_record_alerts_admins_and_is_audited(
    settings: Any, nurse: Any, admin: Any, sign_in: Any, far_patient: Any
) -> None:
    settings.KETACLINIC_BREAK_GLASS_ENABLED = True
    nurse.break_glass_allowed = True
    nurse.save()
    client = sign_in(Client(), nurse)
    too_short = client.post(f"/patients/{far_patient.pk}/break-glass/", {"reason": "urgent"})
    assert too_short.status_code == 200 and client.get(f"/patients/{far_patient.pk}/").status_code == 302
    response = client.post(
        f"/patients/{far_patient.pk}/break-glass/",
        {"reason": "Patient collapsed in the waiting room; need allergies"},
    )
    assert response.status_code == 302
    assert client.get(f"/patients/{far_patient.pk}/").status_code == 200
    alert = Notification.objects.get(recipient=admin, kind="break-glass")
    assert "collapsed" in alert.message
    assert AuditEntry.objects.filter(user=nurse, category="break-glass", patient=far_patient).exists()
    home = sign_in(Client(), admin).get("/")
    assert b"break-glass" in home.content


def test_break_glass_needs_a_prepared_account(
    settings: Any, nurse: Any, sign_in: Any, far_patient: Any
) -> None:
    settings.KETACLINIC_BREAK_GLASS_ENABLED = True
    page = sign_in(Client(), nurse).get(f"/patients/{far_patient.pk}/break-glass/")
    assert page.status_code == 403


def test_an_admin_prepares_a_break_glass_account_and_it_is_audited(
    admin: Any, nurse: Any, site: Any, sign_in: Any
) -> None:
    client = sign_in(Client(), admin)
    response = client.post(
        f"/accounts/users/{nurse.pk}/",
        {"action": "access", "role": "nurse", "sites": [site.pk], "break_glass_allowed": "on"},
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.break_glass_allowed
    change = AuditEntry.objects.get(category="account-privileges", action="change")
    assert '"break_glass_allowed":false' in change.before and '"break_glass_allowed":true' in change.after
