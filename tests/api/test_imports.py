"""Importing historical series (CSV and Excel) and the round trip through the exports."""

import csv
import datetime
import io
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.core.management import CommandError, call_command

from api.imports import cases_import
from outcomes.demo import create_demo_responses
from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp, QuestionnaireResponse
from registry.demo import create_demo_cohort
from registry.models import (
    Complication,
    Patient,
    PatientContact,
    Procedure,
    Site,
    TreatedLevel,
)
from tests.api.conftest import token_client
from tests.factories import make_site, make_user

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "docs" / "import-sample"
BAD = ROOT / "tests" / "data" / "import-bad"
TABLES = ["patients", "procedures", "levels", "responses", "complications"]
ID_COLUMNS = {"level_id", "procedure_id", "response_id", "complication_id"}


def sample_files(folder: Path = SAMPLE) -> list[tuple[str, bytes]]:
    return [(path.name, path.read_bytes()) for path in sorted(folder.glob("*.csv"))]


def counts() -> tuple[int, ...]:
    return tuple(
        model.objects.count()
        for model in (Patient, Procedure, TreatedLevel, QuestionnaireResponse, Complication)
    )


@pytest.fixture
def aarhus(db):
    return make_site("AAR")


def test_dry_run_prints_what_it_would_create_and_keeps_nothing(aarhus, capsys):
    call_command("import_cases", *sorted(SAMPLE.glob("*.csv")), "--dry-run", "--no-progress")
    out = capsys.readouterr().out
    assert "patients: would create 3, would change 0, unchanged 0" in out
    assert "levels: would create 4, would change 0, unchanged 0" in out
    assert "responses: would create 4" in out
    assert "complications: would create 1" in out
    assert "Dry run: nothing was saved." in out
    assert counts() == (0, 0, 0, 0, 0)


def test_dry_run_names_every_bad_row_with_column_value_and_rule(aarhus, capsys):
    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_cases", *sorted(BAD.glob("*.csv")), "--dry-run", "--no-progress")
    errors = [line for line in capsys.readouterr().out.splitlines() if line.startswith("ERROR")]
    text = "\n".join(errors)
    assert (
        "patients, column sex: 'unknown' in row 3: Value 'unknown' is not a valid choice. "
        "Allowed: female, male." in text
    )
    assert "patients, column date_of_birth: '1950-13-01' in row 4: not a date (YYYY-MM-DD" in text
    assert "procedures, column registry_id: 'AAR-B0009' in row 3: no such patient" in text
    assert "levels, column cement_volume_ml: '25.0' in row 2: 25.0 mL cannot fit" in text
    assert "levels, column leakage_sites in row 3: Tick where the cement leaked." in text
    assert "levels, column level: 'X9' in row 4: not a vertebral level (C2 … S1)" in text
    assert "responses, column vas_pain: '140' in row 2" in text
    assert counts() == (0, 0, 0, 0, 0)


def test_import_saves_everything_scores_from_answers_and_completes_follow_ups(aarhus):
    result = cases_import(files=sample_files())
    assert result.ok, result.problems
    assert counts() == (3, 3, 4, 4, 1)
    myeloma = Patient.objects.get(registry_id="AAR-H0002")
    assert (myeloma.date_of_death, myeloma.cause_of_death) == (
        datetime.date(2020, 1, 14),
        "disease_progression",
    )
    assert myeloma.prior_radiotherapy is True and myeloma.visceral_metastases is False
    leak = TreatedLevel.objects.get(procedure__patient__registry_id="AAR-H0001", level=20)
    assert leak.leakage_sites == ["segmental_vein", "paravertebral"]
    assert leak.cement_volume_ml == Decimal("4.0")
    # scores computed here, with the site's value set (5L) or the file's for a 3L answer
    baseline = QuestionnaireResponse.objects.get(
        procedure__patient__registry_id="AAR-H0001", timepoint="baseline"
    )
    # ODI: 29 points over 9 answered sections (sex life left out) = 64.4 %
    assert (baseline.eq5d_value_set, baseline.odi_score) == ("DK-5L", Decimal("64.4"))
    assert baseline.eq5d_index is not None
    three_level = QuestionnaireResponse.objects.get(procedure__patient__registry_id="AAR-H0002")
    assert three_level.eq5d_value_set == "DK-3L"
    followup = FollowUp.objects.get(procedure=baseline.procedure, timepoint="month_3")
    assert followup.state == FollowUp.State.COMPLETED
    complication = Complication.objects.get()
    assert (complication.procedure, complication.cirse_grade) == (baseline.procedure, 3)


def test_scores_in_the_file_are_ignored(aarhus):
    files = sample_files()
    responses = dict(files)["responses.csv"].decode()
    rows = list(csv.DictReader(io.StringIO(responses)))
    for row in rows:
        row["odi_score"] = "1.0"
        row["eq5d_index"] = "0.999"
    out = io.StringIO()
    writer = csv.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    files = [(n, out.getvalue().encode() if n == "responses.csv" else c) for n, c in files]
    assert cases_import(files=files).ok
    baseline = QuestionnaireResponse.objects.get(
        procedure__patient__registry_id="AAR-H0001", timepoint="baseline"
    )
    assert baseline.odi_score == Decimal("64.4")
    assert baseline.eq5d_index != Decimal("0.999")


def test_reimporting_the_same_files_changes_nothing(aarhus, capsys):
    assert cases_import(files=sample_files()).ok
    before = {
        model: list(model.objects.order_by("pk").values("pk", "updated_at"))
        for model in (Patient, Procedure, TreatedLevel, QuestionnaireResponse, Complication)
    }
    call_command("import_cases", *sorted(SAMPLE.glob("*.csv")), "--no-progress")
    out = capsys.readouterr().out
    for table, n in [("patients", 3), ("procedures", 3), ("levels", 4), ("responses", 4)]:
        assert f"{table}: created 0, changed 0, unchanged {n}" in out
    after = {
        model: list(model.objects.order_by("pk").values("pk", "updated_at")) for model in before
    }
    assert after == before


def test_a_changed_value_is_listed_and_updated(aarhus, capsys):
    assert cases_import(files=sample_files()).ok
    levels = (
        (SAMPLE / "levels.csv")
        .read_text()
        .replace("T12,osteoporotic,true,2", "T12,osteoporotic,true,3")
    )
    changed = [(n, levels.encode() if n == "levels.csv" else c) for n, c in sample_files()]
    result = cases_import(files=changed, dry_run=True)
    assert result.tables["levels"].changed == 1
    assert result.tables["levels"].changes == ["AAR-H0001 2019-02-04 T12: genant_grade '2' → '3'"]
    assert TreatedLevel.objects.get(level=19).genant_grade == 2  # dry run kept nothing
    assert cases_import(files=changed).ok
    assert TreatedLevel.objects.get(level=19).genant_grade == 3


def test_a_database_rule_fails_the_whole_import(aarhus):
    """A procedure after the patient's death passes full_clean of each row alone (the
    patient is saved first) and is refused by the database trigger; nothing is kept."""
    procedures = (SAMPLE / "procedures.csv").read_text().replace("2019-05-22", "2020-05-22")
    files = [
        (n, procedures.encode() if n == "procedures.csv" else c)
        for n, c in sample_files()
        if n in ("patients.csv", "procedures.csv")
    ]
    result = cases_import(files=files)
    assert not result.ok
    [problem] = result.problems
    assert (problem.table, problem.row, problem.column) == ("procedures", 3, "procedure_date")
    assert "after the patient's recorded death" in problem.rule
    assert counts() == (0, 0, 0, 0, 0)


def test_rows_outside_the_users_sites_are_refused(aarhus):
    odense = make_site("ODE")
    staff = make_user("Site staff", odense)
    result = cases_import(files=sample_files(), user=staff)
    assert not result.ok
    assert result.problems[0].rule == "not one of your sites"
    assert counts() == (0, 0, 0, 0, 0)
    result = cases_import(files=sample_files(), site_code="ODE")
    assert result.problems[0].rule == "this import is for site ODE only"


def test_an_unknown_column_is_an_error_not_silently_dropped(aarhus):
    files = [(n, c.replace(b"sex,", b"gender,") if n == "patients.csv" else c)
             for n, c in sample_files()]  # fmt: skip
    result = cases_import(files=files)
    rules = {(p.table, p.column, p.rule.split(":")[0]) for p in result.problems}
    assert ("patients", "gender", "unknown column") in rules
    assert ("patients", "sex", "required column is missing") in rules


def test_excel_workbook_with_one_sheet_per_table_imports_like_the_csv_files(aarhus):
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, content in sample_files():
        sheet = book.create_sheet(name.removesuffix(".csv"))
        for row in csv.reader(io.StringIO(content.decode())):
            sheet.append([_typed(cell) for cell in row])
    buffer = io.BytesIO()
    book.save(buffer)
    result = cases_import(files=[("series.xlsx", buffer.getvalue())])
    assert result.ok, result.problems
    assert counts() == (3, 3, 4, 4, 1)
    level = TreatedLevel.objects.get(procedure__patient__registry_id="AAR-H0002")
    assert level.cement_volume_ml == Decimal("6.0")
    assert Patient.objects.get(registry_id="AAR-H0001").date_of_birth == datetime.date(1941, 4, 12)


def _typed(cell: str):
    """A cell as Excel would hold it: dates as dates, numbers as numbers."""
    try:
        return (
            datetime.datetime.fromisoformat(cell)
            if len(cell) == 10 and cell[4] == "-"
            else float(cell)
        )
    except ValueError:
        return cell or None


# --- the round trip ---------------------------------------------------------------------------


def export_all(client) -> dict[str, str]:
    files = {}
    for table in TABLES:
        response = client.get(f"/api/v1/exports/{table}.csv")
        assert response.status_code == 200, response.content
        files[table] = b"".join(response.streaming_content).decode()
    return files


def without_ids(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in ID_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


@pytest.mark.django_db
def test_round_trip_export_import_into_empty_registry_export_is_identical():
    """Given the demo cohort, when it is exported, every clinical row deleted (the sites
    stay), the files imported and exported again, then the files are identical but for the
    database ids."""
    today = datetime.date.today()
    create_demo_cohort(patients=60, today=today)
    followups_ensure()
    create_demo_responses(today=today)
    manager = make_user("Registry manager", username="rt.manager")
    client = token_client(manager)
    first = export_all(client)
    assert all(len(text.splitlines()) > 2 for text in first.values())  # every table has rows

    QuestionnaireResponse.objects.all().delete()
    Complication.objects.all().delete()
    FollowUp.objects.all().delete()
    TreatedLevel.objects.all().delete()
    Procedure.objects.all().delete()
    PatientContact.objects.all().delete()
    Patient.objects.all().delete()
    assert counts() == (0, 0, 0, 0, 0) and Site.objects.count() == 3

    result = cases_import(files=[(f"{t}.csv", first[t].encode()) for t in TABLES])
    assert result.ok, result.problems[:5]
    second = export_all(client)
    for table in TABLES:
        assert without_ids(second[table]) == without_ids(first[table]), table
    assert first["levels"] != second["levels"]  # the ids did change: a real re-import


def test_a_file_with_nul_bytes_is_refused_with_a_clear_message(aarhus, tmp_path):
    bad = tmp_path / "patients.csv"
    bad.write_bytes((SAMPLE / "patients.csv").read_bytes().replace(b"female", b"fe\x00male", 1))
    with pytest.raises(CommandError, match="patients.csv: contains NUL characters"):
        call_command("import_cases", str(bad), "--no-progress")
    assert counts() == (0, 0, 0, 0, 0)


def test_semicolon_csv_with_decimal_commas_as_spreadsheets_write_them(aarhus):
    files = []
    for name, content in sample_files():
        rows = list(csv.reader(io.StringIO(content.decode())))
        out = io.StringIO()
        csv.writer(out, delimiter=";").writerows(
            [[cell.replace(".", ",") if cell[:1].isdigit() and "-" not in cell else cell
              for cell in row] for row in rows]
        )  # fmt: skip
        files.append((name, out.getvalue().encode()))
    assert cases_import(files=files).ok
    assert TreatedLevel.objects.get(level=19).cement_volume_ml == Decimal("4.5")


def test_excel_row_numbers_are_the_sheets_even_after_an_empty_row(aarhus):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "patients"
    sheet.append(["registry_id", "site", "sex", "date_of_birth", "consent_date"])
    sheet.append(["AAR-X0001", "AAR", "female", datetime.datetime(1940, 1, 2), "2019-01-01"])
    sheet.append([None, None, None, None, None])
    sheet.append(["AAR-X0002", "AAR", "woman", datetime.datetime(1941, 1, 2), "2019-01-01"])
    buffer = io.BytesIO()
    book.save(buffer)
    result = cases_import(files=[("series.xlsx", buffer.getvalue())])
    [problem] = result.problems
    assert (problem.table, problem.row, problem.column, problem.value) == (
        "patients",
        4,
        "sex",
        "woman",
    )
    assert not Patient.objects.exists()


def test_a_check_constraint_names_its_row_after_the_batch_is_refused(aarhus):
    """A partly answered EQ-5D passes full_clean (the rule lives in the database only); the
    batch insert is refused, and the rows are then written one by one to name the row."""
    responses = (
        (SAMPLE / "responses.csv")
        .read_text()
        .replace(
            "month_3,paper,2019-05-07,30,5L,2,1,2,2,1,", "month_3,paper,2019-05-07,30,5L,2,1,,2,1,"
        )
    )
    files = [(n, responses.encode() if n == "responses.csv" else c) for n, c in sample_files()]
    result = cases_import(files=files)
    [problem] = result.problems
    assert (problem.table, problem.row) == ("responses", 3)
    assert problem.column.startswith("eq5d_")  # one of the constraint's columns
    assert problem.rule.startswith("database rule response_eq5d_complete_within_version")
    assert counts() == (0, 0, 0, 0, 0)


def test_site_option_fills_a_missing_site_column_and_user_is_recorded(aarhus, tmp_path):
    nurse = make_user("Site staff", aarhus, username="nurse.aar")
    for path in SAMPLE.glob("*.csv"):
        rows = list(csv.DictReader(io.StringIO(path.read_text())))
        with open(tmp_path / path.name, "w", newline="") as out:
            names = [n for n in rows[0] if not (path.name == "patients.csv" and n == "site")]
            writer = csv.DictWriter(out, names, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)
    files = sorted(tmp_path.glob("*.csv"))
    with pytest.raises(CommandError):  # no site column and no --site
        call_command("import_cases", *files, "--no-progress")
    call_command("import_cases", *files, "--site", "AAR", "--user", "nurse.aar", "--no-progress")
    assert set(Patient.objects.values_list("site__code", flat=True)) == {"AAR"}
    assert set(QuestionnaireResponse.objects.values_list("entered_by", flat=True)) == {nurse.pk}


def files_with_a_procedure_without_levels() -> list[tuple[str, bytes]]:
    """The sample, but the levels of AAR-H0002's procedure (procedures row 3) left out."""
    files = []
    for name, content in sample_files():
        if name == "levels.csv":
            lines = content.decode().splitlines(keepends=True)
            content = "".join(line for line in lines if not line.startswith("AAR-H0002,")).encode()
        files.append((name, content))
    return files


NO_LEVEL = ("procedures", 3, "procedure_date")


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_procedure_without_levels_is_a_problem_naming_its_row(aarhus, dry_run):
    """The database checks "a procedure has a level" at commit (a deferred trigger): the dry
    run runs it too, and neither run ends in an IntegrityError at commit."""
    result = cases_import(files=files_with_a_procedure_without_levels(), dry_run=dry_run)
    assert not result.ok
    [problem] = result.problems
    assert (problem.table, problem.row, problem.column) == NO_LEVEL
    assert problem.value == "2019-05-22"
    assert "procedure_has_a_level" in problem.rule and "no treated level" in problem.rule
    assert counts() == (0, 0, 0, 0, 0)


def test_import_cases_dry_run_fails_on_a_procedure_without_levels(aarhus, tmp_path, capsys):
    for name, content in files_with_a_procedure_without_levels():
        (tmp_path / name).write_bytes(content)
    paths = sorted(tmp_path.glob("*.csv"))
    for extra in (["--dry-run"], []):
        with pytest.raises(CommandError, match="nothing was imported"):
            call_command("import_cases", *paths, *extra, "--no-progress")
        out = capsys.readouterr().out
        assert "ERROR procedures, column procedure_date: '2019-05-22' in row 3" in out
        assert "no treated level" in out
    assert counts() == (0, 0, 0, 0, 0)


@pytest.mark.django_db(transaction=True)
def test_an_error_at_commit_is_reported_not_raised(aarhus, monkeypatch):
    """Should a rule checked at commit still fail there, the import reports it."""
    from api.imports import Importer

    monkeypatch.setattr(Importer, "_check_deferred", lambda self: None)
    result = cases_import(files=files_with_a_procedure_without_levels())
    assert not result.ok
    [problem] = result.problems
    assert "procedure_has_a_level" in problem.rule
    assert counts() == (0, 0, 0, 0, 0)
