"""The admin on a locked record: read-only pages that show the lock, refusals reported on
the page (never a 500) whether the admin or the database notices first, and a change
accepted after an unlock with a reason."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from registry.models import Patient, Procedure, RecordLock, TreatedLevel
from tests.factories import make_contact, make_patient, make_procedure, make_user
from tests.registry.test_admin import level_form, patient_form, procedure_form

E = TreatedLevel.Etiology


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def locked(site_a):
    patient = make_patient(site_a, karnofsky=70)
    make_contact(patient)
    make_procedure(patient, E.OSTEOPOROTIC)
    RecordLock.objects.create(patient=patient, reason="verified for the 2026 paper")
    return patient


@pytest.mark.django_db
def test_a_locked_patient_page_is_read_only_and_says_why(client_a, locked):
    url = reverse("admin:registry_patient_change", args=[locked.pk])
    page = client_a.get(url)
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert any("verified for the 2026 paper" in m for m in messages_of(page))


@pytest.mark.django_db
def test_a_post_to_a_locked_record_is_refused_with_a_message_and_changes_nothing(client_a, locked):
    url = reverse("admin:registry_patient_change", args=[locked.pk])
    data = patient_form(locked.site, karnofsky="40", **{"contact-INITIAL_FORMS": "1"})
    data["contact-0-id"] = str(locked.contact.pk)
    data["contact-0-patient"] = str(locked.pk)
    response = client_a.post(url, data)
    assert response.status_code == 302
    assert any("locked" in m and "unlock it, with a reason" in m for m in messages_of(response))
    locked.refresh_from_db()
    assert locked.karnofsky == 70
    # Unlocked with a reason, the same form is saved.
    RecordLock.objects.filter(patient=locked).update(
        unlocked_at=timezone.now(), unlock_reason="Karnofsky was misread"
    )
    response = client_a.post(url, data)
    assert response.status_code == 302
    locked.refresh_from_db()
    assert locked.karnofsky == 40


@pytest.mark.django_db
def test_a_procedure_added_to_a_locked_patient_is_refused_by_the_database_on_the_page(
    client_a, locked
):
    """The add form has no object to check: the database's refusal comes back as a
    message, and nothing is kept."""
    data = procedure_form(locked, [level_form(0, TreatedLevel.Level.L2)], date="2026-03-01")
    response = client_a.post(reverse("admin:registry_procedure_add"), data)
    assert response.status_code == 302
    assert any("locked" in m for m in messages_of(response))
    assert Procedure.objects.filter(patient=locked).count() == 1


@pytest.mark.django_db
def test_a_bulk_delete_including_a_locked_record_is_refused_on_the_list(site_a, locked, client):
    lead = make_user("Site lead", site_a)
    client.force_login(lead)
    level = TreatedLevel.objects.get(procedure__patient=locked)
    response = client.post(
        reverse("admin:registry_treatedlevel_changelist"),
        {"action": "delete_selected", "_selected_action": [level.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert any("locked" in m for m in messages_of(response))
    assert TreatedLevel.objects.filter(pk=level.pk).exists()
    assert Patient.objects.filter(pk=locked.pk).exists()
