"""Worker ids (``host:pid``, the ``claimed_by`` of a contact attempt) are for the logs: no
staff page shows one, wherever the attempt appears."""

import pytest
import time_machine
from django.urls import reverse

from outcomes.models import ContactAttempt, FollowUp
from tests.factories import make_user
from tests.staff.test_staff_pages import NOW, chased_patient, sweep

WORKER = "vm:10054:ab12cd34"


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def test_no_staff_page_shows_the_worker_that_sent_a_message(client, site_a):
    patient, procedure = chased_patient(site_a)
    on_list, _ = chased_patient(site_a, email=False)
    sweep()
    attempts = ContactAttempt.objects.filter(followup__procedure__patient__in=[patient, on_list])
    assert attempts.count() >= 1
    attempts.update(claimed_by=WORKER)
    attempt = attempts.first()
    month_3 = FollowUp.objects.get(procedure=procedure, timepoint="month_3")
    pages = [
        reverse("staff_record", args=[patient.registry_id]),
        reverse("staff_record", args=[on_list.registry_id]),
        reverse("staff_due_list"),
        reverse("staff_due_list") + "?print=1",
        reverse("staff_dashboard"),
        reverse("admin:outcomes_followup_change", args=[month_3.pk]),
        reverse("admin:outcomes_followup_changelist"),
        reverse("admin:outcomes_contactattempt_changelist"),
        reverse("admin:outcomes_contactattempt_change", args=[attempt.pk]),
    ]
    for user in (make_user("Site staff", site_a), make_user("Registry manager")):
        client.force_login(user)
        for url in pages:
            page = client.get(url)
            assert page.status_code == 200, url
            html = page.content.decode()
            assert "vm:10054" not in html and "10054" not in html, url
