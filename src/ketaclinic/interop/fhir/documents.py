"""The server's own documents: OperationOutcome, searchset Bundles, the CapabilityStatement and the SMART
configuration (interop.md §2.4; security.md §6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlencode

from ketaclinic import __version__ as ketaclinic_version
from ketaclinic.interop.fhir import codes, profiles
from ketaclinic.interop.fhir.resources import REGISTRY, include_options
from ketaclinic.interop.fhir.resources.base import instant

FHIR_VERSION: Final = "4.0.1"
FHIR_JSON: Final = "application/fhir+json"
NDJSON: Final = "application/fhir+ndjson"
SCOPES_SUPPORTED: Final = ("system/*.rs", "user/*.rs", "patient/*.rs")
#: Client authentication at the token and introspection endpoints (auth.py): SMART Backend Services'
#: private_key_jwt, and shared secrets for clients registered with one (local tools).
TOKEN_AUTH_METHODS: Final = ("private_key_jwt", "client_secret_basic", "client_secret_post")
ASSERTION_ALGORITHMS: Final = ("RS384", "ES384")
SMART_CAPABILITIES: Final = (
    "client-confidential-asymmetric",
    "client-confidential-symmetric",
    "permission-v2",
)


def outcome(issues: Sequence[tuple[str, str, str | None]]) -> dict[str, Any]:
    """OperationOutcome from (code, diagnostics, expression) triples, all of severity error."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "severity": "error",
                "code": code,
                "diagnostics": text,
                **({"expression": [expr]} if expr else {}),
            }
            for code, text, expr in issues
        ],
    }


def searchset(
    *,
    base: str,
    type_url: str,
    params: Sequence[tuple[str, str]],
    resources: Sequence[Mapping[str, Any]],
    total: int,
    count: int,
    now: datetime,
    next_cursor: str = "",
    previous_cursor: str = "",
    included: Sequence[Mapping[str, Any]] = (),
    issues: Sequence[tuple[str, str, str]] = (),
    ignored: Sequence[str] = (),
) -> dict[str, Any]:
    """A searchset Bundle: ``self`` (the parameters used: ones ignored under lenient handling are left
    out), ``next``/``previous`` with keyset cursors (paging.py), the matches, included resources
    (``search.mode`` include) and an OperationOutcome (``search.mode`` outcome) for ``issues``."""
    skip = set(ignored)
    kept = [(k, v) for k, v in params if k not in skip and f"{k}={v}" not in skip]
    plain = [(k, v) for k, v in kept if k not in ("_offset", "_cursor", "_count")]

    def link(relation: str, cursor: str | None) -> dict[str, str]:
        if cursor is None:  # self: the page as asked
            query = [*plain, ("_count", str(count))] + [
                (k, v) for k, v in kept if k in ("_offset", "_cursor")
            ]
        else:
            query = [*plain, ("_count", str(count)), ("_cursor", cursor)]
        return {"relation": relation, "url": f"{type_url}?{urlencode(query)}"}

    links = [link("self", None)]
    if next_cursor:
        links.append(link("next", next_cursor))
    if previous_cursor:
        links.append(link("previous", previous_cursor))
    doc = bundle(base=base, resources=resources, total=total, links=links, now=now)
    extra = [
        {"fullUrl": f"{base}{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}}
        for r in included
    ]
    if issues:
        extra.append(
            {
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": severity, "code": code, "diagnostics": text}
                        for severity, code, text in issues
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    if extra:
        doc["entry"] = [*doc.get("entry", []), *extra]
    return doc


def bundle(
    *,
    base: str,
    resources: Sequence[Mapping[str, Any]],
    total: int,
    links: Sequence[Mapping[str, str]],
    now: datetime,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "meta": {"lastUpdated": instant(now)},
        "total": total,
        "link": list(links),
    }
    if resources:
        doc["entry"] = [
            {
                "fullUrl": f"{base}{r['resourceType']}/{r['id']}",
                "resource": r,
                "search": {"mode": "match"},
            }
            for r in resources
        ]
    return doc


def capability_statement(*, base: str, now: datetime) -> dict[str, Any]:
    resources = []
    for rtype in REGISTRY.values():
        entry: dict[str, Any] = {
            "type": rtype.name,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype.name}",
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [
                {"name": name, "type": p.type.value, "documentation": p.documentation}
                for name, p in rtype.params.items()
            ],
        }
        # The US Core 6.1.0 profiles its resources conform to (profiles.py); a type without one claims none.
        if rtype.name in profiles.SUPPORTED:
            entry["supportedProfile"] = list(profiles.SUPPORTED[rtype.name])
        entry["documentation"] = rtype.documentation
        options = include_options(rtype)
        if any(not o.reverse for o in options):
            entry["searchInclude"] = [str(o) for o in options if not o.reverse]
        if any(o.reverse for o in options):
            entry["searchRevInclude"] = [str(o) for o in options if o.reverse]
        if rtype.name == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "export",
                    "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export",
                },
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": instant(now),
        "publisher": "ketaclinic",
        "kind": "instance",
        "software": {"name": "ketaclinic", "version": ketaclinic_version},
        "implementation": {"description": "ketaclinic FHIR R4 API (read-only)", "url": base.rstrip("/")},
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        # US Core 6.1.0 profiles are claimed per resource (supportedProfile). The US Core Server
        # CapabilityStatement is not instantiated: it also asks for what this server does not do (Provenance
        # and _revinclude=Provenance:target, SMART App Launch for users; docs/operations.md).
        "implementationGuide": [f"{profiles.US_CORE_IG}|{profiles.US_CORE_VERSION}"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "extension": [
                        {
                            "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                            "extension": [
                                {"url": "token", "valueUri": f"{base}token"},
                                {"url": "introspect", "valueUri": f"{base}introspect"},
                            ],
                        }
                    ],
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": codes.SMART_CAPABILITIES,
                                    "code": "SMART-on-FHIR",
                                    "display": "SMART-on-FHIR",
                                }
                            ],
                            "text": "OAuth2 using SMART-on-FHIR profile (SMART Backend Services)",
                        }
                    ],
                    "description": "SMART Backend Services: OAuth2 client credentials with a signed JWT "
                    "client assertion (private_key_jwt, RS384 or ES384, keys from the client's registered "
                    "JWK Set or JWK Set URL); shared secrets (client_secret_basic, client_secret_post) only "
                    "for clients registered with one. Bearer tokens; SMART v2 scopes "
                    + ", ".join(SCOPES_SUPPORTED)
                    + ". Discovery: .well-known/smart-configuration.",
                },
                "resource": resources,
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                    }
                ],
            }
        ],
    }


def smart_configuration(*, base: str) -> dict[str, Any]:
    """SMART App Launch 2.x ``.well-known/smart-configuration``: what this server actually supports."""
    return {
        "issuer": base.rstrip("/"),
        "token_endpoint": f"{base}token",
        "introspection_endpoint": f"{base}introspect",
        "token_endpoint_auth_methods_supported": list(TOKEN_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": ["client_credentials"],
        "scopes_supported": [
            *SCOPES_SUPPORTED,
            *(f"{ctx}/{name}.rs" for ctx in ("system", "user", "patient") for name in REGISTRY),
        ],
        "capabilities": list(SMART_CAPABILITIES),
    }
