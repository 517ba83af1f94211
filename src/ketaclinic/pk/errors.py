"""Domain errors of the PK simulator, worded for clinic staff."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


class PKError(Exception):
    """Base class: the message is safe to show to a nurse or prescriber."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PKValidationError(PKError):
    """One or more inputs are invalid. `errors` maps every bad field to its reason."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors: Mapping[str, str] = MappingProxyType(dict(errors))
        detail = "; ".join(f"{field}: {reason}" for field, reason in self.errors.items())
        super().__init__(f"Cannot simulate this dose: {detail}")


def raise_if_errors(errors: Mapping[str, str]) -> None:
    """Raise PKValidationError naming every collected problem at once."""
    if errors:
        raise PKValidationError(errors)
