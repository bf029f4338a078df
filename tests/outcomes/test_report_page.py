# ruff: noqa: F401, F811 - the cohort fixture is shared with test_reports.py
"""The cohort report page as staff use it: charts drawn by their own requests (the page cost
9× the JSON when it drew them inline), a constant number of queries, patient lists that open
the record, download names that say whose patients they hold, the date entry of every other
date field, and numbers in the page's language while downloads stay English."""

import csv
import datetime
import io
import re

import docx
import pytest
from django.core.cache import cache
from django.urls import reverse
from scipy import stats

from outcomes.reports import statistics as st
from outcomes.reports import views as report_views
from outcomes.reports.statistics import TEST_NAMES
from tests.factories import make_level, make_patient, make_procedure, make_response, make_user
from tests.outcomes.test_reports import (
    AS_OF,
    INDEX,
    OSTEO_3M,
    OSTEO_BASE,
    PATH_3M,
    PATH_BASE,
    cohort,
    rows,
)

CHARTS = ("eq5d_index", "odi_score", "vas_pain", "survival")


def test_page_links_its_charts_and_each_chart_is_an_svg_of_the_same_report(
    cohort, client_a, monkeypatch
):
    page = client_a.get(reverse("cohort_report"), {"as_of": AS_OF.isoformat()})
    html = page.content.decode()
    assert "matplotlib" not in html  # nothing drawn while the page is built
    for key in CHARTS:
        src = f"{reverse('cohort_report_chart', args=[key])}?as_of={AS_OF.isoformat()}"
        assert f'<figure id="{key}-chart"><img src="{src}"' in html
    cache.clear()
    drawn = []
    draw = report_views.chart_svg
    monkeypatch.setattr(
        report_views, "chart_svg", lambda report, key: drawn.append(key) or draw(report, key)
    )
    survival = client_a.get(reverse("cohort_report_chart", args=["survival"]), {"as_of": AS_OF})
    assert survival["Content-Type"].startswith("image/svg+xml")
    body = survival.content.decode()
    assert body.startswith("<svg") and "Pathologic (n=6)" in body  # the legend of this cohort
    # Drawn once: the second request is served from the drawing kept for the same numbers.
    again = client_a.get(reverse("cohort_report_chart", args=["survival"]), {"as_of": AS_OF})
    assert again.content == survival.content
    assert drawn == ["survival"]


def test_a_chart_of_other_numbers_is_drawn_anew_not_taken_from_the_cache(cohort, client_a):
    url = reverse("cohort_report_chart", args=["survival"])
    before = client_a.get(url, {"as_of": AS_OF.isoformat()}).content.decode()
    patient = make_patient(cohort[1][0].patient.site, consent_date=AS_OF, sex="male")
    make_level(make_procedure(patient, date=AS_OF - datetime.timedelta(days=30)),
               etiology="metastasis")  # fmt: skip
    after = client_a.get(url, {"as_of": AS_OF.isoformat()}).content.decode()
    assert "Pathologic (n=6)" in before and "Pathologic (n=7)" in after


@pytest.mark.parametrize(
    "key, query", [("nonsense", {}), ("survival", {"date_from": "31-31-2025"})]
)
def test_a_chart_that_is_not_in_the_report_is_not_found(cohort, client_a, key, query):
    response = client_a.get(reverse("cohort_report_chart", args=[key]), query)
    assert response.status_code == 404


def test_the_page_makes_the_same_number_of_queries_whatever_the_cohort_size(
    cohort,
    client_a,
    django_assert_max_num_queries,
    django_assert_num_queries,
):
    """The page once built its charts and tables with repeated work; its queries now are the
    session, the user's roles and sites, the filter's site choices and the report's two."""
    url, query = reverse("cohort_report"), {"as_of": AS_OF.isoformat()}
    client_a.get(url, query)
    with django_assert_max_num_queries(12) as captured:
        client_a.get(url, query)
    first = len(captured.captured_queries)
    site = cohort[0][0].patient.site
    for _ in range(8):
        procedure = make_procedure(
            make_patient(site, consent_date=AS_OF), "osteoporotic", date=AS_OF
        )
        make_response(procedure, "baseline", vas_pain=40)
    with django_assert_num_queries(first):
        page = client_a.get(url, query)
    patients = rows(page.context["report"], "table_1")["Patients, n"]
    assert patients[:3] == [6, 18, 24]  # pathologic, osteoporotic, overall


def test_counted_patients_open_the_record_page_for_users_who_may_see_records(
    cohort,
    client_a,
    site_a,
):
    report = client_a.get(reverse("cohort_report"), {"as_of": AS_OF.isoformat()})
    cell = re.search(r'href="(/admin/reports/cohorts/patients/\?[^"]+)"', report.content.decode())
    listing = client_a.get(cell.group(1).replace("&amp;", "&"))
    html = listing.content.decode()
    patients = listing.context["patients"]
    assert patients
    for patient in patients:
        record = reverse("staff_record", args=[patient.registry_id])
        assert f'<a href="{record}">{patient.registry_id}</a>' in html
    assert not re.search(r"/admin/registry/patient/\d+/change/", html)

    no_records = make_user("Auditor", site_a)
    no_records.groups.clear()  # staff with no role: may open the report, not records
    client_a.force_login(no_records)
    html = client_a.get(cell.group(1).replace("&amp;", "&")).content.decode()
    assert patients[0].registry_id in html
    assert reverse("staff_record", args=[patients[0].registry_id]) not in html


def _filename(client, **query) -> str:
    response = client.get(reverse("cohort_report"), {"as_of": AS_OF.isoformat(), **query})
    return re.search(r'filename="([^"]+)"', response["Content-Disposition"]).group(1)


def test_download_names_say_the_users_sites_and_all_sites_only_for_every_site(
    cohort,
    client,
    site_a,
    site_b,
    manager,
):
    one_site = make_user("Site staff", site_a)
    client.force_login(one_site)
    assert _filename(client, format="csv") == "cohort-report_AAA_start_to_end_cutoff-2026-06-01.csv"
    two_sites = make_user("Site staff", site_b, site_a)
    client.force_login(two_sites)
    assert (
        _filename(client, format="md") == "cohort-report_AAA-BBB_start_to_end_cutoff-2026-06-01.md"
    )
    assert _filename(client, format="md", site="BBB").startswith("cohort-report_BBB_")
    client.force_login(manager)
    assert _filename(client, format="tidy") == (
        "cohort-report_all-sites_start_to_end_cutoff-2026-06-01.tidy.csv"
    )


def test_report_dates_are_typed_like_every_other_date_field(cohort, client_a):
    """The filters once were browser date boxes (which show the browser's own format);
    now they take the registry's day-month-year entry, with its hint and calendar."""
    url = reverse("cohort_report")
    page = client_a.get(url, HTTP_ACCEPT_LANGUAGE="da")
    html = page.content.decode()
    assert 'type="date"' not in html
    for name in ("date_from", "date_to", "as_of"):
        assert re.search(rf'<input type="text" name="{name}"[^>]*class="vDateField', html), name
    assert "admin/js/admin/DateTimeShortcuts.js" in html
    typed = client_a.get(url, {"as_of": "01-06-2026", "date_from": "1.1.2025"})
    iso = client_a.get(url, {"as_of": "2026-06-01", "date_from": "2025-01-01"})
    assert typed.context["report"]["filters"] == iso.context["report"]["filters"]
    assert typed.context["report"]["filters"]["as_of"] == "2026-06-01"
    refused = client_a.get(url, {"as_of": "31-02-2026"})
    assert refused.context["report"] is None
    assert "28-11-2026" in str(refused.context["form"].errors["as_of"])


def test_danish_page_shows_decimal_commas_and_downloads_stay_english_unless_asked(
    cohort,
    client_a,
):
    url, query = reverse("cohort_report"), {"as_of": AS_OF.isoformat()}
    english = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    danish = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert ">3/20 (15.0%)<" in english and "15,0%" not in english
    assert ">3/20 (15,0%)<" in danish and "(15.0%)" not in danish

    def csv_cells(**extra) -> list[str]:
        response = client_a.get(url, {**query, "format": "csv", **extra},
                                HTTP_ACCEPT_LANGUAGE="da")  # fmt: skip
        return [row[3] for row in csv.reader(io.StringIO(response.content.decode()))]

    assert "3/20 (15.0%)" in csv_cells() and not any("15,0" in c for c in csv_cells())
    assert "3/20 (15,0%)" in csv_cells(lang="da")
    markdown = client_a.get(url, {**query, "format": "md", "lang": "da"}).content.decode()
    assert "3/20 (15,0%)" in markdown and "Tabel 1. Patienter" in markdown
    refused = client_a.get(url, {**query, "format": "csv", "lang": "xx"})
    assert refused.status_code == 400 and b"lang" in refused.content


def _row(tables: list[dict], label: str) -> list[dict]:
    """The displayed cells (label first) of the page's row ``label``."""
    found = [row for table in tables for row in table["display_rows"] if row[0]["text"] == label]
    assert len(found) == 1, label
    return found[0]


def test_danish_page_labels_its_tables_in_danish_and_every_download_stays_english(cohort, client_a):
    """The adversary: a report built once in English and shown to a Danish user, or built in
    the page's language and handed to a download (a manuscript) or its patient list."""
    url, query = reverse("cohort_report"), {"as_of": AS_OF.isoformat()}
    danish = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="da")
    html = danish.content.decode()
    for text in (
        "<caption>Tabel 1. Patienter, behandlede hvirvler og komplikationer</caption>",
        "<caption>Kaplan–Meier: patienter i risiko</caption>",
        '<th scope="row">Mænd, n (%)</th>',
        '<th scope="row">I live efter 3 måneder (dag 91), n/N (%)</th>',
        '<th scope="row">Overlevelse efter 1 år, Kaplan–Meier (%)</th>',
        '<th scope="row">  Anden (cervikal + sakral)</th>',
        '<th scope="col">Osteoporotisk</th>',
        '<th scope="col">Samlet</th>',
        '<th scope="col">Dag 91</th>',
        "Patologisk: ændring, gennemsnit ± SD",
    ):
        assert text in html, text
    for text in ("Table 1. Patients", ">Male, n (%)<", ">Overall<", "Treated vertebrae, n",
                 "Kaplan–Meier: patients at risk", ">Day 91<"):  # fmt: skip
        assert text not in html, text
    # Translated labels stay on their own numbers (3 of the 20 osteoporotic vertebrae leak).
    tables = danish.context["tables"]
    leaks = _row(tables, "Cementlækage pr. hvirvel, n/N (%)")
    assert "3/20 (15,0%)" in [cell["text"] for cell in leaks]
    # The test names stay the constants, in English, on the Danish page too.
    table_1 = next(t for t in tables if t["id"] == "table_1")
    tested = {row[-1]["text"] for row in table_1["display_rows"] if row[-1]["text"]}
    assert tested and tested <= set(TEST_NAMES)
    # Its patient list names the Danish row it came from.
    href = next(cell["href"] for cell in leaks if cell["text"] == "3/20 (15,0%)")
    listed = client_a.get(href, HTTP_ACCEPT_LANGUAGE="da")
    assert listed.context["row"] == "Cementlækage pr. hvirvel, n/N (%)"
    assert listed.context["table"] == "Tabel 1. Patienter, behandlede hvirvler og komplikationer"

    english = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="en")
    english_leaks = _row(english.context["tables"], "Cement leakage per vertebra, n/N (%)")
    assert "3/20 (15.0%)" in [cell["text"] for cell in english_leaks]
    english_html = english.content.decode()
    assert "<caption>Table 1. Patients, treated vertebrae and complications</caption>" in (
        english_html
    )
    assert "Tabel 1" not in english_html and "Mænd" not in english_html

    # Downloads for manuscripts: English labels from a Danish page unless lang=da asks for
    # Danish (test_downloads_are_english_from_a_danish_page_and_danish_when_asked).
    for fmt in ("csv", "tidy", "md", "docx"):
        response = client_a.get(url, {**query, "format": fmt}, HTTP_ACCEPT_LANGUAGE="da")
        assert response.status_code == 200
        text = _download_text(response, fmt)
        if fmt in ("md", "docx"):  # the CSVs name tables by id
            assert "Table 1. Patients, treated vertebrae and complications" in text, fmt
        assert "Cement leakage per vertebra, n/N (%)" in text and "Overall" in text, fmt
        for danish_word in ("Tabel", "Mænd", "Patologisk", "Samlet", "Cementlækage"):
            assert danish_word not in text, (fmt, danish_word)


def _download_text(response, fmt: str) -> str:
    """Every text of a download: a Word document's paragraphs and cells, else its body."""
    if fmt != "docx":
        return response.content.decode()
    document = docx.Document(io.BytesIO(response.content))
    return "\n".join(
        [p.text for p in document.paragraphs]
        + [c.text for t in document.tables for r in t.rows for c in r.cells]
    )


DANISH_FILTER = (
    "Afdelinger: alle, du har adgang til; indeksindgreb fra enhver dato til enhver dato; "
    "dataskæringsdato 2026-06-01."
)
ENGLISH_FILTER = (
    "Sites: all in scope; index procedures any date to any date; data cut-off 2026-06-01."
)
# Words of the English notes, filter and cells that must not be left on the Danish page.
ENGLISH_WORDS = (
    "Sites: all in scope",
    "Each patient counts once",
    "n too small",
    "not yet reached",
    "Left out for unknown etiology",
    "Overall = pathologic",
)
DANISH_WORDS = (
    "Afdelinger:",
    "Hver patient tælles",
    "n for lille",
    "ikke nået endnu",
    "Udeladt på grund af ukendt ætiologi",
    "Samlet = patologisk",
)


def _cells(tables: list[dict], label: str) -> list[str]:
    return [cell["text"] for cell in _row(tables, label)[1:]]


def test_danish_page_writes_its_notes_filter_and_cell_words_in_danish_and_marks_none_english(
    cohort, client_a, settings
):
    """The adversary: the notes under each table, the filter's description or a cell's
    words ("n too small", "not yet reached", "to" in a range) left English on the Danish
    page and marked lang="en"; or the Danish words leaking into the English page."""
    url, query = reverse("cohort_report"), {"as_of": AS_OF.isoformat()}
    danish = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="da")
    html = danish.content.decode()
    # Only the language switcher's "English" button is marked English.
    assert 'lang="en"' not in html.split('<div id="content-main">', 1)[1]
    report_body = html.split('<div lang="da">', 1)[1]
    assert (
        f"<p>{DANISH_FILTER} Celler beregnet ud fra færre end 5 patienter viser “n for lille”."
    ) in html
    assert (
        f'<ul class="footnotes"><li>{DANISH_FILTER} Hver patient tælles én gang, med '
        "indeksindgrebet (det første). Celler med færre end 5 patienter viser kun antallet "
        "(n for lille).</li><li>Samlet = patologisk + osteoporotisk.</li><li>Udeladt på grund "
        "af ukendt ætiologi: 0 patienter, hvis indeksindgreb"
    ) in report_body
    assert f"p: patologisk mod osteoporotisk; {st.WELCH} for alder" in report_body
    for text in ENGLISH_WORDS:
        assert text not in html, text
    tables = danish.context["tables"]
    # A p value with a decimal comma beside the test's one name; too few patients' cells.
    fisher = f"{stats.fisher_exact([[6, 0], [3, 7]]).pvalue:.3f}"
    assert _cells(tables, "Mænd, n (%)")[3:] == [fisher.replace(".", ","), st.FISHER]
    assert _cells(tables, "Pain VAS (0–100), Patologisk")[:6] == ["4", *["n for lille"] * 5]
    # A row label's number too: the responders' EQ-5D threshold.
    threshold = str(settings.REPORT_MCID_EQ5D)
    assert "." in threshold
    _row(tables, f"EQ-5D index: forbedring ≥ {threshold.replace('.', ',')}, 3 måneder")

    english = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="en")
    english_html = english.content.decode()
    assert (
        f'<ul class="footnotes"><li>{ENGLISH_FILTER} Each patient counts once, with the index '
        "(first) procedure. Cells from fewer than 5 patients show the count only (n too "
        "small).</li><li>Overall = pathologic + osteoporotic.</li>"
    ) in english_html
    assert f"<p>{ENGLISH_FILTER} Cells computed from fewer than 5 patients" in english_html
    assert _cells(english.context["tables"], "Male, n (%)")[3:] == [fisher, st.FISHER]
    assert _cells(english.context["tables"], "Pain VAS (0–100), Pathologic")[:6] == [
        "4",
        *["n too small"] * 5,
    ]
    for text in DANISH_WORDS:
        assert text not in english_html, text
    _row(english.context["tables"], f"EQ-5D index: improvement ≥ {threshold}, 3 months")

    # A confidence interval "a til b", with decimal commas (numbers from SciPy directly).
    settings.REPORT_MIN_N = 2
    path = [a - b for b, a in zip(PATH_BASE, PATH_3M, strict=True) if a is not None]
    osteo = [a - b for b, a in zip(OSTEO_BASE, OSTEO_3M, strict=True) if a and b]
    ci = stats.ttest_ind(path, osteo, equal_var=False).confidence_interval(0.95)

    def signed(value: float) -> str:
        return f"{value:+.1f}".replace("-", "−").replace(".", ",")

    difference = signed(sum(path) / len(path) - sum(osteo) / len(osteo))
    tables = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="da").context["tables"]
    assert _cells(tables, "Pain VAS (0–100), 3 måneder")[4] == (
        f"{difference} ({signed(ci.low)} til {signed(ci.high)})"
    )
    # Survival at a day nobody has been followed to yet.
    early = {"as_of": (INDEX + datetime.timedelta(days=100)).isoformat()}
    tables = client_a.get(url, early, HTTP_ACCEPT_LANGUAGE="da").context["tables"]
    assert _cells(tables, "Overlevelse efter 1 år, Kaplan–Meier (%)")[0] == "ikke nået endnu"


def test_downloads_are_english_from_a_danish_page_and_danish_when_asked(cohort, client_a):
    """The adversary: a download built in the request's language (Danish notes in an
    English manuscript), or ``lang=da`` giving Danish numbers under English words."""
    url, query = reverse("cohort_report"), {"as_of": AS_OF.isoformat()}
    page = client_a.get(url, query, HTTP_ACCEPT_LANGUAGE="da").content.decode()
    # The Danish page offers the downloads in English and in Danish.
    assert "format=docx&amp;lang=da" in page and 'format=docx">' in page
    for fmt in ("csv", "tidy", "md", "docx"):
        text = _download_text(
            client_a.get(url, {**query, "format": fmt}, HTTP_ACCEPT_LANGUAGE="da"), fmt
        )
        for word in DANISH_WORDS:
            assert word not in text, (fmt, word)
        if fmt in ("md", "docx"):
            assert f"{ENGLISH_FILTER} Cells from fewer than 5 patients: n too small." in text
            assert "Each patient counts once" in text and "Tabel 1" not in text
            assert "Cohort report: pathologic vs osteoporotic" in text
        if fmt == "docx":
            assert "Figures" in text and "Figurer" not in text
        if fmt != "tidy":  # the tidy CSV holds numbers, not cells' words
            assert "n too small" in text and "3/20 (15.0%)" in text, fmt
        # Asked for Danish (from an English page too): Danish words and decimal commas.
        for language in ("da", "en"):
            response = client_a.get(
                url, {**query, "format": fmt, "lang": "da"}, HTTP_ACCEPT_LANGUAGE=language
            )
            text = _download_text(response, fmt)
            for word in ENGLISH_WORDS:
                assert word not in text, (fmt, language, word)
            if fmt in ("md", "docx"):
                assert f"{DANISH_FILTER} Celler med færre end 5 patienter: n for lille." in text
                assert "Hver patient tælles én gang" in text and "Table 1" not in text
                assert "Kohorterapport: patologiske vs. osteoporotiske" in text
                assert "Tabel 1. Patienter, behandlede hvirvler og komplikationer" in text
            if fmt == "docx":
                assert "Figurer" in text and "Figures" not in text
            if fmt != "tidy":
                assert "n for lille" in text and "3/20 (15,0%)" in text, fmt
            else:  # its rows named in Danish, its numbers plain
                assert '"Cementlækage pr. hvirvel, n/N (%)",Osteoporotisk,percent,15.0,' in text
