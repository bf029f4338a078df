"""The patient's answers behind a link: drafts saved step by step, and the one final submit."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass

from django.db import connection, transaction
from psycopg.types.json import Jsonb

from outcomes.followups import links
from outcomes.followups.schedule import local_today
from outcomes.models import FollowUp, QuestionnaireDraft, QuestionnaireResponse
from outcomes.questionnaire.steps import clean_answers
from outcomes.responses import response_save_scored


def link_opened(*, followup: FollowUp, now: datetime.datetime) -> None:
    """Record the first opening of the follow-up's current link (shown to staff)."""
    if followup.link_opened_at is None:
        FollowUp.objects.filter(pk=followup.pk, link_opened_at__isnull=True).update(
            link_opened_at=now
        )


_DRAFT_SAVE = """
WITH answerable AS (
    SELECT id FROM {followup}
    WHERE id = %(id)s AND link_token_hash = %(token_hash)s AND state = ANY(%(states)s)
    FOR UPDATE
), started AS (
    UPDATE {followup} SET link_started_at = %(now)s
    WHERE id IN (SELECT id FROM answerable) AND link_started_at IS NULL
)
INSERT INTO {draft} (followup_id, answers, updated_at)
SELECT id, %(answers)s, %(now)s FROM answerable
ON CONFLICT (followup_id) DO UPDATE
SET answers = {draft}.answers || EXCLUDED.answers, updated_at = EXCLUDED.updated_at
RETURNING followup_id
"""


def questionnaire_draft_save(*, followup: FollowUp, answers: dict, now: datetime.datetime) -> bool:
    """Merge one step's valid answers into the draft of ``followup`` (from
    ``links.followup_for_token``), and note when the patient started.

    One statement: it locks the follow-up row and writes only while it is still answerable
    through the same link, so a step saved as a racing submit commits (or a re-send replaces
    the link) finds it completed and saves nothing (returns False). Saving a step is not an
    audit event: the follow-up row changes only on the first.
    """
    sql = _DRAFT_SAVE.format(
        followup=FollowUp._meta.db_table, draft=QuestionnaireDraft._meta.db_table
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            {
                "id": followup.pk,
                "token_hash": followup.link_token_hash,
                "states": [state.value for state in links.ANSWERABLE_STATES],
                "now": now,
                "answers": Jsonb(answers),
            },
        )
        return cursor.fetchone() is not None


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
    try:
        answers = clean_answers(followup.draft_answers or {}, site.eq5d_levels)
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
        ),
        submitted_at=now,
    )
    # The response now holds the answers; the draft copy is not kept.
    QuestionnaireDraft.objects.filter(followup=followup).delete()
    return SubmitResult(Submit.SUBMITTED, response=response)
