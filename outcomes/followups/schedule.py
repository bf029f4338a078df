"""The follow-up plan as declarative timepoints, and the chasing rules (design.md §3, §5).

Pure: plain dates in, plain values out. All arithmetic is on calendar dates, which are local to
the site's time zone (``local_today``), so a daylight-saving change never shifts a window.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class TimepointPlan:
    timepoint: str
    due_offset: int  # days after the procedure
    window_start_offset: int
    window_end_offset: int
    chased: bool  # invited and reminded by email; the baseline is taken in clinic


PLAN = (
    TimepointPlan("baseline", 0, -30, 0, chased=False),
    TimepointPlan("post_op", 1, 0, 7, chased=True),
    TimepointPlan("month_3", 91, 70, 120, chased=True),
    TimepointPlan("month_12", 365, 300, 450, chased=True),
)
PLAN_BY_TIMEPOINT = {plan.timepoint: plan for plan in PLAN}
# Each reminder follows the message actually sent before it by at least this many days
# (invitation, +7 reminder 1, +7 reminder 2): a queue that was down for days, or a gap in
# sweeps, never puts two messages to a patient closer than this.
REMINDER_GAP_DAYS = 7


@dataclass(frozen=True)
class ScheduledDates:
    timepoint: str
    due_date: datetime.date
    window_start: datetime.date
    window_end: datetime.date


def schedule_for(procedure_date: datetime.date) -> list[ScheduledDates]:
    """Due date and window of every timepoint for a procedure on ``procedure_date``."""
    day = datetime.timedelta(days=1)
    return [
        ScheduledDates(
            timepoint=plan.timepoint,
            due_date=procedure_date + plan.due_offset * day,
            window_start=procedure_date + plan.window_start_offset * day,
            window_end=procedure_date + plan.window_end_offset * day,
        )
        for plan in PLAN
    ]


def local_today(now: datetime.datetime, time_zone: str) -> datetime.date:
    """The calendar date at the site at the instant ``now`` (an aware datetime)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(ZoneInfo(time_zone)).date()


class Step(enum.Enum):
    NOTHING = "nothing"
    COMPLETE = "complete"
    CANCEL = "cancel"
    MISS = "miss"
    OPEN = "open"  # window opened, nobody to email: straight to the phone worklist
    INVITE = "invite"
    REMIND_1 = "reminder_1"
    REMIND_2 = "reminder_2"  # and join the phone worklist


@dataclass(frozen=True)
class FollowUpFacts:
    state: str
    timepoint: str
    window_start: datetime.date
    window_end: datetime.date
    reminders_sent: int
    # Site-local dates the invitation and reminder 1 actually left (None: not sent, yet or
    # ever); a reminder counts from these, never from when the earlier step was decided.
    invitation_sent_on: datetime.date | None
    reminder_1_sent_on: datetime.date | None
    has_response: bool
    patient_deceased: bool
    consent_withdrawn: bool
    contactable: bool  # has an email address and consented to be contacted


# The follow-up states nothing moves on from. The one home of this rule: the model's
# FollowUp.FINAL_STATES and its partial index derive from it.
FINAL_STATES = ("completed", "missed", "cancelled")


def next_step(facts: FollowUpFacts, today: datetime.date) -> Step:
    """What the sweep does next with a follow-up, given its facts and the site's date."""
    if facts.state in FINAL_STATES:
        return Step.NOTHING
    if facts.has_response:
        return Step.COMPLETE
    if facts.patient_deceased or facts.consent_withdrawn:
        return Step.CANCEL
    if today > facts.window_end:
        return Step.MISS
    chased = PLAN_BY_TIMEPOINT[facts.timepoint].chased
    if facts.state == "scheduled":
        if today < facts.window_start:
            return Step.NOTHING
        return Step.INVITE if chased and facts.contactable else Step.OPEN
    if not chased:
        return Step.NOTHING
    if facts.state == "invited" and facts.reminders_sent == 0:
        previous = facts.invitation_sent_on
        step = Step.REMIND_1
    elif facts.state == "reminded" and facts.reminders_sent == 1:
        previous = facts.reminder_1_sent_on
        step = Step.REMIND_2
    else:
        return Step.NOTHING
    if previous is None or (today - previous).days < REMINDER_GAP_DAYS:
        return Step.NOTHING
    return step


# A response answered this many days or more outside its window needs "save anyway" and a
# reason at entry; any response outside its window is listed by the data-quality rules.
FAR_OUTSIDE_WINDOW_DAYS = 30


def days_outside_window(
    timepoint: str, procedure_date: datetime.date, answered_on: datetime.date
) -> int:
    """How many days ``answered_on`` lies before or after the timepoint's window (0 inside)."""
    plan = PLAN_BY_TIMEPOINT[timepoint]
    start = procedure_date + datetime.timedelta(days=plan.window_start_offset)
    end = procedure_date + datetime.timedelta(days=plan.window_end_offset)
    if answered_on < start:
        return (start - answered_on).days
    if answered_on > end:
        return (answered_on - end).days
    return 0
