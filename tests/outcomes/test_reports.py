"""The cohort report on cohorts built to known numbers, checked against SciPy directly."""

import csv
import datetime
import io
import json
import re

import docx
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from scipy import stats

from outcomes.reports import statistics as st
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
    return found


def rows(report, key):
    """Row label (stripped) → formatted cells."""
    return {row[0].strip(): row[1:] for row in table(report, key)["rows"]}


def numbers(report, key):
    """(row, column, statistic) → value, from the tidy numbers."""
    return {
        (n["row"].strip(), n["column"], n["statistic"]): n["value"]
        for n in table(report, key)["numbers"]
    }


def test_table_1_counts_on_a_cohort_built_to_known_numbers(cohort, manager):
    report = cohort_report(user=manager, filters=FILTER)
    found = rows(report, "table_1")
    # Columns: pathologic, osteoporotic, overall (pathologic + osteoporotic), p, test. The
    # "other" cohort has nobody: no column.
    assert table(report, "table_1")["columns"][1:4] == ["Pathologic", "Osteoporotic", "Overall"]
    assert found["Patients, n"][:3] == [6, 10, 16]
    assert found["Male, n (%)"][:3] == ["6 (100.0%)", "3 (30.0%)", "9 (56.2%)"]
    assert found["Breast"][:2] == ["6 (100.0%)", ""]
    assert found["Single treated level, n (%)"][:2] == ["6 (100.0%)", "0 (0.0%)"]
    assert found["Treated vertebrae, n"][:3] == [6, 20, 26]
    assert found["Cement leakage per vertebra, n/N (%)"][1] == "3/20 (15.0%)"
    assert found["Cement leakage per patient, n/N (%)"][1] == "2/10 (20.0%)"
    assert found["Thoracic"][1] == "10/20 (50.0%)"
    ages = [74 + i for i in range(10)]  # born 1 March 1950 − i, operated 6–15 January 2025
    assert found["Age at procedure, years, mean ± SD (range)"][1] == (
        f"{stats.describe(ages).mean:.1f} ± {stats.tstd(ages):.1f} (74–83)"
    )
    # The unrelated complication is not counted.
    assert found["Complications, patients n (%)"][:2] == ["1 (16.7%)", "1 (10.0%)"]
    assert found["Complications, records n"][:2] == [1, 2]
    # Symptoms are unknown on every complication made without them.
    assert found["Complications with symptoms not recorded, records n"][:2] == [1, 2]
    fisher = stats.fisher_exact([[6, 0], [3, 7]]).pvalue
    assert found["Male, n (%)"][3:] == [f"{fisher:.3f}", "Fisher's exact test"]


def test_deaths_censor_survival_as_kaplan_meier(cohort, manager):
    found = rows(cohort_report(user=manager, filters=FILTER), "table_1")
    # Pathologic: deaths at days 50 and 200; four alive, followed 511 days.
    assert found["Alive at 3 months (day 91), n/N (%)"][0] == "5/6 (83.3%)"
    assert found["Alive at 1 year (day 365), n/N (%)"][0] == "4/6 (66.7%)"
    expected = stats.ecdf(stats.CensoredData(uncensored=[50, 200], right=[511] * 4)).sf
    assert found["Survival at 1 year, Kaplan–Meier (%)"][0] == f"{100 * expected.evaluate(365):.1f}"


def test_a_death_after_the_cut_off_is_not_yet_known(cohort, manager):
    early = ReportFilter(as_of=INDEX + datetime.timedelta(days=100))
    found = rows(cohort_report(user=manager, filters=early), "table_1")
    # At day 100 the patient who dies on day 200 is alive and censored.
    assert found["Alive at 3 months (day 91), n/N (%)"][0] == "5/6 (83.3%)"
    assert found["Alive at 1 year (day 365), n/N (%)"][0] == "0/1"  # N < min n: no %
    assert found["Survival at 1 year, Kaplan–Meier (%)"][0] == "not yet reached"


def test_paired_analysis_uses_only_patients_with_both_values(cohort, manager):
    report = cohort_report(user=manager, filters=FILTER)
    found = rows(report, "table_2")
    before = [b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if b and a]
    after = [a for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if b and a]
    n, base, later, change, t, p = found["Pain VAS (0–100), Osteoporotic"][:6]
    assert n == 8
    assert base == f"{stats.describe(before).mean:.1f} ± {stats.tstd(before):.1f}"
    assert later == f"{stats.describe(after).mean:.1f} ± {stats.tstd(after):.1f}"
    expected = stats.ttest_rel(before, after)
    assert t == f"{expected.statistic:.2f}"
    assert p == ("<0.001" if expected.pvalue < 0.001 else f"{expected.pvalue:.3f}")
    assert change == f"{sum(after) / 8 - sum(before) / 8:+.1f}".replace("-", "−")
    # Four pathologic pairs: fewer than REPORT_MIN_N (5), the count but no statistics.
    assert found["Pain VAS (0–100), Pathologic"][:6] == [4, *["n too small"] * 5]
    assert found["Pain VAS (0–100), Overall"][6] == 0  # nobody at 12 months


def test_between_cohort_change_is_welch_with_its_ci(cohort, manager, settings):
    settings.REPORT_MIN_N = 2
    report = cohort_report(user=manager, filters=FILTER)
    got = numbers(report, "changes")
    path = [a - b for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None]
    osteo = [a - b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b]
    expected = stats.ttest_ind(path, osteo, equal_var=False)
    ci = expected.confidence_interval(0.95)
    row = "Pain VAS (0–100), 3 months"
    assert got[(row, "Difference (95% CI)", "difference")] == pytest.approx(
        sum(path) / len(path) - sum(osteo) / len(osteo), abs=1e-9
    )
    assert got[(row, "Difference (95% CI)", "ci_low")] == pytest.approx(ci.low, abs=1e-9)
    assert got[(row, "t", "t")] == pytest.approx(expected.statistic, abs=1e-9)
    assert got[(row, "p", "p (Welch t-test)")] == pytest.approx(expected.pvalue, abs=1e-9)


def test_table_3_compares_every_answer_at_each_timepoint(cohort, manager, settings):
    settings.REPORT_MIN_N = 2
    # A 12-month answer from a patient without a baseline one still counts (not paired).
    make_response(
        cohort[0][9], "month_12", odi=[2] * 10, answered_on=INDEX + datetime.timedelta(400)
    )
    report = cohort_report(user=manager, filters=FILTER)
    found = rows(report, "table_3")
    assert found["Patients answering, n"][2:4] == [9, 1]  # osteoporotic baseline, 12 months
    assert found["2: The pain is moderate at the moment"][3] == "1"  # one answer: no %
    assert found["Chi-squared"][2] == "n too small"  # one 12-month answer < min n 2


def test_responders_are_fisher_tested_and_the_halving_leaves_out_baseline_0(
    cohort, manager, settings
):
    settings.REPORT_MIN_N = 2
    report = cohort_report(user=manager, filters=FILTER)
    found = rows(report, "responders")
    # Every pair improved by ≥ 15: 4/4 pathologic, 8/8 osteoporotic.
    assert found["Pain VAS (0–100): reduction ≥ 15.0, 3 months"][:2] == [
        "4/4 (100.0%)",
        "8/8 (100.0%)",
    ]
    halved = sum(2 * (b - a) >= b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b)
    good = found["Pain VAS: reduction ≥ 50%, 3 months"]
    assert good[1] == f"{halved}/8 ({100 * halved / 8:.1f}%)"
    path_halved = sum(
        2 * (b - a) >= b for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None
    )
    expected = stats.fisher_exact([[path_halved, 4 - path_halved], [halved, 8 - halved]]).pvalue
    assert good[3:] == [f"{expected:.3f}", "Fisher's exact test"]


def test_complications_by_cirse_grade(cohort, manager):
    found = rows(cohort_report(user=manager, filters=FILTER), "table_1")
    assert found["CIRSE grade 3, patients (worst grade) n (%)"][:2] == ["0 (0.0%)", "1 (10.0%)"]
    # Patient 4's worst is grade 3, but the grade-1 record still counts as a record.
    assert found["CIRSE grade 1, patients (worst grade) n (%)"][:2] == ["0 (0.0%)", "0 (0.0%)"]
    assert found["CIRSE grade 1, records n"][:2] == [0, 1]
    assert found["CIRSE grade 2, patients (worst grade) n (%)"][:2] == ["1 (16.7%)", "0 (0.0%)"]


def test_symptomatic_complications_and_leakage_per_vertebra(cohort, manager):
    osteo, _path = cohort
    leaking = osteo[0].levels.get(level=TreatedLevel.Level.T12)
    make_complication(osteo[0], type="symptomatic_leakage", treated_level=leaking, symptomatic=True)
    make_complication(osteo[1], symptomatic=False)
    found = rows(cohort_report(user=manager, filters=FILTER), "table_1")
    assert found["Symptomatic cement leakage per vertebra, n/N (%)"][1] == "1/20 (5.0%)"
    assert found["Symptomatic complications, records n"][1] == 1
    assert found["Symptomatic complications, patients n (%)"][1] == "1 (10.0%)"
    assert found["Complications with symptoms not recorded, records n"][1] == 2


def test_follow_up_completeness_counts_deaths_before_the_timepoint(cohort, manager):
    found = rows(cohort_report(user=manager, filters=FILTER), "completeness")
    # 3 months: pathologic 6, one died on day 50 → 5 eligible, 4 answered, the fifth (no
    # answer) missed since the window closed long ago.
    assert found["3 months: died before, n"][:3] == [1, 0, 1]
    assert found["3 months: eligible, n"][:3] == [5, 10, 15]
    assert found["3 months: completed, n/N (%)"][:3] == [
        "4/5 (80.0%)",
        "9/10 (90.0%)",
        "13/15 (86.7%)",
    ]
    assert found["3 months: missed, n"][:3] == [1, 1, 2]
    # 12 months (day 365): the day-200 death is before it; nobody answered; the window closed
    # (day 450 < 511 days of follow-up) for every patient.
    assert found["12 months: died before, n"][:3] == [2, 0, 2]
    assert found["12 months: missed, n"][:3] == [4, 10, 14]
    assert found["12 months: still open, n"][:3] == [0, 0, 0]


def test_report_is_scoped_to_the_users_sites_and_filters(cohort, staff_b, staff_a, manager):
    other = make_patient(make_site("CCC"), consent_date=INDEX)
    make_procedure(other, "osteoporotic", date=INDEX)

    def count(user, f=FILTER):
        return rows(cohort_report(user=user, filters=f), "table_1")["Patients, n"][2]

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
        found = rows(
            cohort_report(user=manager, filters=ReportFilter(as_of=AS_OF, **dates)), "table_1"
        )
        return found["Patients, n"][:3]  # pathologic, osteoporotic, overall

    assert counts(date_from=mar, date_to=datetime.date(2025, 4, 30)) == [0, 1, 1]
    assert counts(date_to=datetime.date(2025, 4, 30)) == [0, 2, 2]
    assert counts(date_from=mar) == [1, 1, 2]


def test_the_other_cohort_shows_only_when_it_has_patients(cohort, manager):
    assert "Other" not in table(cohort_report(user=manager, filters=FILTER), "table_1")["columns"]
    patient = make_patient(cohort[0][0].patient.site, consent_date=INDEX)
    make_procedure(patient, "haemangioma", date=INDEX)
    report = cohort_report(user=manager, filters=FILTER)
    assert table(report, "table_1")["columns"][1:5] == [
        "Pathologic", "Osteoporotic", "Overall", "Other",
    ]  # fmt: skip
    assert rows(report, "table_1")["Patients, n"][:4] == [6, 10, 16, 1]  # Overall leaves it out


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
    for chart in ("eq5d_index", "odi_score", "vas_pain", "survival"):
        assert (
            f'<figure id="{chart}-chart"><img src="/admin/reports/cohorts/charts/{chart}.svg?'
            in html
        )
    survival = client_a.get(
        reverse("cohort_report_chart", args=["survival"]), {"as_of": AS_OF.isoformat()}
    )
    assert "Pathologic (n=6)" in survival.content.decode()  # the survival curve's legend
    assert "3/20 (15.0%)" in html
    assert "Paired t-test" in html or "paired t-test" in html  # footnotes

    api = client_a.get("/api/v1/reports/cohorts", {"as_of": AS_OF.isoformat()}).json()
    downloaded = client_a.get(url, {"as_of": AS_OF.isoformat(), "format": "csv"})
    assert downloaded["Content-Disposition"] == (
        'attachment; filename="cohort-report_AAA_start_to_end_cutoff-2026-06-01.csv"'
    )
    lines = list(csv.reader(io.StringIO(downloaded.content.decode())))
    assert lines[0] == ["table", "row", "column", "value"]

    def shown(text: str) -> str:  # a formula-looking cell gets an apostrophe; numbers do not
        formula = text[:1] in ("=", "+", "-", "@") and not re.fullmatch(r"-?[0-9.]+", text)
        return "'" + text if formula else text

    expected = [
        [t["id"], str(row[0]).strip(), column, shown(str(value))]
        for t in api["tables"]
        for row in t["rows"]
        for column, value in zip(t["columns"][1:], row[1:], strict=True)
        if value != ""
    ]
    assert lines[1:] == expected
    markdown = client_a.get(url, {"as_of": AS_OF.isoformat(), "format": "md"}).content.decode()
    for t in api["tables"]:
        assert f"## {t['title']}" in markdown
        for row in t["rows"]:
            assert "| " + " | ".join(str(v) for v in row) + " |" in markdown


def test_tidy_csv_holds_one_number_per_line_that_parses(cohort, client_a):
    query = {"as_of": AS_OF.isoformat(), "site": "AAA", "date_from": "2025-01-01"}
    response = client_a.get(reverse("cohort_report"), {**query, "format": "tidy"})
    assert response["Content-Disposition"] == (
        'attachment; filename="cohort-report_AAA_2025-01-01_to_end_cutoff-2026-06-01.tidy.csv"'
    )
    lines = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert list(lines[0]) == ["table", "row", "column", "statistic", "value", "n"]
    for line in lines:
        if line["value"]:
            float(line["value"])  # every value is a number
        if line["n"]:
            int(line["n"])
    by_key = {(x["table"], x["row"], x["column"], x["statistic"]): x for x in lines}
    # a row under a heading carries it
    regions = {x["row"] for x in lines if x["row"].startswith("Region per treated vertebra")}
    assert "Region per treated vertebra, n/N (%): Lumbar" in regions or any(
        r.endswith(": Lumbar") for r in regions
    ), sorted(regions)[:5]
    assert not any(x["row"] in ("Lumbar", "Thoracic") for x in lines)
    leak = by_key[("table_1", "Cement leakage per vertebra, n/N (%)", "Osteoporotic", "percent")]
    assert (float(leak["value"]), int(leak["n"])) == (15.0, 20)
    p = by_key[("table_1", "Male, n (%)", "p", "p (Fisher's exact test)")]
    assert float(p["value"]) == pytest.approx(stats.fisher_exact([[6, 0], [3, 7]]).pvalue)


def test_word_document_has_the_tables_and_charts(cohort, client_a, tmp_path, manager):
    response = client_a.get(
        reverse("cohort_report"), {"as_of": AS_OF.isoformat(), "format": "docx"}
    )
    assert response["Content-Disposition"].endswith('_cutoff-2026-06-01.docx"')
    path = tmp_path / "report.docx"
    call_command(
        "cohort_report", "--format", "docx", "--as-of", AS_OF.isoformat(), "--output", str(path)
    )
    for body in (response.content, path.read_bytes()):
        document = docx.Document(io.BytesIO(body))
        headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
        assert "Table 2. Outcomes at baseline and follow-up (patients with both values)" in headings
        tables = document.tables
        assert len(tables) == 7
        assert tables[0].cell(0, 1).text == "Pathologic"
        assert any(c.text == "3/20 (15.0%)" for row in tables[0].rows for c in row.cells)
        assert tables[1].cell(0, 1).text == "3 months"  # the wide layout's header group
        assert len(document.inline_shapes) == 4  # three trajectories and the survival curve
        section = document.sections[0]
        assert (round(section.page_width.mm), round(section.page_height.mm)) == (297, 210)
        for table in tables:
            assert "w:tblHeader" in table.rows[0]._tr.xml  # repeated on each page
            assert all("w:cantSplit" in row._tr.xml for row in table.rows)
        titles = [p for p in document.paragraphs if p._p.xpath(".//w:drawing")]
        for picture in titles:
            before = picture._p.getprevious()
            assert before is not None and "w:keepNext" in before.xml  # title stays with it
    letter = tmp_path / "letter.docx"
    call_command(
        "cohort_report", "--format", "docx", "--paper", "letter", "--as-of",
        AS_OF.isoformat(), "--output", str(letter),
    )  # fmt: skip
    section = docx.Document(str(letter)).sections[0]
    assert (round(section.page_width.inches, 1), round(section.page_height.inches, 1)) == (
        11.0,
        8.5,
    )


def test_each_count_links_to_the_patients_it_counts_within_the_users_sites(
    cohort, client_a, staff_b, client
):
    page = client_a.get(reverse("cohort_report"), {"as_of": AS_OF.isoformat()})
    report = page.context["tables"][0]
    (leak_row,) = [
        r for r in report["display_rows"] if r[0]["text"].startswith("Cement leakage per patient")
    ]
    href = leak_row[2]["href"]  # osteoporotic
    listed = client_a.get(href)
    assert listed.status_code == 200
    osteo, _path = cohort
    expected = sorted(p.patient.registry_id for p in osteo[:2])  # the two leaking patients
    assert [p.registry_id for p in listed.context["patients"]] == expected
    assert listed.context["count"] == 2
    # Another site's user sees none of them.
    client.force_login(staff_b)
    assert list(client.get(href).context["patients"]) == []
    assert client_a.get(reverse("cohort_report_patients"), {"cell": "nope"}).status_code == 404


def test_page_refuses_a_reversed_date_range_with_a_message(cohort, client_a):
    page = client_a.get(
        reverse("cohort_report"), {"date_from": "2026-01-01", "date_to": "2025-01-01"}
    )
    assert page.status_code == 200
    assert "The end date is before the start date." in page.content.decode()
    assert page.context["report"] is None


def test_api_parses_the_filter_with_the_same_parser(cohort, client_a):
    bad = client_a.get(
        "/api/v1/reports/cohorts", {"date_from": "2026-01-01", "date_to": "2025-01-01"}
    )
    assert bad.status_code == 400
    assert bad.json() == {"date_to": ["The end date is before the start date."]}
    other_site = client_a.get("/api/v1/reports/cohorts", {"site": "BBB"})
    assert other_site.status_code == 404  # as another site's object everywhere in the API
    assert sorted(other_site.json()) == ["detail", "site"]
    both = client_a.get("/api/v1/reports/cohorts", {"site": "AAA", "as_of": AS_OF.isoformat()})
    assert both.json()["filters"]["sites"] == ["AAA"]


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
    with pytest.raises(CommandError, match="date_to"):
        call_command("cohort_report", "--from", "2026-01-01", "--to", "2025-01-01")


def _in_english(cell):
    """A Danish cell's text with its words back in English (its numbers untouched)."""
    if not isinstance(cell, str):
        return cell
    cell = {"n for lille": "n too small", "ikke nået endnu": "not yet reached"}.get(cell, cell)
    return cell.replace(" til ", " to ")


# Labels that read the same in Danish: row numbers, statistics and the "Test" column.
SAME_IN_DANISH = {"", "n", "t", "p", "Test", "  1", "  2", "  3", "  ≥ 4"}


def test_every_label_of_the_report_has_its_danish_translation_and_english_stays_the_default(
    cohort, staff_a
):
    """The adversary: a new row, column or title added as a plain English string, which the
    Danish page would show in English among Danish labels."""
    english = cohort_report(user=staff_a, filters=FILTER)
    assert cohort_report(user=staff_a, filters=FILTER, language="en") == english
    danish = cohort_report(user=staff_a, filters=FILTER, language="da")
    assert danish["columns"] == ["Patologisk", "Osteoporotisk", "Samlet"]
    assert [t["id"] for t in danish["tables"]] == [t["id"] for t in english["tables"]]
    for en, da in zip(english["tables"], danish["tables"], strict=True):
        assert da["title"] != en["title"], en["title"]
        header_en, header_da = en.get("header", {}), da.get("header", {})
        pairs = [
            *zip(en["columns"], da["columns"], strict=True),
            *zip(header_en.get("labels", []), header_da.get("labels", []), strict=True),
            *((e[0], d[0]) for e, d in zip(header_en.get("groups", []),
                                           header_da.get("groups", []), strict=True)),
            *((e[0], d[0]) for e, d in zip(en["rows"], da["rows"], strict=True)),
        ]  # fmt: skip
        same = {e for e, d in pairs if e == d}
        assert same <= SAME_IN_DANISH, (en["id"], same)
        # The same numbers under the translated labels, the cells' words translated.
        assert [[_in_english(c) for c in row[1:]] for row in da["rows"]] == [
            row[1:] for row in en["rows"]
        ]
        assert da["links"] == en["links"]
    table_1 = {row[0]: row[1:] for row in danish["tables"][0]["rows"]}
    assert table_1["Patienter, n"][:3] == [6, 10, 16]
    assert "Male, n (%)" not in table_1 and "Mænd, n (%)" in table_1


def test_danish_report_writes_its_notes_filter_and_cell_texts_in_danish(cohort, staff_a, settings):
    """The adversary: footnotes, the filter's description or a cell's words ("n too small",
    "not yet reached", "to" in a range) built once in English and shown on the Danish page;
    or a test's name translated, so that one test had two spellings."""
    settings.REPORT_MIN_N = 2
    english = cohort_report(user=staff_a, filters=FILTER)
    danish = cohort_report(user=staff_a, filters=FILTER, language="da")
    assert english["filter_text"] == (
        "Sites: all in scope; index procedures any date to any date; data cut-off 2026-06-01."
    )
    assert danish["filter_text"] == (
        "Afdelinger: alle, du har adgang til; indeksindgreb fra enhver dato til enhver dato; "
        "dataskæringsdato 2026-06-01."
    )
    chosen = ReportFilter.of(sites=["AAA"], date_from=INDEX, as_of=AS_OF)
    assert cohort_report(user=staff_a, filters=chosen, language="da")["filter_text"] == (
        "Afdelinger: AAA; indeksindgreb fra 2025-01-06 til enhver dato; "
        "dataskæringsdato 2026-06-01."
    )
    english_notes = {note for t in english["tables"] for note in t["footnotes"]}
    for en, da in zip(english["tables"], danish["tables"], strict=True):
        assert len(da["footnotes"]) == len(en["footnotes"]), en["id"]
        assert not set(da["footnotes"]) & english_notes, en["id"]
        assert da["footnotes"][0] == (
            f"{danish['filter_text']} Hver patient tælles én gang, med indeksindgrebet (det "
            "første). Celler med færre end 2 patienter viser kun antallet (n for lille)."
        )
        assert "Udeladt på grund af ukendt ætiologi: 0 patienter" in da["footnotes"][2]
    table_1 = table(danish, "table_1")["footnotes"]
    # The test names stay their constants inside the Danish sentence.
    assert (
        f"p: patologisk mod osteoporotisk; {st.WELCH} for alder, {st.FISHER} (tosidet) for "
        f"2 × 2-tabeller, {st.CHI_SQUARED} for større tabeller"
    ) in table_1[3]
    assert "3 måneder = dag 91, 1 år = dag 365." in table_1[-1]
    responders = table(danish, "responders")["footnotes"]
    assert "en EQ-5D-ændring på +0,120 når 0,12." in responders[3]
    assert responders[-1] == f"p: {st.FISHER} (tosidet), patologisk mod osteoporotisk."

    # A difference with its confidence interval: "to" is "til", the numbers the same.
    path = [a - b for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None]
    osteo = [a - b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b]
    result = stats.ttest_ind(path, osteo, equal_var=False)
    ci = result.confidence_interval(0.95)
    signed = lambda v: f"{v:+.1f}".replace("-", "−")  # noqa: E731
    difference = signed(sum(path) / len(path) - sum(osteo) / len(osteo))
    row = "Pain VAS (0–100), 3 months"
    assert rows(english, "changes")[row][4] == (
        f"{difference} ({signed(ci.low)} to {signed(ci.high)})"
    )
    assert rows(danish, "changes")["Pain VAS (0–100), 3 måneder"][4] == (
        f"{difference} ({signed(ci.low)} til {signed(ci.high)})"
    )
    # Too few patients: "n for lille"; a day beyond the follow-up: "ikke nået endnu".
    settings.REPORT_MIN_N = 5
    assert rows(cohort_report(user=staff_a, filters=FILTER, language="da"), "table_2")[
        "Pain VAS (0–100), Patologisk"
    ][:6] == [4, *["n for lille"] * 5]
    early = ReportFilter(as_of=INDEX + datetime.timedelta(days=100))
    found = rows(cohort_report(user=staff_a, filters=early, language="da"), "table_1")
    assert found["Overlevelse efter 1 år, Kaplan–Meier (%)"][0] == "ikke nået endnu"
    assert (
        rows(cohort_report(user=staff_a, filters=early), "table_1")[
            "Survival at 1 year, Kaplan–Meier (%)"
        ][0]
        == "not yet reached"
    )
