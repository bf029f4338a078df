"""The long run of the property-based export tests (not part of the normal run).

    .venv/bin/python -m pytest tests/benchmarks/test_exports_property_long.py -q -p no:cacheprovider

The same properties as ``tests/properties/test_exports_property.py`` (every export in every
format and every report view parses back with the CSV's row count; export → import into an
empty registry → export is identical), over PROPERTY_EXAMPLES random cohorts each (default
100; about 25 s a cohort for the formats, 1–2 s for the round trip), of up to 12 patients,
randomised afresh on every run. A failure prints the cohort plan that broke it, shrunk.
"""

from __future__ import annotations

import os

from hypothesis import given, settings

from tests.properties.cohorts import cohorts
from tests.properties.test_exports_property import SETTINGS, doors, every_format, round_trip

EXAMPLES = int(os.getenv("PROPERTY_EXAMPLES", "100"))
LONG = {**SETTINGS, "derandomize": False}

__all__ = ["doors"]  # the fixture


@settings(max_examples=EXAMPLES, **LONG)
@given(plan=cohorts(max_patients=12))
def test_every_export_and_report_of_any_cohort_parses_back_long(doors, tmp_path, plan):
    every_format(doors, tmp_path, plan)


@settings(max_examples=EXAMPLES, **LONG)
@given(plan=cohorts(max_patients=12))
def test_any_cohort_survives_export_import_export_long(doors, plan):
    round_trip(doors, plan)
