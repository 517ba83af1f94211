"""chairside 0008: the plain ``planned_session_id`` UUID becomes a one-to-one key on the same column, in place.

Rows are built at the previous state (chairside 0007, with the historical model) and migrated forward with
the MigrationExecutor: a linked row keeps its value and now reaches its course session (and keeps it when
migrated back); a row naming a
course session that does not exist, or two rows naming one course session, stop the migration with a message
naming how many, and nothing changes. Runs on SQLite and on PostgreSQL (db-marked)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from ketaclinic.chairside.models import TreatmentSession
from ketaclinic.treatment import services

from .test_plans import plan_data

BEFORE = [("chairside", "0007_notes_kept_whole")]
AFTER = [("chairside", "0008_treatment_session_planned_session_key")]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def at_0007() -> Iterator[MigrationExecutor]:
    """The database at chairside 0007; put back to the newest state afterwards, whatever the test left."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    executor.loader.build_graph()
    yield executor
    old = executor.loader.project_state(BEFORE).apps.get_model("chairside", "TreatmentSession")
    executor = MigrationExecutor(connection)
    if AFTER[0] not in executor.loader.applied_migrations:
        old.objects.all().delete()  # the rows the test left that the key refuses
    executor.migrate(executor.loader.graph.leaf_nodes())


def _old_row(executor: MigrationExecutor, plan_session: Any, planned_session_id: UUID) -> Any:
    """A treatment session written with the 0007 model: ``planned_session_id`` a plain UUID."""
    old = executor.loader.project_state(BEFORE).apps.get_model("chairside", "TreatmentSession")
    return old.objects.create(
        organization_id=plan_session.organization_id,
        patient_id=plan_session.patient_id,
        site_id=plan_session.site_id,
        protocol_id="iv-trd-elektd",
        drug="ketamine",
        route="iv",
        planned_dose_mg=Decimal("35.00"),
        planned_session_id=planned_session_id,
        scheduled_at=plan_session.start,
        created_by_id=plan_session.plan.created_by_id,
    )


@pytest.fixture
def course(clinic: Any, prescriber: Any, patient: Any) -> Any:
    return services.create_plan(user=prescriber, patient=patient, data=plan_data())


def _forward() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)


def test_a_linked_row_keeps_its_value_and_reaches_its_course_session(
    course: Any, at_0007: MigrationExecutor
) -> None:
    first, second = course.sessions.get(number=1), course.sessions.get(number=2)
    linked = _old_row(at_0007, first, first.pk)
    outside = _old_row(at_0007, second, None)  # a session outside a plan stays outside
    _forward()
    row = TreatmentSession.objects.get(pk=linked.pk)
    assert row.planned_session_id == first.pk and row.planned_session == first
    assert first.treatment_session == row
    assert TreatmentSession.objects.get(pk=outside.pk).planned_session_id is None
    # Reversible: back at 0007 the column is the plain UUID again, its value kept.
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("chairside", "TreatmentSession")
    assert old.objects.get(pk=linked.pk).planned_session_id == first.pk


def test_an_orphan_link_stops_the_migration_and_nothing_changes(
    course: Any, at_0007: MigrationExecutor
) -> None:
    first = course.sessions.get(number=1)
    good = _old_row(at_0007, first, first.pk)
    missing = uuid4()
    orphan = _old_row(at_0007, first, missing)
    with pytest.raises(RuntimeError) as stopped:
        _forward()
    message = str(stopped.value)
    assert message.startswith("chairside 0008 stopped, nothing changed: 1 treatment session(s) name a course")
    assert str(orphan.pk) in message and str(good.pk) not in message
    executor = MigrationExecutor(connection)
    assert AFTER[0] not in executor.loader.applied_migrations
    old = executor.loader.project_state(BEFORE).apps.get_model("chairside", "TreatmentSession")
    kept = dict(old.objects.values_list("pk", "planned_session_id"))
    assert kept == {good.pk: first.pk, orphan.pk: missing}


def test_two_rows_for_one_course_session_stop_the_migration(course: Any, at_0007: MigrationExecutor) -> None:
    first, second = course.sessions.get(number=1), course.sessions.get(number=2)
    _old_row(at_0007, first, first.pk)
    _old_row(at_0007, first, first.pk)
    _old_row(at_0007, second, second.pk)
    with pytest.raises(RuntimeError, match=r"1 course session\(s\) are named by more than one treatment"):
        _forward()
    executor = MigrationExecutor(connection)
    assert AFTER[0] not in executor.loader.applied_migrations
    old = executor.loader.project_state(BEFORE).apps.get_model("chairside", "TreatmentSession")
    assert old.objects.filter(planned_session_id=first.pk).count() == 2
