"""The site benchmark from the database: the API and the admin page, scoped by role (site
staff see their own sites by name and the others as letters, managers see all), with the
numbers the pure module computes from the same rows."""

from __future__ import annotations

import datetime

import pytest
from django.core.management import call_command
from django.db import transaction
from django.urls import reverse

from api.models import ExportLog
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
