"""Query budget of the patient questionnaire (issue 20): a step at most 5 statements, the
final submit at most 15, whatever the answers. Counts include the SAVEPOINT/RELEASE pair a
test's transaction turns each atomic block into; in production those are BEGIN/COMMIT."""

import pytest
from django.urls import reverse
from django.utils import timezone

from outcomes.followups import links
from outcomes.models import FollowUp, QuestionnaireDraft, QuestionnaireResponse
from outcomes.questionnaire import answers
from tests.outcomes.conftest import ANSWERS, step_url

STEP_BUDGET = 5
SUBMIT_BUDGET = 15


@pytest.mark.django_db
def test_every_page_of_the_questionnaire_keeps_to_its_query_budget(
    client, token, followup, django_assert_max_num_queries
):
    with django_assert_max_num_queries(STEP_BUDGET):
        assert client.get(reverse("questionnaire", args=[token])).status_code == 200
    for slug, data in ANSWERS.items():
        with django_assert_max_num_queries(STEP_BUDGET):
            assert client.get(step_url(token, slug)).status_code == 200
        with django_assert_max_num_queries(STEP_BUDGET):
            assert client.post(step_url(token, slug), data).status_code == 302
    with django_assert_max_num_queries(STEP_BUDGET):
        assert client.get(reverse("questionnaire_review", args=[token])).status_code == 200
    with django_assert_max_num_queries(SUBMIT_BUDGET):
        submitted = client.post(reverse("questionnaire_review", args=[token]))
    assert submitted.url == reverse("questionnaire_thanks")
    with django_assert_max_num_queries(0):
        assert client.get(reverse("questionnaire_thanks")).status_code == 200

    # Fewer statements, same result: scored response, completed follow-up, no draft left.
    followup.refresh_from_db()
    assert followup.state == FollowUp.State.COMPLETED
    assert followup.link_started_at is not None
    assert followup.link_submitted_at == followup.completed_at
    response = QuestionnaireResponse.objects.get(procedure=followup.procedure, timepoint="month_3")
    assert (response.vas_pain, response.eq_vas, response.odi_sex_life) == (72, 55, None)
    assert response.eq5d_state == "21341"
    assert response.odi_score is not None and response.eq5d_index is not None
    assert not QuestionnaireDraft.objects.filter(followup=followup).exists()


@pytest.mark.django_db
def test_saving_steps_writes_no_history_after_the_first(client, token, followup):
    events = followup.events  # pghistory's event model of FollowUp, one row per change
    client.post(step_url(token, "pain"), ANSWERS["pain"])
    after_first = events.count()
    client.post(step_url(token, "health"), ANSWERS["health"])
    client.post(step_url(token, "pain"), {"vas_pain": "60"})
    assert events.count() == after_first
    draft = QuestionnaireDraft.objects.get(followup=followup)
    assert draft.answers["vas_pain"] == 60  # a changed answer replaces the earlier one
    assert draft.answers["eq5d_mobility"] == 2


@pytest.mark.django_db
def test_a_step_saved_after_the_submit_is_not_kept(client, token, followup):
    for slug, data in ANSWERS.items():
        client.post(step_url(token, slug), data)
    # The page read the follow-up before the submit committed ...
    stale = links.followup_for_token(token, now=timezone.now())
    client.post(reverse("questionnaire_review", args=[token]))
    # ... and its save then finds the follow-up completed.
    assert not answers.questionnaire_draft_save(
        followup=stale, answers={"vas_pain": 10}, now=timezone.now()
    )
    assert not QuestionnaireDraft.objects.filter(followup=followup).exists()
