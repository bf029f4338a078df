"""Warnings that need a reason: each warning, "save anyway" without a reason, and the stored,
audited reason (docs/validation.md, "Warnings that need a reason")."""

import datetime
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse
from pghistory.models import Events

from outcomes.models import QuestionnaireResponse
from outcomes.quality.models import WarningAcknowledgement
from registry.warnings import procedure_warnings
from tests.factories import make_patient, make_procedure

PROCEDURE_DAY = datetime.date(2025, 6, 2)


@pytest.mark.parametrize(
    ("level_count", "absolute", "levels", "codes"),
    [
        (3, [], [(19, Decimal("4.5"))], []),
        (4, [], [(19, Decimal("4.5"))], ["many_levels"]),
        (1, ["infection"], [(19, Decimal("4.5"))], ["absolute_contraindication"]),
        (1, [], [(19, Decimal("6.0")), (20, Decimal("8.0"))], []),  # usual upper bounds
        (1, [], [(19, Decimal("6.1"))], ["cement_volume_unusual"]),  # thoracic above 6
        (1, [], [(20, Decimal("1.4"))], ["cement_volume_unusual"]),  # lumbar below 1.5
        (1, [], [(5, Decimal("3.5"))], ["cement_volume_unusual"]),  # cervical above 3
    ],
)
def test_procedure_warnings(level_count, absolute, levels, codes):
    warnings = procedure_warnings(
        level_count=level_count, absolute_contraindications=absolute, levels=levels
    )
    assert [warning.code for warning in warnings] == codes


def response_form(procedure, **overrides) -> dict:
    data = {
        "procedure": str(procedure.pk),
        "timepoint": "month_3",
        "mode": "paper",
        "answered_on": (PROCEDURE_DAY + datetime.timedelta(days=160)).isoformat(),
        "vas_pain": "35",
        "eq_vas": "",
        "warning_reason": "",
    }
    return data | overrides


def test_response_far_outside_its_window_needs_save_anyway_and_a_reason(client_a, staff_a, site_a):
    procedure = make_procedure(
        make_patient(site_a, consent_date=PROCEDURE_DAY), "osteoporotic", date=PROCEDURE_DAY
    )
    url = reverse("admin:outcomes_questionnaireresponse_add")
    refused = client_a.post(url, response_form(procedure))
    assert refused.status_code == 200
    assert "40 days outside the 3 months window" in refused.content.decode()
    with_cpr = client_a.post(
        url, response_form(procedure, save_anyway="on", warning_reason="pt 0101501234")
    )
    assert "This looks like a CPR number" in with_cpr.content.decode()
    assert not QuestionnaireResponse.objects.exists()

    reason = "Paper form found in the post room after the patient's long admission."
    saved = client_a.post(url, response_form(procedure, save_anyway="on", warning_reason=reason))
    assert saved.status_code == 302
    response = QuestionnaireResponse.objects.get()
    ack = WarningAcknowledgement.objects.get(
        content_type=ContentType.objects.get_for_model(QuestionnaireResponse),
        object_id=response.pk,
    )
    assert (ack.codes, ack.reason, ack.user) == (["response_far_outside_window"], reason, staff_a)
    assert Events.objects.tracks(ack).get().pgh_context["user"] == staff_a.pk


def test_answers_inside_their_window_need_no_reason(client_a, site_a):
    procedure = make_procedure(
        make_patient(site_a, consent_date=PROCEDURE_DAY), "osteoporotic", date=PROCEDURE_DAY
    )
    url = reverse("admin:outcomes_questionnaireresponse_add")
    in_window = (PROCEDURE_DAY + datetime.timedelta(days=91)).isoformat()
    saved = client_a.post(url, response_form(procedure, answered_on=in_window))
    assert saved.status_code == 302
    assert WarningAcknowledgement.objects.count() == 0


def test_a_warning_saved_anyway_is_not_asked_again_on_the_next_edit(client_a, site_a):
    from tests.registry.test_validation_table import page_data

    procedure = make_procedure(
        make_patient(site_a, consent_date=PROCEDURE_DAY), "osteoporotic", date=PROCEDURE_DAY
    )
    url = reverse("admin:registry_procedure_change", args=[procedure.pk])
    data = page_data(client_a.get(url)) | {"levels-0-cement_volume_ml": "12.0"}
    assert client_a.post(url, data).status_code == 200  # warning: needs a reason
    reason = "Large lytic defect; volume from the operative note."
    saved = client_a.post(url, data | {"save_anyway": "on", "warning_reason": reason})
    assert saved.status_code == 302

    again = page_data(client_a.get(url)) | {"notes": "Checked by the monitor."}
    assert client_a.post(url, again).status_code == 302
    procedure.refresh_from_db()
    assert procedure.notes == "Checked by the monitor."
    assert WarningAcknowledgement.objects.count() == 1

    more = page_data(client_a.get(url)) | {"levels-0-cement_volume_ml": "13.0"}
    assert client_a.post(url, more).status_code == 200  # a new value: a new warning
