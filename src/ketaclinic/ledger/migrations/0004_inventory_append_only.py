"""An inventory, once taken, is never edited or deleted (security.md §4: 21 CFR 1304.11 records, kept at the
location for at least two years; §0: the register is append-only): the same triggers as the register's
(0002), under the audit log's maintenance switch."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from ketaclinic.core.append_only import trigger_sql

NAMES = {
    "table": "ledger_inventory",
    "prefix": "ledger_inventory",
    "function": "ketaclinic_inventory_append_only",
    "what": "the controlled-substance inventory",
}


def forward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in trigger_sql(schema_editor.connection.vendor, **NAMES)[0]:
        schema_editor.execute(sql)


def backward(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    for sql in trigger_sql(schema_editor.connection.vendor, **NAMES)[1]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_draws_and_inventories")]
    operations = [migrations.RunPython(forward, backward)]
