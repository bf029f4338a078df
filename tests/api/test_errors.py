"""Requests that used to be server errors answer a clear 4xx (JSON on the API); empty
filters are refused; schema and docs need a login; API requests are throttled."""

from __future__ import annotations

import base64

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.models import ExportLog
from outcomes.questionnaire.views import CONTENT_SECURITY_POLICY
from registry.models import Patient
from tests.api.conftest import token_client

LISTS = ["patients", "procedures", "levels", "complications", "followups", "responses"]
EXPORTS = ["levels.csv", "responses.csv", "procedures.csv"]


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


@pytest.mark.parametrize("resource", LISTS)
def test_a_cursor_whose_position_is_not_a_number_is_a_404(registry, api_a, resource):
    cursor = base64.b64encode(b"p=abc").decode()  # cD1hYmM=

    response = api_a.get(f"/api/v1/{resource}", {"cursor": cursor})

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


def test_a_cursor_from_the_api_itself_still_pages(registry, api_a):
    first = api_a.get("/api/v1/procedures", {"page_size": 1}).json()
    second = api_a.get(first["next"]).json()
    assert [p["id"] for p in second["results"]] != [p["id"] for p in first["results"]]


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-23:00"])
@pytest.mark.parametrize(
    "path", [*(f"/api/v1/{r}" for r in LISTS), *(f"/api/v1/exports/{e}" for e in EXPORTS)]
)
def test_updated_since_at_the_edges_of_the_calendar_is_a_400_naming_it(
    registry, api_a, path, moment
):
    response = api_a.get(path, {"updated_since": moment}, HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json() == {
        "updated_since": ["This time is outside the calendar once converted to UTC."]
    }
    assert not ExportLog.objects.exists()


@pytest.mark.parametrize("parameter", ["updated_since", "cohort", "site", "date_from", "etiology"])
@pytest.mark.parametrize("path", ["/api/v1/procedures", "/api/v1/exports/levels.csv"])
def test_an_empty_filter_is_refused_not_ignored(registry, api_a, path, parameter):
    response = api_a.get(f"{path}?{parameter}=", HTTP_ACCEPT="application/json")

    assert response.status_code == 400
    assert response.json() == {
        parameter: ["This parameter is empty: give a value or leave it out."]
    }


def test_a_nul_byte_in_a_path_id_is_a_json_400(registry, api_a):
    response = api_a.get("/api/v1/patients/AAR%00")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "NUL" in response.json()["detail"]


def test_a_nul_byte_in_the_admin_autocomplete_term_is_a_400(client, staff_a):
    client.force_login(staff_a)
    url = "/admin/autocomplete/?app_label=registry&model_name=procedure&field_name=patient"

    response = client.get(url + "&term=AA%00")

    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    # without the NUL the same look-up answers
    assert client.get(url + "&term=AA").status_code == 200


def test_options_on_the_docs_is_a_405_not_a_500(client, manager):
    client.force_login(manager)
    assert client.options("/api/docs/").status_code == 405
    assert client.options("/api/schema/").status_code == 405


def test_more_than_a_thousand_query_parameters_is_a_json_400(registry, api_a, settings):
    settings.DEBUG = False
    query = "&".join(f"p{i}=1" for i in range(1001))

    response = api_a.get(f"/api/v1/procedures?{query}")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "too many parameters" in response.json()["detail"]


def test_an_unknown_api_url_is_a_json_404(api_a):
    response = api_a.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


@pytest.mark.parametrize("path", ["/q/abc%2Fdef%2Fghi/", "/q/abc%2Fdef/x/y/", "/q/a/b/c/d/"])
def test_a_link_with_an_encoded_slash_gets_the_neutral_page_and_headers(db, client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert response["Referrer-Policy"] == "no-referrer"
    assert "no-store" in response["Cache-Control"]
    neutral = client.get("/q/" + "x" * 43 + "/")
    assert response.content == neutral.content


# --- schema and docs behind login -------------------------------------------------------------


def test_schema_and_docs_need_a_login(client, api_a):
    assert APIClient().get("/api/schema/").status_code == 401
    docs = client.get("/api/docs/")
    assert docs.status_code == 302
    assert docs["Location"].startswith("/admin/login/")
    assert api_a.get("/api/schema/").status_code == 200


def test_the_schema_documents_the_error_answers(api_a):
    schema = api_a.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/api/v1/procedures"]["get"]
    assert {"400", "401", "403", "404", "429"} <= set(operation["responses"])
    export = schema["paths"]["/api/v1/exports/levels.csv"]["get"]
    assert set(export["responses"]["400"]["content"]) == {"application/json", "text/csv"}


# --- throttling -------------------------------------------------------------------------------


@pytest.fixture
def low_rates(settings):
    cache.clear()
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {"token": "3/min", "anon": "2/min"}
    settings.REST_FRAMEWORK = rest
    yield
    cache.clear()


def test_requests_are_throttled_per_token(registry, auditor_a, low_rates):
    first, second = token_client(auditor_a), token_client(auditor_a)

    assert [first.get("/api/v1/levels").status_code for _ in range(3)] == [200, 200, 200]
    throttled = first.get("/api/v1/levels")
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    # another token of the same user has its own allowance
    assert second.get("/api/v1/levels").status_code == 200


def test_requests_without_valid_credentials_are_throttled_per_address(registry, low_rates):
    anonymous = APIClient()
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Token " + "x" * 64)

    statuses = [
        anonymous.get("/api/v1/levels").status_code,
        wrong.get("/api/v1/levels").status_code,
    ]
    assert statuses == [401, 401]
    assert wrong.get("/api/v1/levels").status_code == 429
    assert anonymous.get("/api/v1/levels").status_code == 429


def test_behind_the_proxy_the_anonymous_limit_counts_each_client(registry, low_rates, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.5"]
    stranger = APIClient(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="203.0.113.9")
    other = APIClient(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="198.51.100.7")

    assert [stranger.get("/api/v1/levels").status_code for _ in range(3)] == [401, 401, 429]
    assert other.get("/api/v1/levels").status_code == 401  # its own allowance


def test_new_tokens_live_ninety_days_by_default(auditor_a):
    from api.services import api_token_create

    instance, _token = api_token_create(user=auditor_a)
    lifetime = instance.expiry - instance.created
    assert round(lifetime.total_seconds() / 86400) == 90


@pytest.mark.parametrize("page_size", ["abc", "0", "1.5", "1001", "-3"])
def test_a_page_size_outside_1_to_1000_is_a_400_not_ignored(registry, api_a, page_size):
    response = api_a.get("/api/v1/procedures", {"page_size": page_size})

    assert response.status_code == 400
    assert response.json() == {"page_size": ["A whole number from 1 to 1000."]}


def test_an_empty_item_in_the_site_list_is_refused(registry, api_a):
    response = api_a.get("/api/v1/procedures?site=AAA,,BBB")

    assert response.status_code == 400
    assert response.json() == {"site": ["An empty item in the list: e.g. AAR,ODE."]}


# --- Bad input refused by one middleware on every URL (issue 25) ---------------------------


def test_a_nul_byte_in_a_fhir_subject_is_a_json_400(registry, api_a):
    response = api_a.get("/api/v1/fhir/QuestionnaireResponse?subject=Patient/%00")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    # without the NUL the same search answers
    assert api_a.get("/api/v1/fhir/QuestionnaireResponse?subject=Patient/X").status_code == 200


@pytest.mark.parametrize(
    "url",
    [
        "/admin/registry/patient/?q=A%00",
        "/admin/registry/patient/%00/change/",
        "/staff/?x=%00",
        "/q/abc%00/",
        "/healthz?x=%00",
    ],
)
def test_a_nul_byte_anywhere_in_a_url_is_a_400(client, staff_a, url):
    client.force_login(staff_a)
    response = client.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_a_nul_byte_in_a_form_body_is_a_400_and_saves_nothing(client, staff_a, site_a):
    client.force_login(staff_a)
    response = client.post(
        "/admin/registry/patient/add/",
        {"site": site_a.pk, "sex": "female", "date_of_birth": "1950-01-01", "operator": "a\x00b"},
    )
    assert response.status_code == 400
    assert "NUL" in response.content.decode()
    assert not Patient.objects.exists()


def test_a_nul_byte_in_a_multipart_field_is_a_400_but_a_binary_upload_is_not(client, staff_a):
    import io

    client.force_login(staff_a)
    response = client.post("/admin/import/", {"site": "A\x00"})
    assert response.status_code == 400
    upload = io.BytesIO(b"registry_id,sex\nAAR-0001,fe\x00male\n")
    upload.name = "patients.csv"
    response = client.post("/admin/import/", {"files": [upload]})
    assert response.status_code == 200  # the import names the file's NUL itself


def test_a_nul_byte_in_a_json_body_is_a_json_400(registry, api_a):
    response = api_a.post(
        "/api/v1/procedures", data='{"notes": "a\\u0000b"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


@pytest.mark.parametrize("year", ["99999", "0", "-1", "1e5", "²", "9" * 5000])
def test_an_impossible_year_on_the_patient_list_is_a_400(client, staff_a, year):
    client.force_login(staff_a)
    for key in ("index_date__year", "date_of_birth__year__gte"):
        response = client.get("/admin/registry/patient/", {key: year})
        assert response.status_code == 400, (key, year)
        assert "year" in response.content.decode()


def test_a_possible_year_on_the_patient_list_filters(client, staff_a, site_a):
    import datetime

    from tests.factories import make_patient

    make_patient(site_a, registry_id="AAR-YEAR1", date_of_birth=datetime.date(1950, 1, 1))
    client.force_login(staff_a)
    response = client.get("/admin/registry/patient/", {"date_of_birth__year": "1950"})
    assert response.status_code == 200 and "AAR-YEAR1" in response.content.decode()
    response = client.get("/admin/registry/patient/", {"date_of_birth__year": "9999"})
    assert response.status_code == 200 and "AAR-YEAR1" not in response.content.decode()


def test_a_malformed_multipart_body_is_a_400(client, staff_a):
    client.force_login(staff_a)
    response = client.generic(
        "POST",
        "/admin/import/",
        b'--x\r\nContent-Disposition: form-data; name="site"\r\n\r\nA',
        content_type="multipart/form-data; boundary=",
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/fhir/Procedure/%C2%B2",  # ² passes str.isdigit, not int()
        "/api/v1/fhir/QuestionnaireResponse/%C2%B2-odi",
    ],
)
def test_a_unicode_digit_as_an_id_is_not_found_not_a_500(registry, api_a, url):
    """schemathesis sent ``/fhir/Procedure/²``: a 500 until ids were read as ASCII digits."""
    response = api_a.get(url)
    assert response.status_code == 404, (url, response.status_code)
