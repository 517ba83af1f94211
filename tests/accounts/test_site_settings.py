"""Administrators keep each site's hours, capacity, closures and crisis text. The site's safety-alert policy is
not theirs to change (prescribers, tests/accounts/test_alert_policy.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.test import Client
from tests.clock import clinic_today

from ketaclinic.accounts.models import Site, SiteClosure
from ketaclinic.audit.models import AuditEntry


def _form(**extra: str) -> dict[str, str]:
    """What the page posts."""
    data = {f"hours_{d}": "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
    data.update(nurse_capacity="3", crisis_resources="Call or text 988.")
    data.update(extra)
    return data


def test_admin_saves_hours_and_capacity_but_not_the_alert_policy(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    page = client.get(f"/accounts/sites/{site.pk}/")
    assert "alert_sbp_high_threshold" not in page.content.decode()
    assert f"/accounts/sites/{site.pk}/alerts/" in page.content.decode()
    response = client.post(
        f"/accounts/sites/{site.pk}/",
        _form(
            hours_sat="09:00-13:00",
            # an old form's alert fields are not the site settings' business any more
            alert_sbp_high_threshold="400",
            alert_sbp_high_source="x",
        ),
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.opening_hours["sat"] == [["09:00", "13:00"]] and "sun" not in site.opening_hours
    assert site.nurse_capacity == 3
    assert site.alert_overrides == {}
    entry = AuditEntry.objects.get(category="site-settings", user=admin, action="change")
    assert "alert_overrides" not in entry.after


def test_bad_hours_are_named_and_nothing_is_saved(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    before = dict(Site.objects.values("opening_hours", "nurse_capacity").get(pk=site.pk))
    response = client.post(f"/accounts/sites/{site.pk}/", _form(hours_mon="18:00-08:00", nurse_capacity="0"))
    assert response.status_code == 422
    errors = response.context["errors"]
    assert "opening is not before closing" in errors["hours.mon"]
    assert "1 to 100" in errors["nurse_capacity"]
    assert dict(Site.objects.values("opening_hours", "nurse_capacity").get(pk=site.pk)) == before


def test_closures_are_added_with_a_reason(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    day = clinic_today() + timedelta(days=10)
    assert (
        client.post(
            f"/accounts/sites/{site.pk}/closures/",
            {"action": "closure", "day": day.isoformat(), "reason": ""},
        ).status_code
        == 422
    )
    client.post(
        f"/accounts/sites/{site.pk}/closures/",
        {"action": "closure", "day": day.isoformat(), "reason": "Holiday"},
    )
    assert SiteClosure.objects.get(site=site).day == day


def test_clinical_roles_and_other_organizations_cannot_edit_sites(
    nurse: Any, admin: Any, other_site: Any, site: Any, sign_in: Any
) -> None:
    assert sign_in(Client(), nurse).get(f"/accounts/sites/{site.pk}/").status_code == 403
    assert sign_in(Client(), admin).get(f"/accounts/sites/{other_site.pk}/").status_code == 404
