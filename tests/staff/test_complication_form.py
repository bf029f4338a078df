"""The complication form offers only the patient's own procedures and treated levels."""

from django.urls import reverse

from registry.models import Complication
from tests.factories import make_patient, make_procedure


def test_add_page_lists_only_the_patients_procedures_and_levels(client_a, site_a):
    mine = make_procedure(make_patient(site_a), "osteoporotic", "metastasis")
    other = make_procedure(make_patient(site_a), "osteoporotic")
    url = reverse("admin:registry_complication_add") + f"?patient={mine.patient_id}"

    form = client_a.get(url).context["adminform"].form

    assert list(form.fields["procedure"].queryset) == [mine]
    assert sorted(form.fields["treated_level"].queryset.values_list("procedure", flat=True)) == [
        mine.pk,
        mine.pk,
    ]
    html = client_a.get(url).content.decode()
    assert f'value="{other.pk}"' not in html.split('id="id_procedure"')[1].split("</select>")[0]


def test_another_patients_procedure_is_refused_and_nothing_saved(client_a, site_a):
    mine = make_procedure(make_patient(site_a), "osteoporotic")
    other = make_procedure(make_patient(site_a), "osteoporotic")
    data = {
        "patient": mine.patient_id,
        "procedure": other.pk,
        "treated_level": other.levels.get().pk,
        "date": "2026-03-05",
        "type": "haematoma",
        "cirse_grade": "2",
        "relation": "probable",
        "outcome": "resolved",
    }

    response = client_a.post(reverse("admin:registry_complication_add"), data)

    errors = response.context["adminform"].form.errors
    assert "Select a valid choice" in str(errors["procedure"])
    assert "Select a valid choice" in str(errors["treated_level"])
    assert not Complication.objects.exists()

    data.update(procedure=mine.pk, treated_level=mine.levels.get().pk)
    assert client_a.post(reverse("admin:registry_complication_add"), data).status_code == 302
    assert Complication.objects.get().treated_level == mine.levels.get()


def test_without_a_patient_no_procedure_is_offered(client_a, site_a):
    make_procedure(make_patient(site_a), "osteoporotic")
    form = client_a.get(reverse("admin:registry_complication_add")).context["adminform"].form
    assert list(form.fields["procedure"].queryset) == []
    assert "Choose the patient first" in str(form.fields["procedure"].help_text)
