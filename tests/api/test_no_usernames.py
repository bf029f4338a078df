"""Staff appear in the API and the exports only as staff codes (``S00042``), never as
usernames (usually a person's name). The attack: an auditor reading ``/api/v1/queries``
saw ``raised_by: nurse.aar``. The test gives every user a distinctive username, has them
raise, answer and close queries and enter answers, then reads every list the API serves
and every export, and looks for any username."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from django.db.models import CharField, Value
from django.db.models.functions import Cast, Concat

from outcomes.models import QuestionnaireResponse
from outcomes.quality.queries import dataquery_answer, dataquery_close, dataquery_raise
from tests.api.conftest import token_client
from tests.api.test_export_session_renewal import export_urls
from tests.factories import make_user
from tests.registry.test_second_factor_gate import staff_urls


def test_no_api_response_or_export_holds_a_username(registry, site_a, manager):
    nurse = make_user("Site staff", site_a, username="nurse.aar")
    monitor = make_user("Registry manager", username="monitor.x")
    procedure = registry["osteo"]
    query = dataquery_raise(user=monitor, record=procedure.patient, field_name="karnofsky",
                            comment="70 or 80?")  # fmt: skip
    dataquery_answer(query=query, user=nurse, answer="Checked: 70.")
    dataquery_close(query=query, user=monitor)
    QuestionnaireResponse.objects.filter(procedure=procedure).update(entered_by=nurse)
    users = get_user_model().objects
    users.update(username=Concat(Value("zq-user-"), Cast("id", CharField()), Value("-qz")))
    usernames = list(users.values_list("username", flat=True))
    client = token_client(manager)

    lists = [url for url in staff_urls() if url.startswith("/api/v1/") and "/1" not in url]
    lists = [url for url in lists if not re.search(r"/x(/|$)", url)]
    texts = {}
    for url in [*lists, *export_urls()]:
        if not url.startswith("/api/"):
            continue
        page = client.get(url)  # read whole before the next request: a stream holds the
        body = b"".join(page.streaming_content) if page.streaming else page.content  # connection
        if page.status_code == 200:
            texts[url] = body.decode("utf-8", "replace")
    assert len(texts) >= 15
    assert "/api/v1/queries" in texts and "/api/v1/responses" in texts
    for url, text in texts.items():
        for username in usernames:
            assert username not in text, (url, username)
    queries = client.get("/api/v1/queries").json()["results"]
    (row,) = queries
    assert (row["raised_by"], row["answered_by"], row["closed_by"]) == (
        f"S{monitor.pk:05d}",
        f"S{nurse.pk:05d}",
        f"S{monitor.pk:05d}",
    )
    entered = {r["entered_by"] for r in client.get("/api/v1/responses").json()["results"]}
    assert f"S{nurse.pk:05d}" in entered
