"""Triggers that refuse UPDATE, DELETE and TRUNCATE on the controlled-substance register (security.md §1:
the ledger is append-only; corrections are new entries). The switch is the audit log's maintenance row
(audit 0002), which only the test suite's flush turns on."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from ketaclinic.core.append_only import trigger_sql

NAMES = {
    "table": "ledger_ledgerentry",
    "prefix": "ledger_entry",
    "function": "ketaclinic_ledger_append_only",
    "what": "the controlled-substance register",
}


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in trigger_sql(schema_editor.connection.vendor, **NAMES)[0]:
        schema_editor.execute(sql)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in trigger_sql(schema_editor.connection.vendor, **NAMES)[1]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0001_initial"), ("audit", "0002_append_only_triggers")]
    operations = [migrations.RunPython(forward, backward)]
