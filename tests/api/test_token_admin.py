"""Managers create and revoke API tokens in the admin."""

import pytest
from django.urls import reverse
from knox.models import AuthToken
from rest_framework.test import APIClient


def test_a_manager_creates_a_token_that_is_shown_once(registry, client, manager, auditor_a):
    client.force_login(manager)
    url = reverse("admin:knox_authtoken_add")
    assert client.get(url).status_code == 200
    page = client.post(url, {"user": auditor_a.pk})
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    token = page.context["token"]
    assert token in page.content.decode()
    assert not page.cookies.get("messages")  # never parked in a message cookie
    stored = AuthToken.objects.get(user=auditor_a)
    assert token != stored.digest
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/procedures").status_code == 200
    listing = client.get(reverse("admin:knox_authtoken_changelist")).content.decode()
    assert stored.token_key in listing
    assert token not in listing


def test_a_manager_revokes_tokens_with_the_admin_action(registry, client, manager, auditor_a):
    from api.services import api_token_create

    _row, token = api_token_create(user=auditor_a)
    client.force_login(manager)
    page = client.post(
        reverse("admin:knox_authtoken_changelist"),
        {"action": "revoke", "_selected_action": [AuthToken.objects.get().pk]},
        follow=True,
    )
    assert "1 token revoked." in page.content.decode()
    assert not AuthToken.objects.exists()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert api.get("/api/v1/procedures").status_code == 401


@pytest.mark.parametrize("name", ["admin:knox_authtoken_add", "admin:knox_authtoken_changelist"])
def test_site_staff_cannot_manage_tokens(registry, client, staff_a, name):
    client.force_login(staff_a)
    assert client.get(reverse(name)).status_code == 403
    assert client.post(reverse("admin:knox_authtoken_add"), {"user": staff_a.pk}).status_code == 403
    assert not AuthToken.objects.exists()
