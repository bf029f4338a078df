"""Benchmark: the levels CSV export over HTTP against psql's COPY (not part of the normal run).

    .venv/bin/python -m pytest tests/benchmarks/test_export_benchmark.py -s

Fills BENCH_LEVELS treated levels (default 1,000,000; 4 per procedure, 10% at a small site)
with INSERT … SELECT bulk inserts, starts the registry's web server as its own process, and
pulls ``/api/v1/exports/levels.csv`` with a manager's token, once for the small site (100k
rows) and once for everything (1M rows). The same COPY query, with its parameters inlined, is
run through ``psql -c "COPY (…) TO STDOUT"`` in the same run, alternating, best of three
each. Prints rows per second of both,
their ratio (target ≥ 0.8) and the server's peak memory growth for each export (target: flat,
< 50 MB). Fill triggers (history) are off for the load, as in the other benchmarks.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from urllib.parse import quote

import psutil
import pytest
from django.conf import settings
from django.db import connection
from psycopg import ClientCursor

from api.exports import LEVELS, export_sql
from api.services import api_token_create
from registry.models import Patient, Procedure, TreatedLevel, recompute_all
from tests.benchmarks.analyze import analyze_project_tables
from tests.factories import make_level, make_patient, make_procedure, make_site, make_user

RATIO_TARGET = 0.8
RUNS = 3
MEMORY_TARGET_MB = 50


def _insert_copies(model, template_id: int, overrides: dict[str, str], source: str) -> None:
    """INSERT one row per row of ``source`` (SQL FROM … WHERE), copying the template row
    except for ``overrides`` (column → SQL expression)."""
    table = model._meta.db_table
    columns = [f.column for f in model._meta.concrete_fields if f.column != "id"]
    values = [overrides.get(c, f't."{c}"') for c in columns]
    quoted = ", ".join(f'"{c}"' for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({quoted}) SELECT {', '.join(values)} "  # noqa: S608
            f"FROM {table} t, {source} AND t.id = %s",
            [template_id],
        )


def _fill(total_levels: int) -> tuple:
    small, big = make_site("SMALL"), make_site("BIG")
    template = make_procedure(make_patient(small), "osteoporotic")
    level = template.levels.get()
    procedures = total_levels // 4
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
    _insert_copies(
        Patient,
        template.patient_id,
        {
            "registry_id": "'BENCH-' || g",
            "site_id": f"CASE WHEN g %% 10 = 0 THEN {small.pk} ELSE {big.pk} END",
        },
        f"generate_series(1, {procedures - 1}) g WHERE true",
    )
    _insert_copies(
        Procedure,
        template.pk,
        {"patient_id": "p.id", "date": "t.date - (p.id %% 365)::int"},
        f"registry_patient p WHERE p.id <> {template.patient_id}",
    )
    _insert_copies(
        TreatedLevel,
        level.pk,
        {"procedure_id": "pr.id", "level": f"{TreatedLevel.Level.T1} + k"},
        f"registry_procedure pr, generate_series(0, 3) k WHERE pr.id <> {template.pk}",
    )
    make_level(template, level=TreatedLevel.Level.L2)
    make_level(template, level=TreatedLevel.Level.L3)
    make_level(template, level=TreatedLevel.Level.L4)
    with connection.cursor() as cursor:
        # The copied rows' stored cohorts and index procedures, as the skipped triggers would.
        recompute_all(cursor)
        cursor.execute("SET session_replication_role = DEFAULT")
        analyze_project_tables(cursor)
    return small, big


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "127.0.0.1", safe="")  # the embedded server's is a socket path
    return (
        f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{host}:{db['PORT'] or 5432}/{db['NAME']}"
    )


class PeakMemory(threading.Thread):
    """Samples a process's resident memory every 10 ms until stopped."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.peak = self.process.memory_info().rss
        self.running = True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.01)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def _http_export(url: str, token: str, pid: int) -> tuple[int, float, int]:
    """Rows, seconds and the server's peak memory growth (bytes) of one export."""
    baseline = psutil.Process(pid).memory_info().rss
    memory = PeakMemory(pid)
    memory.start()
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})  # noqa: S310
    lines = 0
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:  # noqa: S310 - our own server
        while chunk := response.read(1 << 16):
            lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    return lines - 1, seconds, memory.stop() - baseline


def _psql_export(queryset) -> tuple[int, float]:
    sql, params = export_sql(LEVELS, queryset)
    with ClientCursor(connection.connection) as cursor:
        literal = cursor.mogrify(sql, params)
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603
        # the server settings the registry's connections use (settings: JIT off)
        [shutil.which("psql"), _database_url(), "-X", "-q", "-c", "SET jit = off", "-c", literal],
        stdout=subprocess.PIPE,
        check=True,
    )
    seconds = time.perf_counter() - started
    return result.stdout.count(b"\n") - 1, seconds


@pytest.mark.django_db(transaction=True)  # committed, so the server process sees the rows
def test_levels_export_against_psql_copy(tmp_path):
    total = int(os.getenv("BENCH_LEVELS", "1000000"))
    started = time.perf_counter()
    small, _big = _fill(total)
    seconds = time.perf_counter() - started
    print(f"\nfilled {TreatedLevel.objects.count()} treated levels in {seconds:.1f} s")
    manager = make_user("Registry manager", username="bench.manager")
    _row, token = api_token_create(user=manager)

    port = _free_port()
    # In pytest's tmp_path, not var/: a fresh clone has no var/ until something creates it.
    log_path = tmp_path / "export-benchmark-server.log"
    log = open(log_path, "w")  # noqa: SIM115
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "DEBUG": "1",
        "ALLOWED_HOSTS": "127.0.0.1",
    }
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        base = f"http://127.0.0.1:{port}/api/v1/exports/levels.csv"
        warm_up = urllib.request.Request(  # noqa: S310 - our own server
            f"{base}?date_from=2100-01-01", headers={"Authorization": f"Token {token}"}
        )
        for _ in range(150):
            try:
                urllib.request.urlopen(warm_up).read()  # noqa: S310 - our own server
                break
            except OSError:
                assert server.poll() is None, f"the server stopped: {log_path.read_text()}"
                time.sleep(0.2)
        results = []
        everything = TreatedLevel.objects.all()
        for label, query, queryset in (
            ("small site", "?site=SMALL", everything.filter(procedure__patient__site=small)),
            ("all sites", "", everything),
        ):
            scoped = LEVELS.filterset(
                {"site": "SMALL"} if query else {}, queryset=LEVELS.queryset(manager)
            ).qs
            http_runs, psql_runs = [], []
            for _ in range(RUNS):  # alternated, best of each: the machine is shared
                http_runs.append(_http_export(base + query, token, server.pid))
                psql_runs.append(_psql_export(scoped))
            http_rows, http_seconds, _growth = min(http_runs, key=lambda run: run[1])
            growth = max(run[2] for run in http_runs)
            psql_rows, psql_seconds = min(psql_runs, key=lambda run: run[1])
            ratio = (http_rows / http_seconds) / (psql_rows / psql_seconds)
            results.append((label, http_rows, ratio, growth))
            print(
                f"{label}: {http_rows} rows over HTTP in {http_seconds:.2f} s "
                f"({http_rows / http_seconds:,.0f} rows/s); psql COPY {psql_rows} rows in "
                f"{psql_seconds:.2f} s ({psql_rows / psql_seconds:,.0f} rows/s); "
                f"ratio {ratio:.2f} (target ≥ {RATIO_TARGET}); server peak memory growth "
                f"{growth / 2**20:.1f} MB (target < {MEMORY_TARGET_MB} MB)"
            )
            assert http_rows == psql_rows == queryset.count()
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
    failures = [
        f"{label}: ratio {ratio:.2f} under {RATIO_TARGET}" for label, _r, ratio, _g in results
        if ratio < RATIO_TARGET
    ] + [
        f"{label}: memory grew {growth / 2**20:.1f} MB" for label, _r, _ratio, growth in results
        if growth >= MEMORY_TARGET_MB * 2**20
    ]  # fmt: skip
    assert not failures, "; ".join(failures)
