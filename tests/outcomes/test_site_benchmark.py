"""The site benchmark from the database: the API and the admin page, scoped by role (site
staff see their own sites by name and the others as letters, managers see all), with the
numbers the pure module computes from the same rows."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.urls import reverse

from api.models import ExportLog
from outcomes.reports.annual import SECTIONS, annual_filters
from outcomes.reports.dataset import ReportFilter, load_patients
from registry.models import Site
from tests.api.conftest import token_client
from tests.factories import make_user

AS_OF = datetime.date(2027, 6, 1)


@pytest.fixture(scope="module")
def demo_rows(django_db_setup, django_db_blocker):
    """The demo registry, seeded once for the module (two minutes on a busy machine) inside
    a transaction that is rolled back afterwards; each test runs in a savepoint within it."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            call_command("seed_demo", patients=150, no_progress=True)
            yield
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def demo(demo_rows, db, settings):
    settings.REPORT_MIN_N = 5
    return {site.code: site for site in Site.objects.all()}


def _outcome(report, key):
    return next(o for o in report["outcomes"] if o["key"] == key)


def test_site_staff_see_their_own_site_by_name_and_the_others_as_letters(demo):
    aarhus = demo["AAR"]
    nurse = make_user("Site staff", aarhus, username="nurse.bench")
    response = token_client(nurse).get(reverse("api_site_benchmark"), {"as_of": AS_OF.isoformat()})
    assert response.status_code == 200
    report = response.json()
    patients = load_patients(user=None, filters=ReportFilter.of(as_of=AS_OF))
    assert report["patients"] == len(patients["patient_id"]) > 100
    leakage = _outcome(report, "leakage_per_level")
    assert leakage["model_error"] is None
    labels = {s["site"] for s in leakage["sites"]}
    assert "AAR – Aarhus University Hospital" in labels
    assert labels - {"AAR – Aarhus University Hospital"} <= {"Site A", "Site B", "Site C"}
    assert len(labels) == 3
    assert not any("Odense" in str(o) or "London" in str(o) for o in report["outcomes"])
    # Observed, expected, limits and n per site; the observed rate is the rows' own.
    own = next(s for s in leakage["sites"] if s["named"])
    mine = patients["site"] == aarhus.pk
    assert own["n"] == int(patients["levels"][mine].sum())
    assert own["observed"] == pytest.approx(
        patients["leaks"][mine].sum() / patients["levels"][mine].sum()
    )
    assert set(own) >= {"expected", "limits", "difference", "ci_low", "ci_high", "position"}
    low, high = own["limits"]["99.8"]
    assert low < 0 < high and own["limits"]["95"][1] < high
    assert leakage["fit"]["n"] == int(patients["levels"].sum())
    assert 0 <= leakage["fit"]["c_statistic"] <= 1
    # Too few patients with ODI at baseline and 12 months in a 150-patient demo for an
    # 8-parameter model: no model, every site shown with its n and no numbers.
    odi = _outcome(report, "odi_change_12m")
    assert "too few" in odi["model_error"] and odi["fit"] is None
    assert all(site["too_small"] and "observed" not in site for site in odi["sites"])
    assert sum(site["n"] for site in odi["sites"]) == odi["n"]
    log = ExportLog.objects.get(resource="reports/sites")
    assert (log.user, log.rows) == (nurse, report["patients"])


def test_a_manager_sees_every_site_by_name(demo):
    manager = make_user("Registry manager", username="boss")
    report = token_client(manager).get(reverse("api_site_benchmark")).json()
    for outcome in report["outcomes"]:
        assert all(site["named"] for site in outcome["sites"])
        assert {s["site"].split(" – ")[0] for s in outcome["sites"]} <= {"AAR", "ODE", "LDN"}
    completeness = _outcome(report, "followup_3m")
    assert completeness["model"] == "logistic" and completeness["fit"]["c_statistic"] is not None


def test_a_site_filter_or_an_empty_parameter_is_refused_with_its_name(demo):
    manager = make_user("Registry manager", username="boss")
    client = token_client(manager)
    response = client.get(reverse("api_site_benchmark"), {"site": "AAR"})
    assert response.status_code == 400 and "site" in response.json()
    response = client.get(reverse("api_site_benchmark"), {"as_of": "2026-02-30"})
    assert response.status_code == 400 and "as_of" in response.json()
    assert not ExportLog.objects.filter(resource="reports/sites").exists()


def test_the_admin_page_draws_a_funnel_per_outcome(demo, client):
    nurse = make_user("Site staff", demo["ODE"], username="nurse.page")
    client.force_login(nurse)
    page = client.get(reverse("site_benchmark"), {"as_of": AS_OF.isoformat()})
    assert page.status_code == 200
    html = page.content.decode()
    for key in ("odi_change_12m", "followup_3m", "leakage_per_level"):
        assert f'id="funnel-{key}"><svg' in html
        assert f'id="benchmark-{key}"' in html
    assert "ODE – Odense University Hospital" in html
    assert "Aarhus" not in html
    assert "Appendix: the case-mix models" in html


# --- the annual report (same demo registry) -------------------------------------------------


def _document(path):
    import docx

    document = docx.Document(str(path))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading")]
    text = "\n".join(p.text for p in document.paragraphs)
    cells = "\n".join(c.text for t in document.tables for row in t.rows for c in row.cells)
    return document, headings, text + "\n" + cells


def test_annual_report_writes_a_word_document_with_every_section(demo, tmp_path, capsys):
    path = tmp_path / "annual.docx"
    call_command("annual_report", year=2026, output=str(path))
    assert f"written to {path}" in capsys.readouterr().out
    document, headings, text = _document(path)
    for section in SECTIONS:
        assert section in headings, section
    inclusion = next(t for t in document.tables if t.rows[0].cells[-1].text == "Total")
    total = inclusion.rows[-1].cells
    assert total[0].text == "All sites"
    patients = load_patients(user=None, filters=annual_filters(2026))
    assert int(total[-1].text) == len(patients["patient_id"]) > 100
    # Every site named in the registry's edition; a funnel plot per benchmarked outcome.
    for name in ("Aarhus", "Odense", "London"):
        assert name in text
    assert len(document.inline_shapes) == 7
    assert "Table 1. Patients, treated vertebrae and complications" in headings
    assert "Spiegelhalter" in text and "statsmodels" in text
    assert "c-statistic" in text  # the models' appendix


def test_a_site_edition_names_that_site_only_and_shows_it_against_the_rest(demo, tmp_path):
    path = tmp_path / "aar.docx"
    call_command("annual_report", year=2026, site="AAR", output=str(path))
    _document_, headings, text = _document(path)
    assert "Annual registry report 2026: AAR – Aarhus University Hospital" in text
    assert "Odense" not in text and "London" not in text
    assert "Site A" in text or "Site B" in text
    assert any(h.endswith("— AAR") for h in headings)
    assert any(h.endswith("— rest of registry") for h in headings)


def test_annual_report_refuses_an_unknown_site_by_name(demo, tmp_path):
    with pytest.raises(CommandError, match="No site 'XXX'. Sites: AAR, LDN, ODE."):
        call_command("annual_report", year=2026, site="XXX", output=str(tmp_path / "x.docx"))
    assert not (tmp_path / "x.docx").exists()


def test_the_annual_report_page_is_the_same_report_in_html(demo, client):
    manager = make_user("Registry manager", username="boss.page")
    client.force_login(manager)
    page = client.get(reverse("annual_report"), {"year": "2026"})
    assert page.status_code == 200
    html = page.content.decode()
    for section in SECTIONS:
        assert f"<h2>{section}</h2>" in html
    assert html.count('id="funnel-') == 7
    download = client.get(reverse("annual_report"), {"year": "2026", "format": "docx"})
    assert download["Content-Disposition"] == 'attachment; filename="annual-report-2026.docx"'

    nurse = make_user("Site staff", demo["ODE"], username="nurse.annual")
    client.force_login(nurse)
    refused = client.get(reverse("annual_report"), {"year": "2026", "site": "AAR"})
    assert refused.status_code == 400 and "Aarhus" not in refused.content.decode()
    assert client.get(reverse("annual_report"), {"year": "20x6"}).status_code == 400
    own = client.get(reverse("annual_report"), {"year": "2026", "site": "ODE"})
    assert own.status_code == 200 and "ODE – Odense University Hospital" in own.content.decode()


def test_benchmark_and_annual_pages_describe_the_filter_in_their_own_language(demo, client):
    """The adversary: "every site" made by replacing words of the English description
    (which the Danish one does not have), the API following its caller's Accept-Language, or
    the annual report (English, for papers) describing its scope in the page's Danish."""
    manager = make_user("Registry manager", username="boss.language")
    client.force_login(manager)
    query = {"as_of": AS_OF.isoformat()}
    danish = client.get(reverse("site_benchmark"), query, HTTP_ACCEPT_LANGUAGE="da")
    html = danish.content.decode()
    assert (
        "<p>Afdelinger: alle; indeksindgreb fra enhver dato til enhver dato; "
        "dataskæringsdato 2027-06-01. Hvert center"
    ) in html
    assert "Sites:" not in html and "alle, du har adgang til" not in html
    # The benchmark's tables and plots stay English, marked so, and the page says so.
    assert "Benchmarkingens diagrammer, tabeller og noter er på engelsk" in html
    assert '<div lang="en">' in html and '<span lang="en">' not in html
    english = client.get(reverse("site_benchmark"), query, HTTP_ACCEPT_LANGUAGE="en")
    every_site = "Sites: every site; index procedures any date to any date; data cut-off"
    assert f"<p>{every_site} 2027-06-01. Each site against" in english.content.decode()
    api = token_client(manager).get(reverse("api_site_benchmark"), query, HTTP_ACCEPT_LANGUAGE="da")
    assert api.json()["filter_text"] == f"{every_site} 2027-06-01."

    annual = client.get(reverse("annual_report"), {"year": "2026"}, HTTP_ACCEPT_LANGUAGE="da")
    body = annual.content.decode().split('<div lang="en">', 1)[1]
    cut_off = annual_filters(2026).as_of.isoformat()
    assert (
        f"<p>Sites: every site; index procedures any date to 2026-12-31; data cut-off "
        f"{cut_off}. Patients:"
    ) in body
    assert "Afdelinger:" not in annual.content.decode()
    assert "Årsrapporten er på engelsk" in annual.content.decode()
