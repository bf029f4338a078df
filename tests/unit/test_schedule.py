"""Schedule arithmetic and chasing rules, without a database (design.md §3, §5)."""

import datetime

import pytest

from outcomes.followups.schedule import FollowUpFacts, Step, local_today, next_step, schedule_for

D = datetime.date


def test_schedule_windows_follow_the_design_table():
    dates = {s.timepoint: s for s in schedule_for(D(2026, 1, 10))}
    assert (dates["baseline"].window_start, dates["baseline"].due_date) == (
        D(2025, 12, 11),
        D(2026, 1, 10),
    )
    assert (dates["post_op"].due_date, dates["post_op"].window_end) == (
        D(2026, 1, 11),
        D(2026, 1, 17),
    )
    assert (
        dates["month_3"].window_start,
        dates["month_3"].due_date,
        dates["month_3"].window_end,
    ) == (D(2026, 3, 21), D(2026, 4, 11), D(2026, 5, 10))
    assert (
        dates["month_12"].window_start,
        dates["month_12"].due_date,
        dates["month_12"].window_end,
    ) == (D(2026, 11, 6), D(2027, 1, 10), D(2027, 4, 5))


def test_schedule_across_a_leap_day_counts_calendar_days():
    dates = {s.timepoint: s for s in schedule_for(D(2027, 12, 1))}
    assert dates["month_12"].due_date == D(2028, 11, 30)  # 2028-02-29 is one of the 365 days


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # Copenhagen moves to summer time at 01:00 UTC on 2026-03-29.
        (
            datetime.datetime(2026, 3, 28, 23, 30, tzinfo=datetime.UTC),
            "Europe/Copenhagen",
            D(2026, 3, 29),
        ),
        (
            datetime.datetime(2026, 3, 28, 22, 59, tzinfo=datetime.UTC),
            "Europe/Copenhagen",
            D(2026, 3, 28),
        ),
        (
            datetime.datetime(2026, 3, 29, 22, 30, tzinfo=datetime.UTC),
            "Europe/Copenhagen",
            D(2026, 3, 30),
        ),
        (
            datetime.datetime(2026, 3, 29, 22, 30, tzinfo=datetime.UTC),
            "Europe/London",
            D(2026, 3, 29),
        ),
        (
            datetime.datetime(2026, 3, 29, 3, 0, tzinfo=datetime.UTC),
            "America/New_York",
            D(2026, 3, 28),
        ),
    ],
)
def test_local_today_follows_the_site_clock_through_dst(utc, zone, expected):
    assert local_today(utc, zone) == expected


def facts(**overrides) -> FollowUpFacts:
    base = {
        "state": "scheduled",
        "timepoint": "month_3",
        "window_start": D(2026, 3, 21),
        "window_end": D(2026, 5, 10),
        "reminders_sent": 0,
        "invitation_sent_on": None,
        "reminder_1_sent_on": None,
        "has_response": False,
        "patient_deceased": False,
        "consent_withdrawn": False,
        "contactable": True,
    }
    return FollowUpFacts(**(base | overrides))


@pytest.mark.parametrize(
    ("overrides", "today", "step"),
    [
        ({}, D(2026, 3, 20), Step.NOTHING),
        ({}, D(2026, 3, 21), Step.INVITE),
        ({"contactable": False}, D(2026, 3, 21), Step.OPEN),
        ({"timepoint": "baseline"}, D(2026, 3, 21), Step.OPEN),
        ({"state": "invited", "invitation_sent_on": D(2026, 3, 21)}, D(2026, 3, 27), Step.NOTHING),
        ({"state": "invited", "invitation_sent_on": D(2026, 3, 21)}, D(2026, 3, 28), Step.REMIND_1),
        # The invitation is still queued (broker down): no reminder, however late it is.
        ({"state": "invited", "invitation_sent_on": None}, D(2026, 4, 28), Step.NOTHING),
        (
            {"state": "reminded", "reminders_sent": 1, "reminder_1_sent_on": D(2026, 3, 28)},
            D(2026, 4, 4),
            Step.REMIND_2,
        ),
        # Days without sweeps: reminder 1 left on 4 April, so reminder 2 waits until the 11th
        # even though the invitation went out on 21 March.
        (
            {
                "state": "reminded",
                "reminders_sent": 1,
                "invitation_sent_on": D(2026, 3, 21),
                "reminder_1_sent_on": D(2026, 4, 4),
            },
            D(2026, 4, 10),
            Step.NOTHING,
        ),
        (
            {"state": "reminded", "reminders_sent": 1, "reminder_1_sent_on": D(2026, 4, 4)},
            D(2026, 4, 11),
            Step.REMIND_2,
        ),
        # Reminder 1 was refused by the mail server (never sent): no reminder 2.
        ({"state": "reminded", "reminders_sent": 1}, D(2026, 4, 30), Step.NOTHING),
        (
            {"state": "reminded", "reminder_1_sent_on": D(2026, 3, 28), "reminders_sent": 2},
            D(2026, 4, 30),
            Step.NOTHING,
        ),
        ({"state": "reminded", "reminders_sent": 2}, D(2026, 5, 11), Step.MISS),
        ({"state": "invited", "has_response": True}, D(2026, 5, 11), Step.COMPLETE),
        ({"state": "invited", "patient_deceased": True}, D(2026, 3, 22), Step.CANCEL),
        ({"consent_withdrawn": True}, D(2026, 3, 1), Step.CANCEL),
        ({"state": "completed"}, D(2026, 3, 22), Step.NOTHING),
        ({"state": "cancelled", "has_response": True}, D(2026, 3, 22), Step.NOTHING),
    ],
)
def test_next_step(overrides, today, step):
    assert next_step(facts(**overrides), today) is step


def test_the_final_states_are_defined_once():
    from outcomes.followups import schedule
    from outcomes.models import FollowUp

    final = set(schedule.FINAL_STATES)
    assert final == {"completed", "missed", "cancelled"}
    assert set(FollowUp.FINAL_STATES) == final
    assert set(FollowUp.State.values) - final == {
        "scheduled", "open", "invited", "reminded",
    }  # fmt: skip
