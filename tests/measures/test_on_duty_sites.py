"""A clinician goes on duty only at a site she works at (issue 15 M1): going on duty elsewhere is refused
on every path, and being on duty elsewhere never brings that site's safety alerts."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from tests.csrf_pages import csrf_client, token_of

from ketaclinic.accounts import staff
from ketaclinic.measures import services
from ketaclinic.measures.models import SafetyAlert

ITEM9 = {str(i): 0 for i in range(1, 9)} | {"9": 2}

pytestmark = pytest.mark.django_db


def _csrf_client(sign_in: Any, user: Any) -> tuple[Client, str]:
    client = csrf_client(sign_in, user)
    return client, token_of(client.get("/").content.decode())


def test_a_nurse_cannot_go_on_duty_at_a_site_she_does_not_cover(
    nurse: Any, second_site: Any, site: Any, make_patient: Any, make_user: Any, org: Any, sign_in: Any
) -> None:
    # A patient of North Road, where the nurse does not work, and a North Road colleague on the patient.
    north_nurse = make_user("north-nurse", org, "nurse", [second_site])
    north_patient = make_patient(north_nurse)
    client, token = _csrf_client(sign_in, nurse)
    assert isinstance(client, Client)
    # The home page offers only her own site.
    page = client.get("/").content.decode()
    assert f'value="{site.pk}"' in page and f'value="{second_site.pk}"' not in page

    response = client.post("/on-duty/", {"site": second_site.pk}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 403
    nurse.refresh_from_db()
    assert nurse.on_duty_site_id is None
    # A North Road PHQ-9 with item 9 answered: the alert does not reach her.
    saved = services.record_administration(
        user=north_nurse, patient=north_patient, instrument="phq9", answers=ITEM9
    )
    alert = SafetyAlert.objects.get(administration=saved)
    assert nurse not in alert.recipients.all()
    assert not services.open_alerts_for(nurse).exists()

    # Her own site works, and off duty works.
    assert client.post("/on-duty/", {"site": site.pk}, HTTP_X_CSRFTOKEN=token).status_code == 302
    nurse.refresh_from_db()
    assert nurse.on_duty_site_id == site.pk
    assert client.post("/on-duty/", {"site": ""}, HTTP_X_CSRFTOKEN=token).status_code == 302
    nurse.refresh_from_db()
    assert nurse.on_duty_site_id is None
    # Another organization's site or a made-up id: refused too.
    for bogus in ("999999", "north"):
        assert client.post("/on-duty/", {"site": bogus}, HTTP_X_CSRFTOKEN=token).status_code == 403


def test_an_on_duty_site_she_does_not_cover_brings_no_alerts(
    nurse: Any, second_site: Any, make_patient: Any, make_user: Any, org: Any
) -> None:
    """A row written before the check (or by hand) still does not make her a recipient."""
    north_nurse = make_user("north-nurse", org, "nurse", [second_site])
    north_patient = make_patient(north_nurse)
    nurse.on_duty_site = second_site
    nurse.save()
    saved = services.record_administration(
        user=north_nurse, patient=north_patient, instrument="phq9", answers=ITEM9
    )
    assert nurse not in SafetyAlert.objects.get(administration=saved).recipients.all()


def test_losing_a_site_takes_the_nurse_off_duty_there(
    admin: Any, nurse: Any, site: Any, second_site: Any, sign_in: Any
) -> None:
    nurse.on_duty_site = site
    nurse.save()
    staff.change_access(
        admin=admin, user=nurse, grant=staff.AccessGrant(role="nurse", site_ids=(second_site.pk,))
    )
    nurse.refresh_from_db()
    assert nurse.on_duty_site_id is None
