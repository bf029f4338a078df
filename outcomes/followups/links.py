"""Personal questionnaire links (design.md §6).

The token is HMAC-SHA256(SECRET_KEY, follow-up id and a random nonce): 256 bits, recomputable
by the server for reminders, never stored. The database keeps only the nonce and the SHA-256
of the token, so a copy of the database cannot produce a working link. A new nonce (re-send)
invalidates the previous link.

Key rotation: a link is checked against the stored SHA-256, so a link already sent keeps
working whatever the key; a reminder recomputes the token with the current key or, for a link
issued before a rotation, with the key in ``SECRET_KEY_FALLBACKS`` that made it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import re
import secrets

from django.conf import settings
from django.db.models import JSONField, OuterRef, Subquery
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from outcomes.followups.schedule import local_today
from outcomes.models import FollowUp, QuestionnaireDraft
from registry.models import PatientContact

# 32 bytes of HMAC in unpadded base64url.
TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}")


ANSWERABLE_STATES = (FollowUp.State.OPEN, FollowUp.State.INVITED, FollowUp.State.REMINDED)


def _token(followup_id: int, nonce: str, key: str | None = None) -> str:
    digest = hmac.new(
        (key or settings.SECRET_KEY).encode(),
        f"questionnaire-link:{followup_id}:{nonce}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_issue(followup, *, now: datetime.datetime) -> str:
    """Give ``followup`` a fresh link issued at ``now`` (invalidating any earlier one); return
    the raw token.

    The caller saves ``link_nonce``, ``link_token_hash``, ``link_issued_at`` and
    ``link_opened_at``.
    """
    followup.link_nonce = secrets.token_hex(16)
    token = _token(followup.pk, followup.link_nonce)
    followup.link_token_hash = token_hash(token)
    followup.link_issued_at = now
    followup.link_opened_at = None
    return token


def link_token(followup) -> str:
    """The raw token of the follow-up's current link (for a reminder): made with the current
    secret key or, after a rotation, with the fallback key that issued it. Should none of the
    keys make it (a key dropped from the fallbacks too soon), the follow-up gets a new link
    rather than a reminder with a link that cannot work."""
    for key in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        token = _token(followup.pk, followup.link_nonce, key)
        if hmac.compare_digest(token_hash(token), followup.link_token_hash or ""):
            return token
    token = link_issue(followup, now=timezone.now())
    FollowUp.objects.filter(pk=followup.pk).update(
        link_nonce=followup.link_nonce,
        link_token_hash=followup.link_token_hash,
        link_issued_at=followup.link_issued_at,
        link_opened_at=None,
    )
    return token


def link_url(token: str) -> str:
    try:
        path = reverse("questionnaire", args=[token])
    except NoReverseMatch:
        path = f"/q/{token}/"
    return f"{settings.SITE_URL}{path}"


def followup_for_token(token: str, *, now: datetime.datetime, for_update: bool = False):
    """The follow-up a patient may answer through ``token`` now, or None.

    None covers every reason alike (malformed, unknown, superseded by a re-send, outside the
    window, completed, missed, cancelled, patient deceased or withdrawn): the caller shows one
    neutral page whatever the reason.
    """
    if not TOKEN_RE.fullmatch(token):
        return None
    # What every questionnaire page needs, in this one query: the patient's language and the
    # answers saved so far.
    queryset = FollowUp.objects.select_related("procedure__patient__site").annotate(
        preferred_language=_preferred_language(),
        draft_answers=Subquery(
            QuestionnaireDraft.objects.filter(followup_id=OuterRef("pk")).values("answers"),
            output_field=JSONField(),
        ),
    )
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    # A token hash names at most one follow-up: no ordering to compile or sort (.first()
    # would order by the follow-up's default order, through its procedure).
    followup = next(iter(queryset.filter(link_token_hash=token_hash(token)).order_by()[:1]), None)
    if followup is None or followup.state not in ANSWERABLE_STATES:
        return None
    patient = followup.procedure.patient
    if patient.date_of_death is not None or patient.consent_withdrawn_date is not None:
        return None
    today = local_today(now, patient.site.time_zone)
    if not followup.window_start <= today <= followup.window_end:
        return None
    return followup


def _preferred_language() -> Subquery:
    return Subquery(
        PatientContact.objects.filter(patient_id=OuterRef("procedure__patient_id")).values(
            "preferred_language"
        )[:1]
    )


def followup_submitted_through(token: str):
    """The follow-up whose answers were submitted through ``token`` (the link's own holder
    sees "already received"), or None."""
    if not TOKEN_RE.fullmatch(token):
        return None
    return (
        FollowUp.objects.select_related("procedure__patient")
        .annotate(preferred_language=_preferred_language())
        .filter(
            link_token_hash=token_hash(token),
            link_submitted_at__isnull=False,
            state=FollowUp.State.COMPLETED,
        )
        .first()
    )
