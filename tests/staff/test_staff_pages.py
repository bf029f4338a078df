"""The patient record, the record status dashboard and the due list with the phone worklist."""

import datetime
import re

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import FollowUp
from outcomes.staff import dashboard
from tests.factories import (
    make_complication,
    make_contact,
    make_patient,
    make_procedure,
    make_response,
    make_user,
)

PROCEDURE_DAY = datetime.date(2026, 1, 12)
NOW = datetime.datetime(2026, 4, 13, 8, tzinfo=datetime.UTC)  # inside the 3-month window


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def chased_patient(site, *, email=True, consent=True, etiology="osteoporotic"):
    patient = make_patient(site, consent_date=PROCEDURE_DAY)
    make_contact(
        patient,
        email=f"{patient.registry_id.lower()}@example.org" if email else "",
        phone="+4520203030",
        consent_to_contact=consent,
        preferred_language="en",
    )
    procedure = make_procedure(patient, etiology, date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    make_response(procedure, "baseline", vas_pain=70, answered_on=PROCEDURE_DAY)
    return patient, procedure


def sweep():
    for attempt_id in followups_sweep(now=NOW).attempt_ids:
        contact_attempt_send(attempt_id=attempt_id, now=NOW)


def test_record_shows_everything_about_the_patient_with_actions(client_a, site_a):
    patient, procedure = chased_patient(site_a)
    make_complication(procedure, date=PROCEDURE_DAY, type="haematoma")
    sweep()

    page = client_a.get(reverse("staff_record", args=[patient.registry_id]))

    assert page.status_code == 200
    html = page.content.decode()
    assert patient.registry_id in html and "Site AAA" in html
    assert "Osteoporotic" in html and "Alive" in html and "agreed to be contacted" in html
    assert "T12" in html and "4.5" in html  # the treated level and its cement
    assert "Invitation: Sent" in html  # the 3-month invitation of the sweep
    assert "VAS 70" in html  # the baseline response with its score
    assert "Haematoma or bleeding" in html
    assert "Times are shown in Europe/Copenhagen" in html
    add_procedure = reverse("admin:registry_procedure_add") + f"?patient={patient.pk}"
    assert add_procedure in html.replace("&amp;", "&")
    month_3 = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    assert reverse("admin:outcomes_followup_send_link", args=[month_3.pk]) in html
    enter = re.search(r'href="([^"]*questionnaireresponse/add/[^"]*timepoint=month_3[^"]*)"', html)
    assert enter is not None
    assert reverse("admin:registry_patient_history", args=[patient.pk]) in html


def test_a_procedure_added_from_the_record_returns_to_it(client_a, site_a):
    from tests.registry.test_admin import level_form, procedure_form

    patient, _procedure = chased_patient(site_a)
    record = reverse("staff_record", args=[patient.registry_id])
    url = reverse("admin:registry_procedure_add") + f"?patient={patient.pk}&next={record}"
    assert client_a.get(url).context["adminform"].form.initial["patient"] == str(patient.pk)

    response = client_a.post(url, procedure_form(patient, [level_form(0, 20)], date="2026-03-01"))

    assert response.status_code == 302 and response["Location"] == record
    assert patient.procedures.count() == 2


def test_record_of_another_site_is_not_found(client, site_a, site_b):
    patient, _ = chased_patient(site_a)
    client.force_login(make_user("Site staff", site_b))
    assert client.get(reverse("staff_record", args=[patient.registry_id])).status_code == 404


def test_record_query_count_does_not_grow_with_procedures(client_a, site_a):
    patient, _ = chased_patient(site_a)
    url = reverse("staff_record", args=[patient.registry_id])
    client_a.get(url)
    with CaptureQueriesContext(connection) as one:
        client_a.get(url)
    for day in (20, 40, 60):
        extra = make_procedure(
            patient, "osteoporotic", date=PROCEDURE_DAY + datetime.timedelta(day)
        )
        followups_ensure(procedure_ids=[extra.pk])
    with CaptureQueriesContext(connection) as four:
        client_a.get(url)
    assert len(four) == len(one)


def test_dashboard_cells_legend_filters_totals_and_click_through(client_a, site_a):
    done, _ = chased_patient(site_a)
    chased, _ = chased_patient(site_a)
    pathologic, _ = chased_patient(site_a, etiology="metastasis")
    sweep()

    page = client_a.get(reverse("staff_dashboard"))
    html = page.content.decode()
    assert page.status_code == 200
    for label in ("Scheduled", "Invited", "Completed", "On phone worklist", "Missed"):
        assert label in html  # the legend names every state in words
    assert reverse("staff_record", args=[done.registry_id]) in html
    totals = {t["state"].value: t["counts"] for t in page.context["totals"]}
    # Columns: baseline, post-op, 3 months, 12 months.
    assert totals["completed"][0] == 3  # three baselines answered
    assert totals["invited"][2] == 3  # three 3-month invitations
    assert totals["scheduled"][3] == 3
    assert totals["missed"][1] == 3  # the post-op windows (days 0-7) have closed

    only = client_a.get(reverse("staff_dashboard") + "?cohort=pathologic").context["table"]
    assert [row["registry_id"] for row in only] == [pathologic.registry_id]
    invited = client_a.get(reverse("staff_dashboard") + "?state=invited").context["table"]
    assert len(invited) == 3
    assert client_a.get(reverse("staff_dashboard") + "?state=worklist").context["table"] == []


def test_dashboard_is_paginated_with_a_constant_number_of_queries(client_a, site_a):
    for _ in range(3):
        chased_patient(site_a)
    client_a.get(reverse("staff_dashboard"))
    with CaptureQueriesContext(connection) as few:
        client_a.get(reverse("staff_dashboard"))
    for _ in range(5):
        chased_patient(site_a)
    with CaptureQueriesContext(connection) as many:
        page = client_a.get(reverse("staff_dashboard") + "?cohort=osteoporotic")
    assert page.context["page"].paginator.count == 8
    assert len(many) == len(few)


def test_dashboard_totals_count_the_patients_of_the_page_shown(client_a, site_a, monkeypatch):
    # Adversary: totals aggregated over every filtered patient, which made page 50 of a
    # national registry scan all 1.4M follow-ups (issue 32).
    monkeypatch.setattr(dashboard, "PAGE_SIZE", 2)
    for _ in range(3):
        chased_patient(site_a)
    sweep()
    url = reverse("staff_dashboard")
    for page_number, patients in ((1, 2), (2, 1)):
        page = client_a.get(url, {"page": page_number})
        totals = {t["state"].value: t["counts"] for t in page.context["totals"]}
        assert len(page.context["table"]) == patients
        # Columns: baseline, post-op, 3 months, 12 months.
        assert totals["completed"][0] == totals["invited"][2] == patients
        assert totals["scheduled"][3] == totals["missed"][1] == patients
        assert sum(sum(counts) for counts in totals.values()) == 4 * patients
        assert "Totals of the patients on this page" in page.content.decode()


def test_dashboard_page_runs_at_most_eight_queries(client_a, site_a):
    for _ in range(3):
        chased_patient(site_a)
    sweep()
    url = reverse("staff_dashboard")
    client_a.get(url)
    with CaptureQueriesContext(connection) as queries:
        page = client_a.get(url, {"cohort": "osteoporotic", "state": "invited"})
    assert len(page.context["table"]) == 3
    assert len(queries) <= 8, [q["sql"][:120] for q in queries.captured_queries]


def test_due_list_worklist_with_outcome_buttons_and_print_view(client_a, site_a):
    reachable, _ = chased_patient(site_a, email=False)
    not_consenting, _ = chased_patient(site_a, email=False, consent=False)
    sweep()
    url = reverse("staff_due_list")

    page = client_a.get(url)
    html = page.content.decode()
    assert [f.procedure.patient for f in page.context["worklist"]] == [reachable]
    assert "+45 20 20 30 30" in html and "English" in html
    assert not_consenting.registry_id not in str(page.context["worklist"])
    # Windows closing in the next four weeks: nothing before 12 May; opening: none.
    assert page.context["closing"] == []

    printed = client_a.get(url + "?print=1").content.decode()
    assert reachable.registry_id in printed and "+45 20 20 30 30" in printed
    assert "<nav" not in printed

    followup = page.context["worklist"][0]
    prefix = f"call-{followup.pk}"
    done = client_a.post(url, {"followup": followup.pk, f"{prefix}-outcome": "wrong_number"})
    assert done.status_code == 302
    assert FollowUp.objects.get(pk=followup.pk).phone_outcome == "wrong_number"
    assert client_a.get(url).context["worklist"] == []


def test_due_list_shows_windows_opening_and_closing_in_the_coming_weeks(client_a, site_a):
    chased_patient(site_a)
    page = client_a.get(reverse("staff_due_list") + "?weeks=8&section=closing")
    closing = [(f.timepoint, f.window_end) for f in page.context["closing"]]
    assert closing == [("month_3", datetime.date(2026, 5, 12))]


def test_an_auditor_gets_no_phone_worklist(client, site_a):
    chased_patient(site_a, email=False)
    sweep()
    client.force_login(make_user("Auditor", site_a))
    page = client.get(reverse("staff_due_list"))
    assert page.status_code == 200
    assert page.context["worklist"] == []
    assert "+4520203030" not in page.content.decode()
    assert "+45 20 20 30 30" not in page.content.decode()


def test_saving_a_new_patient_lands_on_its_record_with_add_a_procedure(client_a, site_a):
    from registry.models import Patient
    from tests.registry.test_admin import patient_form

    saved = client_a.post(reverse("admin:registry_patient_add"), patient_form(site_a))
    patient = Patient.objects.get(site=site_a)
    assert saved.status_code == 302
    assert saved.url == reverse("staff_record", args=[patient.registry_id])
    record = client_a.get(saved.url).content.decode()
    assert "Add a procedure" in record and f"Patient {patient.registry_id} saved" in record


def test_record_names_leakage_sites_complication_details_and_why_cancelled(client_a, site_a):
    from registry.models import TreatedLevel

    patient, procedure = chased_patient(site_a)
    TreatedLevel.objects.filter(procedure=procedure).update(
        cement_leakage=True, leakage_sites=["segmental_vein"], leakage_detected_by="ct"
    )
    make_complication(procedure, date=PROCEDURE_DAY, relation="probable", symptomatic=True)
    patient.date_of_death = datetime.date(2026, 4, 1)
    patient.cause_of_death = "unknown"
    patient.save()
    sweep()  # cancels the remaining follow-ups

    html = client_a.get(reverse("staff_record", args=[patient.registry_id])).content.decode()
    assert "Segmental vein" in html and "segmental_vein" not in html
    assert "Probable" in html
    assert "Cancelled</span> (Patient died)" in html


def test_dashboard_and_due_list_count_the_same_worklist(client_a, site_a):
    chased_patient(site_a, email=False)
    chased_patient(site_a, email=False, consent=False)  # not called, not counted
    sweep()
    due = client_a.get(reverse("staff_due_list"))
    dashboard = client_a.get(reverse("staff_dashboard"), {"state": "worklist"})
    admin_list = client_a.get(reverse("admin:outcomes_followup_changelist"), {"worklist": "yes"})
    assert len(due.context["worklist"]) == 1
    assert due.context["counts"]["worklist"] == due.context["page"].paginator.count == 1
    assert "1 patient to call" in due.content.decode()
    assert dashboard.context["page"].paginator.count == 1
    assert admin_list.context["cl"].result_count == 1
    html = dashboard.content.decode()
    assert "Not yet due" not in html and "Scheduled" in html


def test_due_list_pages_a_section_with_its_true_count_and_keeps_the_filters(
    client_a, site_a, site_b, monkeypatch
):
    from outcomes.staff import duelist

    monkeypatch.setattr(duelist, "PAGE_SIZE", 2)
    patients = {chased_patient(site_a, email=False)[0].registry_id for _ in range(3)}
    chased_patient(site_b, email=False)  # another site's: neither listed nor counted
    sweep()
    url = reverse("staff_due_list")

    first = client_a.get(url, {"site": "AAA", "weeks": 8})
    second = client_a.get(url, {"site": "AAA", "weeks": 8, "page": 2})

    assert first.context["section"] == "worklist"
    assert first.context["counts"] == {"worklist": 3, "opening": 0, "closing": 3}
    listed = [f.procedure.patient.registry_id for f in first.context["worklist"]]
    listed += [f.procedure.patient.registry_id for f in second.context["worklist"]]
    assert len(listed) == 3 and set(listed) == patients
    html = first.content.decode().replace("&amp;", "&")
    assert "3 patients to call" in html and "Page 1 of 2" in html
    assert "?site=AAA&weeks=8&section=worklist&page=2" in html  # the next page keeps filters
    assert "site=AAA&weeks=8&section=closing" in html  # so do the tabs
    assert "Windows closing (3)" in html
    closing = client_a.get(url, {"site": "AAA", "weeks": 8, "section": "closing", "page": 2})
    assert len(closing.context["closing"]) == 1 and closing.context["worklist"] == []
    assert "Page 2 of 2" in closing.content.decode()
    printed = client_a.get(url, {"site": "AAA", "weeks": 8, "page": 2, "print": 1})
    assert len(printed.context["worklist"]) == 1
    assert "Page 2 of 2" in printed.content.decode()


def test_due_list_for_a_site_not_the_users_selects_nothing(client_a, site_a, site_b):
    chased_patient(site_a, email=False)
    chased_patient(site_b, email=False)
    sweep()
    page = client_a.get(reverse("staff_due_list"), {"site": "BBB", "weeks": 8})
    assert page.context["counts"] == {"worklist": 0, "opening": 0, "closing": 0}
    assert page.context["worklist"] == []
    assert "Select a valid choice" in page.content.decode()
