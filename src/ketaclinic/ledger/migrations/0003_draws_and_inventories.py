"""Issue 14: a use names the dose it was drawn for; inventories (21 CFR 1304.11) group their counts.

Both new register columns are nullable foreign keys, added with ALTER TABLE ADD COLUMN on SQLite and
PostgreSQL alike (no table rebuild), so the append-only triggers of 0002 stay in place and no stored row
changes: the hash chain of older entries still verifies (the new columns enter an entry's hash only when set).
Unapplying it drops the columns, which SQLite does by rebuilding the table (and so losing its triggers): the
first operation, run last on the way back, puts the register's triggers back. Entries that name a dose or an
inventory hash those links, so unapplying is refused once such entries exist (the chain would break)."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

from ketaclinic.core.append_only import trigger_sql

REGISTER = {  # as in 0002
    "table": "ledger_ledgerentry",
    "prefix": "ledger_entry",
    "function": "ketaclinic_ledger_append_only",
    "what": "the controlled-substance register",
}


def refuse_if_linked(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    LedgerEntry = apps.get_model("ledger", "LedgerEntry")
    linked = LedgerEntry.objects.filter(models.Q(administration__isnull=False) | models.Q(inventory__isnull=False))
    if linked.exists():
        raise RuntimeError(
            "The register holds entries that name a dose or an inventory; their hashes cover those links, so "
            "removing the columns would break the chain. Restore a backup from before this migration instead."
        )


def register_triggers_again(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    forward, backward = trigger_sql(schema_editor.connection.vendor, **REGISTER)
    for sql in [*backward, *forward]:
        schema_editor.execute(sql)


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0006_safety_setting_change'),
        ('chairside', '0006_administration_stock_lot'),
        ('ledger', '0002_append_only_triggers'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(migrations.RunPython.noop, register_triggers_again),
        migrations.AddField(
            model_name='ledgerentry',
            name='administration',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='stock_draws', to='chairside.administration'),
        ),
        migrations.CreateModel(
            name='Inventory',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('kind', models.CharField(choices=[('initial', 'Initial inventory'), ('biennial', 'Biennial inventory')], max_length=10)),
                ('taken_on', models.DateField(help_text="The site's date the inventory was taken.")),
                ('count_time', models.CharField(choices=[('opening', 'opening of business'), ('closing', 'close of business')], max_length=8)),
                ('witness_signed_at', models.DateTimeField(help_text='When the second person re-authenticated.')),
                ('recorded_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to='accounts.organization')),
                ('site', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='accounts.site')),
                ('taken_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('witness', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-taken_on', '-recorded_at'],
            },
        ),
        migrations.AddField(
            model_name='ledgerentry',
            name='inventory',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='counts', to='ledger.inventory'),
        ),
        migrations.AddConstraint(
            model_name='inventory',
            constraint=models.UniqueConstraint(fields=('site', 'taken_on', 'count_time'), name='inventory_once_per_site_date_and_time'),
        ),
        migrations.AddConstraint(
            model_name='inventory',
            constraint=models.CheckConstraint(condition=models.Q(('witness', models.F('taken_by')), _negated=True), name='inventory_two_people'),
        ),
        migrations.RunPython(migrations.RunPython.noop, refuse_if_linked),
    ]
