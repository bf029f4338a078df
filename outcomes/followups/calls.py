"""The phone worklist's call log: logging a call to a patient and undoing a mistaken one.

A follow-up on the worklist (``FollowUp.objects.on_worklist``) stays there through calls that
leave it open (no answer, voicemail, call back at …) and leaves it when a call ends the
calling (refused, wrong number: ``PhoneCall.TAKES_OFF_LIST``) or when answers given by phone
are saved (the response completes the follow-up; an "answered" call alone never does). A call
logged by mistake is undone on the same day at the site, and the follow-up returns to the list
if that call had taken it off. Every step is audited by pghistory with the acting user.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from outcomes.models import FollowUp, PhoneCall


@transaction.atomic
def phone_call_record(
    *,
    followup_id: int,
    user,
    outcome: str,
    note: str = "",
    call_back_at: datetime.datetime | None = None,
    now: datetime.datetime | None = None,
) -> PhoneCall:
    """Log one call for a follow-up on ``user``'s phone worklist; raises ValidationError
    (nothing saved) for a follow-up not on it, an unknown outcome or a missing call-back
    time."""
    now = now or timezone.now()
    followup = (
        FollowUp.objects.for_user(user)
        .on_worklist()
        .select_for_update(of=("self",))
        .filter(pk=followup_id)
        .first()
    )
    if followup is None:
        raise ValidationError(_("That follow-up is not on your phone worklist (any more)."))
    if outcome not in PhoneCall.Outcome.values:
        raise ValidationError({"outcome": _("Choose the outcome of the call.")})
    if outcome == PhoneCall.Outcome.CALL_BACK:
        if call_back_at is None:
            raise ValidationError({"call_back_at": _("Say when to call back.")})
        if call_back_at <= now:
            raise ValidationError({"call_back_at": _("The time to call back has passed.")})
    else:
        call_back_at = None
    call = PhoneCall(
        followup=followup,
        called_at=now,
        caller=user,
        outcome=outcome,
        call_back_at=call_back_at,
        note=note.strip(),
    )
    call.full_clean(exclude=["followup", "caller"])
    call.save()
    off_list = PhoneCall.TAKES_OFF_LIST.get(outcome)
    if off_list:
        FollowUp.objects.filter(pk=followup.pk).update(phone_outcome=off_list)
    return call


@transaction.atomic
def phone_call_undo(*, call_id: int, user, now: datetime.datetime | None = None) -> PhoneCall:
    """Undo a call logged by mistake, on the day it was logged at the patient's site; the
    follow-up goes back on the worklist if the call had taken it off."""
    now = now or timezone.now()
    call = (
        PhoneCall.objects.for_user(user)
        .select_for_update(of=("self",))
        .select_related("followup__procedure__patient__site")
        .filter(pk=call_id)
        .first()
    )
    if call is None:
        raise ValidationError(_("No such call at your sites."))
    if call.undone_at is not None:
        raise ValidationError(_("That call was already undone."))
    zone = ZoneInfo(call.followup.procedure.patient.site.time_zone)
    if call.called_at.astimezone(zone).date() != now.astimezone(zone).date():
        raise ValidationError(_("A call can only be undone on the day it was logged."))
    call.undone_at = now
    call.undone_by = user
    call.save(update_fields=["undone_at", "undone_by"])
    if call.outcome in PhoneCall.TAKES_OFF_LIST:
        last_final = (
            PhoneCall.objects.standing()
            .filter(followup=call.followup, outcome__in=list(PhoneCall.TAKES_OFF_LIST))
            .order_by("-called_at", "-pk")
            .first()
        )
        FollowUp.objects.filter(pk=call.followup_id).update(
            phone_outcome=PhoneCall.TAKES_OFF_LIST[last_final.outcome] if last_final else ""
        )
    return call
