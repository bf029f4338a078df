"""Text messages through the outbox against PostgreSQL and a fake Twilio on loopback that
speaks the Messages API (tests/services.py ``SmsProvider``): at most once whatever the
provider does (429, 5xx, a hang past the timeout, a connection dropped after taking the
text), ``unknown`` on doubt, receipts and STOP replies signed, quiet hours, the fallback
between channels, and no number in an attempt, a log line or an error."""

from __future__ import annotations

import datetime
import logging
import threading
import zoneinfo

import pytest
import time_machine
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client
from django.urls import reverse
from twilio.request_validator import RequestValidator

from outcomes.followups import texting
from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.services import followup_complete
from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.models import PatientContact
from tests.factories import make_contact, make_patient, make_procedure
from tests.services import SmsProvider, scaled, wait_for

PROCEDURE_DAY = datetime.date(2026, 1, 12)
COPENHAGEN = zoneinfo.ZoneInfo("Europe/Copenhagen")
PHONE = "+4531123456"
DIGITS = "31123456"  # the number as a log line or an error might spell it


def at(days: int, hour: int = 9, minute: int = 0) -> datetime.datetime:
    """``days`` after the procedure at ``hour``:``minute`` Copenhagen wall-clock time."""
    day = PROCEDURE_DAY + datetime.timedelta(days=days)
    local = datetime.datetime(day.year, day.month, day.day, hour, minute, tzinfo=COPENHAGEN)
    return local.astimezone(datetime.UTC)


@pytest.fixture
def provider():
    with SmsProvider() as fake:
        yield fake


@pytest.fixture
def sms(settings, provider):
    settings.TWILIO_ACCOUNT_SID = provider.account_sid
    settings.TWILIO_AUTH_TOKEN = provider.auth_token
    settings.SMS_FROM = "Registry"
    settings.SMS_API_BASE_URL = provider.url
    settings.SMS_TIMEOUT = 1
    settings.SITE_URL = "https://registry.example.org"
    return provider


def make_texted(site, *, phone=PHONE, email="", preferred="sms", language="da"):
    patient = make_patient(site, consent_date=PROCEDURE_DAY)
    make_contact(
        patient, email=email, phone=phone, preferred_channel=preferred, preferred_language=language
    )
    procedure = make_procedure(patient, "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    return FollowUp.objects.get(procedure=procedure, timepoint="month_3")


def sweep_and_send(now) -> dict[int, str]:
    report = followups_sweep(now=now)
    return {i: contact_attempt_send(attempt_id=i, now=now) for i in report.attempt_ids}


def no_number_anywhere(caplog) -> None:
    for attempt in ContactAttempt.objects.all():
        assert DIGITS not in f"{attempt.error} {attempt.claimed_by} {attempt.provider_id}"
    assert DIGITS not in caplog.text


# --- the happy path ---------------------------------------------------------------------------


def test_invitation_by_sms_is_sent_once_with_the_link_in_the_patients_language(site_a, sms):
    site_a.sms_sender = "Rygklinik"
    site_a.save()
    followup = make_texted(site_a)
    statuses = sweep_and_send(at(70))
    (attempt,) = ContactAttempt.objects.filter(followup=followup)
    assert (attempt.channel, statuses) == ("sms", {attempt.pk: "sent"})
    (text,) = sms.texts
    assert (text.fields["To"], text.fields["From"]) == (PHONE, "Rygklinik")
    assert text.fields["StatusCallback"] == (
        f"https://registry.example.org/sms/status/{attempt.pk}/"
    )
    body = text.fields["Body"]
    assert "spørgeskema" in body and "/q/" in body  # Danish, with the personal link
    token = body.split("/q/")[1].split("/")[0]
    assert len(token) == 43  # the full 256-bit token, not a shortened one
    assert texting.is_gsm7(body) and texting.segments(body) <= 2
    attempt.refresh_from_db()
    assert (attempt.provider_id, attempt.error) == (text.sid, "")
    # A second send (a redelivered task) finds it sent and asks the provider nothing.
    assert contact_attempt_send(attempt_id=attempt.pk, now=at(70)) == "sent"
    assert sms.requests == 1
    assert mail.outbox == []


def test_email_preferred_goes_by_email_and_sms_only_without_an_address(site_a, sms):
    by_email = make_texted(site_a, email="karen@example.org", preferred="email")
    no_email = make_texted(site_a, email="", preferred="email")
    no_one = make_texted(site_a, email="k@example.org", preferred="none")
    sweep_and_send(at(70))
    assert ContactAttempt.objects.get(followup=by_email).channel == "email"
    assert ContactAttempt.objects.get(followup=no_email).channel == "sms"
    assert not ContactAttempt.objects.filter(followup=no_one).exists()
    no_one.refresh_from_db()
    assert no_one.on_phone_worklist_since is not None
    patient_mail = [m for m in mail.outbox if m.to == ["karen@example.org"]]
    assert (len(patient_mail), len(sms.texts)) == (1, 1)  # and the site's digest


def test_without_sms_configured_a_text_preferring_patient_gets_email(site_a, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    followup = make_texted(site_a, email="karen@example.org", preferred="sms")
    sweep_and_send(at(70))
    assert ContactAttempt.objects.get(followup=followup).channel == "email"
    assert len(mail.outbox) == 1


# --- what the provider does -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "status", "taken", "error"),
    [
        ("rate_limit", "pending", 0, "SMS provider 429 transient: rate limited (error 20429)"),
        ("unavailable", "pending", 0, "SMS provider 503 transient: unavailable (error 20503)"),
        (
            "error",
            "unknown",
            1,
            "SMS provider 500 unknown: server error after the request (error 20500)",
        ),  # noqa: E501
        ("hang", "unknown", 1, "no answer from the SMS provider (timeout)"),
        ("drop", "unknown", 1, "SMS provider connection lost (ConnectionError)"),
    ],
)
def test_provider_faults_are_retried_or_unknown_never_sent_twice(
    site_a, sms, caplog, mode, status, taken, error
):
    followup = make_texted(site_a)
    sms.mode = mode
    with caplog.at_level(logging.DEBUG):
        sweep_and_send(at(70))
    attempt = ContactAttempt.objects.get(followup=followup)
    assert (attempt.status, attempt.error, len(sms.texts)) == (status, error, taken)
    sms.mode = "accept"
    sms.release()
    # Sweeps until the window's end: a transient failure is sent once, an unknown never again.
    with caplog.at_level(logging.DEBUG):
        for hours in (1, 2, 4, 8):
            sweep_and_send(at(70) + datetime.timedelta(hours=hours))
    attempt.refresh_from_db()
    assert len(sms.texts) == 1
    assert attempt.status == ("sent" if status == "pending" else "unknown")
    no_number_anywhere(caplog)


def test_provider_unreachable_is_transient(site_a, sms, caplog):
    followup = make_texted(site_a)
    sms.stop()
    with caplog.at_level(logging.DEBUG):
        sweep_and_send(at(70))
    attempt = ContactAttempt.objects.get(followup=followup)
    assert (attempt.status, attempt.error) == ("pending", "SMS provider connection refused")
    assert attempt.next_try_at == at(70) + datetime.timedelta(seconds=60)
    no_number_anywhere(caplog)


def test_number_refused_for_good_falls_back_to_email(site_a, sms, caplog):
    followup = make_texted(site_a, email="karen@example.org", preferred="sms")
    sms.mode = "refuse"
    with caplog.at_level(logging.DEBUG):
        sweep_and_send(at(70))
    text = ContactAttempt.objects.get(followup=followup, channel="sms")
    assert (text.status, text.error_code, text.provider_error_code) == ("failed", 400, 21211)
    assert text.error == "SMS provider 400 permanent: number or message refused (error 21211)"
    # The same step by email, in the same sweep's next dispatch.
    sweep_and_send(at(70, minute=15))
    email = ContactAttempt.objects.get(followup=followup, channel="email")
    assert (email.kind, email.status, len(mail.outbox)) == ("invitation", "sent", 1)
    # The reminder avoids the refused channel.
    sweep_and_send(at(84))
    reminder = ContactAttempt.objects.get(followup=followup, kind="reminder_1")
    assert reminder.channel == "email"
    no_number_anywhere(caplog)


def test_refused_with_no_other_channel_goes_to_the_phone_worklist(site_a, sms):
    followup = make_texted(site_a, email="")
    sms.mode = "refuse"
    sweep_and_send(at(70))
    followup.refresh_from_db()
    assert followup.worklist_reason == "sms_refused"
    assert followup.on_phone_worklist_since == at(70).date()


def test_death_recorded_before_the_request_sends_nothing(site_a, sms):
    followup = make_texted(site_a)
    report = followups_sweep(now=at(70))
    followup.procedure.patient.__class__.objects.filter(pk=followup.procedure.patient_id).update(
        date_of_death=at(70).date()
    )
    (attempt_id,) = report.attempt_ids
    assert contact_attempt_send(attempt_id=attempt_id, now=at(70)) == "skipped"
    assert sms.requests == 0


# --- quiet hours ------------------------------------------------------------------------------


def test_nothing_is_sent_in_quiet_hours_and_the_text_waits_for_08(site_a, sms):
    followup = make_texted(site_a)
    evening = at(70, hour=22, minute=30)
    assert sweep_and_send(evening) != {}
    attempt = ContactAttempt.objects.get(followup=followup)
    assert (attempt.status, attempt.tries, sms.requests) == ("pending", 0, 0)
    assert attempt.next_try_at == at(71, hour=8)
    assert sweep_and_send(at(71, hour=7, minute=59)) == {}
    assert sms.requests == 0
    assert sweep_and_send(at(71, hour=8)) == {attempt.pk: "sent"}
    assert len(sms.texts) == 1


@pytest.mark.parametrize(
    ("utc", "until"),
    [
        # The night the clocks go forward (29 March 2026, 02:00 CET -> 03:00 CEST).
        ("2026-03-28T20:30:00", "2026-03-29T06:00:00"),  # 21:30 CET: until 08:00 CEST
        ("2026-03-28T19:59:00", None),  # 20:59 CET
        ("2026-03-29T05:59:00", "2026-03-29T06:00:00"),  # 07:59 CEST
        ("2026-03-29T06:00:00", None),  # 08:00 CEST
        # The night they go back (25 October 2026, 03:00 CEST -> 02:00 CET).
        ("2026-10-24T19:00:00", "2026-10-25T07:00:00"),  # 21:00 CEST
        ("2026-10-25T06:59:00", "2026-10-25T07:00:00"),  # 07:59 CET
        ("2026-10-25T07:00:00", None),  # 08:00 CET
    ],
)
def test_quiet_hours_follow_the_wall_clock_across_dst(utc, until):
    now = datetime.datetime.fromisoformat(utc).replace(tzinfo=datetime.UTC)
    expected = until and datetime.datetime.fromisoformat(until).replace(tzinfo=datetime.UTC)
    assert texting.quiet_until(now, "Europe/Copenhagen") == expected


def test_time_travel_across_the_spring_night_sends_at_eight_summer_time(site_a, sms):
    followup = make_texted(site_a)
    # Window opens around day 76: travel to the evening before the change, when it is due.
    followups_sweep(now=at(70))  # invited (text due)
    attempt = ContactAttempt.objects.get(followup=followup)
    ContactAttempt.objects.filter(pk=attempt.pk).update(status="pending")
    evening = datetime.datetime(2026, 3, 28, 21, 15, tzinfo=COPENHAGEN)
    with time_machine.travel(evening, tick=False):
        assert contact_attempt_send(attempt_id=attempt.pk) == "pending"
    attempt.refresh_from_db()
    assert attempt.next_try_at == datetime.datetime(2026, 3, 29, 8, tzinfo=COPENHAGEN)
    for hour in range(0, 8):  # every hour of the short night: nothing
        moment = datetime.datetime(2026, 3, 29, hour, 30, tzinfo=COPENHAGEN)
        with time_machine.travel(moment, tick=False):
            followups_sweep(now=moment)
            assert contact_attempt_send(attempt_id=attempt.pk) == "pending"
    assert sms.requests == 0
    morning = datetime.datetime(2026, 3, 29, 8, 0, tzinfo=COPENHAGEN)
    with time_machine.travel(morning, tick=False):
        assert contact_attempt_send(attempt_id=attempt.pk) == "sent"
    assert len(sms.texts) == 1


# --- receipts and replies ---------------------------------------------------------------------


def signed_post(client, path: str, data: dict, token: str, *, valid: bool = True):
    url = "https://registry.example.org" + path
    signature = RequestValidator(token).compute_signature(url, data)
    if not valid:
        signature = RequestValidator("not-the-token").compute_signature(url, data)
    return client.post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


def test_delivery_receipts_update_the_attempt_and_bad_signatures_are_refused(client, site_a, sms):
    followup = make_texted(site_a)
    sweep_and_send(at(70))
    attempt = ContactAttempt.objects.get(followup=followup)
    path = reverse("sms-status", args=[attempt.pk])
    receipt = {
        "MessageSid": attempt.provider_id,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "To": PHONE,
    }
    forged = signed_post(client, path, receipt | {"MessageStatus": "delivered"}, "x", valid=False)
    assert forged.status_code == 403
    unsigned = client.post(path, receipt)
    assert unsigned.status_code == 403
    attempt.refresh_from_db()
    assert attempt.delivery_status == ""
    # A signature for another attempt's URL does not fit this one.
    other = signed_post(client, reverse("sms-status", args=[attempt.pk + 1]), receipt, "fake-token")
    assert other.status_code == 204
    response = signed_post(client, path, receipt, sms.auth_token)
    assert response.status_code == 204
    attempt.refresh_from_db()
    assert (attempt.delivery_status, attempt.provider_error_code) == ("undelivered", 30003)
    assert DIGITS not in str(ContactAttempt.objects.filter(pk=attempt.pk).values().get())
    # A late "delivered" does not overwrite the first final word.
    signed_post(client, path, receipt | {"MessageStatus": "delivered"}, sms.auth_token)
    attempt.refresh_from_db()
    assert attempt.delivery_status == "undelivered"


def undelivered_receipt(attempt: ContactAttempt, status: str = "undelivered") -> dict:
    return {
        "MessageSid": attempt.provider_id,
        "MessageStatus": status,
        "ErrorCode": "30005",  # Twilio's "unknown destination handset"
        "To": PHONE,
    }


def test_undelivered_receipt_sends_the_step_by_email_once_however_often_replayed(
    client, site_a, sms, caplog
):
    # The adversary: Twilio retrying its callback (the same receipt three times), then a
    # contradicting "failed" for the same text.
    followup = make_texted(site_a, email="karen@example.org", preferred="sms")
    with caplog.at_level(logging.DEBUG):
        sweep_and_send(at(70))
        (text,) = ContactAttempt.objects.filter(followup=followup)
        path = reverse("sms-status", args=[text.pk])
        for _replay in range(3):
            assert (
                signed_post(client, path, undelivered_receipt(text), sms.auth_token).status_code
                == 204
            )
        signed_post(client, path, undelivered_receipt(text, "failed"), sms.auth_token)
    text.refresh_from_db()
    assert (text.status, text.delivery_status, text.provider_error_code) == (
        "sent",
        "undelivered",
        30005,
    )
    (email,) = ContactAttempt.objects.filter(followup=followup, channel="email")
    assert (email.kind, email.status) == ("invitation", "pending")
    sweep_and_send(at(70, minute=15))
    sweep_and_send(at(70, minute=30))
    email.refresh_from_db()
    assert (email.status, email.error) == ("sent", "")
    assert [m.to for m in mail.outbox] == [["karen@example.org"]]
    assert ContactAttempt.objects.filter(followup=followup).count() == 2
    # The next step avoids the number the provider could not deliver to.
    sweep_and_send(at(84))
    reminder = ContactAttempt.objects.get(followup=followup, kind="reminder_1")
    assert reminder.channel == "email"
    assert len(sms.texts) == 1
    followup.refresh_from_db()
    assert followup.on_phone_worklist_since is None
    no_number_anywhere(caplog)


def test_undelivered_receipt_without_email_puts_the_followup_on_the_phone_worklist(
    client, site_a, sms
):
    followup = make_texted(site_a, email="")
    sweep_and_send(at(70))
    text = ContactAttempt.objects.get(followup=followup)
    path = reverse("sms-status", args=[text.pk])
    signed_post(client, path, undelivered_receipt(text, "failed"), sms.auth_token)
    followup.refresh_from_db()
    assert followup.worklist_reason == "sms_undelivered"
    assert followup.on_phone_worklist_since is not None
    assert list(ContactAttempt.objects.filter(followup=followup)) == [text]


def test_undelivered_receipt_after_the_email_bounced_goes_to_the_worklist(client, site_a, sms):
    # Email preferred but refused for good; the step went by text, which was not delivered:
    # the bounced address is not tried again.
    followup = make_texted(site_a, email="karen@example.org", preferred="email")
    ContactAttempt.objects.create(
        followup=followup, site=site_a, kind="invitation", channel="sms", status="sent",
        provider_id="SM" + "1" * 32,
    )  # fmt: skip
    ContactAttempt.objects.create(
        followup=followup, site=site_a, kind="reminder_1", channel="email", status="failed"
    )
    text = ContactAttempt.objects.get(followup=followup, channel="sms")
    signed_post(
        client, reverse("sms-status", args=[text.pk]), undelivered_receipt(text), sms.auth_token
    )
    assert not ContactAttempt.objects.filter(
        followup=followup, kind="invitation", channel="email"
    ).exists()
    followup.refresh_from_db()
    assert followup.worklist_reason == "sms_undelivered"


def test_undelivered_receipt_for_a_completed_followup_creates_nothing(client, site_a, sms):
    followup = make_texted(site_a, email="karen@example.org")
    sweep_and_send(at(70))
    text = ContactAttempt.objects.get(followup=followup)
    assert followup_complete(procedure_id=followup.procedure_id, timepoint="month_3") == 1
    path = reverse("sms-status", args=[text.pk])
    assert signed_post(client, path, undelivered_receipt(text), sms.auth_token).status_code == 204
    text.refresh_from_db()
    assert text.delivery_status == "undelivered"  # recorded all the same
    assert list(ContactAttempt.objects.filter(followup=followup)) == [text]
    followup.refresh_from_db()
    assert (followup.on_phone_worklist_since, followup.worklist_reason) == (None, "")
    sweep_and_send(at(70, minute=15))
    assert mail.outbox == []


def test_forged_undelivered_receipt_creates_nothing(client, site_a, sms):
    # The adversary: someone without the auth token posting "undelivered" to turn a text into
    # an email (or a call) of their choosing.
    followup = make_texted(site_a, email="karen@example.org")
    sweep_and_send(at(70))
    text = ContactAttempt.objects.get(followup=followup)
    path = reverse("sms-status", args=[text.pk])
    forged = signed_post(client, path, undelivered_receipt(text), "x", valid=False)
    unsigned = client.post(path, undelivered_receipt(text))
    assert (forged.status_code, unsigned.status_code) == (403, 403)
    assert list(ContactAttempt.objects.filter(followup=followup)) == [text]
    text.refresh_from_db()
    assert text.delivery_status == ""
    followup.refresh_from_db()
    assert followup.on_phone_worklist_since is None


def receipts_waiting_on_the_attempt() -> int:
    # pghistory puts its context statement before each query: the UPDATE is inside the text.
    with connection.cursor() as cursor:
        # Asked inside the test's transaction, which would otherwise see its first reading.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
            """ AND query LIKE '%%UPDATE "outcomes_contactattempt" SET "delivery_status"%%'"""
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_receipts_racing_create_one_email(site_a, sms):
    # The adversary: Twilio's retry arriving while the first delivery of the receipt is still
    # being handled, on two gunicorn threads. Both are made to reach the UPDATE together: the
    # test holds the attempt's row lock until both wait on it.
    followup = make_texted(site_a, email="karen@example.org")
    sweep_and_send(at(70))
    text = ContactAttempt.objects.get(followup=followup)
    path = reverse("sms-status", args=[text.pk])
    answers: list[int] = []

    def post() -> None:
        try:
            answers.append(
                signed_post(Client(), path, undelivered_receipt(text), sms.auth_token).status_code
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    with transaction.atomic():
        ContactAttempt.objects.select_for_update().get(pk=text.pk)
        for thread in threads:
            thread.start()
        wait_for(lambda: receipts_waiting_on_the_attempt() == 2, timeout=20, what="both receipts")
    for thread in threads:
        thread.join(timeout=scaled(20))
    assert answers == [204, 204]
    (email,) = ContactAttempt.objects.filter(followup=followup, channel="email")
    sweep_and_send(at(70, minute=15))
    sweep_and_send(at(70, minute=30))
    email.refresh_from_db()
    assert (email.status, len(mail.outbox)) == ("sent", 1)


def test_the_database_refuses_a_second_attempt_for_one_step_and_channel(site_a, sms):
    # The backstop under the receipt's conditional UPDATE: whatever the Python does, one step
    # has one email attempt.
    followup = make_texted(site_a, email="karen@example.org")
    ContactAttempt.objects.create(
        followup=followup, site=site_a, kind="invitation", channel="email"
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactAttempt.objects.create(
            followup=followup, site=site_a, kind="invitation", channel="email"
        )


def test_stop_reply_stops_the_next_reminder(client, site_a, sms):
    followup = make_texted(site_a, email="")
    sweep_and_send(at(70))
    assert len(sms.texts) == 1
    path = reverse("sms-inbound")
    forged = signed_post(client, path, {"From": PHONE, "Body": "STOP"}, "x", valid=False)
    assert forged.status_code == 403
    assert PatientContact.objects.get(phone=PHONE).sms_stopped_at is None
    response = signed_post(client, path, {"From": PHONE, "Body": "stop "}, sms.auth_token)
    assert response.status_code == 200
    assert PatientContact.objects.get(phone=PHONE).sms_stopped_at is not None
    # The reminder is due: no text; with no email either, the follow-up is a call.
    sweep_and_send(at(84))
    assert len(sms.texts) == 1
    assert not ContactAttempt.objects.filter(followup=followup, kind="reminder_1").exists()
    followup.refresh_from_db()
    assert followup.on_phone_worklist_since is not None


def test_stop_between_the_sweep_and_the_send_stops_that_text(client, site_a, sms):
    followup = make_texted(site_a, email="karen@example.org")
    sweep_and_send(at(70))
    report = followups_sweep(now=at(84))
    (reminder_id,) = report.attempt_ids
    signed_post(client, reverse("sms-inbound"), {"From": PHONE, "Body": "Stop"}, sms.auth_token)
    assert contact_attempt_send(attempt_id=reminder_id, now=at(84)) == "skipped"
    assert len(sms.texts) == 1
    # The same reminder by email instead.
    sweep_and_send(at(84, minute=5))
    email = ContactAttempt.objects.get(followup=followup, kind="reminder_1", channel="email")
    assert email.status == "sent"


def test_other_replies_do_not_stop_texts(client, site_a, sms):
    make_texted(site_a)
    signed_post(client, reverse("sms-inbound"), {"From": PHONE, "Body": "Tak"}, sms.auth_token)
    assert PatientContact.objects.get(phone=PHONE).sms_stopped_at is None


# --- numbers at entry -------------------------------------------------------------------------


def test_phone_is_normalised_to_e164_in_the_sites_country(site_a):
    contact = PatientContact(patient=make_patient(site_a), phone="31 12 34 56")
    contact.full_clean()
    assert contact.phone == PHONE
    site_a.country = "GB"
    site_a.save()
    contact = PatientContact(patient=make_patient(site_a), phone="07400 123456")
    contact.full_clean()
    assert contact.phone == "+447400123456"


def test_an_invalid_number_is_refused_without_repeating_it(site_a):
    contact = PatientContact(patient=make_patient(site_a), phone="12 34 5")
    with pytest.raises(ValidationError) as error:
        contact.full_clean()
    assert "phone" in error.value.message_dict
    assert "12 34 5" not in str(error.value) and "12345" not in str(error.value)


def test_database_refuses_a_number_not_in_e164(site_a):
    patient = make_patient(site_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        PatientContact.objects.create(patient=patient, phone="31 12 34 56")
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO registry_patientcontact (patient_id, name, email, phone, "
            "preferred_language, consent_to_contact, preferred_channel, created_at, updated_at) "
            "VALUES (%s, '', '', '0045 31123456', 'da', true, 'sms', now(), now())",
            [patient.pk],
        )


def test_log_handlers_redact_phone_numbers():
    from registry.project.redaction import RedactTokensFilter

    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "to %s: %s", (PHONE, "+45 x"), None)
    RedactTokensFilter().filter(record)
    assert record.getMessage() == "to [phone]: +45 x"
