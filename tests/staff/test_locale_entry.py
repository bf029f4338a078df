"""Danish dates, the decimal comma and times in the site's time zone on staff pages."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp
from registry.models import Procedure
from tests.factories import make_patient, make_procedure
from tests.registry.test_admin import level_form, procedure_form


def post_procedure(client, patient, language="en", **overrides):
    level_overrides = {k: overrides.pop(k) for k in list(overrides) if k == "cement_volume_ml"}
    data = procedure_form(patient, [level_form(0, 19, **level_overrides)], **overrides)
    return client.post(reverse("admin:registry_procedure_add"), data, HTTP_ACCEPT_LANGUAGE=language)


@pytest.mark.parametrize("language", ["en", "da"])
@pytest.mark.parametrize("typed", ["4,5", "4.5", " 4,5 "])
def test_cement_volume_with_a_decimal_comma_or_point_is_4_5_never_45(
    client_a, site_a, language, typed
):
    patient = make_patient(site_a)
    response = post_procedure(client_a, patient, language, cement_volume_ml=typed)
    assert response.status_code == 302
    assert Procedure.objects.get(patient=patient).levels.get().cement_volume_ml == Decimal("4.5")


@pytest.mark.parametrize("typed", ["1.234,5", "4,5,1", "4,5 ml", "1 234"])
def test_a_thousands_separator_or_junk_is_refused_not_guessed(client_a, site_a, typed):
    patient = make_patient(site_a)
    response = post_procedure(client_a, patient, cement_volume_ml=typed)
    assert response.status_code == 200
    assert "Enter a number such as 4,5 or 4.5" in response.content.decode()
    assert not Procedure.objects.filter(patient=patient).exists()


def test_decimal_field_is_a_text_box_showing_the_language_separator(client_a, site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic", dose_area_product="12.50")
    url = reverse("admin:registry_procedure_change", args=[procedure.pk])
    danish = client_a.get(url, HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert 'name="levels-0-cement_volume_ml" value="4,5"' in danish
    assert 'inputmode="decimal"' in danish
    english = client_a.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'name="levels-0-cement_volume_ml" value="4.5"' in english


@pytest.mark.parametrize("language", ["en", "da"])
@pytest.mark.parametrize("typed", ["28-02-2026", "28.02.2026", "2026-02-28", "28/02/2026"])
def test_danish_and_iso_dates_are_accepted_in_both_languages(client_a, site_a, language, typed):
    patient = make_patient(site_a, consent_date=datetime.date(2026, 2, 1))
    response = post_procedure(client_a, patient, language, date=typed)
    assert response.status_code == 302
    assert Procedure.objects.get(patient=patient).date == datetime.date(2026, 2, 28)


def test_a_bad_date_says_which_forms_work_and_the_field_shows_the_hint(client_a, site_a):
    patient = make_patient(site_a)
    response = post_procedure(client_a, patient, date="31-02-2026")
    html = response.content.decode()
    assert "Enter the date as a day-month-year date, e.g. 28-11-2026, 28.11.2026" in html
    page = client_a.get(reverse("admin:registry_procedure_add")).content.decode()
    assert "e.g. 28-11-2026, 28.11.2026 or 2026-11-28" in page


def test_times_show_in_the_sites_time_zone_with_the_zone_named(client_a, site_a):
    procedure = make_procedure(make_patient(site_a), "osteoporotic")
    followups_ensure(procedure_ids=[procedure.pk])
    followup = FollowUp.objects.get(procedure=procedure, timepoint="post_op")
    # 23:30 UTC on 2 March is 00:30 on 3 March in Copenhagen (CET).
    FollowUp.objects.filter(pk=followup.pk).update(
        link_issued_at=datetime.datetime(2026, 3, 2, 23, 30, tzinfo=datetime.UTC)
    )
    page = client_a.get(reverse("admin:outcomes_followup_change", args=[followup.pk]))
    html = page.content.decode()
    assert "3 Mar 2026, 00:30 CET" in html
    assert "23:30" not in html
    assert timezone.get_current_timezone_name() == "UTC"  # deactivated after the request


def test_staff_pages_switch_between_english_and_danish(client_a, site_a):
    patient = make_patient(site_a)
    record = reverse("staff_record", args=[patient.registry_id])
    english = client_a.get(record).content.decode()
    assert "Add a procedure" in english and 'lang="en"' in english
    switched = client_a.post(reverse("set_language"), {"language": "da", "next": record})
    assert switched.status_code == 302 and switched["Location"] == record
    danish = client_a.get(record).content.decode()
    assert 'lang="da"' in danish
    assert "Tilføj et indgreb" in danish and "Tider vises i Europe/Copenhagen" in danish
    assert "Add a procedure" not in danish
    dashboard = client_a.get(reverse("staff_dashboard")).content.decode()
    assert "Signaturforklaring" in dashboard and "Planlagt" in dashboard
