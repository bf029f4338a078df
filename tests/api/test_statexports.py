"""SPSS and Stata files, the wide analysis file, and the patient and complication exports."""

import csv
import io

import pyreadstat
import pytest

from api.models import ExportLog
from outcomes.reports.dataset import ReportFilter, load_patients
from outcomes.reports.statistics import follow_up_time
from tests.api.conftest import token_client
from tests.api.test_exports import read_csv
from tests.factories import make_user


def download(client, url, tmp_path, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    path = tmp_path / url.rsplit("/", 1)[1]
    path.write_bytes(b"".join(response.streaming_content))
    return path


def test_sav_has_variable_and_value_labels_from_the_dictionary(registry, api_a, tmp_path):
    path = download(api_a, "/api/v1/exports/levels.sav", tmp_path)
    frame, meta = pyreadstat.read_sav(path)
    csv_rows = read_csv(api_a, "/api/v1/exports/levels.csv")
    assert len(frame) == len(csv_rows) == 4
    labels = dict(zip(meta.column_names, meta.column_labels, strict=True))
    assert labels["cement_volume_ml"] == "Cement volume (mL)"
    assert labels["level"] == "Vertebral level"
    etiology = meta.variable_value_labels["etiology"]
    assert etiology[1] == "Osteoporotic" and "Multiple myeloma" in etiology.values()
    # Unknown added last: the codes of the other seven stay what earlier files had.
    assert (etiology[7], etiology[8]) == ("Other", "Unknown")
    assert "Unknown etiology" in meta.variable_value_labels["cohort"].values()
    assert meta.variable_value_labels["cement_leakage"] == {0: "No", 1: "Yes"}
    assert meta.variable_value_labels["level"][18] == "T12"  # C2 = 1, C7 = 6, T1 = 7 … T12 = 18
    by_id = {int(row.level_id): row for row in frame.itertuples()}
    for row in csv_rows:
        stat = by_id[int(row["level_id"])]
        assert meta.variable_value_labels["level"][stat.level] == row["level"]
        assert stat.cement_leakage == (1 if row["cement_leakage"] == "true" else 0)
        assert f"{stat.cement_volume_ml:.1f}" == row["cement_volume_ml"]
        assert stat.procedure_date.isoformat() == row["procedure_date"]


def test_dta_opens_with_labels_and_the_same_rows(registry, api_a, tmp_path):
    path = download(api_a, "/api/v1/exports/responses.dta", tmp_path, timepoint="baseline")
    frame, meta = pyreadstat.read_dta(path)
    assert len(frame) == 3  # site A's baseline answers only: scope and filters apply
    assert meta.variable_value_labels["timepoint"] == {
        1: "Baseline",
        2: "Post-op",
        3: "3 months",
        4: "12 months",
    }
    assert set(frame["timepoint"]) == {1}
    assert sorted(frame["vas_pain"]) == [70, 80, 90]
    log = ExportLog.objects.get(resource="responses.dta")
    assert (log.rows, log.completed, log.filters) == (3, True, {"timepoint": ["baseline"]})


def test_analysis_file_has_one_row_per_patient_agreeing_with_the_report(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/analysis.csv")
    assert len(rows) == 3  # site A's three patients, one row each
    osteo = next(r for r in rows if r["registry_id"] == registry["osteo"].patient.registry_id)
    assert (
        osteo
        | {
            "cohort": "osteoporotic",
            "age": "84",
            "sex": "male",
            "levels_treated": "2",
            "levels": "T12;L1",
            "levels_with_leakage": "1",
            "leakage": "true",
            "complication": "true",
            "worst_cirse_grade": "3",
            "vas_pain_baseline": "80",
            "vas_pain_month_3": "30",
            "vas_pain_change_month_3": "-50",
            "odi_score_change_month_3": "-60.0",
            "vas_pain_change_month_12": "",
            "survival_status": "0",
        }
        == osteo
    )
    # Survival as the cohort report computes it (same index procedures, same censoring).
    report = load_patients(user=None, filters=ReportFilter.of(sites=["AAA"]))
    followed, died = follow_up_time(
        report["death_day"], report["withdrawn_day"], report["as_of_day"]
    )
    assert sorted(int(r["survival_days"]) for r in rows) == sorted(followed.astype(int))
    assert sorted(int(r["survival_status"]) for r in rows) == sorted(died.astype(int))
    myeloma = next(r for r in rows if r["cohort"] == "pathologic")
    assert (myeloma["survival_days"], myeloma["survival_status"]) == ("100", "1")


def test_analysis_file_in_spss_and_stata(registry, api_a, tmp_path):
    frame, meta = pyreadstat.read_sav(download(api_a, "/api/v1/exports/analysis.sav", tmp_path))
    assert len(frame) == 3
    assert meta.variable_value_labels["cohort"] == {
        1: "Pathologic", 2: "Osteoporotic", 3: "Other", 4: "Unknown etiology",
    }  # fmt: skip
    assert meta.variable_value_labels["survival_status"] == {0: "Censored", 1: "Died"}
    frame, meta = pyreadstat.read_dta(download(api_a, "/api/v1/exports/analysis.dta", tmp_path))
    assert sorted(frame["vas_pain_baseline"]) == [70, 80, 90]
    assert all(len(label) <= 80 for label in meta.column_labels)


def test_patients_file_is_for_roles_that_see_contact_details(registry, api_a, staff_a):
    assert api_a.get("/api/v1/exports/patients.csv").status_code == 403  # auditor
    assert api_a.get("/api/v1/exports/patients.sav").status_code == 403
    rows = read_csv(token_client(staff_a), "/api/v1/exports/patients.csv")
    assert len(rows) == 3
    assert {"date_of_birth", "consent_date", "sex", "site"} <= set(rows[0])
    assert "name" not in rows[0] and "email" not in rows[0]


def test_complications_csv_names_procedure_date_and_level(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/complications.csv")
    assert [(r["registry_id"], r["procedure_date"], r["cirse_grade"]) for r in rows] == [
        (registry["osteo"].patient.registry_id, "2025-03-10", "3")
    ]


@pytest.mark.parametrize("suffix", ["csv", "sav", "dta"])
def test_every_export_file_is_described_in_the_dictionary(registry, suffix, tmp_path):
    manager = token_client(make_user("Registry manager", username="dict.manager"))
    described = {
        (r["file"], r["column"]) for r in read_csv(manager, "/api/v1/exports/dictionary.csv")
    }
    for name in ("patients", "complications", "analysis", "followups", "long"):
        if suffix == "csv":
            header = next(csv.reader(io.StringIO(
                b"".join(manager.get(f"/api/v1/exports/{name}.csv").streaming_content).decode()
            )))  # fmt: skip
        else:
            reader = pyreadstat.read_sav if suffix == "sav" else pyreadstat.read_dta
            _frame, meta = reader(download(manager, f"/api/v1/exports/{name}.{suffix}", tmp_path))
            header = meta.column_names
        assert {(f"{name}.csv", c) for c in header} == {
            d for d in described if d[0] == f"{name}.csv"
        }


def test_a_bad_filter_on_a_stat_file_is_a_json_400_and_logs_nothing(registry, api_a):
    response = api_a.get("/api/v1/exports/levels.sav", {"date_from": "10/03/2025"})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert "date_from" in response.json()
    assert not ExportLog.objects.filter(kind="export").exists()


def _read_back(client, name, tmp_path):
    """The CSV rows and the SPSS and Stata frames of one export."""
    rows = read_csv(client, f"/api/v1/exports/{name}.csv")
    sav, sav_meta = pyreadstat.read_sav(download(client, f"/api/v1/exports/{name}.sav", tmp_path))
    dta, dta_meta = pyreadstat.read_dta(download(client, f"/api/v1/exports/{name}.dta", tmp_path))
    return rows, (sav, sav_meta), (dta, dta_meta)


def test_patients_sav_and_dta_download_on_the_demo(db, tmp_path):
    """The shipped demo (seed_demo) withdraws consent only late in its cohort: pyreadstat
    used to type the date column from its empty first rows as text and fail."""
    import datetime

    from django.core.management import call_command

    call_command("seed_demo", "--patients", "150", "--no-progress")
    manager = token_client(make_user("Registry manager", username="demo.manager"))
    rows, (sav, sav_meta), (dta, dta_meta) = _read_back(manager, "patients", tmp_path)
    assert len(rows) == len(sav) == len(dta) == 150
    withdrawn = [r["consent_withdrawn_date"] for r in rows if r["consent_withdrawn_date"]]
    assert withdrawn  # the demo has withdrawals, so the column is really exercised
    assert sav_meta.original_variable_types["consent_withdrawn_date"] == "DATE11"
    assert dta_meta.original_variable_types["consent_withdrawn_date"] == "%td"
    for frame in (sav, dta):
        dates = sorted(d.isoformat() for d in frame["consent_withdrawn_date"] if d == d and d)
        assert dates == sorted(withdrawn)
        assert all(isinstance(d, datetime.date) for d in frame["date_of_birth"])


def test_dates_empty_in_the_first_rows_keep_their_type(db, tmp_path):
    """The first 120 patients alive, the last one dead: date_of_death is still a date."""
    import datetime

    from tests.factories import make_patient, make_site

    site = make_site("EMP")
    for n in range(120):
        make_patient(site, registry_id=f"EMP-{n:04d}")
    make_patient(
        site,
        registry_id="EMP-9999",
        date_of_death=datetime.date(2024, 2, 29),
        cause_of_death="other",
    )
    staff = token_client(make_user("Site staff", site, username="emp.staff"))
    rows, (sav, sav_meta), (dta, dta_meta) = _read_back(staff, "patients", tmp_path)
    assert len(rows) == len(sav) == len(dta) == 121
    assert sav_meta.original_variable_types["date_of_death"] == "DATE11"
    assert dta_meta.original_variable_types["date_of_death"] == "%td"
    for frame in (sav, dta):
        last = frame.set_index("registry_id").loc["EMP-9999"]
        assert last["date_of_death"] == datetime.date(2024, 2, 29)
        assert frame["date_of_death"].isna().sum() == 120


def test_no_export_or_api_list_holds_a_phone_number(registry, staff_a):
    """Contact details stay in the registry: the phone number is in no CSV, SPSS or Stata
    export and no API list, even for a role that may see contact details."""
    from api import exports

    client = token_client(staff_a)
    paths = [f"/api/v1/exports/{name}" for name in exports.EXPORTS]
    paths += [path.removesuffix(".csv") + ".sav" for path in paths]
    paths += ["/api/v1/patients", "/api/v1/followups"]
    checked = 0
    for path in paths:
        response = client.get(path)
        if response.status_code != 200:
            continue
        body = b"".join(response.streaming_content) if response.streaming else response.content
        for spelling in (b"31123456", b"3112 3456", b"31 12 34 56"):
            assert spelling not in body, path
        checked += 1
    assert checked >= len(exports.EXPORTS) + 2
