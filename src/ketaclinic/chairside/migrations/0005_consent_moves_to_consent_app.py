# Consent now belongs to the consent app (consent 0001): the chairside app forgets the model; the table and
# its rows stay as they are.

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("chairside", "0004_session_arrival"),
        ("consent", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Consent")],
            database_operations=[],
        ),
    ]
