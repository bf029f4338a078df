"""Who the patient is (name, date of birth) for the roles that may see contact details, on the
record, the due list, the worklist and its print view, the patient pages and the search; never
for auditors."""

import datetime

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry.admin import PatientAdmin
from registry.models import Patient
from tests.factories import make_contact, make_patient, make_user
from tests.staff.test_phone_calls import clock, on_list  # noqa: F401

BORN = datetime.date(1944, 2, 29)


@pytest.fixture
def inger(site_a):
    patient = make_patient(site_a, date_of_birth=BORN)
    make_contact(patient, name="Inger Østergaard", phone="+45 20 30-40 50", email="io@example.dk")
    return patient


@pytest.fixture
def auditor_client(client, site_a):
    client.force_login(make_user("Auditor", site_a))
    return client


def test_record_shows_name_and_date_of_birth_to_site_staff(client_a, inger):
    html = client_a.get(reverse("staff_record", args=[inger.registry_id])).content.decode()
    assert "Inger Østergaard" in html
    assert "29 Feb 1944" in html


def test_record_hides_name_and_date_of_birth_from_auditors(auditor_client, inger):
    page = auditor_client.get(reverse("staff_record", args=[inger.registry_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert inger.registry_id in html
    assert "Østergaard" not in html and "1944" not in html


@pytest.mark.parametrize(
    "term",
    [
        "Inger",
        "østergaard",
        "inger øster",
        "20 30 40",
        "203040",
        "io@example",
        "29-02-1944",
        "29.02.1944",
        "1944-02-29",
    ],
)
def test_site_staff_find_a_patient_by_name_phone_email_or_date_of_birth(client_a, inger, term):
    make_patient(inger.site, date_of_birth=BORN.replace(day=28))  # the same year, not found
    other = make_patient(inger.site)
    make_contact(other, name="Karen Hansen", phone="+45 11 22 33 44", email="kh@example.dk")
    page = client_a.get(reverse("admin:registry_patient_changelist"), {"q": term})
    assert [p.pk for p in page.context["cl"].result_list] == [inger.pk]
    assert "Inger Østergaard" in page.content.decode()  # the name column


def test_registry_id_search_still_works_and_words_must_all_match(client_a, inger):
    url = reverse("admin:registry_patient_changelist")
    found = client_a.get(url, {"q": inger.registry_id.lower()}).context["cl"].result_list
    assert [p.pk for p in found] == [inger.pk]
    assert list(client_a.get(url, {"q": "Inger Hansen"}).context["cl"].result_list) == []


def test_an_auditor_finds_by_registry_id_only_and_sees_no_name(auditor_client, inger):
    url = reverse("admin:registry_patient_changelist")
    assert list(auditor_client.get(url, {"q": "Inger"}).context["cl"].result_list) == []
    assert list(auditor_client.get(url, {"q": "29-02-1944"}).context["cl"].result_list) == []
    page = auditor_client.get(url, {"q": inger.registry_id})
    assert [p.pk for p in page.context["cl"].result_list] == [inger.pk]
    assert "Østergaard" not in page.content.decode()


def test_another_sites_patient_is_not_found_by_name(client, site_b, inger):
    client.force_login(make_user("Site staff", site_b))
    page = client.get(reverse("admin:registry_patient_changelist"), {"q": "Inger"})
    assert list(page.context["cl"].result_list) == []


def test_patient_change_page_names_the_patient_for_staff_only(client_a, inger, site_a, client):
    url = reverse("admin:registry_patient_change", args=[inger.pk])
    assert "Inger Østergaard, born 29 Feb 1944" in client_a.get(url).content.decode()
    client.force_login(make_user("Auditor", site_a))
    assert "Østergaard" not in client.get(url).content.decode()


def test_the_autocomplete_of_the_entry_pages_finds_by_name(client_a, inger):
    found = client_a.get(
        reverse("admin:autocomplete"),
        {
            "term": "Østergaard",
            "app_label": "registry",
            "model_name": "complication",
            "field_name": "patient",
        },
    ).json()
    assert [r["id"] for r in found["results"]] == [str(inger.pk)]


def test_worklist_due_list_and_print_view_name_the_patient(client_a, on_list):  # noqa: F811
    patient = on_list.procedure.patient
    patient.contact.name = "Bodil Ravn"
    patient.contact.save()
    url = reverse("staff_due_list")
    assert "Bodil Ravn" in client_a.get(url).content.decode()
    printed = client_a.get(url, {"print": "1"}).content.decode()
    assert "Bodil Ravn" in printed and "17-05-1950" in printed
    admin_list = client_a.get(reverse("admin:outcomes_followup_changelist"), {"worklist": "yes"})
    assert "Bodil Ravn" in admin_list.content.decode()


def test_a_failing_name_search_mails_no_name(client_a, inger, settings, monkeypatch):
    settings.ADMINS = [("Admins", "admins@example.org")]
    settings.DEBUG = False

    def broken(self, request, queryset, search_term):
        raise RuntimeError("search broke")

    monkeypatch.setattr(PatientAdmin, "get_search_results", broken)
    client_a.raise_request_exception = False
    mail.outbox.clear()
    page = client_a.get(reverse("admin:registry_patient_changelist"), {"q": "Inger Østergaard"})
    assert page.status_code == 500
    (report,) = mail.outbox
    text = report.body + "".join(str(a[0]) for a in report.alternatives)
    assert "search broke" in text  # the report is there, without the name
    assert "Inger" not in text and "%C3%98stergaard" not in text and "Østergaard" not in text


def test_search_by_name_is_not_in_any_log_line(client_a, inger, caplog):
    caplog.set_level("DEBUG")
    client_a.get(reverse("admin:registry_patient_changelist"), {"q": "Østergaard"})
    assert caplog.records
    assert all("Østergaard" not in r.getMessage() for r in caplog.records)


def test_patient_count_is_unchanged_by_a_search_with_no_words(client_a, inger):
    page = client_a.get(reverse("admin:registry_patient_changelist"), {"q": "   "})
    assert [p.pk for p in page.context["cl"].result_list] == [inger.pk]
    assert Patient.objects.count() == 1


def test_the_words_are_looked_up_in_contacts_by_one_statement(client_a, inger):
    """A word matches a name or an email (both found); all the words go in one statement on
    the contacts (their conditions ANDed, so the planner intersects them before reading rows),
    a common surname's rows are read once, not once for its name and once for its email."""
    by_email = make_patient(inger.site)
    make_contact(by_email, name="Karen Hansen", phone="+4511223344", email="ostergaard@x.dk")
    url = reverse("admin:registry_patient_changelist")
    for term in ("østergaard", "inger østergaard", "OSTERGAARD", "inger 29-02-1944"):
        with CaptureQueriesContext(connection) as queries:
            page = client_a.get(url, {"q": term})
        lookups = [
            q["sql"]
            for q in queries.captured_queries
            if "registry_patientcontact" in q["sql"] and "LIKE" in q["sql"]
        ]
        assert len(lookups) == 1, (term, lookups)
        assert all('"name"' in sql and '"email"' in sql for sql in lookups)
        found = {p.pk for p in page.context["cl"].result_list}
        assert found == ({inger.pk} if term != "OSTERGAARD" else {by_email.pk}), term


def test_the_words_may_match_different_fields_and_patients_without_contact(client_a, inger):
    no_contact = make_patient(inger.site, date_of_birth=BORN)
    url = reverse("admin:registry_patient_changelist")

    def found(term):
        return {p.pk for p in client_a.get(url, {"q": term}).context["cl"].result_list}

    assert found(f"{inger.registry_id} Inger") == {inger.pk}  # registry id and name
    assert found(f"{no_contact.registry_id} 29-02-1944") == {no_contact.pk}  # no contact row
    assert found("29-02-1944") == {inger.pk, no_contact.pk}
    assert found("29-02-1944 inger") == {inger.pk}
    assert found(f"{no_contact.registry_id} Inger") == set()
