"""A likely duplicate at entry (same date of birth and a similar name, or the same phone or
email, at the site) is saved only with "save anyway" and a reason, audited; another site's
patient or a different person is no warning."""

import pytest
from django.urls import reverse
from pghistory.models import Events

from outcomes.quality.models import WarningAcknowledgement
from registry.duplicates import likely_duplicates
from registry.models import Patient
from tests.factories import make_contact, make_patient
from tests.registry.test_admin import patient_form

ADD = reverse("admin:registry_patient_add")


@pytest.fixture
def karen(site_a):
    patient = make_patient(site_a, date_of_birth="1948-04-02")
    make_contact(patient, name="Karen Hansen", email="k.h@example.org", phone="+45 8765 4321")
    return patient


def other_contact(**fields) -> dict:
    data = {
        "contact-0-name": "Someone Else",
        "contact-0-email": "someone@example.org",
        "contact-0-phone": "+45 2111 0000",
    }
    return {**data, **{f"contact-0-{k}": v for k, v in fields.items()}}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"name": "karen  hansen"}, "same date of birth and a similar name"),
        ({"name": "Karen M. Hansen"}, "same date of birth and a similar name"),
        ({"email": "K.H@example.org"}, "same email"),
        ({"phone": "87 65 43 21"}, "same phone"),
    ],
)
def test_a_likely_duplicate_is_refused_without_a_reason(client_a, site_a, karen, fields, why):
    data = patient_form(site_a, **other_contact(**fields))
    if "name" not in fields:
        data["date_of_birth"] = "1950-01-01"
    page = client_a.post(ADD, data)
    assert page.status_code == 200
    html = page.content.decode()
    assert "This may be a patient already registered at the site" in html
    assert f"{karen.registry_id} ({why})" in html
    assert "Karen Hansen" not in html.split("errornote")[-1].split("contact-0-name")[0]
    assert Patient.objects.count() == 1


def test_a_likely_duplicate_is_saved_with_a_reason_and_audited(client_a, staff_a, site_a, karen):
    data = patient_form(site_a, **other_contact(name="Karen Hansen"))
    refused = client_a.post(ADD, {**data, "save_anyway": "on"})
    assert "Give a reason" in refused.content.decode()
    assert Patient.objects.count() == 1

    saved = client_a.post(
        ADD, {**data, "save_anyway": "on", "warning_reason": "twin sister, checked the CPR"}
    )
    assert saved.status_code == 302
    new = Patient.objects.exclude(pk=karen.pk).get()
    (ack,) = WarningAcknowledgement.objects.filter(object_id=new.pk)
    assert (ack.codes, ack.reason, ack.user) == (
        ["likely_duplicate"],
        "twin sister, checked the CPR",
        staff_a,
    )
    assert karen.registry_id in ack.messages[0] and "Karen" not in ack.messages[0]
    assert Events.objects.tracks(ack).filter(pgh_label="insert").count() == 1
    # Editing the saved patient later does not ask again.
    change = reverse("admin:registry_patient_change", args=[new.pk])
    form = patient_form(site_a, **other_contact(name="Karen Hansen"))
    form.update(
        {
            "contact-INITIAL_FORMS": "1",
            "contact-0-id": str(new.contact.pk),
            "contact-0-patient": str(new.pk),
            "karnofsky": "80",
        }
    )
    assert client_a.post(change, form).status_code == 302
    assert WarningAcknowledgement.objects.filter(object_id=new.pk).count() == 1


def test_a_different_person_or_another_sites_patient_is_no_warning(client_a, site_a, site_b):
    elsewhere = make_patient(site_b, date_of_birth="1948-04-02")
    make_contact(elsewhere, name="Karen Hansen", email="karen@example.org")
    same_birthday = make_patient(site_a, date_of_birth="1948-04-02")
    make_contact(same_birthday, name="Birgit Olsen", email="bo@example.org", phone="")
    response = client_a.post(ADD, patient_form(site_a))
    assert response.status_code == 302
    assert not WarningAcknowledgement.objects.exists()


def test_likely_duplicates_names_what_matched(site_a, karen):
    found = likely_duplicates(
        site_id=site_a.pk,
        date_of_birth=karen.date_of_birth,
        name="Karen Hansen",
        email="k.h@example.org",
        phone="+4587654321",
    )
    assert found == [(karen, ["birth_name", "email", "phone"])]
    assert likely_duplicates(site_id=site_a.pk, date_of_birth=None, phone="654321") == []
