"""Database triggers that make a table append-only (UPDATE, DELETE and, on PostgreSQL, TRUNCATE refused),
for the audit log and the controlled-substance register (security.md §1). One switch row,
``ketaclinic_audit_maintenance.allow_purge`` (created by audit migration 0002), lets only the test suite's
database flush through; ``ketaclinic check`` fails when it is on. Used by migrations: keep the SQL stable."""

from __future__ import annotations

from typing import Any


def trigger_sql(
    vendor: str, *, table: str, prefix: str, function: str, what: str
) -> tuple[list[str], list[str]]:
    """(forward, backward) statements for ``table``; triggers named ``<prefix>_no_…``, the PostgreSQL
    function ``function``; the error says "<what> is append-only: <operation> refused". The names are
    constants of the calling migration, never input."""
    if vendor == "postgresql":
        forward = [
            f"""CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance WHERE allow_purge) THEN
           IF TG_OP = 'UPDATE' THEN RETURN NEW; END IF;
           IF TG_LEVEL = 'ROW' THEN RETURN OLD; END IF;
           RETURN NULL;
         END IF;
         RAISE EXCEPTION USING MESSAGE = '{what} is append-only: ' || TG_OP || ' refused';
       END $$""",  # noqa: S608
            f"""CREATE TRIGGER {prefix}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
       FOR EACH ROW EXECUTE FUNCTION {function}()""",
            f"""CREATE TRIGGER {prefix}_no_truncate BEFORE TRUNCATE ON {table}
       FOR EACH STATEMENT EXECUTE FUNCTION {function}()""",
        ]
        backward = [
            f"DROP TRIGGER IF EXISTS {prefix}_no_truncate ON {table}",
            f"DROP TRIGGER IF EXISTS {prefix}_no_update_delete ON {table}",
            f"DROP FUNCTION IF EXISTS {function}()",
        ]
        return forward, backward
    forward = [
        f"""CREATE TRIGGER {prefix}_no_{op.lower()} BEFORE {op} ON {table}
       WHEN NOT EXISTS (SELECT 1 FROM ketaclinic_audit_maintenance WHERE allow_purge = 1)
       BEGIN SELECT RAISE(ABORT, '{what} is append-only: {op} refused'); END"""  # noqa: S608
        for op in ("UPDATE", "DELETE")
    ]
    backward = [f"DROP TRIGGER IF EXISTS {prefix}_no_update", f"DROP TRIGGER IF EXISTS {prefix}_no_delete"]
    return forward, backward


def migration_operation(**names: str) -> Any:
    """A ``RunPython`` that adds ``trigger_sql``'s triggers for ``names`` (and drops them when unapplied)."""
    from django.db import migrations

    def forward(apps: Any, schema_editor: Any) -> None:
        for sql in trigger_sql(schema_editor.connection.vendor, **names)[0]:
            schema_editor.execute(sql)

    def backward(apps: Any, schema_editor: Any) -> None:
        for sql in trigger_sql(schema_editor.connection.vendor, **names)[1]:
            schema_editor.execute(sql)

    return migrations.RunPython(forward, backward)
