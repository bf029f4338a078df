"""The cohort report on cohorts built to known numbers, checked against SciPy directly."""

import csv
import datetime
import io
import json

import pytest
from django.core.management import call_command
from django.urls import reverse
from scipy import stats

from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp
from outcomes.reports.dataset import ReportFilter
from outcomes.reports.tables import cohort_report
from registry.models import TreatedLevel
from tests.factories import (
    make_complication,
    make_level,
    make_patient,
    make_procedure,
    make_response,
    make_site,
)

INDEX = datetime.date(2025, 1, 6)
AS_OF = datetime.date(2026, 6, 1)
FILTER = ReportFilter(as_of=AS_OF)
LEAK = {"cement_leakage": True, "leakage_sites": ["paravertebral"], "leakage_detected_by": "ct"}
# Pain VAS of the osteoporotic patients: baseline for 0-8, 3 months for 1-9 → 8 pairs.
OSTEO_BASE = [80, 75, 90, 70, 85, 60, 95, 72, 88, None]
OSTEO_3M = [None, 30, 45, 40, 50, 20, 61, 35, 40, 25]
# Pathologic: baseline for all six, 3 months for 2-5 → 4 pairs.
PATH_BASE = [82, 77, 91, 68, 79, 85]
PATH_3M = [None, None, 60, 50, 55, 70]


@pytest.fixture
def cohort(site_a):
    """10 osteoporotic patients with 2 levels each (20 vertebrae, 3 leaking in 2 patients),
    6 pathologic with 1 level each, 2 of whom died (days 50 and 200)."""
    osteo, path = [], []
    for i in range(10):
        patient = make_patient(
            site_a,
            sex="male" if i < 3 else "female",
            date_of_birth=datetime.date(1950 - i, 3, 1),
            consent_date=INDEX,
        )
        procedure = make_procedure(patient, date=INDEX + datetime.timedelta(days=i))
        leaks = {0: (True, True), 1: (True, False)}.get(i, (False, False))
        for level, leak in zip((TreatedLevel.Level.T12, TreatedLevel.Level.L1), leaks, strict=True):
            make_level(procedure, level=level, **(LEAK if leak else {}))
        osteo.append(procedure)
    for i in range(6):
        death = {0: 50, 1: 200}.get(i)
        patient = make_patient(
            site_a,
            sex="male",
            date_of_birth=datetime.date(1960, 1, 1),
            consent_date=INDEX,
            primary_tumour="breast",
            date_of_death=INDEX + datetime.timedelta(days=death) if death else None,
            cause_of_death="disease_progression" if death else "",
        )
        procedure = make_procedure(patient, date=INDEX)
        make_level(procedure, level=TreatedLevel.Level.T8, etiology="metastasis")
        path.append(procedure)
    make_complication(osteo[4], cirse_grade=3)
    make_complication(osteo[4], cirse_grade=1)
    make_complication(path[2], cirse_grade=2)
    make_complication(path[3], cirse_grade=2, relation="unrelated")
    for procedures, base, month_3 in ((osteo, OSTEO_BASE, OSTEO_3M), (path, PATH_BASE, PATH_3M)):
        for procedure, before, after in zip(procedures, base, month_3, strict=True):
            if before is not None:
                make_response(procedure, "baseline", vas_pain=before, odi=[4] * 10)
            if after is not None:
                make_response(procedure, "month_3", vas_pain=after, odi=[1] * 10)
    return osteo, path


def table(report, key):
    (found,) = [t for t in report["tables"] if t["id"] == key]
    return {row[0]: row[1:] for row in found["rows"]} if key == "table_1" else found


def test_table_1_counts_on_a_cohort_built_to_known_numbers(cohort, manager):
    report = cohort_report(user=manager, filters=FILTER)
    rows = table(report, "table_1")
    # Columns: pathologic, osteoporotic, other, overall.
    assert rows["Patients, n"] == [6, 10, 0, 16]
    assert rows["Male, n (%)"][:2] == ["6 (100.0%)", "3 (30.0%)"]
    assert rows["Primary malignancy, n (%)"][0] == "6 (100.0%)"
    assert rows["Single treated level, n (%)"][:2] == ["6 (100.0%)", "0 (0.0%)"]
    assert rows["Treated vertebrae, n"] == [6, 20, 0, 26]
    assert rows["Cement leakage per vertebra, n/N (%)"][1] == "3/20 (15.0%)"
    assert rows["Cement leakage per patient, n/N (%)"][1] == "2/10 (20.0%)"
    assert rows["Thoracic vertebrae, n (%)"][1] == "10 (50.0%)"
    assert rows["Age, mean (range)"][1] == "78.5 (74–83)"
    # The unrelated complication is not counted.
    assert rows["Complications (CIRSE any grade), patients n (%)"][:2] == [
        "1 (16.7%)",
        "1 (10.0%)",
    ]


def test_deaths_censor_survival_as_kaplan_meier(cohort, manager):
    rows = table(cohort_report(user=manager, filters=FILTER), "table_1")
    # Pathologic: deaths at days 50 and 200; four alive, followed 511 days.
    assert rows["Alive at 3 months, n/N (%)"][0] == "5/6 (83.3%)"
    assert rows["Alive at 1 year, n/N (%)"][0] == "4/6 (66.7%)"
    expected = stats.ecdf(stats.CensoredData(uncensored=[50, 200], right=[511] * 4)).sf
    assert rows["Survival at 1 year, Kaplan–Meier (%)"][0] == f"{100 * expected.evaluate(365):.1f}"


def test_a_death_before_the_report_window_censors_only_that_patient(cohort, manager):
    early = ReportFilter(as_of=INDEX + datetime.timedelta(days=100))
    rows = table(cohort_report(user=manager, filters=early), "table_1")
    # At day 100 the patient who dies on day 200 is alive and censored.
    assert rows["Alive at 3 months, n/N (%)"][0] == "5/6 (83.3%)"
    assert rows["Alive at 1 year, n/N (%)"][0] == "0/1 (0.0%)"
    assert rows["Survival at 1 year, Kaplan–Meier (%)"][0] == "not yet reached"


def test_paired_analysis_uses_only_patients_with_both_values(cohort, manager):
    report = cohort_report(user=manager, filters=FILTER)
    rows = [r for r in table(report, "table_2")["rows"] if r[0].startswith("Pain VAS")]
    by_cohort = {(r[1], r[2]): r[3:] for r in rows}
    before = [b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if b and a]
    after = [a for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if b and a]
    n, base, later, p = by_cohort[("3 months", "Osteoporotic")]
    assert n == 8
    assert base == f"{stats.describe(before).mean:.1f} ± {stats.tstd(before):.1f}"
    assert later == f"{stats.describe(after).mean:.1f} ± {stats.tstd(after):.1f}"
    expected_p = stats.ttest_rel(after, before).pvalue
    assert p == ("<0.001" if expected_p < 0.001 else f"{expected_p:.3f}")
    # Four pathologic pairs: fewer than REPORT_MIN_N (5).
    assert by_cohort[("3 months", "Pathologic")] == [4, "n too small", "n too small", "n too small"]
    assert by_cohort[("12 months", "Overall")][0] == 0


def test_between_cohort_change_is_welch_with_its_ci(cohort, manager, settings):
    settings.REPORT_MIN_N = 2
    report = cohort_report(user=manager, filters=FILTER)
    (row,) = [
        r
        for r in table(report, "changes")["rows"]
        if r[0].startswith("Pain VAS") and r[1] == "3 months"
    ]
    path = [a - b for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None]
    osteo = [a - b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b]
    expected = stats.ttest_ind(path, osteo, equal_var=False)
    ci = expected.confidence_interval(0.95)
    difference = sum(path) / len(path) - sum(osteo) / len(osteo)
    assert row[4] == f"{difference:.1f} ({ci.low:.1f} to {ci.high:.1f})"
    assert row[5] == f"{expected.pvalue:.3f}"


def test_table_3_and_responders_use_scipy_chi_squared(cohort, manager, settings):
    settings.REPORT_MIN_N = 2
    report = cohort_report(user=manager, filters=FILTER)
    responders = table(report, "responders")["rows"]
    (vas_mcid,) = [
        r for r in responders if r[0].startswith("Pain VAS (0–100)") and r[1] == "3 months"
    ]
    # Every pair improved by ≥ 15: 4/4 pathologic, 8/8 osteoporotic.
    assert vas_mcid[2:4] == ["4/4 (100.0%)", "8/8 (100.0%)"]
    (good,) = [r for r in responders if "50%" in r[0] and r[1] == "3 months"]
    halved = sum((b - a) / b >= 0.5 for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b)
    assert good[3] == f"{halved}/8 ({100 * halved / 8:.1f}%)"
    path_halved = sum(
        (b - a) / b >= 0.5 for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None
    )
    expected = stats.chi2_contingency([[path_halved, 4 - path_halved], [halved, 8 - halved]]).pvalue
    assert good[6] == f"{expected:.3f}"


def test_complications_by_worst_cirse_grade(cohort, manager):
    rows = table(cohort_report(user=manager, filters=FILTER), "complications")["rows"]
    grades = {r[0].split(" –")[0]: r[1:3] for r in rows}
    assert grades["CIRSE 3"] == ["0 (0.0%)", "1 (10.0%)"]
    assert grades["CIRSE 1"] == ["0 (0.0%)", "0 (0.0%)"]  # patient 4's worst is grade 3
    assert grades["CIRSE 2"] == ["1 (16.7%)", "0 (0.0%)"]


def test_follow_up_completeness_counts_deaths_before_the_timepoint(cohort, manager):
    followups_ensure()
    FollowUp.objects.filter(timepoint="month_12").update(state="missed")
    rows = table(cohort_report(user=manager, filters=FILTER), "completeness")["rows"]
    by_timepoint = {r[0]: r[1:] for r in rows}
    # 3 months: 16 patients, one died on day 50 → 15 eligible, 13 answered (9 + 4).
    assert by_timepoint["3 months"] == [15, "13 (86.7%)", 0, 2, 1, 0]
    assert by_timepoint["12 months"] == [14, "0 (0.0%)", 14, 0, 2, 0]


def test_report_is_scoped_to_the_users_sites_and_filters(cohort, staff_b, staff_a, manager):
    other = make_patient(make_site("CCC"), consent_date=INDEX)
    make_procedure(other, "osteoporotic", date=INDEX)
    count = lambda user, f=FILTER: table(cohort_report(user=user, filters=f), "table_1")[  # noqa: E731
        "Patients, n"
    ][3]
    assert count(manager) == 17
    assert count(staff_a) == 16
    assert count(staff_b) == 0
    assert count(manager, ReportFilter(sites=("CCC",), as_of=AS_OF)) == 1
    later = ReportFilter(date_from=INDEX + datetime.timedelta(days=5), as_of=AS_OF)
    assert count(manager) > count(manager, later) == 5


def test_date_range_applies_to_the_index_procedure_only(site_a, manager):
    def patient_with(*dates):
        patient = make_patient(site_a, consent_date=dates[0])
        for day in dates:
            make_procedure(patient, "metastasis" if day == dates[-1] else "osteoporotic", date=day)

    jan, mar, may = (datetime.date(2025, month, 1) for month in (1, 3, 5))
    patient_with(jan, may)  # index in January: outside a March-April range despite May
    patient_with(mar, may)  # index in March: inside, and counted once, as osteoporotic
    patient_with(may)  # index in May: outside

    def counts(**dates):
        rows = table(
            cohort_report(user=manager, filters=ReportFilter(as_of=AS_OF, **dates)), "table_1"
        )
        return rows["Patients, n"]  # pathologic, osteoporotic, other, overall

    assert counts(date_from=mar, date_to=datetime.date(2025, 4, 30)) == [0, 1, 0, 1]
    assert counts(date_to=datetime.date(2025, 4, 30)) == [0, 2, 0, 2]
    assert counts(date_from=mar) == [1, 1, 0, 2]


def test_a_constant_number_of_queries_whatever_the_cohort_size(
    cohort, manager, django_assert_num_queries
):
    cohort_report(user=manager, filters=FILTER)  # the user's role is looked up once
    with django_assert_num_queries(2):
        cohort_report(user=manager, filters=FILTER)
    for _ in range(5):
        patient = make_patient(cohort[0][0].patient.site, consent_date=INDEX)
        make_response(make_procedure(patient, "metastasis", date=INDEX), "baseline", vas_pain=50)
    with django_assert_num_queries(2):
        cohort_report(user=manager, filters=FILTER)


def test_admin_page_renders_tables_and_charts_and_downloads_match_the_json(cohort, client_a):
    url = reverse("cohort_report")
    page = client_a.get(url, {"as_of": AS_OF.isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    assert '<figure id="pain-chart"><svg' in html
    assert '<figure id="survival-chart"><svg' in html
    assert "Pathologic (n=6)" in html  # the survival curve's legend
    assert "3/20 (15.0%)" in html

    api = client_a.get("/api/v1/reports/cohorts", {"as_of": AS_OF.isoformat()}).json()
    downloaded = client_a.get(url, {"as_of": AS_OF.isoformat(), "format": "csv"})
    assert downloaded["Content-Disposition"].startswith("attachment")
    lines = list(csv.reader(io.StringIO(downloaded.content.decode())))
    assert lines[0] == ["table", "row", "column", "value"]
    expected = [
        [t["id"], str(row[0]), column, str(value)]
        for t in api["tables"]
        for row in t["rows"]
        for column, value in zip(t["columns"][1:], row[1:], strict=True)
    ]
    assert lines[1:] == expected
    markdown = client_a.get(url, {"as_of": AS_OF.isoformat(), "format": "md"}).content.decode()
    for t in api["tables"]:
        assert f"## {t['title']}" in markdown
        for row in t["rows"]:
            assert "| " + " | ".join(str(v) for v in row) + " |" in markdown


def test_page_refuses_a_reversed_date_range_with_a_message(cohort, client_a):
    page = client_a.get(
        reverse("cohort_report"), {"date_from": "2026-01-01", "date_to": "2025-01-01"}
    )
    assert page.status_code == 200
    assert "The end date is before the start date." in page.content.decode()
    assert page.context["report"] is None


def test_api_needs_a_login(client, cohort):
    assert client.get("/api/v1/reports/cohorts").status_code == 401


def test_command_line_gives_the_numbers_of_the_api(cohort, manager, client, capsys):
    client.force_login(manager)
    api = client.get("/api/v1/reports/cohorts", {"as_of": AS_OF.isoformat()}).json()
    call_command("cohort_report", "--format", "json", "--as-of", AS_OF.isoformat())
    assert json.loads(capsys.readouterr().out) == api
    call_command("cohort_report", "--format", "csv", "--as-of", AS_OF.isoformat())
    assert 'table_1,"Cement leakage per vertebra, n/N (%)",Osteoporotic,3/20 (15.0%)' in (
        capsys.readouterr().out
    )
