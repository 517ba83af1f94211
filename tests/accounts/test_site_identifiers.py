"""A site's address, phone, DEA registration and REMS certification, kept by administrators on the site's
settings page (issue 14 point 5), then used where they are printed: the REMS Patient Monitoring Form's setting
and monitoring-HCP fields, the controlled-drug register (as the registrant), and the pre-dose gate's
"setting certified" item."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.test import Client
from django.utils import timezone
from tests.accounts.test_staff_admin import csrf_client, post
from tests.clock import clinic_today

from ketaclinic.accounts.models import Site
from ketaclinic.audit.models import AuditEntry

HARBOR = {
    "address_line1": "12 Harbor Street",
    "address_line2": "Suite 3",
    "city": "Springfield",
    "state": "il",
    "zip_code": "62701",
    "phone": "(217) 555-0100",
    "dea_registration": "bh2345672",
    "rems_certified": "yes",
    "rems_certification_id": "REMS-SET-20417",
    "rems_certified_on": "2026-01-05",
}


def url(site: Any) -> str:
    return f"/accounts/sites/{site.pk}/identifiers/"


def registered(site: Any) -> Any:
    """The site with the identifiers above, saved directly (for the tests of where they are used)."""
    Site.objects.filter(pk=site.pk).update(
        address_line1="12 Harbor Street",
        address_line2="Suite 3",
        city="Springfield",
        state="IL",
        zip_code="62701",
        phone="(217) 555-0100",
        dea_registration="BH2345672",
        rems_certified=True,
        rems_certification_id="REMS-SET-20417",
        rems_certified_on=date(2026, 1, 5),
    )
    site.refresh_from_db()
    return site


def test_an_administrator_saves_the_registrant_details_and_they_are_audited(
    admin: Any, site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    form = client.get(f"/accounts/sites/{site.pk}/").content.decode()
    assert 'id="site-identifiers"' in form and url(site) in form
    response = post(client, token, url(site), **HARBOR)
    assert response.status_code == 302 and response["Location"] == f"/accounts/sites/{site.pk}/"
    site.refresh_from_db()
    assert site.address_lines == ["12 Harbor Street", "Suite 3", "Springfield, IL 62701"]
    assert (site.dea_registration, site.rems_certified, site.rems_certified_on) == (
        "BH2345672",
        True,
        date(2026, 1, 5),
    )
    entry = AuditEntry.objects.get(category="site-settings", user=admin)
    assert '"dea_registration":""' in entry.before.replace(" ", "")
    assert '"rems_certified_on":"2026-01-05"' in entry.after.replace(" ", "")
    page = client.get(f"/accounts/sites/{site.pk}/").content.decode()
    assert 'value="BH2345672"' in page and 'value="REMS-SET-20417"' in page and 'value="2026-01-05"' in page


def test_bad_registrant_details_are_named_and_nothing_is_saved(admin: Any, site: Any, sign_in: Any) -> None:
    client, token = csrf_client(admin, sign_in)
    tomorrow = (timezone.localdate(timezone.now(), site.zone) + timedelta(days=1)).isoformat()
    response = post(
        client,
        token,
        url(site),
        **{
            **HARBOR,
            "state": "XX",
            "zip_code": "6270",
            "phone": "555-0100",
            "dea_registration": "BH2345673",
            "rems_certification_id": "",
            "rems_certified_on": tomorrow,
            "city": "",
        },
    )
    assert response.status_code == 422
    errors = response.context["identity_errors"]
    assert "not a US state" in errors["state"]
    assert "5 digits" in errors["zip_code"]
    assert "10 digits" in errors["phone"]
    assert "fails its check digit (the last digit would be 2)" in errors["dea_registration"]
    assert "certification ID" in errors["rems_certification_id"]
    assert "is in the future" in errors["rems_certified_on"]
    assert "required for a postal address" in errors["city"]
    assert 'value="12 Harbor Street"' in response.content.decode()  # what was typed stays
    site.refresh_from_db()
    assert site.dea_registration == "" and site.rems_certified is None
    assert not AuditEntry.objects.filter(category="site-settings").exists()


def test_a_dea_registration_belongs_to_one_site_and_a_certification_needs_yes(
    admin: Any, site: Any, second_site: Any, sign_in: Any
) -> None:
    registered(site)
    client, token = csrf_client(admin, sign_in)
    response = post(client, token, url(second_site), dea_registration="BH2345672", rems_certification_id="X1")
    assert response.status_code == 422
    errors = response.context["identity_errors"]
    assert "already the registration of Main Street" in errors["dea_registration"]
    assert "choose 'certified'" in errors["rems_certified"]


def test_clinical_roles_are_refused_and_another_organization_finds_nothing(
    nurse: Any, prescriber: Any, admin: Any, site: Any, other_site: Any, sign_in: Any
) -> None:
    for user in (nurse, prescriber):
        client, token = csrf_client(user, sign_in)
        assert post(client, token, url(site), **HARBOR).status_code == 403
    client, token = csrf_client(admin, sign_in)
    assert post(client, token, url(other_site), **HARBOR).status_code == 404
    other_site.refresh_from_db()
    assert other_site.dea_registration == ""


def test_a_certification_can_be_withdrawn_by_recording_not_certified(
    admin: Any, site: Any, sign_in: Any
) -> None:
    registered(site)
    client, token = csrf_client(admin, sign_in)
    data = {**HARBOR, "rems_certified": "no", "rems_certification_id": "", "rems_certified_on": ""}
    assert post(client, token, url(site), **data).status_code == 302
    site.refresh_from_db()
    assert site.rems_certified is False and site.rems_certification_id == ""


# --- where the identifiers are used ----------------------------------------------------------------------


def test_the_rems_form_takes_the_setting_and_the_monitoring_hcp_from_the_records(
    patient: Any, site: Any, nurse: Any, prescriber: Any
) -> None:
    from tests.chairside.test_rems_form import build_esketamine_session

    from ketaclinic.chairside import rems_services as rs

    registered(site)
    nurse.email, nurse.phone = "noor@example.org", "(217) 555-0142"
    nurse.save()
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)
    session = build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=t0)
    row = rs.assemble_rems_form(user=nurse, session=session)
    f = row.data["fields"]
    assert (f["setting.name"], f["setting.address1"], f["setting.address2"]) == (
        "Main Street",
        "12 Harbor Street",
        "Suite 3",
    )
    assert (f["setting.city"], f["setting.state"], f["setting.zip_code"]) == ("Springfield", "IL", "62701")
    assert (f["monitoring_hcp.first_name"], f["monitoring_hcp.phone"], f["monitoring_hcp.email"]) == (
        "Nurse1",
        "(217) 555-0142",
        "noor@example.org",
    )
    assert "work phone" in row.data["notes"]["monitoring_hcp.phone"]
    for name in (
        "setting.address1",
        "setting.city",
        "setting.state",
        "setting.zip_code",
        "monitoring_hcp.phone",
    ):
        assert name not in rs.check(row).missing

    # A clinician with no work phone on file: the site's phone, and the note says so.
    other = build_esketamine_session(patient=patient, site=site, nurse=prescriber, t0=t0 - timedelta(days=3))
    form = rs.assemble_rems_form(user=prescriber, session=other)
    assert form.data["fields"]["monitoring_hcp.phone"] == "(217) 555-0100"
    assert "Main Street's phone" in form.data["notes"]["monitoring_hcp.phone"]


def test_without_an_address_on_file_the_setting_fields_stay_missing(
    patient: Any, site: Any, nurse: Any
) -> None:
    from tests.chairside.test_rems_form import build_esketamine_session

    from ketaclinic.chairside import rems_services as rs

    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(days=1)
    row = rs.assemble_rems_form(
        user=nurse, session=build_esketamine_session(patient=patient, site=site, nurse=nurse, t0=t0)
    )
    missing = rs.check(row).missing
    assert {
        "setting.address1",
        "setting.city",
        "setting.state",
        "setting.zip_code",
        "monitoring_hcp.phone",
    } <= set(missing)


def test_the_register_pdf_names_the_site_as_registrant_with_its_dea_registration(
    admin: Any, prescriber: Any, nurse: Any, site: Any, sign_in: Any, tmp_path: Any
) -> None:
    from tests.chairside.test_rems_form import pdf_text

    from ketaclinic.ledger import services as ledger

    registered(site)
    prescriber.dea_number = "AP1234563"
    prescriber.save()
    lot = ledger.receive(
        user=prescriber,
        site=site,
        data={
            "drug": "ketamine",
            "product": "Ketamine HCl 50 mg/mL, 10 mL vial",
            "lot": "K-2291",
            "expiry": (clinic_today() + timedelta(days=300)).isoformat(),
            "unit": "mL",
            "mg_per_unit": "50",
            "quantity": "20",
            "containers": "2",
            "supplier_name": "Wholesale Co",
            "supplier_address": "100 Wholesale Way, Springfield",
            "supplier_dea": "RW1234563",
            "received_on": clinic_today().isoformat(),
        },
    )
    assert lot is not None
    today = timezone.localdate(timezone.now(), site.zone)
    client = sign_in(Client(enforce_csrf_checks=True), prescriber)
    response = client.get(f"/ledger/register/?site={site.pk}&since={today}&until={today}&format=pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    text = pdf_text(response.content, tmp_path)
    assert (
        "Registrant: Main Street, 12 Harbor Street, Suite 3, Springfield, IL 62701, phone (217) 555-0100 · "
        "DEA registration BH2345672"
    ) in text
    assert "Prescriber1 (prescriber1, DEA AP1234563)" in text
    page = client.get(f"/ledger/register/?site={site.pk}").content.decode()
    assert "DEA registration BH2345672" in page


def test_a_register_without_a_dea_registration_says_so(prescriber: Any, site: Any, tmp_path: Any) -> None:
    from ketaclinic.ledger.reports import registrant_text

    assert (
        "DEA registration not recorded (an administrator enters it on the site's settings page)"
        in registrant_text(site)
    )
