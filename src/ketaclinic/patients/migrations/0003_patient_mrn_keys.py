"""MRN search keys (patients.matching.mrn_key): lower-case letters and digits of the MRN, and the same reversed,
each indexed within the organization, so the start or the end of an MRN in any case is a range scan."""

from typing import Any

from django.db import migrations, models


def fill_keys(apps: Any, schema_editor: Any) -> None:
    from ketaclinic.patients.matching import mrn_key

    Patient = apps.get_model("patients", "Patient")
    for row in Patient.objects.only("pk", "mrn").iterator():
        key = mrn_key(row.mrn)
        Patient.objects.filter(pk=row.pk).update(mrn_key=key, mrn_key_reversed=key[::-1])


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_patient_prescriber")]

    operations = [
        migrations.AddField(
            model_name="patient",
            name="mrn_key",
            field=models.CharField(default="", editable=False, max_length=40),
        ),
        migrations.AddField(
            model_name="patient",
            name="mrn_key_reversed",
            field=models.CharField(default="", editable=False, max_length=40),
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(fields=["organization", "mrn_key"], name="patients_pa_organiz_78ef7e_idx"),
        ),
        migrations.AddIndex(
            model_name="patient",
            index=models.Index(
                fields=["organization", "mrn_key_reversed"], name="patients_pa_organiz_78c1a4_idx"
            ),
        ),
    ]
