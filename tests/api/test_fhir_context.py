"""FHIR context (timepoint, procedure, mode, who entered), Patient and Procedure resources,
the CapabilityStatement, OperationOutcome errors and Bulk Data $export, validated with
fhir.resources (R4B)."""

import json

from django.db import transaction
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient as FHIRPatient
from fhir.resources.R4B.procedure import Procedure as FHIRProcedure
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FHIRResponse
from rest_framework.test import APIClient

from api.bulk import bulk_exports_sweep
from api.models import BulkExport, ExportLog
from outcomes.models import QuestionnaireResponse
from registry.models import Site
from tests.api.conftest import token_client
from tests.factories import make_level, make_patient, make_procedure, make_response, make_user

FHIR = "/api/v1/fhir"
BASE = "https://registry.invalid/fhir"
MODELS = {
    "QuestionnaireResponse": FHIRResponse,
    "Patient": FHIRPatient,
    "Procedure": FHIRProcedure,
    "Questionnaire": Questionnaire,
}


def read(client, url: str) -> dict:
    """GET one resource as a client does: FHIR JSON, validated."""
    response = client.get(url, HTTP_ACCEPT="application/fhir+json")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    data = response.json()
    MODELS[data["resourceType"]].model_validate(data)
    return data


def extension(resource: dict, name: str) -> dict:
    return next(
        e for e in resource["extension"] if e["url"] == f"{BASE}/StructureDefinition/{name}"
    )


def test_a_client_following_references_reads_timepoint_procedure_and_answers(registry, api_a):
    """Given only a QuestionnaireResponse's id, a client that follows its references finds the
    timepoint, the procedure (technique, date, levels), the patient and the wording of the
    answer in the right instrument version."""
    month_3 = QuestionnaireResponse.objects.get(procedure=registry["osteo"], timepoint="month_3")
    qr = read(api_a, f"{FHIR}/QuestionnaireResponse/{month_3.pk}-eq5d")

    timepoint = extension(qr, "timepoint")["valueCoding"]
    assert timepoint == {
        "system": f"{BASE}/CodeSystem/timepoint",
        "code": "month_3",
        "display": "3 months",
    }
    procedure = read(api_a, f"{FHIR}/{qr['partOf'][0]['reference']}")
    assert procedure["id"] == str(registry["osteo"].pk)
    assert procedure["performedDateTime"] == "2025-03-10"
    assert procedure["code"]["coding"][0]["code"] == registry["osteo"].technique
    assert [site["text"] for site in procedure["bodySite"]] == ["T12", "L1"]
    patient = read(api_a, f"{FHIR}/{procedure['subject']['reference']}")
    assert patient == read(api_a, f"{FHIR}/{qr['subject']['reference']}")
    assert patient["identifier"][0]["value"] == registry["osteo"].patient.registry_id
    # pseudonymous: nothing but the registry id
    assert set(patient) == {"resourceType", "id", "meta", "identifier"}

    url, version = qr["questionnaire"].split("|")
    questionnaire = read(api_a, f"{FHIR}/Questionnaire/{url.rsplit('/', 1)[-1]}")
    assert questionnaire["url"] == url and questionnaire["version"] == version
    answer = next(i for i in qr["item"] if i["linkId"] == "eq5d_mobility")["answer"][0]
    options = next(i for i in questionnaire["item"] if i["linkId"] == "eq5d_mobility")
    shown = next(
        o["valueCoding"]
        for o in options["answerOption"]
        if o["valueCoding"] == {**answer["valueCoding"], "display": o["valueCoding"]["display"]}
    )
    assert shown["code"] == "2" and "slight" in shown["display"].lower()  # 5L level 2


def test_mode_and_who_entered_it_are_carried_and_web_answers_have_no_entered_by(
    registry, api_a, site_a
):
    nurse = make_user("Site staff", site_a)
    paper = make_response(registry["second"], "month_3", vas_pain=20, entered_by=nurse)
    web = make_response(registry["second"], "month_12", vas_pain=10, mode="web_link")
    paper_qr = read(api_a, f"{FHIR}/QuestionnaireResponse/{paper.pk}-vas")
    assert extension(paper_qr, "response-mode")["valueCoding"]["code"] == "paper"
    assert extension(paper_qr, "entered-by")["valueIdentifier"]["value"] == f"S{nurse.pk:05d}"
    web_qr = read(api_a, f"{FHIR}/QuestionnaireResponse/{web.pk}-vas")
    assert extension(web_qr, "response-mode")["valueCoding"]["code"] == "web_link"
    assert all(not e["url"].endswith("entered-by") for e in web_qr["extension"])
    assert web_qr["source"] == web_qr["subject"]


def test_eq5d_3l_and_5l_answers_are_coded_in_their_own_code_systems(registry, api_a):
    three = {
        o["valueCoding"]["code"]: o["valueCoding"]
        for o in read(api_a, f"{FHIR}/Questionnaire/eq-5d-3l")["item"][0]["answerOption"]
    }
    five = {
        o["valueCoding"]["code"]: o["valueCoding"]
        for o in read(api_a, f"{FHIR}/Questionnaire/eq-5d-5l")["item"][0]["answerOption"]
    }
    assert three["3"]["system"] != five["3"]["system"]
    assert "bed" in three["3"]["display"].lower()
    assert "moderate" in five["3"]["display"].lower()
    site = Site.objects.get(code="AAA")
    site.eq5d_version, site.eq5d_value_set = "3L", "DK-3L"
    site.save()
    with transaction.atomic():  # a procedure and its level commit together
        procedure = make_procedure(make_patient(site))
        make_level(procedure)
    response = make_response(procedure, "baseline", eq5d="33333")
    qr = read(api_a, f"{FHIR}/QuestionnaireResponse/{response.pk}-eq5d")
    mobility = next(i for i in qr["item"] if i["linkId"] == "eq5d_mobility")
    assert mobility["answer"][0]["valueCoding"]["system"] == three["3"]["system"]
    assert qr["questionnaire"] == f"{BASE}/Questionnaire/eq-5d-3l|3"


def test_capability_statement_validates_and_names_what_is_served(registry, client):
    response = client.get(f"{FHIR}/metadata")  # public: read before authenticating
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    resources = {r.type: r for r in statement.rest[0].resource}
    assert set(resources) == {"QuestionnaireResponse", "Questionnaire", "Patient", "Procedure"}
    assert {p.name for p in resources["QuestionnaireResponse"].searchParam} == {
        "_lastUpdated",
        "questionnaire",
        "subject",
        "part-of",
    }
    assert statement.rest[0].operation[0].name == "export"


def outcome(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/fhir+json"), response["Content-Type"]
    data = response.json()
    OperationOutcome.model_validate(data)
    return data["issue"][0]


def test_every_error_is_an_operation_outcome_in_fhir_json(registry, api_a, site_a):
    qr_url = f"{FHIR}/QuestionnaireResponse"
    assert outcome(APIClient().get(qr_url), 401)["code"] == "login"
    staff = token_client(make_user("Site staff", site_a, username="staff"))
    nobody_user = make_user("Auditor", site_a, username="norole")
    nobody_user.groups.clear()  # a user without any role
    assert outcome(token_client(nobody_user).get(qr_url), 403)["code"] == "forbidden"
    assert outcome(api_a.get(f"{qr_url}/999999-vas"), 404)["code"] == "not-found"
    assert outcome(api_a.get(f"{qr_url}/garbage"), 404)["code"] == "not-found"
    assert outcome(api_a.get(f"{FHIR}/Observation"), 404)["code"] == "not-found"
    other = registry["other_site"]
    assert outcome(api_a.get(f"{FHIR}/Procedure/{other.pk}"), 404)["code"] == "not-found"
    assert outcome(api_a.get(f"{FHIR}/Patient/{other.patient.registry_id}"), 404)
    assert outcome(api_a.post(qr_url, {}), 405)["code"] == "not-supported"
    assert outcome(api_a.get(qr_url, HTTP_ACCEPT="application/fhir+xml"), 406)
    assert outcome(api_a.get(qr_url, {"_format": "xml"}), 406)["code"] == "not-supported"
    assert outcome(api_a.get(qr_url, {"_format": "application/fhir+xml"}), 406)
    assert outcome(api_a.get(qr_url, {"_count": "many"}), 400)["code"] == "invalid"
    assert staff.get(qr_url).status_code == 200  # site staff may read answers
    assert api_a.get(qr_url, {"_format": "json"}).status_code == 200


def test_unknown_search_parameters_are_refused_unless_the_client_asks_leniency(registry, api_a):
    url = f"{FHIR}/QuestionnaireResponse"
    refused = outcome(api_a.get(url, {"status": "completed"}), 400)
    assert "status" in refused["diagnostics"]
    lenient = api_a.get(url, {"status": "completed", "_count": 2}, HTTP_PREFER="handling=lenient")
    assert lenient.status_code == 200
    data = lenient.json()
    self_link = next(link["url"] for link in data["link"] if link["relation"] == "self")
    next_link = next(link["url"] for link in data["link"] if link["relation"] == "next")
    assert "status" not in self_link and "status" not in next_link and "_count=2" in self_link
    assert len(data["entry"]) == 2


def test_search_patients_and_procedures_of_the_callers_sites(registry, api_a):
    patients = api_a.get(f"{FHIR}/Patient", {"_count": 2}).json()
    assert len(patients["entry"]) == 2
    rest = api_a.get(next(lk["url"] for lk in patients["link"] if lk["relation"] == "next"))
    ids = [e["resource"]["id"] for e in patients["entry"] + rest.json()["entry"]]
    expected = sorted(registry[k].patient.registry_id for k in ("osteo", "second", "myeloma"))
    assert ids == expected
    procedures = api_a.get(
        f"{FHIR}/Procedure", {"subject": f"Patient/{registry['myeloma'].patient.registry_id}"}
    ).json()
    assert [e["resource"]["id"] for e in procedures["entry"]] == [str(registry["myeloma"].pk)]
    for entry in procedures["entry"]:
        FHIRProcedure.model_validate(entry["resource"])
    part_of = api_a.get(
        f"{FHIR}/QuestionnaireResponse", {"part-of": f"Procedure/{registry['second'].pk}"}
    ).json()
    assert [e["resource"]["id"].split("-")[1] for e in part_of["entry"]] == ["vas"]


def test_bulk_export_round_kick_off_status_download(registry, api_a, site_b):
    # kick-off, as the Bulk Data Access IG asks
    kick_off = api_a.get(
        f"{FHIR}/$export",
        {"_type": "QuestionnaireResponse,Patient,Procedure"},
        HTTP_ACCEPT="application/fhir+json",
        HTTP_PREFER="respond-async",
    )
    assert kick_off.status_code == 202, kick_off.content
    status_url = kick_off["Content-Location"]
    pending = api_a.get(status_url)
    assert pending.status_code == 202 and pending["Retry-After"] and pending["X-Progress"]
    # someone else may not see it
    auditor_b = token_client(make_user("Auditor", site_b, username="auditor.b"))
    assert outcome(auditor_b.get(status_url), 404)

    assert bulk_exports_sweep() == 1  # the worker (or the periodic sweep) runs it
    assert bulk_exports_sweep() == 0  # and only once
    done = api_a.get(status_url)
    assert done.status_code == 200 and done["Content-Type"].startswith("application/json")
    manifest = done.json()
    assert manifest["requiresAccessToken"] is True and manifest["transactionTime"]
    assert manifest["request"].endswith("_type=QuestionnaireResponse%2CPatient%2CProcedure")
    by_type: dict[str, list[dict]] = {}
    for output in manifest["output"]:
        file = api_a.get(output["url"], HTTP_ACCEPT="application/fhir+ndjson")
        assert file.status_code == 200 and file["Content-Type"] == "application/fhir+ndjson"
        lines = file.content.decode().splitlines()
        assert len(lines) == output["count"]
        for line in lines:
            resource = json.loads(line)
            assert resource["resourceType"] == output["type"]
            MODELS[output["type"]].model_validate(resource)
            by_type.setdefault(output["type"], []).append(resource)
    searched = api_a.get(f"{FHIR}/QuestionnaireResponse", {"_count": 1000}).json()
    assert [r["id"] for r in by_type["QuestionnaireResponse"]] == [
        e["resource"]["id"] for e in searched["entry"]
    ]
    assert {r["id"] for r in by_type["Patient"]} == {
        registry[k].patient.registry_id for k in ("osteo", "second", "myeloma")
    }
    assert {r["id"] for r in by_type["Procedure"]} == {
        str(registry[k].pk) for k in ("osteo", "second", "myeloma")
    }
    # every reference in the export resolves inside the export
    ids = {(t, r["id"]) for t, rs in by_type.items() for r in rs}
    for qr in by_type["QuestionnaireResponse"]:
        assert tuple(qr["partOf"][0]["reference"].split("/")) in ids
        assert tuple(qr["subject"]["reference"].split("/")) in ids
    assert ExportLog.objects.filter(resource__startswith="fhir/$export/").count() == 3

    # the client deletes it when done: status and files are gone
    assert api_a.delete(status_url).status_code == 202
    assert outcome(api_a.get(status_url), 404)
    assert outcome(api_a.get(manifest["output"][0]["url"]), 404)
    assert not BulkExport.objects.exists()


def test_bulk_export_refuses_what_the_ig_refuses(registry, api_a):
    url = f"{FHIR}/$export"
    assert "respond-async" in outcome(api_a.get(url), 400)["diagnostics"]
    assert outcome(api_a.get(url, {"_type": "Observation"}, HTTP_PREFER="respond-async"), 400)
    assert outcome(api_a.get(url, {"_outputFormat": "text/csv"}, HTTP_PREFER="respond-async"), 400)
    assert outcome(api_a.get(url, {"_since": "yesterday"}, HTTP_PREFER="respond-async"), 400)
    assert not BulkExport.objects.exists()


def test_bulk_export_since_leaves_out_older_resources(registry, api_a):
    kick_off = api_a.get(
        f"{FHIR}/$export",
        {"_type": "Patient", "_since": "2999-01-01T00:00:00Z"},
        HTTP_PREFER="respond-async",
    )
    assert kick_off.status_code == 202
    bulk_exports_sweep()
    manifest = api_a.get(kick_off["Content-Location"]).json()
    assert manifest["output"] == []
