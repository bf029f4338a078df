"""Benchmark: the cohort report page against the same report as JSON (not part of the normal
run).

    .venv/bin/python -m pytest tests/benchmarks/test_report_page_benchmark.py -s

Seeds the demo (BENCH_REPORT_PAGE_PATIENTS patients, default 300, with their follow-ups and
answers: the demo the issue was timed on), then, logged in as the demo's site nurse, times the
staff page ``/admin/reports/cohorts/`` and ``GET /api/v1/reports/cohorts`` alternately, best
of five each after a warm-up, and prints both, their ratio and the load average. It fails
when the page costs more than twice the JSON's server time (it cost 9× when the page drew its
four matplotlib charts inline; they are now separate requests, timed and printed here too but
outside the ratio).
"""

import os
import time

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

PATIENTS = int(os.getenv("BENCH_REPORT_PAGE_PATIENTS", "300"))
MAX_RATIO = 2.0
RUNS = 5


def _best(client: Client, url: str) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        response = client.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200, url
    return min(timings)


@pytest.mark.django_db
def test_report_page_costs_at_most_twice_the_json():
    call_command("seed_demo", patients=PATIENTS, no_progress=True)
    client = Client()
    client.force_login(get_user_model().objects.get(username="nurse.aar"))
    page, api = reverse("cohort_report"), "/api/v1/reports/cohorts"
    chart = reverse("cohort_report_chart", args=["eq5d_index"])
    html = client.get(page).content.decode()
    client.get(api)
    assert "Table 1. Patients" in html and f'src="{chart}?"' in html
    page_seconds, api_seconds = [], []
    for _ in range(2):  # alternate, so a burst of load hits both
        page_seconds.append(_best(client, page))
        api_seconds.append(_best(client, api))
    best_page, best_api = min(page_seconds), min(api_seconds)
    started = time.perf_counter()
    client.get(chart)
    drawn = time.perf_counter() - started
    cached = _best(client, chart)
    ratio = best_page / best_api
    print(
        f"\n{PATIENTS} demo patients: report page {best_page * 1000:.0f} ms, JSON"
        f" {best_api * 1000:.0f} ms, ratio {ratio:.2f} (must be <= {MAX_RATIO});"
        f" one chart drawn {drawn * 1000:.0f} ms, again from the cache {cached * 1000:.0f} ms;"
        f" load average {os.getloadavg()[0]:.1f}"
    )
    assert ratio <= MAX_RATIO, f"the page costs {ratio:.2f}x the JSON"
