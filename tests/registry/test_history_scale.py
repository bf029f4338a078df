"""The history page at any size of the audit trail (issue 32, item 7; the timed benchmark at
ten million audit rows is tests/benchmarks/test_audit_benchmark.py): its queries do not grow
with the events it shows, and it reads every event table through an index, never a scan of
the whole table."""

from __future__ import annotations

import re

import pghistory
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.models import Patient
from tests.factories import make_complication, make_contact, make_patient, make_procedure


def _history(client, url: str):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return response, queries.captured_queries


def _statement(query) -> str:
    """The start of a query without the history context's ``set_config`` before it."""
    return re.sub(r"^SELECT set_config\(.*?\); ", "", query["sql"], flags=re.S)[:80]


def _events_query(queries) -> str:
    """The page's one query over the event tables (pghistory's aggregate ``Events``), without
    the ``set_config`` of the history context that pghistory's middleware puts before it."""
    found = [q["sql"] for q in queries if "_pgh_obj_event" in q["sql"]]
    assert len(found) == 1, [q["sql"][:120] for q in queries]
    return found[0][found[0].index("WITH pghistory_events AS") :]


def test_patient_history_queries_do_not_grow_with_its_events(client_a, staff_a, site_a):
    with pghistory.context(user=staff_a.pk):
        patient = make_patient(site_a)
        make_contact(patient)
        procedure = make_procedure(patient, "osteoporotic")
    url = reverse("admin:registry_patient_history", args=[patient.pk])
    client_a.get(url)  # the session's first request reads more (the user, its OTP device)
    few, few_queries = _history(client_a, url)
    for karnofsky in (40, 50, 60, 70, 80):
        with pghistory.context(user=staff_a.pk):
            Patient.objects.filter(pk=patient.pk).update(karnofsky=karnofsky)
    make_complication(procedure)  # and one by the system (no user)
    many, many_queries = _history(client_a, url)
    assert len(many.context["rows"]) == len(few.context["rows"]) + 6
    assert [_statement(q) for q in many_queries] == [_statement(q) for q in few_queries]


def test_history_pages_read_every_event_table_through_an_index(client_a, site_a):
    """With sequential scans priced out, a table without an index for the page's look-up
    (its object, a foreign key to the record, the previous event of the same object) is still
    read by a Seq Scan: there must be none."""
    patient = make_patient(site_a)
    make_contact(patient)
    procedure = make_procedure(patient, "osteoporotic", "osteoporotic")
    make_complication(procedure)
    for name, pk in (("patient", patient.pk), ("procedure", procedure.pk)):
        _, queries = _history(client_a, reverse(f"admin:registry_{name}_history", args=[pk]))
        sql = _events_query(queries)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
        tables = set(re.findall(r'FROM "(\w+event)" _event\b', sql))
        assert len(tables) >= 4, tables  # the record's own table and those pointing to it
        assert re.findall(r"Seq Scan on (\w+)", plan) == [], plan
        scanned = set(
            re.findall(r"(?:Index|Index Only|Bitmap Heap) Scan (?:using \w+ )?on (\w+)", plan)
        )
        assert tables <= scanned, (tables - scanned, plan)
