"""The OpenAPI schema: served with a docs page, and complete enough for schemathesis to
exercise every operation without a server error."""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from api.services import api_token_create


@pytest.fixture
def wsgi_in_the_test_transaction():
    """Requests go through the WSGI application inside the test's transaction: keep Django
    from closing the connection around each one, as its test client does."""
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def token(auditor_a):
    _instance, token = api_token_create(user=auditor_a)
    return token


# The schema as /api/schema/ serves it (drf-spectacular), generated at collection: it needs
# no database. (schemathesis' fixture-based loader does not run under pytest 9.2.)
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = get_wsgi_application()
# The SPSS and Stata files take the CSV exports' filters through the same view code; their
# bad-filter answers and files are tested in test_statexports.py (a dozen more operations
# here would add minutes to the suite for no new path).
schema = schema.exclude(path_regex=r"\.(sav|dta)$")


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,  # the same cases on every CI run; explore with more examples locally
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_holds_to_its_schema(case, registry, token, wsgi_in_the_test_transaction):
    case.call_and_validate(
        headers={"Authorization": f"Token {token}"},
        checks=[not_a_server_error, content_type_conformance, response_schema_conformance],
    )


def test_schema_and_docs_pages_are_served(client):
    schema_page = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema_page.status_code == 200
    paths = schema_page.json()["paths"]
    for path in (
        "/api/v1/procedures", "/api/v1/procedures/{id}", "/api/v1/exports/levels.csv",
        "/api/v1/exports/dictionary.csv", "/api/v1/patients/{registry_id}",
    ):  # fmt: skip
        assert path in paths
    params = {p["name"] for p in paths["/api/v1/exports/levels.csv"]["get"]["parameters"]}
    assert {"site", "cohort", "date_from", "date_to", "etiology", "updated_since"} <= params
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
    assert b"cdn." not in docs.content  # assets served here (drf-spectacular-sidecar)
