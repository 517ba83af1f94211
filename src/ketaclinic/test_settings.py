"""Settings for the test suite: an isolated var/ directory and the database chosen by KETACLINIC_TEST_DB.

``KETACLINIC_TEST_DB=postgres`` runs the suite against ``KETACLINIC_TEST_POSTGRES_URL`` (pytest-django creates
and drops its own test database there); otherwise SQLite. ``make test`` runs both.
"""

import os
import tempfile

os.environ["KETACLINIC_VAR_DIR"] = os.environ.get("KETACLINIC_TEST_VAR_DIR") or tempfile.mkdtemp(
    prefix="ketaclinic-test-"
)
os.environ.setdefault("KETACLINIC_SECRET_KEY", "test-secret-key-" + "x" * 40)
if os.environ.get("KETACLINIC_TEST_DB") == "postgres":
    url = os.environ.get("KETACLINIC_TEST_POSTGRES_URL")
    if not url:
        raise RuntimeError("KETACLINIC_TEST_DB=postgres needs KETACLINIC_TEST_POSTGRES_URL")
    os.environ["KETACLINIC_DATABASE_URL"] = url
else:
    os.environ["KETACLINIC_DATABASE_URL"] = "sqlite:///" + os.path.join(
        os.environ["KETACLINIC_VAR_DIR"], "test.sqlite3"
    )

from ketaclinic.settings import *  # noqa: F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
