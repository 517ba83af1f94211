"""Domain errors for rating scales. Messages are written for the nurse or clinician at the screen."""

from __future__ import annotations

from collections.abc import Mapping


class InstrumentError(Exception):
    """Base class for rating-scale errors."""


class UnknownInstrumentError(InstrumentError, KeyError):
    def __init__(self, code: str, known: tuple[str, ...]) -> None:
        self.code = code
        self.message = f"Unknown rating scale {code!r}. Known scales: {', '.join(known)}."
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class InstrumentInputError(InstrumentError, ValueError):
    """Bad answers or settings. ``errors`` names EVERY bad item (or field) with its reason."""

    def __init__(self, what: str, errors: Mapping[str, str]) -> None:
        self.what = what
        self.errors: dict[str, str] = dict(errors)
        n = len(self.errors)
        plural = "problem" if n == 1 else "problems"
        self.message = f"{what}: {n} {plural}: " + "; ".join(self.errors.values())
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message
