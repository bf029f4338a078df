"""Personal questionnaire links (design.md §6).

The token is HMAC-SHA256(SECRET_KEY, follow-up id and a random nonce): 256 bits, recomputable
by the server for reminders, never stored. The database keeps only the nonce and the SHA-256
of the token, so a copy of the database cannot produce a working link. A new nonce (re-send)
invalidates the previous link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from django.conf import settings
from django.urls import NoReverseMatch, reverse


def _token(followup_id: int, nonce: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(),
        f"questionnaire-link:{followup_id}:{nonce}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_issue(followup) -> str:
    """Give ``followup`` a fresh link (invalidating any earlier one); return the raw token.

    The caller saves ``link_nonce`` and ``link_token_hash``.
    """
    followup.link_nonce = secrets.token_hex(16)
    token = _token(followup.pk, followup.link_nonce)
    followup.link_token_hash = token_hash(token)
    return token


def link_token(followup) -> str:
    """The raw token of the follow-up's current link (for a reminder)."""
    return _token(followup.pk, followup.link_nonce)


def link_url(token: str) -> str:
    try:
        path = reverse("questionnaire", args=[token])
    except NoReverseMatch:
        path = f"/q/{token}/"
    return f"{settings.SITE_URL}{path}"
