"""Staff sending a questionnaire link: confirmation, double click, contact attempt, mail down."""

import re
import socket
import threading

import pytest
from django.core import mail
from django.urls import reverse

from outcomes.followups.links import token_hash
from outcomes.models import ContactAttempt, FollowUp
from tests.outcomes.test_questionnaire_admin import confirm, emailed_token, send_link_url


@pytest.fixture(autouse=True)
def _in_window(clock):
    return clock


def version_of(page) -> str:
    return re.search(r'name="version" value="([^"]+)"', page.content.decode()).group(1)


def test_double_click_on_the_confirmation_sends_one_email_and_the_link_works(
    client_a, client, followup, token
):
    mail.outbox.clear()
    version = version_of(client_a.get(send_link_url(followup)))

    first = client_a.post(send_link_url(followup), {"version": version})
    second = client_a.post(send_link_url(followup), {"version": version}, follow=True)

    assert first.status_code == 302
    (message,) = mail.outbox
    new_token = emailed_token(message)
    assert FollowUp.objects.get(pk=followup.pk).link_token_hash == token_hash(new_token)
    first_shown, shown = [str(m) for m in second.context["messages"]]
    assert "was emailed to the patient" in first_shown
    assert "had already been sent" in shown and "nothing more was sent" in shown
    client.logout()
    assert client.get(reverse("questionnaire", args=[new_token])).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_two_racing_confirmations_send_one_email(client_a, followup, token, staff_a):
    """Two tabs posting the same confirmation at once: the row lock lets one through."""
    from django.db import connection

    from outcomes.followups.manual_send import Sent, followup_link_send_by_staff, link_version

    mail.outbox.clear()
    version = link_version(FollowUp.objects.get(pk=followup.pk))
    results = []

    def send():
        try:
            results.append(
                followup_link_send_by_staff(
                    followup_id=followup.pk, user=staff_a, confirmed_version=version
                ).outcome
            )
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.value for r in results) == ["duplicate", "emailed"]
    assert len(mail.outbox) == 1
    assert ContactAttempt.objects.filter(kind="manual").count() == 1
    assert Sent.EMAILED in results


def test_manual_send_is_recorded_as_a_contact_attempt_with_the_sender(
    client_a, staff_a, followup, token
):
    confirm(client_a, followup)

    manual = ContactAttempt.objects.get(followup=followup, kind="manual")
    assert (manual.status, manual.channel, manual.sent_by, manual.tries) == (
        "sent",
        "email",
        staff_a,
        1,
    )
    # The automatic invitation stays, and a second manual send is a second row.
    confirm(client_a, followup)
    kinds = sorted(followup.attempts.values_list("kind", flat=True))
    assert kinds == ["invitation", "manual", "manual"]
    page = client_a.get(reverse("admin:outcomes_followup_change", args=[followup.pk]))
    assert "Link sent by staff" in page.content.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_mail_server_down_gives_a_clear_message_and_the_old_link_still_works(
    client_a, client, followup, token, settings
):
    """A refused SMTP connection (nothing listens on the port) used to answer 500."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    before = FollowUp.objects.get(pk=followup.pk).link_token_hash

    response = confirm(client_a, followup, follow=True)

    assert response.status_code == 200
    (shown,) = [str(m) for m in response.context["messages"]]
    assert "The mail server did not take the email" in shown
    assert "previous link still works" in shown
    assert FollowUp.objects.get(pk=followup.pk).link_token_hash == before
    failed = ContactAttempt.objects.get(followup=followup, kind="manual")
    assert (failed.status, failed.error) == ("failed", "connection refused")
    client.logout()
    assert client.get(reverse("questionnaire", args=[token])).status_code == 200


def test_bulk_action_asks_for_confirmation_before_sending(client_a, followup, token):
    mail.outbox.clear()
    changelist = reverse("admin:outcomes_followup_changelist")
    page = client_a.post(changelist, {"action": "send_new_link", "_selected_action": [followup.pk]})
    assert page.status_code == 200
    assert "Yes, send the new link" in page.content.decode()
    assert mail.outbox == []

    version = re.search(
        rf'name="version-{followup.pk}" value="([^"]+)"', page.content.decode()
    ).group(1)
    done = client_a.post(
        changelist,
        {
            "action": "send_new_link",
            "_selected_action": [followup.pk],
            "confirmed": "yes",
            f"version-{followup.pk}": version,
        },
    )
    assert done.status_code == 302
    assert len(mail.outbox) == 1
