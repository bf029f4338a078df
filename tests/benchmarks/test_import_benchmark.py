"""Benchmark: ``import_cases`` speed and linearity (not part of the normal test run).

    .venv/bin/python -m pytest tests/benchmarks/test_import_benchmark.py -s

Writes CSV files for series of BENCH_IMPORT_SIZES patients (default ``1000,20000``; e.g.
``1000,5000,20000``), each patient with one procedure with one or two levels and baseline and
3-month answers (about 5.5 rows per patient), and imports them one after the other through
``cases_import`` into the same registry, each series after the ones before it (parsing,
full_clean of every row, scoring, batched writes with every trigger and history row,
follow-up schedules). Prints rows per minute per size, the ratio to the 50 000 rows/min target,
and the linearity figure: time per row of the largest series over that of the smallest (must
be ≤ 1.5, whatever the load); then the time of an unchanged re-import of the first series.
Fails when a size imports below the target or time per row grows more than 1.5×.
"""

import csv
import datetime
import io
import os
import random
import time

import pytest

from api.imports import cases_import
from tests.benchmarks.conftest import load_average
from tests.factories import make_site

TARGET_ROWS_PER_MINUTE = 50_000
MAX_GROWTH = 1.5  # time per row, largest series over smallest


def _csv(rows: list[dict]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def _files(total: int, first: int = 0) -> list[tuple[str, bytes]]:
    """A series of ``total`` patients numbered from ``first``."""
    rng = random.Random(18 + first)
    patients, procedures, levels, responses = [], [], [], []
    for n in range(first, first + total):
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


def _sizes() -> list[int]:
    return [int(size) for size in os.environ.get("BENCH_IMPORT_SIZES", "1000,20000").split(",")]


@pytest.mark.django_db(transaction=True)
def test_import_rows_per_minute_and_linearity():
    make_site("BEN")
    first = 0
    measured = []  # (patients, rows, seconds)
    for size in _sizes():
        files = _files(size, first)
        rows = sum(content.count(b"\n") - 1 for _name, content in files)
        started = time.perf_counter()
        result = cases_import(files=files)
        seconds = time.perf_counter() - started
        assert result.ok, result.problems[:5]
        assert result.tables["patients"].created == size
        per_minute = rows / seconds * 60
        print(
            f"\nimport of {size} patients after {first}: {rows} rows in {seconds:.1f} s = "
            f"{per_minute:,.0f} rows/min (ratio to {TARGET_ROWS_PER_MINUTE:,} rows/min: "
            f"{per_minute / TARGET_ROWS_PER_MINUTE:.2f}), {seconds / rows * 1000:.2f} ms/row; "
            f"{load_average()}"
        )
        measured.append((size, rows, seconds))
        if first == 0:
            first_files = files
        first += size
    per_row = [seconds / rows for _size, rows, seconds in measured]
    growth = per_row[-1] / per_row[0]
    started = time.perf_counter()
    again = cases_import(files=first_files)
    again_seconds = time.perf_counter() - started
    assert again.ok and all(t.created == t.changed == 0 for t in again.tables.values())
    print(
        f"\nlinearity: time per row {measured[-1][0]} patients / {measured[0][0]} patients = "
        f"{growth:.2f} (at most {MAX_GROWTH}); unchanged re-import of the first series "
        f"{again_seconds:.1f} s"
    )
    slowest = min(rows / seconds * 60 for _size, rows, seconds in measured)
    assert growth <= MAX_GROWTH, f"time per row grew {growth:.2f}×"
    assert slowest >= TARGET_ROWS_PER_MINUTE, f"{slowest:,.0f} rows/min"
