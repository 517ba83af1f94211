"""A site as a registrant: its postal address in lines (city, state, ZIP apart, as the REMS form and the
controlled-drug register print them), DEA registration and SPRAVATO REMS certification.

The old one-line ``address`` is split the way the REMS form used to split it ('street, more, City, ST 12345');
what does not parse stays whole in line 1 for an administrator to sort out. Going back joins the lines."""

import re

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps


def split_addresses(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Site = apps.get_model("accounts", "Site")
    for site in Site.objects.exclude(address=""):
        parts = [p.strip() for p in site.address.split(",") if p.strip()]
        city = state = zip_code = ""
        tail = re.match(r"^([A-Za-z]{2})\s+(\d{5}(?:-\d{4})?)$", parts[-1]) if parts else None
        if tail and len(parts) >= 3:
            state, zip_code, city = tail.group(1).upper(), tail.group(2), parts[-2]
            parts = parts[:-2]
        line1, line2 = (parts[0] if parts else ""), ", ".join(parts[1:])
        if len(line1) > 200 or len(line2) > 200 or len(city) > 60:
            raise RuntimeError(f"Site {site.pk}: address {site.address!r} does not fit the new lines; shorten it")
        site.address_line1, site.address_line2 = line1, line2
        site.city, site.state, site.zip_code = city, state, zip_code
        site.save(update_fields=["address_line1", "address_line2", "city", "state", "zip_code"])


def join_addresses(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    Site = apps.get_model("accounts", "Site")
    for site in Site.objects.all():
        last = " ".join(p for p in (site.state, site.zip_code) if p)
        parts = [p for p in (site.address_line1, site.address_line2, site.city, last) if p]
        site.address = ", ".join(parts)[:300]
        site.save(update_fields=["address"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0007_staff_identifiers_and_account_links"),
    ]

    operations = [
        migrations.AddField(
            model_name="site",
            name="address_line1",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="site",
            name="address_line2",
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name="site",
            name="city",
            field=models.CharField(blank=True, max_length=60),
        ),
        migrations.AddField(
            model_name="site",
            name="state",
            field=models.CharField(blank=True, help_text="US state or territory code, e.g. NY.", max_length=2),
        ),
        migrations.AddField(
            model_name="site",
            name="zip_code",
            field=models.CharField(blank=True, max_length=10, verbose_name="ZIP"),
        ),
        migrations.RunPython(split_addresses, join_addresses),
        migrations.RemoveField(
            model_name="site",
            name="address",
        ),
        migrations.AddField(
            model_name="site",
            name="dea_registration",
            field=models.CharField(
                blank=True,
                help_text="The site's registration (21 CFR 1301).",
                max_length=9,
                verbose_name="DEA registration number",
            ),
        ),
        migrations.AddField(
            model_name="site",
            name="rems_certified",
            field=models.BooleanField(
                blank=True,
                help_text="Empty: not recorded (the pre-dose gate asks); no: esketamine may not be given here.",
                null=True,
                verbose_name="certified in the SPRAVATO REMS",
            ),
        ),
        migrations.AddField(
            model_name="site",
            name="rems_certification_id",
            field=models.CharField(blank=True, max_length=60, verbose_name="REMS certification ID"),
        ),
        migrations.AddField(
            model_name="site",
            name="rems_certified_on",
            field=models.DateField(blank=True, null=True, verbose_name="REMS certification date"),
        ),
    ]
