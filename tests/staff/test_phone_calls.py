"""The phone worklist's call log: each call with its time, caller, outcome and note; the
follow-up leaves the list only for a final outcome or saved answers; a mistaken call is undone
the same day, audited."""

import datetime

import pytest
import time_machine
from django.urls import reverse
from pghistory.models import Events

from outcomes.followups.calls import phone_call_record, phone_call_undo
from outcomes.models import FollowUp, PhoneCall
from tests.factories import make_user
from tests.staff.test_staff_pages import NOW, chased_patient, sweep

URL = reverse("staff_due_list")


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def on_list(site_a):
    patient, procedure = chased_patient(site_a, email=False)
    sweep()
    followup = FollowUp.objects.on_worklist().get(procedure=procedure)
    return followup


def call(client, followup, outcome, **fields):
    prefix = f"call-{followup.pk}"
    data = {"followup": followup.pk, f"{prefix}-outcome": outcome}
    data.update({f"{prefix}-{name}": value for name, value in fields.items()})
    return client.post(URL, data)


def test_calls_that_leave_the_follow_up_open_keep_it_on_the_list_with_a_count(
    client_a, staff_a, on_list
):
    assert call(client_a, on_list, "no_answer", note="rang 8 times").status_code == 302
    assert call(client_a, on_list, "voicemail").status_code == 302
    assert call(client_a, on_list, "call_back", call_back_at="14-04-2026 10:30").status_code == 302

    page = client_a.get(URL)
    (row,) = page.context["worklist"]
    assert row.pk == on_list.pk and row.call_count == 3
    html = page.content.decode()
    assert "3 calls so far" in html and "rang 8 times" in html
    assert "No email or no consent to email" in html  # why the patient is on the list
    calls = list(PhoneCall.objects.filter(followup=on_list).order_by("pk"))
    assert [(c.outcome, c.caller, c.called_at) for c in calls] == [
        ("no_answer", staff_a, NOW),
        ("voicemail", staff_a, NOW),
        ("call_back", staff_a, NOW),
    ]
    assert calls[2].call_back_at == datetime.datetime(2026, 4, 14, 8, 30, tzinfo=datetime.UTC)
    on_list.refresh_from_db()
    assert on_list.phone_outcome == "" and on_list.state not in FollowUp.FINAL_STATES


def test_call_back_without_a_time_is_refused_beside_the_field_with_the_note_kept(client_a, on_list):
    page = call(client_a, on_list, "call_back", note="asked for the afternoon")
    assert page.status_code == 200
    form = next(f for f in page.context["worklist"] if f.pk == on_list.pk).call_form
    assert form.errors["call_back_at"] == ["Say when to call back."]
    assert 'value="asked for the afternoon"' in page.content.decode()
    assert not PhoneCall.objects.exists()


def test_refused_takes_the_follow_up_off_the_list_and_undo_puts_it_back_audited(
    client_a, staff_a, on_list
):
    call(client_a, on_list, "refused", note="does not want to answer")
    on_list.refresh_from_db()
    assert on_list.phone_outcome == "refused"
    assert client_a.get(URL).context["worklist"] == []

    refused = PhoneCall.objects.get(followup=on_list)
    # Off the list, the call is still at hand for its undo: today's calls that took it off.
    assert client_a.get(URL).context["taken_off"] == [refused]
    # The undo button is on the record of the call; the follow-up is off the list, so undo
    # by its id as the button would.
    assert client_a.post(URL, {"undo": refused.pk}).status_code == 302
    refused.refresh_from_db()
    on_list.refresh_from_db()
    assert (refused.undone_at, refused.undone_by) == (NOW, staff_a)
    assert on_list.phone_outcome == ""
    assert [f.pk for f in client_a.get(URL).context["worklist"]] == [on_list.pk]
    labels = list(
        Events.objects.tracks(refused).order_by("pgh_id").values_list("pgh_label", flat=True)
    )
    assert labels == ["insert", "update"]


def test_a_call_is_undone_only_on_the_day_it_was_logged(clock, staff_a, on_list):
    made = phone_call_record(followup_id=on_list.pk, user=staff_a, outcome="no_answer")
    clock.shift(datetime.timedelta(days=1))
    with pytest.raises(Exception, match="only be undone on the day"):
        phone_call_undo(call_id=made.pk, user=staff_a)
    made.refresh_from_db()
    assert made.undone_at is None


def test_answered_opens_the_phone_entry_and_only_saved_answers_complete(client_a, on_list):
    done = call(client_a, on_list, "answered")
    assert done.status_code == 302
    target = done.url
    assert target.startswith(reverse("admin:outcomes_questionnaireresponse_add"))
    assert "mode=phone" in target and f"procedure={on_list.procedure_id}" in target
    assert "timepoint=month_3" in target
    on_list.refresh_from_db()
    assert on_list.state not in FollowUp.FINAL_STATES and on_list.phone_outcome == ""
    # Still on the list: the call alone never completes it.
    assert [f.pk for f in client_a.get(URL).context["worklist"]] == [on_list.pk]

    form = client_a.get(target).context["adminform"].form
    assert (form.initial["mode"], form.initial["timepoint"]) == ("phone", "month_3")
    saved = client_a.post(
        target,
        {
            "procedure": on_list.procedure_id,
            "timepoint": "month_3",
            "mode": "phone",
            "answered_on": "13-04-2026",
            "vas_pain": "40",
        },
    )
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    on_list.refresh_from_db()
    assert on_list.state == "completed"
    assert client_a.get(URL).context["worklist"] == []


def test_another_sites_follow_up_cannot_be_called_or_undone(client, site_b, on_list, staff_a):
    made = phone_call_record(followup_id=on_list.pk, user=staff_a, outcome="no_answer")
    client.force_login(make_user("Site staff", site_b))
    call(client, on_list, "refused")
    client.post(URL, {"undo": made.pk})
    on_list.refresh_from_db()
    made.refresh_from_db()
    assert on_list.phone_outcome == "" and made.undone_at is None
    assert PhoneCall.objects.count() == 1


def test_an_auditor_cannot_log_a_call(client, site_a, on_list):
    client.force_login(make_user("Auditor", site_a))
    assert call(client, on_list, "refused").status_code == 403
    assert not PhoneCall.objects.exists()


def test_the_database_refuses_a_call_back_without_its_time(staff_a, on_list):
    from django.db import IntegrityError, transaction

    refused = pytest.raises(IntegrityError, match="phonecall_call_back_time_with_call_back_only")
    with refused, transaction.atomic():
        PhoneCall.objects.create(
            followup=on_list, called_at=NOW, caller=staff_a, outcome="call_back"
        )
