"""Benchmark: ``import_cases`` speed (not part of the normal test run).

    .venv/bin/python -m pytest tests/benchmarks/test_import_benchmark.py -s

Writes CSV files for BENCH_IMPORT_PATIENTS patients (default 2000: one procedure with one or
two levels, baseline and 3-month answers each, so about 5.5 rows per patient), imports them
through ``cases_import`` (parsing, full_clean of every row, scoring, batched writes with
every trigger and history row, follow-up schedules) and prints rows per minute, the ratio to
the 50 000 rows/min target (must be ≥ 1), and the time of a second, unchanged re-import.
"""

import csv
import datetime
import io
import os
import random
import time

import pytest

from api.imports import cases_import
from tests.factories import make_site

TARGET_ROWS_PER_MINUTE = 50_000


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _files(total: int) -> list[tuple[str, bytes]]:
    rng = random.Random(18)
    patients, procedures, levels, responses = [], [], [], []
    for n in range(total):
        registry_id = f"BEN-{n:06d}"
        day = datetime.date(2020, 1, 1) + datetime.timedelta(days=n % 1500)
        patients.append({
            "registry_id": registry_id, "site": "BEN", "sex": rng.choice(["female", "male"]),
            "date_of_birth": "1945-03-01", "consent_date": day.isoformat(),
        })  # fmt: skip
        procedures.append({
            "registry_id": registry_id, "procedure_date": day.isoformat(),
            "technique": "vertebroplasty", "anaesthesia": "local",
            "image_guidance": "fluoroscopy", "indication": "painful_fracture",
        })  # fmt: skip
        for level in rng.sample(["T11", "T12", "L1", "L2"], rng.choice([1, 2])):
            levels.append({
                "registry_id": registry_id, "procedure_date": day.isoformat(), "level": level,
                "etiology": "osteoporotic", "approach": "bipedicular", "cement_volume_ml": "4.5",
            })  # fmt: skip
        for timepoint, offset in (("baseline", 0), ("month_3", 91)):
            answers = {f"odi_{s}": rng.randint(0, 5) for s in (
                "pain_intensity", "personal_care", "lifting", "walking", "sitting",
                "standing", "sleeping", "sex_life", "social_life", "travelling",
            )}  # fmt: skip
            responses.append({
                "registry_id": registry_id, "procedure_date": day.isoformat(),
                "timepoint": timepoint, "mode": "paper",
                "answered_on": (day + datetime.timedelta(days=offset)).isoformat(),
                "vas_pain": rng.randint(0, 100), "eq5d_version": "5L",
                **{f"eq5d_{d}": rng.randint(1, 5) for d in (
                    "mobility", "self_care", "usual_activities", "pain_discomfort",
                    "anxiety_depression",
                )},
                "eq_vas": rng.randint(0, 100), **answers,
            })  # fmt: skip
    return [
        ("patients.csv", _csv(patients)),
        ("procedures.csv", _csv(procedures)),
        ("levels.csv", _csv(levels)),
        ("responses.csv", _csv(responses)),
    ]


@pytest.mark.django_db(transaction=True)
def test_import_rows_per_minute():
    make_site("BEN")
    files = _files(int(os.environ.get("BENCH_IMPORT_PATIENTS", "2000")))
    rows = sum(content.count(b"\n") - 1 for _name, content in files)
    started = time.perf_counter()
    result = cases_import(files=files)
    seconds = time.perf_counter() - started
    assert result.ok, result.problems[:5]
    per_minute = rows / seconds * 60
    started = time.perf_counter()
    again = cases_import(files=files)
    again_seconds = time.perf_counter() - started
    assert again.ok and all(t.created == t.changed == 0 for t in again.tables.values())
    print(
        f"\nimport: {rows} rows in {seconds:.1f} s = {per_minute:,.0f} rows/min "
        f"(ratio to {TARGET_ROWS_PER_MINUTE:,} rows/min target: "
        f"{per_minute / TARGET_ROWS_PER_MINUTE:.2f}); unchanged re-import {again_seconds:.1f} s"
    )
    assert per_minute >= TARGET_ROWS_PER_MINUTE
