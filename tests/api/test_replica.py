"""Reads from a replica (DATABASE_REPLICA_URL, issue 20).

The replica here is a second database cloned from the test database at one moment and reached
through a read-only role, so what a view shows tells where it read: rows added to the primary
after the clone are missing from whatever reads the replica, and any write through the replica
fails.
"""

import datetime
import io
import os
import secrets

import dj_database_url
import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import DatabaseError, connections
from psycopg import sql

from api.models import ExportLog
from outcomes.health.checks import readiness  # noqa: F401 - the app loads as in production
from registry.models import Procedure, Site
from registry.project.db_router import REPLICA, reading_from_replica
from tests.api.conftest import token_client
from tests.api.test_exports import read_csv
from tests.factories import make_patient, make_procedure, make_site

DAY = datetime.date(2025, 3, 10)


def _admin_connection(dbname: str) -> psycopg.Connection:
    default = connections["default"].settings_dict
    return psycopg.connect(
        host=default["HOST"] or None,
        port=default["PORT"] or None,
        user=default["USER"] or None,
        password=default["PASSWORD"] or None,
        dbname=dbname,
        autocommit=True,
    )


@pytest.fixture
def replica(transactional_db):
    """Clone the test database now into ``<name>_replica``, readable by ``<name>_ro`` only
    (SELECT grants, read-only transactions), and configure it as the ``replica`` alias."""
    base = dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]
    name, role, password = f"{base}_replica", f"{base}_ro", secrets.token_hex(16)
    primary = connections["default"].settings_dict["NAME"]
    connections["default"].close()  # CREATE DATABASE … TEMPLATE needs no session on the source
    with _admin_connection("postgres") as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(primary)
            )
        )
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(role), sql.Literal(password)
            )
        )
        admin.execute(
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
                sql.Identifier(role)
            )
        )
    with _admin_connection(name) as admin:
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)
            )
        )
    settings.DATABASES[REPLICA] = {
        **connections["default"].settings_dict,
        "NAME": name,
        "USER": role,
        "PASSWORD": password,
        "CONN_MAX_AGE": None,
        "TEST": {"MIRROR": None, "NAME": None},
    }
    connections.settings[REPLICA] = settings.DATABASES[REPLICA]
    # Connected here, as pytest-django refuses to open connections to an alias the test did not
    # declare; the replica did not exist when the test was set up.
    connections[REPLICA].connect()
    try:
        yield name
    finally:
        connections[REPLICA].close()
        del connections[REPLICA]
        settings.DATABASES.pop(REPLICA, None)
        connections.settings.pop(REPLICA, None)
        with _admin_connection("postgres") as admin:
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


@pytest.fixture
def cloned_then_changed(transactional_db, request):
    """One procedure present in both databases, then one added to the primary only."""
    site = make_site("AAR")
    before = make_procedure(make_patient(site), "osteoporotic", date=DAY)
    manager = get_user_model().objects.create_superuser("replica.manager", password="pw-x")
    api = token_client(manager)
    request.getfixturevalue("replica")
    after = make_procedure(make_patient(site), "metastasis", date=DAY)
    return {"before": before, "after": after, "api": api, "manager": manager}


def test_exports_report_and_lists_read_from_the_replica_and_the_rest_from_the_primary(
    cloned_then_changed, client
):
    # One clone for every check: copying a database takes seconds.
    api, before, after = (cloned_then_changed[k] for k in ("api", "before", "after"))

    # Exports: the replica's rows; the export log written to the primary.
    rows = read_csv(api, "/api/v1/exports/procedures.csv")
    assert [int(row["procedure_id"]) for row in rows] == [before.pk]
    log = ExportLog.objects.using("default").get(resource="procedures.csv")
    assert (log.rows, log.completed) == (1, True)

    # API lists from the replica; a single object from the primary.
    listed = api.get("/api/v1/procedures").json()["results"]
    assert [row["id"] for row in listed] == [before.pk]
    assert api.get(f"/api/v1/procedures/{after.pk}").status_code == 200

    # The cohort report, API and page: the pathologic patient added later is not there yet.
    report = api.get("/api/v1/reports/cohorts", {"as_of": "2026-01-01"}).json()
    table_1 = next(table for table in report["tables"] if table["id"] == "table_1")
    assert table_1["rows"][0][1:4] == [0, 1, 1]  # pathologic, osteoporotic, overall (no "other")
    client.force_login(cloned_then_changed["manager"])
    page = client.get("/admin/reports/cohorts/", {"format": "csv", "as_of": "2026-01-01"})
    assert 'table_1,"Patients, n",Pathologic,0' in page.content.decode()
    assert 'table_1,"Patients, n",Osteoporotic,1' in page.content.decode()
    # The command line's report too.
    out = io.StringIO()
    call_command("cohort_report", "--format", "csv", "--as-of", "2026-01-01", stdout=out)
    assert 'table_1,"Patients, n",Pathologic,0' in out.getvalue()
    assert 'table_1,"Patients, n",Osteoporotic,1' in out.getvalue()

    # Everything else reads the primary; writes go there even inside a replica block.
    assert Procedure.objects.count() == 2
    with reading_from_replica() as alias:
        assert alias == REPLICA
        assert Procedure.objects.count() == 1
        Site.objects.create(code="ODE", name="Odense", time_zone="Europe/Copenhagen")
    assert Site.objects.filter(code="ODE").exists()

    # And the replica's role cannot write at all.
    with pytest.raises(DatabaseError, match="read-only transaction"):
        Site.objects.using(REPLICA).create(code="XXX", name="X", time_zone="UTC")


def test_without_a_replica_every_read_uses_the_primary(db):
    with reading_from_replica() as alias:
        assert alias == "default"
