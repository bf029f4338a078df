# ruff: noqa: S608 - the SQL below is built from our table names and integers, never input.
"""Benchmark: the audit trail at tens of millions of rows (not part of the normal run).

    .venv/bin/python -m pytest tests/benchmarks/test_audit_benchmark.py -s

A registry of BENCH_AUDIT_PATIENTS patients (default 5,000; generated as the report
benchmark generates them) gets one record made through the ORM and edited as staff would (its
own history: the patient, a contact, a procedure with two levels, follow-ups, responses, a
complication and a few edits), then its audit tables grow to 100,000 event rows and then to
BENCH_AUDIT_ROWS (default 10,000,000): ``INSERT … SELECT`` from ``generate_series``, cloning an
event row the triggers wrote, spread over ten years of ``pgh_created_at`` and over about a
quarter as many objects as events per table (in id ranges no real row has, so the record's own
history stays the same at every size), half of them with a ``pghistory_context`` row (one per
three events) as requests write them. The tables are then VACUUM ANALYZEd, as autovacuum would.

At each size, best of three: the history pages of the record's patient and procedure and of
its site, as staff (as the registry manager for the site) through the test client; an audit
insert (``AUDIT_SAVES`` saves of a patient, each in its own transaction and history context:
one context row and one event row each, per save); and the nightly data-quality run over all
sites. It prints ms, the ratio of the largest size to 100k for each (goal <= 2) and the load
average, and fails when a ratio exceeds 2, a page is not 200, or a page's rows or queries differ
between the sizes.
"""

from __future__ import annotations

import logging
import os
import time

import pghistory
import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from outcomes.models import ContactAttempt, FollowUp
from outcomes.quality.services import quality_run
from registry.models import Patient, PatientContact, Procedure, Site, TreatedLevel
from tests.benchmarks.test_report_benchmark import _grow, _templates
from tests.factories import make_contact, make_user

ROWS = int(os.getenv("BENCH_AUDIT_ROWS", "10000000"))
PATIENTS = int(os.getenv("BENCH_AUDIT_PATIENTS", "5000"))
SMALL = 100_000
MAX_RATIO = 2.0
AUDIT_SAVES = 20
CHUNK = 500_000
EVENTS_PER_OBJECT = 4
# Synthetic objects' ids start here: no real row has them, so no filler event is the record's.
OFFSET = 100_000_000
# The share of the audit rows each table holds (the chase writes most of them).
SHARES = {
    "outcomes_followupevent": 0.30,
    "outcomes_contactattemptevent": 0.20,
    "outcomes_questionnaireresponseevent": 0.12,
    "registry_treatedlevelevent": 0.12,
    "registry_procedureevent": 0.08,
    "registry_patientevent": 0.08,
    "registry_patientcontactevent": 0.06,
    "registry_complicationevent": 0.04,
}
# Columns that point to other synthetic objects: (column, the table whose objects they are).
POINTERS = {
    "patient_id": "registry_patientevent",
    "procedure_id": "registry_procedureevent",
}
CONTEXT_SHARE = 0.5  # events written with a request's context (the sweep writes none)
EVENTS_PER_CONTEXT = 3


def _objects(table: str) -> int:
    """Synthetic objects of ``table`` at the largest size (a quarter as many as its events)."""
    return max(1000, int(ROWS * SHARES[table]) // EVENTS_PER_OBJECT)


def _event_columns(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_name = %s AND column_name <> 'pgh_id' ORDER BY ordinal_position",
            [table],
        )
        return [row[0] for row in cursor.fetchall()]


def _contexts_for(events: int) -> int:
    return max(1, int(events * CONTEXT_SHARE) // EVENTS_PER_CONTEXT)


def _fill(templates: dict[str, int], user_id: int, start: int, stop: int) -> None:
    """Grow the audit tables from ``start`` to ``stop`` filler rows in all (by ``SHARES``),
    and the context table with them, committing every ``CHUNK`` rows."""
    first_context, last_context = _contexts_for(start), _contexts_for(stop)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO pghistory_context (id, created_at, updated_at, metadata)"
            " SELECT md5('bench-context-' || n)::uuid, at, at,"
            f" jsonb_build_object('user', {int(user_id)}, 'url',"
            " '/admin/registry/patient/' || n || '/change/')"
            " FROM (SELECT n, timestamptz '2016-01-01' + random() * interval '10 years' AS at"
            f" FROM generate_series({first_context}, {last_context - 1}) n) c"
        )
    for table, share in SHARES.items():
        rows_from, rows_to = int(start * share), int(stop * share)
        columns = _event_columns(table)
        pointers = {
            column: f"{OFFSET} + floor(random() * {_objects(pointed)})::bigint"
            for column, pointed in POINTERS.items()
            if column in columns and pointed != table
        }
        values = {
            "pgh_obj_id": "s.obj",
            "id": "s.obj",
            "pgh_created_at": "timestamptz '2016-01-01' + random() * interval '10 years'",
            "pgh_label": "CASE WHEN random() < 0.4 THEN 'insert' ELSE 'update' END",
            "pgh_context_id": f"CASE WHEN random() < {CONTEXT_SHARE} THEN"
            f" md5('bench-context-' || floor(random() * {last_context})::int)::uuid END",
            **pointers,
        }
        select = ", ".join(values.get(column, f't."{column}"') for column in columns)
        names = ", ".join(f'"{column}"' for column in columns)
        for chunk_from in range(rows_from, rows_to, CHUNK):
            chunk_to = min(rows_to, chunk_from + CHUNK)
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    f'INSERT INTO "{table}" ({names}) SELECT {select}'
                    f' FROM "{table}" t, (SELECT i, {OFFSET}'
                    f" + floor(random() * {_objects(table)})::bigint AS obj"
                    f" FROM generate_series({chunk_from}, {chunk_to - 1}) i) s"
                    f" WHERE t.pgh_id = {int(templates[table])}"
                )
    with connection.cursor() as cursor:
        for table in [*SHARES, "pghistory_context"]:
            cursor.execute(f'VACUUM (ANALYZE) "{table}"')


def _record(site: Site, staff) -> dict:
    """The record whose history is shown: made and edited through the ORM in history contexts
    as a request would, so its events are the triggers' own. Returns the objects and one
    event row id per filled table (to clone)."""
    templates = _templates(site)
    patient = Patient.objects.get(pk=templates["registry_patient"])
    procedure = Procedure.objects.get(pk=templates["registry_procedure"])
    with pghistory.context(user=staff.pk, url="/admin/registry/patient/"):
        make_contact(patient, phone="+4520304050")
        TreatedLevel.objects.create(
            procedure=procedure,
            level=TreatedLevel.Level.T11,
            etiology="osteoporotic",
            approach="bipedicular",
            cement_volume_ml="3.5",
        )
    for karnofsky in (60, 70, 80):
        with pghistory.context(user=staff.pk, url="/admin/registry/patient/"):
            Patient.objects.filter(pk=patient.pk).update(karnofsky=karnofsky)
    followup = FollowUp.objects.get(pk=templates["outcomes_followup"])
    attempt = ContactAttempt.objects.create(
        followup=followup, site=site, kind="invitation", channel="email"
    )
    ContactAttempt.objects.filter(pk=attempt.pk).update(status="sent", tries=1)
    PatientContact.objects.filter(patient=patient).update(preferred_language="en")
    with connection.cursor() as cursor:
        event_rows = {}
        for table in SHARES:
            cursor.execute(f'SELECT max(pgh_id) FROM "{table}"')
            (event_rows[table],) = cursor.fetchone()
    assert all(event_rows.values()), event_rows
    return {
        "patient": patient,
        "procedure": procedure,
        "events": event_rows,
        "templates": templates,
    }


def _page(client: Client, url: str) -> tuple[float, int, int, int, float]:
    """Best of three in ms (after a warm-up), queries, rows shown, the status, and the ms its
    SQL took in that best run (the part that could grow with the audit tables; the rest is
    Python, which a loaded machine slows down)."""
    client.get(url)
    best = None
    for _ in range(3):
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            response = client.get(url)
            ms = (time.perf_counter() - started) * 1000
        sql_ms = sum(float(query["time"]) for query in queries.captured_queries) * 1000
        if best is None or ms < best[0]:
            best = (ms, len(queries), len(response.context["rows"]), response.status_code, sql_ms)
    return best


def _audit_inserts(patient: Patient, staff) -> float:
    """Best of three rounds of ``AUDIT_SAVES`` saves, in ms per save; each writes one context
    row and one event row (checked)."""
    times = []
    for _ in range(3):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM registry_patientevent WHERE pgh_obj_id = %s", [patient.pk]
            )
            (before,) = cursor.fetchone()
        started = time.perf_counter()
        for n in range(AUDIT_SAVES):
            with transaction.atomic(), pghistory.context(user=staff.pk, url="/bench/"):
                patient.karnofsky = 50 + 10 * (n % 2)
                patient.save()
        times.append((time.perf_counter() - started) * 1000 / AUDIT_SAVES)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM registry_patientevent WHERE pgh_obj_id = %s", [patient.pk]
            )
            (after,) = cursor.fetchone()
        assert after - before == AUDIT_SAVES
    return min(times)


def _quality_run() -> tuple[float, int]:
    times, findings = [], 0
    for _ in range(3):
        started = time.perf_counter()
        runs = quality_run()
        times.append((time.perf_counter() - started) * 1000)
        findings = sum(sum(run.counts.values()) for run in runs)
    return min(times), findings


@pytest.mark.django_db(transaction=True)
def test_audit_trail_at_ten_million_rows():
    assert ROWS > SMALL
    logging.getLogger("registry.requests").setLevel(logging.WARNING)  # one line per request
    site = Site.objects.create(
        code="BENCH", name="Bench", contact_email="b@example.org", time_zone="Europe/Copenhagen"
    )
    staff = make_user("Site staff", site, username="bench-staff")
    manager = make_user("Registry manager", username="bench-manager")
    record = _record(site, staff)
    started = time.perf_counter()
    _grow(record["templates"], 0, PATIENTS)
    print(f"\nregistry of {PATIENTS} patients in {time.perf_counter() - started:.0f} s")
    saved = Patient.objects.exclude(pk=record["patient"].pk).order_by("pk").first()
    pages = {
        "patient history": (
            staff,
            reverse("admin:registry_patient_history", args=[record["patient"].pk]),
        ),
        "procedure history": (
            staff,
            reverse("admin:registry_procedure_history", args=[record["procedure"].pk]),
        ),
        "site history (manager)": (manager, reverse("admin:registry_site_history", args=[site.pk])),
    }
    clients = {}
    for who in (staff, manager):
        clients[who.pk] = Client()
        clients[who.pk].force_login(who)
    results: dict[int, dict[str, tuple]] = {}
    filled = 0
    for size in (SMALL, ROWS):
        started = time.perf_counter()
        _fill(record["events"], staff.pk, filled, size)
        filled = size
        print(f"\naudit tables filled to {size:,} rows in {time.perf_counter() - started:.0f} s")
        figures, sql = {}, {}
        for label, (user, url) in pages.items():
            ms, queries, rows, status, sql_ms = _page(clients[user.pk], url)
            assert status == 200, (label, status)
            figures[label] = (ms, queries, rows)
            sql[label] = sql_ms
        figures["audit insert (per save)"] = (_audit_inserts(saved, staff), None, None)
        ms, findings = _quality_run()
        figures["data-quality run"] = (ms, None, findings)
        results[size] = figures
        load = os.getloadavg()
        print(f"at {size:,} audit rows (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}):")
        for label, (ms, queries, rows) in figures.items():
            extra = (
                f", {queries} queries ({sql[label]:.1f} ms of SQL), {rows} rows"
                if queries is not None
                else ""
            )
            extra = extra or (f", {rows} findings" if rows is not None else "")
            print(f"  {label:<26} {ms:9.1f} ms{extra}")
    failures = []
    print(f"\nratio {ROWS:,} / {SMALL:,} rows (goal <= {MAX_RATIO}):")
    for label, (small_ms, small_queries, small_rows) in results[SMALL].items():
        large_ms, large_queries, large_rows = results[ROWS][label]
        ratio = large_ms / small_ms
        print(f"  {label:<26} {small_ms:9.1f} ms -> {large_ms:9.1f} ms  ratio {ratio:5.2f}")
        if ratio > MAX_RATIO:
            failures.append(f"{label}: {small_ms:.1f} ms -> {large_ms:.1f} ms (ratio {ratio:.2f})")
        if (small_queries, small_rows) != (large_queries, large_rows):
            failures.append(
                f"{label}: queries/rows {small_queries}/{small_rows}"
                f" -> {large_queries}/{large_rows}"
            )
    assert not failures, "; ".join(failures)
