"""Issue 16 point 3: the MDC code, the blood-pressure panel grouping, the implausible mark and the treatment
session of each monitor reading, so that FHIR serves every value as it was sent.

Rows stored before this migration get their MDC code from OBX-3 as sent (``source_code``), their panel
grouping and their plausibility from the same functions the feed uses now (monitoring/rows.py); the
session stays empty for them (their copies on the session are still there). Reversing drops the columns.
"""

from typing import Any

import django.db.models.deletion
from django.db import migrations, models


def fill(apps: Any, schema_editor: Any) -> None:
    from ketaclinic.monitoring.rows import annotate_stored

    reading = apps.get_model("monitoring", "VitalReading")
    rows = reading.objects.filter(message__isnull=False).order_by("message_id", "observed_at", "id")
    batch: list[Any] = []
    last = None
    for row in rows.iterator(chunk_size=2000):
        key = (row.message_id, row.observed_at)
        if key != last and batch:
            _save(reading, annotate_stored(batch))
            batch = []
        last = key
        batch.append(row)
    if batch:
        _save(reading, annotate_stored(batch))


def _save(reading: Any, rows: list[Any]) -> None:
    reading.objects.bulk_update(rows, ["mdc_code", "bp_component", "implausible_reason"])


class Migration(migrations.Migration):

    dependencies = [
        ('chairside', '0007_notes_kept_whole'),
        ('monitoring', '0005_feed_trust'),
    ]

    operations = [
        migrations.AddField(
            model_name='vitalreading',
            name='bp_component',
            field=models.BooleanField(default=False, help_text='A blood-pressure value served inside the panel of another row of its set (same message, time and measuring site: NIBP or arterial); FHIR serves one Observation per row without this.'),
        ),
        migrations.AddField(
            model_name='vitalreading',
            name='implausible_reason',
            field=models.CharField(blank=True, default='', help_text='Why the value cannot be a real measurement (interop/hl7/bounds.py); empty when plausible. Kept, marked in FHIR and on the chart, never plotted as a reading.', max_length=200),
        ),
        migrations.AddField(
            model_name='vitalreading',
            name='mdc_code',
            field=models.PositiveIntegerField(blank=True, help_text='The IEEE 11073 (MDC) code the value was sent under (OBX-3).', null=True),
        ),
        migrations.AddField(
            model_name='vitalreading',
            name='session',
            field=models.ForeignKey(blank=True, db_index=False, help_text="The treatment session the monitor's chair had when the value came (FHIR encounter).", null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='chairside.treatmentsession'),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop),
    ]
