"""Questionnaire responses: staff entry in the admin, database invariants, re-scoring."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse
from tests.factories import make_patient, make_procedure, make_response, make_site

ODI_ALL = [3, 1, 2, 2, 1, 2, 1, 0, 2, 2]  # 16 / 50 = 32 %


def response_form(procedure, *, eq5d="13224", odi=ODI_ALL, **overrides) -> dict:
    data = {
        "procedure": str(procedure.pk),
        "timepoint": "baseline",
        "mode": "paper",
        "answered_on": "2026-03-01",
        "vas_pain": "70",
        "eq_vas": "40",
    }
    for field, level in zip(EQ5D_FIELDS, eq5d or "     ", strict=True):
        data[field] = level.strip()
    for field, answer in zip(ODI_FIELDS, odi, strict=True):
        data[field] = "" if answer is None else str(answer)
    data.update(overrides)
    return data


@pytest.fixture
def procedure_a(site_a):
    return make_procedure(make_patient(site_a), "osteoporotic")


def test_staff_enters_paper_baseline_and_sees_scores_with_site_value_set(
    client_a, staff_a, procedure_a
):
    url = reverse("admin:outcomes_questionnaireresponse_add") + f"?procedure={procedure_a.pk}"
    response = client_a.post(url, response_form(procedure_a))
    assert response.status_code == 302
    saved = QuestionnaireResponse.objects.get(procedure=procedure_a, timepoint="baseline")
    assert saved.eq5d_state == "13224"
    assert (saved.eq5d_version, saved.eq5d_value_set) == ("5L", "DK-5L")
    assert saved.eq5d_index == Decimal("0.439")  # Jensen 2021 value of 13224
    assert saved.odi_score == Decimal("32.0")
    assert (saved.vas_pain, saved.eq_vas, saved.mode) == (70, 40, "paper")
    assert saved.entered_by == staff_a

    page = client_a.get(reverse("admin:outcomes_questionnaireresponse_change", args=[saved.pk]))
    html = page.content.decode()
    assert "0.439" in html and "Denmark, 5L (Jensen 2021)" in html and "32.0" in html
    assert "I have moderate problems washing or dressing myself" in html


def test_three_level_site_gets_3l_wording_and_refuses_level_4(client_a, site_a):
    site_a.eq5d_version, site_a.eq5d_value_set = "3L", "UK-3L"
    site_a.save()
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    url = reverse("admin:outcomes_questionnaireresponse_add") + f"?procedure={procedure.pk}"
    assert "I am confined to bed" in client_a.get(url).content.decode()

    response = client_a.post(url, response_form(procedure, eq5d="11221"))
    assert response.status_code == 302
    assert QuestionnaireResponse.objects.get().eq5d_index == Decimal("0.760")  # Dolan 1997


def test_partly_answered_eq5d_is_refused_and_nothing_saved(client_a, procedure_a):
    data = response_form(procedure_a, eq5d="132 4")
    response = client_a.post(reverse("admin:outcomes_questionnaireresponse_add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "answer all five EQ-5D questions" in str(errors["eq5d_pain_discomfort"])
    assert QuestionnaireResponse.objects.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [("vas_pain", "101"), ("eq_vas", "-1"), ("odi_lifting", "6"), ("eq5d_mobility", "7")],
)
def test_out_of_range_answers_are_refused(client_a, procedure_a, field, value):
    data = response_form(procedure_a, **{field: value})
    response = client_a.post(reverse("admin:outcomes_questionnaireresponse_add"), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert QuestionnaireResponse.objects.count() == 0


def test_second_response_for_the_same_timepoint_is_refused(client_a, procedure_a):
    make_response(procedure_a, eq5d="11111")
    response = client_a.post(
        reverse("admin:outcomes_questionnaireresponse_add"), response_form(procedure_a)
    )
    assert response.status_code == 200
    assert QuestionnaireResponse.objects.count() == 1


def test_odi_with_two_sections_missing_is_saved_unscored_with_warning(client_a, procedure_a):
    odi = [3, 1, 2, 2, 1, 2, 1, None, None, 2]
    response = client_a.post(
        reverse("admin:outcomes_questionnaireresponse_add"), response_form(procedure_a, odi=odi)
    )
    assert response.status_code == 302
    saved = QuestionnaireResponse.objects.get()
    assert saved.odi_score is None and saved.odi_pain_intensity == 3
    warnings = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("2 sections are unanswered" in w for w in warnings)


def test_one_odi_section_missing_is_scored(procedure_a):
    saved = make_response(procedure_a, odi=[3, 1, 2, 2, 1, 2, 1, None, 2, 2])
    assert saved.odi_score == Decimal("35.6")


def test_other_sites_responses_are_hidden(client_a, site_b):
    theirs = make_response(make_procedure(make_patient(site_b), "metastasis"), eq5d="11111")
    url = reverse("admin:outcomes_questionnaireresponse_change", args=[theirs.pk])
    assert client_a.get(url).status_code == 404
    listed = client_a.get(reverse("admin:outcomes_questionnaireresponse_changelist"))
    assert list(listed.context["cl"].result_list) == []


def test_procedure_page_links_to_its_questionnaires(client_a, procedure_a):
    make_response(procedure_a, eq5d="13224", vas_pain=55)
    page = client_a.get(reverse("admin:registry_procedure_change", args=[procedure_a.pk]))
    html = page.content.decode()
    assert "EQ-5D 0.439" in html and "VAS 55" in html
    assert f"?procedure={procedure_a.pk}&amp;timepoint=month_3" in html


@pytest.mark.parametrize(
    "changes",
    [
        {"eq5d_mobility": None},  # EQ-5D partly answered
        {"eq5d_mobility": 4, "eq5d_version": "3L"},  # level outside the version
        {"vas_pain": 101},
        {"odi_walking": 6},
        {"eq5d_value_set": "UK-3L"},  # index computed with another version's value set
    ],
)
def test_response_invariants_refused_by_database(procedure_a, changes):
    saved = make_response(procedure_a, eq5d="12111", odi=ODI_ALL, vas_pain=40)
    with pytest.raises(IntegrityError), transaction.atomic():
        QuestionnaireResponse.objects.filter(pk=saved.pk).update(**changes)


@pytest.mark.django_db
def test_rescore_after_value_set_change_updates_exactly_that_sites_responses(capsys):
    denmark = make_site("DKA", eq5d_version="5L", eq5d_value_set="DK-5L")
    other = make_site("DKB", eq5d_version="5L", eq5d_value_set="DK-5L")
    ours = [
        make_response(make_procedure(make_patient(denmark), "osteoporotic"), eq5d=state)
        for state in ("13224", "11112", "11111")
    ]
    theirs = make_response(make_procedure(make_patient(other), "osteoporotic"), eq5d="13224")

    denmark.eq5d_value_set = "EN-5L"
    denmark.save()
    call_command("rescore_responses", dry_run=True)
    assert QuestionnaireResponse.objects.get(pk=ours[0].pk).eq5d_value_set == "DK-5L"

    call_command("rescore_responses")
    out = capsys.readouterr().out
    # 11111 is 1.000 under both value sets: only its value-set label changes.
    assert "2 responses would change" not in out
    assert "3 responses changed (5 scores)." in out
    refreshed = {r.pk: r for r in QuestionnaireResponse.objects.all()}
    assert [(refreshed[r.pk].eq5d_value_set, refreshed[r.pk].eq5d_index) for r in ours] == [
        ("EN-5L", Decimal("0.522")),  # 1 - .080 - .050 - .063 - .285 (Devlin 2018)
        ("EN-5L", Decimal("0.922")),
        ("EN-5L", Decimal("1.000")),
    ]
    assert (refreshed[theirs.pk].eq5d_value_set, refreshed[theirs.pk].eq5d_index) == (
        "DK-5L",
        Decimal("0.439"),
    )
    call_command("rescore_responses")
    assert "0 responses changed" in capsys.readouterr().out


@pytest.mark.django_db
def test_rescore_keeps_value_set_when_site_switched_version(capsys):
    site = make_site("DKC", eq5d_version="5L", eq5d_value_set="DK-5L")
    saved = make_response(make_procedure(make_patient(site), "osteoporotic"), eq5d="13224")
    site.eq5d_version, site.eq5d_value_set = "3L", "DK-3L"
    site.save()
    call_command("rescore_responses")
    saved.refresh_from_db()
    assert (saved.eq5d_value_set, saved.eq5d_index) == ("DK-5L", Decimal("0.439"))


@pytest.mark.django_db
def test_rescore_leaves_locked_records_scores_frozen_and_says_so(capsys):
    from registry.models import RecordLock

    site = make_site("DKL", eq5d_version="5L", eq5d_value_set="DK-5L")
    locked = make_response(make_procedure(make_patient(site), "osteoporotic"), eq5d="13224")
    open_ = make_response(make_procedure(make_patient(site), "osteoporotic"), eq5d="13224")
    RecordLock.objects.create(patient=locked.procedure.patient, reason="paper 2026")
    site.eq5d_value_set = "EN-5L"
    site.save()
    call_command("rescore_responses")
    out = capsys.readouterr().out
    assert "1 responses changed" in out
    assert "1 responses of locked records were left as they are." in out
    assert QuestionnaireResponse.objects.get(pk=locked.pk).eq5d_value_set == "DK-5L"
    assert QuestionnaireResponse.objects.get(pk=open_.pk).eq5d_value_set == "EN-5L"


@pytest.mark.django_db
def test_a_site_switched_from_england_2018_to_the_uk_2026_set_is_rescored_with_it(capsys):
    london = make_site("LDX", eq5d_version="5L", eq5d_value_set="EN-5L")
    saved = make_response(make_procedure(make_patient(london), "osteoporotic"), eq5d="13244")
    assert (saved.eq5d_value_set, saved.eq5d_index) == (
        "EN-5L",
        Decimal("0.309"),
    )  # 1 - .080 - .050 - .276 - .285

    london.eq5d_value_set = "UK26-5L"
    london.full_clean()  # a choice the site's form offers, valid for 5L
    london.save()
    call_command("rescore_responses")
    assert "1 responses changed" in capsys.readouterr().out
    saved.refresh_from_db()
    # 1 - SC3 .060 - UA2 .049 - PD4 .371 - AD4 .313 (Rowen 2026)
    assert (saved.eq5d_value_set, saved.eq5d_index) == ("UK26-5L", Decimal("0.207"))
