"""Where the key that signs the chain anchors comes from (issue 15 H3, security.md §5.3).

The anchor key must not sit beside the database: whoever can read the data directory could otherwise re-sign
an anchor over a rewritten chain. A provider signs and checks anchor messages; the key itself may never leave
it (a KMS-style provider only needs ``sign``). Chosen by settings, first match wins:

1. ``KETACLINIC_ANCHOR_KEY_PROVIDER``: dotted path of a callable returning an ``AnchorKeyProvider`` (a KMS).
2. ``KETACLINIC_ANCHOR_KEY_FILE``: a file outside the data directory, mode 0600 or 0400 (e.g. a systemd
   ``LoadCredential=`` file, or one only root and the service can read).
3. ``KETACLINIC_ANCHOR_KEY`` (or the older ``KETACLINIC_AUDIT_ANCHOR_KEY``): an environment secret.
4. Nothing set: derived from the secret key, which by default lives in the data directory. Still works, but
   ``ketaclinic check`` fails and says so.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string

MIN_KEY_BYTES = 32


class AnchorKeyError(Exception):
    """The anchor key cannot be had: anchors can be neither written nor checked."""


class AnchorKeyProvider(Protocol):
    def sign(self, message: bytes) -> str:
        """Hex MAC (or signature) of ``message``; raises ``AnchorKeyError`` when the key is unavailable."""
        ...

    def verify(self, message: bytes, mac: str) -> bool: ...

    def describe(self) -> str:
        """Where the key comes from, for `ketaclinic check` (never the key)."""
        ...

    def problems(self) -> list[str]:
        """Why this key is not kept apart from the data (empty when it is)."""
        ...


class _HmacProvider:
    def _key(self) -> bytes:
        raise NotImplementedError

    def sign(self, message: bytes) -> str:
        return hmac.new(self._key(), message, hashlib.sha256).hexdigest()

    def verify(self, message: bytes, mac: str) -> bool:
        return hmac.compare_digest(mac, self.sign(message))


def data_directories() -> list[Path]:
    """Directories an attacker with access to the database host's data would read: the var directory, the
    SQLite database's directory and the anchor file's directory."""
    dirs = [Path(settings.VAR_DIR).resolve(), Path(settings.KETACLINIC_AUDIT_ANCHOR_PATH).resolve().parent]
    db = settings.DATABASES["default"]
    if str(db.get("ENGINE", "")).endswith("sqlite3") and str(db.get("NAME")) not in ("", ":memory:"):
        dirs.append(Path(str(db["NAME"])).resolve().parent)
    return dirs


@dataclass
class FileKeyProvider(_HmacProvider):
    path: Path

    def _key(self) -> bytes:
        try:
            key = self.path.read_bytes().strip()
        except OSError as exc:
            raise AnchorKeyError(f"the anchor key file {self.path} cannot be read: {exc.strerror}") from exc
        if len(key) < MIN_KEY_BYTES:
            raise AnchorKeyError(
                f"the anchor key file {self.path} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed"
            )
        return key

    def describe(self) -> str:
        return f"file {self.path}"

    def problems(self) -> list[str]:
        found: list[str] = []
        resolved = self.path.resolve()
        for folder in data_directories():
            if resolved.is_relative_to(folder):
                found.append(
                    f"{self.path} is inside the data directory {folder}: anyone who can read the database "
                    "can re-sign the anchors; keep the key elsewhere"
                )
                break
        try:
            mode = stat.S_IMODE(self.path.stat().st_mode)
        except OSError as exc:
            return [*found, f"{self.path} cannot be read: {exc.strerror}"]
        if mode & 0o077:
            found.append(
                f"{self.path} is readable or writable by other users (mode {mode:o}); chmod 600 or 400"
            )
        try:
            self._key()
        except AnchorKeyError as exc:
            found.append(str(exc))
        return found


@dataclass
class EnvironmentKeyProvider(_HmacProvider):
    variable: str
    value: str

    def _key(self) -> bytes:
        return self.value.encode()

    def describe(self) -> str:
        return f"environment secret {self.variable}"

    def problems(self) -> list[str]:
        if len(self.value.encode()) < MIN_KEY_BYTES:
            return [f"{self.variable} is shorter than {MIN_KEY_BYTES} bytes"]
        return []


@dataclass
class DerivedKeyProvider(_HmacProvider):
    """The old default: derived from Django's secret key (in ``var/secret_key`` unless set by environment)."""

    secret: str

    def _key(self) -> bytes:
        return hashlib.sha256(f"ketaclinic-audit-anchor:{self.secret}".encode()).digest()

    def describe(self) -> str:
        return "derived from the secret key (not separate)"

    def problems(self) -> list[str]:
        where = (
            "the data directory (var/secret_key)"
            if "KETACLINIC_SECRET_KEY" not in os.environ
            else "the web application's own secret"
        )
        return [
            f"the anchor key is derived from {where}: anyone with file access to the database host can "
            "re-sign a rewritten chain; set KETACLINIC_ANCHOR_KEY_FILE to a file outside the data directory"
        ]


def provider() -> AnchorKeyProvider:
    dotted = settings.KETACLINIC_ANCHOR_KEY_PROVIDER
    if dotted:
        made: AnchorKeyProvider = import_string(dotted)()
        return made
    if settings.KETACLINIC_ANCHOR_KEY_FILE:
        return FileKeyProvider(Path(settings.KETACLINIC_ANCHOR_KEY_FILE))
    if settings.KETACLINIC_ANCHOR_KEY:
        return EnvironmentKeyProvider(settings.KETACLINIC_ANCHOR_KEY_VARIABLE, settings.KETACLINIC_ANCHOR_KEY)
    return DerivedKeyProvider(settings.SECRET_KEY)
