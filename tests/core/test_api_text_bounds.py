"""Issue 15 "bounds everywhere": every text the API accepts states its maximum and refuses control
characters — in the OpenAPI document, so that clients (and schemathesis) know, and in what the server
does: a value past the limit is refused with 422 naming the field and the limit, never cut; a NUL byte in
a name is refused, never stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from tests.chairside.journey import Api

from ketaclinic.core.api import api
from ketaclinic.patients.models import Patient


def _request_strings(
    node: Any, components: dict[str, Any], path: str, seen: set[str]
) -> list[tuple[str, Any]]:
    """Every string schema reachable from ``node`` (request side), with where it is."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].rsplit("/", 1)[-1]
            if name in seen:
                return []
            return _request_strings(components[name], components, f"{name}", seen | {name})
        found: list[tuple[str, Any]] = []
        if (
            node.get("type") == "string"
            and "enum" not in node
            and "format" not in node
            and "const" not in node
        ):
            found.append((path, node))
        for key in ("properties",):
            for prop, sub in node.get(key, {}).items():
                found += _request_strings(sub, components, f"{path}.{prop}", seen)
        for key in ("items", "additionalProperties", "propertyNames"):
            if isinstance(node.get(key), dict):
                found += _request_strings(node[key], components, f"{path}[{key}]", seen)
        for key in ("anyOf", "oneOf", "allOf"):
            if any(sub.get("type") in ("number", "integer") for sub in node.get(key, [])):
                continue  # a decimal, as a number or its digits (pydantic refuses anything else)
            for sub in node.get(key, []):
                found += _request_strings(sub, components, path, seen)
        return found
    return []


def test_every_text_the_api_accepts_states_its_maximum_and_refuses_control_characters() -> None:
    schema = api.get_openapi_schema()
    components = schema.get("components", {}).get("schemas", {})
    unbounded = []
    for route, operations in schema["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {route}"
            for param in op.get("parameters", []):
                for path, node in _request_strings(param.get("schema", {}), components, param["name"], set()):
                    if "maxLength" not in node or "pattern" not in node:
                        unbounded.append(f"{where} {path}")
            body = op.get("requestBody", {}).get("content", {})
            for media in body.values():
                for path, node in _request_strings(media.get("schema", {}), components, "body", set()):
                    if "maxLength" not in node or "pattern" not in node:
                        unbounded.append(f"{where} {path}")
    assert unbounded == [], "\n".join(unbounded)


def _api(user: Any, sign_in: Any) -> Client:
    client = Api(user, sign_in).client
    client.defaults["HTTP_X_CSRFTOKEN"] = client.cookies[settings.CSRF_COOKIE_NAME].value
    return client


def _post(client: Client, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, data=json.dumps(body), content_type="application/json")


def _new_patient(**extra: Any) -> dict[str, Any]:
    return {
        "given_name": "Nadia",
        "family_name": "Okafor",
        "date_of_birth": "1984-02-11",
        "sex": "female",
        "weight_kg": 70,
        "height_cm": 170,
    } | extra


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("given_name", "Nadia\x00", "NUL, U+0000"),
        ("family_name", "Oka\x1b[2Jfor", "escape, U+001B"),
        ("family_name", "Okafor\nSmith", "this field is one line"),
        ("address", "1 Main Street " * 30, "more than the 300 it may have"),
    ],
)
def test_a_name_with_a_control_character_or_an_address_too_long_is_refused(
    nurse: Any, sign_in: Any, field: str, value: str, words: str
) -> None:
    response = _post(_api(nurse, sign_in), "/api/patients", _new_patient(**{field: value}))
    assert response.status_code == 422, response.content
    detail = {d["loc"][-1]: d["msg"] for d in response.json()["detail"]}
    assert words in detail[field]
    assert not Patient.objects.exists()
