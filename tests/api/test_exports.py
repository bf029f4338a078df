"""Streaming CSV exports, the data dictionary, and the export log."""

import csv
import io

import pytest
from django.db import transaction
from django.urls import reverse

from api.exports import CHUNK_BYTES
from api.models import ExportLog
from outcomes.models import QuestionnaireResponse
from registry.models import Procedure, TreatedLevel, procedure_cohort
from tests.api.conftest import DAY
from tests.factories import (
    make_level,
    make_patient,
    make_procedure,
    make_procedure_without_levels,
    make_response,
)


def read_csv(client, url, **params) -> list[dict]:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/csv")
    content = response.streaming_content if response.streaming else [response.content]
    body = b"".join(content).decode()
    return list(csv.DictReader(io.StringIO(body)))


def test_levels_csv_has_one_row_per_level_of_the_callers_sites(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/levels.csv")
    expected = TreatedLevel.objects.filter(procedure__patient__site__code="AAA")
    assert len(rows) == expected.count() == 4
    assert len({row["level_id"] for row in rows}) == len(rows)  # no duplicates
    leaking = next(row for row in rows if row["cement_leakage"] == "true")
    osteo = registry["osteo"]
    assert leaking == leaking | {
        "procedure_id": str(osteo.pk),
        "registry_id": osteo.patient.registry_id,
        "site": "AAA",
        "sex": "male",
        "age_at_procedure": "84",
        "procedure_date": "2025-03-10",
        "cohort": "osteoporotic",
        "technique": "vertebroplasty",
        "level": "T12",
        "etiology": "osteoporotic",
        "cement_volume_ml": "4.5",
        "leakage_sites": "paravertebral",
        "leakage_detected_by": "ct",
    }
    myeloma = next(row for row in rows if row["procedure_id"] == str(registry["myeloma"].pk))
    assert (myeloma["cohort"], myeloma["date_of_death"]) == ("pathologic", "2025-06-18")


def test_exports_take_the_list_filters(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/levels.csv", cohort="pathologic")
    assert [row["registry_id"] for row in rows] == [registry["myeloma"].patient.registry_id]
    rows = read_csv(api_a, "/api/v1/exports/responses.csv", timepoint="month_3")
    assert [(row["registry_id"], row["vas_pain"]) for row in rows] == [
        (registry["osteo"].patient.registry_id, "30")
    ]
    rows = read_csv(api_a, "/api/v1/exports/procedures.csv", date_from="2025-04-01")
    assert [row["procedure_id"] for row in rows] == [str(registry["second"].pk)]
    rows = read_csv(api_a, "/api/v1/exports/procedures.csv", cohort="pathologic")
    assert [row["procedure_id"] for row in rows] == [str(registry["myeloma"].pk)]


def test_exports_work_with_debug_on_as_in_the_demo(registry, api_a, settings):
    settings.DEBUG = True  # Django then wraps cursors in its debug wrapper
    rows = read_csv(api_a, "/api/v1/exports/levels.csv", cohort="pathologic")
    assert [row["registry_id"] for row in rows] == [registry["myeloma"].patient.registry_id]


def test_a_bad_export_filter_is_a_400_and_logs_nothing(registry, api_a):
    response = api_a.get("/api/v1/exports/levels.csv", {"date_to": "yesterday"})
    assert response.status_code == 400
    assert "date_to" in response.content.decode()
    assert not ExportLog.objects.filter(kind="export").exists()


def test_responses_csv_has_one_row_per_patient_and_timepoint(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/responses.csv")
    stored = QuestionnaireResponse.objects.filter(procedure__patient__site__code="AAA")
    assert len(rows) == stored.count() == 4
    keys = {(row["registry_id"], row["timepoint"]) for row in rows}
    assert len(keys) == len(rows)
    month_3 = next(row for row in rows if row["timepoint"] == "month_3")
    response = stored.get(timepoint="month_3")
    assert month_3["eq5d_mobility"] == "2"
    assert month_3["eq5d_index"] == str(response.eq5d_index)
    assert month_3["odi_score"] == "20.0"
    assert month_3["days_after_procedure"] == "0"


def test_procedures_csv_is_wide_with_scores_per_timepoint(registry, api_a):
    rows = {row["procedure_id"]: row for row in read_csv(api_a, "/api/v1/exports/procedures.csv")}
    assert len(rows) == Procedure.objects.filter(patient__site__code="AAA").count() == 3
    osteo = rows[str(registry["osteo"].pk)]
    assert osteo["levels_treated"] == "2"
    assert osteo["levels"] == "T12;L1"
    assert osteo["levels_with_leakage"] == "1"
    assert osteo["complication"] == "true"
    assert (osteo["vas_pain_baseline"], osteo["vas_pain_month_3"]) == ("80", "30")
    assert osteo["vas_pain_month_12"] == ""
    assert osteo["odi_score_month_3"] == "20.0"
    assert rows[str(registry["second"].pk)]["complication"] == "false"


def test_export_row_count_equals_the_database_across_many_chunks(registry, api_a, site_a):
    for _ in range(60):
        procedure = make_procedure(make_patient(site_a), "osteoporotic", date=DAY)
        for level in range(TreatedLevel.Level.T1, TreatedLevel.Level.T11):
            make_level(procedure, level=level)
    response = api_a.get("/api/v1/exports/levels.csv")
    chunks = list(response.streaming_content)
    assert len(chunks) > 1  # streamed, not built in memory
    assert all(len(chunk) < 2 * CHUNK_BYTES for chunk in chunks)
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    count = TreatedLevel.objects.filter(procedure__patient__site=site_a).count()
    assert len(rows) == len({row["level_id"] for row in rows}) == count > 600
    log = ExportLog.objects.get(resource="levels.csv")
    assert (log.rows, log.completed) == (count, True)


def test_dictionary_covers_every_exported_column(registry, api_a):
    dictionary = read_csv(api_a, "/api/v1/exports/dictionary.csv")
    described = {(row["file"], row["column"]) for row in dictionary}
    for name in ("levels.csv", "responses.csv", "procedures.csv"):
        response = api_a.get(f"/api/v1/exports/{name}")
        header = next(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
        assert {(name, column) for column in header} == {d for d in described if d[0] == name}
    assert all(row["label"] and row["type"] for row in dictionary)
    by_column = {(row["file"], row["column"]): row for row in dictionary}
    volume = by_column[("levels.csv", "cement_volume_ml")]
    assert (volume["label"], volume["type"], volume["unit"]) == ("Cement volume", "decimal", "mL")
    assert "osteoporotic = Osteoporotic" in by_column[("levels.csv", "etiology")]["allowed"]
    # An etiology not known at entry, and the cohort it leaves its procedure in (design §7).
    assert "unknown = Unknown" in by_column[("levels.csv", "etiology")]["allowed"]
    for name in ("levels.csv", "procedures.csv"):
        assert "unknown = Unknown etiology" in by_column[(name, "cohort")]["allowed"]
    assert by_column[("levels.csv", "cement_leakage")]["type"] == "boolean (true, false)"
    assert by_column[("procedures.csv", "vas_pain_month_3")]["unit"] == "0–100 mm"


def test_every_export_and_read_is_logged(registry, api_a, auditor_a):
    read_csv(api_a, "/api/v1/exports/levels.csv", cohort="osteoporotic", site="AAA")
    api_a.get("/api/v1/procedures", {"page_size": 2, "etiology": "osteoporotic"})
    api_a.get(f"/api/v1/procedures/{registry['osteo'].pk}")
    export, page, detail = ExportLog.objects.order_by("started_at", "id")
    assert (export.user, export.kind, export.resource) == (auditor_a, "export", "levels.csv")
    assert export.filters == {"cohort": ["osteoporotic"], "site": ["AAA"]}
    assert (export.rows, export.completed) == (3, True)
    assert export.finished_at >= export.started_at
    assert (page.kind, page.resource, page.rows) == ("read", "procedures", 2)
    assert page.filters == {"page_size": ["2"], "etiology": ["osteoporotic"]}
    assert (detail.resource, detail.rows, detail.filters) == (
        "procedures", 1, {"id": [str(registry["osteo"].pk)]},
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)  # autocommit, as in production: the COPY is cancelled
def test_an_export_cut_off_midway_is_logged_as_incomplete(registry, api_a, site_a):
    for _ in range(40):
        with transaction.atomic():  # a procedure and its levels commit together
            procedure = make_procedure(make_patient(site_a), date=DAY)
            for level in range(TreatedLevel.Level.T1, TreatedLevel.Level.L5):
                make_level(procedure, level=level)
    response = api_a.get("/api/v1/exports/levels.csv")
    next(iter(response.streaming_content))
    response.close()  # the client went away
    log = ExportLog.objects.get(resource="levels.csv")
    assert log.completed is False
    assert 0 < log.rows < TreatedLevel.objects.count()
    assert log.finished_at is not None
    assert Procedure.objects.count() == 44  # the connection still works


@pytest.mark.parametrize("user_fixture, status", [("manager", 200), ("staff_a", 403)])
def test_managers_see_the_export_log_in_the_admin(
    registry, api_a, client, request, user_fixture, status
):
    read_csv(api_a, "/api/v1/exports/levels.csv")
    client.force_login(request.getfixturevalue(user_fixture))
    page = client.get(reverse("admin:api_exportlog_changelist"))
    assert page.status_code == status
    if status == 200:
        assert "levels.csv" in page.content.decode()
        assert "auditor.a" in page.content.decode()


def test_export_cohorts_follow_the_rule_on_all_levels_of_the_procedure(registry, api_a, site_a):
    mixed = make_procedure(make_patient(site_a), "osteoporotic", "metastasis", date=DAY)
    other = make_procedure(make_patient(site_a), "osteoporotic", "haemangioma", date=DAY)
    bare = make_procedure_without_levels(make_patient(site_a), date=DAY)
    make_response(bare, "baseline", vas_pain=50)
    expected = dict(Procedure.objects.values_list("pk", "cohort"))
    assert (expected[mixed.pk], expected[other.pk], expected[bare.pk]) == (
        "pathologic", "other", "other",
    )  # fmt: skip
    for row in read_csv(api_a, "/api/v1/exports/levels.csv"):
        assert row["cohort"] == expected[int(row["procedure_id"])]
    # filtered to its osteoporotic level, the mixed procedure is still pathologic
    rows = read_csv(api_a, "/api/v1/exports/levels.csv", etiology="osteoporotic")
    assert {r["cohort"] for r in rows if r["procedure_id"] == str(mixed.pk)} == {"pathologic"}
    for row in read_csv(api_a, "/api/v1/exports/responses.csv"):
        assert row["cohort"] == expected[int(row["procedure_id"])]
    for row in read_csv(api_a, "/api/v1/exports/procedures.csv"):
        assert row["cohort"] == expected[int(row["procedure_id"])]


# design.md §7 written out by hand, independently of the code under test: every combination
# of the eight etiologies. A row is the set of non-malignant etiologies (osteoporotic,
# haemangioma, traumatic, other, unknown; "." where absent); its cells the expected cohort
# with no malignant level, then with each set of malignant ones (metastasis M, multiple
# myeloma Y, lymphoma / leukaemia L). No level at all: "other".
COHORT_TRUTH = """
osteo haem trau othr unkn | none         | M    Y    L    MY   ML   YL   MYL
.     .    .    .    .    | other        | path path path path path path path
osteo .    .    .    .    | osteoporotic | path path path path path path path
.     haem .    .    .    | other        | path path path path path path path
osteo haem .    .    .    | other        | path path path path path path path
.     .    trau .    .    | other        | path path path path path path path
osteo .    trau .    .    | other        | path path path path path path path
.     haem trau .    .    | other        | path path path path path path path
osteo haem trau .    .    | other        | path path path path path path path
.     .    .    othr .    | other        | path path path path path path path
osteo .    .    othr .    | other        | path path path path path path path
.     haem .    othr .    | other        | path path path path path path path
osteo haem .    othr .    | other        | path path path path path path path
.     .    trau othr .    | other        | path path path path path path path
osteo .    trau othr .    | other        | path path path path path path path
.     haem trau othr .    | other        | path path path path path path path
osteo haem trau othr .    | other        | path path path path path path path
.     .    .    .    unkn | unknown      | path path path path path path path
osteo .    .    .    unkn | unknown      | path path path path path path path
.     haem .    .    unkn | unknown      | path path path path path path path
osteo haem .    .    unkn | unknown      | path path path path path path path
.     .    trau .    unkn | unknown      | path path path path path path path
osteo .    trau .    unkn | unknown      | path path path path path path path
.     haem trau .    unkn | unknown      | path path path path path path path
osteo haem trau .    unkn | unknown      | path path path path path path path
.     .    .    othr unkn | unknown      | path path path path path path path
osteo .    .    othr unkn | unknown      | path path path path path path path
.     haem .    othr unkn | unknown      | path path path path path path path
osteo haem .    othr unkn | unknown      | path path path path path path path
.     .    trau othr unkn | unknown      | path path path path path path path
osteo .    trau othr unkn | unknown      | path path path path path path path
.     haem trau othr unkn | unknown      | path path path path path path path
osteo haem trau othr unkn | unknown      | path path path path path path path
"""
_ROW_CODES = {
    "osteo": "osteoporotic", "haem": "haemangioma", "trau": "traumatic", "othr": "other",
    "unkn": "unknown",
}  # fmt: skip
_COLUMN_CODES = {"M": "metastasis", "Y": "multiple_myeloma", "L": "lymphoma_leukaemia"}


def _cohort_truth_table() -> dict[frozenset[str], str]:
    lines = COHORT_TRUTH.strip().splitlines()
    header = lines[0].split("|")[2].split()
    truth = {}
    for line in lines[1:]:
        row, first, rest = (part.split() for part in line.split("|"))
        benign = frozenset(_ROW_CODES[code] for code in row if code != ".")
        truth[benign] = first[0]
        for column, cell in zip(header, rest, strict=True):
            malignant = frozenset(_COLUMN_CODES[letter] for letter in column)
            truth[benign | malignant] = {"path": "pathologic"}[cell]
    return truth


def test_one_cohort_rule_agrees_everywhere_on_every_combination_of_etiologies(api_a, site_a):
    table = _cohort_truth_table()
    # The table covers every combination of the model's etiologies, and nothing else.
    etiologies = [e.value for e in TreatedLevel.Etiology]
    combinations = [
        frozenset(e for bit, e in enumerate(etiologies) if mask >> bit & 1)
        for mask in range(2 ** len(etiologies))
    ]
    assert len(etiologies) == 8
    assert set(table) == set(combinations)
    truth = {}
    for combination in combinations:
        if combination:
            procedure = make_procedure(
                make_patient(site_a), *sorted(combination), date=DAY,
                first_level=TreatedLevel.Level.T5,
            )  # fmt: skip
        else:  # as rows written before the database required a level
            procedure = make_procedure_without_levels(make_patient(site_a), date=DAY)
        truth[procedure.pk] = table[combination]
    assert len(truth) == 256
    assert set(truth.values()) == {"pathologic", "osteoporotic", "other", "unknown"}

    # The rule itself, and the cohort its triggers stored (registry.derived).
    annotated = dict(Procedure.objects.annotate(rule=procedure_cohort()).values_list("pk", "rule"))
    assert annotated == truth
    assert dict(Procedure.objects.values_list("pk", "cohort")) == truth
    partitions = {
        "pathologic": set(Procedure.objects.pathologic().values_list("pk", flat=True)),
        "osteoporotic": set(Procedure.objects.osteoporotic().values_list("pk", flat=True)),
        "other": set(Procedure.objects.other().values_list("pk", flat=True)),
        "unknown": set(Procedure.objects.unknown().values_list("pk", flat=True)),
    }
    assert partitions == {c: {pk for pk, t in truth.items() if t == c} for c in partitions}
    procedures = read_csv(api_a, "/api/v1/exports/procedures.csv")
    assert {int(r["procedure_id"]): r["cohort"] for r in procedures} == truth
    levels = read_csv(api_a, "/api/v1/exports/levels.csv")
    assert len(levels) == sum(len(c) for c in combinations)
    assert all(r["cohort"] == truth[int(r["procedure_id"])] for r in levels)
    api_levels, page = [], api_a.get("/api/v1/levels", {"page_size": 1000}).json()
    while True:  # 1,024 levels: more than one page
        api_levels += page["results"]
        if not page["next"]:
            break
        page = api_a.get(page["next"]).json()
    assert len(api_levels) == len(levels)
    assert all(r["cohort"] == truth[r["procedure"]] for r in api_levels)
