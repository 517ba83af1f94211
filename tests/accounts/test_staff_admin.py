"""Staff administration in the UI (issue 14 point 5): administrators edit names, e-mail, roles and sites, a
clinician's NPI/DEA/licence, deactivate (sessions end) and reactivate, reset a second factor and lift a
lockout — each audited with before and after. Nobody changes their own privileges; the last administrator
stays. Clinical roles and other organizations are refused."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from tests.conftest import PASSWORD

from ketaclinic.accounts.models import User
from ketaclinic.audit.models import AuditEntry
from ketaclinic.core.models import Notification


def csrf_client(user: Any, sign_in: Any) -> tuple[Client, str]:
    """A client that enforces CSRF, and a real token from a page (every page has the sign-out form)."""
    client = sign_in(Client(enforce_csrf_checks=True), user)
    html = client.get("/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return client, token


def post(client: Client, token: str, url: str, **data: Any) -> Any:
    return client.post(url, {"csrfmiddlewaretoken": token, **data})


def page(user: Any) -> str:
    return f"/accounts/users/{user.pk}/"


@pytest.fixture
def admin2(make_user: Any, org: Any) -> Any:
    return make_user("admin2", org, "admin", [], all_sites=True)


def test_the_list_shows_every_account_of_the_clinic_with_status_and_identifiers(
    admin: Any, nurse: Any, prescriber: Any, outsider: Any, sign_in: Any
) -> None:
    prescriber.npi, prescriber.dea_number = "1234567893", "AP1234563"
    prescriber.save()
    nurse.is_active = False
    nurse.save()
    client, _ = csrf_client(admin, sign_in)
    html = client.get("/accounts/users/").content.decode()
    table = html.split('id="staff"', 1)[1]
    assert "prescriber1" in table and "NPI 1234567893" in table and "DEA AP1234563" in table
    assert "nurse1" in table and "deactivated" in table
    assert "outsider1" not in table
    assert "/accounts/users/invite/" in html


@pytest.mark.parametrize("who", ["nurse", "prescriber", "front_desk"])
def test_clinical_roles_and_the_front_desk_are_refused_every_page_and_action(
    who: str, request: Any, admin: Any, nurse: Any, site: Any, sign_in: Any
) -> None:
    user = request.getfixturevalue(who)
    client, token = csrf_client(user, sign_in)
    for url in ("/accounts/users/", "/accounts/users/invite/", page(admin), page(nurse)):
        assert client.get(url).status_code == 403, url
    # A nurse cannot make herself a prescriber, nor an administrator reactivate her.
    response = post(client, token, page(user), action="access", role="prescriber", sites=[site.pk])
    assert response.status_code == 403
    user.refresh_from_db()
    assert user.role == who
    response = post(client, token, "/accounts/users/invite/", username="x", email="x@example.org")
    assert response.status_code == 403 and not User.objects.filter(username="x").exists()


def test_another_organizations_account_is_not_found(
    make_user: Any, other_org: Any, outsider: Any, nurse: Any, sign_in: Any, site: Any
) -> None:
    other_admin = make_user("otheradmin", other_org, "admin", [], all_sites=True)
    client, token = csrf_client(other_admin, sign_in)
    assert client.get(page(nurse)).status_code == 404
    assert post(client, token, page(nurse), action="deactivate").status_code == 404
    nurse.refresh_from_db()
    assert nurse.is_active
    assert client.get(page(outsider)).status_code == 200  # their own clinic's nurse


def test_name_email_and_phone_are_edited_and_audited_with_before_and_after(
    admin: Any, nurse: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    response = post(
        client,
        token,
        page(nurse),
        action="profile",
        first_name="Noor",
        last_name="Okafor",
        email="noor.okafor@example.org",
        phone="(617) 555-0142",
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert (nurse.first_name, nurse.last_name, nurse.email, nurse.phone) == (
        "Noor",
        "Okafor",
        "noor.okafor@example.org",
        "(617) 555-0142",
    )
    entry = AuditEntry.objects.get(category="account-profile", user=admin)
    assert entry.object_id == str(nurse.pk)
    assert '"first_name":"Nurse1"' in entry.before.replace(" ", "")
    assert '"email":"noor.okafor@example.org"' in entry.after.replace(" ", "")


def test_a_bad_profile_names_each_field_and_keeps_what_was_typed(
    admin: Any, nurse: Any, prescriber: Any, sign_in: Any
) -> None:
    prescriber.email = "shared@example.org"
    prescriber.save()
    client, token = csrf_client(admin, sign_in)
    response = post(
        client,
        token,
        page(nurse),
        action="profile",
        first_name="",
        last_name="Okafor",
        email="shared@example.org",
        phone="555-0100",
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert errors["first_name"] == "required"
    assert "already the address of Prescriber1" in errors["email"]
    assert "10 digits" in errors["phone"]
    html = response.content.decode()
    assert 'value="Okafor"' in html and 'value="555-0100"' in html
    nurse.refresh_from_db()
    assert nurse.first_name == "Nurse1" and not AuditEntry.objects.filter(category="account-profile").exists()


def test_role_and_sites_change_is_audited_and_announced_to_the_other_administrators(
    admin: Any, admin2: Any, nurse: Any, site: Any, second_site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    response = post(
        client, token, page(nurse), action="access", role="prescriber", sites=[site.pk, second_site.pk]
    )
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.role == "prescriber" and {s.code for s in nurse.sites.all()} == {"main", "north"}
    entry = AuditEntry.objects.get(category="account-privileges", user=admin, action="change")
    assert '"role":"nurse"' in entry.before and '"role":"prescriber"' in entry.after
    assert '"sites":["main"]' in entry.before and '"sites":["main","north"]' in entry.after
    note = Notification.objects.get(recipient=admin2, kind="account-role")
    assert "Admin1 gave Nurse1 (nurse1) the Prescriber role (was Nurse)" in note.message
    assert not Notification.objects.filter(recipient=admin, kind="account-role").exists()


def test_a_clinical_role_needs_a_site_and_sites_of_another_clinic_are_refused(
    admin: Any, nurse: Any, other_site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    response = post(client, token, page(nurse), action="access", role="nurse")
    assert response.status_code == 422 and "choose the sites" in response.context["errors"]["sites"]
    response = post(client, token, page(nurse), action="access", role="nurse", sites=[other_site.pk])
    assert response.status_code == 422 and "not a site of this clinic" in response.context["errors"]["sites"]
    assert {s.code for s in User.objects.get(pk=nurse.pk).sites.all()} == {"main"}


def test_an_administrator_cannot_give_themselves_a_clinical_role_another_administrator_can(
    admin: Any, admin2: Any, site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    own = client.get(page(admin)).content.decode()
    assert "You cannot change your own role" in own and "Save role and sites" not in own
    response = post(client, token, page(admin), action="access", role="prescriber", sites=[site.pk])
    assert response.status_code == 403
    assert "ask another administrator" in response.context["errors"]["role"]
    admin.refresh_from_db()
    assert admin.role == "admin"
    assert not AuditEntry.objects.filter(category="account-privileges", action="change").exists()
    # The second administrator may, under their own name, and the first is told.
    other, other_token = csrf_client(admin2, sign_in)
    assert (
        post(other, other_token, page(admin), action="access", role="prescriber", sites=[site.pk]).status_code
        == 302
    )
    admin.refresh_from_db()
    assert admin.role == "prescriber"
    assert AuditEntry.objects.get(category="account-privileges", action="change").username == "admin2"
    assert Notification.objects.filter(recipient=admin, kind="account-role").exists()


def test_the_last_active_administrator_cannot_be_deactivated_or_demoted(
    admin: Any, admin2: Any, site: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    assert post(client, token, page(admin), action="deactivate").status_code == 403  # not oneself
    assert post(client, token, page(admin2), action="deactivate").status_code == 302
    admin2.refresh_from_db()
    assert not admin2.is_active
    response = post(client, token, page(admin), action="deactivate")
    assert response.status_code == 409
    assert "last active administrator" in response.context["errors"]["is_active"]
    from ketaclinic.accounts import staff

    # Even through the service, with nobody else active, the role stays.
    with pytest.raises(staff.StaffConflict):
        staff.change_access(
            admin=admin2, user=admin, grant=staff.AccessGrant(role="nurse", site_ids=(site.pk,))
        )
    admin.refresh_from_db()
    assert admin.is_active and admin.role == "admin"


def _signed_in_with_password_and_code(user: Any) -> Client:
    """A real sign-in (password, then TOTP), so the session is registered to the account."""
    from django_otp.oath import TOTP

    client = Client()
    client.post("/accounts/login/", {"username": user.username, "password": PASSWORD})
    device = TOTPDevice.objects.get(user=user)
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)
    assert client.post("/accounts/mfa/", {"token": f"{TOTP(device.bin_key).token():06d}"})["Location"] == "/"
    return client


def test_deactivation_ends_every_session_and_reactivation_lets_them_sign_in_again(
    admin: Any, nurse: Any, site: Any, sign_in: Any
) -> None:
    nurse.on_duty_site = site
    nurse.save()
    phone, desk = _signed_in_with_password_and_code(nurse), _signed_in_with_password_and_code(nurse)
    assert phone.get("/patients/").status_code == 200
    keys = {phone.session.session_key, desk.session.session_key}
    client, token = csrf_client(admin, sign_in)
    response = post(client, token, page(nurse), action="deactivate")
    assert response.status_code == 302
    assert not Session.objects.filter(session_key__in=keys).exists()
    for c in (phone, desk):
        assert c.get("/patients/").status_code == 302
    nurse.refresh_from_db()
    assert not nurse.is_active and nurse.on_duty_site is None  # no longer receives the site's alerts
    entry = AuditEntry.objects.get(category="account-privileges", action="change", user=admin)
    assert "2 session(s) ended" in entry.detail
    assert Client().post("/accounts/login/", {"username": "nurse1", "password": PASSWORD}).status_code == 200

    assert post(client, token, page(nurse), action="reactivate").status_code == 302
    nurse.refresh_from_db()
    assert nurse.is_active
    assert _signed_in_with_password_and_code(nurse).get("/patients/").status_code == 200


def test_prescriber_identifiers_are_checked_saved_shown_and_audited(
    admin: Any, prescriber: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    response = post(
        client,
        token,
        page(prescriber),
        action="identifiers",
        npi="1234567890",
        dea_number="ap1234564",
        licence_number="MD-000123",
        licence_state="ZZ",
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert "fails its check digit (the last digit would be 3)" in errors["npi"]
    assert "DEA number AP1234564 fails its check digit" in errors["dea_number"]
    assert "not a US state" in errors["licence_state"]
    prescriber.refresh_from_db()
    assert prescriber.npi == "" and prescriber.dea_number == ""

    response = post(
        client,
        token,
        page(prescriber),
        action="identifiers",
        npi="1234567893",
        dea_number="ap1234563",
        licence_number="MD-000123",
        licence_state="ma",
    )
    assert response.status_code == 302
    prescriber.refresh_from_db()
    assert (prescriber.npi, prescriber.dea_number, prescriber.licence_number, prescriber.licence_state) == (
        "1234567893",
        "AP1234563",
        "MD-000123",
        "MA",
    )
    html = client.get(page(prescriber)).content.decode()
    assert 'value="1234567893"' in html and 'value="AP1234563"' in html
    entry = AuditEntry.objects.get(category="account-profile", user=admin)
    assert '"npi":""' in entry.before.replace(" ", "") and '"dea_number":"AP1234563"' in entry.after.replace(
        " ", ""
    )


def test_only_prescribers_carry_a_dea_number_and_an_npi_belongs_to_one_account(
    admin: Any, nurse: Any, prescriber: Any, front_desk: Any, sign_in: Any
) -> None:
    prescriber.npi = "1234567893"
    prescriber.save()
    client, token = csrf_client(admin, sign_in)
    response = post(
        client, token, page(nurse), action="identifiers", npi="1234567893", dea_number="AP1234563"
    )
    assert response.status_code == 422
    errors = response.context["errors"]
    assert "only a prescriber's account carries a DEA number" in errors["dea_number"]
    assert "already on Prescriber1's account" in errors["npi"]
    response = post(client, token, page(front_desk), action="identifiers", npi="1987654328")
    assert (
        response.status_code == 422 and "only prescribers' and nurses'" in response.context["errors"]["npi"]
    )
    assert post(client, token, page(nurse), action="identifiers", npi="1987654328").status_code == 302


def test_resetting_a_second_factor_is_explicit_audited_and_never_for_oneself(
    admin: Any, admin2: Any, nurse: Any, sign_in: Any
) -> None:
    client, token = csrf_client(admin, sign_in)
    assert post(client, token, page(nurse), action="reset_mfa").status_code == 302
    assert not TOTPDevice.objects.filter(user=nurse).exists()
    assert not StaticDevice.objects.filter(user=nurse).exists()
    entry = AuditEntry.objects.get(category="account-privileges", user=admin, object_id=str(nurse.pk))
    assert '"mfa":"reset"' in entry.after.replace(" ", "")
    assert post(client, token, page(admin), action="reset_mfa").status_code == 403
    assert TOTPDevice.objects.filter(user=admin).exists()


def test_an_administrator_unlocks_a_locked_out_account(admin: Any, nurse: Any, sign_in: Any) -> None:
    locked = Client()
    for _ in range(5):
        locked.post("/accounts/login/", {"username": "nurse1", "password": "not the password"})
    assert locked.post("/accounts/login/", {"username": "nurse1", "password": PASSWORD}).status_code == 429
    client, token = csrf_client(admin, sign_in)
    html = client.get(page(nurse)).content.decode()
    assert "sign-in locked" in html and 'id="unlock"' in html
    assert "sign-in locked" in client.get("/accounts/users/").content.decode()
    assert post(client, token, page(nurse), action="unlock").status_code == 302
    response = locked.post("/accounts/login/", {"username": "nurse1", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/accounts/mfa/"
    entry = AuditEntry.objects.get(category="account-privileges", user=admin, action="change")
    assert '"locked_out":false' in entry.after.replace(" ", "")


def test_an_unknown_action_is_refused(admin: Any, nurse: Any, sign_in: Any) -> None:
    client, token = csrf_client(admin, sign_in)
    response = post(client, token, page(nurse), action="promote")
    assert (
        response.status_code == 422
        and "'promote' is not something this page does" in response.context["errors"]["action"]
    )


def test_a_post_without_the_csrf_token_is_refused(admin: Any, nurse: Any, sign_in: Any) -> None:
    client, _ = csrf_client(admin, sign_in)
    assert client.post(page(nurse), {"action": "deactivate"}).status_code == 403
    nurse.refresh_from_db()
    assert nurse.is_active
