"""The import as a site's data manager meets it: local dates, one message per bad value,
allowed codes named, site codes in any case, did-you-mean, grouped problems, extra sheets,
Excel float noise, old → new in the preview, web-link answers, the template workbook."""

import datetime
import io
from decimal import Decimal

import openpyxl
import pytest

from api.import_template import template_workbook
from api.imports import cases_import, group_problems, parse_cell
from outcomes.models import QuestionnaireResponse
from registry.models import Patient, Procedure, TreatedLevel
from tests.api.test_imports import SAMPLE, TABLES, counts, sample_files
from tests.factories import make_site, make_user


@pytest.fixture
def aarhus(db):
    return make_site("AAR")


def edited(name: str, old: str, new: str, count: int = 1) -> list[tuple[str, bytes]]:
    """The sample files with one edit in ``name``."""
    files = []
    for file_name, content in sample_files():
        if file_name == name:
            text = content.decode()
            assert old in text
            content = text.replace(old, new, count).encode()
        files.append((file_name, content))
    return files


def test_dates_as_sites_type_them_are_read_day_first():
    field = Patient._meta.get_field("date_of_birth")
    expected = datetime.date(1941, 4, 12)
    for typed in ("1941-04-12", "12-04-1941", "12.04.1941", "12/04/1941", 15078):
        assert parse_cell(field, typed) == expected, typed
    with pytest.raises(ValueError, match="not a date"):
        parse_cell(field, "04/31/1941")  # month-first is never guessed


def test_a_local_date_file_imports(aarhus):
    result = cases_import(
        files=edited("patients.csv", "1941-04-12,2019-02-01", "12.04.1941,01-02-2019")
    )
    assert result.ok, result.problems
    assert Patient.objects.get(registry_id="AAR-H0001").date_of_birth == datetime.date(1941, 4, 12)


def test_each_bad_value_is_reported_once(aarhus):
    result = cases_import(
        files=edited("patients.csv", "AAR,female,1941-04-12", "AAR,female,born 41")
    )
    about_birth = [p for p in result.problems if p.column == "date_of_birth"]
    assert len(about_birth) == 1 and about_birth[0].rule.startswith("not a date")
    assert not any("null" in p.rule for p in result.problems)


def test_a_refused_code_lists_the_allowed_codes(aarhus):
    result = cases_import(files=edited("procedures.csv", ",vertebroplasty,", ",vertebroplastie,"))
    (problem,) = [p for p in result.problems if p.table == "procedures"]
    allowed = ", ".join(Procedure.Technique.values)
    assert problem.column == "technique" and problem.rule.endswith(f"Allowed: {allowed}.")


def test_an_unknown_etiology_imports_in_any_case_and_its_procedure_is_in_no_compared_cohort(
    aarhus,
):
    # A hospital file that says the etiology is not known at entry, in its own case.
    files = edited("levels.csv", "T12,osteoporotic,", "T12,Unknown,")
    files = [(n, c.replace(b",L2,multiple_myeloma,", b",L2,UNKNOWN,")) for n, c in files]
    result = cases_import(files=files)
    assert result.ok, result.problems
    levels = TreatedLevel.objects.filter(procedure__patient__registry_id="AAR-H0001")
    assert sorted(levels.values_list("etiology", flat=True)) == ["osteoporotic", "unknown"]
    # Unknown with osteoporotic: not silently osteoporotic. H0002's only level was the myeloma.
    cohorts = dict(Procedure.objects.values_list("patient__registry_id", "cohort"))
    assert cohorts["AAR-H0001"] == cohorts["AAR-H0002"] == "unknown"
    assert cohorts["AAR-H0003"] == "osteoporotic"


def test_codes_are_read_in_any_case_and_a_wrong_etiology_lists_unknown_among_the_allowed(aarhus):
    result = cases_import(files=edited("patients.csv", ",female,", ",Female,", count=3))
    assert result.ok, result.problems
    assert "Female" not in set(Patient.objects.values_list("sex", flat=True))
    refused = cases_import(files=edited("levels.csv", "T12,osteoporotic,", "T12,unclear,"))
    (problem,) = [p for p in refused.problems if p.table == "levels"]
    allowed = ", ".join(TreatedLevel.Etiology.values)
    assert "unknown" in allowed
    assert problem.column == "etiology" and problem.rule.endswith(f"Allowed: {allowed}.")


def test_site_codes_are_case_insensitive(aarhus):
    result = cases_import(files=edited("patients.csv", ",AAR,", ",aar,", count=10))
    assert result.ok, result.problems
    assert set(Patient.objects.values_list("site__code", flat=True)) == {"AAR"}
    assert cases_import(files=sample_files(), site_code="aar").ok


def test_a_renamed_column_gets_did_you_mean(aarhus):
    result = cases_import(files=edited("levels.csv", "cement_volume_ml", "cement_volume"))
    (problem,) = [p for p in result.problems if p.column == "cement_volume"]
    assert "did you mean cement_volume_ml?" in problem.rule


def test_identical_problems_are_grouped_with_row_ranges(aarhus, capsys):
    header = (SAMPLE / "patients.csv").read_text().splitlines()[0]
    rows = [f"AAR-H{n:04d},AAR,Kvinde,1941-04-12,2019-02-01,,,,,2,,,,,," for n in range(1, 2707)]
    rows.insert(5, "AAR-X0001,AAR,woman,1941-04-12,2019-02-01,,,,,2,,,,,,")
    content = "\n".join([header, *rows]) + "\n"
    result = cases_import(files=[("patients.csv", content.encode())])
    assert len(result.problems) == 2707
    groups = group_problems(result.problems)
    assert [str(g) for g in groups] == [
        "patients, column sex: 'Kvinde' in rows 2–6, 8–2708: Value 'Kvinde' is not a valid "
        "choice. Allowed: female, male.",
        "patients, column sex: 'woman' in row 7: Value 'woman' is not a valid choice. "
        "Allowed: female, male.",
    ]


def workbook(sheets: dict[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def sample_rows(name: str) -> list[list]:
    lines = (SAMPLE / f"{name}.csv").read_text().splitlines()
    return [line.split(",") for line in lines]


def test_extra_sheets_are_ignored_with_a_note_and_excel_float_noise_is_rounded(aarhus):
    levels = sample_rows("levels")
    volume = levels[0].index("cement_volume_ml")
    levels[1][volume] = 3.3000000000000003  # what Excel keeps of 1.1 * 3
    genant = levels[0].index("genant_grade")
    levels[1][genant] = 2.0000000000000004
    sheets = {name: sample_rows(name) for name in TABLES}
    sheets["levels"] = levels
    sheets["notes"] = [["who", "when"], ["nurse", "Monday"]]
    result = cases_import(files=[("history.xlsx", workbook(sheets))])
    assert result.ok, result.problems
    assert result.notes == ["history.xlsx: sheet 'notes' is not a registry table; it was ignored"]
    level = TreatedLevel.objects.get(
        procedure__patient__registry_id="AAR-H0001", level=TreatedLevel.Level.T12
    )
    assert (level.cement_volume_ml, level.genant_grade) == (Decimal("3.3"), 2)
    # a real extra decimal is not rounded away: it is refused
    levels[1][volume] = 3.35
    sheets["levels"] = levels
    refused = cases_import(files=[("history.xlsx", workbook(sheets))])
    assert [p.column for p in refused.problems] == ["cement_volume_ml"]


def test_the_preview_shows_old_and_new_values(aarhus, capsys):
    assert cases_import(files=sample_files()).ok
    files = edited("procedures.csv", "2019-02-04,vertebroplasty", "2019-02-04,balloon_kyphoplasty")
    result = cases_import(files=files, dry_run=True)
    assert result.tables["procedures"].changes == [
        "AAR-H0001 2019-02-04: technique 'vertebroplasty' → 'balloon_kyphoplasty'"
    ]


def test_imported_web_link_answers_keep_an_empty_entered_by(aarhus):
    manager = make_user("Registry manager", username="importer")
    files = edited("responses.csv", "2019-02-04,baseline,paper", "2019-02-04,baseline,web_link")
    assert cases_import(files=files, user=manager).ok
    answers = QuestionnaireResponse.objects.filter(procedure__patient__registry_id="AAR-H0001")
    by_timepoint = {r.timepoint: r for r in answers}
    assert by_timepoint["baseline"].entered_by is None
    assert by_timepoint["month_3"].entered_by == manager


def test_template_workbook_has_every_table_a_dictionary_and_dropdowns(aarhus, admin_client):
    book = openpyxl.load_workbook(io.BytesIO(template_workbook()))
    assert [*TABLES, "dictionary"] == [s for s in book.sheetnames if s != "lists"]
    patients = book["patients"]
    header = [c.value for c in patients[1]]
    assert header[:2] == ["registry_id", "site"]
    dropdowns = {str(v.sqref): v.formula1 for v in patients.data_validations.dataValidation}
    sex_column = openpyxl.utils.get_column_letter(header.index("sex") + 1)
    assert dropdowns[f"{sex_column}2:{sex_column}5001"] == '"female,male"'
    levels = book["levels"]
    level_column = [c.value for c in levels[1]].index("level") + 1
    letter = openpyxl.utils.get_column_letter(level_column)
    formula = next(
        v.formula1
        for v in levels.data_validations.dataValidation
        if str(v.sqref).startswith(letter + "2")
    )
    assert formula.startswith('"C2,') or formula.startswith("lists!")
    dictionary = list(book["dictionary"].values)
    assert ("patients", "sex") in {(r[0], r[1]) for r in dictionary}
    # and the template, filled in with the sample's rows, imports
    for name in TABLES:
        for row in sample_rows(name)[1:]:
            by_header = dict(zip(sample_rows(name)[0], row, strict=True))
            sheet = book[name]
            sheet.append([by_header.get(c.value, "") for c in sheet[1]])
    out = io.BytesIO()
    book.save(out)
    result = cases_import(files=[("filled.xlsx", out.getvalue())])
    assert result.ok, result.problems[:3]
    assert counts() == (3, 3, 4, 4, 1)
    page = admin_client.get("/admin/import/template.xlsx")
    assert page.status_code == 200 and page.content[:2] == b"PK"
