"""A clinician's identifiers (work phone, NPI, DEA number, state licence) and the one-time links that invite a
new staff member or reset a password (only a SHA-256 of the token is stored)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_safety_setting_change"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="phone",
            field=models.CharField(blank=True, max_length=40, verbose_name="work phone"),
        ),
        migrations.AddField(
            model_name="user",
            name="npi",
            field=models.CharField(blank=True, max_length=10, verbose_name="NPI"),
        ),
        migrations.AddField(
            model_name="user",
            name="dea_number",
            field=models.CharField(blank=True, max_length=9, verbose_name="DEA number"),
        ),
        migrations.AddField(
            model_name="user",
            name="licence_number",
            field=models.CharField(blank=True, max_length=30, verbose_name="state licence number"),
        ),
        migrations.AddField(
            model_name="user",
            name="licence_state",
            field=models.CharField(blank=True, max_length=2, verbose_name="licence state"),
        ),
        migrations.CreateModel(
            name="AccountLink",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "kind",
                    models.CharField(
                        choices=[("invitation", "Invitation"), ("reset", "Password reset")], max_length=12
                    ),
                ),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("email", models.EmailField(help_text="Where the link was sent.", max_length=254)),
                ("created_at", models.DateTimeField()),
                ("expires_at", models.DateTimeField()),
                ("used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to=settings.AUTH_USER_MODEL
                    ),
                ),
                (
                    "organization",
                    models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, to="accounts.organization"),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="account_links",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
                "indexes": [
                    models.Index(fields=["user", "used_at", "revoked_at"], name="accounts_ac_user_id_cbc7f2_idx")
                ],
            },
        ),
    ]
