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

from django.contrib.postgres.fields import ArrayField
from django.db import connection, connections, models
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
from django.utils import translation
from django.utils.text import capfirst

from api.filters import (
    ComplicationFilter,
    FollowUpFilter,
    PatientFilter,
    ProcedureFilter,
    ResponseFilter,
    TreatedLevelFilter,
)
from outcomes.models import (
    EQ5D_FIELDS,
    ODI_FIELDS,
    ContactAttempt,
    FollowUp,
    QuestionnaireResponse,
    Timepoint,
)
from outcomes.questionnaire import items
from registry.access import staff_code
from registry.models import (
    Cohort,
    CompletedYears,
    Complication,
    Patient,
    Procedure,
    RecordLock,
    Signature,
    TreatedLevel,
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
    choices: tuple = ()  # (value, label) pairs of an expression's values (SPSS/Stata labels)
    decimals: int | None = None  # display decimals, when not the model field's


@dataclass(frozen=True)
class Export:
    name: str  # the file name
    title: str
    model: type[models.Model]
    filterset: type
    columns: list[Column]
    queryset: Callable  # user -> the scoped queryset, before filters
    # Permissions needed beyond viewing ``model`` (e.g. a file with dates of birth).
    permissions: tuple[str, ...] = ()


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


def _english(choices) -> tuple:
    with translation.override("en"):
        return tuple((value, str(label)) for value, label in choices)


def _answer_choices(model_field: models.Field) -> tuple:
    """The answers of a questionnaire item as the patient read them (English), for the items
    whose model field lists no choices: the ODI sections (one version, v2.1a). The EQ-5D's
    answers depend on its version: see :func:`_eq5d_columns`."""
    if model_field.model is QuestionnaireResponse and model_field.name in ODI_FIELDS:
        return _english(items.odi_choices(model_field.name.removeprefix("odi_")))
    return ()


def column_choices(export: Export, column: Column) -> tuple:
    """The (value, label) pairs of a column with a fixed set of values: its own, its model
    field's, or the questionnaire item's answers; () for none. The one source of value labels
    for the dictionary, SPSS, Stata, the codebook and the syntax files."""
    if column.choices:
        return _english(column.choices)
    if not (column.path or column.describe):
        return ()
    model_field = column.describe or _field(export.model, column.path)
    if isinstance(model_field, ArrayField) or model_field.is_relation:
        return ()
    return _english(model_field.choices or ()) or _answer_choices(model_field)


def column_decimals(export: Export, column: Column) -> int | None:
    """Decimals to display a numeric column with (EQ-5D index 3, ODI 1, integers 0); None for
    a column that is not a number."""
    if column.decimals is not None:
        return column.decimals
    model_field = None
    if column.path or column.describe:
        model_field = column.describe or _field(export.model, column.path)
    if isinstance(model_field, models.DecimalField) and column.type in ("", "decimal"):
        return model_field.decimal_places
    kind = column.type or (
        next(t for cls, t in _TYPES if isinstance(model_field, cls)) if model_field else ""
    )
    return 0 if kind == "integer" else None


def dictionary_entry(export: Export, column: Column) -> dict[str, str]:
    """The data dictionary's row for ``column``: from the model field when it is a path."""
    entry = {"label": column.label, "type": column.type, "unit": column.unit}
    entry["allowed"] = column.allowed or _allowed(column_choices(export, column))
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
        choices = _english(choices) if choices else column_choices(export, column)
        entry = {
            "label": column.label or capfirst(label),
            "type": column.type or next(t for cls, t in _TYPES if isinstance(field, cls)),
            "unit": column.unit or unit,
            "allowed": column.allowed or (_allowed(choices) if choices else ""),
        }
        if field.null or field.blank:
            entry["allowed"] = "; ".join(filter(None, [entry["allowed"], "empty = not recorded"]))
    decimals = column_decimals(export, column)
    entry["decimals"] = "" if decimals is None else str(decimals)
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
    sql, params = export_select_sql(export, queryset)
    return (f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER)", params)


def export_select_sql(export: Export, queryset) -> tuple[str, list]:
    """The ``SELECT`` behind :func:`export_sql` (also read row by row for SPSS and Stata)."""
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
        f"SELECT {renamed} FROM ({sql}) AS export",  # noqa: S608 (our names; values are parameters)
        list(params),
    )


def stream_csv(
    sql: str, params: list, *, on_finish: Callable[[int, bool], None], using: str = "default"
) -> Iterator[bytes]:
    """The CSV bytes of a ``COPY … TO STDOUT`` on database ``using``, in chunks of about
    64 KiB. ``on_finish(rows, completed)`` runs at the end, also when the client goes away
    mid-way (then with the rows sent so far)."""
    lines = sent = 0  # psycopg hands over one CSV line at a time; the first is the header
    completed = False
    try:
        # psycopg's own cursor: Django's debug wrapper (DEBUG on) takes no COPY parameters
        with connections[using].cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
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


DICTIONARY_FIELDS = ["file", "column", "label", "type", "unit", "allowed", "decimals"]


def dictionary_csv() -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, DICTIONARY_FIELDS)
    writer.writeheader()
    for export in EXPORTS.values():
        for column in export.columns:
            writer.writerow(dictionary_entry(export, column))
    return out.getvalue()


# --- the exports ------------------------------------------------------------------------------

COHORT_ALLOWED = _allowed(Cohort.choices)


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
        # Stored by the levels' triggers from procedure_cohort(), the one rule.
        expression=F("cohort" if path == "pk" else f"{path}__cohort"),
        label="Cohort of the procedure (design.md §7)",
        type="text",
        allowed=COHORT_ALLOWED,
        choices=tuple(Cohort.choices),
    )


LEVEL_FIELDS = [
    "etiology", "fracture", "genant_grade", "posterior_wall_defect", "pedicle_involvement",
    "epidural_extension", "approach", "cement_type", "cement_volume_ml", "cement_leakage",
    "leakage_sites", "leakage_symptomatic", "leakage_detected_by",
]  # fmt: skip
PROCEDURE_FIELDS = ["technique", "adjunct", "anaesthesia", "image_guidance", "indication"]
# The rest of a procedure that leaves the registry (appended to procedures.csv so that the
# exports carry everything the import takes). The operator and notes stay home: they name
# people.
PROCEDURE_DETAIL_FIELDS = [
    "mri_stir_oedema", "biopsy_taken", "biopsy_result", "fluoroscopy_time_s",
    "dose_area_product", "absolute_contraindications", "relative_contraindications",
]  # fmt: skip
LEVEL_CHOICES = tuple((label, label) for _value, label in TreatedLevel.Level.choices)


def _level_label(path: str = "level"):
    return models.Case(
        *(
            models.When(**{path: value}, then=models.Value(label))
            for value, label in TreatedLevel.Level.choices
        ),
        output_field=models.CharField(),
    )


# Stata allows 32 characters in a name, and readstat 31 in a name with value labels (the label
# set takes the variable's name): every name of every export stays within this.
NAME_MAX = 31


def _dummies(path: str, model, prefix: str) -> list[Column]:
    """A multiple-response (list) column also as one true/false column per choice, named
    ``{prefix}_{choice}`` (a short prefix, so the names fit Stata's; the label says it all)."""
    field = _field(model, path)
    with translation.override("en"):
        heading = capfirst(str(field.verbose_name))
        return [
            Column(
                f"{prefix}_{value}",
                expression=Cast(
                    ExpressionWrapper(
                        Q(**{f"{path}__contains": [value]}), output_field=models.BooleanField()
                    ),
                    models.CharField(),
                ),
                label=f"{heading}: {label}",
                type="boolean (true, false)",
            )
            for value, label in field.base_field.choices
        ]


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
            choices=LEVEL_CHOICES,
        ),
        *(Column(name, name) for name in LEVEL_FIELDS),
        *_dummies("leakage_sites", TreatedLevel, "leak"),
    ],
)


def _eq5d_columns(prefix: str = "") -> list[Column]:
    """The EQ-5D answers as stored (level 1–3 or 1–5, by ``eq5d_version``) and, because a
    level's wording differs between versions (3 is "confined to bed" in 3L, "moderate
    problems" in 5L), once more per version with that version's wording as value labels."""
    version = f"{prefix}eq5d_version"
    columns = [
        Column(
            name,
            f"{prefix}{name}",
            allowed="1–3 (EQ-5D-3L) or 1–5 (EQ-5D-5L) by eq5d_version; the wording in "
            f"eq5d_3l_{name[5:]} and eq5d_5l_{name[5:]}; empty = not recorded",
        )
        for name in EQ5D_FIELDS
    ]
    for levels in (3, 5):
        for name, heading, _three, _five in items.EQ5D_DIMENSIONS:
            with translation.override("en"):
                label = f"EQ-5D-{levels}L {str(heading).lower()}"
            columns.append(
                Column(
                    f"eq5d_{levels}l_{name}",
                    expression=models.Case(
                        models.When(**{version: f"{levels}L"}, then=F(f"{prefix}eq5d_{name}")),
                        output_field=models.IntegerField(),
                    ),
                    label=f"{label} (empty unless eq5d_version is {levels}L)",
                    type="integer",
                    choices=tuple(items.eq5d_choices(name, levels)),
                )
            )
    return columns


RESPONSE_FIELDS = ["mode", "answered_on", "vas_pain", "eq5d_version"]
RESPONSE_SCORE_FIELDS = [
    "eq_vas", "eq5d_value_set", "eq5d_index",
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
        *_eq5d_columns(),
        *(Column(name, name) for name in RESPONSE_SCORE_FIELDS),
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
    related = Complication.objects.related_to_procedure().filter(
        procedure=OuterRef("pk"), **conditions
    )
    return Exists(related)


def _level_columns() -> list[Column]:
    """A procedure's treated levels: how many, which, and how many leaked."""
    return [
        Column(
            "levels_treated",
            expression=Coalesce(_levels(), 0),
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
            expression=Coalesce(_levels(cement_leakage=True), 0),
            label="Treated vertebrae with cement leakage",
            type="integer",
            unit="vertebrae",
        ),
    ]


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
        *_level_columns(),
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
        *(Column(name, name) for name in PROCEDURE_DETAIL_FIELDS),
        *_dummies("absolute_contraindications", Procedure, "contra_a"),
        *_dummies("relative_contraindications", Procedure, "contra_r"),
    ],
)

PATIENT_FIELDS = [
    "sex", "date_of_birth", "consent_date", "consent_withdrawn_date", "date_of_death",
    "cause_of_death", "karnofsky", "asa_class", "primary_tumour", "malignancy_confirmation",
    "other_bone_metastases", "visceral_metastases", "prior_radiotherapy", "prior_chemotherapy",
]  # fmt: skip


def _signature_columns() -> list[Column]:
    """The manifestation of the patient's latest whole-record signature (who, when, what it
    means, and whether it still holds: a later change to the data voids it)."""
    latest = Signature.objects.filter(patient=OuterRef("pk"), procedure__isnull=True).order_by(
        "-signed_at", "-pk"
    )

    def of(expression, output) -> Subquery:
        return Subquery(latest.annotate(value=expression).values("value")[:1], output_field=output)

    text = models.CharField()
    return [
        Column(
            "record_locked",
            expression=Cast(
                Exists(
                    RecordLock.objects.filter(
                        patient=OuterRef("pk"), procedure__isnull=True, unlocked_at__isnull=True
                    )
                ),
                text,
            ),
            label="Whether the record is locked against changes now",
            type="boolean (true, false)",
        ),
        Column(
            "signature_status",
            expression=of(
                models.Case(
                    models.When(voided_at__isnull=True, then=models.Value("valid")),
                    default=models.Value("void"),
                    output_field=text,
                ),
                text,
            ),
            label="Latest investigator signature of the whole record",
            type="text",
            allowed="valid = signed and unchanged since; void = the data changed after "
            "signing (a new signature is needed); empty = never signed",
        ),
        Column(
            "signed_by",
            expression=of(staff_code("signer"), text),
            label="Staff code of the investigator who signed (pseudonymous)",
            type="text",
            allowed="S and the user's id in five digits, e.g. S00042",
        ),
        Column(
            "signed_at",
            expression=of(F("signed_at"), models.DateTimeField()),
            label="When the latest signature was given",
            type="timestamp (ISO 8601, UTC)",
        ),
        Column(
            "signature_meaning",
            expression=of(F("meaning"), text),
            label="What the latest signature means",
            type="text",
            allowed=_allowed(Signature.Meaning.choices),
        ),
    ]


PATIENTS = Export(
    name="patients.csv",
    title="One row per patient: everything the registry holds on them but contact details "
    "(with the date of birth: only for roles that may see contact details)",
    model=Patient,
    filterset=PatientFilter,
    queryset=lambda user: Patient.objects.for_user(user).with_index_procedure(),
    columns=[
        Column("registry_id", "registry_id"),
        Column("site", "site__code", label="Site code"),
        *(Column(name, name) for name in PATIENT_FIELDS),
        *_signature_columns(),
    ],
    # The date of birth and consent dates identify a person more than an age does: this file
    # goes to those who may see contact details (site staff, leads, managers), not auditors.
    permissions=("registry.view_patientcontact",),
)

COMPLICATION_FIELDS = Complication.CLINICAL_FIELDS

COMPLICATIONS = Export(
    name="complications.csv",
    title="One row per complication, with its patient, procedure and treated level",
    model=Complication,
    filterset=ComplicationFilter,
    queryset=lambda user: Complication.objects.for_user(user),
    columns=[
        Column("complication_id", "id", label="Complication id"),
        Column("registry_id", "patient__registry_id"),
        Column("site", "patient__site__code", label="Site code"),
        Column("procedure_id", "procedure"),
        Column("procedure_date", "procedure__date", label="Date of the procedure it followed"),
        Column(
            "level",
            expression=_level_label("treated_level__level"),
            label="Treated level it concerns",
            type="text",
            allowed=", ".join(label for _value, label in TreatedLevel.Level.choices)
            + "; empty = not recorded",
            choices=LEVEL_CHOICES,
        ),
        *(Column(name, name) for name in COMPLICATION_FIELDS),
    ],
)

# --- the wide analysis file ------------------------------------------------------------------
# One row per patient: their index procedure (``Patient.objects.with_index_procedure``), with
# the definitions of the cohort report (outcomes/reports/dataset.py) so that a statistician's
# numbers from this file agree with the report's.

TODAY = Func(template="CURRENT_DATE", output_field=models.DateField())
CHANGE_SCORES = ["vas_pain", "eq5d_index", "odi_score"]


def _index_procedures(user):
    index = Patient.objects.with_index_procedure().values("index_procedure_id")
    return _procedures(user).filter(pk__in=index)


def _worst_grade() -> Coalesce:
    related = (
        Complication.objects.related_to_procedure()
        .filter(procedure=OuterRef("pk"))
        .order_by()
        .values("procedure")
        .annotate(worst=models.Max("cirse_grade"))
        .values("worst")
    )
    return Coalesce(Subquery(related, output_field=models.IntegerField()), 0)


def _died() -> Q:
    # As the report's survival (outcomes.reports.statistics.follow_up_time): a death on or before
    # today is the event; otherwise censored at withdrawal of consent or today.
    return Q(patient__date_of_death__isnull=False, patient__date_of_death__lte=TODAY)


def _survival_days() -> models.Case:
    censored = Func(
        DaysBetween(
            Func(
                TODAY,
                F("patient__consent_withdrawn_date"),
                function="LEAST",
                output_field=models.DateField(),
            ),
            F("date"),
        ),
        models.Value(0),
        function="GREATEST",
        output_field=models.IntegerField(),
    )
    return models.Case(
        models.When(_died(), then=DaysBetween(F("patient__date_of_death"), F("date"))),
        default=censored,
        output_field=models.IntegerField(),
    )


def _change(score: str, timepoint: str) -> ExpressionWrapper:
    field = QuestionnaireResponse._meta.get_field(score)
    output: models.Field = models.IntegerField()
    if isinstance(field, models.DecimalField):
        output = models.DecimalField(
            max_digits=field.max_digits + 1, decimal_places=field.decimal_places
        )
    return ExpressionWrapper(
        F(f"answers_{timepoint}__{score}") - F(f"answers_{Timepoint.BASELINE}__{score}"),
        output_field=output,
    )


BOOLEAN = "boolean (true, false)"

ANALYSIS = Export(
    name="analysis.csv",
    title="One row per patient (index procedure): cohort, age, sex, levels, scores at "
    "baseline, 3 and 12 months and their changes, leakage, complications and survival",
    model=Procedure,
    filterset=ProcedureFilter,
    queryset=_index_procedures,
    columns=[
        Column("registry_id", "patient__registry_id"),
        Column("site", "patient__site__code", label="Site code"),
        Column("index_date", "date", label="Date of the index (first) procedure"),
        _cohort_column("pk"),
        Column(
            "age",
            expression=CompletedYears(F("date"), F("patient__date_of_birth")),
            label="Age at the index procedure",
            type="integer",
            unit="completed years",
        ),
        Column("sex", "patient__sex"),
        Column("primary_tumour", "patient__primary_tumour", label="Primary tumour"),
        Column("technique", "technique"),
        *_level_columns(),
        Column(
            "leakage",
            expression=Cast(
                Exists(TreatedLevel.objects.filter(procedure=OuterRef("pk"), cement_leakage=True)),
                models.CharField(),
            ),
            label="Cement leaked at any treated vertebra",
            type=BOOLEAN,
        ),
        Column(
            "complication",
            expression=Cast(_complications(), models.CharField()),
            label="A complication not judged unrelated was recorded",
            type=BOOLEAN,
        ),
        Column(
            "worst_cirse_grade",
            expression=_worst_grade(),
            label="Worst CIRSE grade of a complication not judged unrelated (0 = none)",
            type="integer",
            allowed="0 = none; " + _allowed(Complication.CirseGrade.choices),
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
            for score in CHANGE_SCORES
        ),
        *(
            Column(
                f"{score}_change_{timepoint}",
                expression=_change(score, timepoint),
                describe=QuestionnaireResponse._meta.get_field(score),
                label=f"Change in {_field(QuestionnaireResponse, score).verbose_name} from "
                f"baseline to {Timepoint(timepoint).label.lower()} (follow-up − baseline)",
            )
            for timepoint in WIDE_TIMEPOINTS[1:]
            for score in CHANGE_SCORES
        ),
        Column("date_of_death", "patient__date_of_death", label="Date of death"),
        Column(
            "survival_days",
            expression=_survival_days(),
            label="Days from the index procedure to death, or to withdrawal of consent or "
            "today when alive (censored)",
            type="integer",
            unit="days",
        ),
        Column(
            "survival_status",
            expression=models.Case(
                models.When(_died(), then=models.Value(1)),
                default=models.Value(0),
                output_field=models.IntegerField(),
            ),
            label="Survival status",
            type="integer",
            allowed="1 = died; 0 = censored (alive at withdrawal of consent or today)",
            choices=((0, "Censored"), (1, "Died")),
        ),
    ],
)

# --- follow-ups: one row per follow-up, for completeness analyses ------------------------------


def _attempt_sent(kind: str) -> Subquery:
    """When the first ``kind`` message of the follow-up went out (empty when none did)."""
    sent = (
        ContactAttempt.objects.filter(
            followup=OuterRef("pk"), kind=kind, status=ContactAttempt.Status.SENT
        )
        .order_by("sent_at")
        .values("sent_at")[:1]
    )
    return Subquery(sent, output_field=models.DateTimeField())


def _followups(user):
    answers = FilteredRelation(
        "procedure__responses",
        condition=Q(procedure__responses__timepoint=F("timepoint")),
    )
    return FollowUp.objects.for_user(user).annotate(answers=answers)


TIMESTAMP = "timestamp (ISO 8601, UTC)"
FOLLOWUP_FIELDS = [
    "timepoint", "due_date", "window_start", "window_end", "state", "invited_on",
    "invitations_sent", "reminders_sent", "last_contact_on", "on_phone_worklist_since",
    "worklist_reason", "phone_outcome", "cancel_reason", "completed_at",
]  # fmt: skip

FOLLOWUPS = Export(
    name="followups.csv",
    title="One row per follow-up: state, window and the dates of invitation, reminders, "
    "phone worklist and completion",
    model=FollowUp,
    filterset=FollowUpFilter,
    queryset=_followups,
    columns=[
        Column("followup_id", "id", label="Follow-up id"),
        Column("procedure_id", "procedure"),
        Column("registry_id", "procedure__patient__registry_id"),
        Column("site", "procedure__patient__site__code", label="Site code"),
        Column("procedure_date", "procedure__date", label="Procedure date"),
        _cohort_column("procedure"),
        *(Column(name, name) for name in FOLLOWUP_FIELDS),
        *(
            Column(
                f"{kind}_sent_at",
                expression=_attempt_sent(kind),
                label=f"When the {label.lower()} email was sent (first one; empty: none sent)",
                type=TIMESTAMP,
            )
            for kind, label in (
                (ContactAttempt.Kind.INVITATION, "Invitation"),
                (ContactAttempt.Kind.REMINDER_1, "First reminder"),
                (ContactAttempt.Kind.REMINDER_2, "Second reminder"),
            )
        ),
        Column(
            "response_id",
            expression=F("answers__id"),
            label="Response id of the answers at this timepoint (empty: none)",
            type="integer",
        ),
        Column(
            "answered_on",
            expression=F("answers__answered_on"),
            describe=_field(QuestionnaireResponse, "answered_on"),
        ),
        Column(
            "response_mode",
            expression=F("answers__mode"),
            describe=_field(QuestionnaireResponse, "mode"),
            label="How the answers were given",
        ),
    ],
)

# --- the long analysis file: one row per patient x timepoint ------------------------------------
# The index procedure's follow-ups (every procedure has one per timepoint of the plan, made by
# outcomes.followups.sweep.followups_ensure), each with its answers and the covariates.

LONG_SCORES = ["vas_pain", "eq5d_version", "eq5d_index", "eq_vas", "odi_score"]
LONG_CHANGES = ["vas_pain", "eq5d_index", "odi_score"]


def _long_rows(user):
    index = Patient.objects.with_index_procedure().values("index_procedure_id")
    baseline = FilteredRelation(
        "procedure__responses",
        condition=Q(procedure__responses__timepoint=Timepoint.BASELINE),
    )
    return _followups(user).filter(procedure__in=index).annotate(baseline=baseline)


def _long_change(score: str) -> ExpressionWrapper:
    field = QuestionnaireResponse._meta.get_field(score)
    output: models.Field = models.IntegerField()
    if isinstance(field, models.DecimalField):
        output = models.DecimalField(
            max_digits=field.max_digits + 1, decimal_places=field.decimal_places
        )
    return ExpressionWrapper(F(f"answers__{score}") - F(f"baseline__{score}"), output_field=output)


LONG = Export(
    name="long.csv",
    title="One row per patient and timepoint (index procedure): the answers with the "
    "covariates, the baseline values and the follow-up's state",
    model=FollowUp,
    filterset=FollowUpFilter,
    queryset=_long_rows,
    columns=[
        Column("registry_id", "procedure__patient__registry_id"),
        Column("site", "procedure__patient__site__code", label="Site code"),
        Column("index_date", "procedure__date", label="Date of the index (first) procedure"),
        _cohort_column("procedure"),
        Column(
            "age",
            expression=CompletedYears(F("procedure__date"), F("procedure__patient__date_of_birth")),
            label="Age at the index procedure",
            type="integer",
            unit="completed years",
        ),
        Column("sex", "procedure__patient__sex"),
        Column("primary_tumour", "procedure__patient__primary_tumour", label="Primary tumour"),
        Column("technique", "procedure__technique"),
        Column(
            "levels_treated",
            expression=Coalesce(
                Subquery(
                    TreatedLevel.objects.filter(procedure=OuterRef("procedure"))
                    .order_by()
                    .values("procedure")
                    .annotate(n=Count("pk"))
                    .values("n"),
                    output_field=models.IntegerField(),
                ),
                0,
            ),
            label="Treated vertebrae",
            type="integer",
            unit="vertebrae",
        ),
        Column("timepoint", "timepoint"),
        Column("followup_state", "state", label="State of the follow-up"),
        Column(
            "answered_on",
            expression=F("answers__answered_on"),
            describe=_field(QuestionnaireResponse, "answered_on"),
        ),
        Column(
            "days_after_procedure",
            expression=DaysBetween(F("answers__answered_on"), F("procedure__date")),
            label="Days from the procedure to the answers",
            type="integer",
            unit="days",
        ),
        Column(
            "mode", expression=F("answers__mode"), describe=_field(QuestionnaireResponse, "mode")
        ),
        *(
            Column(
                score,
                expression=F(f"answers__{score}"),
                describe=_field(QuestionnaireResponse, score),
            )
            for score in LONG_SCORES
        ),
        *(
            Column(
                f"{score}_baseline",
                expression=F(f"baseline__{score}"),
                describe=_field(QuestionnaireResponse, score),
                label=f"{capfirst(_field(QuestionnaireResponse, score).verbose_name)} at baseline",
            )
            for score in LONG_CHANGES
        ),
        *(
            Column(
                f"{score}_change",
                expression=_long_change(score),
                describe=_field(QuestionnaireResponse, score),
                label=f"Change in {_field(QuestionnaireResponse, score).verbose_name} from "
                "baseline (this timepoint − baseline)",
            )
            for score in LONG_CHANGES
        ),
    ],
)

EXPORTS = {
    export.name: export
    for export in (
        LEVELS,
        RESPONSES,
        PROCEDURES,
        PATIENTS,
        COMPLICATIONS,
        ANALYSIS,
        FOLLOWUPS,
        LONG,
    )
}
