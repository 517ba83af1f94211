"""Database triggers that refuse UPDATE, DELETE and TRUNCATE on the audit log (security.md §5.3).

``ketaclinic_audit_maintenance`` is a one-row switch outside Django's models: only the test suite's database
flush turns it on (tests/conftest.py), because Django's flush empties every table. Nothing in the
application writes it, and ``ketaclinic check`` fails if it is on.
"""

from django.db import migrations

SQLITE_FORWARD = [
    "CREATE TABLE IF NOT EXISTS ketaclinic_audit_maintenance (allow_purge INTEGER NOT NULL DEFAULT 0)",
    "INSERT INTO ketaclinic_audit_maintenance (allow_purge) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance)",
    """CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_auditentry
       WHEN NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance WHERE allow_purge = 1)
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_auditentry
       WHEN NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance WHERE allow_purge = 1)
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_entry_no_update",
    "DROP TRIGGER IF EXISTS audit_entry_no_delete",
    "DROP TABLE IF EXISTS ketaclinic_audit_maintenance",
]

POSTGRES_FORWARD = [
    "CREATE TABLE IF NOT EXISTS ketaclinic_audit_maintenance (allow_purge BOOLEAN NOT NULL DEFAULT FALSE)",
    "INSERT INTO ketaclinic_audit_maintenance (allow_purge) SELECT FALSE WHERE NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance)",
    """CREATE OR REPLACE FUNCTION ketaclinic_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance WHERE allow_purge) THEN
           IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;
           IF TG_LEVEL = 'ROW' THEN RETURN OLD; END IF;
           RETURN NULL;
         END IF;
         RAISE EXCEPTION USING MESSAGE = 'the audit log is append-only: ' || TG_OP || ' refused';
       END $$""",
    """CREATE TRIGGER audit_entry_no_update_delete BEFORE UPDATE OR DELETE ON audit_auditentry
       FOR EACH ROW EXECUTE FUNCTION ketaclinic_audit_append_only()""",
    """CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_auditentry
       FOR EACH STATEMENT EXECUTE FUNCTION ketaclinic_audit_append_only()""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER IF EXISTS audit_entry_no_truncate ON audit_auditentry",
    "DROP TRIGGER IF EXISTS audit_entry_no_update_delete ON audit_auditentry",
    "DROP FUNCTION IF EXISTS ketaclinic_audit_append_only()",
    "DROP TABLE IF EXISTS ketaclinic_audit_maintenance",
]


def forward(apps, schema_editor):
    statements = POSTGRES_FORWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_FORWARD
    for sql in statements:
        schema_editor.execute(sql)


def backward(apps, schema_editor):
    statements = POSTGRES_BACKWARD if schema_editor.connection.vendor == "postgresql" else SQLITE_BACKWARD
    for sql in statements:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]
    operations = [migrations.RunPython(forward, backward)]
