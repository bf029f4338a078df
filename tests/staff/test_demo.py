"""The demo: `seed_demo` alone leaves data for the report, the dashboard and the worklist."""

import pytest
from django.core.management import call_command

from outcomes.models import FollowUp, QuestionnaireResponse


@pytest.mark.django_db
def test_seed_demo_alone_creates_follow_ups_and_answers():
    call_command("seed_demo", patients=60, no_progress=True)
    assert FollowUp.objects.count() >= 60 * 4
    assert QuestionnaireResponse.objects.filter(timepoint="baseline").count() >= 40
    assert QuestionnaireResponse.objects.filter(timepoint="month_3").count() >= 20


@pytest.mark.django_db
def test_cohort_only_leaves_the_outcomes_out():
    call_command("seed_demo", patients=5, no_progress=True, cohort_only=True)
    assert not FollowUp.objects.exists()
