"""Sending contact attempts and new links (design.md §5-6).

Every message is a ``ContactAttempt`` row; ``contact_attempt_send`` re-checks under row locks
that the patient is alive, consenting and not finished before anything leaves the building.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from outcomes.followups import links
from outcomes.followups.messages import patient_message
from outcomes.followups.schedule import (
    local_today,
)
from outcomes.models import ContactAttempt, FollowUp
from registry.models import Patient, PatientContact

logger = logging.getLogger(__name__)


class SendFailed(Exception):
    """The email could not be sent; the attempt is marked failed and will be retried."""


def contact_attempt_send(*, attempt_id: int, now: datetime.datetime | None = None) -> str:
    """Send one contact attempt, at most once; returns its final status.

    Holds the attempt's and follow-up's row locks while it checks the patient is alive,
    consenting and still waiting, so a death, withdrawal or completion recorded a moment
    earlier stops the message. Raises ``SendFailed`` after recording the error.
    """
    now = now or timezone.now()
    error = ""
    with transaction.atomic():
        attempt = (
            ContactAttempt.objects.select_for_update(of=("self",))
            .select_related("site")
            .get(pk=attempt_id)
        )
        if attempt.status not in (ContactAttempt.Status.PENDING, ContactAttempt.Status.FAILED):
            return attempt.status
        try:
            if attempt.kind == ContactAttempt.Kind.DIGEST:
                _send_digest(attempt)
            else:
                skip = _send_to_patient(attempt, now)
                if skip:
                    attempt.status = ContactAttempt.Status.SKIPPED
                    attempt.error = skip
                    attempt.save(update_fields=["status", "error"])
                    return attempt.status
        except Exception as exc:  # noqa: BLE001 - any transport error is recorded and retried
            error = f"{type(exc).__name__}: {exc}"
            attempt.status = ContactAttempt.Status.FAILED
            attempt.error = error
            attempt.tries += 1
            attempt.save(update_fields=["status", "error", "tries"])
        else:
            attempt.status = ContactAttempt.Status.SENT
            attempt.error = ""
            attempt.tries += 1
            attempt.sent_at = now
            attempt.save(update_fields=["status", "error", "tries", "sent_at"])
    if error:
        logger.warning("contact attempt %s failed: %s", attempt_id, error)
        raise SendFailed(error)
    return ContactAttempt.Status.SENT


def _send_to_patient(attempt: ContactAttempt, now) -> str:
    followup = (
        FollowUp.objects.select_for_update(of=("self",))
        .select_related("procedure__patient__site")
        .get(pk=attempt.followup_id)
    )
    patient: Patient = Patient.objects.select_for_update().get(pk=followup.procedure.patient_id)
    contact = PatientContact.objects.filter(patient=patient).first()
    if patient.date_of_death is not None:
        return "patient deceased"
    if patient.consent_withdrawn_date is not None:
        return "consent withdrawn"
    if followup.state in FollowUp.FINAL_STATES:
        return f"follow-up {followup.state}"
    if contact is None or not contact.email or not contact.consent_to_contact:
        return "no email or no consent to contact"
    _email_link(attempt.kind, followup, contact, links.link_token(followup))
    today = local_today(now, patient.site.time_zone)
    updates = {"last_contact_on": today}
    if attempt.kind == ContactAttempt.Kind.INVITATION:
        updates["invitations_sent"] = F("invitations_sent") + 1
    FollowUp.objects.filter(pk=followup.pk).update(**updates)
    return ""


def _email_link(kind: str, followup: FollowUp, contact: PatientContact, token: str) -> None:
    url = links.link_url(token)
    with translation.override(contact.preferred_language):
        subject, body = patient_message(kind, followup, url)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [contact.email])


class LinkNotIssued(Exception):
    """A new link cannot be given for this follow-up; the message says why, for staff."""


@dataclass(frozen=True)
class IssuedLink:
    url: str
    emailed_to: str


def followup_link_resend(*, followup_id: int, now: datetime.datetime | None = None) -> IssuedLink:
    """Give a follow-up a new questionnaire link, invalidating the previous one, and email it
    when the patient has an email address and consented; otherwise staff hand the returned
    link over. Refuses (``LinkNotIssued``) outside the window, after completion or
    cancellation, and for a deceased or withdrawn patient. A failed email leaves the old link
    in place.
    """
    now = now or timezone.now()
    with transaction.atomic():
        followup = (
            FollowUp.objects.select_for_update(of=("self",))
            .select_related("procedure__patient__site")
            .get(pk=followup_id)
        )
        patient = Patient.objects.select_for_update().get(pk=followup.procedure.patient_id)
        today = local_today(now, followup.procedure.patient.site.time_zone)
        if patient.date_of_death is not None:
            raise LinkNotIssued(_("The patient has died."))
        if patient.consent_withdrawn_date is not None:
            raise LinkNotIssued(_("The patient has withdrawn consent."))
        if followup.state in FollowUp.FINAL_STATES:
            raise LinkNotIssued(
                _("This follow-up is %(state)s.") % {"state": followup.get_state_display()}
            )
        if not followup.window_start <= today <= followup.window_end:
            raise LinkNotIssued(
                _("The questionnaire window is %(start)s to %(end)s.")
                % {"start": followup.window_start, "end": followup.window_end}
            )
        token = links.link_issue(followup)
        if followup.state == FollowUp.State.SCHEDULED:
            followup.state = FollowUp.State.OPEN
        followup.save(
            update_fields=[
                "state",
                "link_nonce",
                "link_token_hash",
                "link_issued_at",
                "link_opened_at",
            ]
        )
        contact = PatientContact.objects.filter(patient=patient).first()
        emailed_to = ""
        if contact is not None and contact.email and contact.consent_to_contact:
            _email_link(ContactAttempt.Kind.INVITATION, followup, contact, token)
            emailed_to = contact.email
            FollowUp.objects.filter(pk=followup.pk).update(last_contact_on=today)
    return IssuedLink(url=links.link_url(token), emailed_to=emailed_to)


def _send_digest(attempt: ContactAttempt) -> None:
    worklist = (
        FollowUp.objects.filter(
            procedure__patient__site=attempt.site,
            on_phone_worklist_since__isnull=False,
            phone_outcome="",
        )
        .exclude(state__in=FollowUp.FINAL_STATES)
        .select_related("procedure__patient")
        .order_by("window_end")
    )
    lines = [
        f"- {f.procedure.patient.registry_id}: {f.get_timepoint_display()}, "
        f"window closes {f.window_end.isoformat()}"
        for f in worklist
    ]
    subject = f"Phone follow-up worklist for {attempt.site.code}: {len(lines)} patients"
    body = "\n".join(
        [
            "These follow-ups have had no answer after two reminders (or have no email):",
            "",
            *lines,
            "",
            f"Work through them at {settings.SITE_URL}/admin/outcomes/followup/?worklist=yes",
        ]
    )
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [attempt.site.contact_email])
