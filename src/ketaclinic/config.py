"""Strict parsing of the environment into settings.

Every helper fails loudly (``ImproperlyConfigured`` with the variable's name and the reason) on a bad value, so
a typo in a deployment stops start-up instead of running with a silent default. Modelled on the healthchecks
project's settings helpers.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def syslog_url(name: str, raw: str) -> tuple[str, str, int]:
    """``udp://host:port``, ``tcp://host:port`` or ``tls://host:port`` as (scheme, host, port)."""
    from urllib.parse import urlsplit

    parts = urlsplit(raw)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("udp", "tcp", "tls") or not parts.hostname or port is None:
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a syslog collector address; use udp://host:514, tcp://host:601 or "
            "tls://host:6514."
        )
    return parts.scheme, parts.hostname, port


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean; use 1/0, true/false, yes/no or on/off.")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None:
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
    if maximum is not None and value > maximum:
        raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of {', '.join(choices)}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise ImproperlyConfigured(f"{name}={raw!r} has an empty entry; separate values with single commas.")
    return items


def env_networks(name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses or networks (``10.0.0.5, 10.1.0.0/16``), each checked; empty
    by default. Returned as normalised network strings (``10.0.0.5/32``)."""
    import ipaddress

    networks = []
    for item in env_list(name, []):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {item!r} is not an IP address or network (e.g. 127.0.0.1 or 10.0.0.0/8)."
            ) from None
    return tuple(networks)


def var_dir() -> Path:
    """Where the SQLite database, the generated secret key and the audit anchor live."""
    path = Path(os.environ.get("KETACLINIC_VAR_DIR", Path.cwd() / "var")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def secret_key(var: Path) -> str:
    """``KETACLINIC_SECRET_KEY`` or a key generated once into ``var/secret_key`` with mode 0600."""
    configured = os.environ.get("KETACLINIC_SECRET_KEY")
    if configured is not None:
        if len(configured) < 32:
            raise ImproperlyConfigured("KETACLINIC_SECRET_KEY must be at least 32 characters long.")
        return configured
    path = var / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ImproperlyConfigured(f"{path} is readable by other users (mode {mode:o}); run chmod 600 on it.")
    return path.read_text().strip()


def database_from_url(url: str, var: Path) -> dict[str, object]:
    """Translate ``KETACLINIC_DATABASE_URL`` into a Django DATABASES entry.

    ``sqlite:///relative/or/absolute.db`` (``sqlite:///:memory:`` for tests) or
    ``postgresql://user:password@host:port/name``.
    """
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        raw_path = unquote(parsed.path)
        if raw_path in ("", "/"):
            raise ImproperlyConfigured(
                "KETACLINIC_DATABASE_URL: a sqlite URL needs a file, e.g. sqlite:///var/db.sqlite3"
            )
        name: str = raw_path[1:] if raw_path.startswith("/") and not raw_path.startswith("//") else raw_path
        if raw_path.startswith("//"):
            name = raw_path[1:]
        if name != ":memory:" and not Path(name).is_absolute():
            name = str((Path.cwd() / name).resolve())
        return sqlite_database(name)
    if parsed.scheme in ("postgres", "postgresql"):
        if not parsed.path.strip("/"):
            raise ImproperlyConfigured("KETACLINIC_DATABASE_URL: a postgresql URL needs a database name.")
        options = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.strip("/")),
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": 0,
            "TEST": {"NAME": f"test_{unquote(parsed.path.strip('/'))}_ketaclinic"},
        }
    raise ImproperlyConfigured(
        f"KETACLINIC_DATABASE_URL scheme {parsed.scheme!r} is not supported; use sqlite:/// or postgresql://."
    )


def sqlite_database(name: str) -> dict[str, object]:
    # WAL keeps readers and the writer apart; synchronous=FULL because WAL+NORMAL may roll back committed
    # transactions after power loss (security.md §5.4). IMMEDIATE transactions take the write lock at BEGIN,
    # which serialises audit-chain appends and avoids SQLITE_BUSY on lock upgrade.
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": name,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
        },
        "TEST": {"NAME": None},
    }
