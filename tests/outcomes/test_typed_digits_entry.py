"""Paper entry by typed digits on the staff response page (issue 27, item 6): the box fills
the items, the answers are read back before anything is saved, wrong input is refused beside
the box. Without JavaScript: the read-back is one refused round trip."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse
from tests.factories import make_patient, make_procedure
from tests.outcomes.test_responses import response_form

ADD = reverse("admin:outcomes_questionnaireresponse_add")


@pytest.fixture
def procedure_a(site_a):
    return make_procedure(make_patient(site_a), "osteoporotic")


def typed(procedure, eq5d="", odi="", **overrides) -> dict:
    """The add form as a nurse who only types the boxes sends it: every radio left empty."""
    data = response_form(procedure, eq5d=None, odi=[None] * 10)
    data.update(eq5d_digits=eq5d, odi_digits=odi, **overrides)
    return data


def shown_signature(page) -> str:
    return re.search(r'name="typed_checked" value="([^"]*)"', page.content.decode()).group(1)


def form_errors(page) -> dict:
    return page.context["adminform"].form.errors


def test_typed_digits_are_read_back_first_and_saved_on_the_second_save(client_a, procedure_a):
    first = client_a.post(ADD, typed(procedure_a, eq5d="13224", odi="3122121022"))

    assert first.status_code == 200
    assert QuestionnaireResponse.objects.count() == 0
    html = first.content.decode()
    assert "Check the answers read back under the typed digits" in html
    assert "Self-care: 3 – I have moderate problems washing or dressing myself" in html
    assert "Pain / discomfort: 2 – I have slight pain or discomfort" in html
    # The items are filled from the box: the radio of 3 for self-care is checked on the page.
    assert re.search(r'name="eq5d_self_care" value="3"[^>]*checked', html)

    second = client_a.post(
        ADD,
        typed(procedure_a, eq5d="13224", odi="3122121022", typed_checked=shown_signature(first)),
    )
    assert second.status_code == 302
    saved = QuestionnaireResponse.objects.get()
    assert saved.eq5d_state == "13224"
    assert saved.eq5d_index == Decimal("0.439")  # Jensen 2021, as when clicked
    assert [getattr(saved, f) for f in ODI_FIELDS] == [3, 1, 2, 2, 1, 2, 1, 0, 2, 2]
    assert saved.odi_score == Decimal("32.0")


def test_a_typo_corrected_after_the_read_back_is_read_back_again(client_a, procedure_a):
    """The adversary: the signature of 13224 must not let 13244 through unseen."""
    first = client_a.post(ADD, typed(procedure_a, eq5d="13224"))
    corrected = typed(procedure_a, eq5d="13244", typed_checked=shown_signature(first))
    again = client_a.post(ADD, corrected)
    assert again.status_code == 200
    assert QuestionnaireResponse.objects.count() == 0
    assert "Pain / discomfort: 4 – I have severe pain or discomfort" in again.content.decode()


def test_the_box_wins_over_clicked_choices_that_disagree(client_a, procedure_a):
    data = response_form(procedure_a, eq5d="55555")
    data.update(eq5d_digits="11111", odi_digits="")
    first = client_a.post(ADD, data)
    data["typed_checked"] = shown_signature(first)
    assert client_a.post(ADD, data).status_code == 302
    assert QuestionnaireResponse.objects.get().eq5d_state == "11111"


@pytest.mark.parametrize(
    ("box", "text", "message"),
    [
        ("eq5d_digits", "1122", "Type 5 characters, one per question in the printed order (4"),
        ("eq5d_digits", "11261", "Question 4: 6 is out of range; answers are 1–5."),
        ("odi_digits", "312212102", "Type 10 characters"),
        ("odi_digits", "3122121722", "Question 8: 7 is out of range; answers are 0–5."),
    ],
)
def test_wrong_length_or_digit_is_refused_beside_the_box_and_nothing_saved(
    client_a, procedure_a, box, text, message
):
    data = response_form(procedure_a)  # the clicked answers stay as they were
    data[box] = text
    page = client_a.post(ADD, data)
    assert page.status_code == 200
    assert message in str(form_errors(page)[box])
    assert QuestionnaireResponse.objects.count() == 0
    # No item was changed by the refused box.
    assert re.search(r'name="eq5d_self_care" value="3"[^>]*checked', page.content.decode())


def test_a_3l_site_refuses_a_5l_level_typed_and_takes_its_own(client_a, site_a):
    site_a.eq5d_version, site_a.eq5d_value_set = "3L", "UK-3L"
    site_a.save()
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    url = f"{ADD}?procedure={procedure.pk}"
    assert "one digit each 1–3" in client_a.get(url).content.decode()

    refused = client_a.post(url, typed(procedure, eq5d="11241"))
    assert "Question 4: 4 is out of range; answers are 1–3." in str(
        form_errors(refused)["eq5d_digits"]
    )
    assert QuestionnaireResponse.objects.count() == 0

    first = client_a.post(url, typed(procedure, eq5d="11221"))
    assert "Pain / discomfort: 2 – I have moderate pain or discomfort" in first.content.decode()
    saved = client_a.post(url, typed(procedure, eq5d="11221", typed_checked=shown_signature(first)))
    assert saved.status_code == 302
    assert QuestionnaireResponse.objects.get().eq5d_index == Decimal("0.760")  # Dolan 1997


def test_odi_with_a_section_marked_unanswered_is_scored_on_nine(client_a, procedure_a):
    first = client_a.post(ADD, typed(procedure_a, odi="3122121-22"))
    assert "Section 8 – Sex life (if applicable): not answered" in first.content.decode()
    data = typed(procedure_a, odi="3122121-22", typed_checked=shown_signature(first))
    assert client_a.post(ADD, data).status_code == 302
    saved = QuestionnaireResponse.objects.get()
    assert saved.odi_sex_life is None
    assert saved.odi_score == Decimal("35.6")  # 16 / 45, the manual's one-missing rule
    assert all(getattr(saved, f) is None for f in EQ5D_FIELDS)


def test_the_read_back_and_refusals_are_in_danish(client_a, procedure_a):
    page = client_a.post(ADD, typed(procedure_a, eq5d="1122"), HTTP_ACCEPT_LANGUAGE="da")
    errors = str(form_errors(page)["eq5d_digits"])
    assert "Skriv 5 tegn" in errors
    assert "Type 5 characters" not in errors
