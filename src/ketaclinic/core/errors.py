"""One base for the domain errors: each carries its message, its HTTP status and, for invalid input, the
fields it refuses (issue 17 point 5, after Polar's ``server/polar/exceptions.py``).

A service raises; it never builds a response. Each edge has one handler that turns a :class:`DomainError`
into its answer — the JSON API (core/api.py: 422 names each field, otherwise ``{"detail": message}``), the
web pages (core/middleware.py: an error page with the status) and FHIR (interop/fhir/views.py: an
OperationOutcome with the status). Endpoints never catch a domain error only to translate it.

The statuses:

* 422 — invalid input; ``errors`` maps each field to its reason (naming the limit); nothing was changed;
* 409 — the record changed meanwhile (stale version) or its state does not allow the act;
* 403 — the user may not do this (their role, or a record at a site they do not cover);
* 404 — no such record, or one the user may not see;
* 410 — a link that is used, expired or revoked; 429 — too many attempts.

The kernel imports nothing of the apps: every app's errors subclass this one.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import ClassVar

#: The statuses a domain error may carry (anything else is a programming error, see __init_subclass__).
STATUSES = frozenset({400, 403, 404, 409, 410, 422, 429})


class DomainError(Exception):
    """A refused act a user can read: ``message``, ``status`` and, for 422, ``errors`` (field -> reason).

    Subclasses set ``status`` as a class attribute; one instance may carry another with ``status=``.
    Subclasses that set ``message`` or ``errors`` themselves (before or after calling this ``__init__``)
    keep them: the base fills in only what is missing.
    """

    status: ClassVar[int] = 409
    errors: dict[str, str]
    message: str

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.status not in STATUSES:
            raise TypeError(f"{cls.__name__}.status {cls.status} is not one of {sorted(STATUSES)}")

    def __init__(
        self, message: str = "", *, errors: Mapping[str, str] | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.__dict__.setdefault("message", message)
        if errors is not None:
            self.errors = dict(errors)
        else:
            self.__dict__.setdefault("errors", {})
        if status is not None:
            if status not in STATUSES:
                raise ValueError(f"status {status} is not one of {sorted(STATUSES)}")
            self.__dict__["status"] = status

    def field_errors(self) -> dict[str, str]:
        """The fields refused (empty unless the error is about input)."""
        return dict(self.errors)

    def text(self) -> str:
        """The sentence to show: the message, else every field with its reason."""
        return self.message or str(self)


class InputError(DomainError):
    """Invalid input: ``errors`` names each field and its limit; nothing was changed."""

    status = 422

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()), errors=errors)


@contextmanager
def fields_under(prefix: str, *, keep: Collection[str] = ()) -> Iterator[None]:
    """Name a service's fields as the edge's body nests them (``age`` -> ``data.age``), except ``keep``.

    The one translation an edge does besides the handler: the service knows its own field names, the API
    body wraps some of them in an object. The error goes on to the edge's handler unchanged otherwise.
    """
    try:
        yield
    except DomainError as exc:
        if exc.errors:
            exc.errors = {k if k in keep else f"{prefix}.{k}": v for k, v in exc.errors.items()}
        raise
