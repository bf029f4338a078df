"""Queries to sites: raised by a monitor, answered by site staff, closed or reopened by the
monitor; every step audited; open counts on the admin index and the record; read by the API."""

from __future__ import annotations

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from pghistory.models import Events
from rest_framework.test import APIClient

from api.models import ExportLog
from api.services import api_token_create
from outcomes.quality.models import DataQuery
from outcomes.quality.queries import dataquery_answer, dataquery_close, dataquery_raise
from tests.factories import make_patient, make_procedure, make_user


@pytest.fixture
def monitor_a(site_a):
    return make_user("Auditor", site_a, username="monitor.a")


@pytest.fixture
def procedure(site_a):
    return make_procedure(make_patient(site_a, registry_id="AAA-00077"), "osteoporotic")


def raise_url(record) -> str:
    content_type = ContentType.objects.get_for_model(record)
    return reverse("admin:outcomes_dataquery_raise", args=[content_type.pk, record.pk])


def detail_url(query) -> str:
    return reverse("admin:outcomes_dataquery_detail", args=[query.pk])


def test_query_is_raised_answered_and_closed_and_its_history_shows_each_step(
    client, monitor_a, staff_a, procedure
):
    client.force_login(monitor_a)
    raised = client.post(
        raise_url(procedure),
        {"field_name": "fluoroscopy_time_s", "comment": "Fluoroscopy 0 s with CT guidance?"},
    )
    assert raised.status_code == 302
    query = DataQuery.objects.get()
    assert (query.state, query.field_name, query.raised_by, query.site) == (
        "open",
        "fluoroscopy_time_s",
        monitor_a,
        procedure.patient.site,
    )

    client.force_login(staff_a)
    record_page = client.get(reverse("admin:registry_procedure_change", args=[procedure.pk]))
    assert "Queries to site (1 unresolved)" in record_page.content.decode()
    index = client.get(reverse("admin:index")).content.decode()
    assert 'class="open-queries"' in index and "1 / 0" in index
    answered = client.post(
        detail_url(query), {"action": "answer", "text": "Checked the log: 45 s, corrected."}
    )
    assert answered.status_code == 302
    query.refresh_from_db()
    assert (query.state, query.answered_by) == ("answered", staff_a)
    # site staff cannot close their own answer
    client.post(detail_url(query), {"action": "close"})
    query.refresh_from_db()
    assert query.state == "answered"

    client.force_login(monitor_a)
    client.post(detail_url(query), {"action": "close"})
    query.refresh_from_db()
    assert (query.state, query.closed_by) == ("closed", monitor_a)

    events = list(Events.objects.tracks(query).order_by("pgh_id"))
    steps = [(e.pgh_data["state"], e.pgh_context["user"]) for e in events]
    assert steps == [("open", monitor_a.pk), ("answered", staff_a.pk), ("closed", monitor_a.pk)]
    history = client.get(reverse("admin:outcomes_dataquery_history", args=[query.pk]))
    page = history.content.decode()
    assert "monitor.a" in page and "staff.a" in page


def test_a_closed_query_can_be_reopened_with_a_new_question(client, monitor_a, procedure):
    query = dataquery_raise(
        user=monitor_a, record=procedure, field_name="date", comment="Date from the OR log?"
    )
    dataquery_close(query=query, user=monitor_a)
    client.force_login(monitor_a)
    client.post(detail_url(query), {"action": "reopen", "text": "Still differs from the log."})
    query.refresh_from_db()
    assert (query.state, query.comment, query.closed_at) == (
        "open",
        "Still differs from the log.",
        None,
    )


def test_roles_and_states_are_enforced(monitor_a, staff_a, procedure):
    with pytest.raises(PermissionDenied):
        dataquery_raise(user=staff_a, record=procedure, field_name="date", comment="?")
    query = dataquery_raise(user=monitor_a, record=procedure, field_name="date", comment="?")
    with pytest.raises(PermissionDenied):
        dataquery_answer(query=query, user=monitor_a, answer="fine")
    with pytest.raises(ValidationError):
        dataquery_answer(query=query, user=staff_a, answer="   ")
    with pytest.raises(ValidationError):
        dataquery_raise(user=monitor_a, record=procedure, field_name="no_such", comment="?")
    with pytest.raises(ValidationError):
        dataquery_raise(
            user=monitor_a, record=procedure, field_name="date", comment="CPR 0101501234?"
        )
    query.refresh_from_db()
    assert query.state == "open" and DataQuery.objects.count() == 1


def test_staff_cannot_raise_and_other_sites_records_are_not_found(
    client, staff_a, monitor_a, site_b
):
    other = make_procedure(make_patient(site_b), "osteoporotic")
    client.force_login(staff_a)
    assert client.get(raise_url(other)).status_code == 403
    client.force_login(monitor_a)
    assert client.get(raise_url(other)).status_code == 404
    assert client.post(raise_url(other), {"field_name": "date", "comment": "?"}).status_code == 404
    assert DataQuery.objects.count() == 0


def test_auditors_read_queries_of_their_sites_through_the_api(monitor_a, procedure, site_b):
    mine = dataquery_raise(user=monitor_a, record=procedure, field_name="date", comment="?")
    manager = make_user("Registry manager")
    theirs = make_procedure(make_patient(site_b), "osteoporotic")
    dataquery_raise(user=manager, record=theirs, field_name="date", comment="?")
    dataquery_close(
        query=dataquery_raise(user=monitor_a, record=procedure, field_name="notes", comment="?"),
        user=monitor_a,
    )
    _instance, token = api_token_create(user=monitor_a)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")

    body = api.get("/api/v1/queries", {"state": "open"}).json()
    assert [
        (row["id"], row["site"], row["record_label"], row["state"]) for row in body["results"]
    ] == [(mine.pk, "AAA", str(procedure), "open")]
    assert body["next"] is None
    assert api.get("/api/v1/queries", {"state": "shut"}).status_code == 400
    assert api.post("/api/v1/queries", {}).status_code == 405
    log = ExportLog.objects.get(resource="queries")
    assert (log.user, log.rows, log.filters) == (monitor_a, 1, {"state": ["open"]})
