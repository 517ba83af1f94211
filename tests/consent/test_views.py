"""The consent pages with CSRF enforced, from an empty clinic: signing on the tablet, uploading a signed scan,
the chart's consent section, the private document, withdrawal, publishing a form — and who is refused."""

from __future__ import annotations

import base64
import stat
from datetime import timedelta
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from tests.consent.helpers import consent_on_file

from ketaclinic.audit.models import AuditEntry
from ketaclinic.consent import documents, services
from ketaclinic.consent.models import Consent, ConsentTemplate
from ketaclinic.consent.sample import drawn_signature

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def signed_in(user: Any, sign_in: Any) -> tuple[Client, str]:
    """A client that enforces CSRF, and a real token from a page (every page has the sign-out form)."""
    client = sign_in(Client(enforce_csrf_checks=True), user)
    html = client.get("/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    return client, token


def form_for(patient: Any, drug: str = "ketamine", route: str = "iv") -> ConsentTemplate:
    return services.current_template(organization_id=patient.organization_id, drug=drug, route=route)


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def test_a_nurse_records_consent_on_the_tablet_page_and_the_chart_shows_it(
    nurse: Any, patient: Any, sign_in: Any
) -> None:
    client, token = signed_in(nurse, sign_in)
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    section = chart.split('id="chart-consents"', 1)[1].split("</section>", 1)[0]
    assert "No consent recorded yet" in section
    form = form_for(patient)
    url = f"/patients/{patient.pk}/consents/sign/{form.pk}/"
    assert url in section and f"/patients/{patient.pk}/consents/upload/" in section
    page = client.get(url).content.decode()
    assert 'nav aria-label="Main"' not in page  # the patient holding the tablet sees only the form
    assert (
        "not FDA-approved" in page
        and "45–55 %" in page
        and "signature-pad" in page
        and "signature.js" in page
    )
    # Without the witness's tick nothing is kept, and the patient signs again.
    body = {
        "csrfmiddlewaretoken": token,
        "signer_name": "Testa Examplesson",
        "signature": data_url(drawn_signature("T")),
    }
    response = client.post(url, body)
    assert response.status_code == 422 and "watched the patient read and sign" in response.content.decode()
    assert not Consent.objects.exists()
    response = client.post(url, body | {"witnessed": "yes"})
    consent = Consent.objects.get(patient=patient)
    assert (
        response.status_code == 302
        and response["Location"] == f"/patients/{patient.pk}/consents/{consent.pk}/"
    )
    assert (consent.route, consent.template, consent.witness, consent.signer_name) == (
        "iv",
        form,
        nurse,
        "Testa Examplesson",
    )
    record = client.get(response["Location"]).content.decode()
    assert "Testa Examplesson" in record and "version 1" in record and "Nurse1" in record
    assert f'src="/patients/{patient.pk}/consents/{consent.pk}/document/"' in record
    image = client.get(f"/patients/{patient.pk}/consents/{consent.pk}/document/")
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert image["Cache-Control"] == "no-store" and image.content.startswith(b"\x89PNG")
    section = client.get(f"/patients/{patient.pk}/").content.decode().split('id="chart-consents"', 1)[1]
    row = section.split(f'id="consent-{consent.pk}"', 1)[1].split("</tr>", 1)[0]
    expires = (consent.signed_on + timedelta(days=365)).isoformat()
    assert "version 1" in row and "Intravenous infusion" in row and consent.signed_on.isoformat() in row
    assert "Nurse1" in row and expires in row and "current" in row and "View the signed consent" in row
    reads = AuditEntry.objects.filter(category="consent", action="query", patient_id=patient.pk)
    assert {"consent record", "signed document"} <= set(reads.values_list("detail", flat=True))


def test_a_tablet_page_without_a_signature_is_refused(nurse: Any, patient: Any, sign_in: Any) -> None:
    client, token = signed_in(nurse, sign_in)
    url = f"/patients/{patient.pk}/consents/sign/{form_for(patient).pk}/"
    response = client.post(url, {"csrfmiddlewaretoken": token, "signer_name": "Testa", "witnessed": "yes"})
    assert response.status_code == 422 and "the signature is empty" in response.content.decode()
    response = client.post(url, {"signer_name": "Testa", "witnessed": "yes", "signature": "x"})
    assert response.status_code == 403  # no CSRF token
    assert not Consent.objects.exists()


def test_a_signed_scan_is_uploaded_kept_0600_and_served_only_through_the_checked_view(
    nurse: Any, prescriber: Any, patient: Any, sign_in: Any
) -> None:
    client, token = signed_in(nurse, sign_in)
    url = f"/patients/{patient.pk}/consents/upload/"
    assert "Witness" in client.get(url).content.decode()
    form = form_for(patient, "esketamine", "intranasal")
    signed = (timezone.localdate(timezone.now(), patient.site.zone) - timedelta(days=2)).isoformat()
    wrong = SimpleUploadedFile("form.pdf", b"just some text", content_type="application/pdf")
    response = client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "template": form.pk,
            "signed_on": signed,
            "witness": prescriber.pk,
            "document": wrong,
        },
    )
    assert response.status_code == 422
    assert "must be a PDF, PNG or JPEG scan" in response.content.decode() and not Consent.objects.exists()
    scan = SimpleUploadedFile("signed consent.pdf", PDF, content_type="application/pdf")
    response = client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "template": form.pk,
            "signed_on": signed,
            "witness": prescriber.pk,
            "document": scan,
        },
    )
    consent = Consent.objects.get(patient=patient)
    assert response.status_code == 302
    assert (consent.method, consent.witness, consent.signed_on.isoformat()) == ("scan", prescriber, signed)
    path = documents.root() / consent.document_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_bytes() == PDF
    document = client.get(f"/patients/{patient.pk}/consents/{consent.pk}/document/")
    assert document.status_code == 200 and document.content == PDF
    assert document["Content-Type"] == "application/pdf" and document["Cache-Control"] == "no-store"
    assert "inline" in document["Content-Disposition"]
    # Not reachable without a signed-in clinician, nor under any public URL.
    assert Client().get(f"/patients/{patient.pk}/consents/{consent.pk}/document/").status_code == 302
    for public in (
        f"/static/{consent.document_file}",
        f"/media/{consent.document_file}",
        f"/{consent.document_file}",
    ):
        assert Client().get(public).status_code == 404


def test_wrong_role_site_or_clinic_is_refused(
    nurse: Any,
    front_desk: Any,
    admin: Any,
    outsider: Any,
    make_user: Any,
    org: Any,
    second_site: Any,
    patient: Any,
    sign_in: Any,
) -> None:
    consent = consent_on_file(nurse, patient, "ketamine", "iv")
    form = form_for(patient)
    urls = [
        f"/patients/{patient.pk}/consents/sign/{form.pk}/",
        f"/patients/{patient.pk}/consents/upload/",
        f"/patients/{patient.pk}/consents/{consent.pk}/",
        f"/patients/{patient.pk}/consents/{consent.pk}/document/",
    ]
    for user in (front_desk, admin):
        client, _ = signed_in(user, sign_in)
        assert [client.get(u).status_code for u in urls] == [403] * 4, user
    north_nurse = make_user("northnurse", org, "nurse", [second_site])
    for user in (north_nurse, outsider):
        client, token = signed_in(user, sign_in)
        assert [client.get(u).status_code for u in urls] == [404] * 4, user
        body = {
            "csrfmiddlewaretoken": token,
            "withdrawn_on": consent.signed_on.isoformat(),
            "reason": "Not my patient at all",
        }
        assert client.post(f"/patients/{patient.pk}/consents/{consent.pk}/withdraw/", body).status_code == 404
    # The outsider's own clinic cannot reach this clinic's forms either.
    client, _ = signed_in(outsider, sign_in)
    assert client.get(f"/consent-forms/{form.pk}/").status_code == 404
    consent.refresh_from_db()
    assert consent.withdrawn_on is None


def test_a_nurse_records_a_withdrawal_and_the_chart_says_so(nurse: Any, patient: Any, sign_in: Any) -> None:
    consent = consent_on_file(nurse, patient, "ketamine", "iv")
    client, token = signed_in(nurse, sign_in)
    url = f"/patients/{patient.pk}/consents/{consent.pk}/withdraw/"
    today = timezone.localdate(timezone.now(), patient.site.zone)
    response = client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "withdrawn_on": (today + timedelta(days=1)).isoformat(),
            "reason": "Changed my mind about it",
        },
    )
    assert response.status_code == 422 and "is in the future" in response.content.decode()
    response = client.post(
        url,
        {
            "csrfmiddlewaretoken": token,
            "withdrawn_on": today.isoformat(),
            "reason": "Changed my mind about it",
        },
    )
    assert response.status_code == 302
    consent.refresh_from_db()
    assert (consent.withdrawn_on, consent.withdrawn_by, consent.withdrawal_reason) == (
        today,
        nurse,
        "Changed my mind about it",
    )
    chart = client.get(f"/patients/{patient.pk}/").content.decode()
    row = chart.split(f'id="consent-{consent.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "withdrawn" in row and "Changed my mind about it" in row


def test_forms_are_read_by_staff_and_published_by_prescribers(
    nurse: Any, prescriber: Any, admin: Any, sign_in: Any, patient: Any
) -> None:
    form = form_for(patient)
    for user in (nurse, admin):
        client, token = signed_in(user, sign_in)
        page = client.get("/consent-forms/").content.decode()
        assert (
            "Only a prescriber publishes a new version" in page
            and "/consent-forms/ketamine/iv/new/" not in page
        )
        assert (
            "Source: clinical.md §9.1" in client.get(f"/consent-forms/{form.pk}/").content.decode()
        )  # sources shown
        assert client.get("/consent-forms/ketamine/iv/new/").status_code == 403
        assert (
            client.post("/consent-forms/ketamine/iv/new/", {"csrfmiddlewaretoken": token}).status_code == 403
        )
    client, token = signed_in(prescriber, sign_in)
    page = client.get("/consent-forms/ketamine/iv/new/").content.decode()
    assert "Publish version 2" in page and "benefit_text" in page
    posted = {"csrfmiddlewaretoken": token, "title": form.title, "change_note": "Our clinic's wording"}
    for section in form.sections:
        for part in ("heading", "text", "source"):
            posted[f"{section['key']}_{part}"] = section[part]
    posted["benefit_text"] = "Up to 70 % of patients respond to a course of six infusions, in our experience."
    response = client.post("/consent-forms/ketamine/iv/new/", posted)
    assert response.status_code == 422 and "quotes 70 %" in response.content.decode()
    assert ConsentTemplate.objects.filter(drug="ketamine", route="iv").count() == 1
    posted["benefit_text"] = form.sections[2]["text"] + " Ask us about our own clinic's results."
    response = client.post("/consent-forms/ketamine/iv/new/", posted)
    new = ConsentTemplate.objects.get(drug="ketamine", route="iv", version=2)
    assert response.status_code == 302 and response["Location"] == f"/consent-forms/{new.pk}/"
    old_page = client.get(f"/consent-forms/{form.pk}/").content.decode()
    assert "This is version 1, kept as patients signed it" in old_page
    assert "Prescriber1" in client.get("/consent-forms/").content.decode()
