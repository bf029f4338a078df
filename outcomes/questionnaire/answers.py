"""The patient's answers behind a link: drafts saved step by step, and the one final submit."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from django.db import transaction

from outcomes.followups import links
from outcomes.followups.schedule import local_today
from outcomes.models import FollowUp, QuestionnaireDraft, QuestionnaireResponse
from outcomes.questionnaire.steps import clean_answers
from outcomes.responses import response_save_scored


def link_opened(*, followup: FollowUp, now: datetime.datetime) -> None:
    """Record the first opening of the follow-up's current link (shown to staff)."""
    FollowUp.objects.filter(pk=followup.pk, link_opened_at__isnull=True).update(link_opened_at=now)


@transaction.atomic
def questionnaire_draft_save(*, token: str, answers: dict, now: datetime.datetime) -> bool:
    """Save one step's valid answers to the draft behind ``token``.

    Returns False, saving nothing, when the link is no longer answerable (submitted,
    cancelled, expired) by the time the row lock is held.
    """
    followup = links.followup_for_token(token, now=now, for_update=True)
    if followup is None:
        return False
    draft, _created = QuestionnaireDraft.objects.get_or_create(followup=followup)
    draft.answers = {**draft.answers, **answers}
    draft.save()
    FollowUp.objects.filter(pk=followup.pk, link_started_at__isnull=True).update(
        link_started_at=now
    )
    return True


class Submit(enum.Enum):
    SUBMITTED = "submitted"
    UNAVAILABLE = "unavailable"
    INCOMPLETE = "incomplete"


@dataclass(frozen=True)
class SubmitResult:
    outcome: Submit
    step: str = ""
    response: QuestionnaireResponse | None = None


@transaction.atomic
def questionnaire_submit(*, token: str, now: datetime.datetime) -> SubmitResult:
    """Turn the draft behind ``token`` into the follow-up's scored response, exactly once.

    The follow-up row is locked first, so of two submits racing, the second waits and then
    finds the follow-up completed (UNAVAILABLE); the unique (procedure, timepoint) constraint
    on responses backs this up. An incomplete draft returns the first step to finish.
    """
    followup = links.followup_for_token(token, now=now, for_update=True)
    if followup is None:
        return SubmitResult(Submit.UNAVAILABLE)
    site = followup.procedure.patient.site
    draft = QuestionnaireDraft.objects.filter(followup=followup).first()
    try:
        answers = clean_answers(draft.answers if draft else {}, site.eq5d_levels)
    except ValueError as incomplete:
        return SubmitResult(Submit.INCOMPLETE, step=str(incomplete))
    response = response_save_scored(
        response=QuestionnaireResponse(
            procedure=followup.procedure,
            timepoint=followup.timepoint,
            mode=QuestionnaireResponse.Mode.WEB_LINK,
            answered_on=local_today(now, site.time_zone),
            eq5d_version=site.eq5d_version,
            **answers,
        )
    )
    FollowUp.objects.filter(pk=followup.pk).update(link_submitted_at=now)
    # The response now holds the answers; the draft copy is not kept.
    QuestionnaireDraft.objects.filter(followup=followup).delete()
    return SubmitResult(Submit.SUBMITTED, response=response)
