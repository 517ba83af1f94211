"""Administrators keep each site's hours, capacity, closures, crisis text and alert policy; sessions use it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.test import Client

from ketaclinic.accounts.models import Site, SiteClosure
from ketaclinic.audit.models import AuditEntry


def _form(**extra: str) -> dict[str, str]:
    """What the page posts: every rule's "on" box is ticked unless the admin unticks it."""
    from ketaclinic.clinical.alerts import AlertCode

    data = {f"hours_{d}": "08:00-18:00" for d in ("mon", "tue", "wed", "thu", "fri")}
    data.update({f"alert_{code.value}_enabled": "on" for code in AlertCode})
    data.update(nurse_capacity="3", crisis_resources="Call or text 988.")
    data.update(extra)
    return data


def test_admin_saves_hours_capacity_and_a_site_alert_policy(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    response = client.post(
        f"/accounts/sites/{site.pk}/",
        _form(
            hours_sat="09:00-13:00",
            alert_sbp_high_threshold="170",
            alert_sbp_high_enabled="on",
            alert_sbp_high_source="Clinic BP policy 2026-03",
        ),
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.opening_hours["sat"] == [["09:00", "13:00"]] and "sun" not in site.opening_hours
    assert site.nurse_capacity == 3
    assert site.alert_overrides["sbp_high"] == {"source": "Clinic BP policy 2026-03", "threshold": 170}
    assert AuditEntry.objects.filter(category="site-settings", user=admin, action="change").exists()


def test_a_changed_rule_needs_its_policy_and_bad_hours_are_named(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    before = dict(Site.objects.values("opening_hours", "alert_overrides").get(pk=site.pk))
    response = client.post(
        f"/accounts/sites/{site.pk}/", _form(hours_mon="18:00-08:00", alert_sbp_high_threshold="170")
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert (
        "hours.mon" in errors
        and "alerts.sbp_high" in errors
        and "needs a source" in errors["alerts.sbp_high"]
    )
    assert dict(Site.objects.values("opening_hours", "alert_overrides").get(pk=site.pk)) == before


def test_closures_are_added_with_a_reason(admin: Any, site: Any, sign_in: Any) -> None:
    client = sign_in(Client(), admin)
    day = date.today() + timedelta(days=10)
    assert (
        client.post(
            f"/accounts/sites/{site.pk}/", {"action": "closure", "day": day.isoformat(), "reason": ""}
        ).status_code
        == 422
    )
    client.post(
        f"/accounts/sites/{site.pk}/", {"action": "closure", "day": day.isoformat(), "reason": "Holiday"}
    )
    assert SiteClosure.objects.get(site=site).day == day


def test_clinical_roles_and_other_organizations_cannot_edit_sites(
    nurse: Any, admin: Any, other_site: Any, site: Any, sign_in: Any
) -> None:
    assert sign_in(Client(), nurse).get(f"/accounts/sites/{site.pk}/").status_code == 403
    assert sign_in(Client(), admin).get(f"/accounts/sites/{other_site.pk}/").status_code == 404
