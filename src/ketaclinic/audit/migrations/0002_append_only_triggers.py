"""Database triggers that refuse UPDATE, DELETE and TRUNCATE on the audit log (security.md §5.3).

``ketaclinic_audit_maintenance`` is a one-row switch outside Django's models: only the test suite's database
flush turns it on (tests/conftest.py), because Django's flush empties every table. Nothing in the
application writes it, and ``ketaclinic check`` fails if it is on.
"""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from ketaclinic.core.append_only import trigger_sql

NAMES = {
    "table": "audit_auditentry",
    "prefix": "audit_entry",
    "function": "ketaclinic_audit_append_only",
    "what": "the audit log",
}
SWITCH = {
    "sqlite": [
        "CREATE TABLE IF NOT EXISTS ketaclinic_audit_maintenance (allow_purge INTEGER NOT NULL DEFAULT 0)",
        "INSERT INTO ketaclinic_audit_maintenance (allow_purge) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance)",
    ],
    "postgresql": [
        "CREATE TABLE IF NOT EXISTS ketaclinic_audit_maintenance (allow_purge BOOLEAN NOT NULL DEFAULT FALSE)",
        "INSERT INTO ketaclinic_audit_maintenance (allow_purge) SELECT FALSE WHERE NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance)",
    ],
}


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = "postgresql" if schema_editor.connection.vendor == "postgresql" else "sqlite"
    for sql in [*SWITCH[vendor], *trigger_sql(vendor, **NAMES)[0]]:
        schema_editor.execute(sql)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = "postgresql" if schema_editor.connection.vendor == "postgresql" else "sqlite"
    for sql in [*trigger_sql(vendor, **NAMES)[1], "DROP TABLE IF EXISTS ketaclinic_audit_maintenance"]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
