"""The cohort report of a demo-like cohort (the demo generator's patients and answers) with
a few procedures of unknown etiology: those are left out of every column and counted in the
footnotes; every statistical test is named with its one spelling
(``outcomes.reports.statistics.TEST_NAMES``) in the tidy CSV, the tables and the footnotes;
the Word tables fit their words and the page."""

import copy
import csv
import datetime
import io
import re

import pytest
from django.db import transaction

from outcomes.demo import create_demo_responses
from outcomes.followups.sweep import followups_ensure
from outcomes.reports.dataset import ReportFilter
from outcomes.reports.formats import report_csv, report_docx, report_tidy_csv
from outcomes.reports.statistics import TEST_NAMES
from outcomes.reports.tables import cohort_report
from registry.demo import create_demo_cohort
from registry.models import Patient, Site
from tests.factories import make_patient, make_procedure, make_user
from tests.outcomes.test_report_files import word_fits

TODAY = datetime.date(2026, 6, 1)
# Anything that names one of the tests, in any spelling seen in reports (Welch's t-test,
# paired t-test, Fisher exact, chi-square, χ², Mann–Whitney U): each must be a constant.
TEST_NAME_LIKE = re.compile(
    r"(?i)(paired t[- ]?test|welch(?:'s)?(?: t[- ]?test)?|fisher(?:'s)?(?: exact)?(?: test)?"
    r"|chi[- ]squared? test|pearson's chi[- ]squared?|χ² test|mann[-–]whitney(?: u)?(?: test)?"
    r"|wilcoxon[a-z ]*test|log[- ]rank(?: test)?)"
)


@pytest.fixture(scope="module")
def demo_report(django_db_setup, django_db_blocker):
    """About 200 demo patients with their answers, plus three whose only procedure has an
    osteoporotic and an unknown level (left out) and one with a metastasis and an unknown
    level (pathologic: compared all the same); and their report as a registry manager sees
    it. Built once for the module (a minute or more) inside a transaction rolled back
    afterwards; each test runs in a savepoint within it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            create_demo_cohort(patients=200, today=TODAY)
            followups_ensure()
            create_demo_responses(today=TODAY)
            site = Site.objects.get(code="AAR")
            for i in range(3):
                patient = make_patient(
                    site, registry_id=f"AAR-U{i:04d}", date_of_birth=datetime.date(1940, 1, 1 + i)
                )
                make_procedure(patient, "osteoporotic", "unknown", date=datetime.date(2025, 2, 1))
            pathologic = make_patient(site, registry_id="AAR-M0001", primary_tumour="breast")
            make_procedure(pathologic, "metastasis", "unknown", date=datetime.date(2025, 2, 1))
            manager = make_user("Registry manager", username="demo.report.manager")
            yield cohort_report(user=manager, filters=ReportFilter(as_of=TODAY))
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def demo(demo_report, db):
    """The module's report, a copy per test (no test sees another's changes to it)."""
    return copy.deepcopy(demo_report)


def cells(report, table_id: str) -> dict[str, list]:
    (table,) = [t for t in report["tables"] if t["id"] == table_id]
    return {str(row[0]).strip(): row[1:] for row in table["rows"]}


def test_unknown_etiology_is_in_no_column_and_counted_in_every_footnote(demo):
    index = Patient.objects.filter(index_procedure__isnull=False)
    by_cohort = {c: index.filter(index_cohort=c).count() for c in ("pathologic", "osteoporotic")}
    assert index.filter(index_cohort="unknown").count() == 3
    assert index.filter(index_cohort="other").count() == 0  # so no "other" column
    patients = cells(demo, "table_1")["Patients, n"]
    # Pathologic (with the metastasis + unknown patient), osteoporotic, overall: the three
    # unknown ones are in none of them, not even Overall.
    assert patients[:3] == [
        by_cohort["pathologic"],
        by_cohort["osteoporotic"],
        by_cohort["pathologic"] + by_cohort["osteoporotic"],
    ]
    assert patients[2] == index.count() - 3
    for table in demo["tables"]:
        notes = [n for n in table["footnotes"] if n.startswith("Left out for unknown etiology")]
        assert notes == [
            "Left out for unknown etiology: 3 patients whose index procedure has a level of "
            "unknown etiology and none malignant (design §7); in no column."
        ], table["id"]


def test_every_test_name_has_one_spelling_and_the_word_tables_fit(demo):
    tidy = list(csv.DictReader(io.StringIO(report_tidy_csv(demo))))
    named = {m.group(1) for m in (re.fullmatch(r"p \((.+)\)", r["statistic"]) for r in tidy) if m}
    # The demo-like cohort uses every test of the report, each under its constant.
    assert named == set(TEST_NAMES)
    formatted = list(csv.DictReader(io.StringIO(report_csv(demo))))
    in_test_columns = {r["value"] for r in formatted if r["column"] == "Test"}
    assert in_test_columns and in_test_columns <= set(TEST_NAMES)
    # Whatever names a test anywhere (tidy statistics, cells, titles, footnotes) is spelled
    # as its constant: no "Welch's t-test", "paired t-test" or "chi-square" beside them.
    texts = [r["statistic"] for r in tidy] + [r["row"] for r in tidy]
    texts += [r["value"] for r in formatted]
    for table in demo["tables"]:
        texts += [table["title"], *table["footnotes"]]
    spellings = {m.group(1) for text in texts for m in TEST_NAME_LIKE.finditer(str(text))}
    assert spellings and spellings <= set(TEST_NAMES), spellings - set(TEST_NAMES)
    assert word_fits(report_docx(demo)) == []
    assert word_fits(report_docx(demo, paper="letter")) == []
