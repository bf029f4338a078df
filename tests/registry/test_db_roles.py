"""The shipped application role (registry.roles): it owns nothing, so it cannot TRUNCATE,
disable or drop a trigger; it has no UPDATE or DELETE on the audit tables; and the
application works through it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from pghistory import context as pghistory_context
from psycopg import sql

from api.services import export_log_finish, export_log_start
from registry.models import Patient
from registry.roles import audit_tables, grant_app_role
from tests.factories import make_contact, make_level, make_patient, make_procedure
from tests.registry.test_audit_immutable import event_tables
from tests.roles import app_role, audit_attacks


def as_role(role: str, statement: str) -> str | None:
    """Run ``statement`` as ``role``; the error's text if PostgreSQL refused it."""
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            cursor.execute(statement)
            cursor.execute("RESET ROLE")
    except DatabaseError as error:
        return str(error)
    return None


@pytest.mark.django_db(transaction=True)
def test_every_audit_table_is_insert_only_for_the_application_role(site_a, manager):
    """Attacks on rows of past transactions (committed), as the application's role."""
    patient = make_patient(site_a)
    with pghistory_context(user=manager.pk, url="/admin/"), transaction.atomic():
        make_contact(patient, email="karen@example.org")
        make_level(make_procedure(patient))
    log = export_log_start(user=manager, kind="export", resource="levels.csv", filters={})
    export_log_finish(log=log, rows=3, completed=True)
    tables = audit_tables()
    assert set(event_tables()) <= set(tables)
    assert {"pghistory_context", "api_exportlog"} <= set(tables)
    with app_role() as role:
        attacks = audit_attacks()
        assert len(attacks) == 7 * len(tables)
        for attack in attacks:
            error = as_role(role, attack)
            assert error is not None, f"{role} was allowed: {attack}"
            assert any(
                refusal in error
                for refusal in ("permission denied", "must be owner", "audit trail cannot")
            ), (attack, error)
    # the two tables whose columns the role may partly update had rows for the trigger to guard
    for table in ("pghistory_context", "api_exportlog"):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {table}")  # noqa: S608
            assert cursor.fetchone()[0] > 0, table


def test_the_application_works_through_its_role(site_a):
    patient = make_patient(site_a)
    with app_role() as role:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(role)))
            procedure = make_procedure(patient)  # triggers: history, derived columns
            make_level(procedure)
            Patient.objects.filter(pk=patient.pk).update(karnofsky=60)
            make_contact(patient, email="karen@example.org")
            cursor.execute("SELECT current_user")
            assert cursor.fetchone()[0] == role
            cursor.execute("RESET ROLE")  # SET LOCAL outlives the savepoint
        assert Patient.objects.get(pk=patient.pk).index_procedure_id == procedure.pk


def test_a_role_that_owns_tables_is_refused(site_a):
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(ValueError, match="owns tables"):
        grant_app_role(owner)


def test_migrate_grants_the_application_role_itself(settings, site_a):
    with app_role() as role:
        with connection.cursor() as cursor:
            cursor.execute(sql.SQL("REVOKE ALL ON registry_patient FROM {}").format(
                sql.Identifier(role)))  # fmt: skip
        assert as_role(role, "SELECT count(*) FROM registry_patient") is not None
        settings.DATABASE_APP_ROLE = role
        call_command("migrate", verbosity=0)
        assert as_role(role, "SELECT count(*) FROM registry_patient") is None
        assert as_role(role, "SELECT count(*) FROM django_migrations") is None
        assert "permission denied" in as_role(role, "DELETE FROM django_migrations")
