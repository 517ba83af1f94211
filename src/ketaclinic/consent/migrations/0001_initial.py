# Consent moves from the chairside app to its own app. The table stays where it is ("chairside_consent"):
# this migration only tells Django's model state that the consent app now owns it (no database change), and
# chairside 0005 removes it from the chairside app's state.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0006_safety_setting_change"),
        ("patients", "0002_patient_prescriber"),
        ("chairside", "0003_dose_rules_at_the_chair"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Consent",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        (
                            "drug",
                            models.CharField(
                                choices=[("ketamine", "Ketamine (racemic)"), ("esketamine", "Esketamine (SPRAVATO)")],
                                max_length=12,
                            ),
                        ),
                        ("signed_on", models.DateField()),
                        ("expires_on", models.DateField(blank=True, null=True)),
                        ("withdrawn_on", models.DateField(blank=True, null=True)),
                        ("recorded_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "organization",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT, to="accounts.organization"
                            ),
                        ),
                        (
                            "patient",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="consents",
                                to="patients.patient",
                            ),
                        ),
                        (
                            "recorded_by",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={"db_table": "chairside_consent"},
                ),
            ],
            database_operations=[],
        ),
    ]
