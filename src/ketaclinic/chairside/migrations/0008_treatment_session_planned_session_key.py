"""A treatment session's booked course session becomes a real one-to-one key, in place (issue 17, point 2).

``TreatmentSession.planned_session_id`` was a plain UUID column with no foreign key; it becomes
``TreatmentSession.planned_session``, a ``OneToOneField`` to ``treatment.PlanSession`` on the **same
column** (``db_column="planned_session_id"``), so no row is copied by hand and no value changes: the table
keeps its name, the column its name and its values, and ``session.planned_session_id`` still reads the UUID.
The database now holds what only the opening code held before: one treatment session per course session,
and no treatment session pointing to a course session that does not exist (``on_delete=PROTECT``).

Before the key is added, ``check_links`` looks for rows the key would refuse:

- a treatment session whose ``planned_session_id`` names no course session (an orphan), and
- two treatment sessions naming the same course session.

Neither can be written by the code: treatment sessions get their course session only in
``treatment/opening.py`` (from a row just read, and it returns the session already opened instead of a
second one), and no code deletes a course session (``Plan`` → ``PlanSession`` is ``PROTECT``; a missed or
cancelled session keeps its row). Such rows would therefore come from a hand edit or a restore, and which
value is right is a person's decision: the migration does not guess. It stops with a message naming how
many rows of each kind there are (and their treatment session ids, which carry no PHI), and changes nothing;
fix or unlink them (``UPDATE chairside_treatmentsession SET planned_session_id = NULL WHERE id = ...`` after
checking the chart), then migrate again.

Reversible: going back turns the key into the plain UUID column again, values kept.
"""

import django.db.models.deletion
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps
from django.db.models import Count


def check_links(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    TreatmentSession = apps.get_model("chairside", "TreatmentSession")
    PlanSession = apps.get_model("treatment", "PlanSession")
    db = schema_editor.connection.alias
    linked = TreatmentSession.objects.using(db).filter(planned_session_id__isnull=False)
    orphans = sorted(
        str(pk)
        for pk in linked.exclude(
            planned_session_id__in=PlanSession.objects.using(db).values("pk")
        ).values_list("pk", flat=True)
    )
    shared = sorted(
        str(row["planned_session_id"])
        for row in linked.values("planned_session_id")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .order_by()
    )
    problems = []
    if orphans:
        problems.append(
            f"{len(orphans)} treatment session(s) name a course session that does not exist "
            f"(planned_session_id; treatment session ids: {', '.join(orphans)})"
        )
    if shared:
        problems.append(
            f"{len(shared)} course session(s) are named by more than one treatment session "
            f"(planned_session_id: {', '.join(shared)})"
        )
    if problems:
        raise RuntimeError(
            "chairside 0008 stopped, nothing changed: "
            + "; ".join(problems)
            + ". A treatment session carries out at most one existing course session: fix or unlink these "
            "rows by hand (set planned_session_id to NULL after checking the chart), then migrate again."
        )


class Migration(migrations.Migration):
    dependencies = [
        ("chairside", "0007_notes_kept_whole"),
        ("treatment", "0006_course_rules"),
    ]

    operations = [
        migrations.RunPython(check_links, migrations.RunPython.noop, elidable=False),
        # The field is renamed in the model state only: the column planned_session_id stays as it is.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(model_name="treatmentsession", name="planned_session_id"),
                migrations.AddField(
                    model_name="treatmentsession",
                    name="planned_session",
                    field=models.UUIDField(blank=True, null=True, db_column="planned_session_id"),
                ),
            ],
            database_operations=[],
        ),
        # The one real change: the column gets its foreign key and its unique constraint.
        migrations.AlterField(
            model_name="treatmentsession",
            name="planned_session",
            field=models.OneToOneField(
                blank=True,
                db_column="planned_session_id",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="treatment_session",
                to="treatment.plansession",
            ),
        ),
    ]
