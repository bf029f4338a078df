"""The record status dashboard as a nurse works it: a search box (registry id; name, phone,
email and birth date for who may see contact details, through ``PatientQuerySet.search``), a
state filter per timepoint, and cells that open their follow-up."""

import pytest
import time_machine
from django.urls import reverse

from outcomes.models import FollowUp
from registry.models import PatientContact
from tests.factories import make_user
from tests.staff.test_staff_pages import NOW, chased_patient, sweep


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def _ids(client, **query) -> list[str]:
    page = client.get(reverse("staff_dashboard"), query)
    assert page.status_code == 200
    return [row["registry_id"] for row in page.context["table"]]


def test_search_finds_by_registry_id_and_by_name_only_for_who_may_see_contacts(
    client, client_a, site_a
):
    karen, _ = chased_patient(site_a)
    other, _ = chased_patient(site_a)
    PatientContact.objects.filter(patient=karen).update(name="Karen Sørensen")
    PatientContact.objects.filter(patient=other).update(name="Birgit Olsen")

    assert _ids(client_a, q=karen.registry_id) == [karen.registry_id]
    assert _ids(client_a, q="sørensen") == [karen.registry_id]
    assert _ids(client_a, q="Karen Olsen") == []  # every word must match the same patient
    html = client_a.get(reverse("staff_dashboard")).content.decode()
    assert 'name="q"' in html and "Registry id, name, phone, email or date of birth" in html

    auditor = make_user("Auditor", site_a)  # sees records, never contact details
    client.force_login(auditor)
    assert _ids(client, q=karen.registry_id) == [karen.registry_id]
    assert _ids(client, q="Sørensen") == []
    assert "Registry id, name" not in client.get(reverse("staff_dashboard")).content.decode()


def test_state_filter_applies_to_the_timepoint_chosen(client_a, site_a):
    for _ in range(2):
        chased_patient(site_a)
    sweep()  # the 3-month invitations go out; baselines are answered
    assert len(_ids(client_a, state="invited")) == 2
    assert len(_ids(client_a, state="invited", timepoint="month_3")) == 2
    assert _ids(client_a, state="invited", timepoint="baseline") == []
    assert len(_ids(client_a, state="completed", timepoint="baseline")) == 2
    assert _ids(client_a, state="completed", timepoint="month_12") == []
    refused = client_a.get(reverse("staff_dashboard"), {"timepoint": "month_99"})
    assert refused.status_code == 200 and "month_99" in str(refused.context["form"].errors)


def test_each_cell_opens_its_follow_up(client_a, site_a):
    patient, procedure = chased_patient(site_a)
    sweep()
    html = client_a.get(reverse("staff_dashboard")).content.decode()
    followups = FollowUp.objects.filter(procedure=procedure)
    assert followups.count() == 4
    for followup in followups:
        url = reverse("admin:outcomes_followup_change", args=[followup.pk])
        label = f"{followup.get_timepoint_display()}: "
        assert f'<a href="{url}" class="st-' in html and label in html
        assert client_a.get(url).status_code == 200
