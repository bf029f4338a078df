"""Writes of the outcomes app: scoring and re-scoring questionnaire responses, and the
patient's own answers through their link."""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from outcomes import links
from outcomes.chasing import followup_complete
from outcomes.instruments.eq5d import VALUE_SETS
from outcomes.instruments.odi import odi_score_decimal
from outcomes.models import FollowUp, QuestionnaireDraft, QuestionnaireResponse
from outcomes.questionnaire import clean_answers
from outcomes.schedule import local_today
from outcomes.scoring import eq5d_index_decimal


def value_set_for(response: QuestionnaireResponse) -> str:
    """The value set a response is scored with: its site's, when the site uses the version the
    patient answered; otherwise the one it was scored with before (a 5L answer cannot be valued
    with a 3L value set)."""
    site = response.procedure.patient.site
    if response.eq5d_version and site.eq5d_version == response.eq5d_version:
        return site.eq5d_value_set
    return response.eq5d_value_set


def response_score(*, response: QuestionnaireResponse) -> QuestionnaireResponse:
    """Compute (in memory) the EQ-5D index and ODI of ``response`` from its answers."""
    state = response.eq5d_state
    if state:
        response.eq5d_value_set = value_set_for(response)
        if VALUE_SETS[response.eq5d_value_set].levels != int(response.eq5d_version[0]):
            raise ValueError(
                f"Value set {response.eq5d_value_set} cannot value EQ-5D-{response.eq5d_version}."
            )
        response.eq5d_index = eq5d_index_decimal(state, response.eq5d_value_set)
    else:
        response.eq5d_value_set = ""
        response.eq5d_index = None
    response.odi_score = odi_score_decimal(response.odi_answers)
    response.scored_at = timezone.now()
    return response


@transaction.atomic
def response_save_scored(*, response: QuestionnaireResponse) -> QuestionnaireResponse:
    """Score ``response`` and save it, answers and scores together."""
    response_score(response=response)
    response.full_clean(exclude=["entered_by"])
    response.save()
    # A submitted questionnaire completes its follow-up at once, so no reminder follows.
    followup_complete(procedure_id=response.procedure_id, timepoint=response.timepoint)
    return response


@dataclass(frozen=True)
class ScoreChange:
    response_id: int
    field: str
    old: object
    new: object


SCORE_FIELDS = ("eq5d_value_set", "eq5d_index", "odi_score")
RESCORE_BATCH = 1000


def responses_rescore(*, dry_run: bool = False) -> list[ScoreChange]:
    """Re-score every stored response with today's value sets and scoring rules.

    Returns the changes (one row per response and score field that differs); with
    ``dry_run`` nothing is written. Only responses whose scores change are saved.
    """
    changes: list[ScoreChange] = []
    queryset = QuestionnaireResponse.objects.select_related("procedure__patient__site").order_by(
        "pk"
    )
    with transaction.atomic():
        changed: list[QuestionnaireResponse] = []
        for response in queryset.iterator(chunk_size=RESCORE_BATCH):
            before = {field: getattr(response, field) for field in SCORE_FIELDS}
            response_score(response=response)
            diffs = [
                ScoreChange(response.pk, field, before[field], getattr(response, field))
                for field in SCORE_FIELDS
                if _normal(before[field]) != _normal(getattr(response, field))
            ]
            if diffs:
                changes.extend(diffs)
                changed.append(response)
        if not dry_run:
            QuestionnaireResponse.objects.bulk_update(
                changed, [*SCORE_FIELDS, "scored_at"], batch_size=RESCORE_BATCH
            )
    return changes


def _normal(value):
    return Decimal(value) if isinstance(value, Decimal | int | float) else value


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
        answers = clean_answers(draft.answers if draft else {}, int(site.eq5d_version[0]))
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
