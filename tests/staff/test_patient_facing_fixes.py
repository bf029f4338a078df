"""Patient-facing defects of issue 19: progress, the received page, the emails."""

import pytest
from django.core import mail
from django.urls import reverse

from outcomes.followups.sending import contact_attempt_send
from outcomes.followups.sweep import followups_sweep
from outcomes.models import ContactAttempt, FollowUp
from registry.models import PatientContact
from tests.outcomes.conftest import AFTER_WINDOW, IN_WINDOW, answer_all, step_url


def test_progress_never_reads_step_0_and_counts_from_1(client, followup, token):
    start = client.get(reverse("questionnaire", args=[token])).content.decode()
    assert "Step 0" not in start
    first = client.get(step_url(token, "pain")).content.decode()
    assert "Step 1 of 6" in first
    answer_all(client, token)
    review = client.get(reverse("questionnaire_review", args=[token])).content.decode()
    assert "Step 6 of 6" in review


def test_a_submitted_link_says_the_answers_were_already_received(client, followup, token):
    answer_all(client, token)
    client.post(reverse("questionnaire_review", args=[token]))

    for url in (reverse("questionnaire", args=[token]), step_url(token, "pain")):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "Your answers have already been received" in html
        assert "may have been answered already" not in html
    again = client.post(reverse("questionnaire_review", args=[token]))
    assert "Your answers have already been received" in again.content.decode()


def test_an_unknown_or_replaced_link_still_gets_the_neutral_page(client, followup, token):
    page = client.get(reverse("questionnaire", args=["A" * 43]))
    assert page.status_code == 404
    assert "already been received" not in page.content.decode()


@pytest.mark.parametrize(
    ("language", "date", "subject"),
    [
        ("en", "until 12 May 2026", "Reminder from Site AAA: your 3 months questionnaire"),
        ("da", "12. maj 2026", "Site AAA"),
    ],
)
def test_emails_name_the_clinic_and_print_local_dates(followup, patient, language, date, subject):
    PatientContact.objects.filter(patient=patient).update(preferred_language=language)
    mail.outbox.clear()
    # The invitation went out on the 1st, so the first reminder is due (7 days after it).
    sent = IN_WINDOW.replace(day=1)
    FollowUp.objects.filter(pk=followup.pk).update(invited_on=sent.date())
    ContactAttempt.objects.filter(followup=followup, kind="invitation").update(
        status="sent", sent_at=sent
    )
    for attempt_id in followups_sweep(now=IN_WINDOW).attempt_ids:
        contact_attempt_send(attempt_id=attempt_id, now=IN_WINDOW)
    (message,) = [m for m in mail.outbox if m.to == ["karen@example.org"]]
    assert subject in message.subject
    assert date in message.body
    assert "2026-05-12" not in message.body
    assert "Site AAA" in message.body


def test_after_the_window_the_link_is_neutral_not_received(client, followup, token, clock):
    clock.move_to(AFTER_WINDOW)
    page = client.get(reverse("questionnaire", args=[token]))
    assert page.status_code == 404
