"""The demo: `seed_demo` alone leaves data for the report, the dashboard and the worklist."""

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from outcomes.models import FollowUp, QuestionnaireResponse


@pytest.mark.django_db
def test_seed_demo_alone_creates_follow_ups_and_answers():
    call_command("seed_demo", patients=60, no_progress=True)
    assert FollowUp.objects.count() >= 60 * 4
    assert QuestionnaireResponse.objects.filter(timepoint="baseline").count() >= 40
    assert QuestionnaireResponse.objects.filter(timepoint="month_3").count() >= 20


@pytest.mark.django_db
def test_the_demo_has_data_on_the_dashboard_and_the_worklist(client):
    from django.urls import reverse

    call_command("seed_demo", patients=150, no_progress=True)
    call_command("seed_demo_outcomes")  # a second run adds nothing twice
    client.force_login(get_user_model().objects.get(username="nurse.aar"))
    worklist = client.get(reverse("staff_due_list")).context["worklist"]
    assert len(worklist) >= 1
    assert all(f.procedure.patient.site.code == "AAR" for f in worklist)
    assert all(f.attempts.count() == 3 for f in worklist)
    dashboard = client.get(reverse("staff_dashboard")).context
    totals = {t["state"].value: sum(t["counts"]) for t in dashboard["totals"]}
    assert totals["completed"] > 0 and totals["worklist"] >= 1


@pytest.mark.django_db
def test_cohort_only_leaves_the_outcomes_out():
    call_command("seed_demo", patients=5, no_progress=True, cohort_only=True)
    assert not FollowUp.objects.exists()
