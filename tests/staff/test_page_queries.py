"""Every staff page in at most eight queries, the same number whatever the rows it shows
(issue 32): the patient record, the due list's three sections, the admin's phone worklist and
the data-quality page, each measured with little and with more data. Two of the eight are
the session and the user (read with permissions, roles, sites and second-factor device)."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from outcomes.followups.calls import phone_call_record
from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp, PhoneCall
from outcomes.quality.models import QualityFinding
from outcomes.quality.services import quality_run
from registry.models import Site
from tests.factories import make_complication, make_patient, make_procedure
from tests.staff.test_staff_pages import PROCEDURE_DAY, chased_patient, clock, sweep  # noqa: F401

MAX_QUERIES = 8


def queries_of(client, url: str, **params) -> tuple[int, list[str]]:
    """The queries of one GET after a first one (the session renewal is not due then: the
    clock stands still)."""
    assert client.get(url, params).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(queries), [q["sql"][:150] for q in queries.captured_queries]


def on_worklist(site, n: int) -> list:
    patients = [chased_patient(site, email=False)[0] for _ in range(n)]
    sweep()
    return patients


def due_in_coming_weeks(site) -> None:
    """A procedure of 15 February: its 3-month window (days 70-120) opens on 26 April and
    closes on 15 June, both in the coming 12 weeks."""
    patient = make_patient(site, consent_date=datetime.date(2026, 2, 15))
    procedure = make_procedure(patient, "osteoporotic", date=datetime.date(2026, 2, 15))
    followups_ensure(procedure_ids=[procedure.pk])


def call_everyone(user) -> None:
    for followup in FollowUp.objects.on_worklist():
        phone_call_record(followup_id=followup.pk, user=user, outcome=PhoneCall.Outcome.NO_ANSWER)


def test_record_page_queries_do_not_grow_with_procedures(client, manager, site_a):
    client.force_login(manager)
    patient, procedure = chased_patient(site_a)
    url = reverse("staff_record", args=[patient.registry_id])
    few, few_sql = queries_of(client, url)
    for day in (20, 40, 60):
        extra = make_procedure(
            patient, "osteoporotic", date=PROCEDURE_DAY + datetime.timedelta(day)
        )
        make_complication(extra, date=extra.date, type="haematoma")
    sweep()
    many, many_sql = queries_of(client, url)
    assert patient.procedures.count() == 4
    assert few == many, (few_sql, many_sql)
    # Session, user, the patient (with complications, locks and consent documents), the
    # procedures (with levels, follow-ups, messages, responses), consents, signatures, queries.
    assert many == 7 <= MAX_QUERIES, many_sql


@pytest.mark.parametrize("who", ["manager", "staff_a"])
def test_due_list_worklist_queries_do_not_grow_with_patients(request, client, site_a, who):
    user = request.getfixturevalue(who)
    client.force_login(user)
    url = reverse("staff_due_list")
    on_worklist(site_a, 1)
    call_everyone(user)
    few, few_sql = queries_of(client, url, weeks=12)
    on_worklist(site_a, 4)
    call_everyone(user)
    many, many_sql = queries_of(client, url, weeks=12)
    assert client.get(url).context["counts"]["worklist"] == 5
    assert few == many, (few_sql, many_sql)
    # Session, user, sites with the counts, the page, its messages, its calls, taken off.
    assert many == 7, many_sql


@pytest.mark.parametrize("section", ["opening", "closing"])
def test_due_list_window_sections_queries_do_not_grow_with_patients(
    client, manager, site_a, section
):
    client.force_login(manager)
    url = reverse("staff_due_list")
    due_in_coming_weeks(site_a)
    few, few_sql = queries_of(client, url, section=section, weeks=12)
    for _ in range(4):
        due_in_coming_weeks(site_a)
    many, many_sql = queries_of(client, url, section=section, weeks=12)
    assert client.get(url, {"section": section, "weeks": 12}).context["counts"][section] == 5
    assert few == many, (few_sql, many_sql)
    assert many == 4, many_sql  # session, user, sites with the counts, the page


def test_admin_phone_worklist_queries_do_not_grow_with_patients(client, manager, site_a):
    client.force_login(manager)
    url = reverse("admin:outcomes_followup_changelist")
    on_worklist(site_a, 1)
    few, few_sql = queries_of(client, url, worklist="yes")
    on_worklist(site_a, 4)
    many, many_sql = queries_of(client, url, worklist="yes")
    assert client.get(url, {"worklist": "yes"}).context["cl"].result_count == 5
    assert few == many, (few_sql, many_sql)
    assert many <= MAX_QUERIES, many_sql


def test_data_quality_page_queries_do_not_grow_with_sites_or_findings(
    client, manager, site_a, site_b
):
    client.force_login(manager)
    url = reverse("data_quality")
    chased_patient(site_a)
    quality_run(sites=[site_a], user=manager)
    few, few_sql = queries_of(client, url)
    for site in (site_a, site_b):
        for _ in range(3):
            chased_patient(site)
    quality_run(sites=list(Site.objects.all()), user=None)
    many, many_sql = queries_of(client, url)
    assert len(client.get(url).context["sections"]) == 2
    assert QualityFinding.objects.count() > 0
    assert few == many, (few_sql, many_sql)
    # Session, user, the sites, the latest runs, the findings shown.
    assert many == 5, many_sql
