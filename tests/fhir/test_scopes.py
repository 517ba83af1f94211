"""SMART v2 scope grammar (pure)."""

from __future__ import annotations

import pytest

from ketaclinic.interop.fhir.scopes import (
    Context,
    Scope,
    ScopeError,
    broadest_context,
    format_scopes,
    narrow,
    parse_scopes,
)

TYPES = ("Patient", "Observation")


def test_parse_v2_and_v1_scopes_ignoring_identity_scopes() -> None:
    scopes = parse_scopes(
        "openid fhirUser system/*.rs patient/Observation.read user/Patient.r", known_types=TYPES
    )
    assert scopes == (
        Scope(Context.SYSTEM, "*", frozenset("rs")),
        Scope(Context.PATIENT, "Observation", frozenset("rs")),
        Scope(Context.USER, "Patient", frozenset("r")),
    )
    assert format_scopes(scopes) == "system/*.rs patient/Observation.rs user/Patient.r"


def test_bad_scopes_are_all_named() -> None:
    with pytest.raises(ScopeError) as caught:
        parse_scopes(
            "system/*.cruds system/Patient.sr system/Bogus.rs admin/*.rs patient/Observation.rs?category=x",
            known_types=TYPES,
        )
    assert set(caught.value.errors) == {
        "system/*.cruds",
        "system/Patient.sr",
        "system/Bogus.rs",
        "admin/*.rs",
        "patient/Observation.rs?category=x",
    }
    assert "read-only" in caught.value.errors["system/*.cruds"]


def test_narrowing_only_within_what_is_allowed() -> None:
    allowed = parse_scopes("system/*.rs")
    assert narrow(parse_scopes("system/Patient.r"), allowed) == (
        Scope(Context.SYSTEM, "Patient", frozenset("r")),
    )
    with pytest.raises(ScopeError):
        narrow(parse_scopes("patient/*.rs"), allowed)  # another context
    with pytest.raises(ScopeError):
        narrow(parse_scopes("system/*.rs"), parse_scopes("system/Patient.rs"))  # wider type


def test_broadest_context_decides() -> None:
    scopes = parse_scopes("patient/*.rs system/Patient.rs")
    assert broadest_context(scopes, "Patient", "s") is Context.SYSTEM
    assert broadest_context(scopes, "Observation", "r") is Context.PATIENT
    assert broadest_context(parse_scopes("system/Patient.r"), "Patient", "s") is None
