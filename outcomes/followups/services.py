"""Follow-up state changes made by staff and by a submitted questionnaire."""

from __future__ import annotations

from django.utils import timezone

from outcomes.models import FollowUp


def followup_complete(*, procedure_id: int, timepoint: str, now=None, submitted_at=None) -> int:
    """Mark the follow-up of a submitted questionnaire completed, at once (reminders stop);
    ``submitted_at`` records a submit through the patient's link in the same statement."""
    link = {"link_submitted_at": submitted_at} if submitted_at is not None else {}
    return (
        FollowUp.objects.filter(procedure_id=procedure_id, timepoint=timepoint)
        .exclude(state__in=[FollowUp.State.COMPLETED])
        .update(
            state=FollowUp.State.COMPLETED,
            completed_at=now or timezone.now(),
            cancel_reason="",
            **link,
        )
    )


def followup_reopen(*, procedure_id: int, timepoint: str) -> int:
    """Undo the completion of a follow-up whose response was deleted: back to the state the
    chasing had reached (the sweep marks it missed if its window has closed meanwhile)."""
    followup = (
        FollowUp.objects.select_for_update()
        .filter(procedure_id=procedure_id, timepoint=timepoint, state=FollowUp.State.COMPLETED)
        .first()
    )
    if followup is None:
        return 0
    if followup.invited_on is not None:
        state = FollowUp.State.REMINDED if followup.reminders_sent else FollowUp.State.INVITED
    elif followup.on_phone_worklist_since is not None or followup.link_issued_at is not None:
        state = FollowUp.State.OPEN
    else:
        state = FollowUp.State.SCHEDULED
    return FollowUp.objects.filter(pk=followup.pk).update(
        state=state, completed_at=None, link_submitted_at=None
    )
