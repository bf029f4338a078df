"""What every generated cohort must satisfy: every export in every format and every report
view answers without a server error, each file parses back with its own reader with the
CSV's row count, and the CSV exports survive an import into an empty registry unchanged."""

from __future__ import annotations

import csv
import io
from contextlib import contextmanager

import docx
import pandas as pd
import pyreadstat
from django.core.cache import cache
from django.db import transaction
from django.db.models import F
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FHIRResponse

from api.exports import EXPORTS
from api.imports import cases_import
from outcomes.models import FollowUp, QuestionnaireResponse
from registry.models import Complication, Patient, PatientContact, Procedure, TreatedLevel
from tests.properties.cohorts import CohortPlan

TABLES = ["patients", "procedures", "levels", "responses", "complications"]
ID_COLUMNS = {"level_id", "procedure_id", "response_id", "complication_id"}
REPORT = "/admin/reports/cohorts/"


class _Undo(Exception):
    pass


@contextmanager
def rolled_back():
    """Run the body in a savepoint that is always rolled back: each example starts from the
    same empty registry. The rate limits are counted afresh for each example too."""
    cache.clear()
    try:
        with transaction.atomic():
            yield
            raise _Undo
    except _Undo:
        pass


def body(response) -> bytes:
    assert response.status_code < 500, response.status_code
    assert response.status_code == 200, (response.status_code, response.content[:300])
    return b"".join(response.streaming_content) if response.streaming else response.content


def csv_rows(data: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(data.decode())))


def check_exports(api, plan: CohortPlan, tmp_path) -> dict[str, int]:
    """Every export as CSV, SPSS and Stata: the same rows; the counts the plan implies."""
    counts = {}
    for name in EXPORTS:
        stem = name.removesuffix(".csv")
        rows = csv_rows(body(api.get(f"/api/v1/exports/{name}")))
        sav_path, dta_path = tmp_path / f"{stem}.sav", tmp_path / f"{stem}.dta"
        sav_path.write_bytes(body(api.get(f"/api/v1/exports/{stem}.sav")))
        dta_path.write_bytes(body(api.get(f"/api/v1/exports/{stem}.dta")))
        sav, _meta = pyreadstat.read_sav(sav_path)
        dta, _meta = pyreadstat.read_dta(dta_path)
        assert len(sav) == len(dta) == len(pd.read_stata(dta_path)) == len(rows), stem
        counts[stem] = len(rows)
    with_procedure = sum(1 for p in plan.patients if p.procedures)
    expected = {
        "patients": plan.patient_count,
        "procedures": plan.procedures,
        "levels": plan.levels,
        "responses": sum(q.baseline for p in plan.patients for q in p.procedures),
        "complications": sum(q.complication for p in plan.patients for q in p.procedures),
        "analysis": with_procedure,
        # One row per follow-up; long: those of each patient's index (first) procedure.
        "followups": FollowUp.objects.count(),
        "long": FollowUp.objects.filter(procedure=F("procedure__patient__index_procedure")).count(),
    }
    assert counts == expected
    dictionary = csv_rows(body(api.get("/api/v1/exports/dictionary.csv")))
    assert {row["file"] for row in dictionary} >= set(EXPORTS)
    return counts


def check_fhir(api, counts: dict[str, int]) -> None:
    for path, model in (
        ("/api/v1/fhir/Questionnaire", Questionnaire),
        ("/api/v1/fhir/QuestionnaireResponse", FHIRResponse),
    ):
        data = body(api.get(path))
        bundle = Bundle.model_validate_json(data)
        for entry in bundle.entry or []:
            model.model_validate(entry.resource.model_dump())
    bundle = Bundle.model_validate_json(body(api.get("/api/v1/fhir/QuestionnaireResponse")))
    subjects = {entry.resource.subject.reference for entry in bundle.entry or []}
    # Every response of the responses file is there, for the patients that answered.
    assert len(subjects) <= counts["patients"]
    assert bool(bundle.entry) == bool(counts["responses"])


def check_reports(staff, api) -> None:
    """The cohort report page, its patients view, each download, and the API's report."""
    page = staff.get(REPORT)
    body(page)
    cells = [key for table in page.context["tables"] for key in table["links"].values()]
    for cell in cells[:3]:
        body(staff.get(REPORT + "patients/", {"cell": cell}))
    formatted = body(staff.get(REPORT, {"format": "csv"})).decode()
    assert list(csv.reader(io.StringIO(formatted)))
    tidy = list(csv.reader(io.StringIO(body(staff.get(REPORT, {"format": "tidy"})).decode())))
    assert tidy[0][:2] == ["table", "row"] and len(tidy) > 1
    markdown = body(staff.get(REPORT, {"format": "md"})).decode()
    assert markdown.startswith("# Cohort report")
    document = docx.Document(io.BytesIO(body(staff.get(REPORT, {"format": "docx"}))))
    assert len(document.tables) == len(page.context["tables"])
    assert api.get("/api/v1/reports/cohorts").status_code == 200


def export_all(api) -> dict[str, str]:
    return {t: body(api.get(f"/api/v1/exports/{t}.csv")).decode() for t in TABLES}


def without_ids(text: str) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    keep = [i for i, name in enumerate(rows[0]) if name not in ID_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def check_round_trip(api) -> None:
    """Export, empty the registry (the sites stay), import the files, export again: the
    same files but for the database ids."""
    first = export_all(api)
    QuestionnaireResponse.objects.all().delete()
    Complication.objects.all().delete()
    FollowUp.objects.all().delete()
    TreatedLevel.objects.all().delete()
    Procedure.objects.all().delete()
    PatientContact.objects.all().delete()
    Patient.objects.all().delete()
    result = cases_import(files=[(f"{t}.csv", first[t].encode()) for t in TABLES])
    assert result.ok, [str(p) for p in result.problems[:5]]
    second = export_all(api)
    for table in TABLES:
        assert without_ids(second[table]) == without_ids(first[table]), table
