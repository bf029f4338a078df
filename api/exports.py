"""Streaming CSV exports and their data dictionary (design.md §9).

An export is a list of ``Column``s over a scoped, filtered queryset. The queryset's SQL is
run by PostgreSQL's ``COPY (…) TO STDOUT WITH (FORMAT csv, HEADER)`` through psycopg 3, and
the CSV bytes PostgreSQL produces go to the client in 64 KiB chunks: nothing is parsed or held
in Python, so memory stays flat whatever the size and the speed is COPY's.

The data dictionary is generated from the same columns: label, type, unit and allowed values
come from the model fields (a unit is the bracketed end of a field's verbose name, as in
"cement volume (mL)"), and computed columns carry their own description beside their
expression.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from django.contrib.postgres.aggregates import BoolAnd, BoolOr
from django.contrib.postgres.fields import ArrayField
from django.db import connection, models
from django.db.models import (
    Count,
    Exists,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Func,
    OuterRef,
    Q,
    Subquery,
)
from django.db.models.functions import Cast, Coalesce
from django.utils.text import capfirst

from api.filters import ProcedureFilter, ResponseFilter, TreatedLevelFilter
from outcomes.models import QuestionnaireResponse, Timepoint
from registry.access import staff_code
from registry.models import (
    Cohort,
    CompletedYears,
    Complication,
    Procedure,
    TreatedLevel,
    cohort_rule,
)

CHUNK_BYTES = 64 * 1024


class DaysBetween(Func):
    """Whole days from the second date to the first."""

    arg_joiner = " - "
    template = "(%(expressions)s)"
    output_field = models.IntegerField()


class JoinedList(Func):
    """A list (array) field as text, items separated by ";"."""

    template = "array_to_string(%(expressions)s, ';')"
    output_field = models.TextField()


@dataclass(frozen=True)
class Column:
    """One exported column: a field path from the export's model, or an expression with its
    own description (``label``, ``type``, ``unit``, ``allowed``)."""

    name: str
    path: str = ""
    expression: models.Expression | None = None
    describe: models.Field | None = None  # the field that describes an expression's values
    label: str = ""
    type: str = ""
    unit: str = ""
    allowed: str = ""


@dataclass(frozen=True)
class Export:
    name: str  # the file name
    title: str
    model: type[models.Model]
    filterset: type
    columns: list[Column]
    queryset: Callable  # user -> the scoped queryset, before filters


def _field(model, path: str) -> models.Field:
    field = None
    for part in path.split("__"):
        field = model._meta.get_field(part)
        if field.is_relation and field.related_model is not None:
            model = field.related_model
    return field


_TYPES = [
    (models.BooleanField, "boolean (true, false)"),
    (models.DateTimeField, "timestamp (ISO 8601, UTC)"),
    (models.DateField, "date (YYYY-MM-DD)"),
    (models.DecimalField, "decimal"),
    (models.IntegerField, "integer"),
    (models.ForeignKey, "integer"),
    (models.AutoField, "integer"),
    (ArrayField, "list (items separated by ;)"),
    (models.CharField, "text"),
    (models.TextField, "text"),
]


def _allowed(choices) -> str:
    return "; ".join(f"{value} = {label}" for value, label in choices)


def dictionary_entry(export: Export, column: Column) -> dict[str, str]:
    """The data dictionary's row for ``column``: from the model field when it is a path."""
    entry = {"label": column.label, "type": column.type, "unit": column.unit}
    entry["allowed"] = column.allowed
    if column.path or column.describe:
        field = column.describe or _field(export.model, column.path)
        label = str(field.verbose_name)
        unit = ""
        if label.endswith(")") and " (" in label:
            label, unit = label[:-1].rsplit(" (", 1)
        base = field.base_field if isinstance(field, ArrayField) else field
        choices = getattr(base, "choices", None)
        if field.is_relation:
            label = f"{field.related_model._meta.verbose_name} id"
        entry = {
            "label": column.label or capfirst(label),
            "type": column.type or next(t for cls, t in _TYPES if isinstance(field, cls)),
            "unit": column.unit or unit,
            "allowed": column.allowed or (_allowed(choices) if choices else ""),
        }
        if field.null or field.blank:
            entry["allowed"] = "; ".join(filter(None, [entry["allowed"], "empty = not recorded"]))
    return {"file": export.name, "column": column.name, **entry}


def _expression(export: Export, column: Column):
    if column.expression is not None:
        return column.expression
    field = _field(export.model, column.path)
    if isinstance(field, ArrayField):
        return JoinedList(column.path)
    if isinstance(field, models.BooleanField):
        return Cast(column.path, models.CharField())  # true/false rather than COPY's t/f
    return F(column.path)


def export_sql(export: Export, queryset) -> tuple[str, list]:
    """``COPY (…) TO STDOUT`` of ``export``'s columns over ``queryset`` (scoped, filtered),
    in id order. Columns are selected under internal aliases and renamed outside, so a column
    may share a model field's name."""
    aliases = {f"x{i}": column for i, column in enumerate(export.columns)}
    selected = queryset.order_by("pk").values(
        **{alias: _expression(export, column) for alias, column in aliases.items()}
    )
    sql, params = selected.query.sql_with_params()
    renamed = ", ".join(
        f'export.{connection.ops.quote_name(alias)} AS "{column.name}"'
        for alias, column in aliases.items()
    )
    return (
        f"COPY (SELECT {renamed} FROM ({sql}) AS export) TO STDOUT WITH (FORMAT csv, HEADER)",  # noqa: S608 (our names; values are parameters)
        list(params),
    )


def stream_csv(
    sql: str, params: list, *, on_finish: Callable[[int, bool], None]
) -> Iterator[bytes]:
    """The CSV bytes of a ``COPY … TO STDOUT`` in chunks of about 64 KiB. ``on_finish(rows,
    completed)`` runs at the end, also when the client goes away mid-way (then with the rows
    sent so far)."""
    lines = sent = 0  # psycopg hands over one CSV line at a time; the first is the header
    completed = False
    try:
        # psycopg's own cursor: Django's debug wrapper (DEBUG on) takes no COPY parameters
        with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
            buffer = bytearray()
            for data in copy:
                buffer += data
                lines += 1
                if len(buffer) >= CHUNK_BYTES:
                    sent = lines
                    yield bytes(buffer)
                    buffer.clear()
            sent = lines
            yield bytes(buffer)
        completed = True
    finally:
        on_finish(max(sent - 1, 0), completed)


def started(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """``chunks`` with the first one already read, so that an error in the query (which
    PostgreSQL reports when COPY starts) is an error response, not a truncated file that
    looks complete."""
    first = next(chunks)

    def rest() -> Iterator[bytes]:
        yield first
        yield from chunks  # closing this generator closes ``chunks`` too

    return rest()


def dictionary_csv() -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["file", "column", "label", "type", "unit", "allowed"])
    writer.writeheader()
    for export in EXPORTS.values():
        for column in export.columns:
            writer.writerow(dictionary_entry(export, column))
    return out.getvalue()


# --- the exports ------------------------------------------------------------------------------

COHORT_ALLOWED = _allowed(Cohort.choices)


def procedure_cohort(path: str = "procedure") -> Coalesce:
    """The cohort of the row's procedure (design.md §7), from all of that procedure's levels
    in one aggregate (whatever the export's filters keep)."""

    def flag(condition: Q) -> ExpressionWrapper:
        return ExpressionWrapper(condition, output_field=models.BooleanField())

    levels = TreatedLevel.objects.filter(procedure=OuterRef(path)).order_by().values("procedure")
    cohort = cohort_rule(
        any_malignant=BoolOr(flag(Q(etiology__in=TreatedLevel.MALIGNANT_ETIOLOGIES))),
        any_level=models.Value(True),  # over no levels both aggregates are NULL: "other"
        only_osteoporotic=BoolAnd(flag(Q(etiology=TreatedLevel.Etiology.OSTEOPOROTIC))),
    )
    no_levels = models.Value(Cohort.OTHER)
    return Coalesce(Subquery(levels.annotate(cohort=cohort).values("cohort")), no_levels)


def _patient_columns(procedure: str) -> list[Column]:
    """Who the row belongs to, pseudonymised (``procedure`` is the path to its procedure)."""
    patient = f"{procedure}patient__"
    return [
        Column("registry_id", f"{patient}registry_id"),
        Column("site", f"{patient}site__code", label="Site code"),
        Column("sex", f"{patient}sex"),
        Column(
            "age_at_procedure",
            expression=CompletedYears(F(f"{procedure}date"), F(f"{patient}date_of_birth")),
            label="Age at the procedure",
            type="integer",
            unit="completed years",
        ),
        Column("date_of_death", f"{patient}date_of_death", label="Date of death"),
        Column("cause_of_death", f"{patient}cause_of_death", label="Cause of death"),
        Column("primary_tumour", f"{patient}primary_tumour", label="Primary tumour"),
    ]


def _cohort_column(path: str) -> Column:
    return Column(
        "cohort",
        expression=procedure_cohort(path),
        label="Cohort of the procedure (design.md §7)",
        type="text",
        allowed=COHORT_ALLOWED,
    )


LEVEL_FIELDS = [
    "etiology", "fracture", "genant_grade", "posterior_wall_defect", "pedicle_involvement",
    "epidural_extension", "approach", "cement_type", "cement_volume_ml", "cement_leakage",
    "leakage_sites", "leakage_symptomatic", "leakage_detected_by",
]  # fmt: skip
PROCEDURE_FIELDS = ["technique", "adjunct", "anaesthesia", "image_guidance", "indication"]


def _level_label():
    return models.Case(
        *(
            models.When(level=value, then=models.Value(label))
            for value, label in TreatedLevel.Level.choices
        ),
        output_field=models.CharField(),
    )


LEVELS = Export(
    name="levels.csv",
    title="One row per treated level, with its procedure, cohort and patient",
    model=TreatedLevel,
    filterset=TreatedLevelFilter,
    queryset=lambda user: TreatedLevel.objects.for_user(user),
    columns=[
        Column("level_id", "id", label="Treated level id"),
        Column("procedure_id", "procedure"),
        *_patient_columns("procedure__"),
        Column("procedure_date", "procedure__date", label="Procedure date"),
        _cohort_column("procedure"),
        *(Column(name, f"procedure__{name}") for name in PROCEDURE_FIELDS),
        Column(
            "level",
            expression=_level_label(),
            label="Vertebral level",
            type="text",
            allowed=", ".join(label for _value, label in TreatedLevel.Level.choices),
        ),
        *(Column(name, name) for name in LEVEL_FIELDS),
    ],
)

RESPONSE_FIELDS = [
    "mode", "answered_on", "vas_pain",
    "eq5d_version", "eq5d_mobility", "eq5d_self_care", "eq5d_usual_activities",
    "eq5d_pain_discomfort", "eq5d_anxiety_depression", "eq_vas", "eq5d_value_set", "eq5d_index",
    "odi_pain_intensity", "odi_personal_care", "odi_lifting", "odi_walking", "odi_sitting",
    "odi_standing", "odi_sleeping", "odi_sex_life", "odi_social_life", "odi_travelling",
    "odi_score",
]  # fmt: skip

RESPONSES = Export(
    name="responses.csv",
    title="One row per patient and timepoint: pain VAS, EQ-5D answers and index, ODI",
    model=QuestionnaireResponse,
    filterset=ResponseFilter,
    queryset=lambda user: QuestionnaireResponse.objects.for_user(user),
    columns=[
        Column("response_id", "id", label="Response id"),
        Column("procedure_id", "procedure"),
        *_patient_columns("procedure__"),
        Column("procedure_date", "procedure__date", label="Procedure date"),
        _cohort_column("procedure"),
        Column("timepoint", "timepoint"),
        Column(
            "days_after_procedure",
            expression=DaysBetween(F("answered_on"), F("procedure__date")),
            label="Days from the procedure to the answers",
            type="integer",
            unit="days",
        ),
        *(Column(name, name) for name in RESPONSE_FIELDS),
        Column(
            "entered_by",
            expression=staff_code("entered_by"),
            label="Staff code of who entered the answers (pseudonymous, never a name; "
            "empty when the patient answered by link)",
            type="text",
            allowed="S and the user's id in five digits, e.g. S00042",
        ),
    ],
)

WIDE_TIMEPOINTS = [Timepoint.BASELINE, Timepoint.MONTH_3, Timepoint.MONTH_12]
WIDE_SCORES = ["vas_pain", "eq5d_index", "odi_score", "odi_pain_intensity"]


def _procedures(user):
    """Procedures with one join per timepoint's response (unique per procedure and
    timepoint, so rows are never repeated)."""
    joins = {
        f"answers_{timepoint}": FilteredRelation(
            "responses", condition=Q(responses__timepoint=timepoint)
        )
        for timepoint in WIDE_TIMEPOINTS
    }
    return Procedure.objects.for_user(user).annotate(**joins)


def _levels(**conditions) -> Subquery:
    levels = (
        TreatedLevel.objects.filter(procedure=OuterRef("pk"), **conditions)
        .order_by()
        .values("procedure")
    )
    return Subquery(levels.annotate(n=Count("pk")).values("n"), output_field=models.IntegerField())


def _level_list() -> Subquery:
    labels = (
        TreatedLevel.objects.filter(procedure=OuterRef("pk"))
        .order_by()
        .values("procedure")
        .annotate(
            labels=Func(
                _level_label(),
                models.Value(";"),
                function="string_agg",
                template="string_agg(%(expressions)s ORDER BY level)",
                output_field=models.TextField(),
            )
        )
        .values("labels")
    )
    return Subquery(labels, output_field=models.TextField())


def _complications(**conditions):
    related = Complication.objects.filter(procedure=OuterRef("pk"), **conditions).exclude(
        relation=Complication.Relation.UNRELATED
    )
    return Exists(related)


PROCEDURES = Export(
    name="procedures.csv",
    title="One row per procedure: patient, cohort, levels, complications and scores per timepoint",
    model=Procedure,
    filterset=ProcedureFilter,
    queryset=_procedures,
    columns=[
        Column("procedure_id", "id", label="Procedure id"),
        *_patient_columns(""),
        Column("procedure_date", "date"),
        _cohort_column("pk"),
        *(Column(name, name) for name in PROCEDURE_FIELDS),
        Column("length_of_stay_days", "length_of_stay_days"),
        Column(
            "levels_treated",
            expression=models.functions.Coalesce(_levels(), 0),
            label="Treated vertebrae",
            type="integer",
            unit="vertebrae",
        ),
        Column(
            "levels",
            expression=_level_list(),
            label="Treated levels, cranial to caudal",
            type="list (items separated by ;)",
            allowed="C2 … S1",
        ),
        Column(
            "levels_with_leakage",
            expression=models.functions.Coalesce(_levels(cement_leakage=True), 0),
            label="Treated vertebrae with cement leakage",
            type="integer",
            unit="vertebrae",
        ),
        Column(
            "complication",
            expression=Cast(_complications(), models.CharField()),
            label="A complication not judged unrelated was recorded",
            type="boolean (true, false)",
        ),
        *(
            Column(
                f"{score}_{timepoint}",
                expression=F(f"answers_{timepoint}__{score}"),
                describe=QuestionnaireResponse._meta.get_field(score),
                label=f"{capfirst(_field(QuestionnaireResponse, score).verbose_name)} at "
                f"{Timepoint(timepoint).label.lower()}",
            )
            for timepoint in WIDE_TIMEPOINTS
            for score in WIDE_SCORES
        ),
    ],
)

EXPORTS = {export.name: export for export in (LEVELS, RESPONSES, PROCEDURES)}
