"""Each data-quality rule against a record that breaks it and one that does not; the per-site
page, its CSV, the nightly task and the demo's seeded errors."""

from __future__ import annotations

import csv
import datetime
import io

import pytest
from django.contrib.contenttypes.models import ContentType
from django.urls import reverse

from outcomes.followups.sweep import followups_ensure
from outcomes.models import FollowUp, QuestionnaireResponse
from outcomes.quality.models import QualityRun, WarningAcknowledgement
from outcomes.quality.rules import RULES, RULES_BY_ID
from outcomes.quality.services import quality_run
from outcomes.tasks import data_quality_nightly
from registry.models import Patient, Procedure, Site
from registry.validation import site_today
from tests.factories import (
    make_complication,
    make_contact,
    make_level,
    make_patient,
    make_procedure,
    make_procedure_without_levels,
    make_response,
    make_site,
    make_user,
)

DAY = datetime.date(2025, 6, 2)
LEAK = {
    "cement_leakage": True,
    "leakage_sites": ["segmental_vein"],
    "leakage_detected_by": "fluoroscopy",
}


def found(rule_id: str, site) -> set:
    today = site_today(site.time_zone)
    return set(
        RULES_BY_ID[rule_id]
        .query(Site.objects.filter(pk=site.pk), today)
        .values_list("pk", flat=True)
    )


def patient(site, **fields):
    return make_patient(site, consent_date=DAY - datetime.timedelta(days=5), **fields)


def with_baseline(procedure):
    make_response(procedure, "baseline", vas_pain=70, answered_on=procedure.date)
    return procedure


# Each case: rule id, a builder of a record that breaks the rule, one of a record that does
# not. Builders return the record the rule should (or should not) find.
def dq01_bad(site):
    return make_procedure(patient(site), "osteoporotic", date=DAY)


def dq01_good(site):
    return with_baseline(make_procedure(patient(site), "osteoporotic", date=DAY))


def dq02_bad(site):
    return make_level(make_procedure(patient(site), date=DAY), level=20, **LEAK)


def dq02_good(site):
    level_fields = LEAK | {"leakage_detected_by": "radiograph_3m"}
    return make_level(make_procedure(patient(site), date=DAY), level=20, **level_fields)


def _dead_with_followups(site):
    procedure = make_procedure(patient(site), "osteoporotic", date=DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    Patient.objects.filter(pk=procedure.patient_id).update(
        date_of_death=DAY + datetime.timedelta(days=200), cause_of_death="other"
    )  # the database cancels the pending follow-ups (outcomes migration 0004)
    return FollowUp.objects.get(procedure=procedure, timepoint="month_12")


def dq03_bad(site):
    followup = _dead_with_followups(site)
    # e.g. reopened by a bulk correction after the death was recorded
    FollowUp.objects.filter(pk=followup.pk).update(state="open", cancel_reason="")
    return followup


def dq03_good(site):
    return _dead_with_followups(site)


def dq04_bad(site):
    return make_complication(
        make_procedure(patient(site), "osteoporotic", date=DAY), type="adjacent_fracture"
    )


def dq04_good(site):
    procedure = make_procedure(patient(site), "osteoporotic", date=DAY)
    return make_complication(
        procedure, type="adjacent_fracture", treated_level=procedure.levels.get()
    )


def dq05_bad(site):
    response = make_response(
        make_procedure(patient(site), "osteoporotic", date=DAY), "baseline", eq5d="12321"
    )
    QuestionnaireResponse.objects.filter(pk=response.pk).update(eq5d_value_set="", eq5d_index=None)
    return response


def dq05_good(site):
    procedure = make_procedure(patient(site), "osteoporotic", date=DAY)
    return make_response(procedure, "baseline", eq5d="12321")


def _month_3(site, days_after):
    procedure = make_procedure(patient(site), "osteoporotic", date=DAY)
    followups_ensure(procedure_ids=[procedure.pk])
    return make_response(
        procedure, "month_3", vas_pain=20, answered_on=DAY + datetime.timedelta(days=days_after)
    )


def dq06_bad(site):
    return _month_3(site, 130)  # window: days 70-120


def dq06_good(site):
    return _month_3(site, 91)


def dq06_saved_anyway(site):
    response = _month_3(site, 160)
    WarningAcknowledgement.objects.create(
        content_type=ContentType.objects.get_for_model(QuestionnaireResponse),
        object_id=response.pk,
        site=site,
        codes=["response_far_outside_window"],
        reason="Answered late on paper after a hospital stay.",
    )
    return response


def dq07_bad(site):
    response = _month_3(site, 91)
    Procedure.objects.filter(pk=response.procedure_id).update(
        date=DAY + datetime.timedelta(days=100)
    )
    return response


def dq07_good(site):
    return _month_3(site, 91)


def dq08_bad(site):
    return make_procedure(patient(site), "metastasis", date=DAY).patient


def dq08_good(site):
    return make_procedure(patient(site, primary_tumour="breast"), "metastasis", date=DAY).patient


def dq09_bad(site):
    return make_procedure_without_levels(patient(site), date=DAY)


def dq09_good(site):
    return make_procedure(patient(site), "osteoporotic", date=DAY)


def dq10_bad(site):
    return patient(site, date_of_death=DAY)


def dq10_good(site):
    return patient(site, date_of_death=DAY, cause_of_death="unknown")


def dq11_bad(site):
    twin = patient(make_site(), date_of_birth=datetime.date(1944, 2, 29))
    make_contact(twin, name="Inger Marie Hansen", email="im@example.org", phone="")
    breaking = patient(site, date_of_birth=datetime.date(1944, 2, 29))
    make_contact(breaking, name="Inger M. Hansen", email="other@example.org", phone="")
    return breaking


def dq11_good(site):
    fine = patient(site, date_of_birth=datetime.date(1944, 2, 29))
    make_contact(fine, name="Karen Jensen", email="kj@example.org", phone="+45 1111 2222")
    return fine


def dq12_bad(site):
    # Osteoporotic with an unknown level: not silently osteoporotic, and listed to resolve.
    return make_procedure(patient(site), "osteoporotic", "unknown", date=DAY)


def dq12_good(site):
    # A malignant level makes it pathologic whatever the unknown level is: compared as is.
    return make_procedure(patient(site), "metastasis", "unknown", date=DAY)


CASES = [
    ("DQ01", dq01_bad, dq01_good),
    ("DQ02", dq02_bad, dq02_good),
    ("DQ03", dq03_bad, dq03_good),
    ("DQ04", dq04_bad, dq04_good),
    ("DQ05", dq05_bad, dq05_good),
    ("DQ06", dq06_bad, dq06_good),
    ("DQ06", dq06_bad, dq06_saved_anyway),
    ("DQ07", dq07_bad, dq07_good),
    ("DQ08", dq08_bad, dq08_good),
    ("DQ09", dq09_bad, dq09_good),
    ("DQ10", dq10_bad, dq10_good),
    ("DQ11", dq11_bad, dq11_good),
    ("DQ12", dq12_bad, dq12_good),
]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"email": "Same@Example.org"}, {"email": "same@example.org"}),
        ({"phone": "+45 20 30 40 50"}, {"phone": "20304050"}),
    ],
)
def test_dq11_finds_the_same_email_or_phone_across_sites(site_a, site_b, first, second):
    one = patient(site_a, date_of_birth=datetime.date(1950, 1, 1))
    make_contact(one, name="A", **{"email": "", "phone": "", **first})
    two = patient(site_b, date_of_birth=datetime.date(1960, 1, 1))
    make_contact(two, name="B", **{"email": "", "phone": "", **second})
    alone = patient(site_a)
    make_contact(alone, name="C", email="c@example.org", phone="+45 9999 8888")
    assert found("DQ11", site_a) == {one.pk}
    assert found("DQ11", site_b) == {two.pk}


def test_every_rule_has_a_case_and_both_languages():
    assert {rule_id for rule_id, _bad, _good in CASES} == {rule.id for rule in RULES}
    for rule in RULES:
        assert rule.message_en and rule.message_da and rule.message_en != rule.message_da
        assert rule.severity in ("error", "warning", "info")


@pytest.mark.parametrize(
    ("rule_id", "bad", "good"), CASES, ids=[f"{c[0]}-{c[2].__name__}" for c in CASES]
)
def test_rule_finds_the_breaking_record_and_not_the_good_one(site_a, rule_id, bad, good):
    breaking = bad(site_a)
    fine = good(site_a)
    assert found(rule_id, site_a) == {breaking.pk}
    assert fine.pk != breaking.pk


def test_rules_are_limited_to_the_site(site_a, site_b):
    dq09_bad(site_b)
    assert found("DQ09", site_a) == set()


def test_page_lists_rule_counts_and_records_and_exports_csv(client_a, site_a, site_b):
    breaking = dq10_bad(site_a)
    dq10_bad(site_b)  # another site's record never shows
    page = client_a.get(reverse("data_quality"))
    assert "not checked yet" in page.content.decode()

    ran = client_a.post(reverse("data_quality"))
    assert ran.status_code == 302
    (run,) = QualityRun.objects.all()
    assert (run.site, run.counts["DQ10"], run.counts["DQ01"]) == (site_a, 1, 0)

    page = client_a.get(reverse("data_quality")).content.decode()
    assert breaking.registry_id in page
    assert reverse("admin:registry_patient_change", args=[breaking.pk]) in page
    assert "BBB" not in page

    exported = client_a.get(reverse("data_quality") + "?format=csv")
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(r["site"], r["rule"], r["record"]) for r in rows] == [
        ("AAA", "DQ10", breaking.registry_id)
    ]
    assert rows[0]["message_da"] == "Dødsdato registreret uden dødsårsag."


def test_page_shows_danish_messages_to_a_danish_browser(client_a, site_a):
    dq10_bad(site_a)
    quality_run(sites=[site_a])
    page = client_a.get(reverse("data_quality"), HTTP_ACCEPT_LANGUAGE="da").content.decode()
    assert "Dødsdato registreret uden dødsårsag." in page


def test_nightly_task_runs_every_site_and_is_in_the_beat_schedule(settings, site_a, site_b):
    dq09_bad(site_b)
    result = data_quality_nightly()
    assert result == {site_a.pk: 0, site_b.pk: 2}  # no level, and so no baseline either
    run = QualityRun.objects.get(site=site_b)
    assert (run.counts["DQ09"], run.counts["DQ01"], run.requested_by) == (1, 1, None)
    schedule = settings.CELERY_BEAT_SCHEDULE["data-quality-nightly"]
    assert schedule["task"] == "outcomes.data_quality_nightly"


def test_user_without_a_role_is_refused(client, site_a):
    user = make_user("Site staff", site_a)
    user.groups.clear()
    client.force_login(user)
    assert client.get(reverse("data_quality")).status_code == 403
