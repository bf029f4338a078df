"""Benchmark: one chasing sweep over 100k due follow-ups (not part of the normal test run).

    .venv/bin/python -m pytest tests/benchmarks/test_chase_benchmark.py -s

Prints follow-ups per second and their ratio to the goal of 1,000 per second (issue 32), queries
per batch and duplicate messages; fails under the goal or on any duplicate. BENCH_FOLLOWUPS
sets the size (default 100000; every procedure has four follow-ups, and on the sweep's day each
takes a step but the 12-month one).
"""

import datetime
import os
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.db.models import Count
from django.test.utils import CaptureQueriesContext

from outcomes.followups.sweep import SWEEP_BATCH_SIZE, followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.models import Patient, PatientContact, Procedure, Site, TreatedLevel

DAY = datetime.date(2026, 1, 12)
GOAL_PER_SECOND = 1000


@pytest.mark.django_db
def test_sweep_throughput():
    total = int(os.getenv("BENCH_FOLLOWUPS", "100000"))
    procedures_wanted = total // 4
    site = Site.objects.create(code="BENCH", name="Bench", contact_email="b@example.org")
    patients = Patient.objects.bulk_create(
        Patient(
            registry_id=f"BENCH-{i:07d}",
            site=site,
            sex="female",
            date_of_birth=datetime.date(1950, 1, 1),
            consent_date=DAY,
        )
        for i in range(procedures_wanted)
    )
    PatientContact.objects.bulk_create(
        PatientContact(patient=p, email=f"p{p.pk}@example.org", consent_to_contact=True)
        for p in patients
    )
    procedures = Procedure.objects.bulk_create(
        Procedure(
            patient=p,
            date=DAY,
            technique="vertebroplasty",
            anaesthesia="local",
            image_guidance="fluoroscopy",
            indication="painful_fracture",
        )
        for p in patients
    )
    # Every procedure has a treated level (a deferred trigger checks it at commit).
    TreatedLevel.objects.bulk_create(
        TreatedLevel(
            procedure=procedure,
            level=TreatedLevel.Level.T12,
            etiology="osteoporotic",
            approach="bipedicular",
            cement_volume_ml=Decimal("4.5"),
        )
        for procedure in procedures
    )
    followups_ensure()
    assert FollowUp.objects.count() == procedures_wanted * 4

    now = datetime.datetime(2026, 3, 23, 8, tzinfo=datetime.UTC)  # day 70: 3-month windows open
    started = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        report = followups_sweep(now=now)
    elapsed = time.perf_counter() - started
    duplicates = (
        ContactAttempt.objects.exclude(followup=None)
        .values("followup", "kind")
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .count()
    )
    swept = len(report.actions)
    print(
        f"\nfollow-ups in the table: {FollowUp.objects.count()}, steps taken: {swept}, "
        f"batches of {SWEEP_BATCH_SIZE}: {report.batches}\n"
        f"follow-ups per second: {swept / elapsed:,.0f} ({elapsed:.1f} s), ratio to the goal "
        f"of {GOAL_PER_SECOND:,}/s: {swept / elapsed / GOAL_PER_SECOND:.2f} (must be ≥ 1)\n"
        f"queries per batch: {len(queries) / max(report.batches, 1):.1f}\n"
        f"duplicate messages: {duplicates}"
    )
    assert duplicates == 0
    assert swept >= procedures_wanted * 3  # invited, and the two earlier timepoints closed
    assert swept / elapsed >= GOAL_PER_SECOND, f"{swept / elapsed:,.0f} follow-ups/s"
