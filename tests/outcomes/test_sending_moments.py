"""The moments of one send against PostgreSQL and a real SMTP server (aiosmtpd), with faults
placed exactly by the server's hooks: a death committed while the server is answering DATA, a
slow 250, and the database connection killed between the server's 250 and the record.

Transactional tests: the faults come from other connections, which must see the rows.
"""

import datetime
import time

import psycopg
import pytest
from django.db import connection

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from tests.factories import make_site
from tests.outcomes.test_chasing_outbox import at, make_chased
from tests.services import database_url

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def due(smtp):
    """A 3-month invitation due at ``at(70)``: (follow-up, attempt id)."""
    followup = make_chased(make_site("MOM"))
    (attempt_id,) = followups_sweep(now=at(70)).attempt_ids
    return followup, attempt_id


def other_connection() -> psycopg.Connection:
    """A second session on the test database, as another process would have."""
    return psycopg.connect(database_url(connection.settings_dict), autocommit=True)


def test_death_committed_while_the_server_answers_data_stops_the_body(smtp, due):
    # The last check is after the server's 354, right before the body's first byte: a death
    # committed while the client waits for the 354 (after any check before DATA) stops it.
    followup, attempt_id = due
    patient_id = followup.procedure.patient_id

    def record_death():
        with other_connection() as other:
            other.execute(
                "UPDATE registry_patient SET date_of_death = %s WHERE id = %s",
                [at(69).date(), patient_id],
            )

    smtp.before_354 = record_death
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "skipped"
    assert smtp.messages == []
    attempt = ContactAttempt.objects.get(pk=attempt_id)
    assert (attempt.status, attempt.error, attempt.send_started_at) == (
        "skipped",
        "patient deceased",
        None,
    )
    assert FollowUp.objects.get(pk=followup.pk).state == "cancelled"


def test_sent_at_is_the_servers_250_not_the_claim(smtp, due):
    _followup, attempt_id = due
    smtp.before_250 = lambda message: time.sleep(0.5)  # a slow mail server
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "sent"
    attempt = ContactAttempt.objects.get(pk=attempt_id)
    assert attempt.claimed_at == at(70)
    assert attempt.send_started_at is not None and attempt.send_started_at < attempt.sent_at
    assert attempt.sent_at - attempt.claimed_at >= datetime.timedelta(seconds=0.5)
    assert len(smtp.messages) == 1


def test_database_connection_killed_after_the_250_is_recorded_sent_on_a_new_connection(
    smtp, due, caplog
):
    followup, attempt_id = due
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    killed = []

    def kill_the_senders_connection(message):
        with other_connection() as other:
            killed.append(other.execute("SELECT pg_terminate_backend(%s)", [backend]).fetchone()[0])

    smtp.before_250 = kill_the_senders_connection
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "sent"
    assert killed == [True]
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != backend  # recorded on a new connection
    attempt = ContactAttempt.objects.get(pk=attempt_id)
    assert (attempt.status, attempt.tries, attempt.error) == ("sent", 1, "")
    assert FollowUp.objects.get(pk=followup.pk).invitations_sent == 1
    assert len(smtp.messages) == 1
    assert "recording a contact attempt met a database error" in caplog.text
