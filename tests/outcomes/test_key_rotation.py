"""Rotating SECRET_KEY with the old key in SECRET_KEY_FALLBACKS keeps questionnaire links
already sent and staff sessions working; dropping the old key ends them."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from outcomes.followups import links
from outcomes.models import FollowUp

NEW_KEY = "rotated-secret-key-for-tests-only-0123456789-abcdefghij"


@pytest.fixture(autouse=True)
def _in_window(clock):
    return clock


@pytest.fixture
def staff_session(client_a):
    assert client_a.get("/admin/").status_code == 200
    return client_a


def test_links_and_sessions_survive_a_rotation_with_the_old_key_as_fallback(
    settings, client, staff_session, followup, token
):
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = [old_key]

    assert client.get(reverse("questionnaire", args=[token])).status_code == 200
    # a reminder carries the same link the patient already has
    followup.refresh_from_db()
    assert links.link_token(followup) == token
    # staff stay logged in
    assert staff_session.get("/admin/").status_code == 200
    # links issued from now on use the new key
    fresh = FollowUp.objects.get(pk=followup.pk)
    new_token = links.link_issue(fresh, now=timezone.now())
    assert new_token == links._token(fresh.pk, fresh.link_nonce, NEW_KEY)


def test_dropping_the_old_key_ends_sessions_and_reminders_get_a_new_link(
    settings, client, staff_session, followup, token
):
    settings.SECRET_KEY = NEW_KEY
    settings.SECRET_KEY_FALLBACKS = []

    assert staff_session.get("/admin/").status_code == 302  # back to the login page
    followup.refresh_from_db()
    reminder_token = links.link_token(followup)
    # not a link that cannot work: a new one, and the stored hash follows it
    assert reminder_token != token
    followup.refresh_from_db()
    assert followup.link_token_hash == links.token_hash(reminder_token)
    assert client.get(reverse("questionnaire", args=[reminder_token])).status_code == 200
    assert client.get(reverse("questionnaire", args=[token])).status_code == 404
