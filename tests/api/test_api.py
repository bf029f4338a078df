"""The read API: payloads, filters, paging, tokens and scope."""

import datetime

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from api.models import ExportLog
from outcomes.models import FollowUp, QuestionnaireResponse
from registry.models import Complication, Procedure, TreatedLevel
from tests.api.conftest import DAY, token_client
from tests.factories import (
    make_complication,
    make_level,
    make_patient,
    make_procedure,
    make_response,
    make_user,
)

LISTS = [
    "/api/v1/patients",
    "/api/v1/procedures",
    "/api/v1/levels",
    "/api/v1/complications",
    "/api/v1/followups",
    "/api/v1/responses",
]
EXPORTS = [
    "/api/v1/exports/levels.csv",
    "/api/v1/exports/responses.csv",
    "/api/v1/exports/procedures.csv",
]
ROUTES = [*LISTS, *EXPORTS, "/api/v1/exports/dictionary.csv", "/api/v1/reports/cohorts"]


def results(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- access -------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ROUTES)
def test_requests_without_a_token_get_401(registry, url):
    response = APIClient().get(url)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not ExportLog.objects.exists()


@pytest.mark.parametrize("url", ROUTES)
def test_a_wrong_token_gets_401(registry, url):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 64)
    assert client.get(url).status_code == 401


def test_revoked_token_is_refused(registry, auditor_a, api_a):
    assert api_a.get("/api/v1/procedures").status_code == 200
    call_command("revoke_api_tokens", "auditor.a")
    assert not AuthToken.objects.filter(user=auditor_a).exists()
    assert api_a.get("/api/v1/procedures").status_code == 401


def test_expired_token_is_refused(registry, auditor_a, api_a):
    AuthToken.objects.filter(user=auditor_a).update(
        expiry=timezone.now() - datetime.timedelta(seconds=1)
    )
    assert api_a.get("/api/v1/procedures").status_code == 401


def test_token_from_the_command_line_works_and_only_its_digest_is_stored(
    registry, auditor_a, capsys
):
    call_command("create_api_token", "auditor.a")
    token = capsys.readouterr().out.strip()
    assert len(token) >= 64
    stored = AuthToken.objects.get(user=auditor_a)
    assert token not in (stored.digest, stored.token_key)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM knox_authtoken WHERE row_to_json(knox_authtoken)::text LIKE %s",
            [f"%{token}%"],
        )
        assert cursor.fetchone()[0] == 0
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    ids = {p["registry_id"] for p in results(client, "/api/v1/patients")}
    assert ids == {registry[name].patient.registry_id for name in ("osteo", "second", "myeloma")}


@pytest.mark.parametrize("command", ["create_api_token", "revoke_api_tokens"])
def test_token_commands_refuse_an_unknown_user(db, command):
    with pytest.raises(CommandError, match="No user called 'nobody'"):
        call_command(command, "nobody")


def test_a_user_without_a_role_is_refused(registry, site_a):
    user = make_user("Site staff", site_a, username="no.role")
    user.groups.clear()
    assert token_client(user).get("/api/v1/procedures").status_code == 403


def test_the_api_is_read_only(registry, api_a):
    procedure = registry["osteo"]
    assert api_a.post("/api/v1/procedures", {}).status_code == 405
    assert api_a.delete(f"/api/v1/procedures/{procedure.pk}").status_code == 405
    assert Procedure.objects.filter(pk=procedure.pk).exists()


# --- the other site: refused or filtered on every route -----------------------------------


@pytest.mark.parametrize("url", LISTS)
def test_other_sites_rows_never_appear_in_lists(registry, api_a, url):
    rows = results(api_a, url, page_size=1000)
    assert rows, "site A has rows on every route"
    sites = {row["site"] for row in rows}
    assert sites == {"AAA"}
    text = api_a.get(url, {"page_size": 1000}).content.decode()
    assert registry["other_site"].patient.registry_id not in text


@pytest.mark.parametrize("url", LISTS)
def test_asking_for_the_other_site_by_filter_gives_nothing(registry, api_a, url):
    assert results(api_a, url, site="BBB") == []


def _other_site_ids(registry) -> dict[str, object]:
    procedure = registry["other_site"]
    return {
        "/api/v1/patients": procedure.patient.registry_id,
        "/api/v1/procedures": procedure.pk,
        "/api/v1/levels": procedure.levels.get().pk,
        "/api/v1/complications": Complication.objects.get(procedure=procedure).pk,
        "/api/v1/followups": FollowUp.objects.filter(procedure=procedure).first().pk,
        "/api/v1/responses": QuestionnaireResponse.objects.get(procedure=procedure).pk,
    }


@pytest.mark.parametrize("url", LISTS)
def test_other_sites_objects_are_404(registry, api_a, url):
    other = _other_site_ids(registry)[url]
    assert api_a.get(f"{url}/{other}").status_code == 404
    b_staff = token_client(make_user("Site staff", registry["other_site"].patient.site))
    assert b_staff.get(f"{url}/{other}").status_code == 200


@pytest.mark.parametrize("url", EXPORTS)
def test_other_sites_rows_never_appear_in_exports(registry, api_a, url):
    response = api_a.get(url)
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode()
    assert "AAA" in body
    assert "BBB" not in body
    assert registry["other_site"].patient.registry_id not in body


def test_a_manager_sees_every_site(registry, manager):
    sites = {row["site"] for row in results(token_client(manager), "/api/v1/patients")}
    assert sites == {"AAA", "BBB"}


# --- payloads -----------------------------------------------------------------------------


def test_patients_are_pseudonymised(registry, api_a):
    rows = {row["registry_id"]: row for row in results(api_a, "/api/v1/patients")}
    osteo = rows[registry["osteo"].patient.registry_id]
    assert osteo["age_at_index"] == 84  # born 1940-06-01, index procedure 2025-03-10
    assert osteo["sex"] == "male"
    assert osteo["index_cohort"] == "osteoporotic"
    assert osteo["vital_status"] == "alive"
    myeloma = rows[registry["myeloma"].patient.registry_id]
    assert myeloma["vital_status"] == "deceased"
    assert myeloma["index_cohort"] == "pathologic"
    assert myeloma["date_of_death"] == "2025-06-18"
    text = api_a.get("/api/v1/patients").content.decode()
    for secret in ("date_of_birth", "1940-06-01", "Ann Secret", "ann.secret", "email", "phone"):
        assert secret not in text


def test_procedures_nest_their_levels(registry, api_a):
    procedure = registry["osteo"]
    row = api_a.get(f"/api/v1/procedures/{procedure.pk}").json()
    assert row["patient"] == procedure.patient.registry_id
    assert row["cohort"] == "osteoporotic"
    assert row["age_at_procedure"] == 84
    assert [(lv["level"], lv["cement_leakage"]) for lv in row["levels"]] == [
        ("T12", True),
        ("L1", False),
    ]
    assert row["levels"][0]["leakage_sites"] == ["paravertebral"]
    assert row["levels"][0]["cement_volume_ml"] == 4.5
    assert "notes" not in row


def test_levels_carry_their_procedure_and_cohort(registry, api_a):
    rows = results(api_a, "/api/v1/levels")
    myeloma = [row for row in rows if row["procedure"] == registry["myeloma"].pk]
    assert [(r["level"], r["etiology"], r["cohort"]) for r in myeloma] == [
        ("T12", "multiple_myeloma", "pathologic")
    ]
    assert len(rows) == TreatedLevel.objects.filter(procedure__patient__site__code="AAA").count()


def test_responses_have_answers_and_scores(registry, api_a):
    rows = results(api_a, "/api/v1/responses", timepoint="month_3")
    (row,) = rows
    stored = QuestionnaireResponse.objects.get(pk=row["id"])
    assert row["patient"] == registry["osteo"].patient.registry_id
    assert row["vas_pain"] == 30
    assert row["eq5d_mobility"] == 2
    assert row["eq5d_index"] == float(stored.eq5d_index)
    assert row["odi_score"] == float(stored.odi_score) == 20.0
    assert row["entered_by"] is None


def test_followups_never_show_link_secrets(registry, api_a):
    text = api_a.get("/api/v1/followups").content.decode()
    assert "link_token_hash" not in text
    assert "link_nonce" not in text
    assert "phone_note" not in text
    timepoints = {row["timepoint"] for row in results(api_a, "/api/v1/followups")}
    assert timepoints == {"baseline", "post_op", "month_3", "month_12"}


def test_complications_have_their_grade_and_no_description(registry, api_a):
    (row,) = results(api_a, "/api/v1/complications")
    assert row["cirse_grade"] == 3
    assert row["procedure"] == registry["osteo"].pk
    assert "description" not in row


# --- filters --------------------------------------------------------------------------------


def registry_ids(client, url="/api/v1/procedures", **params):
    return sorted(row["patient"] for row in results(client, url, **params))


def test_filters_by_cohort_etiology_and_dates(registry, api_a):
    osteo, second, myeloma = (
        registry[k].patient.registry_id for k in ("osteo", "second", "myeloma")
    )
    assert registry_ids(api_a, cohort="pathologic") == [myeloma]
    assert registry_ids(api_a, cohort="osteoporotic") == sorted([osteo, second])
    assert registry_ids(api_a, etiology="multiple_myeloma") == [myeloma]
    assert registry_ids(api_a, date_from="2025-04-01") == [second]
    assert registry_ids(api_a, date_to="2025-04-01") == sorted([osteo, myeloma])
    assert registry_ids(api_a, "/api/v1/levels", cohort="pathologic") == [myeloma]
    assert registry_ids(api_a, "/api/v1/responses", timepoint="month_3") == [osteo]
    assert len(registry_ids(api_a, "/api/v1/followups", cohort="pathologic")) == 4


def test_a_bad_filter_value_is_a_clear_400(registry, api_a):
    response = api_a.get("/api/v1/procedures", {"date_from": "10/03/2025"})
    assert response.status_code == 400
    assert "date_from" in response.json()
    response = api_a.get("/api/v1/levels", {"cohort": "tumour"})
    assert response.status_code == 400
    assert "cohort" in response.json()


def test_updated_since_returns_only_rows_changed_since(registry, api_a):
    since = timezone.now()
    assert results(api_a, "/api/v1/procedures", updated_since=since.isoformat()) == []
    level = registry["second"].levels.get()
    level.genant_grade = 2
    level.save()
    rows = results(api_a, "/api/v1/procedures", updated_since=since.isoformat())
    assert [row["id"] for row in rows] == [registry["second"].pk]  # a nested level changed
    rows = results(api_a, "/api/v1/levels", updated_since=since.isoformat())
    assert [row["id"] for row in rows] == [level.pk]
    assert results(api_a, "/api/v1/patients", updated_since=since.isoformat()) == []


# --- paging -----------------------------------------------------------------------------------


def test_cursor_pages_return_every_row_once_without_counting(registry, api_a, site_a):
    for _ in range(5):
        make_procedure(make_patient(site_a), "osteoporotic", date=DAY)
    expected = set(Procedure.objects.filter(patient__site=site_a).values_list("pk", flat=True))
    seen, url, pages = [], "/api/v1/procedures?page_size=3", 0
    with CaptureQueriesContext(connection) as queries:
        while url:
            page = api_a.get(url).json()
            seen += [row["id"] for row in page["results"]]
            url, pages = page["next"], pages + 1
    assert sorted(seen) == sorted(expected)  # each once, none missing
    assert pages == 3
    assert "count" not in page
    assert not [q for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize("url", LISTS)
def test_queries_per_page_do_not_grow_with_the_page(registry, api_a, site_a, url):
    def queries_for(page_size: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = api_a.get(url, {"page_size": page_size})
        assert len(response.json()["results"]) == min(page_size, total)
        return len(queries)

    for _ in range(6):
        procedure = make_procedure(make_patient(site_a), "osteoporotic", "metastasis", date=DAY)
        make_level(procedure, level=TreatedLevel.Level.L2)
    for procedure in Procedure.objects.filter(patient__site=site_a):
        make_complication(procedure)
        if not procedure.responses.filter(timepoint="month_12").exists():
            make_response(procedure, "month_12", vas_pain=10)
    total = len(results(api_a, url, page_size=1000))
    assert total >= 9
    assert queries_for(2) == queries_for(9)


@pytest.mark.parametrize("url", ["/api/v1/procedures", "/api/v1/exports/levels.csv"])
def test_updated_since_with_an_unusual_offset_is_answered(registry, api_a, url):
    # ISO 8601 allows +20:27; PostgreSQL does not (found by schemathesis)
    response = api_a.get(url, {"updated_since": "2020-07-09T22:19:18+20:27"})
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"AAA" in body


@pytest.mark.parametrize("url", ["/api/v1/procedures", "/api/v1/exports/levels.csv"])
def test_a_nul_character_in_an_unknown_parameter_is_a_400_not_a_500(registry, api_a, url):
    # jsonb refuses \u0000 (found by schemathesis): refused before the view, nothing logged
    response = api_a.get(f"{url}?note%00=a%00b")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]
    assert not ExportLog.objects.exists()


def test_a_nul_character_in_a_filter_value_is_a_400(registry, api_a):
    assert api_a.get("/api/v1/procedures?site=AA%00A").status_code == 400
