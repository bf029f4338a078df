"""A questionnaire link sent by staff, recorded as a contact attempt (issue 19).

Kept apart from ``sending`` (the automatic chasing): staff confirm on a page that carries a digest
of the current link's nonce; the send happens only while that is still the current link,
so a double click or a second tab sends nothing more. Every outcome — emailed, handed over,
failed — is a ``ContactAttempt`` row with the staff member, so the chase history is complete,
and a mail server that is down gives a clear message with the previous link still working.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import logging
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from outcomes.followups.sending import (
    IssuedLink,
    LinkNotEmailed,
    LinkNotIssued,
    followup_link_resend,
)
from outcomes.models import ContactAttempt, FollowUp

logger = logging.getLogger(__name__)


class Sent(enum.Enum):
    EMAILED = "emailed"
    HANDOVER = "handover"  # no email or no consent: the link is shown to staff once
    DUPLICATE = "duplicate"  # the confirmed link had already been replaced: nothing sent
    REFUSED = "refused"  # outside the window, completed, deceased, withdrawn
    FAILED = "failed"  # the mail server refused or was unreachable: old link still works


@dataclass(frozen=True)
class ManualSend:
    outcome: Sent
    url: str = ""
    reason: str = ""
    issued_at: datetime.datetime | None = None


def link_version(followup: FollowUp) -> str:
    """What the confirmation page carries to name the link it would replace: a digest of the
    link's random nonce (not the nonce, which with the server's key makes the token)."""
    if not followup.link_nonce:
        return "none"
    return hashlib.sha256(f"link-version:{followup.link_nonce}".encode()).hexdigest()[:16]


def followup_link_send_by_staff(
    *, followup_id: int, user, confirmed_version: str, now: datetime.datetime | None = None
) -> ManualSend:
    """Replace the follow-up's link and email it (or return it to hand over), once per
    confirmation: ``confirmed_version`` must still be ``link_version`` of the follow-up."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            followup = FollowUp.objects.select_for_update(of=("self",)).get(pk=followup_id)
            if link_version(followup) != confirmed_version:
                return ManualSend(Sent.DUPLICATE, issued_at=followup.link_issued_at)
            issued: IssuedLink = followup_link_resend(followup_id=followup_id, now=now)
            emailed = bool(issued.emailed_to)
            ContactAttempt.objects.create(
                followup_id=followup_id,
                site_id=_site_id(followup_id),
                kind=ContactAttempt.Kind.MANUAL,
                channel=ContactAttempt.Channel.EMAIL
                if emailed
                else ContactAttempt.Channel.HANDOVER,
                status=ContactAttempt.Status.SENT,
                tries=1,
                sent_at=now,
                sent_by=user,
            )
    except LinkNotEmailed as failed:
        # The transaction rolled back: the previous link is still the patient's link. The
        # reason is classified (SMTP code and class): the server's text may echo the address.
        error = failed.reason
        logger.warning("staff link for follow-up %s not sent: %s", followup_id, error)
        ContactAttempt.objects.create(
            followup_id=followup_id,
            site_id=_site_id(followup_id),
            kind=ContactAttempt.Kind.MANUAL,
            channel=ContactAttempt.Channel.EMAIL,
            status=ContactAttempt.Status.FAILED,
            tries=1,
            error=error,
            sent_by=user,
        )
        return ManualSend(Sent.FAILED, reason=error)
    except LinkNotIssued as refusal:
        return ManualSend(Sent.REFUSED, reason=str(refusal))
    return ManualSend(Sent.EMAILED if emailed else Sent.HANDOVER, url=issued.url)


def _site_id(followup_id: int) -> int:
    return FollowUp.objects.filter(pk=followup_id).values_list(
        "procedure__patient__site_id", flat=True
    )[0]
