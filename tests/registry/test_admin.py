"""Data entry in the admin, posting the real admin forms with their inlines."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pghistory.models import Events

from outcomes.quality.models import WarningAcknowledgement
from registry.models import Patient, Procedure, TreatedLevel
from tests.factories import (
    make_complication,
    make_contact,
    make_patient,
    make_procedure,
    make_user,
)

UNKNOWN = "unknown"  # NullBooleanSelect's value for "no answer"


def management(prefix: str, total: int, initial: int = 0, max_num: int = 1000) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": str(max_num),
    }


def patient_form(site, **overrides) -> dict:
    data = {
        "site": str(site.pk),
        "sex": "female",
        "date_of_birth": "1948-04-02",
        "consent_date": "2026-02-20",
        "consent_withdrawn_date": "",
        "karnofsky": "70",
        "asa_class": "3",
        "date_of_death": "",
        "cause_of_death": "",
        "primary_tumour": "",
        "malignancy_confirmation": "",
        "other_bone_metastases": UNKNOWN,
        "visceral_metastases": UNKNOWN,
        "prior_radiotherapy": UNKNOWN,
        "prior_chemotherapy": UNKNOWN,
        **management("contact", 1, max_num=1),
        "contact-0-name": "Karen Hansen",
        "contact-0-email": "karen@example.org",
        "contact-0-phone": "31 12 34 56",
        "contact-0-preferred_channel": "email",
        "contact-0-preferred_language": "da",
        "contact-0-consent_to_contact": "on",
    }
    data.update(overrides)
    return data


def level_form(index: int, level: int, **overrides) -> dict:
    fields = {
        "level": str(level),
        "etiology": "osteoporotic",
        "fracture": "on",
        "genant_grade": "2",
        "approach": "bipedicular",
        "cement_type": "pmma",
        "cement_volume_ml": "4.5",
        "leakage_detected_by": "",
    }
    fields.update(overrides)
    return {f"levels-{index}-{name}": value for name, value in fields.items()}


def procedure_form(patient, levels: list[dict], **overrides) -> dict:
    data = {
        "patient": str(patient.pk),
        "date": "2026-03-01",
        "technique": "vertebroplasty",
        "adjunct": "none",
        "indication": "painful_fracture",
        "anaesthesia": "local",
        "image_guidance": "fluoroscopy",
        "operator": "Dr Hansen",
        "mri_stir_oedema": "true",
        "biopsy_result": "",
        "fluoroscopy_time_s": "240",
        "dose_area_product": "12.50",
        "length_of_stay_days": "1",
        "notes": "",
        **management("levels", len(levels)),
    }
    for level in levels:
        data.update(level)
    data.update(overrides)
    return data


def test_staff_registers_patient_with_contact_details(client_a, site_a):
    response = client_a.post(reverse("admin:registry_patient_add"), patient_form(site_a))
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    patient = Patient.objects.get(site=site_a)
    assert patient.registry_id == "AAA-000001"  # generated per site
    assert (patient.site, patient.karnofsky, patient.asa_class) == (site_a, 70, 3)
    assert patient.contact.email == "karen@example.org"
    assert patient.contact.consent_to_contact is True


def test_staff_cannot_register_patient_at_another_site(client_a, site_b):
    response = client_a.post(reverse("admin:registry_patient_add"), patient_form(site_b))
    assert response.status_code == 200
    assert "site" in response.context["adminform"].form.errors
    assert not Patient.objects.exists()


def test_invalid_karnofsky_shows_error_and_saves_nothing(client_a, site_a):
    response = client_a.post(
        reverse("admin:registry_patient_add"), patient_form(site_a, karnofsky="75")
    )
    assert response.status_code == 200
    assert "karnofsky" in response.context["adminform"].form.errors
    assert Patient.objects.count() == 0


def test_staff_records_two_level_procedure_with_leak_at_one_level(client_a, site_a):
    patient = make_patient(site_a)
    levels = [
        level_form(0, TreatedLevel.Level.T12),
        level_form(
            1,
            TreatedLevel.Level.L1,
            cement_leakage="on",
            leakage_sites=["segmental_vein", "intradiscal"],
            leakage_detected_by="fluoroscopy",
        ),
    ]
    response = client_a.post(
        reverse("admin:registry_procedure_add"), procedure_form(patient, levels)
    )
    assert response.status_code == 302
    procedure = Procedure.objects.get(patient=patient)
    assert procedure.cohort == "osteoporotic"
    saved = list(
        procedure.levels.order_by("level").values_list("level", "cement_leakage", "leakage_sites")
    )
    assert saved == [(19, False, []), (20, True, ["segmental_vein", "intradiscal"])]


def test_leak_sites_without_leak_ticked_gives_plain_error_and_saves_nothing(client_a, site_a):
    patient = make_patient(site_a)
    levels = [level_form(0, 20, leakage_sites=["foraminal"])]
    response = client_a.post(
        reverse("admin:registry_procedure_add"), procedure_form(patient, levels)
    )
    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.errors
    assert "tick it or clear them" in str(errors[0]["leakage_sites"])
    assert Procedure.objects.count() == 0


def test_duplicate_level_in_one_procedure_is_refused(client_a, site_a):
    patient = make_patient(site_a)
    levels = [level_form(0, 20), level_form(1, 20)]
    response = client_a.post(
        reverse("admin:registry_procedure_add"), procedure_form(patient, levels)
    )
    assert response.status_code == 200
    assert Procedure.objects.count() == 0


def test_four_levels_and_absolute_contraindication_need_save_anyway_and_reason(
    client_a, staff_a, site_a
):
    patient = make_patient(site_a)
    levels = [level_form(i, 17 + i) for i in range(4)]
    data = procedure_form(patient, levels, absolute_contraindications=["coagulopathy"])
    response = client_a.post(reverse("admin:registry_procedure_add"), data)
    assert response.status_code == 200
    page = response.content.decode()
    assert "4 levels were treated in one session" in page
    assert "Uncorrectable coagulopathy" in page
    assert not Procedure.objects.filter(patient=patient).exists()

    ticked_without_reason = client_a.post(
        reverse("admin:registry_procedure_add"), {**data, "save_anyway": "on"}
    )
    assert ticked_without_reason.status_code == 200
    assert "Give a reason for saving anyway" in ticked_without_reason.content.decode()
    assert not Procedure.objects.filter(patient=patient).exists()

    reason = "Four painful levels in a myeloma patient; staging would delay relief."
    saved = client_a.post(
        reverse("admin:registry_procedure_add"),
        {**data, "save_anyway": "on", "warning_reason": reason},
    )
    assert saved.status_code == 302
    procedure = Procedure.objects.get(patient=patient)
    assert procedure.levels.count() == 4
    (ack,) = WarningAcknowledgement.objects.filter(object_id=procedure.pk)
    assert (ack.codes, ack.reason, ack.user) == (
        ["many_levels", "absolute_contraindication"],
        reason,
        staff_a,
    )
    assert Events.objects.tracks(ack).get().pgh_context["user"] == staff_a.pk


def test_three_levels_give_no_warning(client_a, site_a):
    patient = make_patient(site_a)
    levels = [level_form(i, 17 + i) for i in range(3)]
    response = client_a.post(
        reverse("admin:registry_procedure_add"), procedure_form(patient, levels)
    )
    assert response.status_code == 302
    assert [m for m in get_messages(response.wsgi_request) if m.level_tag == "warning"] == []


def test_procedure_for_another_sites_patient_is_refused(client_a, site_b):
    other = make_patient(site_b)
    response = client_a.post(
        reverse("admin:registry_procedure_add"), procedure_form(other, [level_form(0, 20)])
    )
    assert response.status_code == 200
    assert "patient" in response.context["adminform"].form.errors
    assert Procedure.objects.count() == 0


def other_site_urls(site_b) -> list[str]:
    patient = make_patient(site_b)
    procedure = make_procedure(patient, "metastasis")
    complication = make_complication(procedure)
    level = procedure.levels.get()
    urls = []
    for name, obj in [
        ("patient", patient),
        ("procedure", procedure),
        ("complication", complication),
        ("treatedlevel", level),
        ("site", site_b),
    ]:
        for view in ("change", "history", "delete"):
            urls.append(reverse(f"admin:registry_{name}_{view}", args=[obj.pk]))
    return urls


def test_other_sites_records_are_not_found_on_every_admin_page(client_a, site_b):
    for url in other_site_urls(site_b):
        response = client_a.get(url)
        assert response.status_code == 404, url


def test_changelists_and_autocomplete_hide_other_sites(client_a, site_a, site_b):
    mine = make_patient(site_a)
    make_procedure(mine, "osteoporotic")
    theirs = make_patient(site_b)
    make_procedure(theirs, "osteoporotic")
    listed = client_a.get(reverse("admin:registry_patient_changelist")).context["cl"].result_list
    assert [p.registry_id for p in listed] == [mine.registry_id]
    procedures = client_a.get(reverse("admin:registry_procedure_changelist")).context["cl"]
    assert [p.patient_id for p in procedures.result_list] == [mine.pk]
    found = client_a.get(
        reverse("admin:autocomplete"),
        {
            "term": "",
            "app_label": "registry",
            "model_name": "procedure",
            "field_name": "patient",
        },
    ).json()
    assert [row["text"] for row in found["results"]] == [mine.registry_id]


def test_manager_sees_every_site(client, manager, site_a, site_b):
    make_patient(site_a)
    make_patient(site_b)
    client.force_login(manager)
    listed = client.get(reverse("admin:registry_patient_changelist")).context["cl"].result_list
    assert {p.site.code for p in listed} == {"AAA", "BBB"}


@pytest.mark.parametrize("name", ["patient", "procedure", "complication", "treatedlevel"])
def test_changelist_query_count_does_not_grow_with_rows(client, manager, site_a, name):
    client.force_login(manager)
    url = reverse(f"admin:registry_{name}_changelist")

    def add_rows(count):
        for _ in range(count):
            make_complication(make_procedure(make_patient(site_a), "osteoporotic", "metastasis"))

    add_rows(2)
    client.get(url)  # the first request writes the new session (then at most once a minute)
    with CaptureQueriesContext(connection) as few:
        assert client.get(url).status_code == 200
    add_rows(8)
    with CaptureQueriesContext(connection) as many:
        response = client.get(url)
    assert response.context["cl"].result_count >= 10
    assert len(many) == len(few)


def test_admin_edit_is_recorded_with_the_acting_user(client_a, staff_a, site_a):
    patient = make_patient(site_a, karnofsky=60)
    data = patient_form(site_a, registry_id=patient.registry_id, karnofsky="80")
    data.update(management("contact", 1, max_num=1))
    response = client_a.post(reverse("admin:registry_patient_change", args=[patient.pk]), data)
    assert response.status_code == 302
    update = Events.objects.tracks(patient).filter(pgh_label="update").get()
    assert update.pgh_diff["karnofsky"] == [60, 80]
    assert update.pgh_context["user"] == staff_a.pk

    page = client_a.get(reverse("admin:registry_patient_history", args=[patient.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "staff.a" in html
    assert "60 → 80" in html


def test_procedure_history_includes_its_levels(client_a, site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    TreatedLevel.objects.filter(procedure=procedure).update(
        cement_leakage=True, leakage_sites=["foraminal"], leakage_detected_by="ct"
    )
    page = client_a.get(reverse("admin:registry_procedure_history", args=[procedure.pk]))
    rows = page.context["rows"]
    level_updates = [r for r in rows if r["model"] == "TreatedLevelEvent" and r["what"] == "update"]
    assert len(level_updates) == 1
    assert ("cement_leakage", False, True) in level_updates[0]["changes"]


def test_queryset_update_and_bulk_writes_are_audited(site_a):
    patients = [make_patient(site_a) for _ in range(3)]
    Patient.objects.filter(site=site_a).update(asa_class=4)
    Patient.objects.filter(pk=patients[0].pk).update(date_of_death=datetime.date(2026, 4, 1))
    updates = Events.objects.tracks(*patients).filter(pgh_label="update")
    assert updates.count() == 4
    death = updates.filter(pgh_obj_id=patients[0].pk).order_by("pgh_id").last()
    assert death.pgh_diff == {"date_of_death": [None, "2026-04-01"]}
    assert death.pgh_context is None  # no request: written by the system


def test_auditor_history_hides_contact_details(client, site_a):
    auditor = make_user("Auditor", site_a)
    patient = make_patient(site_a)
    make_contact(patient, email="secret@example.org")
    client.force_login(auditor)
    page = client.get(reverse("admin:registry_patient_history", args=[patient.pk]))
    assert page.status_code == 200
    assert "secret@example.org" not in page.content.decode()
    assert {row["model"] for row in page.context["rows"]} == {"PatientEvent"}


def test_save_without_change_writes_no_history(site_a):
    patient = make_patient(site_a)
    patient.save()
    assert Events.objects.tracks(patient).filter(pgh_label="update").count() == 0
