"""Writes of the outcomes app: scoring and re-scoring questionnaire responses, and the
patient's own answers through their link."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from outcomes.followups.services import followup_complete, followup_reopen
from outcomes.instruments.eq5d import VALUE_SETS
from outcomes.instruments.odi import odi_score_decimal
from outcomes.models import QuestionnaireResponse
from outcomes.scoring import eq5d_index_decimal
from registry.models import Site


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
        if (
            VALUE_SETS[response.eq5d_value_set].levels
            != Site.EQ5DVersion(response.eq5d_version).levels
        ):
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


def response_save_scored(
    *, response: QuestionnaireResponse, submitted_at=None
) -> QuestionnaireResponse:
    """Score ``response`` and save it, answers and scores together, and complete its
    follow-up (with the link's submit time ``submitted_at`` when it came through the link).

    Fields are checked in Python (types, choices); the database checks the response's check
    and unique constraints with the INSERT itself, rather than one query per constraint. Forms
    in front of this (admin, questionnaire steps) have given their messages already, so a
    refusal here is a programming error and raises ``IntegrityError``.
    """
    if response.is_blank:
        # Saved blank, it would complete the follow-up and stop the chasing for good.
        raise ValidationError(_("A response without any answer is not saved."), code="blank")
    # Refused before any statement, so the caller's transaction stays usable.
    with transaction.atomic(savepoint=False):
        response_score(response=response)
        response.full_clean(
            exclude=["entered_by", "procedure"], validate_unique=False, validate_constraints=False
        )
        response.save()
        # A submitted questionnaire completes its follow-up at once, so no reminder follows.
        followup_complete(
            procedure_id=response.procedure_id,
            timepoint=response.timepoint,
            submitted_at=submitted_at,
        )
    return response


@transaction.atomic
def response_delete(*, response: QuestionnaireResponse) -> None:
    """Delete a response entered in error; its follow-up goes back to being chased."""
    procedure_id, timepoint = response.procedure_id, response.timepoint
    response.delete()
    followup_reopen(procedure_id=procedure_id, timepoint=timepoint)


@dataclass(frozen=True)
class ScoreChange:
    response_id: int
    field: str
    old: object
    new: object


SCORE_FIELDS = ("eq5d_value_set", "eq5d_index", "odi_score")


RESCORE_BATCH = 1000


def responses_locked():
    """Responses of locked records (a whole patient's, or that follow-up's): their stored
    scores are frozen with the record (``registry.locking``)."""
    from django.db.models import Exists, OuterRef, Q

    from registry.models import RecordLock

    covering = RecordLock.objects.active().filter(
        Q(procedure__isnull=True)
        | Q(procedure_id=OuterRef("procedure_id"), timepoint=OuterRef("timepoint")),
        patient_id=OuterRef("procedure__patient_id"),
    )
    return QuestionnaireResponse.objects.filter(Exists(covering))


def responses_rescore(*, dry_run: bool = False) -> list[ScoreChange]:
    """Re-score every stored response with today's value sets and scoring rules, but those
    of locked records (``responses_locked``: the command reports how many).

    Returns the changes (one row per response and score field that differs); with
    ``dry_run`` nothing is written. Only responses whose scores change are saved.
    """
    changes: list[ScoreChange] = []
    queryset = (
        QuestionnaireResponse.objects.select_related("procedure__patient__site")
        .exclude(pk__in=responses_locked().values("pk"))
        .order_by("pk")
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
