"""Queries to sites and warnings saved anyway moved from the registry app to outcomes/quality/
(registry 0016, outcomes 0015). A database on the old schema, with rows, keeps them: same
tables and ids, content types relabelled in place (so the roles keep their grants), the history
triggers reinstalled under their new names (one event per write, never two) and the event tables
still append-only. Migrating back restores the old names."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor

from tests.factories import ensure_role_groups, make_patient, make_user

BEFORE = [
    ("registry", "0015_lock_before_recomputing"),
    ("outcomes", "0014_translatable_field_names"),
]
MOVED = ("dataquery", "dataqueryevent", "warningacknowledgement", "warningacknowledgementevent")
ROLE_GRANTS = """
SELECT g.name, ct.app_label, p.codename FROM auth_group g
  JOIN auth_group_permissions gp ON gp.group_id = g.id
  JOIN auth_permission p ON p.id = gp.permission_id
  JOIN django_content_type ct ON ct.id = p.content_type_id
 WHERE ct.model IN ('dataquery', 'warningacknowledgement') ORDER BY 1, 3
"""


def _migrate(targets) -> None:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    # The process's cache of content types must not keep a label the migration changed.
    ContentType.objects.clear_cache()


def _latest() -> list[tuple[str, str]]:
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes()


def _rows(sql: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


LATER_BASE_TABLE_GUARDS = {
    ("registry_dataquery", "pgtrigger_steps_only_c3501"),
    ("registry_warningacknowledgement", "pgtrigger_append_only_b8152"),
}


def _history_triggers() -> list[tuple[str, str]]:
    return _rows(
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger"
        " WHERE tgname LIKE 'pgtrigger_%%' AND tgrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
        [[f"registry_{model}" for model in MOVED]],
    )


@pytest.mark.django_db(transaction=True)
def test_moving_from_the_old_schema_keeps_rows_grants_and_append_only_history(site_a):
    ensure_role_groups()
    patient = make_patient(site_a)
    monitor = make_user("Auditor")
    try:
        _migrate(BEFORE)
        content_types = dict(
            _rows("SELECT model, id FROM django_content_type WHERE app_label = 'registry'")
        )
        assert set(MOVED) <= set(content_types)
        old_triggers = _history_triggers()
        assert len(old_triggers) == 8
        grants_before = _rows(ROLE_GRANTS)
        assert ("Auditor", "registry", "raise_dataquery") in grants_before
        # A query written on the old schema: its insert is recorded once.
        (query_id,) = _rows(
            "INSERT INTO registry_dataquery (site_id, content_type_id, object_id, record_label,"
            " field_name, comment, state, answer, raised_by_id, raised_at, updated_at)"
            " SELECT %s, id, %s, 'old', 'date', 'Is the date right?', 'open', '', %s, now(),"
            " now() FROM django_content_type WHERE app_label = 'registry' AND model = 'patient'"
            " RETURNING id",
            [patient.site_id, patient.pk, monitor.pk],
        )[0]
    finally:
        _migrate(_latest())

    # Same row, same content type ids, now labelled outcomes; the roles kept every grant.
    from outcomes.quality.models import DataQuery

    query = DataQuery.objects.get(pk=query_id)
    assert (query.record_label, query.record) == ("old", patient)
    assert (
        dict(
            _rows("SELECT model, id FROM django_content_type WHERE app_label = 'outcomes'")
        ).items()
        >= {model: content_types[model] for model in MOVED}.items()
    )
    assert _rows(
        "SELECT count(*) FROM django_content_type WHERE app_label = 'registry' AND model = ANY(%s)",
        [list(MOVED)],
    ) == [(0,)]
    assert _rows(ROLE_GRANTS) == [
        (name, "outcomes", codename) for name, _app, codename in grants_before
    ]
    # New trigger names only (the old ones would write every event twice), on the same tables.
    # (Later migrations guard the base tables too: outcomes 0024_i26 adds the query's steps and
    # the saved warnings' insert-only trigger; they are not part of the move.)
    new_triggers = [
        trigger for trigger in _history_triggers() if trigger not in LATER_BASE_TABLE_GUARDS
    ]
    assert len(new_triggers) == 8
    assert not set(new_triggers) & set(old_triggers)
    assert [table for table, _name in new_triggers] == [table for table, _name in old_triggers]
    query.state = DataQuery.State.CLOSED
    query.closed_at = query.raised_at
    query.closed_by = monitor  # a close names who closed it (the query's steps, i26)
    query.save()
    assert _rows(
        "SELECT pgh_label FROM registry_dataqueryevent WHERE pgh_obj_id = %s ORDER BY pgh_id",
        [query_id],
    ) == [("insert",), ("update",)]
    # The history is still append-only (a row trigger: the statements must reach rows).
    for sql in (
        "UPDATE registry_dataqueryevent SET comment = 'rewritten'",
        "DELETE FROM registry_dataqueryevent",
    ):
        with (
            pytest.raises(DatabaseError, match="The audit trail cannot be changed"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)


@pytest.mark.django_db(transaction=True)
def test_migrating_back_restores_the_registry_labels_and_trigger_names():
    ensure_role_groups()
    latest = _history_triggers()
    try:
        _migrate(BEFORE)
        assert _rows(ROLE_GRANTS)[0][1] == "registry"
        old = _history_triggers()
        assert len(old) == 8 and not set(old) & set(latest)
    finally:
        _migrate(_latest())
    assert _history_triggers() == latest
    assert {app for _name, app, _codename in _rows(ROLE_GRANTS)} == {"outcomes"}
