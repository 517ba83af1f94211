"""SMART Backend Services: ``private_key_jwt`` client authentication (RS384, ES384) against a registered JWK
Set or a JWK Set URL, every refusal audited; token introspection (RFC 7662); discovery; the CLI.

Keys are made with ``cryptography``; assertions are signed with joserfc and, independently of any JOSE
library, by assembling the compact JWS by hand over ``cryptography``'s signatures (RFC 7515 §3.1, RFC 7518
§3.3/§3.4), so the server is shown to accept what another implementation produces."""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from typing import Any
from urllib.parse import urlencode

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from django.core import management
from django.core.management.base import CommandError
from django.test import Client
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from tests.fhir.conftest import FORM, get_token

from ketaclinic.audit.models import AuditEntry
from ketaclinic.interop.fhir import auth
from ketaclinic.interop.fhir.models import AccessToken, ApiClient, UsedAssertion

TOKEN_URL = "http://testserver/fhir/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Keys:
    """One private key made with ``cryptography`` and its public JWK (as the hospital would publish it)."""

    def __init__(self, alg: str, kid: str) -> None:
        self.alg, self.kid = alg, kid
        if alg == "RS384":
            self.native: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jose: Any = RSAKey.import_key(self._pem(), parameters={"kid": kid})
        else:
            self.native = ec.generate_private_key(ec.SECP384R1())
            self.jose = ECKey.import_key(self._pem(), parameters={"kid": kid})

    def _pem(self) -> bytes:
        return bytes(
            self.native.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )

    def public_jwk(self) -> dict[str, Any]:
        data = dict(self.jose.as_dict(private=False))
        data.update({"kid": self.kid, "alg": self.alg, "use": "sig"})
        return data

    def sign_with_joserfc(self, claims: dict[str, Any], **header: Any) -> str:
        head = {"alg": self.alg, "kid": self.kid, "typ": "JWT", **header}
        return str(jwt.encode(head, claims, self.jose, algorithms=[self.alg]))

    def sign_by_hand(self, claims: dict[str, Any]) -> str:
        """A compact JWS built without any JOSE library: base64url(header).base64url(claims).signature."""

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        header = {"alg": self.alg, "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}".encode()
        if self.alg == "RS384":
            signature = self.native.sign(signing_input, padding.PKCS1v15(), hashes.SHA384())
        else:  # ES384: the raw 48-byte r and s, not DER (RFC 7518 §3.4)
            r, s = decode_dss_signature(self.native.sign(signing_input, ec.ECDSA(hashes.SHA384())))
            signature = r.to_bytes(48, "big") + s.to_bytes(48, "big")
        return f"{signing_input.decode()}.{b64(signature)}"


@pytest.fixture(scope="module")
def rsa_keys() -> Keys:
    return Keys("RS384", "hospital-rsa-1")


@pytest.fixture(scope="module")
def ec_keys() -> Keys:
    return Keys("ES384", "hospital-ec-1")


@pytest.fixture(autouse=True)
def _fresh_jwks_cache() -> Iterator[None]:
    auth.clear_jwks_cache()
    yield
    auth.clear_jwks_cache()


def claims(client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": now + 240,
        "iat": now,
        "jti": str(uuid.uuid4()),
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def ask(assertion: str, scope: str | None = None, **extra: str) -> Any:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE}
    data["client_assertion"] = assertion
    if scope:
        data["scope"] = scope
    data.update(extra)
    return Client(enforce_csrf_checks=True).post("/fhir/token", urlencode(data), content_type=FORM)


def register(org: Any, *keys: Keys, scopes: str = "system/*.rs", **extra: Any) -> ApiClient:
    if "jwks_url" not in extra:
        extra["jwks"] = {"keys": [k.public_jwk() for k in keys]}
    return auth.register_backend_client(organization=org, name="Harbor Hospital", scopes=scopes, **extra)


def test_rs384_and_es384_assertions_get_tokens(org: Any, patient: Any, rsa_keys: Keys, ec_keys: Keys) -> None:
    client = register(org, rsa_keys, ec_keys)
    assert client.auth_method == "private_key_jwt" and client.secret_hash == ""
    for keys in (rsa_keys, ec_keys):
        response = ask(keys.sign_with_joserfc(claims(client.client_id)))
        assert response.status_code == 200, response.content
        body = response.json()
        assert body["token_type"] == "Bearer" and body["scope"] == "system/*.rs" and body["expires_in"] == 300
        read = Client().get(
            f"/fhir/Patient/{patient.pk}", HTTP_AUTHORIZATION=f"Bearer {body['access_token']}"
        )
        assert read.status_code == 200
    issued = AuditEntry.objects.filter(category="fhir-token", outcome="success")
    assert issued.count() == 2 and all("private_key_jwt" in e.detail for e in issued)
    assert UsedAssertion.objects.filter(client=client).count() == 2


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_an_assertion_signed_without_any_jose_library_is_accepted(
    org: Any, alg: str, rsa_keys: Keys, ec_keys: Keys
) -> None:
    keys = rsa_keys if alg == "RS384" else ec_keys
    client = register(org, keys)
    response = ask(keys.sign_by_hand(claims(client.client_id)), scope="system/Patient.rs")
    assert response.status_code == 200, response.content
    assert response.json()["scope"] == "system/Patient.rs"


def _hs256(kid: str, payload: dict[str, Any], secret: bytes) -> str:
    """The key-confusion attack: an HMAC over the token keyed with the (public) verification key."""
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps({"alg": "HS256", "kid": kid}).encode()) + "." + b64(json.dumps(payload).encode())
    return head + "." + b64(hmac.new(secret, head.encode(), hashlib.sha256).digest())


def _with_header(token: str, header: dict[str, Any]) -> str:
    head = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return head + token[token.index(".") :]


def _refusals(client_id: str, keys: Keys, other: Keys) -> dict[str, tuple[str, str]]:
    """name → (assertion, the reason the audit names)."""
    now = int(time.time())
    public_pem = keys.jose.as_pem(private=False)
    none_header = base64.urlsafe_b64encode(b'{"alg":"none","kid":"' + keys.kid.encode() + b'"}')
    payload = base64.urlsafe_b64encode(json.dumps(claims(client_id)).encode())
    return {
        "wrong aud": (
            keys.sign_with_joserfc(claims(client_id, aud="https://elsewhere.example/token")),
            "aud must be the token endpoint URL",
        ),
        "exp more than 5 minutes ahead": (
            keys.sign_with_joserfc(claims(client_id, exp=now + 600)),
            "more than five minutes in the future",
        ),
        "expired": (keys.sign_with_joserfc(claims(client_id, exp=now - 5)), "has expired"),
        "no exp": (keys.sign_with_joserfc(claims(client_id, exp=None)), "lacks exp"),
        "no jti": (keys.sign_with_joserfc(claims(client_id, jti=None)), "lacks jti"),
        "sub is not the client": (
            keys.sign_with_joserfc(claims(client_id, sub="someone-else")),
            "sub must be the client_id",
        ),
        "unknown kid": (
            keys.sign_with_joserfc(claims(client_id), kid="not-registered"),
            "no registered key has kid 'not-registered'",
        ),
        "no kid": (
            str(jwt.encode({"alg": keys.alg}, claims(client_id), keys.jose, algorithms=[keys.alg])),
            "no kid",
        ),
        "signed by another key": (
            other.sign_with_joserfc(claims(client_id), kid=keys.kid),
            "signature does not verify",
        ),
        "alg none": (f"{none_header.decode().rstrip('=')}.{payload.decode().rstrip('=')}.", "alg 'none'"),
        "HS256 with the public key as secret": (
            _hs256(keys.kid, claims(client_id), public_pem),
            "alg 'HS256'",
        ),
        "RS256 instead of RS384": (
            str(
                jwt.encode(
                    {"alg": "RS256", "kid": keys.kid},
                    claims(client_id),
                    keys.jose,
                    algorithms=["RS256"],
                )
            )
            if keys.alg == "RS384"
            else _with_header(keys.sign_with_joserfc(claims(client_id)), {"alg": "ES256", "kid": keys.kid}),
            "is not accepted (RS384 or ES384)",
        ),
        "foreign jku": (
            keys.sign_with_joserfc(claims(client_id), jku="https://attacker.example/jwks.json"),
            "jku is not the JWK Set URL registered",
        ),
        "not a JWT": ("abc.def", "not a JWT"),
    }


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_bad_assertions_are_invalid_client_and_audited(
    org: Any, alg: str, rsa_keys: Keys, ec_keys: Keys
) -> None:
    keys, other = (rsa_keys, Keys("RS384", "x")) if alg == "RS384" else (ec_keys, Keys("ES384", "x"))
    client = register(org, keys)
    for name, (assertion, reason) in _refusals(client.client_id, keys, other).items():
        before = AuditEntry.objects.count()
        response = ask(assertion)
        assert response.status_code == 401, name
        assert response.json()["error"] == "invalid_client", name
        assert response["Content-Type"] == "application/json"
        (entry,) = AuditEntry.objects.filter(seq__gt=before)
        assert entry.category == "fhir-token" and entry.outcome == "failure", name
        assert reason in entry.detail, (name, entry.detail)
        if name not in ("not a JWT", "alg none"):
            assert entry.user_id == client.service_user_id and entry.organization_id == org.pk
    assert not AccessToken.objects.exists()


def test_a_replayed_assertion_is_refused(org: Any, ec_keys: Keys) -> None:
    client = register(org, ec_keys)
    assertion = ec_keys.sign_with_joserfc(claims(client.client_id))
    assert ask(assertion).status_code == 200
    replay = ask(assertion)
    assert replay.status_code == 401 and "already used" in replay.json()["error_description"]
    assert AccessToken.objects.count() == 1
    # Expired jti records are pruned when the next assertion is checked.
    UsedAssertion.objects.update(expires_at="2000-01-01T00:00:00Z")
    assert ask(ec_keys.sign_with_joserfc(claims(client.client_id))).status_code == 200
    assert UsedAssertion.objects.count() == 1


def test_client_and_method_mismatches(org: Any, rsa_keys: Keys, make_client: Any) -> None:
    key_client = register(org, rsa_keys)
    secret_client, secret = make_client(org)
    # Unknown client; an inactive one; a secret client sending an assertion; a key client sending a secret.
    unknown = ask(rsa_keys.sign_with_joserfc(claims("nobody-at-all")))
    assert unknown.status_code == 401
    as_secret = ask(rsa_keys.sign_with_joserfc(claims(secret_client.client_id)))
    assert as_secret.status_code == 401
    by_secret = get_token(Client(), key_client.client_id, "anything")
    assert by_secret.status_code == 401 and "private_key_jwt" in by_secret.json()["error_description"]
    both = ask(rsa_keys.sign_with_joserfc(claims(key_client.client_id)), client_secret=secret)
    assert both.status_code == 400 and both.json()["error"] == "invalid_request"
    other_id = ask(
        rsa_keys.sign_with_joserfc(claims(key_client.client_id)), client_id=secret_client.client_id
    )
    assert other_id.status_code == 401
    wrong_type = ask(rsa_keys.sign_with_joserfc(claims(key_client.client_id)), client_assertion_type="saml")
    assert wrong_type.status_code == 401 and ASSERTION_TYPE in wrong_type.json()["error_description"]
    auth.deactivate_client(client=key_client)
    inactive = ask(rsa_keys.sign_with_joserfc(claims(key_client.client_id)))
    assert inactive.status_code == 401
    details = [e.detail for e in AuditEntry.objects.filter(category="fhir-token", outcome="failure")]
    assert any("unknown client id 'nobody-at-all'" in d for d in details)
    assert any("client is inactive" in d for d in details)
    assert not AccessToken.objects.exists()


# --- JWK Set URL -----------------------------------------------------------------------------------------


class JwksServer:
    """A JWK Set served from a local http.server thread (nothing from the internet); counts its fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[JwksServer]:
    server = JwksServer()
    yield server
    server.close()


def test_keys_from_a_jwks_url_are_fetched_cached_and_refreshed_for_a_new_kid(
    org: Any, jwks_server: JwksServer, rsa_keys: Keys, ec_keys: Keys
) -> None:
    jwks_server.keys = [rsa_keys.public_jwk()]
    client = register(org, jwks_url=jwks_server.url)
    assert client.jwks is None and client.jwks_url == jwks_server.url
    for _ in range(2):
        assert ask(rsa_keys.sign_with_joserfc(claims(client.client_id))).status_code == 200
    assert jwks_server.hits == 1  # cached
    # The client rotates in a new key: an unknown kid fetches the set again once.
    jwks_server.keys = [rsa_keys.public_jwk(), ec_keys.public_jwk()]
    auth._jwks_cache[jwks_server.url] = (time.monotonic() - 11, auth._jwks_cache[jwks_server.url][1])
    assert ask(ec_keys.sign_with_joserfc(claims(client.client_id))).status_code == 200
    assert jwks_server.hits == 2
    # jku naming the registered URL is accepted.
    ok = ask(ec_keys.sign_with_joserfc(claims(client.client_id), jku=jwks_server.url))
    assert ok.status_code == 200


def test_an_unreachable_jwks_url_is_invalid_client_with_a_clear_description(
    org: Any, rsa_keys: Keys, jwks_server: JwksServer
) -> None:
    url = jwks_server.url
    jwks_server.close()  # nothing listens there any more
    client = register(org, jwks_url=url)
    response = ask(rsa_keys.sign_with_joserfc(claims(client.client_id)))
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert (
        "unreachable" in response.json()["error_description"] and url in response.json()["error_description"]
    )
    entry = AuditEntry.objects.filter(category="fhir-token", outcome="failure").get()
    assert "unreachable" in entry.detail


def test_a_jwks_url_publishing_private_keys_is_refused(org: Any, jwks_server: JwksServer) -> None:
    leaky = Keys("ES384", "leaky")
    jwks_server.keys = [dict(leaky.jose.as_dict(private=True), kid="leaky")]
    client = register(org, jwks_url=jwks_server.url)
    response = ask(leaky.sign_with_joserfc(claims(client.client_id)))
    assert response.status_code == 401 and "private" in response.json()["error_description"]


# --- registration ------------------------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Key size should be")
def test_registration_refuses_unusable_key_sets(org: Any, rsa_keys: Keys) -> None:
    p256 = ECKey.generate_key("P-256", parameters={"kid": "p256"}).as_dict(private=False)
    small_rsa = RSAKey.generate_key(1024, parameters={"kid": "small"}).as_dict(private=False)
    cases = {
        "private": {"keys": [dict(rsa_keys.jose.as_dict(private=True), kid="k")]},
        "oct": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]},
        "curve": {"keys": [p256]},
        "rsa bits": {"keys": [small_rsa]},
        "alg": {"keys": [dict(rsa_keys.public_jwk(), alg="RS256")]},
        "no kid": {"keys": [{k: v for k, v in rsa_keys.public_jwk().items() if k != "kid"}]},
        "empty": {"keys": []},
        "not a set": [rsa_keys.public_jwk()],
    }
    for name, jwks in cases.items():
        with pytest.raises(auth.ClientError) as caught:
            auth.register_backend_client(organization=org, name="H", scopes="system/*.rs", jwks=jwks)
        assert set(caught.value.errors) == {"jwks"}, name
    assert "PUBLIC" in _error(org, {"keys": [dict(rsa_keys.jose.as_dict(private=True), kid="k")]})
    for url, why in [
        ("http://jwks.example.org/keys", "https"),
        ("ftp://example.org/keys", "https"),
        ("https://user:pw@example.org/keys", "credentials"),
    ]:
        with pytest.raises(auth.ClientError) as caught:
            auth.register_backend_client(organization=org, name="H", scopes="system/*.rs", jwks_url=url)
        assert why in caught.value.errors["jwks_url"]
    with pytest.raises(auth.ClientError) as caught:
        auth.register_backend_client(organization=org, name="H", scopes="system/*.rs")
    assert set(caught.value.errors) == {"keys"}
    assert not ApiClient.objects.exists()


def _error(org: Any, jwks: Any) -> str:
    try:
        auth.register_backend_client(organization=org, name="H", scopes="system/*.rs", jwks=jwks)
    except auth.ClientError as exc:
        return exc.errors["jwks"]
    raise AssertionError("expected a refusal")


def test_cli_registers_a_backend_client_from_a_public_jwks_file(
    org: Any, tmp_path: Any, rsa_keys: Keys, ec_keys: Keys
) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps({"keys": [rsa_keys.public_jwk(), ec_keys.public_jwk()]}))
    out = StringIO()
    management.call_command(
        "fhir_client",
        "add",
        org="owner",
        name="Harbor Hospital",
        scope=["system/Patient.rs system/Observation.rs"],
        jwks_file=str(keys_file),
        json=True,
        stdout=out,
    )
    created = json.loads(out.getvalue())
    assert created["auth_method"] == "private_key_jwt" and "client_secret" not in created
    assert created["kids"] == ["hospital-rsa-1", "hospital-ec-1"]
    assert created["scopes"] == "system/Patient.rs system/Observation.rs"
    response = ask(ec_keys.sign_with_joserfc(claims(created["client_id"])))
    assert response.status_code == 200
    add = {"org": "owner", "name": "X", "scope": ["system/*.rs"]}
    private_file = tmp_path / "private.json"
    private_file.write_text(json.dumps({"keys": [dict(ec_keys.jose.as_dict(private=True), kid="e")]}))
    with pytest.raises(CommandError, match="private or secret key"):
        management.call_command("fhir_client", "add", jwks_file=str(private_file), **add)
    pem = tmp_path / "private.pem"
    pem.write_bytes(ec_keys.jose.as_pem(private=True))
    with pytest.raises(CommandError, match="PRIVATE key"):
        management.call_command("fhir_client", "add", jwks_file=str(pem), **add)
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(CommandError, match="not JSON"):
        management.call_command("fhir_client", "add", jwks_file=str(garbage), **add)
    with pytest.raises(CommandError, match="jwks_url: must be an https"):
        management.call_command("fhir_client", "add", jwks_url="http://hospital.example/jwks", **add)
    assert ApiClient.objects.count() == 1
    listing = StringIO()
    management.call_command("fhir_client", "list", org="owner", json=True, stdout=listing)
    assert json.loads(listing.getvalue())[0]["kids"] == ["hospital-rsa-1", "hospital-ec-1"]


# --- introspection and discovery ---------------------------------------------------------------------------


def test_introspection(org: Any, other_org: Any, patient: Any, ec_keys: Keys, make_client: Any) -> None:
    client = register(org, ec_keys)
    raw = ask(ec_keys.sign_with_joserfc(claims(client.client_id))).json()["access_token"]

    def introspect(token: str, **form: str) -> Any:
        data = {
            "token": token,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": ec_keys.sign_with_joserfc(claims(client.client_id)),
            **form,
        }
        return Client(enforce_csrf_checks=True).post("/fhir/introspect", urlencode(data), content_type=FORM)

    active = introspect(raw)
    assert active.status_code == 200, active.content
    body = active.json()
    row = AccessToken.objects.get()
    assert body == {
        "active": True,
        "scope": "system/*.rs",
        "client_id": client.client_id,
        "token_type": "Bearer",
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.issued_at.timestamp()),
    }
    # A patient-bound token of a secret client of the same organization names its patient.
    app, secret = make_client(org, "patient/*.rs", patient=patient)
    app_token = get_token(Client(), app.client_id, secret).json()["access_token"]
    assert introspect(app_token).json()["patient"] == str(patient.pk)
    # Another organization's token, nonsense, an expired token: inactive, nothing else said.
    theirs, their_secret = make_client(other_org)
    their_token = get_token(Client(), theirs.client_id, their_secret).json()["access_token"]
    assert introspect(their_token).json() == {"active": False}
    assert introspect("nonsense").json() == {"active": False}
    AccessToken.objects.filter(client=client).update(
        issued_at="2020-01-01T00:00:00Z", expires_at="2020-01-01T00:05:00Z"
    )
    assert introspect(raw).json() == {"active": False}
    # The introspecting client must authenticate; the token parameter is required.
    anonymous = Client().post("/fhir/introspect", urlencode({"token": raw}), content_type=FORM)
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
    missing = introspect("")
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_request"
    by_secret = Client().post(
        "/fhir/introspect",
        urlencode({"token": app_token, "client_id": app.client_id, "client_secret": secret}),
        content_type=FORM,
    )
    assert by_secret.status_code == 200 and by_secret.json()["active"] is True


def test_discovery_advertises_backend_services(db: Any) -> None:
    config = Client().get("/fhir/.well-known/smart-configuration").json()
    assert config["token_endpoint_auth_methods_supported"] == [
        "private_key_jwt",
        "client_secret_basic",
        "client_secret_post",
    ]
    assert config["token_endpoint_auth_signing_alg_values_supported"] == ["RS384", "ES384"]
    assert "client-confidential-asymmetric" in config["capabilities"]
    assert "client-confidential-symmetric" in config["capabilities"]
    assert config["grant_types_supported"] == ["client_credentials"]
    assert config["introspection_endpoint"] == "http://testserver/fhir/introspect"
    assert "system/*.rs" in config["scopes_supported"]
    security = Client().get("/fhir/metadata").json()["rest"][0]["security"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris == {"token": TOKEN_URL, "introspect": "http://testserver/fhir/introspect"}
    assert "private_key_jwt" in security["description"]


def test_a_client_clock_a_little_ahead_is_tolerated_for_iat_not_for_exp(org: Any, ec_keys: Keys) -> None:
    client = register(org, ec_keys)
    now = int(time.time())
    ahead = ask(ec_keys.sign_with_joserfc(claims(client.client_id, iat=now + 30, nbf=now + 30)))
    assert ahead.status_code == 200, ahead.content
    far_ahead = ask(ec_keys.sign_with_joserfc(claims(client.client_id, iat=now + 600)))
    assert far_ahead.status_code == 401 and "iat" in far_ahead.json()["error_description"]
    just_expired = ask(ec_keys.sign_with_joserfc(claims(client.client_id, exp=now - 1)))
    assert just_expired.status_code == 401 and "expired" in just_expired.json()["error_description"]


def test_a_jti_raced_by_two_workers_is_accepted_once(transactional_db: Any, org: Any, ec_keys: Keys) -> None:
    """Two requests with the same assertion at the same moment (two server processes): the unique
    constraint lets exactly one through. PostgreSQL only (SQLite serialises writers anyway)."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("concurrent transactions need PostgreSQL")
    client = register(org, ec_keys)
    assertion = ec_keys.sign_with_joserfc(claims(client.client_id))
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def worker() -> None:
        try:
            barrier.wait()
            with transaction.atomic():
                auth.verify_assertion(assertion, client_id="", token_url=TOKEN_URL, request=None)
            outcomes.append("ok")
        except auth.TokenError:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["ok", "refused"]
    assert UsedAssertion.objects.count() == 1
