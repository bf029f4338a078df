"""The cohort report's analysis dataset: one row per patient (design.md §7, §8).

``load_patients`` loads the index procedures in scope with one aggregate query whatever the
cohort size (one row per patient with its levels, complications and answers summed up in
PostgreSQL), and ``outcomes.reports.tables`` turns those NumPy columns into every table with
the definitions and tests of ``outcomes.reports.statistics``. One result backs the admin page,
its downloads, the API and the ``cohort_report`` command, so they cannot disagree.

The filter of the report (sites, index-procedure dates, data cut-off) is parsed once, by
``ReportFilterForm``, for the admin page, its downloads, the API and the command line.

Rules taken from their homes, never restated here: the cohort (``Procedure.cohort``, stored
from ``procedure_cohort``), age (``CompletedYears``), the region of a level
(``levels_in_region``), a complication related to the procedure (``related_to_procedure``); the
3- and 12-month due days and windows come from the follow-up plan
(``outcomes.followups.schedule.PLAN``).

Data cut-off (``as_of``): the report shows what was known on that day. Index procedures after
it, and deaths, withdrawals, answers and complications dated after it are left out.
"""

from __future__ import annotations

import datetime
import io
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from django import forms
from django.conf import settings
from django.contrib.admin.widgets import AdminDateWidget
from django.db import connections, transaction
from django.db.models import Count, Exists, F, FilteredRelation, Max, OuterRef, Q
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from outcomes.followups.schedule import PLAN_BY_TIMEPOINT
from outcomes.models import Timepoint
from registry.locale import DATE_HINT, DateField
from registry.models import (
    Cohort,
    CompletedYears,
    Complication,
    Patient,
    Procedure,
    Site,
    TreatedLevel,
    levels_in_region,
)
from registry.project.db_router import read_alias

# Positions are the ``cohort`` codes of the dataset. "unknown" (a level of unknown etiology
# and none malignant) is in no column: the report counts it in a footnote (design §8).
COHORTS = [Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC, Cohort.OTHER, Cohort.UNKNOWN]
# English (the downloads' and the API's); the page translates them with gettext.
COLUMN_LABELS = {
    Cohort.PATHOLOGIC: gettext_noop("Pathologic"),
    Cohort.OSTEOPOROTIC: gettext_noop("Osteoporotic"),
    Cohort.OTHER: gettext_noop("Other"),
    Cohort.UNKNOWN: gettext_noop("Unknown etiology"),
    "overall": gettext_noop("Overall"),
}
FOLLOW_UP_TIMEPOINTS = [Timepoint.MONTH_3, Timepoint.MONTH_12]
# Due day D of each follow-up timepoint (3 months = day 91, 12 months = day 365) and the last
# day of its window, from the follow-up plan.
DUE_DAY = {tp: PLAN_BY_TIMEPOINT[tp].due_offset for tp in FOLLOW_UP_TIMEPOINTS}
WINDOW_END_DAY = {tp: PLAN_BY_TIMEPOINT[tp].window_end_offset for tp in FOLLOW_UP_TIMEPOINTS}
SURVIVAL_DAYS = {
    gettext_noop("3 months"): DUE_DAY[Timepoint.MONTH_3],
    gettext_noop("1 year"): DUE_DAY[Timepoint.MONTH_12],
}
# A cell from fewer than the minimum n patients; English, the page translates it.
TOO_SMALL = gettext_noop("n too small")


@dataclass(frozen=True)
class Outcome:
    key: str
    label: str
    scale: int  # stored values are exact in units of 1/scale (EQ-5D 0.001, ODI 0.1, VAS 1)
    decimals: int
    higher_is_better: bool
    mcid: str  # as configured, compared exactly (decimal arithmetic)


def outcomes_measured() -> list[Outcome]:
    return [
        Outcome("eq5d_index", "EQ-5D index", 1000, 3, True, str(settings.REPORT_MCID_EQ5D)),
        Outcome("odi_score", "ODI (%)", 10, 1, False, str(settings.REPORT_MCID_ODI)),
        Outcome("vas_pain", "Pain VAS (0–100)", 1, 1, False, str(settings.REPORT_MCID_VAS)),
    ]


@dataclass(frozen=True)
class ReportFilter:
    sites: tuple[str, ...] = ()
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    as_of: datetime.date = field(default_factory=datetime.date.today)

    @classmethod
    def of(cls, *, sites=(), date_from=None, date_to=None, as_of=None) -> ReportFilter:
        """A filter from optional inputs; as of today unless given."""
        return cls(
            sites=tuple(sorted(sites or ())),
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

    def describe(self, *, every_site: bool = False) -> str:
        """The filter in words, for footnotes, in the active language (build under
        ``translation.override("en")`` for a manuscript). No site chosen reads "all in scope"
        (the user's sites), or "every site" with ``every_site`` (a benchmark, an annual
        report: the whole registry whoever asks)."""
        if self.sites:
            sites = ", ".join(self.sites)
        else:
            sites = gettext("every site") if every_site else gettext("all in scope")
        any_date = gettext("any date")
        return gettext(
            "Sites: %(sites)s; index procedures %(date_from)s to %(date_to)s; "
            "data cut-off %(as_of)s."
        ) % {
            "sites": sites,
            "date_from": self.date_from or any_date,
            "date_to": self.date_to or any_date,
            "as_of": self.as_of,
        }

    def slug(self, in_scope: tuple[str, ...] = ()) -> str:
        """The filter and cut-off for a download's file name; no site chosen names the sites
        in scope (``in_scope``: the user's own), "all-sites" only when that is every site."""
        sites = "-".join(self.sites or in_scope) or "all-sites"
        start = self.date_from.isoformat() if self.date_from else "start"
        end = self.date_to.isoformat() if self.date_to else "end"
        return f"{sites}_{start}_to_{end}_cutoff-{self.as_of.isoformat()}"


class ReportFilterError(ValueError):
    """A report filter that does not parse: ``errors`` maps each parameter to its messages."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors


class ReportFilterForm(forms.Form):
    """The one parser of the report filter: the admin page and its downloads, the API and the
    command line all read their parameters through it. ``site`` may repeat or hold codes
    separated by commas; only the user's sites are accepted (every site for ``user=None``)."""

    site = forms.MultipleChoiceField(label=_("sites"), required=False)
    # The date entry of every other date field: the same formats, hint and calendar widget.
    date_from = DateField(
        label=_("index procedure from"), required=False, widget=AdminDateWidget,
        help_text=DATE_HINT,
    )  # fmt: skip
    date_to = DateField(
        label=_("index procedure to"), required=False, widget=AdminDateWidget,
        help_text=DATE_HINT,
    )  # fmt: skip
    as_of = DateField(
        label=_("data cut-off"), required=False, widget=AdminDateWidget, help_text=DATE_HINT
    )

    def __init__(self, data=None, *, user, **kwargs):
        if data is not None and hasattr(data, "getlist"):
            sites = [code for value in data.getlist("site") for code in value.split(",") if code]
            data = data.copy()
            data.setlist("site", sites)
        super().__init__(data, **kwargs)
        sites = Site.objects.all() if user is None else Site.objects.for_user(user)
        self.fields["site"].choices = [
            (site.code, f"{site.code} – {site.name}") for site in sites.order_by("code")
        ]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return cleaned

    def report_filter(self) -> ReportFilter:
        data = self.cleaned_data
        return ReportFilter.of(
            sites=data.get("site"),
            date_from=data.get("date_from"),
            date_to=data.get("date_to"),
            as_of=data.get("as_of"),
        )


def parse_report_filter(data, *, user) -> ReportFilter:
    """``ReportFilter`` from query parameters (a ``QueryDict``); ``ReportFilterError`` naming
    each bad parameter otherwise."""
    form = ReportFilterForm(data, user=user)
    if not form.is_valid():
        raise ReportFilterError({key: list(messages) for key, messages in form.errors.items()})
    return form.report_filter()


# Stored values in exact integer units (see ``Outcome.scale``).
RESPONSE_VALUES = {"eq5d_index": 1000, "odi_score": 10, "vas_pain": 1, "odi_pain_intensity": 1}
CIRSE_GRADES = [grade.value for grade in Complication.CirseGrade]
REGIONS = [region.value for region in TreatedLevel.Region]
TUMOURS = [tumour.value for tumour in Patient.PrimaryTumour]
_INDEX = "report_index"  # the index procedures' CTE in ``_patient_query``

PATIENT_COLUMNS = [
    "patient_id",
    "cohort",
    "age",
    "male",
    "tumour",
    "death_day",
    "withdrawn_day",
    "as_of_day",
    "levels",
    *REGIONS,
    "posterior_wall",
    "leaks",
    "symptomatic_leaks",
    "complications",
    "symptomatic_complications",
    "unknown_symptomatic",
    "worst_grade",
    *(f"grade_{grade}" for grade in CIRSE_GRADES),
    *(
        f"{name}_{timepoint}"
        for timepoint in Timepoint.values
        for name in (*RESPONSE_VALUES, "answered")
    ),
    "site",
    "index_year",
    "karnofsky",
    "asa",
]
"""The analysis dataset, one row per patient (its index procedure), as NumPy float columns
with NaN where a value is missing: ``patient_id``; ``cohort`` (position in ``COHORTS``);
``age`` (completed years at the index procedure); ``male``; ``tumour`` (position of the
primary tumour in ``TUMOURS``, NaN if none); ``death_day``, ``withdrawn_day`` (days from the
index date, NaN if none by the cut-off) and ``as_of_day``; treated vertebrae (``levels``, per
region, ``posterior_wall``, ``leaks``, ``symptomatic_leaks``); complications related to the
procedure (records, symptomatic records, records with the symptomatic flag unknown, the worst
CIRSE grade (0 for none) and records per grade); per timepoint each of ``RESPONSE_VALUES`` in
exact integer units and ``answered`` (a response is stored); the patient's ``site`` (its id),
the calendar ``index_year`` of the index procedure, ``karnofsky`` (0–100) and ``asa`` (class
1–6), NaN where not recorded (the case mix of site benchmarking)."""

Columns = dict[str, np.ndarray]


def procedures_in_scope(*, user, filters: ReportFilter):
    """The procedures the report may pick index procedures from: in the user's scope (every
    site for ``user=None``), on or before the cut-off, at the filter's sites, and of patients
    with none before ``date_from``, up to ``date_to``."""
    queryset = Procedure.objects.all() if user is None else Procedure.objects.for_user(user)
    queryset = queryset.filter(date__lte=filters.as_of)
    if filters.sites:
        queryset = queryset.filter(patient__site__code__in=filters.sites)
    if filters.date_from:
        earlier = Procedure.objects.filter(patient=OuterRef("patient"), date__lt=filters.date_from)
        queryset = queryset.exclude(Exists(earlier))
    if filters.date_to:
        queryset = queryset.filter(date__lte=filters.date_to)
    return queryset


def index_procedures(*, user, filters: ReportFilter):
    """The index procedures (each patient's first, by date, up to the cut-off) in the user's
    scope (every site for ``user=None``) and the filter, annotated with ``cohort``.

    The date range applies to the index date. It is applied before the first procedure is
    picked, so a patient counts when none of their procedures precedes ``date_from`` and one
    is on or before ``date_to``.
    """
    scope = procedures_in_scope(user=user, filters=filters)
    return scope.order_by("patient_id", "date", "pk").distinct("patient_id")


def load_patients(*, user, filters: ReportFilter) -> Columns:
    """``PATIENT_COLUMNS`` for the index procedures in scope, in one query."""
    using = read_alias()  # the replica inside reading_from_replica(), when there is one
    with transaction.atomic(using=using, savepoint=False), connections[using].cursor() as cursor:
        # A report is one large read: its sorts and hashes fit in memory with a larger
        # work_mem (until COMMIT). JIT is off for every connection (settings).
        cursor.execute("SET LOCAL work_mem = '64MB'")
        sql, params = _patient_query(user=user, filters=filters)
        csv = _copy_out(connections[using], cursor, sql, params)
    if csv:
        # CSV straight into float columns: an empty field is NaN. Turning 100k fetched tuples
        # of Python ints and Nones into an array took as long as the query itself.
        table = pd.read_csv(
            io.BytesIO(csv), header=None, names=PATIENT_COLUMNS, dtype=float, engine="c"
        ).to_numpy()
    else:
        table = np.empty((0, len(PATIENT_COLUMNS)))
    return {name: table[:, i] for i, name in enumerate(PATIENT_COLUMNS)}


def _copy_out(connection, cursor, sql: str, params: list) -> bytes:
    """The rows of ``sql`` as CSV bytes, by ``COPY … TO STDOUT`` through psycopg's own cursor
    (Django's cursor has no COPY). Logged like any query where Django logs queries (DEBUG,
    ``CaptureQueriesContext``), so query-count tests still see it."""
    statement = f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)"
    started = time.monotonic()
    chunks = []
    with cursor.cursor.copy(statement, params) as copy:
        chunks.extend(bytes(chunk) for chunk in copy)
    if connection.queries_logged:
        connection.queries_log.append(
            {"sql": statement, "time": f"{time.monotonic() - started:.3f}"}
        )
    return b"".join(chunks)


def _per_procedure(queryset, scope):
    """``queryset`` restricted to the procedures in ``scope`` and grouped per procedure.

    The scope, not the index procedures' CTE: PostgreSQL cannot estimate how many rows a CTE
    returns (it guessed 200 for 300k), so a semi-join on the CTE became 300k index scans of
    the levels (10 s at 300k patients). The scope is a plain filter on the procedures, whose
    size the planner knows, so the levels are aggregated in one hash pass (a few per cent more
    rows: the later procedures of patients with several) and joined to the index once.
    """
    return (
        queryset.filter(procedure_id__in=scope.order_by().values("pk"))
        .order_by()
        .values("procedure_id")
    )


def _patient_query(*, user, filters: ReportFilter) -> tuple[str, list]:
    """One row per index procedure (``PATIENT_COLUMNS``), so that 100k patients fetch 100k
    rows rather than the million rows of levels and answers behind them.

    The patient and its answers (one per timepoint: a unique constraint) are joined to the
    index procedure; treated levels and complications are aggregated per procedure. Each part
    is a queryset, so scope, filters and the rules stay the ORM's; the parts are joined as
    common table expressions.
    """
    as_of = filters.as_of
    scope = procedures_in_scope(user=user, filters=filters)
    procedures = index_procedures(user=user, filters=filters)
    joins, values = {}, {}
    for timepoint in Timepoint.values:
        answer = f"answer_{timepoint}"
        joins[answer] = FilteredRelation(
            "responses",
            condition=Q(responses__timepoint=timepoint, responses__answered_on__lte=as_of),
        )
        for name in RESPONSE_VALUES:
            values[f"{name}_{timepoint}"] = F(f"{answer}__{name}")
        values[f"answer_id_{timepoint}"] = F(f"{answer}__pk")
    index = procedures.annotate(**joins).values(
        "pk",
        "cohort",
        "date",
        "patient_id",
        age=CompletedYears(F("date"), F("patient__date_of_birth")),
        patient_sex=F("patient__sex"),
        patient_died=F("patient__date_of_death"),
        patient_withdrew=F("patient__consent_withdrawn_date"),
        patient_tumour=F("patient__primary_tumour"),
        patient_site=F("patient__site_id"),
        patient_karnofsky=F("patient__karnofsky"),
        patient_asa=F("patient__asa_class"),
        **values,
    )
    symptomatic_leakage_complication = Complication.objects.filter(
        treated_level=OuterRef("pk"),
        type__in=Complication.CEMENT_LEAKAGE_TYPES,
        symptomatic=True,
        date__lte=as_of,
    )
    levels = (
        _per_procedure(TreatedLevel.objects, scope)
        .alias(symptomatic_complication=Exists(symptomatic_leakage_complication))
        .annotate(
            levels=Count("pk"),
            **{region: Count("pk", filter=levels_in_region(region)) for region in REGIONS},
            posterior_wall=Count("pk", filter=Q(posterior_wall_defect=True)),
            leaks=Count("pk", filter=Q(cement_leakage=True)),
            symptomatic_leaks=Count(
                "pk", filter=Q(leakage_symptomatic=True) | Q(symptomatic_complication=True)
            ),
        )
    )
    complications = _per_procedure(
        Complication.objects.related_to_procedure().filter(date__lte=as_of), scope
    ).annotate(
        records=Count("pk"),
        symptomatic_records=Count("pk", filter=Q(symptomatic=True)),
        unknown_records=Count("pk", filter=Q(symptomatic__isnull=True)),
        worst_grade=Max("cirse_grade"),
        **{f"grade_{g}": Count("pk", filter=Q(cirse_grade=g)) for g in CIRSE_GRADES},
    )
    ctes, params = [], []
    for name, queryset in ((_INDEX, index), ("levels", levels), ("complications", complications)):
        sql, part_params = queryset.query.sql_with_params()
        ctes.append(f"{name} AS ({sql})")
        params += part_params
    per_timepoint = []
    for timepoint in Timepoint.values:
        per_timepoint += [
            f'round(i."{name}_{timepoint}" * {scale})::int'
            for name, scale in RESPONSE_VALUES.items()
        ]
        per_timepoint.append(f'(i."answer_id_{timepoint}" IS NOT NULL)::int')
    level_counts = ["levels", *REGIONS, "posterior_wall", "leaks", "symptomatic_leaks"]
    complication_counts = [
        "records",
        "symptomatic_records",
        "unknown_records",
        "worst_grade",
        *(f"grade_{g}" for g in CIRSE_GRADES),
    ]
    sql = f"""
        WITH {", ".join(ctes)}
        SELECT
            i.patient_id,
            array_position(%s::text[], i.cohort::text) - 1,
            i.age,
            (i.patient_sex = %s)::int,
            array_position(%s::text[], nullif(i.patient_tumour, '')::text) - 1,
            CASE WHEN i.patient_died <= %s::date THEN i.patient_died - i.date END,
            CASE WHEN i.patient_withdrew <= %s::date THEN i.patient_withdrew - i.date END,
            %s::date - i.date,
            {", ".join(f"coalesce(l.{name}, 0)" for name in level_counts)},
            {", ".join(f"coalesce(c.{name}, 0)" for name in complication_counts)},
            {", ".join(per_timepoint)},
            i.patient_site,
            extract(year FROM i.date)::int,
            i.patient_karnofsky,
            i.patient_asa
        FROM {_INDEX} i
        LEFT JOIN levels l ON l.procedure_id = i.pk
        LEFT JOIN complications c ON c.procedure_id = i.pk
    """  # noqa: S608 (names are ours; every value is a parameter)
    return sql, [
        *params,
        [str(c) for c in COHORTS],
        Patient.Sex.MALE.value,
        TUMOURS,
        as_of,
        as_of,
        as_of,
    ]
