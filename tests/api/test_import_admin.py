"""The admin page that imports cases: preview with per-row problems, then confirm."""

import pytest

from registry.models import Patient, TreatedLevel
from tests.api.test_imports import BAD, SAMPLE, counts
from tests.factories import make_site, make_user

URL = "/admin/import/"


@pytest.fixture
def aarhus_staff(client, db):
    site = make_site("AAR")
    client.force_login(make_user("Site staff", site, username="staff.aar"))
    return client


def upload(client, folder, **data):
    files = [open(path, "rb") for path in sorted(folder.glob("*.csv"))]  # noqa: SIM115
    try:
        return client.post(URL, {"files": files, **data})
    finally:
        for handle in files:
            handle.close()


def test_preview_shows_what_would_be_created_and_saves_nothing_until_confirmed(aarhus_staff):
    response = upload(aarhus_staff, SAMPLE)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Preview: nothing is saved yet" in page
    tallies = {name: tally.created for name, tally in response.context["result"].tables.items()}
    assert tallies == {
        "patients": 3,
        "procedures": 3,
        "levels": 4,
        "responses": 4,
        "complications": 1,
    }
    assert counts() == (0, 0, 0, 0, 0)
    token = response.context["token"]
    response = aarhus_staff.post(URL, {"confirm": token})
    assert response.status_code == 200
    assert "Imported" in response.content.decode()
    assert counts() == (3, 3, 4, 4, 1)
    assert TreatedLevel.objects.filter(procedure__patient__registry_id="AAR-H0001").count() == 2
    # the confirmation is used up: a replayed form imports nothing more
    response = aarhus_staff.post(URL, {"confirm": token})
    assert "expired" in response.content.decode() and counts() == (3, 3, 4, 4, 1)


def test_bad_rows_are_listed_with_row_column_value_and_rule(aarhus_staff):
    response = upload(aarhus_staff, BAD)
    page = response.content.decode()
    assert "problems: nothing was saved" in page
    assert "token" not in response.context or not response.context.get("token")
    problems = {(p.table, p.row, p.column) for p in response.context["result"].problems}
    assert ("patients", 3, "sex") in problems and ("levels", 4, "level") in problems
    assert "<td>X9</td>" in page and "not a vertebral level (C2 … S1)" in page
    assert not Patient.objects.exists()


def test_auditors_cannot_import(client, db):
    client.force_login(make_user("Auditor", make_site("AAR"), username="auditor.aar"))
    assert client.get(URL).status_code == 403
    assert "Import cases" not in client.get("/admin/").content.decode()


def test_preview_of_a_procedure_without_levels_names_its_row(aarhus_staff, tmp_path):
    from tests.api.test_imports import files_with_a_procedure_without_levels

    for name, content in files_with_a_procedure_without_levels():
        (tmp_path / name).write_bytes(content)
    response = upload(aarhus_staff, tmp_path)
    assert response.status_code == 200
    page = response.content.decode()
    assert "1 problem: nothing was saved" in page and "no treated level" in page
    problems = {(p.table, p.row, p.column) for p in response.context["result"].problems}
    assert problems == {("procedures", 3, "procedure_date")}
    assert not Patient.objects.exists()
