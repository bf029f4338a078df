"""Benchmark: complete patient questionnaires through gunicorn (not part of the normal run).

    .venv/bin/python -m pytest tests/benchmarks/test_questionnaire_benchmark.py -s

Creates BENCH_QUESTIONNAIRES invited 3-month follow-ups (default 600) with their links, starts
gunicorn as production runs it (gunicorn.conf.py, WEB_CONCURRENCY=4 sync workers, DEBUG off,
DB_CONN_MAX_AGE=60, LOG_FORMAT=json) and drives it from BENCH_CLIENTS client processes (default
8), each request on a new connection as a browser behind a proxy would:

1. a constant view (``/healthz``: the whole middleware stack, no database) at maximum rate;
2. complete questionnaires at maximum rate: the start page, each of the five steps shown and
   answered, the check page, the submit and the thanks page (14 requests);
3. complete questionnaires at a steady BENCH_RATE requests/s (default 50).

Each phase lasts BENCH_SECONDS (default 10). Prints completed questionnaires/s, requests/s,
p50/p95/p99 per step, the queries each step costs (counted in-process on the same code) and the
ratio of the questionnaire path's requests/s to the constant view's (goal ≥ 0.25), and fails
when a request fails or the ratio is under its goal.
"""

from __future__ import annotations

import datetime
import http.client
import multiprocessing
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outcomes.followups import links
from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp
from tests.factories import make_contact, make_patient, make_procedure, make_site
from tests.outcomes.conftest import ANSWERS
from tests.services import LOCAL, free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
RATIO_GOAL = 0.25
SLUGS = list(ANSWERS)


def _database_url() -> str:
    db = connection.settings_dict
    host = urllib.parse.quote(db["HOST"] or LOCAL, safe="")
    auth = db["USER"] + (
        f":{urllib.parse.quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    )
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{db['NAME']}"


def _invited_links(count: int) -> list[str]:
    """``count`` invited 3-month follow-ups whose window opened today; their tokens."""
    site = make_site("BEN", time_zone="Europe/Copenhagen")
    today = datetime.datetime.now(ZoneInfo(site.time_zone)).date()
    ids = []
    for _ in range(count):
        patient = make_patient(site, consent_date=today - datetime.timedelta(days=90))
        make_contact(patient, preferred_language="en")
        ids.append(make_procedure(patient, "osteoporotic", date=today - datetime.timedelta(70)).pk)
    followups_ensure(procedure_ids=ids)
    followups = list(FollowUp.objects.filter(procedure_id__in=ids, timepoint="month_3"))
    tokens = []
    for followup in followups:
        tokens.append(links.link_issue(followup, now=timezone.now()))
        followup.state = FollowUp.State.INVITED
        followup.invited_on = today
    FollowUp.objects.bulk_update(
        followups, ["state", "invited_on", "link_nonce", "link_token_hash", "link_issued_at"]
    )
    return tokens


def _path(token: str) -> list[tuple[str, str, str, dict | None]]:
    """The requests of one complete questionnaire: (step label, method, path, form)."""
    base = f"/q/{token}/"
    requests = [("start", "GET", base, None)]
    for slug in SLUGS:
        requests.append((f"{slug} GET", "GET", f"{base}{slug}/", None))
        requests.append((f"{slug} POST", "POST", f"{base}{slug}/", ANSWERS[slug]))
    requests += [
        ("check GET", "GET", f"{base}check/", None),
        ("submit POST", "POST", f"{base}check/", {}),
        ("thanks", "GET", "/q/thanks/", None),
    ]
    return requests


def _send(port: int, method: str, path: str, form: dict | None) -> tuple[int, float]:
    body = urllib.parse.urlencode(form).encode() if form is not None else None
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body is not None else {}
    started = time.perf_counter()
    conn = http.client.HTTPConnection(LOCAL, port, timeout=30)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, (time.perf_counter() - started) * 1000


EXPECTED = {"GET": 200, "POST": 302}


def _client(args) -> dict:
    """One client process: constant view, or questionnaires at max or at a given rate."""
    kind, port, seconds, tokens, interval = args
    timings: dict[str, list[float]] = defaultdict(list)
    errors = completed = 0
    deadline = time.monotonic() + seconds
    next_at = time.monotonic()
    if kind == "constant":
        while time.monotonic() < deadline:
            status, ms = _send(port, "GET", "/healthz", None)
            timings["healthz"].append(ms)
            errors += status != 200
        return {"timings": timings, "errors": errors, "completed": 0}
    for token in tokens:
        for label, method, path, form in _path(token):
            if interval:  # open loop: keep the schedule whatever the latency
                next_at += interval
                pause = next_at - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            status, ms = _send(port, method, path, form)
            timings[label].append(ms)
            errors += status != EXPECTED[method]
        completed += 1
        if time.monotonic() >= deadline:
            break
    return {"timings": timings, "errors": errors, "completed": completed}


def _run(kind, port, seconds, clients, tokens=(), rate=0.0) -> dict:
    chunks = [list(tokens[i::clients]) for i in range(clients)]
    interval = clients / rate if rate else 0.0
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        results = pool.map(_client, [(kind, port, seconds, c, interval) for c in chunks])
    elapsed = time.perf_counter() - started
    timings: dict[str, list[float]] = defaultdict(list)
    for result in results:
        for label, values in result["timings"].items():
            timings[label].extend(values)
    requests = sum(len(values) for values in timings.values())
    return {
        "timings": timings,
        "requests_per_s": requests / elapsed,
        "completed_per_s": sum(r["completed"] for r in results) / elapsed,
        "completed": sum(r["completed"] for r in results),
        "errors": sum(r["errors"] for r in results),
        "elapsed": elapsed,
    }


def _percentiles(values: list[float]) -> str:
    if len(values) < 2:
        return "n/a"
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return f"{cuts[49]:6.1f} {cuts[94]:6.1f} {cuts[98]:6.1f}"


def _queries_per_step(token: str) -> dict[str, int]:
    """Statements each request of the path runs, counted in this process on the same code
    (autocommit, as in production: no test transaction around it)."""
    client = Client()
    counts = {}
    for label, method, path, form in _path(token):
        with CaptureQueriesContext(connection) as queries:
            if method == "GET":
                client.get(path)
            else:
                client.post(path, form or {})
        counts[label] = len(queries)
    return counts


def _report(title: str, result: dict, queries: dict[str, int] | None = None) -> None:
    print(
        f"\n{title}: {result['requests_per_s']:.0f} requests/s, "
        f"{result['completed_per_s']:.1f} questionnaires/s completed "
        f"({result['completed']} in {result['elapsed']:.1f} s), errors {result['errors']}"
    )
    print(
        f"  {'step':<20} {'n':>5}  {'p50':>6} {'p95':>6} {'p99':>6} ms"
        + ("  queries" * bool(queries))
    )
    for label, values in result["timings"].items():
        extra = f"  {queries.get(label, 0):>7}" if queries else ""
        print(f"  {label:<20} {len(values):>5}  {_percentiles(values)}{extra}")


@pytest.mark.django_db(transaction=True)  # committed, so gunicorn's workers see the rows
def test_questionnaire_throughput_against_a_constant_view(tmp_path):
    count = int(os.getenv("BENCH_QUESTIONNAIRES", "600"))
    clients = int(os.getenv("BENCH_CLIENTS", "8"))
    seconds = float(os.getenv("BENCH_SECONDS", "10"))
    rate = float(os.getenv("BENCH_RATE", "50"))
    tokens = _invited_links(count + 1)
    queries = _queries_per_step(tokens.pop())

    port = free_port()
    env = {
        **os.environ,
        "DEBUG": "0",
        "DATABASE_URL": _database_url(),
        "ALLOWED_HOSTS": LOCAL,
        "PORT": str(port),
        "HOST": LOCAL,
        "WEB_CONCURRENCY": os.getenv("WEB_CONCURRENCY", "4"),
        "DB_CONN_MAX_AGE": "60",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "WARNING",
        "STATIC_MANIFEST": "0",
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
         "registry.project.wsgi:application"],  # fmt: skip
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for(lambda: _answers(port), timeout=60, what="gunicorn to answer")
        _run("constant", port, 2, clients)  # warm every worker's connection and imports
        constant = _run("constant", port, seconds, clients)
        half = len(tokens) // 2
        maximum = _run("questionnaire", port, seconds, clients, tokens[:half])
        steady = _run("questionnaire", port, seconds, clients, tokens[half:], rate=rate)
    finally:
        server.terminate()
        server.wait(30)
        log.close()

    ratio = maximum["requests_per_s"] / constant["requests_per_s"]
    _report("constant view (/healthz), maximum", constant)
    _report("questionnaire path, maximum", maximum, queries)
    _report(f"questionnaire path, steady {rate:.0f} requests/s", steady, queries)
    print(f"\nqueries per completed questionnaire: {sum(queries.values())}")
    print(f"ratio questionnaire/constant requests/s: {ratio:.3f} (goal ≥ {RATIO_GOAL})")
    assert maximum["errors"] == steady["errors"] == constant["errors"] == 0
    assert maximum["completed"] > 0 and steady["completed"] > 0
    assert ratio >= RATIO_GOAL, f"ratio {ratio:.3f} is under its goal {RATIO_GOAL}"


def _answers(port: int) -> bool:
    try:
        return _send(port, "GET", "/healthz", None)[0] == 200
    except OSError:
        return False
