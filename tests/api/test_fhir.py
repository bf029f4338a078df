"""FHIR R4 Questionnaire and QuestionnaireResponse, validated with fhir.resources (R4B)."""

import datetime
import json

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse as FHIRResponse

from api.models import ExportLog
from outcomes.models import QuestionnaireResponse
from tests.api.conftest import token_client
from tests.factories import make_user


def get_bundle(client, url, **params) -> dict:
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/fhir+json")
    data = response.json()
    Bundle.model_validate(data)
    for entry in data["entry"]:
        model = (
            Questionnaire if entry["resource"]["resourceType"] == "Questionnaire" else FHIRResponse
        )
        model.model_validate(entry["resource"])
    return data


def test_questionnaires_validate_and_cover_vas_eq5d_3l_5l_and_odi(registry, api_a):
    data = get_bundle(api_a, "/api/v1/fhir/Questionnaire")
    by_id = {e["resource"]["id"]: e["resource"] for e in data["entry"]}
    assert set(by_id) == {"pain-vas", "eq-5d-3l", "eq-5d-5l", "odi"}
    mobility = by_id["eq-5d-5l"]["item"][0]
    assert mobility["linkId"] == "eq5d_mobility" and len(mobility["answerOption"]) == 5
    assert len(by_id["eq-5d-3l"]["item"][0]["answerOption"]) == 3
    odi_sections = [i for i in by_id["odi"]["item"] if i["type"] == "choice"]
    assert len(odi_sections) == 10 and len(odi_sections[0]["answerOption"]) == 6


LOINC = "http://loinc.org"


def loinc_codes(questionnaire: dict) -> set[tuple[str, str]]:
    """Every LOINC coding in a Questionnaire as (where, code): ``Questionnaire`` for its own
    code, the item's linkId for an item's, ``<linkId> answer`` for an answer option's."""
    found = {
        ("Questionnaire", c["code"]) for c in questionnaire.get("code", []) if c["system"] == LOINC
    }
    for item in questionnaire["item"]:
        found |= {(item["linkId"], c["code"]) for c in item.get("code", []) if c["system"] == LOINC}
        found |= {
            (f"{item['linkId']} answer", option["valueCoding"]["code"])
            for option in item.get("answerOption", [])
            if option["valueCoding"]["system"] == LOINC
        }
    return found


def test_loinc_codes_are_exactly_the_verified_ones_on_the_odi(registry, api_a):
    data = get_bundle(api_a, "/api/v1/fhir/Questionnaire")
    by_id = {e["resource"]["id"]: e["resource"] for e in data["entry"]}
    assert {name: loinc_codes(q) for name, q in by_id.items()} == {
        "pain-vas": set(),
        "eq-5d-3l": set(),
        "eq-5d-5l": set(),
        "odi": {("Questionnaire", "97908-8"), ("odi_score", "97909-6")},
    }
    odi = Questionnaire.model_validate(by_id["odi"])
    assert [(c.system, c.code, c.display) for c in odi.code] == [
        (LOINC, "97908-8", "Oswestry Disability Index")
    ]
    items = {item.linkId: item for item in odi.item}
    assert [(c.system, c.code, c.display) for c in items["odi_score"].code] == [
        (LOINC, "97909-6", "Oswestry disability index score ODI")
    ]
    assert items["odi_pain_intensity"].code is None and items["odi_travelling"].code is None
    assert "Regenstrief" in odi.copyright


def test_questionnaires_without_a_verified_loinc_code_carry_no_code_at_all(registry, api_a):
    data = get_bundle(api_a, "/api/v1/fhir/Questionnaire")
    by_id = {e["resource"]["id"]: e["resource"] for e in data["entry"]}
    for name in ("pain-vas", "eq-5d-3l", "eq-5d-5l"):
        questionnaire = by_id[name]
        assert "code" not in questionnaire and "copyright" not in questionnaire
        assert [i["linkId"] for i in questionnaire["item"] if "code" in i] == []
        assert "loinc" not in json.dumps(questionnaire).lower()
    vas_item = by_id["pain-vas"]["item"][0]
    assert vas_item["linkId"] == "vas_pain" and "code" not in vas_item
    eq5d_5l = {i["linkId"]: i for i in by_id["eq-5d-5l"]["item"]}
    assert "code" not in eq5d_5l["eq5d_mobility"] and "code" not in eq5d_5l["eq_vas"]
    assert {o["valueCoding"]["system"] for o in eq5d_5l["eq5d_mobility"]["answerOption"]} == {
        "https://registry.invalid/fhir/CodeSystem/registry-items/eq-5d-5l/eq5d_mobility"
    }


def test_responses_keep_link_ids_that_lead_to_the_coded_questionnaire_items(registry, api_a):
    questionnaires = {
        e["resource"]["url"]: e["resource"]
        for e in get_bundle(api_a, "/api/v1/fhir/Questionnaire")["entry"]
    }
    responses = [
        e["resource"] for e in get_bundle(api_a, "/api/v1/fhir/QuestionnaireResponse")["entry"]
    ]
    for response in responses:
        url, version = response["questionnaire"].split("|")
        assert version == questionnaires[url]["version"]
        items = {i["linkId"] for i in questionnaires[url]["item"]}
        assert {i["linkId"] for i in response["item"]} <= items
        assert all("code" not in i for i in response["item"])
    baseline = QuestionnaireResponse.objects.get(procedure=registry["osteo"], timepoint="baseline")
    odi = next(r for r in responses if r["id"] == f"{baseline.pk}-odi")
    score = next(i for i in odi["item"] if i["linkId"] == "odi_score")
    question = next(
        i
        for i in questionnaires[odi["questionnaire"].split("|")[0]]["item"]
        if i["linkId"] == "odi_score"
    )
    assert score["answer"] == [{"valueDecimal": 80.0}]
    assert question["code"][0]["code"] == "97909-6"


def test_every_response_becomes_valid_questionnaire_responses_of_the_callers_sites(registry, api_a):
    data = get_bundle(api_a, "/api/v1/fhir/QuestionnaireResponse")
    resources = [e["resource"] for e in data["entry"]]
    stored = QuestionnaireResponse.objects.filter(procedure__patient__site__code="AAA")
    assert {r["id"].split("-")[0] for r in resources} == {
        str(pk) for pk in stored.values_list("pk", flat=True)
    }
    osteo = registry["osteo"].patient.registry_id
    baseline = stored.get(procedure=registry["osteo"], timepoint="baseline")
    eq5d = next(r for r in resources if r["id"] == f"{baseline.pk}-eq5d")
    assert eq5d["subject"]["reference"] == f"Patient/{osteo}"
    assert eq5d["questionnaire"].endswith("/Questionnaire/eq-5d-5l|3")
    answers = {i["linkId"]: i["answer"][0] for i in eq5d["item"]}
    assert answers["eq5d_mobility"]["valueCoding"]["code"] == "3"
    assert answers["eq5d_index"]["valueDecimal"] == float(baseline.eq5d_index)
    odi = next(r for r in resources if r["id"] == f"{baseline.pk}-odi")
    assert {i["linkId"]: i["answer"][0] for i in odi["item"]}["odi_score"]["valueDecimal"] == 80.0
    assert "name" not in str(resources) and "Ann Secret" not in str(resources)
    log = ExportLog.objects.get(resource="fhir/QuestionnaireResponse")
    assert log.rows == len(resources)


def test_filters_and_paging(registry, api_a):
    osteo = registry["osteo"].patient.registry_id
    data = get_bundle(
        api_a,
        "/api/v1/fhir/QuestionnaireResponse",
        subject=f"Patient/{osteo}",
        questionnaire="pain-vas",
    )
    assert sorted(e["resource"]["item"][0]["answer"][0]["valueInteger"] for e in data["entry"]) == [
        30,
        80,
    ]
    pages, url, params = [], "/api/v1/fhir/QuestionnaireResponse", {"_count": 1}
    while url:
        page = get_bundle(api_a, url, **params)
        pages.append(page)
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        params = {}
    ids = [e["resource"]["id"] for p in pages for e in p["entry"]]
    everything = get_bundle(api_a, "/api/v1/fhir/QuestionnaireResponse")
    # _count counts resources (a response gives one per instrument), not stored rows
    assert [len(p["entry"]) for p in pages] == [1] * 8
    assert ids == [e["resource"]["id"] for e in everything["entry"]] and len(ids) == 8
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    assert (
        get_bundle(
            api_a, url or "/api/v1/fhir/QuestionnaireResponse", _lastUpdated=f"ge{tomorrow}"
        )["entry"]
        == []
    )
    assert len(
        get_bundle(api_a, "/api/v1/fhir/QuestionnaireResponse", _lastUpdated=f"lt{tomorrow}")[
            "entry"
        ]
    ) == len(ids)


def test_bad_search_is_a_400_operation_outcome_and_no_token_is_401(registry, api_a, client):
    response = api_a.get("/api/v1/fhir/QuestionnaireResponse", {"_lastUpdated": "yesterday"})
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert (
        api_a.get("/api/v1/fhir/QuestionnaireResponse", {"questionnaire": "sf-36"}).status_code
        == 400
    )
    assert client.get("/api/v1/fhir/QuestionnaireResponse").status_code == 401


def test_other_sites_responses_are_not_served(registry, site_b):
    auditor_b = token_client(make_user("Auditor", site_b, username="auditor.b"))
    data = get_bundle(auditor_b, "/api/v1/fhir/QuestionnaireResponse")
    subjects = {e["resource"]["subject"]["reference"] for e in data["entry"]}
    assert subjects == {f"Patient/{registry['other_site'].patient.registry_id}"}
