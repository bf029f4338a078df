"""Synthetic questionnaire answers for the demo cohort (never real patients).

Each procedure's answers come from their own seeded random stream, so a second run creates
only what is missing. Baseline pain and disability are high; both fall after augmentation,
more in the osteoporotic than in the pathologic cohort, as in the published series. Answers
are given only for follow-ups whose window has closed (about 80% answer at 3 months and 70%
at 12 months), so the windows open today are left to the chasing and its emailed links.
"""

from __future__ import annotations

import datetime
import random

from django.db import models, transaction
from django.db.models import F

from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, FollowUp, QuestionnaireResponse, Timepoint
from outcomes.responses import response_save_scored
from registry.demo import DEMO_SITES
from registry.models import Cohort, Procedure

DEMO_SITE_CODES = [site[0] for site in DEMO_SITES]

ANSWER_RATE = {Timepoint.BASELINE: 0.97, Timepoint.MONTH_3: 0.8, Timepoint.MONTH_12: 0.7}
# Mean improvement, as a share of the scale, at each follow-up.
RELIEF = {Cohort.OSTEOPOROTIC: 0.45, Cohort.PATHOLOGIC: 0.3, Cohort.OTHER: 0.4, Cohort.UNKNOWN: 0.4}


def _clip(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _answers(rng: random.Random, severity: float, eq5d_levels: int) -> dict:
    """Answers of a patient whose back is ``severity`` bad (0 none … 1 worst)."""
    answers = {
        "vas_pain": _clip(rng.gauss(100 * severity, 12), 0, 100),
        "eq_vas": _clip(rng.gauss(100 * (1 - severity) * 0.9, 12), 0, 100),
    }
    for name in EQ5D_FIELDS:
        answers[name] = _clip(1 + rng.gauss(severity * (eq5d_levels - 1), 0.7), 1, eq5d_levels)
    for name in ODI_FIELDS:
        answers[name] = _clip(rng.gauss(severity * 5, 0.9), 0, 5)
    if rng.random() < 0.4:
        answers["odi_sex_life"] = None
    return answers


def create_demo_responses(*, today: datetime.date | None = None) -> int:
    """Answer the demo cohort's closed follow-ups; return how many responses were created."""
    today = today or datetime.date.today()
    created = 0
    answered = set(QuestionnaireResponse.objects.values_list("procedure_id", "timepoint"))
    followups = (
        FollowUp.objects.filter(
            timepoint__in=list(ANSWER_RATE),
            procedure__patient__site__code__in=DEMO_SITE_CODES,
            window_end__lt=today,
        )
        .select_related("procedure__patient__site")
        .order_by("procedure_id", "due_date")
    )
    cohorts = dict(
        Procedure.objects.filter(patient__site__code__in=DEMO_SITE_CODES).values_list(
            "pk", "cohort"
        )
    )
    with transaction.atomic():
        for followup in followups:
            procedure = followup.procedure
            patient = procedure.patient
            if (procedure.pk, followup.timepoint) in answered:
                continue
            ended = patient.date_of_death or patient.consent_withdrawn_date
            if ended is not None and ended < followup.due_date:
                continue
            rng = random.Random(f"registry-demo-answers-{procedure.pk}-{followup.timepoint}")
            if rng.random() > ANSWER_RATE[followup.timepoint]:
                continue
            baseline_severity = random.Random(f"registry-demo-severity-{procedure.pk}").uniform(
                0.45, 0.8
            )
            severity = baseline_severity
            if followup.timepoint != Timepoint.BASELINE:
                severity = max(
                    0.0, baseline_severity - rng.gauss(RELIEF[cohorts[procedure.pk]], 0.2)
                )
            site = patient.site
            response = QuestionnaireResponse(
                procedure=procedure,
                timepoint=followup.timepoint,
                mode=(
                    QuestionnaireResponse.Mode.CLINIC
                    if followup.timepoint == Timepoint.BASELINE
                    else QuestionnaireResponse.Mode.WEB_LINK
                ),
                answered_on=followup.due_date,
                eq5d_version=site.eq5d_version,
                **_answers(rng, severity, site.eq5d_levels),
            )
            response_save_scored(response=response)
            created += 1
    return created


def create_demo_chasing(*, now: datetime.datetime | None = None) -> int:
    """Give the demo's open, unanswered follow-ups the chasing history they would have by
    now (invitation, two reminders, the phone worklist), so the dashboard and the worklist
    have data from the start. Returns how many follow-ups were moved on; a second run finds
    nothing left to do."""
    from django.utils import timezone

    from outcomes.followups import links
    from outcomes.followups.schedule import PLAN_BY_TIMEPOINT, REMINDER_GAP_DAYS
    from outcomes.models import ContactAttempt

    now = now or timezone.now()
    today = now.date()
    day = datetime.timedelta(days=1)
    followups = (
        FollowUp.objects.filter(
            procedure__patient__site__code__in=DEMO_SITE_CODES,
            state__in=[FollowUp.State.SCHEDULED, FollowUp.State.OPEN],
            window_start__lte=today - 2 * REMINDER_GAP_DAYS * day,
            window_end__gte=today,
            procedure__patient__date_of_death__isnull=True,
            procedure__patient__consent_withdrawn_date__isnull=True,
            procedure__patient__contact__consent_to_contact=True,
        )
        .exclude(
            models.Exists(
                QuestionnaireResponse.objects.filter(
                    procedure=models.OuterRef("procedure"), timepoint=models.OuterRef("timepoint")
                )
            )
        )
        .select_related("procedure__patient__site")
    )
    moved = 0
    with transaction.atomic():
        for followup in followups:
            if not PLAN_BY_TIMEPOINT[followup.timepoint].chased:
                continue
            invited = followup.window_start
            links.link_issue(followup, now=now)
            followup.state = FollowUp.State.REMINDED
            followup.invited_on = invited
            followup.invitations_sent = 1
            followup.reminders_sent = 2
            followup.last_contact_on = invited + 2 * REMINDER_GAP_DAYS * day
            followup.on_phone_worklist_since = invited + 2 * REMINDER_GAP_DAYS * day
            followup.save()
            site = followup.procedure.patient.site
            for kind, offset in (
                (ContactAttempt.Kind.INVITATION, 0),
                (ContactAttempt.Kind.REMINDER_1, REMINDER_GAP_DAYS),
                (ContactAttempt.Kind.REMINDER_2, 2 * REMINDER_GAP_DAYS),
            ):
                sent = datetime.datetime.combine(
                    invited + offset * day, datetime.time(9), tzinfo=datetime.UTC
                )
                ContactAttempt.objects.get_or_create(
                    followup=followup,
                    kind=kind,
                    defaults={
                        "site": site,
                        "status": ContactAttempt.Status.SENT,
                        "tries": 1,
                        "sent_at": sent,
                    },
                )
            moved += 1
    return moved


DEMO_ERROR_MARK = "Demo data error (seeded for the data-quality page)."


def seed_demo_data_errors() -> int:
    """Plant a few deliberate data errors in the demo cohort so that the data-quality page has
    records to show; returns how many were planted (0 when they are there already).

    Each is something the database allows but a rule lists: a complication that needs its
    level recorded without one (DQ04), EQ-5D answers without a value set (DQ05), an open
    follow-up after a recorded death (DQ03), a malignant level without a primary tumour
    (DQ08), a death without a cause (DQ10). Missing baselines (DQ01) and leakages seen only on
    fluoroscopy (DQ02) occur in the demo by themselves.
    """
    from registry.models import Complication, Patient, TreatedLevel

    if Complication.objects.filter(description=DEMO_ERROR_MARK).exists():
        return 0
    planted = 0
    with transaction.atomic():
        procedure = (
            Procedure.objects.filter(patient__site__code__in=DEMO_SITE_CODES, levels__isnull=False)
            .filter(patient__date_of_death__isnull=True)
            .order_by("patient__registry_id")
            .first()
        )
        if procedure:
            Complication.objects.create(
                patient=procedure.patient,
                procedure=procedure,
                date=procedure.date,
                type=Complication.Type.ADJACENT_FRACTURE,
                cirse_grade=3,
                relation=Complication.Relation.POSSIBLE,
                outcome=Complication.Outcome.ONGOING,
                description=DEMO_ERROR_MARK,
            )
            planted += 1
        response = (
            QuestionnaireResponse.objects.filter(procedure__patient__site__code="ODE")
            .exclude(eq5d_version="")
            .order_by("pk")
            .first()
        )
        if response:
            QuestionnaireResponse.objects.filter(pk=response.pk).update(
                eq5d_value_set="", eq5d_index=None
            )
            planted += 1
        followup = (
            FollowUp.objects.filter(
                procedure__patient__site__code__in=DEMO_SITE_CODES,
                procedure__patient__date_of_death__lt=F("due_date"),
                completed_at__isnull=True,
            )
            .exclude(state=FollowUp.State.OPEN)
            .order_by("pk")
            .first()
        )
        if followup:
            FollowUp.objects.filter(pk=followup.pk).update(
                state=FollowUp.State.OPEN, cancel_reason=""
            )
            planted += 1
        pathologic = (
            Patient.objects.filter(
                site__code="AAR",
                procedures__levels__etiology__in=TreatedLevel.MALIGNANT_ETIOLOGIES,
            )
            .exclude(primary_tumour="")
            .order_by("registry_id")
            .first()
        )
        if pathologic:
            Patient.objects.filter(pk=pathologic.pk).update(
                primary_tumour="", malignancy_confirmation=""
            )
            planted += 1
        dead = (
            Patient.objects.filter(site__code="LDN", date_of_death__isnull=False)
            .exclude(cause_of_death="")
            .order_by("registry_id")
            .first()
        )
        if dead:
            Patient.objects.filter(pk=dead.pk).update(cause_of_death="")
            planted += 1
    return planted
