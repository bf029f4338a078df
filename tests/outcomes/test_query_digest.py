"""Queries told where the nurse works (issue 27, item 4): queries on a patient's contact
details, the daily digest's "new data queries" section, and the count on the dashboard row."""

import datetime

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.models import ContactAttempt
from outcomes.quality.queries import dataquery_answer, dataquery_close, dataquery_raise
from tests.factories import make_contact, make_patient, make_procedure, make_site, make_user


@pytest.fixture
def patient(site_a):
    patient = make_patient(site_a)
    make_contact(patient, name="Karen Blixen", phone="+4520304050")
    return patient


def digests_sent(now) -> dict[str, mail.EmailMessage]:
    """Sweep at ``now`` and send the day's digests: {recipient: message}."""
    mail.outbox.clear()
    followups_sweep(now=now)
    for digest in ContactAttempt.objects.filter(kind="digest", status="pending"):
        contact_attempt_send(attempt_id=digest.pk, now=now)
    return {message.to[0]: message for message in mail.outbox}


def test_a_query_can_be_about_a_contact_detail_and_the_record_names_it_by_label(
    client_a, manager, staff_a, patient
):
    raise_page = reverse(
        "admin:outcomes_dataquery_raise",
        args=[ContentType.objects.get_for_model(patient).pk, patient.pk],
    )
    client_a.force_login(manager)
    assert "phone (contact details)" in client_a.get(raise_page).content.decode()
    query = dataquery_raise(
        user=manager, record=patient, field_name="contact.phone", comment="Number unobtainable?"
    )
    assert (query.record_label, query.field_name) == (patient.registry_id, "contact.phone")
    client_a.force_login(staff_a)
    record = client_a.get(reverse("staff_record", args=[patient.registry_id])).content.decode()
    assert f"{patient.registry_id} · phone (contact details)</strong>" in record
    assert "Number unobtainable?" in record and f'id="answer-{query.pk}"' in record
    with pytest.raises(ValidationError, match="Choose a field of this record"):
        dataquery_raise(
            user=manager, record=patient, field_name="contact.sms_stopped_at", comment="?"
        )


def test_the_digest_lists_new_queries_with_record_links_and_never_a_name(
    settings, site_a, manager, patient
):
    settings.SITE_URL = "https://registry.example"
    procedure = make_procedure(patient, "osteoporotic")
    on_contact = dataquery_raise(
        user=manager, record=patient, field_name="contact.phone", comment="Karen's number?"
    )
    on_level = dataquery_raise(
        user=manager, record=procedure.levels.get(), field_name="level", comment="T12 or L1?"
    )
    withdrawn = dataquery_raise(user=manager, record=procedure, field_name="date", comment="?")
    dataquery_close(query=withdrawn, user=manager)
    site_b = make_site("BBB")
    dataquery_raise(user=manager, record=make_patient(site_b), field_name="karnofsky", comment="?")

    sent = digests_sent(timezone.now())

    digest = sent[site_a.contact_email]
    assert digest.subject.startswith("Data queries for AAA: 2 new data queries on ")
    record = f"https://registry.example{reverse('staff_record', args=[patient.registry_id])}"
    assert f"- {patient.registry_id} · phone (contact details): {record}#query-{on_contact.pk}" in (
        digest.body
    )
    assert f"{record}#query-{on_level.pk}" in digest.body
    assert f"#query-{withdrawn.pk}" not in digest.body  # closed: nothing to do
    assert (
        "Karen" not in digest.body and "+45" not in digest.body and "T12 or L1" not in digest.body
    )
    assert "1 new data query " in sent[site_b.contact_email].body


def test_each_query_is_announced_in_one_digest_only(site_a, manager, patient):
    first = dataquery_raise(user=manager, record=patient, field_name="karnofsky", comment="?")
    today = timezone.now()
    assert f"#query-{first.pk}" in digests_sent(today)[site_a.contact_email].body
    assert digests_sent(today + datetime.timedelta(hours=2)) == {}  # same day, nothing new
    # The next day: a digest only because a new query was raised, and only that one in it.
    assert digests_sent(today + datetime.timedelta(days=1)) == {}
    second = dataquery_raise(user=manager, record=patient, field_name="sex", comment="?")
    body = digests_sent(today + datetime.timedelta(days=2))[site_a.contact_email].body
    assert f"#query-{second.pk}" in body and f"#query-{first.pk}" not in body
    assert "1 new data query (answer each on the record page, under Open queries):" in body


def test_the_dashboard_row_counts_the_patients_open_queries(client_a, site_a, manager, staff_a):
    queried = make_patient(site_a)
    procedure = make_procedure(queried, "osteoporotic")
    quiet = make_procedure(make_patient(site_a), "osteoporotic").patient
    dataquery_raise(user=manager, record=queried, field_name="contact.email", comment="?")
    dataquery_raise(user=manager, record=procedure, field_name="date", comment="?")
    answered = dataquery_raise(
        user=manager, record=procedure.levels.get(), field_name="level", comment="?"
    )
    dataquery_answer(query=answered, user=staff_a, answer="checked")
    other_site = make_procedure(make_patient(make_site("BBB")), "osteoporotic")
    dataquery_raise(user=manager, record=other_site, field_name="date", comment="?")

    page = client_a.get(reverse("staff_dashboard"))

    counts = {row["registry_id"]: row["open_queries"] for row in page.context["table"]}
    assert counts == {queried.registry_id: 2, quiet.registry_id: 0}
    record = reverse("staff_record", args=[queried.registry_id])
    assert f'<a href="{record}#open-queries">2</a>' in page.content.decode()
    manager_view = make_user("Registry manager", username="viewer")
    client_a.force_login(manager_view)
    rows = client_a.get(reverse("staff_dashboard")).context["table"]
    assert {r["registry_id"]: r["open_queries"] for r in rows}[other_site.patient.registry_id] == 1
