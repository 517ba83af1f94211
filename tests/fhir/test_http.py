"""The /fhir HTTP contract with the real protections on (a CSRF-enforcing client): bearer-token requests need
no CSRF token, session cookies give nothing, every error is an OperationOutcome with its status (401 with
an RFC 6750 challenge, 404, 405 with Allow, 406, 415), bulk export cancel, and conditional reads."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver
from django.utils import timezone
from django.utils.http import http_date
from tests.fhir.conftest import FORM, at, get_token, phq9

from ketaclinic.audit.models import AuditEntry
from ketaclinic.core import jobs
from ketaclinic.interop.fhir.models import AccessToken, BulkExport, BulkExportFile

ASYNC = {"HTTP_PREFER": "respond-async"}


def _outcome(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:300])
    assert response["Content-Type"] == "application/fhir+json"
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["severity"] == "error"
    return body


def test_every_fhir_route_is_a_csrf_exempt_endpoint() -> None:
    """A view added later without ``@endpoint`` would answer non-GET requests with Django's HTML CSRF page."""
    resolver = get_resolver()
    fhir = next(p for p in resolver.url_patterns if str(p.pattern) == "fhir/")
    views = [p.callback for p in fhir.url_patterns if isinstance(p, URLPattern)]  # type: ignore[attr-defined]
    assert len(views) >= 12
    for view in views:
        assert getattr(view, "fhir_endpoint", False), view.__name__
        assert getattr(view, "csrf_exempt", False), view.__name__


def test_token_and_post_search_work_with_csrf_enforced(
    csrf_client: Any, org: Any, patient: Any, make_client: Any
) -> None:
    api_client, secret = make_client(org)
    token = get_token(csrf_client, api_client.client_id, secret)
    assert token.status_code == 200, token.content
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token.json()['access_token']}"}
    found = csrf_client.post(
        "/fhir/Patient/_search", urlencode({"_id": str(patient.pk)}), content_type=FORM, **headers
    )
    assert found.status_code == 200, found.content
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [str(patient.pk)]


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_writes_on_read_and_search_routes_are_405_operation_outcomes(
    csrf_client: Any, method: str, org: Any, patient: Any, bearer: Any
) -> None:
    headers = bearer(org)
    paths = [
        "/fhir/Patient",
        f"/fhir/Patient/{patient.pk}",
        f"/fhir/Patient/{patient.pk}/$everything",
        "/fhir/metadata",
        "/fhir/.well-known/smart-configuration",
        "/fhir/$export",
    ]
    for path in paths:
        for with_token in (headers, {}):
            response = getattr(csrf_client, method)(
                path, "{}", content_type="application/fhir+json", **with_token
            )
            body = _outcome(response, 405)
            assert response["Allow"] == "GET", path
            assert body["issue"][0]["code"] == "not-supported"
    assert Client().get("/fhir/token")["Allow"] == "POST"
    assert csrf_client.get("/fhir/Patient/_search", **headers)["Allow"] == "POST"


def test_unknown_routes_are_404_operation_outcomes(csrf_client: Any, org: Any, bearer: Any) -> None:
    for method in ("get", "post", "delete"):
        body = _outcome(getattr(csrf_client, method)("/fhir/no/such/route/here"), 404)
        assert body["issue"][0]["code"] == "not-found"
    _outcome(csrf_client.get("/fhir/Medication", **bearer(org)), 404)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "*/*",
        "application/json",
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/fhir+xml;q=0.9, application/json;q=0.5",
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        "application/*",
    ],
)
def test_json_accept_headers_are_served(org: Any, patient: Any, bearer: Any, accept: str | None) -> None:
    extra = {"HTTP_ACCEPT": accept} if accept is not None else {}
    assert Client().get("/fhir/metadata", **extra).status_code == 200
    response = Client().get(f"/fhir/Patient/{patient.pk}", **bearer(org), **extra)
    assert response.status_code == 200 and response["Content-Type"] == "application/fhir+json"


@pytest.mark.parametrize(
    "accept",
    ["application/fhir+xml", "application/xml", "text/html", "application/json;q=0, application/fhir+xml"],
)
def test_other_formats_are_406(org: Any, patient: Any, bearer: Any, accept: str) -> None:
    _outcome(Client().get("/fhir/metadata", HTTP_ACCEPT=accept), 406)
    _outcome(Client().get(f"/fhir/Patient/{patient.pk}", **bearer(org), HTTP_ACCEPT=accept), 406)


def test_format_parameter(org: Any, patient: Any, bearer: Any) -> None:
    headers = bearer(org)
    for fmt in ("xml", "application/fhir+xml", "html", "turtle"):
        body = _outcome(Client().get(f"/fhir/Patient?_format={fmt}", **headers), 406)
        assert body["issue"][0]["expression"] == ["_format"]
    _outcome(Client().get("/fhir/metadata?_format=xml"), 406)
    for fmt in ("json", "application/json", "application/fhir+json"):
        query = urlencode({"_format": fmt})
        assert Client().get(f"/fhir/Patient?{query}", **headers).status_code == 200
        assert Client().get(f"/fhir/Patient/{patient.pk}?{query}", **headers).status_code == 200
    # A "+" left unencoded reads as a space; it is still fhir+json, for the search as for the read.
    assert Client().get("/fhir/Patient?_format=application/fhir+json", **headers).status_code == 200


def test_wrong_content_types(csrf_client: Any, org: Any, bearer: Any) -> None:
    headers = bearer(org)
    as_json = csrf_client.post("/fhir/Patient/_search", "{}", content_type="application/json", **headers)
    assert _outcome(as_json, 415)["issue"][0]["code"] == "not-supported"
    token = csrf_client.post("/fhir/token", "{}", content_type="application/json")
    # The OAuth endpoints answer OAuth's own error document (RFC 6749 §5.2).
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"


def test_a_signed_in_staff_session_without_a_token_gains_nothing(
    csrf_client: Any, sign_in: Any, admin: Any, nurse: Any, patient: Any, make_client: Any, org: Any
) -> None:
    """/fhir ignores session cookies: the admin's session reads nothing, writes nothing, and is neither
    ended (a redirect to the sign-in page) nor kept alive by FHIR requests."""
    from ketaclinic.core.middleware import SESSION_LAST_SEEN

    sign_in(csrf_client, admin)
    for response in (
        csrf_client.get("/fhir/Patient"),
        csrf_client.get(f"/fhir/Patient/{patient.pk}"),
        csrf_client.post("/fhir/Patient/_search", urlencode({"_id": str(patient.pk)}), content_type=FORM),
        csrf_client.get("/fhir/$export", **ASYNC),
    ):
        _outcome(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="fhir"'
    token = csrf_client.post(
        "/fhir/token", urlencode({"grant_type": "client_credentials"}), content_type=FORM
    )
    assert token.status_code == 401 and not AccessToken.objects.exists()
    # A session idle past the limit: the web pages would end it; /fhir neither ends nor refreshes it.
    session = csrf_client.session
    stale = (timezone.now() - timedelta(hours=2)).isoformat()
    session[SESSION_LAST_SEEN] = stale
    session.save()
    assert csrf_client.get("/fhir/metadata").status_code == 200
    assert csrf_client.session[SESSION_LAST_SEEN] == stale
    assert csrf_client.get("/").status_code == 302  # the web app does end it


def test_401_challenges_follow_rfc_6750(org: Any, make_client: Any) -> None:
    none = Client().get("/fhir/Patient")
    assert none["WWW-Authenticate"] == 'Bearer realm="fhir"'  # no token presented: no error attribute
    bad = Client().get("/fhir/Patient", HTTP_AUTHORIZATION="Bearer not-a-token")
    assert bad.status_code == 401
    assert bad["WWW-Authenticate"].startswith(
        'Bearer realm="fhir", error="invalid_token", error_description="'
    )
    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = Client().get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert expired.status_code == 401 and 'error="invalid_token"' in expired["WWW-Authenticate"]


def test_403_names_the_insufficient_scope(org: Any, bearer: Any) -> None:
    response = Client().get("/fhir/Observation", **bearer(org, "system/Patient.rs"))
    assert response.status_code == 403
    assert response["WWW-Authenticate"].startswith('Bearer realm="fhir", error="insufficient_scope"')


def test_grant_type_missing_is_invalid_request_unknown_is_unsupported(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    creds = {"client_id": api_client.client_id, "client_secret": secret}
    missing = Client().post("/fhir/token", urlencode(creds), content_type=FORM)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    unknown = Client().post("/fhir/token", urlencode({**creds, "grant_type": "password"}), content_type=FORM)
    assert unknown.status_code == 400 and unknown.json()["error"] == "unsupported_grant_type"
    twice = Client().post(
        "/fhir/token",
        "grant_type=client_credentials&grant_type=client_credentials&" + urlencode(creds),
        content_type=FORM,
    )
    assert twice.status_code == 400 and twice.json()["error"] == "invalid_request"


def test_cancelling_an_export_with_a_bearer_token_deletes_its_files(
    csrf_client: Any, org: Any, nurse: Any, patient: Any, bearer: Any, record_scale: Any
) -> None:
    record_scale(nurse, patient, "phq9", phq9(1), at(2))
    headers = bearer(org)
    kickoff = csrf_client.get("/fhir/$export", **headers, **ASYNC)
    assert kickoff.status_code == 202
    status_url = kickoff["Content-Location"]
    jobs.run_due_jobs()
    manifest = csrf_client.get(status_url, **headers).json()
    file_url = manifest["output"][0]["url"]
    assert csrf_client.get(file_url, **headers).status_code == 200
    # No CSRF token, no cookie: a bearer token alone cancels (Bulk Data: DELETE on the status URL → 202).
    assert csrf_client.delete(status_url).status_code == 401
    cancelled = csrf_client.delete(status_url, **headers)
    assert cancelled.status_code == 202
    _outcome(csrf_client.get(status_url, **headers), 404)
    _outcome(csrf_client.get(file_url, **headers), 404)
    assert not BulkExport.objects.exists() and not BulkExportFile.objects.exists()
    entry = AuditEntry.objects.filter(action="delete", object_type="BulkExport").get()
    assert entry.client == "fhir" and "cancelled" in entry.detail
    # Cancelled before the worker ran: the job finds nothing to do and fails nothing.
    second = csrf_client.get("/fhir/$export", **headers, **ASYNC)["Content-Location"]
    assert csrf_client.delete(second, **headers).status_code == 202
    jobs.run_due_jobs()
    assert not BulkExportFile.objects.exists()


def test_reads_carry_validators_and_answer_304(
    org: Any, nurse: Any, patient: Any, bearer: Any, record_scale: Any
) -> None:
    headers = bearer(org)
    first = Client().get(f"/fhir/Patient/{patient.pk}", **headers)
    meta = first.json()["meta"]
    assert first["ETag"] == f'W/"{meta["versionId"]}"'
    assert first["Last-Modified"] == http_date(
        int(timezone.datetime.fromisoformat(meta["lastUpdated"].replace("Z", "+00:00")).timestamp())
    )
    url = f"/fhir/Patient/{patient.pk}"
    same = Client().get(url, **headers, HTTP_IF_NONE_MATCH=first["ETag"])
    assert same.status_code == 304 and same.content == b"" and same["ETag"] == first["ETag"]
    assert Client().get(url, **headers, HTTP_IF_NONE_MATCH='W/"999"').status_code == 200
    later = http_date(timezone.now().timestamp() + 60)
    assert Client().get(url, **headers, HTTP_IF_MODIFIED_SINCE=later).status_code == 304
    earlier = http_date(timezone.now().timestamp() - 86400 * 365 * 20)
    assert Client().get(url, **headers, HTTP_IF_MODIFIED_SINCE=earlier).status_code == 200
    # A changed patient: the old ETag no longer matches.
    patient.version += 1
    patient.save(update_fields=["version"])
    assert Client().get(url, **headers, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200
    # Without a versionId (a score): Last-Modified alone, and If-Modified-Since still answers 304.
    scale = record_scale(nurse, patient, "phq9", phq9(1), at(2))
    score = Client().get(f"/fhir/Observation/score-{scale.pk}", **headers)
    assert score.status_code == 200 and "ETag" not in score and score["Last-Modified"]
    again = Client().get(
        f"/fhir/Observation/score-{scale.pk}", **headers, HTTP_IF_MODIFIED_SINCE=score["Last-Modified"]
    )
    assert again.status_code == 304 and again.content == b""
    # Without a token nothing is revealed, conditional or not.
    assert Client().get(url, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 401


def test_an_unexpected_failure_is_a_500_operation_outcome_and_rolls_back(
    org: Any, patient: Any, bearer: Any, monkeypatch: Any
) -> None:
    from ketaclinic.interop.fhir import services

    headers = bearer(org)
    before = AuditEntry.objects.count()

    def broken(**kwargs: Any) -> Any:
        from ketaclinic.audit import services as audit

        audit.record(user=kwargs["grant"].audit_user, action="query", category="fhir", detail="half done")
        raise RuntimeError("boom")

    monkeypatch.setattr(services, "read", broken)
    response = Client(raise_request_exception=False).get(f"/fhir/Patient/{patient.pk}", **headers)
    body = _outcome(response, 500)
    assert body["issue"][0]["code"] == "exception" and "boom" not in response.content.decode()
    assert AuditEntry.objects.count() == before  # the half-done request was rolled back


def test_an_export_cancelled_while_it_runs_leaves_nothing(
    org: Any, patient: Any, bearer: Any, monkeypatch: Any
) -> None:
    from ketaclinic.core.models import Job
    from ketaclinic.interop.fhir import export

    headers = bearer(org)
    status_url = Client().get("/fhir/$export", **headers, **ASYNC)["Content-Location"]
    real = export._generate

    def cancelled_meanwhile(*args: Any, **kwargs: Any) -> Any:
        produced = real(*args, **kwargs)
        assert Client().delete(status_url, **headers).status_code == 202
        return produced

    monkeypatch.setattr(export, "_generate", cancelled_meanwhile)
    jobs.run_due_jobs()
    assert not BulkExport.objects.exists() and not BulkExportFile.objects.exists()
    assert Client().get(status_url, **headers).status_code == 404
    assert not Job.objects.filter(kind="fhir.export", finished_at__isnull=True).exists()
