"""The OpenAPI schema: served behind a login with a docs page, and complete enough for
schemathesis to exercise every operation against a live server, with every check on, without
a server error or a conformance failure."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import quote

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.db import connection
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks

from api.services import api_token_create
from tests.services import scaled, wait_for

load_all_checks()
ALL_CHECKS = CHECKS.get_all()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    host = quote(db["HOST"] or "127.0.0.1", safe="")  # the embedded server's is a socket path
    password = quote(db["PASSWORD"] or "", safe="")
    return f"postgres://{db['USER']}:{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def live_server_url(django_db_setup, django_db_blocker):
    """The registry served by its own process with the real settings (DEBUG off, the real
    throttling, error pages and middleware) over the test database, for the whole module.
    Rates are raised only so that the run itself is not throttled."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    port = _free_port()
    log_path = django_settings.VAR_DIR / "schemathesis-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "0",  # plain HTTP on loopback
        "API_THROTTLE_RATE": "100000/min",
        "API_THROTTLE_ANON_RATE": "100000/min",
    }
    with open(log_path, "w") as log:
        server = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=django_settings.BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"

        def answers() -> bool:
            try:
                urllib.request.urlopen(f"{base}/api/v1/levels", timeout=scaled(5))  # noqa: S310
            except urllib.error.HTTPError:
                return True  # it answers (401 without a token)
            except OSError:
                assert server.poll() is None, f"the server stopped: see {log_path}"
                return False
            return True

        try:
            wait_for(answers, timeout=60, interval=0.2, what=f"runserver to answer at {base}")
            yield base
        finally:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def live_registry(live_server_url, registry):
    """The live server over the test registry (committed), and a token that reads it all.

    A superuser rather than a role: the role groups come from data migrations, and an earlier
    transactional test's flush has emptied them (scoping is tested in test_api.py)."""
    user = get_user_model().objects.create_superuser("schema.reader", password=None)
    _instance, token = api_token_create(user=user)
    return live_server_url, token


# The schema as /api/schema/ serves it (drf-spectacular), generated at collection: it needs
# no database. (schemathesis' fixture-based loader does not run under pytest 9.2.)
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
# The SPSS and Stata files take the CSV exports' filters through the same view code; their
# bad-filter answers and files are tested in test_statexports.py (a dozen more operations
# here would add minutes to the suite for no new path).
schema = schema.exclude(path_regex=r"\.(sav|dta)$")


@pytest.mark.django_db(transaction=True)  # committed, so the server process sees the rows
@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,  # the same cases on every CI run; explore with more examples locally
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_every_operation_holds_to_its_schema_on_a_live_server(case, live_registry):
    base, token = live_registry
    case.call_and_validate(
        base_url=base, headers={"Authorization": f"Token {token}"}, checks=ALL_CHECKS
    )


def test_schema_and_docs_pages_are_served_after_login(client, manager):
    client.force_login(manager)
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


def test_the_schema_says_what_the_api_refuses():
    """schemathesis found the API refusing (400) what its schema allowed: a NUL character in
    any parameter, an empty list item (``?site=AAA,``); and a staff code null where the schema
    said string. The schema now says so, and its patterns match the middleware's refusal."""
    import re

    generated = SchemaGenerator().get_schema(request=None, public=True)
    checked = 0
    for path, item in generated["paths"].items():
        for parameter in item["get"].get("parameters", []):
            if parameter["in"] not in ("query", "path"):
                continue
            schema = parameter["schema"]
            for value_schema in (schema, schema.get("items")):
                if not value_schema or value_schema.get("type") != "string":
                    continue
                if "enum" in value_schema:
                    assert all("\x00" not in value for value in value_schema["enum"])
                    continue
                pattern = re.compile(value_schema["pattern"])
                assert pattern.search("AAA\x00") is None, (path, parameter["name"])
                assert pattern.search("AAA") is not None, (path, parameter["name"])
                checked += 1
            if schema.get("type") == "array":
                assert (schema["minItems"], schema["items"]["minLength"]) == (1, 1), path
    assert checked > 50
    queries = generated["components"]["schemas"]["DataQuery"]["properties"]
    for field in ("answered_by", "closed_by"):
        assert queries[field]["nullable"] is True
    levels = generated["paths"]["/api/v1/exports/levels.csv"]["get"]
    formats = {p["name"]: p["schema"] for p in levels["parameters"]}["format"]
    assert formats["enum"] == ["csv", "json"]
    assert {"401", "429"} <= set(levels["responses"])
