"""OAuth2 client credentials: good and bad secrets, inactive clients, scope narrowing, expiry, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.test import Client
from django.utils import timezone
from tests.fhir.conftest import FORM, get_token

from ketaclinic.audit.models import AuditEntry
from ketaclinic.interop.fhir import auth
from ketaclinic.interop.fhir.models import AccessToken


def test_good_secret_gets_a_short_lived_token_stored_hashed(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org, "system/*.rs")
    response = get_token(Client(), api_client.client_id, secret)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "system/*.rs"
    assert body["expires_in"] == 300  # default lifetime: 5 minutes
    row = AccessToken.objects.get()
    assert row.token_hash == auth.digest(body["access_token"]) and body["access_token"] not in row.token_hash
    assert response["Cache-Control"] == "no-store"


def test_credentials_in_the_form_body(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    data = {"grant_type": "client_credentials", "client_id": api_client.client_id, "client_secret": secret}
    response = Client().post("/fhir/token", urlencode(data), content_type=FORM)
    assert response.status_code == 200


def test_wrong_secret_unknown_client_and_inactive_client_are_refused_and_audited(
    org: Any, make_client: Any
) -> None:
    api_client, secret = make_client(org)
    http = Client()
    wrong = get_token(http, api_client.client_id, secret + "x")
    unknown = get_token(http, "nobody", secret)
    auth.deactivate_client(client=api_client)
    inactive = get_token(http, api_client.client_id, secret)
    for response in (wrong, unknown, inactive):
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"
        assert response["WWW-Authenticate"].startswith("Basic")
    assert not AccessToken.objects.exists()
    failures = AuditEntry.objects.filter(category="fhir-token", outcome="failure").order_by("seq")
    assert [e.detail.split(": ", 1)[1] for e in failures] == [
        "wrong secret",
        "unknown client id 'nobody'",
        "client is inactive",
    ]
    assert all(e.client == "fhir" for e in failures)


def test_deactivating_a_client_stops_its_tokens(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"}
    assert Client().get("/fhir/Patient", **headers).status_code == 200
    auth.deactivate_client(client=api_client)
    assert Client().get("/fhir/Patient", **headers).status_code == 401


def test_requested_scopes_narrow_within_the_allowed(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org, "system/*.rs")
    narrowed = get_token(Client(), api_client.client_id, secret, scope="system/Patient.rs")
    assert narrowed.status_code == 200 and narrowed.json()["scope"] == "system/Patient.rs"
    wider = get_token(Client(), api_client.client_id, secret, scope="system/*.cruds")
    assert wider.status_code == 400 and wider.json()["error"] == "invalid_scope"
    other_context = get_token(Client(), api_client.client_id, secret, scope="user/*.rs")
    assert other_context.status_code == 400 and other_context.json()["error"] == "invalid_scope"


def test_grant_type_and_content_type_are_checked(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    data = {"grant_type": "password", "client_id": api_client.client_id, "client_secret": secret}
    response = Client().post("/fhir/token", urlencode(data), content_type=FORM)
    assert response.status_code == 400 and response.json()["error"] == "unsupported_grant_type"
    as_json = Client().post(
        "/fhir/token", {"grant_type": "client_credentials"}, content_type="application/json"
    )
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"
    assert Client().get("/fhir/token").status_code == 405


def test_expired_token_is_refused(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    raw = get_token(Client(), api_client.client_id, secret).json()["access_token"]
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get("/fhir/Patient", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_client_definition_errors_name_every_field(org: Any, other_org: Any, outsider_patient: Any) -> None:
    try:
        auth.create_client(
            organization=org, name=" ", scopes="patient/*.rs user/*.rs bad", patient=outsider_patient
        )
    except auth.ClientError as exc:
        assert set(exc.errors) == {"name", "scopes", "patient", "user"}
    else:
        raise AssertionError("expected ClientError")


def test_issuing_a_token_is_audited_as_the_clients_service_user(org: Any, make_client: Any) -> None:
    api_client, secret = make_client(org)
    get_token(Client(), api_client.client_id, secret)
    entry = AuditEntry.objects.filter(category="fhir-token").get()
    assert entry.user_id == api_client.service_user_id and entry.client == "fhir"
    assert entry.organization_id == org.pk and api_client.client_id in entry.detail
    assert entry.username == f"system:fhir-client:{api_client.client_id}@owner"
