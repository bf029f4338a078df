"""Staff are never named in the API or the exports: ``entered_by`` is a pseudonymous staff
code and ``operator`` (free text) is left out; the data dictionary says so."""

from __future__ import annotations

import csv
import io

from outcomes.models import QuestionnaireResponse
from registry.models import Procedure
from tests.factories import make_user


def test_responses_name_the_staff_who_entered_them_by_code_only(registry, api_a, site_a):
    nurse = make_user("Site staff", site_a, username="nurse.named", first_name="Karen")
    QuestionnaireResponse.objects.filter(procedure=registry["osteo"]).update(entered_by=nurse)
    Procedure.objects.filter(pk=registry["osteo"].pk).update(operator="Dr Jens Hansen")

    rows = api_a.get("/api/v1/responses", {"page_size": 100}).json()["results"]
    codes = {row["entered_by"] for row in rows if row["procedure"] == registry["osteo"].pk}
    assert codes == {f"S{nurse.pk:05d}"}
    assert {row["entered_by"] for row in rows if row["procedure"] != registry["osteo"].pk} == {None}
    procedure = api_a.get(f"/api/v1/procedures/{registry['osteo'].pk}").json()
    assert "operator" not in procedure

    export = b"".join(api_a.get("/api/v1/exports/responses.csv").streaming_content).decode()
    exported = list(csv.DictReader(io.StringIO(export)))
    assert {
        r["entered_by"] for r in exported if r["procedure_id"] == str(registry["osteo"].pk)
    } == {f"S{nurse.pk:05d}"}
    everything = export + str(rows) + str(procedure)
    for name in ("nurse.named", "Karen", "Jens Hansen"):
        assert name not in everything
    procedures = b"".join(api_a.get("/api/v1/exports/procedures.csv").streaming_content)
    assert b"Jens Hansen" not in procedures


def test_the_dictionary_describes_the_staff_code(api_a):
    dictionary = api_a.get("/api/v1/exports/dictionary.csv").content.decode()
    (row,) = [r for r in csv.DictReader(io.StringIO(dictionary)) if r["column"] == "entered_by"]
    assert row["file"] == "responses.csv"
    assert "pseudonymous" in row["label"]
    assert "S00042" in row["allowed"]
    assert "operator" not in {r["column"] for r in csv.DictReader(io.StringIO(dictionary))}
