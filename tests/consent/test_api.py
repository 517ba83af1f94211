"""The consent API from an empty clinic (CSRF enforced): record with a drawn signature or a scan, list,
withdraw, the forms — 422 naming the field, and who is refused."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from django.utils import timezone
from tests.chairside.journey import Api
from tests.consent.helpers import consent_body

from ketaclinic.consent.models import Consent

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def today(patient: Any) -> str:
    return timezone.localdate(timezone.now(), patient.site.zone).isoformat()


def test_record_list_and_withdraw_a_consent_through_the_api(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    desk = Api(nurse, sign_in)
    forms = desk.client.get("/api/consent-forms").json()
    assert [(f["drug"], f["route"], f["version"]) for f in forms] == [
        ("esketamine", "intranasal", 1),
        ("ketamine", "iv", 1),
        ("ketamine", "im", 1),
        ("ketamine", "sublingual", 1),
    ]
    im = next(f for f in forms if f["route"] == "im")
    assert any(s["key"] == "off_label" for s in im["sections"]) and im["built_in"]
    url = f"/patients/{patient.pk}/consents"
    signed = desk.ok(url, consent_body("ketamine", today(patient), route="im"), status=201)
    assert (signed["route"], signed["form"]["id"], signed["form"]["version"]) == ("im", im["id"], 1)
    assert (signed["method"], signed["witness_id"], signed["status"]) == ("tablet", nurse.pk, "current")
    assert signed["validity_days"] == 365 and signed["document_url"].endswith(
        f"/consents/{signed['id']}/document/"
    )
    scan = desk.ok(
        url,
        {
            "template_id": forms[0]["id"],
            "signed_on": (timezone.localdate() - timedelta(days=3)).isoformat(),
            "scan": {
                "filename": "paper.pdf",
                "content_type": "application/pdf",
                "data_base64": base64.b64encode(PDF).decode(),
            },
            "witness_id": prescriber.pk,
        },
        status=201,
    )
    assert (scan["drug"], scan["method"], scan["witness_id"]) == ("esketamine", "scan", prescriber.pk)
    listed = desk.get(url).json()
    assert [c["id"] for c in listed] == [signed["id"], scan["id"]]
    withdrawn = desk.ok(
        f"{url}/{signed['id']}/withdraw",
        {"withdrawn_on": today(patient), "reason": "Patient prefers to stop the injections"},
    )
    assert withdrawn["status"] == "withdrawn" and withdrawn["withdrawal_reason"].startswith("Patient prefers")
    assert (
        desk.post(
            f"{url}/{signed['id']}/withdraw", {"withdrawn_on": today(patient), "reason": "again, twice"}
        ).status_code
        == 409
    )


def test_the_openapi_description_says_how_the_evidence_travels(nurse: Any, sign_in: Any) -> None:
    schema = Api(nurse, sign_in).client.get("/api/openapi.json").json()
    operation = schema["paths"]["/api/patients/{patient_id}/consents"]["post"]
    assert "base64" in operation["description"] and "exactly one of" in operation["description"]
    assert "/api/consent-forms" in schema["paths"]


def test_refusals_name_the_field(nurse: Any, patient: Any, sign_in: Any) -> None:
    desk = Api(nurse, sign_in)
    url = f"/patients/{patient.pk}/consents"
    body = consent_body("ketamine", today(patient))
    assert desk.refused(url, body | {"route": None}) == {
        "route": "racemic ketamine needs the route consented to: iv, im or sublingual (one consent per route)"
    }
    both = body | {
        "scan": {"filename": "a.pdf", "content_type": "application/pdf", "data_base64": "JVBERg=="}
    }
    assert desk.refused(url, both) == {
        "signature": "give either the drawn signature or the scan of the signed form (exactly one)"
    }
    bad = body | {"signature": {"signer_name": "Testa", "png_base64": "not base64!"}}
    assert desk.refused(url, bad) == {"signature": "is not base64"}
    scan = {
        "filename": "a.pdf",
        "content_type": "application/pdf",
        "data_base64": base64.b64encode(PDF).decode(),
    }
    assert desk.refused(url, {"drug": "esketamine", "signed_on": today(patient), "scan": scan}) == {
        "witness_id": "name the member of staff who witnessed the signature"
    }
    assert desk.refused(url, body | {"signed_on": "2999-01-01"}) == {"signed_on": "is in the future"}
    assert desk.refused(url, body | {"route": "oral"})["route"].startswith("Input should be")
    assert not Consent.objects.exists()


def test_the_api_refuses_other_roles_sites_and_clinics(
    nurse: Any,
    front_desk: Any,
    outsider: Any,
    make_user: Any,
    org: Any,
    second_site: Any,
    patient: Any,
    sign_in: Any,
) -> None:
    url = f"/patients/{patient.pk}/consents"
    body = consent_body("ketamine", today(patient))
    assert Api(front_desk, sign_in).post(url, body).status_code == 403
    assert Api(front_desk, sign_in).get(url).status_code == 403
    north = make_user("northnurse", org, "nurse", [second_site])
    for user in (north, outsider):
        api = Api(user, sign_in)
        assert api.post(url, body).status_code == 404
        assert api.get(url).status_code == 404
    assert not Consent.objects.exists()
