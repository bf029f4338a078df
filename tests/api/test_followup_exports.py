"""The follow-ups file (one row per follow-up) and the long analysis file (one row per
patient and timepoint), in CSV, SPSS and Stata."""

import datetime

import pyreadstat
from django.utils import timezone

from outcomes.models import ContactAttempt, FollowUp, QuestionnaireResponse
from tests.api.test_exports import read_csv
from tests.api.test_statexports import download


def test_followups_file_has_one_row_per_follow_up_with_its_dates(registry, api_a):
    osteo = registry["osteo"]
    followup = FollowUp.objects.get(procedure=osteo, timepoint="month_3")
    sent = timezone.make_aware(datetime.datetime(2025, 6, 1, 8, 30), datetime.UTC)
    for kind, when in (("invitation", sent), ("reminder_1", sent + datetime.timedelta(days=7))):
        ContactAttempt.objects.create(
            followup=followup, site=osteo.patient.site, kind=kind, status="sent", sent_at=when
        )
    # a reminder that failed was never received: it is not a reminder date
    ContactAttempt.objects.create(
        followup=followup, site=osteo.patient.site, kind="reminder_2", status="failed"
    )
    rows = read_csv(api_a, "/api/v1/exports/followups.csv")
    expected = FollowUp.objects.filter(procedure__patient__site__code="AAA")
    assert sorted(int(r["followup_id"]) for r in rows) == sorted(e.pk for e in expected)
    row = next(r for r in rows if r["followup_id"] == str(followup.pk))
    answers = QuestionnaireResponse.objects.get(procedure=osteo, timepoint="month_3")
    assert row == row | {
        "registry_id": osteo.patient.registry_id,
        "timepoint": "month_3",
        "due_date": followup.due_date.isoformat(),
        "window_start": followup.window_start.isoformat(),
        "window_end": followup.window_end.isoformat(),
        "state": followup.state,
        "invitation_sent_at": "2025-06-01 08:30:00+00",
        "reminder_1_sent_at": "2025-06-08 08:30:00+00",
        "reminder_2_sent_at": "",
        "response_id": str(answers.pk),
        "answered_on": answers.answered_on.isoformat(),
        "response_mode": "paper",
    }
    unanswered = next(
        r for r in rows if r["procedure_id"] == str(osteo.pk) and r["timepoint"] == "month_12"
    )
    assert (unanswered["response_id"], unanswered["invitation_sent_at"]) == ("", "")


def test_long_file_has_one_row_per_patient_and_timepoint_with_covariates(registry, api_a):
    rows = read_csv(api_a, "/api/v1/exports/long.csv")
    index = [registry[k] for k in ("osteo", "second", "myeloma")]
    timepoints = set(FollowUp.objects.values_list("timepoint", flat=True))
    assert len(timepoints) == 4
    assert sorted((r["registry_id"], r["timepoint"]) for r in rows) == sorted(
        (p.patient.registry_id, t) for p in index for t in timepoints
    )
    osteo = {r["timepoint"]: r for r in rows if r["registry_id"] == index[0].patient.registry_id}
    assert osteo["month_3"] == osteo["month_3"] | {
        "cohort": "osteoporotic",
        "sex": "male",
        "age": "84",
        "levels_treated": "2",
        "vas_pain": "30",
        "vas_pain_baseline": "80",
        "vas_pain_change": "-50",
        "odi_score_baseline": "80.0",
        "odi_score": "20.0",
        "odi_score_change": "-60.0",
        "days_after_procedure": "0",
        "mode": "paper",
    }
    assert osteo["month_12"]["vas_pain"] == "" and osteo["month_12"]["vas_pain_change"] == ""
    assert osteo["month_12"]["vas_pain_baseline"] == "80"  # the covariate is on every row


def test_followups_and_long_files_in_spss_and_stata(registry, api_a, tmp_path):
    for name in ("followups", "long"):
        rows = read_csv(api_a, f"/api/v1/exports/{name}.csv")
        sav, sav_meta = pyreadstat.read_sav(
            download(api_a, f"/api/v1/exports/{name}.sav", tmp_path)
        )
        dta, _meta = pyreadstat.read_dta(download(api_a, f"/api/v1/exports/{name}.dta", tmp_path))
        assert len(sav) == len(dta) == len(rows) > 0
        assert list(sav.columns) == list(rows[0])
    labels = sav_meta.variable_value_labels["timepoint"]
    assert set(labels.values()) == {"Baseline", "Post-op", "3 months", "12 months"}
