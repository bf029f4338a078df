"""The cohort report: pathologic against osteoporotic fractures, as in the source studies
(design.md §7, §8).

``cohort_report`` loads the index procedures in scope with two aggregate queries whatever the
cohort size (one row per patient with its levels, complications and answers summed up in
PostgreSQL; follow-up completeness counted per timepoint), and ``build_report`` turns those
NumPy columns into every table with the pure functions of ``outcomes.reports.statistics``.
One result backs the admin page, its CSV and Markdown downloads, the API and the
``cohort_report`` command, so they cannot disagree.

Definitions chosen where the studies leave room (also in the README):
- Patient-level analyses use each patient's index (first) procedure; the date filter applies
  to the index date.
- Age is completed years at the index procedure.
- Paired analyses (Table 2, Table 3, changes, responders) use only patients with both the
  baseline and the follow-up value. Change = follow-up − baseline.
- Complications: those of the index procedure not judged unrelated, counted per patient at the
  worst CIRSE grade.
- Survival runs from the index date to death, censored at withdrawal of consent or at the
  report date. "Alive at t" n/N counts patients known alive at t over those followed to t or
  dead before it; the Kaplan–Meier estimate uses everyone.
- Follow-up completeness counts a timepoint as eligible once its due date has passed, unless
  the patient died or withdrew before it.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.db import connections, transaction
from django.db.models import Count, Exists, F, FilteredRelation, FloatField, Max, OuterRef, Q
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast

from outcomes.models import FollowUp, Timepoint
from registry.models import Cohort, Complication, Patient, Procedure, TreatedLevel
from registry.project.db_router import read_alias

COHORTS = [Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC, Cohort.OTHER]
COLUMNS = [*COHORTS, "overall"]
COLUMN_LABELS = {
    Cohort.PATHOLOGIC: "Pathologic",
    Cohort.OSTEOPOROTIC: "Osteoporotic",
    Cohort.OTHER: "Other",
    "overall": "Overall",
}
FOLLOW_UP_TIMEPOINTS = [Timepoint.MONTH_3, Timepoint.MONTH_12]
SURVIVAL_DAYS = {"3 months": 91, "1 year": 365}
TOO_SMALL = "n too small"


@dataclass(frozen=True)
class Outcome:
    key: str
    label: str
    decimals: int
    higher_is_better: bool
    mcid: float


def outcomes_measured() -> list[Outcome]:
    return [
        Outcome("eq5d_index", "EQ-5D index", 3, True, settings.REPORT_MCID_EQ5D),
        Outcome("odi_score", "ODI (%)", 1, False, settings.REPORT_MCID_ODI),
        Outcome("vas_pain", "Pain VAS (0–100)", 1, False, settings.REPORT_MCID_VAS),
    ]


@dataclass(frozen=True)
class ReportFilter:
    sites: tuple[str, ...] = ()
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    as_of: datetime.date = field(default_factory=datetime.date.today)

    @classmethod
    def of(cls, *, sites=(), date_from=None, date_to=None, as_of=None) -> ReportFilter:
        """A filter from optional inputs (form, API query, command line); as of today unless
        given."""
        return cls(
            sites=tuple(sites or ()),
            date_from=date_from,
            date_to=date_to,
            as_of=as_of or datetime.date.today(),
        )

    def as_dict(self) -> dict:
        return {
            "sites": list(self.sites),
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "as_of": self.as_of.isoformat(),
        }


RESPONSE_VALUES = ("eq5d_index", "odi_score", "vas_pain", "odi_pain_intensity")
_INDEX = "report_index"  # the index procedures' CTE in ``_patient_query``
_INDEX_PKS = f"SELECT pk FROM {_INDEX}"  # noqa: S608 (a constant)

PATIENT_COLUMNS = [
    "cohort",
    "age",
    "male",
    "primary",
    "death_day",
    "withdrawn_day",
    "as_of_day",
    "levels",
    "thoracic",
    "lumbar",
    "posterior_wall",
    "leaks",
    "worst_grade",
    *(
        f"{name}_{timepoint}"
        for timepoint in Timepoint.values
        for name in (*RESPONSE_VALUES, "answered", "due_day", "missed")
    ),
]
"""The analysis dataset, one row per patient (its index procedure), as NumPy float columns
with NaN where a value is missing: ``cohort`` (position in ``COHORTS``), ``age`` (completed
years at the index procedure), ``male``, ``primary`` (a primary malignancy is recorded),
``death_day``, ``withdrawn_day`` and ``as_of_day`` (days from the index date), treated
vertebrae (``levels``, ``thoracic``, ``lumbar``, ``posterior_wall``, ``leaks``), ``worst_grade``
(worst CIRSE grade of a complication not judged unrelated, 0 for none), and per timepoint
each of ``RESPONSE_VALUES``, ``answered`` (a response is stored), and the follow-up's
``due_day`` (days from the index date) and ``missed`` (its state)."""

Columns = dict[str, np.ndarray]


def index_procedures(*, user, filters: ReportFilter):
    """The index procedures (each patient's first, by date) in the user's scope (every site
    for ``user=None``) and the filter, annotated with ``cohort``.

    The date range applies to the index date. It is applied before the first procedure is
    picked, so a patient counts when none of their procedures precedes ``date_from`` and one
    is on or before ``date_to``.
    """
    queryset = Procedure.objects.all() if user is None else Procedure.objects.for_user(user)
    if filters.sites:
        queryset = queryset.filter(patient__site__code__in=filters.sites)
    if filters.date_from:
        earlier = Procedure.objects.filter(patient=OuterRef("patient"), date__lt=filters.date_from)
        queryset = queryset.exclude(Exists(earlier))
    if filters.date_to:
        queryset = queryset.filter(date__lte=filters.date_to)
    return queryset.with_cohort().order_by("patient_id", "date", "pk").distinct("patient_id")


def load_patients(*, user, filters: ReportFilter) -> Columns:
    """``PATIENT_COLUMNS`` for the index procedures in scope, in one query."""
    procedures = index_procedures(user=user, filters=filters)
    using = read_alias()  # the replica inside reading_from_replica(), when there is one
    with transaction.atomic(using=using, savepoint=False), connections[using].cursor() as cursor:
        # A report is one large read: its sorts and hashes fit in memory with a larger
        # work_mem (until COMMIT). JIT is off for every connection (settings).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        cursor.execute(*_patient_query(procedures, filters.as_of))
        rows = cursor.fetchall()
    table = np.array(rows, dtype=float).reshape(len(rows), len(PATIENT_COLUMNS))  # None → NaN
    return {name: table[:, i] for i, name in enumerate(PATIENT_COLUMNS)}


def _per_procedure(queryset):
    """``queryset`` restricted to the index procedures' CTE and grouped per procedure."""
    return (
        queryset.filter(procedure_id__in=RawSQL(_INDEX_PKS, ()))  # noqa: S611
        .order_by()
        .values("procedure_id")
    )


def _patient_query(procedures, as_of: datetime.date) -> tuple[str, list]:
    """One row per index procedure (``PATIENT_COLUMNS``), so that 100k patients fetch 100k
    rows rather than the million rows of levels, answers and follow-ups behind them.

    The patient, its answers and follow-ups (one per timepoint: unique constraints) are
    joined to the index procedure; treated levels and complications are aggregated per
    procedure. Each part is a queryset, so scope, filters and the cohort rule stay the ORM's;
    the parts are joined as common table expressions.
    """
    joins, values = {}, {}
    for timepoint in Timepoint.values:
        answer, followup = f"answer_{timepoint}", f"followup_{timepoint}"
        joins[answer] = FilteredRelation("responses", condition=Q(responses__timepoint=timepoint))
        joins[followup] = FilteredRelation("followups", condition=Q(followups__timepoint=timepoint))
        for name in RESPONSE_VALUES:
            values[f"{name}_{timepoint}"] = Cast(f"{answer}__{name}", FloatField())
        values[f"answer_id_{timepoint}"] = F(f"{answer}__pk")
        values[f"due_{timepoint}"] = F(f"{followup}__due_date")
        values[f"state_{timepoint}"] = F(f"{followup}__state")
    index = procedures.annotate(**joins).values(
        "pk",
        "cohort",
        "date",
        patient_born=F("patient__date_of_birth"),
        patient_sex=F("patient__sex"),
        patient_died=F("patient__date_of_death"),
        patient_withdrew=F("patient__consent_withdrawn_date"),
        patient_tumour=F("patient__primary_tumour"),
        **values,
    )
    level = TreatedLevel.Level
    levels = _per_procedure(TreatedLevel.objects).annotate(
        levels=Count("pk"),
        thoracic=Count("pk", filter=Q(level__range=(level.T1, level.T12))),
        lumbar=Count("pk", filter=Q(level__range=(level.L1, level.L5))),
        posterior_wall=Count("pk", filter=Q(posterior_wall_defect=True)),
        leaks=Count("pk", filter=Q(cement_leakage=True)),
    )
    worst = _per_procedure(
        Complication.objects.exclude(relation=Complication.Relation.UNRELATED)
    ).annotate(worst_grade=Max("cirse_grade"))
    ctes, params = [], []
    for name, queryset in ((_INDEX, index), ("levels", levels), ("worst", worst)):
        sql, part_params = queryset.query.sql_with_params()
        ctes.append(f"{name} AS ({sql})")
        params += part_params
    per_timepoint = []
    for timepoint in Timepoint.values:
        per_timepoint += [f'i."{name}_{timepoint}"' for name in RESPONSE_VALUES]
        per_timepoint += [
            f'(i."answer_id_{timepoint}" IS NOT NULL)::int',
            f'i."due_{timepoint}" - i.date',
            f"(i.\"state_{timepoint}\" = '{FollowUp.State.MISSED.value}')::int",
        ]
    sql = f"""
        WITH {", ".join(ctes)}
        SELECT
            array_position(%s::text[], i.cohort::text) - 1,
            extract(year FROM age(i.date, i.patient_born))::int,
            (i.patient_sex = %s)::int,
            (i.patient_tumour <> '')::int,
            i.patient_died - i.date,
            i.patient_withdrew - i.date,
            %s::date - i.date,
            coalesce(l.levels, 0),
            coalesce(l.thoracic, 0),
            coalesce(l.lumbar, 0),
            coalesce(l.posterior_wall, 0),
            coalesce(l.leaks, 0),
            coalesce(w.worst_grade, 0),
            {", ".join(per_timepoint)}
        FROM {_INDEX} i
        LEFT JOIN levels l ON l.procedure_id = i.pk
        LEFT JOIN worst w ON w.procedure_id = i.pk
    """  # noqa: S608 (names are ours; every value is a parameter)
    return sql, [*params, [str(c) for c in COHORTS], Patient.Sex.MALE.value, as_of]
