# ruff: noqa: S608 (the statements are the attacks; every value is the test's own)
"""Saved warnings are insert-only and queries to sites change only by their steps, against an
attacker holding the application's database credentials (or a role with every privilege):
before, the app role could rewrite a warning's reason, delete it, put an answer in a
monitor's mouth or delete a query outright (their events kept history, the rows did not)."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from psycopg import sql

from outcomes.quality.models import DataQuery, WarningAcknowledgement
from outcomes.quality.queries import (
    dataquery_answer,
    dataquery_close,
    dataquery_raise,
    dataquery_reopen,
)
from outcomes.quality.saved_anyway import warning_acknowledge
from registry.roles import audit_tables, grant_app_role
from registry.warnings import EntryWarning
from tests.factories import make_patient, make_procedure, make_user
from tests.registry.test_db_roles import as_role
from tests.roles import app_role

REFUSED = ("permission denied", "audit trail cannot", "never deleted", "never change",
           "changes only by")  # fmt: skip


def refused(error: str | None) -> bool:
    return error is not None and any(reason in error for reason in REFUSED)


def as_owner(statement: str) -> str | None:
    """The other door: a role with every privilege (the test's own, which owns the tables)."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(statement)
    except DatabaseError as error:
        return str(error)
    return None


@pytest.fixture
def people(site_a):
    staff = make_user("Site staff", site_a, username="nurse.q")
    monitor = make_user("Registry manager", username="monitor.q")
    return staff, monitor


@pytest.fixture
def warning(site_a, people):
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    return warning_acknowledge(
        record=procedure,
        site=site_a,
        warnings=[EntryWarning("more_than_three_levels", "Four levels in one session.")],
        reason="Staged procedure was not possible.",
        user=people[0],
    )


def test_a_saved_warning_cannot_be_rewritten_or_deleted_by_any_role(warning):
    table = "registry_warningacknowledgement"
    assert table in audit_tables()
    attacks = [
        f"UPDATE {table} SET reason = 'Monitor agreed.' WHERE id = {warning.pk}",  # noqa: S608
        f"UPDATE {table} SET user_id = NULL WHERE id = {warning.pk}",  # noqa: S608
        f"DELETE FROM {table} WHERE id = {warning.pk}",  # noqa: S608
        f"SET LOCAL pgtrigger.ignore = '{{pgtrigger_append_only_b8152}}'; DELETE FROM {table}",  # noqa: S608
    ]
    with app_role() as role:
        for attack in attacks:
            error = as_role(role, attack)
            assert "permission denied" in (error or ""), (attack, error)
    for attack in attacks:
        error = as_owner(attack)
        assert "audit trail cannot be changed" in (error or ""), (attack, error)
    warning.refresh_from_db()
    assert warning.reason == "Staged procedure was not possible."
    assert WarningAcknowledgement.objects.count() == 1


def test_the_application_role_still_saves_a_warning(site_a, people):
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    with app_role() as role, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        warning_acknowledge(
            record=procedure,
            site=site_a,
            warnings=[EntryWarning("late_entry", "Entered late.")],
            reason="Paper form found.",
            user=people[0],
        )
        cursor.execute("RESET ROLE")
    assert WarningAcknowledgement.objects.get().reason == "Paper form found."


def test_a_query_walks_every_step_as_the_application_role(site_a, people):
    staff, monitor = people
    patient = make_patient(site_a)
    with app_role() as role, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
        query = dataquery_raise(user=monitor, record=patient, field_name="karnofsky", comment="70?")
        dataquery_close(query=query, user=monitor)  # withdrawn while open
        dataquery_reopen(query=query, user=monitor, comment="Still 70?")
        dataquery_answer(query=query, user=staff, answer="Checked: 70.")
        dataquery_reopen(query=query, user=monitor, comment="And the date?")
        dataquery_answer(query=query, user=staff, answer="Date checked too.")
        dataquery_close(query=query, user=monitor)
        cursor.execute("RESET ROLE")
    query.refresh_from_db()
    assert (query.state, query.answer, query.closed_by) == ("closed", "Date checked too.", monitor)


@pytest.fixture
def answered_query(site_a, people):
    staff, monitor = people
    query = dataquery_raise(
        user=monitor, record=make_patient(site_a), field_name="karnofsky", comment="70?"
    )
    return dataquery_answer(query=query, user=staff, answer="Checked in the notes: 70.")


def test_a_query_is_never_deleted(answered_query):
    attack = f"DELETE FROM registry_dataquery WHERE id = {answered_query.pk}"  # noqa: S608
    with app_role() as role:
        assert "permission denied" in (as_role(role, attack) or "")
        grant_app_role(role)  # the same after a regrant (migrate)
        assert "permission denied" in (as_role(role, attack) or "")
    assert "never deleted" in (as_owner(attack) or "")
    ignore = "SET LOCAL pgtrigger.ignore = '{pgtrigger_steps_only_c3501}'; "
    assert "never deleted" in (as_owner(ignore + attack) or "")
    assert DataQuery.objects.filter(pk=answered_query.pk).exists()


def test_a_query_changes_only_by_its_steps(answered_query, people):
    staff, monitor = people
    q = answered_query.pk
    later = timezone.now().isoformat()
    attacks = {
        # the answer rewritten in place, after the monitor read it
        "rewrite answer": f"UPDATE registry_dataquery SET answer = 'Was 60.' WHERE id = {q}",
        # the question rewritten to fit the answer
        "rewrite question": f"UPDATE registry_dataquery SET comment = '60?' WHERE id = {q}",
        # someone else named as having answered
        "re-attribute": f"UPDATE registry_dataquery SET answered_by_id = {monitor.pk}"
        f" WHERE id = {q}",
        "move record": f"UPDATE registry_dataquery SET object_id = object_id + 1 WHERE id = {q}",
        "new author": f"UPDATE registry_dataquery SET raised_by_id = {staff.pk} WHERE id = {q}",
        # answered -> open without the new question's step: the answer wiped
        "wipe answer": f"UPDATE registry_dataquery SET state = 'open', answer = '',"
        f" answered_by_id = NULL, answered_at = NULL WHERE id = {q}",
        # closed with nobody closing
        "anonymous close": f"UPDATE registry_dataquery SET state = 'closed',"
        f" closed_at = '{later}' WHERE id = {q}",
    }
    with app_role() as role:
        for name, attack in attacks.items():
            assert refused(as_role(role, attack)), name  # noqa: S608
    for name, attack in attacks.items():
        assert refused(as_owner(attack)), name
    # closed -> answered: no such step
    dataquery_close(query=answered_query, user=monitor)
    back = f"UPDATE registry_dataquery SET state = 'answered' WHERE id = {q}"  # noqa: S608
    assert "changes only by" in (as_owner(back) or "")
    answered_query.refresh_from_db()
    assert (answered_query.state, answered_query.answer, answered_query.answered_by) == (
        "closed",
        "Checked in the notes: 70.",
        staff,
    )
