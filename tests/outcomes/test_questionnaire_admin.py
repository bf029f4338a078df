"""Staff side of questionnaire links: re-send (old link dies), link progress, scores."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from outcomes.followups.links import token_hash
from outcomes.models import FollowUp
from registry.models import PatientContact
from tests.outcomes.conftest import answer_all


@pytest.fixture(autouse=True)
def _in_window(clock):
    return clock


def send_link_url(followup):
    return reverse("admin:outcomes_followup_send_link", args=[followup.pk])


def confirm(client, followup, **kwargs):
    """Post the confirmation page's form, as a click on its button does."""
    page = client.get(send_link_url(followup))
    version = re.search(r'name="version" value="([^"]+)"', page.content.decode()).group(1)
    return client.post(send_link_url(followup), {"version": version}, **kwargs)


def emailed_token(message):
    (url,) = re.findall(r"http\S+/q/\S+/", message.body)
    return url.rstrip("/").rsplit("/", 1)[-1]


def test_staff_resend_emails_a_new_link_and_the_old_one_stops_working(
    client_a, client, followup, token
):
    mail.outbox.clear()

    response = confirm(client_a, followup)

    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.to == ["karen@example.org"]
    new_token = emailed_token(message)
    assert new_token != token
    client.logout()
    assert client.get(reverse("questionnaire", args=[token])).status_code == 404
    assert client.get(reverse("questionnaire", args=[new_token])).status_code == 200


def test_resend_without_email_shows_the_link_to_staff_once(client_a, followup, patient):
    PatientContact.objects.filter(patient=patient).update(email="")
    mail.outbox.clear()

    response = confirm(client_a, followup, follow=True)

    assert mail.outbox == []
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    assert "No email on file" in page
    followup.refresh_from_db()
    new_token = re.search(r"/q/([\w-]{43})/", page).group(1)
    assert followup.link_token_hash != ""
    assert followup.link_token_hash == token_hash(new_token)
    # Shown in that response only: not in the messages cookie, nor in the session.
    assert all(new_token not in morsel.value for morsel in response.cookies.values())
    assert new_token not in str(dict(client_a.session))
    assert (
        new_token
        not in client_a.get(send_link_url(followup).rsplit("send-link/", 1)[0]).content.decode()
    )


def test_resend_is_refused_for_a_completed_follow_up(client_a, client, followup, token):
    answer_all(client, token)
    client.post(reverse("questionnaire_review", args=[token]))
    mail.outbox.clear()

    response = confirm(client_a, followup, follow=True)

    (shown,) = [str(m) for m in response.context["messages"]]
    assert "This follow-up is Completed." in shown
    assert mail.outbox == []


def test_other_sites_staff_cannot_resend(client, staff_b, followup):
    client.force_login(staff_b)
    before = FollowUp.objects.get(pk=followup.pk).link_token_hash

    assert client.post(send_link_url(followup), {"version": "none"}).status_code == 404
    assert client.get(send_link_url(followup)).status_code == 404
    assert FollowUp.objects.get(pk=followup.pk).link_token_hash == before


def test_resend_asks_for_confirmation_first_and_sends_nothing_on_get(client_a, followup):
    mail.outbox.clear()
    page = client_a.get(send_link_url(followup)).content.decode()
    assert "the link they have now stops working" in page
    assert "Yes, send the new link" in page
    assert client_a.post(send_link_url(followup)).status_code == 200  # no version: asks again
    assert mail.outbox == []


def test_change_page_shows_link_progress_and_the_scores(client_a, client, followup, token):
    page = client_a.get(reverse("admin:outcomes_followup_change", args=[followup.pk]))
    assert "not yet answered" in page.content.decode()
    assert "Send a new questionnaire link" in page.content.decode()

    client.get(reverse("questionnaire", args=[token]))
    answer_all(client, token)
    client.post(reverse("questionnaire_review", args=[token]))

    followup.refresh_from_db()
    assert followup.link_opened_at is not None
    assert followup.link_started_at is not None
    assert followup.link_submitted_at is not None
    page = client_a.get(
        reverse("admin:outcomes_followup_change", args=[followup.pk])
    ).content.decode()
    assert "Web link</a>: EQ-5D index 0.5" in page or re.search(
        r"EQ-5D index -?\d\.\d{3} \(DK-5L\)", page
    )
    assert re.search(r"ODI \d+\.\d%, pain VAS 72", page)


def test_the_send_link_form_never_redirects_to_another_site(client_a, followup):
    page = client_a.get(send_link_url(followup))
    version = re.search(r'name="version" value="([^"]+)"', page.content.decode()).group(1)

    response = client_a.post(
        send_link_url(followup), {"version": version, "next": "https://evil.example/phish"}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:outcomes_followup_change", args=[followup.pk])
