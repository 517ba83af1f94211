"""A site's safety-alert settings (issue 13, point 6): only a prescriber of the site changes them, within the
floors and ceilings of clinical/alerts.py; loss of consciousness, SpO2 and breathing-rate alerts stay on; each
change is audited and shown with who made it and when. Administrators and nurses read them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from ketaclinic.accounts.models import SafetySettingChange, Site
from ketaclinic.audit.models import AuditEntry
from ketaclinic.clinical.alerts import AlertCode

POLICY = "Clinic BP policy 2026-03, section 4"


def page_url(site: Any) -> str:
    return f"/accounts/sites/{site.pk}/alerts/"


def change_url(site: Any) -> str:
    return f"/accounts/sites/{site.pk}/alerts/change/"


def signed_in(user: Any, sign_in: Any) -> tuple[Any, str]:
    """A client that enforces CSRF, and a real token from a page (every page has the sign-out form)."""
    client = sign_in(Client(enforce_csrf_checks=True), user)
    html = client.get("/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return client, token


def table(token: str, **rows: dict[str, str]) -> dict[str, str]:
    """What the page posts: every rule's row, on and at its default, with ``rows`` changing some."""
    data = {"csrfmiddlewaretoken": token}
    for code in AlertCode:
        row = {"threshold": "", "severity": "", "source": "", "enabled": "on", **rows.get(code.value, {})}
        data[f"alert_{code.value}_threshold"] = row["threshold"]
        data[f"alert_{code.value}_severity"] = row["severity"]
        data[f"alert_{code.value}_source"] = row["source"]
        if row["enabled"] == "on":
            data[f"alert_{code.value}_enabled"] = "on"
    return data


def test_a_prescriber_makes_an_alert_more_sensitive_and_the_change_is_audited_and_shown(
    prescriber: Any, site: Any, sign_in: Any
) -> None:
    client, token = signed_in(prescriber, sign_in)
    response = client.post(change_url(site), table(token, sbp_high={"threshold": "170", "source": POLICY}))
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.alert_overrides == {"sbp_high": {"source": POLICY, "threshold": 170}}
    entry = AuditEntry.objects.get(category="alert-policy", user=prescriber, action="change")
    assert entry.object_id == str(site.pk)
    assert '"sbp_high":{}' in entry.before.replace(" ", "") and '"threshold":170' in entry.after
    change = SafetySettingChange.objects.get(site=site, setting="sbp_high")
    assert (change.before, change.after, change.changed_by) == (
        {},
        {"source": POLICY, "threshold": 170},
        prescriber,
    )
    html = client.get(page_url(site)).content.decode()
    row = html.split('id="rule-sbp_high"', 1)[1].split("</tr>", 1)[0]
    assert "SBP ≥ 170 mmHg · critical" in row and "clinic's change" in row and POLICY in row
    assert "Prescriber1" in row  # who changed it (and when, beside it)
    assert "140–180 mmHg (lower fires sooner)" in row and "Always on" in row
    history = html.split('id="alert-history"', 1)[1]
    assert "Systolic BP high" in history and "reference default" in history and "170 mmHg" in history
    # Posting the same table again changes nothing and adds no history.
    client.post(change_url(site), table(token, sbp_high={"threshold": "170", "source": POLICY}))
    assert SafetySettingChange.objects.filter(site=site).count() == 1
    # Back to the reference default.
    client.post(change_url(site), table(token))
    site.refresh_from_db()
    assert site.alert_overrides == {}
    latest = SafetySettingChange.objects.filter(site=site).first()
    assert latest is not None and latest.after == {}


def test_sbp_400_is_refused_naming_the_ceiling(prescriber: Any, site: Any, sign_in: Any) -> None:
    client, token = signed_in(prescriber, sign_in)
    response = client.post(change_url(site), table(token, sbp_high={"threshold": "400", "source": POLICY}))
    assert response.status_code == 422
    message = response.context["errors"]["alerts.sbp_high"]
    assert "400 mmHg is above the ceiling of 180 mmHg" in message and "Table 6" in message
    assert 'value="400"' in response.content.decode()  # what was typed is shown again
    site.refresh_from_db()
    assert site.alert_overrides == {} and not SafetySettingChange.objects.exists()
    assert not AuditEntry.objects.filter(category="alert-policy").exists()


def test_spo2_breathing_and_consciousness_alerts_cannot_be_switched_off(
    prescriber: Any, site: Any, sign_in: Any
) -> None:
    client, token = signed_in(prescriber, sign_in)
    page = client.get(page_url(site)).content.decode()
    spo2_row = page.split('id="rule-spo2_low"', 1)[1].split("</tr>", 1)[0]
    assert 'type="checkbox"' not in spo2_row and "Always on" in spo2_row
    # A forged post that leaves the "on" out.
    off = {"enabled": "", "source": POLICY}
    response = client.post(
        change_url(site), table(token, spo2_low=off, rr_low=off, loss_of_consciousness=off)
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    for code in ("spo2_low", "rr_low", "loss_of_consciousness"):
        assert "cannot be switched off" in errors[f"alerts.{code}"]
    site.refresh_from_db()
    assert site.alert_overrides == {}


def test_a_placeholder_source_and_a_lowered_severity_are_refused(
    prescriber: Any, site: Any, sign_in: Any
) -> None:
    client, token = signed_in(prescriber, sign_in)
    response = client.post(
        change_url(site),
        table(
            token,
            sbp_high={"threshold": "170", "source": "x"},
            sbp_rise={"severity": "info", "source": POLICY},
        ),
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert "'x' is not a reference" in errors["alerts.sbp_high"]
    assert "lowered to info" in errors["alerts.sbp_rise"]


def test_a_warning_may_be_switched_off_with_a_source(prescriber: Any, site: Any, sign_in: Any) -> None:
    client, token = signed_in(prescriber, sign_in)
    response = client.post(
        change_url(site), table(token, hr_low={"enabled": "", "source": "Athletes' clinic policy 2026"})
    )
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.alert_overrides["hr_low"] == {"source": "Athletes' clinic policy 2026", "enabled": False}


@pytest.mark.parametrize("role", ["nurse", "admin"])
def test_nurses_and_administrators_read_but_cannot_change(
    role: str, request: pytest.FixtureRequest, site: Any, sign_in: Any
) -> None:
    user = request.getfixturevalue(role)
    client, token = signed_in(user, sign_in)
    page = client.get(page_url(site))
    assert page.status_code == 200
    html = page.content.decode()
    assert "Only a prescriber of this site may change these settings" in html
    assert "alert_sbp_high_threshold" not in html
    response = client.post(change_url(site), table(token, sbp_high={"threshold": "400", "source": "x"}))
    assert response.status_code == 403 and "Not available to your role" in response.content.decode()
    site.refresh_from_db()
    assert site.alert_overrides == {}


def test_front_desk_cannot_open_the_page(front_desk: Any, site: Any, sign_in: Any) -> None:
    client, _ = signed_in(front_desk, sign_in)
    assert client.get(page_url(site)).status_code == 403


def test_a_prescriber_of_another_site_is_refused(prescriber: Any, second_site: Any, sign_in: Any) -> None:
    client, token = signed_in(prescriber, sign_in)
    assert client.get(page_url(second_site)).status_code == 404
    response = client.post(
        change_url(second_site), table(token, sbp_high={"threshold": "170", "source": POLICY})
    )
    assert response.status_code == 404
    assert Site.objects.get(pk=second_site.pk).alert_overrides == {}


def test_another_organization_gets_404(
    prescriber: Any, outsider: Any, other_site: Any, site: Any, make_user: Any, other_org: Any, sign_in: Any
) -> None:
    client, token = signed_in(prescriber, sign_in)
    assert client.get(page_url(other_site)).status_code == 404
    assert client.post(change_url(other_site), table(token)).status_code == 404
    assert signed_in(outsider, sign_in)[0].get(page_url(site)).status_code == 404
    elsewhere = make_user("prescriber9", other_org, "prescriber", [other_site])
    client, token = signed_in(elsewhere, sign_in)
    response = client.post(change_url(site), table(token, sbp_high={"threshold": "170", "source": POLICY}))
    assert response.status_code == 404
    assert Site.objects.get(pk=site.pk).alert_overrides == {}


def test_a_stored_setting_outside_the_limits_is_marked_not_applied(
    nurse: Any, site: Any, sign_in: Any
) -> None:
    site.alert_overrides = {
        "sbp_high": {"threshold": 400, "source": "x"},
        "spo2_low": {"enabled": False, "source": "x"},
    }
    site.save()
    client, _ = signed_in(nurse, sign_in)
    html = client.get(page_url(site)).content.decode()
    row = html.split('id="rule-sbp_high"', 1)[1].split("</tr>", 1)[0]
    assert "SBP ≥ 180 mmHg · critical" in row and "A stored change is not applied" in row
    assert "400 mmHg is above the ceiling of 180 mmHg" in row
    spo2 = html.split('id="rule-spo2_low"', 1)[1].split("</tr>", 1)[0]
    assert "SpO2 &lt; 92% · critical" in spo2 and "cannot be switched off" in spo2


def test_the_menu_leads_each_clinician_to_their_sites(
    nurse: Any, admin: Any, site: Any, second_site: Any, sign_in: Any
) -> None:
    client, _ = signed_in(nurse, sign_in)
    response = client.get("/accounts/alerts/")
    assert response.status_code == 302 and response["Location"] == page_url(site)
    client, _ = signed_in(admin, sign_in)
    html = client.get("/accounts/alerts/").content.decode()
    assert page_url(site) in html and page_url(second_site) in html
