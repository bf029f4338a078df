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


def followups_record_phone_outcome(*, followups, outcome: str) -> int:
    """Record the result of a phone call for follow-ups on the worklist."""
    return followups.exclude(on_phone_worklist_since=None).update(phone_outcome=outcome)
