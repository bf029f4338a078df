"""Queries where the nurse works: the record page's "Open queries" panel with the answer in
place, and the queries panel on the patient change page."""

import pytest
from django.urls import reverse

from outcomes.quality.models import DataQuery
from outcomes.quality.queries import dataquery_raise
from tests.factories import make_patient, make_procedure, make_user


@pytest.fixture
def queried(site_a, manager):
    patient = make_patient(site_a)
    procedure = make_procedure(patient, "osteoporotic")
    on_patient = dataquery_raise(
        user=manager, record=patient, field_name="karnofsky", comment="Karnofsky 30 or 70?"
    )
    on_procedure = dataquery_raise(
        user=manager, record=procedure, field_name="date", comment="Date before admission?"
    )
    return patient, on_patient, on_procedure


def test_record_lists_open_queries_on_the_patient_and_its_procedure(client_a, queried):
    patient, on_patient, on_procedure = queried
    page = client_a.get(reverse("staff_record", args=[patient.registry_id]))
    html = page.content.decode()
    assert [q.pk for q in page.context["open_queries"]] == [on_patient.pk, on_procedure.pk]
    assert "Karnofsky 30 or 70?" in html and "Date before admission?" in html
    assert "Open queries (2)" in html


def test_a_query_is_answered_in_place_from_the_record(client_a, staff_a, queried):
    patient, on_patient, _on_procedure = queried
    url = reverse("staff_record", args=[patient.registry_id])
    refused = client_a.post(url, {"query": on_patient.pk, "answer": "  "}, follow=True)
    assert "Write the answer" in refused.content.decode()
    on_patient.refresh_from_db()
    assert on_patient.state == "open"

    done = client_a.post(url, {"query": on_patient.pk, "answer": "70, corrected"})
    assert done.status_code == 302
    on_patient.refresh_from_db()
    assert (on_patient.state, on_patient.answer, on_patient.answered_by) == (
        "answered",
        "70, corrected",
        staff_a,
    )
    # Answered, it stays in the panel (until the monitor closes it), without the form.
    page = client_a.get(url)
    assert f'name="query" value="{on_patient.pk}"' not in page.content.decode()


def test_another_sites_staff_can_neither_see_nor_answer(client, site_b, queried):
    patient, on_patient, _on_procedure = queried
    client.force_login(make_user("Site staff", site_b))
    url = reverse("staff_record", args=[patient.registry_id])
    assert client.get(url).status_code == 404
    assert client.post(url, {"query": on_patient.pk, "answer": "x"}).status_code == 404
    assert DataQuery.objects.get(pk=on_patient.pk).state == "open"


def test_patient_change_page_shows_its_queries(client_a, queried):
    patient, _on_patient, _on_procedure = queried
    html = client_a.get(reverse("admin:registry_patient_change", args=[patient.pk])).content
    assert b"Karnofsky 30 or 70?" in html and b'id="record-quality"' in html
