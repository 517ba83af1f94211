"""Settings from the environment are parsed strictly: a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from ketaclinic import config


def test_bool_accepts_the_usual_words_and_rejects_others(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_B", "yes")
    assert config.env_bool("K_B", False) is True
    monkeypatch.setenv("K_B", "off")
    assert config.env_bool("K_B", True) is False
    monkeypatch.setenv("K_B", "maybe")
    with pytest.raises(ImproperlyConfigured, match="K_B='maybe' is not a boolean"):
        config.env_bool("K_B", False)


def test_int_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_I", "45")
    with pytest.raises(ImproperlyConfigured, match="above the maximum 30"):
        config.env_int("K_I", 15, minimum=1, maximum=30)
    monkeypatch.setenv("K_I", "ten")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        config.env_int("K_I", 15)
    monkeypatch.delenv("K_I")
    assert config.env_int("K_I", 15) == 15


def test_choice_accepts_only_its_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_C", " Session ")
    assert config.env_choice("K_C", "course", ("course", "session")) == "session"
    monkeypatch.setenv("K_C", "weekly")
    with pytest.raises(ImproperlyConfigured, match="K_C='weekly' is not one of course, session"):
        config.env_choice("K_C", "course", ("course", "session"))
    monkeypatch.delenv("K_C")
    assert config.env_choice("K_C", "course", ("course", "session")) == "course"


def test_list_rejects_empty_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("K_L", "a.example,,b.example")
    with pytest.raises(ImproperlyConfigured, match="empty entry"):
        config.env_list("K_L", [])


def test_database_urls(tmp_path: Path) -> None:
    sqlite = config.database_from_url(f"sqlite:///{tmp_path}/db.sqlite3", tmp_path)
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert sqlite["NAME"] == f"{tmp_path}/db.sqlite3"
    options = sqlite["OPTIONS"]
    assert isinstance(options, dict)
    assert "synchronous=FULL" in options["init_command"] and "journal_mode=WAL" in options["init_command"]
    assert "foreign_keys=ON" in options["init_command"]
    pg = config.database_from_url("postgresql://clin:s%40cret@db.internal:5433/ketaclinic", tmp_path)
    assert (pg["NAME"], pg["USER"], pg["PASSWORD"], pg["HOST"], pg["PORT"]) == (
        "ketaclinic",
        "clin",
        "s@cret",
        "db.internal",
        "5433",
    )
    with pytest.raises(ImproperlyConfigured, match="scheme 'mysql' is not supported"):
        config.database_from_url("mysql://x@y/z", tmp_path)
    with pytest.raises(ImproperlyConfigured, match="needs a database name"):
        config.database_from_url("postgresql://x@y/", tmp_path)


def test_secret_key_is_generated_once_with_mode_0600(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KETACLINIC_SECRET_KEY", raising=False)
    first = config.secret_key(tmp_path)
    second = config.secret_key(tmp_path)
    assert first == second and len(first) >= 50
    assert stat.S_IMODE(os.stat(tmp_path / "secret_key").st_mode) == 0o600


def test_secret_key_readable_by_others_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KETACLINIC_SECRET_KEY", raising=False)
    config.secret_key(tmp_path)
    os.chmod(tmp_path / "secret_key", 0o644)
    with pytest.raises(ImproperlyConfigured, match="readable by other users"):
        config.secret_key(tmp_path)


def test_short_configured_secret_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KETACLINIC_SECRET_KEY", "short")
    with pytest.raises(ImproperlyConfigured, match="at least 32"):
        config.secret_key(tmp_path)


def test_sqlite_runs_wal_and_full_sync(db: object) -> None:
    from django.db import connection

    if connection.vendor != "sqlite":
        pytest.skip("SQLite pragmas")
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA synchronous")
        assert cursor.fetchone()[0] == 2  # FULL
        cursor.execute("PRAGMA foreign_keys")
        assert cursor.fetchone()[0] == 1
