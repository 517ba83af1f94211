"""An inventory, once taken, is never edited or deleted (security.md §4: 21 CFR 1304.11 records, kept at the
location for at least two years; §0: the register is append-only): the same triggers as the register's
(0002), under the audit log's maintenance switch."""

from django.db import migrations

from ketaclinic.core.append_only import migration_operation


class Migration(migrations.Migration):
    dependencies = [("ledger", "0003_draws_and_inventories")]
    operations = [
        migration_operation(
            table="ledger_inventory",
            prefix="ledger_inventory",
            function="ketaclinic_inventory_append_only",
            what="the controlled-substance inventory",
        )
    ]
