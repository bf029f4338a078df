"""Registry ids are generated per site (AAA-000001) and never typed or edited."""

import threading

import pytest
from django.db import connection
from django.urls import reverse

from registry.models import Patient, next_registry_id
from tests.factories import make_patient
from tests.registry.test_admin import patient_form


def test_ids_are_generated_per_site_in_sequence_skipping_taken_ones(client_a, site_a, site_b):
    make_patient(site_a, registry_id="AAA-000002")  # typed by hand before ids were generated
    for n, name in enumerate(["Karen Hansen", "Birgit Olsen"]):
        # Two different people (the same one twice would be a likely duplicate).
        person = {
            "contact-0-name": name,
            "contact-0-email": f"p{n}@example.org",
            "contact-0-phone": f"+45 2010 000{n}",
        }
        response = client_a.post(
            reverse("admin:registry_patient_add"), patient_form(site_a, **person)
        )
        assert response.status_code == 302
    generated = sorted(
        Patient.objects.filter(site=site_a)
        .exclude(registry_id="AAA-000002")
        .values_list("registry_id", flat=True)
    )
    assert generated == ["AAA-000001", "AAA-000003"]
    assert next_registry_id(site_b.pk) == "BBB-000001"


def test_the_id_cannot_be_typed_on_add_or_changed_on_edit(client_a, site_a):
    add_page = client_a.get(reverse("admin:registry_patient_add")).content.decode()
    assert 'name="registry_id"' not in add_page
    client_a.post(
        reverse("admin:registry_patient_add"),
        patient_form(site_a, registry_id="010150-1234"),  # a CPR number is ignored
    )
    patient = Patient.objects.get(site=site_a)
    assert patient.registry_id == "AAA-000001"

    url = reverse("admin:registry_patient_change", args=[patient.pk])
    assert 'name="registry_id"' not in client_a.get(url).content.decode()
    data = patient_form(site_a, registry_id="010150-1234")
    data.update({"contact-INITIAL_FORMS": "1", "contact-0-id": str(patient.contact.pk)})
    data["contact-0-patient"] = str(patient.pk)
    client_a.post(url, data)
    patient.refresh_from_db()
    assert patient.registry_id == "AAA-000001"


@pytest.mark.django_db(transaction=True)
def test_two_patients_registered_at_once_get_two_ids(site_a):
    ids = []

    def register():
        try:
            ids.append(make_patient(site_a, registry_id="").registry_id)
        finally:
            connection.close()

    threads = [threading.Thread(target=register) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ids) == [f"AAA-00000{n}" for n in range(1, 5)]
