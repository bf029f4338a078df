"""Personal consent links: the questionnaire links' rules (design.md §6) for consent.

The token is HMAC-SHA256(SECRET_KEY, request id and a random nonce), 256 bits in base64url;
only its SHA-256 is stored, so a copy of the database cannot open a link; a new link for the
patient replaces the previous one; an unknown, malformed, replaced or expired token gets the
one neutral page, and failed requests are rate-limited per client address
(``outcomes.questionnaire.ratelimit``). A link stays the patient's after they consented, to
download their copy and to withdraw, until it expires.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import secrets

from django.conf import settings
from django.urls import reverse

from outcomes.consent.models import ConsentRequest
from outcomes.followups.links import TOKEN_RE, token_hash

# How long a consent link works after it is sent.
LINK_DAYS = 60


def _token(request_id: int, nonce: str) -> str:
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"consent-link:{request_id}:{nonce}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def consent_link_issue(*, patient, now: datetime.datetime) -> str:
    """A new consent link for ``patient`` (replacing any earlier one); the raw token."""
    ConsentRequest.objects.filter(patient=patient, replaced_at__isnull=True).update(replaced_at=now)
    request = ConsentRequest.objects.create(
        patient=patient,
        nonce=secrets.token_hex(16),
        token_hash="0" * 64,  # replaced below, once the id is known
        issued_at=now,
        expires_at=now + datetime.timedelta(days=LINK_DAYS),
    )
    token = _token(request.pk, request.nonce)
    ConsentRequest.objects.filter(pk=request.pk).update(token_hash=token_hash(token))
    return token


def consent_link_url(token: str) -> str:
    return f"{settings.SITE_URL}{reverse('consent', args=[token])}"


def request_for_token(token: str, *, now: datetime.datetime) -> ConsentRequest | None:
    """The consent request behind ``token`` while it works, or None for every reason alike."""
    if not TOKEN_RE.fullmatch(token):
        return None
    request = (
        ConsentRequest.objects.select_related("patient__site", "patient__contact", "consent")
        .filter(token_hash=token_hash(token), replaced_at__isnull=True)
        .order_by()
        .first()
    )
    if request is None or request.expires_at <= now:
        return None
    if request.patient.date_of_death is not None:
        return None
    return request
