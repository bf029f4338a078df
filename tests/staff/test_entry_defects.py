"""The staff-entry defects of issue 19, each pinned by a test that fails on the old code."""

import datetime

import pytest
import time_machine
from django.urls import reverse

from outcomes.followups.sweep import followups_ensure, followups_sweep
from outcomes.models import FollowUp, QuestionnaireResponse
from tests.factories import make_patient, make_procedure, make_response, make_user
from tests.outcomes.test_responses import response_form

PROCEDURE_DAY = datetime.date(2026, 1, 12)
ONE_MONTH_LATER = datetime.datetime(2026, 2, 12, 9, tzinfo=datetime.UTC)


@pytest.fixture
def procedure(site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic", date=PROCEDURE_DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    return procedure


def blank(procedure, **overrides):
    return response_form(procedure, eq5d="", odi=[None] * 10, vas_pain="", eq_vas="", **overrides)


def test_blank_response_outside_the_window_is_refused_and_chasing_goes_on(client_a, procedure):
    """The blocker: a blank 12-month response entered a month after the procedure."""
    with time_machine.travel(ONE_MONTH_LATER, tick=False):
        response = client_a.post(
            reverse("admin:outcomes_questionnaireresponse_add"),
            blank(procedure, timepoint="month_12", answered_on="2026-02-12"),
        )
        assert response.status_code == 200
        assert "No answer is filled in" in response.content.decode()
        assert not QuestionnaireResponse.objects.exists()
        followups_sweep(now=ONE_MONTH_LATER)
    month_12 = FollowUp.objects.get(procedure=procedure, timepoint="month_12")
    assert month_12.state == FollowUp.State.SCHEDULED
    assert month_12.completed_at is None


def test_answers_dated_before_the_window_opens_are_refused(client_a, procedure):
    data = response_form(procedure, timepoint="month_12", answered_on="2026-02-12")
    response = client_a.post(reverse("admin:outcomes_questionnaireresponse_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "window opens on" in str(errors["answered_on"])
    assert FollowUp.objects.get(procedure=procedure, timepoint="month_12").state == "scheduled"


def test_the_service_refuses_a_blank_response_too(procedure):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        make_response(procedure, "post_op")
    assert FollowUp.objects.get(procedure=procedure, timepoint="post_op").state == "scheduled"


def test_deleting_a_response_entered_in_error_reopens_its_follow_up(client, site_a, procedure):
    client.force_login(make_user("Site lead", site_a))
    saved = make_response(procedure, "post_op", vas_pain=40, answered_on=PROCEDURE_DAY)
    assert FollowUp.objects.get(procedure=procedure, timepoint="post_op").state == "completed"

    response = client.post(
        reverse("admin:outcomes_questionnaireresponse_delete", args=[saved.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    post_op = FollowUp.objects.get(procedure=procedure, timepoint="post_op")
    assert (post_op.state, post_op.completed_at) == ("scheduled", None)
