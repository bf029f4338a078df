"""The cohort report from the API stays English whatever language the caller's client asks
for: the page translates its labels, the API (like every download) does not."""

import datetime

from outcomes.reports.dataset import ReportFilter
from outcomes.reports.tables import cohort_report
from tests.factories import make_patient, make_procedure


def test_api_cohort_report_stays_english_when_asked_in_danish(api_a, auditor_a, site_a):
    """The adversary: the API built in the request's language (Accept-Language: da), which
    would hand a statistician's script Danish row labels."""
    for _ in range(2):
        make_procedure(make_patient(site_a), "osteoporotic")
    query = {"as_of": "2026-06-01"}
    danish = api_a.get("/api/v1/reports/cohorts", query, HTTP_ACCEPT_LANGUAGE="da")
    assert danish.status_code == 200
    body = danish.json()
    english = api_a.get("/api/v1/reports/cohorts", query, HTTP_ACCEPT_LANGUAGE="en").json()
    assert body == english
    assert body["columns"] == ["Pathologic", "Osteoporotic", "Overall"]
    table_1 = body["tables"][0]
    assert table_1["title"] == "Table 1. Patients, treated vertebrae and complications"
    assert table_1["rows"][0][:4] == ["Patients, n", 0, 2, 2]
    text = danish.content.decode()
    for word in ("Tabel", "Patienter", "Mænd", "Patologisk", "Samlet", "Cementlækage"):
        assert word not in text, word
    # The same numbers and labels as the report built directly, in English.
    direct = cohort_report(user=auditor_a, filters=ReportFilter(as_of=datetime.date(2026, 6, 1)))
    assert [t["rows"] for t in body["tables"]] == [t["rows"] for t in direct["tables"]]
