"""A patient's submit to a locked follow-up: refused by the database, a clear page, nothing
saved and the draft kept; accepted after the unlock."""

from django.urls import reverse
from django.utils import timezone

from outcomes.models import FollowUp, QuestionnaireDraft, QuestionnaireResponse
from registry.models import RecordLock
from tests.outcomes.conftest import answer_all


def test_a_submit_to_a_locked_follow_up_is_refused_clearly_and_the_draft_kept(
    client, followup, token, clock
):
    answer_all(client, token)
    lock = RecordLock.objects.create(
        patient=followup.procedure.patient,
        procedure=followup.procedure,
        timepoint=followup.timepoint,
        reason="3-month data frozen for interim analysis",
    )
    response = client.post(reverse("questionnaire_review", args=[token]))
    assert response.status_code == 409
    assert "closed for changes at the clinic" in response.content.decode()
    assert not QuestionnaireResponse.objects.filter(procedure=followup.procedure).exists()
    assert QuestionnaireDraft.objects.get(followup=followup).answers["vas_pain"] == 72
    followup.refresh_from_db()
    assert followup.state != FollowUp.State.COMPLETED

    RecordLock.objects.filter(pk=lock.pk).update(
        unlocked_at=timezone.now(), unlock_reason="interim analysis done"
    )
    response = client.post(reverse("questionnaire_review", args=[token]))
    assert response.status_code == 302
    assert QuestionnaireResponse.objects.get(procedure=followup.procedure).vas_pain == 72
