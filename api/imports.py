"""Import of historical series from CSV and Excel, in the long format the exports produce.

A file set holds up to five tables, one CSV file or Excel sheet each, named as the exports:
``patients``, ``procedures``, ``levels``, ``responses`` and ``complications`` (a file or sheet
whose name does not start with a table's name is recognised by its columns). The columns are
the exports' (``api.exports``): a column that is a field of the table's model is imported;
the keys name the rows; the rest of an export's columns (database ids, cohort, age, counts,
scores) are context and are ignored; any other column is an error, so nothing in a file is
silently dropped.

Rows are matched on natural keys, never on database ids:

- patient: registry id (at its site; a registry id is unique across sites);
- procedure: registry id + procedure date;
- treated level: registry id + procedure date + level;
- questionnaire response: registry id + procedure date + timepoint;
- complication: registry id + date + type + procedure date + level (the last two may be empty).

A row whose key is new is created; one whose key exists is compared field by field and
updated where it differs; an identical row is left alone, so importing the same file twice
changes nothing. Scores (EQ-5D index, ODI) are recomputed from the answers by
``outcomes.responses.response_score``; those in the file are ignored.

Every row is validated like every other door: parsed per the model field, then
``full_clean()`` (field validators, choices, the model's ``clean()``), then written, so the
database's constraints and triggers judge it too. Rows are written in batches; when a batch
breaks a constraint it is written again row by row to name each offending row. Each problem
is an ``ImportProblem`` naming table, row (the file's line: the header is row 1), column,
value and the rule broken. The whole import runs in one transaction: with any problem, or with
``dry_run``, it is rolled back and nothing is kept.
"""

from __future__ import annotations

import datetime
import difflib
import io
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cached_property

import tablib
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.utils import timezone

from api.exports import COMPLICATIONS, LEVELS, PATIENTS, PROCEDURES, RESPONSES, Export
from outcomes.followups.schedule import PLAN, schedule_for
from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from outcomes.responses import SCORE_FIELDS, response_score
from registry.access import is_registry_manager
from registry.models import Complication, Patient, Procedure, Site, TreatedLevel

BATCH_SIZE = 1000
# Procedures whose follow-ups are written per round of statements (_follow_ups).
FOLLOW_UP_CHUNK = 5000
LEVEL_BY_LABEL = {label.upper(): value for value, label in TreatedLevel.Level.choices}
TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


class ImportFileError(Exception):
    """A file that cannot be read as a table at all."""


@dataclass(frozen=True)
class ImportProblem:
    table: str
    row: int  # the row in the sheet or CSV file; 1 is the header (CSV: blank lines not counted)
    column: str
    value: str
    rule: str

    def __str__(self) -> str:
        where = f"{self.table} row {self.row}"
        if self.column:
            where += f", column {self.column}"
        value = f" = {self.value!r}" if self.value != "" else ""
        return f"{where}{value}: {self.rule}"


@dataclass(frozen=True)
class ProblemGroup:
    """Identical problems (same table, column, value and rule) of many rows, said once."""

    table: str
    row: str  # "2–2707" or "2, 5, 9–12"
    column: str
    value: str
    rule: str
    count: int

    def __str__(self) -> str:
        where = f"{self.table} row{'s' if self.count > 1 else ''} {self.row}"
        if self.column:
            where = f"{self.table}, column {self.column}"
            value = f": {self.value!r}" if self.value != "" else ""
            rows = f"row{'s' if self.count > 1 else ''} {self.row}"
            return f"{where}{value} in {rows}: {self.rule}"
        return f"{where}: {self.rule}"


def _ranges(rows: list[int]) -> str:
    parts, start, previous = [], None, None
    for row in sorted(set(rows)):
        if start is None:
            start = previous = row
        elif row == previous + 1:
            previous = row
        else:
            parts.append(f"{start}" if start == previous else f"{start}–{previous}")
            start = previous = row
    if start is not None:
        parts.append(f"{start}" if start == previous else f"{start}–{previous}")
    return ", ".join(parts)


def group_problems(problems: list[ImportProblem]) -> list[ProblemGroup]:
    """``problems`` with identical ones (table, column, value, rule) grouped, in the order
    each first occurs: 2,706 rows with the same bad value are one line."""
    groups: dict[tuple, list[int]] = {}
    for problem in problems:
        key = (problem.table, problem.column, problem.value, problem.rule)
        groups.setdefault(key, []).append(problem.row)
    return [
        ProblemGroup(table, _ranges(rows), column, value, rule, len(rows))
        for (table, column, value, rule), rows in groups.items()
    ]


@dataclass
class TableResult:
    created: int = 0
    changed: int = 0
    unchanged: int = 0
    changes: list[str] = field(default_factory=list)  # "AAR-0001 2025-01-02: technique a → b"


@dataclass
class ImportResult:
    tables: dict[str, TableResult] = field(default_factory=dict)
    problems: list[ImportProblem] = field(default_factory=list)
    ignored_columns: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. a workbook's extra sheets, ignored
    dry_run: bool = False

    def grouped_problems(self) -> list[ProblemGroup]:
        return group_problems(self.problems)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def saved(self) -> bool:
        return self.ok and not self.dry_run


# --- reading files ----------------------------------------------------------------------------


@dataclass
class Sheet:
    name: str  # the file or sheet name
    headers: list[str]
    rows: list[tuple[int, tuple]]  # (row number in the file or sheet, cells)


def read_file(name: str, content: bytes) -> list[Sheet]:
    """The tables of one uploaded file: a CSV file (UTF-8, comma- or semicolon-separated) or
    every sheet of an Excel workbook (.xlsx)."""
    stem, suffix = os.path.splitext(os.path.basename(name))
    suffix = suffix.lower()
    if suffix == ".xlsx":
        try:
            book = tablib.Databook().load(io.BytesIO(content), format="xlsx")
        except Exception as error:  # openpyxl raises many kinds for a damaged file
            raise ImportFileError(f"{name}: not a readable Excel workbook ({error}).") from error
        return [_sheet(sheet.title, sheet) for sheet in book.sheets() if sheet.headers]
    if suffix in (".csv", ".txt"):
        try:
            text = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ImportFileError(
                f"{name}: not UTF-8 text (save the CSV as UTF-8): {error}."
            ) from error
        if "\x00" in text:
            raise ImportFileError(f"{name}: contains NUL characters; not a CSV file.")
        first = text.split("\n", 1)[0]
        delimiter = ";" if first.count(";") > first.count(",") else ","
        data = tablib.Dataset().load(text, format="csv", delimiter=delimiter)
        return [_sheet(stem, data)]
    raise ImportFileError(f"{name}: use .csv or .xlsx files.")


def _sheet(name: str, data: tablib.Dataset) -> Sheet:
    headers = [str(h or "").strip() for h in data.headers]
    # Empty rows are skipped but counted, so that row numbers stay those of the sheet.
    rows = [
        (line, row)
        for line, row in enumerate(data, start=2)
        if any(cell not in (None, "") for cell in row)
    ]
    return Sheet(name, headers, rows)


# --- the tables ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    name: str
    export: Export
    model: type[models.Model]
    keys: tuple[str, ...]  # key columns, in the order they identify a row
    computed: tuple[str, ...] = ()  # model fields in the export that the import recomputes
    optional_keys: tuple[str, ...] = ()

    @cached_property
    def fields(self) -> list[str]:
        """Columns imported into model fields of the same name: the export's plain columns
        of this model (database ids, keys and recomputed scores aside)."""
        names = []
        for column in self.export.columns:
            if not column.path or "__" in column.path or column.name in self.keys:
                continue
            model_field = self.model._meta.get_field(column.path)
            if model_field.primary_key or model_field.is_relation:
                continue
            if column.name in self.computed or column.name != column.path:
                continue
            names.append(column.name)
        return names

    @cached_property
    def context(self) -> list[str]:
        return [
            c.name
            for c in self.export.columns
            if c.name not in self.fields and c.name not in self.keys
        ]

    def required(self) -> list[str]:
        """Columns a file must have to create rows: the keys and every field without a
        default that cannot be left empty."""
        needed = [k for k in self.keys if k not in self.optional_keys]
        for name in self.fields:
            model_field = self.model._meta.get_field(name)
            if not (model_field.blank or model_field.has_default() or model_field.null):
                needed.append(name)
        return needed


TABLES = {
    table.name: table
    for table in (
        Table("patients", PATIENTS, Patient, keys=("registry_id", "site")),
        Table("procedures", PROCEDURES, Procedure, keys=("registry_id", "procedure_date")),
        Table("levels", LEVELS, TreatedLevel, keys=("registry_id", "procedure_date", "level")),
        Table(
            "responses",
            RESPONSES,
            QuestionnaireResponse,
            keys=("registry_id", "procedure_date", "timepoint"),
            computed=tuple(name for name in SCORE_FIELDS if name != "eq5d_value_set"),
        ),
        Table(
            "complications",
            COMPLICATIONS,
            Complication,
            keys=("registry_id", "date", "type", "procedure_date", "level"),
            optional_keys=("procedure_date", "level"),
        ),
    )
}
ORDER = list(TABLES)  # parents before children


def identify(sheet: Sheet) -> Table | None:
    """The table a file or sheet holds: by its name, else by its columns."""
    name = sheet.name.lower()
    for table in TABLES.values():
        if name.startswith(table.name):
            return table
    headers = set(sheet.headers)
    if "timepoint" in headers:
        return TABLES["responses"]
    if {"cirse_grade", "type"} <= headers:
        return TABLES["complications"]
    if "level" in headers:
        return TABLES["levels"]
    if "technique" in headers:
        return TABLES["procedures"]
    if "date_of_birth" in headers:
        return TABLES["patients"]
    return None


# --- parsing cells ----------------------------------------------------------------------------


class CellError(ValueError):
    pass


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def parse_cell(model_field: models.Field, value):
    """A cell (text from CSV, or a typed Excel value) as the model field's Python value;
    empty is None (or "" for a text field). Raises ``CellError`` with the rule."""
    if isinstance(model_field, ArrayField):
        text = _text(value)
        return [item.strip() for item in text.split(";") if item.strip()] if text else []
    if value is None or (isinstance(value, str) and value.strip() == ""):
        if isinstance(model_field, models.CharField | models.TextField):
            return ""
        return None
    if isinstance(model_field, models.BooleanField):
        if isinstance(value, bool):
            return value
        text = _text(value).lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise CellError("not true or false")
    if isinstance(model_field, models.DateTimeField):
        raise CellError("timestamps are not imported")
    if isinstance(model_field, models.DateField):
        if isinstance(value, datetime.datetime):
            if value.time() != datetime.time(0):
                raise CellError("a date without a time of day (YYYY-MM-DD)")
            return value.date()
        if isinstance(value, datetime.date):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _excel_date(value)
        return _local_date(_text(value))
    if isinstance(model_field, models.DecimalField):
        text = _text(value) if not isinstance(value, float) else repr(value)
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a decimal comma, as Danish spreadsheets write
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CellError("not a number") from None
        if not number.is_finite():
            raise CellError("not a number")
        return _denoise(number, model_field.decimal_places)
    if isinstance(model_field, models.IntegerField):
        text = repr(value) if isinstance(value, float) else _text(value)
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise CellError("not a whole number") from None
        if not number.is_finite():
            raise CellError("not a whole number")
        number = _denoise(number, 0)
        if number != number.to_integral_value():
            raise CellError("not a whole number")
        return int(number)
    text = _text(value)
    if model_field.choices and isinstance(model_field, models.CharField):
        # Codes in any case, as site codes and levels are: "Unknown" is the code "unknown".
        # A text matching no code is left for validation to refuse with the allowed codes.
        codes = {str(code).casefold(): code for code, _label in model_field.flatchoices}
        return codes.get(text.casefold(), text)
    return text


# Dates as sites type them: ISO first, then day-first with -, . or / (Danish and most European
# usage; month-first US dates are refused by the day/month check, never guessed).
LOCAL_DATE_FORMATS = ("%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y")
EXCEL_EPOCH = datetime.date(1899, 12, 30)  # Excel's day 0 (its 1900 leap-year bug included)


def _local_date(text: str) -> datetime.date:
    try:
        return datetime.date.fromisoformat(text)
    except ValueError:
        pass
    for fmt in LOCAL_DATE_FORMATS:
        try:
            return datetime.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise CellError("not a date (YYYY-MM-DD, DD-MM-YYYY, DD.MM.YYYY or DD/MM/YYYY)")


def _excel_date(number: float) -> datetime.date:
    """A date cell Excel stored as its serial day number (a column formatted as number)."""
    if not float(number).is_integer() or not 1 <= number <= 2958465:
        raise CellError("not a date (a whole Excel day number, or YYYY-MM-DD)")
    return EXCEL_EPOCH + datetime.timedelta(days=int(number))


def _denoise(number: Decimal, places: int) -> Decimal:
    """``number`` rounded to ``places`` when it differs from that only by binary float noise
    (Excel's 3.3000000000000003): a real extra decimal is kept, and refused by validation."""
    rounded = round(number, places)
    return rounded if abs(number - rounded) < Decimal("1e-9") else number


def _parse_level(value) -> int | None:
    text = _text(value).upper()
    if not text:
        return None
    if text not in LEVEL_BY_LABEL:
        raise CellError("not a vertebral level (C2 … S1)")
    return LEVEL_BY_LABEL[text]


def _shown(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


# --- the import ------------------------------------------------------------------------------


@dataclass
class Row:
    table: Table
    line: int
    cells: dict  # column -> raw value
    instance: models.Model | None = None
    key: tuple = ()
    is_new: bool = False
    changed_fields: list[str] = field(default_factory=list)
    old: dict = field(default_factory=dict)  # field -> value before this import
    bad_columns: set = field(default_factory=set)  # columns already reported
    failed: bool = False


class _Rollback(Exception):
    pass


class Importer:
    """One import run over a set of files (see the module docstring)."""

    def __init__(
        self, *, user=None, site_code: str = "", dry_run: bool = False, entered_by=None
    ) -> None:
        self.user = user
        self.entered_by = entered_by if entered_by is not None else user
        self.site_code = site_code
        self.result = ImportResult(dry_run=dry_run)
        self.sheets: dict[str, list[Sheet]] = {name: [] for name in TABLES}
        self.rows: dict[str, list[Row]] = {name: [] for name in TABLES}
        self.patients: dict[str, Patient] = {}
        self.procedures: dict[tuple, Procedure] = {}
        self.levels: dict[tuple, TreatedLevel] = {}
        self.responses: dict[tuple, QuestionnaireResponse] = {}
        self.complications: dict[tuple, list[Complication]] = {}
        self.ambiguous: set[tuple] = set()
        self.now = timezone.now()
        self.progress: Callable[[int], None] | None = None

    # problems --------------------------------------------------------------------------

    def problem(self, row: Row | None, table: str, column: str, value, rule: str) -> None:
        if row is not None:
            row.failed = True
        line = row.line if row is not None else 1
        self.result.problems.append(ImportProblem(table, line, column, _shown(value), str(rule)))

    # entry -----------------------------------------------------------------------------

    def add_file(self, name: str, content: bytes) -> None:
        workbook = name.lower().endswith(".xlsx")
        for sheet in read_file(name, content):
            table = identify(sheet)
            if table is None and workbook:
                # A workbook's notes, lists or pivot sheets are the site's own: not a refusal.
                self.result.notes.append(
                    f"{name}: sheet {sheet.name!r} is not a registry table; it was ignored"
                )
                continue
            if table is None:
                self.result.problems.append(
                    ImportProblem(
                        sheet.name,
                        1,
                        "",
                        "",
                        "cannot tell which table this is: name the file or sheet patients, "
                        "procedures, levels, responses or complications",
                    )
                )
                continue
            self.sheets[table.name].append(sheet)

    def run(self, progress: Callable[[int], None] | None = None) -> ImportResult:
        """Import every added table in one transaction; roll back on any problem or dry
        run."""
        if self.site_code and not Site.objects.filter(code__iexact=self.site_code).exists():
            self.problem(None, "", "site", self.site_code, "no site has this code")
            return self.result
        # Site codes as typed: "aaa" is AAA.
        self.sites = {site.code.upper(): site for site in self._allowed_sites()}
        self.progress = progress
        nested = connection.in_atomic_block
        try:
            with transaction.atomic():
                restore = self._short_trigger_queue()
                try:
                    for name in ORDER:
                        for sheet in self.sheets[name]:
                            rows = self._rows(TABLES[name], sheet)
                            self.rows[name] += rows
                            getattr(self, f"_import_{name}")(rows)
                        if name == "levels":
                            self._check_levels_now(top_level=not nested)
                finally:
                    if nested:
                        restore()
                if not self.result.problems:
                    self._check_deferred()
                self._follow_ups()
                if self.result.problems or self.result.dry_run:
                    raise _Rollback
        except _Rollback:
            pass
        except DatabaseError as error:
            # At commit: a rule checked there that _check_deferred did not see coming. The
            # transaction is rolled back; report, never raise.
            self._report_deferred(error)
        return self.result

    # the trigger queue ----------------------------------------------------------------

    def _short_trigger_queue(self) -> Callable[[], None]:
        """Keep PostgreSQL's queue of deferred trigger events short while the import
        writes; returns what puts the session's settings back.

        Every row trigger of django-pgtrigger and django-pghistory reads a session setting
        in a PL/pgSQL ``BEGIN … EXCEPTION`` block (``pgtrigger.ignore``,
        ``pghistory.context_id``); an unset one raises there, which rolls back a
        subtransaction, and each such rollback walks the transaction's whole queue of
        deferred trigger events (AfterTriggerEndSubXact). Django's foreign keys are
        ``DEFERRABLE INITIALLY DEFERRED``, so each row written queued its checks there until
        commit: time per row grew with the rows already written in the file (issue 32,
        docs/benchmarks.md "Import"). So for the import's transaction:

        - ``pgtrigger.ignore`` is set to the empty list (nothing is ignored; the setting now
          reads without an error, so pgtrigger's triggers roll nothing back);
        - the foreign keys of the tables the import writes are checked at the end of each
          statement (``SET CONSTRAINTS … IMMEDIATE``) instead of queued: the same rules,
          checked sooner; a batch that breaks one is written again row by row and the row
          named, as for any other rule;
        - the procedures' "at least one treated level" rule stays deferred (levels are
          written after their procedure) and is run once the levels are written
          (``_check_levels_now``).
        """
        tables = [
            model._meta.db_table
            for model in (
                Patient,
                Procedure,
                TreatedLevel,
                QuestionnaireResponse,
                Complication,
                FollowUp,
            )
        ]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND condeferrable "
                "AND condeferred AND conrelid = ANY(%s::regclass[]) ORDER BY conname",
                [tables],
            )
            foreign_keys = [name for (name,) in cursor.fetchall()]
            cursor.execute("SELECT current_setting('pgtrigger.ignore', true)")
            (ignore,) = cursor.fetchone()
            cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")
            if foreign_keys:
                cursor.execute(f"SET CONSTRAINTS {_names(foreign_keys)} IMMEDIATE")

        def restore() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [ignore or ""])
                if foreign_keys:
                    cursor.execute(f"SET CONSTRAINTS {_names(foreign_keys)} DEFERRED")

        return restore

    def _check_levels_now(self, *, top_level: bool) -> None:
        """Run the deferred "a procedure has at least one treated level" checks of the
        procedures written so far, now that their levels are written, and drop them from the
        queue (PostgreSQL frees fired events only outside a savepoint: ``top_level``).

        Only when every procedure written has a level: otherwise the rule fails, and it is
        left to ``_check_deferred``, which names every such procedure as before."""
        if not top_level or self.result.problems:
            return
        written = {
            row.instance.pk
            for row in self.rows["procedures"]
            if row.is_new and not row.failed and row.instance is not None and row.instance.pk
        }
        with_levels = {level.procedure_id for level in self.levels.values() if level.pk}
        if not written or written - with_levels:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 't' AND condeferred "
                "AND conrelid = %s::regclass ORDER BY conname",
                [Procedure._meta.db_table],
            )
            rules = [name for (name,) in cursor.fetchall()]
            if rules:
                cursor.execute(f"SET CONSTRAINTS {_names(rules)} IMMEDIATE")
                cursor.execute(f"SET CONSTRAINTS {_names(rules)} DEFERRED")

    def _each(self, rows: list[Row]) -> Iterable[Row]:
        """``rows``, telling the progress callback every 500."""
        for done, row in enumerate(rows, start=1):
            yield row
            if self.progress and done % 500 == 0:
                self.progress(500)
        if self.progress and len(rows) % 500:
            self.progress(len(rows) % 500)

    def total_rows(self) -> int:
        return sum(len(sheet.rows) for sheets in self.sheets.values() for sheet in sheets)

    def _allowed_sites(self) -> Iterable[Site]:
        sites = Site.objects.all() if self.user is None else Site.objects.for_user(self.user)
        if self.site_code:
            sites = sites.filter(code__iexact=self.site_code)
        return sites

    # rows ------------------------------------------------------------------------------

    def _rows(self, table: Table, sheet: Sheet) -> list[Row]:
        known = set(table.keys) | set(table.fields) | set(table.context)
        unknown = [h for h in sheet.headers if h not in known]
        if "" in sheet.headers:
            self.problem(None, sheet.name, "", "", "a column has no name in the header row")
        takes = [*table.keys, *table.fields]
        for name in unknown:
            if name:
                close = difflib.get_close_matches(name.lower(), sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]}?)" if close else ""
                self.problem(
                    None,
                    sheet.name,
                    name,
                    "",
                    f"unknown column{hint}: {table.name} takes {', '.join(takes)}",
                )
        duplicates = {h for h in sheet.headers if sheet.headers.count(h) > 1}
        for name in duplicates:
            self.problem(None, sheet.name, name, "", "the column appears twice")
        missing = [c for c in table.required() if c not in sheet.headers]
        if "site" in missing and self.site_code:
            missing.remove("site")
        for name in missing:
            self.problem(None, sheet.name, name, "", "required column is missing")
        ignored = [h for h in sheet.headers if h in table.context]
        if ignored:
            self.result.ignored_columns[sheet.name] = ignored
        self.result.tables.setdefault(table.name, TableResult())
        if unknown or missing or duplicates or "" in sheet.headers:
            return []
        return [
            Row(table, line, dict(zip(sheet.headers, values, strict=False)))
            for line, values in sheet.rows
        ]

    def _fill(self, row: Row, instance: models.Model, *, existing: bool) -> dict:
        """Parse ``row``'s field columns into ``instance``; returns the parsed values."""
        values = {}
        for name in row.table.fields:
            if name not in row.cells:
                continue  # absent column: the default for a new row, unchanged otherwise
            model_field = row.table.model._meta.get_field(name)
            try:
                values[name] = parse_cell(model_field, row.cells[name])
            except CellError as error:
                self.problem(row, row.table.name, name, row.cells[name], str(error))
                row.bad_columns.add(name)  # said once: not again as "cannot be null"
                continue
        for name, value in values.items():
            if existing and _same(getattr(instance, name), value):
                continue
            if existing:
                row.changed_fields.append(name)
                row.old.setdefault(name, getattr(instance, name))
            setattr(instance, name, value)
        return values

    def _validate(self, row: Row, exclude: list[str], columns: dict[str, str] | None = None):
        """``full_clean()`` without the database queries that the write itself checks (unique
        and check constraints, foreign keys we set ourselves)."""
        try:
            row.instance.full_clean(
                exclude=exclude, validate_unique=False, validate_constraints=False
            )
        except ValidationError as error:
            self._report_validation(row, error, columns or {})

    def _report_validation(self, row: Row, error: ValidationError, columns: dict[str, str]):
        for name, errors in error.error_dict.items():
            column = columns.get(name, name if name != NON_FIELD_ERRORS else "")
            if column in row.bad_columns:
                continue
            value = row.cells.get(column, "")
            for each in errors:
                message = " ".join(each.messages)
                if each.code == "invalid_choice":
                    message += f" Allowed: {_allowed_codes(row.table.model, name)}."
                self.problem(row, row.table.name, column, value, message)

    def _key_text(self, row: Row, *names: str) -> tuple:
        return tuple(_text(row.cells.get(name)) for name in names)

    def _date_key(self, row: Row, column: str, *, required: bool = True):
        raw = row.cells.get(column)
        if raw in (None, "") and not required:
            return None
        try:
            value = parse_cell(models.DateField(), raw)
        except CellError as error:
            self.problem(row, row.table.name, column, raw, str(error))
            return False
        if value is None:
            self.problem(row, row.table.name, column, raw, "required")
            return False
        return value

    def _duplicate(self, seen: dict, row: Row, key: tuple) -> bool:
        if key in seen:
            self.problem(
                row,
                row.table.name,
                ", ".join(row.table.keys[: len(key)]),
                " ".join(map(_shown, key)),
                f"the same row (by its key) is already in row {seen[key]}",
            )
            return True
        seen[key] = row.line
        return False

    def _preload(self, rows: list[Row]) -> None:
        """Load, in a few queries, what the registry holds already for the patients these
        rows name: the patients, their procedures, levels, responses and complications."""
        ids = {_text(row.cells.get("registry_id")) for row in rows} - set(self.patients)
        for start in range(0, len(ids), 10_000):
            chunk = sorted(ids)[start : start + 10_000]
            patients = Patient.objects.select_related("site").filter(registry_id__in=chunk)
            patient_by_pk = {}
            for patient in patients:
                self.patients[patient.registry_id] = patient
                patient_by_pk[patient.pk] = patient
            procedures = Procedure.objects.filter(patient__registry_id__in=chunk).order_by("pk")
            by_pk = {}
            for procedure in procedures:
                procedure.patient = patient_by_pk[procedure.patient_id]
                key = (procedure.patient.registry_id, procedure.date)
                if key in self.procedures:
                    self.ambiguous.add(key)
                self.procedures[key] = procedure
                by_pk[procedure.pk] = procedure
            for level in TreatedLevel.objects.filter(procedure_id__in=list(by_pk)):
                procedure = by_pk[level.procedure_id]
                level.procedure = procedure
                self.levels[(procedure.patient.registry_id, procedure.date, level.level)] = level
            responses = QuestionnaireResponse.objects.filter(procedure_id__in=list(by_pk))
            for response in responses:
                response.procedure = by_pk[response.procedure_id]
                self.responses[(response.procedure_id, response.timepoint)] = response
            complications = Complication.objects.filter(patient__registry_id__in=chunk)
            for complication in complications.order_by("pk"):
                key = (
                    complication.patient_id,
                    complication.date,
                    complication.type,
                    complication.procedure_id,
                    complication.treated_level_id,
                )
                self.complications.setdefault(key, []).append(complication)

    def _patient(self, row: Row) -> Patient | None:
        registry_id = _text(row.cells.get("registry_id"))
        patient = self.patients.get(registry_id)
        if patient is not None and patient.site.code not in self.sites:
            patient = None
        if patient is None:
            self.problem(
                row,
                row.table.name,
                "registry_id",
                registry_id,
                "no such patient in the patients table or at your sites",
            )
        elif patient.pk is None:
            self.problem(
                row,
                row.table.name,
                "registry_id",
                registry_id,
                "the patient's own row has problems (see the patients table)",
            )
            return None
        return patient

    def _procedure(self, row: Row, column: str = "procedure_date", required: bool = True):
        patient = self._patient(row)
        day = self._date_key(row, column, required=required)
        if patient is None or day is False or day is None:
            return patient, None, day
        key = (patient.registry_id, day)
        procedure = self.procedures.get(key)
        if key in self.ambiguous:
            self.problem(
                row,
                row.table.name,
                column,
                day,
                "this patient has two procedures on this date: enter this row in the admin",
            )
            return patient, None, day
        if procedure is None:
            self.problem(
                row,
                row.table.name,
                column,
                day,
                "no procedure of this patient on this date in the procedures table or the registry",
            )
        elif procedure.pk is None:
            self.problem(
                row,
                row.table.name,
                column,
                day,
                "the procedure's own row has problems (see the procedures table)",
            )
            return patient, None, day
        return patient, procedure, day

    # per table -------------------------------------------------------------------------

    def _import_patients(self, rows: list[Row]) -> None:
        seen: dict = {}
        self._preload(rows)
        for row in self._each(rows):
            registry_id = _text(row.cells.get("registry_id"))
            if self._duplicate(seen, row, (registry_id,)):
                continue
            site_code = (_text(row.cells.get("site")) or self.site_code).upper()
            if self.site_code and site_code != self.site_code.upper():
                self.problem(
                    row,
                    "patients",
                    "site",
                    site_code,
                    f"this import is for site {self.site_code} only",
                )
                continue
            site = self.sites.get(site_code)
            if site is None:
                self.problem(row, "patients", "site", site_code, "not one of your sites")
                continue
            patient = self.patients.get(registry_id)
            if patient is not None and patient.site_id != site.pk:
                self.problem(
                    row,
                    "patients",
                    "registry_id",
                    registry_id,
                    "this registry id belongs to a patient at another site",
                )
                continue
            row.is_new = patient is None
            if row.is_new:
                patient = Patient(registry_id=registry_id, site=site)
            row.instance = patient
            self._fill(row, patient, existing=not row.is_new)
            # Not the columns the database derives (the index procedure: a look-up per
            # patient already in the registry, of a value the import never writes).
            self._validate(row, exclude=["site", *Patient.derived_fields])
            self.patients[registry_id] = patient
            row.key = (registry_id,)
        self._write(rows)

    def _import_procedures(self, rows: list[Row]) -> None:
        seen: dict = {}
        self._preload(rows)
        for row in self._each(rows):
            patient = self._patient(row)
            day = self._date_key(row, "procedure_date")
            if patient is None or day is False:
                continue
            site = _text(row.cells.get("site"))
            if site and site.upper() != patient.site.code.upper():
                self.problem(
                    row, "procedures", "site", site, f"the patient is at site {patient.site.code}"
                )
            key = (patient.registry_id, day)
            if self._duplicate(seen, row, key):
                continue
            if key in self.ambiguous:
                self.problem(
                    row,
                    "procedures",
                    "procedure_date",
                    day,
                    "this patient has two procedures on this date: change it in the admin",
                )
                continue
            procedure = self.procedures.get(key)
            row.is_new = procedure is None
            if row.is_new:
                procedure = Procedure(date=day, patient=patient)
            row.instance = procedure
            self._fill(row, procedure, existing=not row.is_new)
            self._validate(row, exclude=["patient"], columns={"date": "procedure_date"})
            self.procedures[key] = procedure
            row.key = key
        self._write(rows)

    def _import_levels(self, rows: list[Row]) -> None:
        seen: dict = {}
        self._preload(rows)
        for row in self._each(rows):
            patient, procedure, day = self._procedure(row)
            try:
                level = _parse_level(row.cells.get("level"))
            except CellError as error:
                self.problem(row, "levels", "level", row.cells.get("level"), str(error))
                continue
            if level is None:
                self.problem(row, "levels", "level", "", "required")
                continue
            if procedure is None:
                continue
            key = (patient.registry_id, day, level)
            if self._duplicate(seen, row, key):
                continue
            instance = self.levels.get(key)
            row.is_new = instance is None
            if row.is_new:
                instance = TreatedLevel(level=level, procedure=procedure)
            row.instance = instance
            self._fill(row, instance, existing=not row.is_new)
            self._validate(row, exclude=["procedure"])
            self.levels[key] = instance
            row.key = (patient.registry_id, day, TreatedLevel.Level(level).label)
        self._write(rows)

    def _import_responses(self, rows: list[Row]) -> None:
        seen: dict = {}
        self._preload(rows)
        timepoints = set(Timepoint.values)
        for row in self._each(rows):
            patient, procedure, day = self._procedure(row)
            timepoint = _text(row.cells.get("timepoint"))
            if timepoint not in timepoints:
                self.problem(
                    row,
                    "responses",
                    "timepoint",
                    timepoint,
                    f"one of {', '.join(Timepoint.values)}",
                )
                continue
            if procedure is None:
                continue
            if self._duplicate(seen, row, (patient.registry_id, day, timepoint)):
                continue
            response = self.responses.get((procedure.pk, timepoint))
            row.is_new = response is None
            if row.is_new:
                response = QuestionnaireResponse(
                    procedure=procedure, timepoint=timepoint, entered_by=self.entered_by
                )
            row.instance = response
            before = {name: getattr(response, name) for name in SCORE_FIELDS}
            self._fill(row, response, existing=not row.is_new)
            if row.failed:
                continue
            if row.is_new and response.mode == QuestionnaireResponse.Mode.WEB_LINK:
                response.entered_by = None  # the patient entered them through their link
            # The file's value set is only a hint: response_score takes the site's when the
            # site uses the version answered, and keeps this one otherwise.
            try:
                response_score(response=response)
            except (ValueError, KeyError) as error:
                rule = str(error)
                if isinstance(error, KeyError):
                    rule = (
                        f"EQ-5D-{response.eq5d_version} answers at a site that uses another "
                        "version need their value set in eq5d_value_set"
                    )
                self.problem(row, "responses", "eq5d_value_set", response.eq5d_value_set, rule)
                continue
            if not row.is_new:
                # The value set is judged after scoring, like the scores.
                row.changed_fields = [f for f in row.changed_fields if f not in SCORE_FIELDS]
                for name in SCORE_FIELDS:
                    differs = not _same(before[name], getattr(response, name))
                    if differs and name not in row.changed_fields:
                        row.changed_fields.append(name)
                        row.old[name] = before[name]
                if row.changed_fields:
                    row.changed_fields.append("scored_at")
            self._validate(row, exclude=["procedure", "entered_by"])
            row.key = (patient.registry_id, day, timepoint)
        self._write(rows)

    def _import_complications(self, rows: list[Row]) -> None:
        seen: dict = {}
        self._preload(rows)
        for row in self._each(rows):
            patient, procedure, procedure_day = self._procedure(row, required=False)
            if patient is None or procedure_day is False:
                continue
            if procedure_day is not None and procedure is None:
                continue
            day = self._date_key(row, "date")
            if day is False:
                continue
            kind = _text(row.cells.get("type"))
            try:
                level = _parse_level(row.cells.get("level"))
            except CellError as error:
                self.problem(row, "complications", "level", row.cells.get("level"), str(error))
                continue
            treated_level = None
            if level is not None:
                if procedure is None:
                    self.problem(
                        row,
                        "complications",
                        "level",
                        row.cells.get("level"),
                        "a level needs the procedure_date of its procedure",
                    )
                    continue
                treated_level = self.levels.get((patient.registry_id, procedure_day, level))
                if treated_level is None or treated_level.pk is None:
                    self.problem(
                        row,
                        "complications",
                        "level",
                        row.cells.get("level"),
                        "this level was not treated in that procedure",
                    )
                    continue
            key = (patient.registry_id, day, kind, procedure_day, level)
            if self._duplicate(seen, row, key):
                continue
            found = self.complications.get(
                (
                    patient.pk,
                    day,
                    kind,
                    procedure.pk if procedure else None,
                    treated_level.pk if treated_level else None,
                ),
                [],
            )
            if len(found) > 1:
                self.problem(
                    row,
                    "complications",
                    "type",
                    kind,
                    "two such complications are recorded: change them in the admin",
                )
                continue
            row.is_new = not found
            complication = found[0] if found else Complication(date=day, type=kind)
            complication.patient = patient
            complication.procedure = procedure
            complication.treated_level = treated_level
            row.instance = complication
            self._fill(row, complication, existing=not row.is_new)
            self._validate(row, exclude=["patient", "procedure", "treated_level"])
            label = TreatedLevel.Level(level).label if level else None
            row.key = (patient.registry_id, day, kind, procedure_day, label)
        self._write(rows)

    # writing ---------------------------------------------------------------------------

    def _write(self, rows: list[Row]) -> None:
        """Create the new rows and update the changed ones in batches; a batch that breaks a
        database rule is written again row by row to name the rows."""
        if not rows:
            return
        table = rows[0].table
        tally = self.result.tables[table.name]
        good = [row for row in rows if not row.failed and row.instance is not None]
        new = [row for row in good if row.is_new]
        changed = [row for row in good if not row.is_new and row.changed_fields]
        tally.unchanged += sum(1 for row in good if not row.is_new and not row.changed_fields)
        for start in range(0, len(new), BATCH_SIZE):
            batch = new[start : start + BATCH_SIZE]
            try:
                with transaction.atomic():
                    table.model.objects.bulk_create([row.instance for row in batch])
            except DatabaseError:
                for row in batch:
                    row.instance.pk = None
                    row.instance._state.adding = True
                self._one_by_one(batch, lambda row: row.instance.save(force_insert=True))
        updated_fields = sorted({name for row in changed for name in row.changed_fields})
        for start in range(0, len(changed), BATCH_SIZE):
            batch = changed[start : start + BATCH_SIZE]
            try:
                with transaction.atomic():
                    table.model.objects.bulk_update([row.instance for row in batch], updated_fields)
            except DatabaseError:
                self._one_by_one(
                    batch, lambda row: row.instance.save(update_fields=row.changed_fields)
                )
        tally.created += sum(1 for row in new if not row.failed)
        tally.changed += sum(1 for row in changed if not row.failed)
        for row in changed:
            if not row.failed:
                what = ", ".join(
                    f"{name} {_shown(row.old.get(name))!r} → "
                    f"{_shown(getattr(row.instance, name))!r}"
                    for name in row.changed_fields
                    if name in row.old
                )
                tally.changes.append(f"{' '.join(_shown(k) for k in row.key if k)}: {what}")

    def _one_by_one(self, batch: list[Row], save: Callable[[Row], None]) -> None:
        for row in batch:
            try:
                with transaction.atomic():
                    save(row)
            except (IntegrityError, DatabaseError) as error:
                row.instance.pk = None if row.is_new else row.instance.pk
                self._report_database(row, error)

    def _report_database(self, row: Row, error: DatabaseError) -> None:
        diag = getattr(getattr(error, "__cause__", None), "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        message = getattr(diag, "message_primary", None) or str(error).splitlines()[0]
        columns = _constraint_columns(row.table.model, constraint)
        column = next((c for c in columns if c in row.cells), columns[0] if columns else "")
        for declared in row.table.model._meta.constraints:
            # A constraint that words its own message (violation_error_message) says it.
            custom = declared.violation_error_message
            if declared.name == constraint and custom != declared.default_violation_error_message:
                message = str(declared.get_violation_error_message())
        self.problem(
            row,
            row.table.name,
            column,
            row.cells.get(column, ""),
            f"database rule {constraint}: {message}" if constraint else message,
        )

    # rules checked at commit -------------------------------------------------------------

    def _check_deferred(self) -> None:
        """Run now what the database would check at commit (deferred constraint triggers
        such as ``procedure_has_a_level``, deferred foreign keys), so a dry run judges every
        rule the real run does and a violation is a problem naming its row, not an error at
        commit.

        In a savepoint that is always rolled back: the mode set by SET CONSTRAINTS survives
        the release of a savepoint and even the rollback of an enclosing one, so it would
        leak into the caller's transaction (a preview followed by the real import in one
        request would then check each batch before its levels were written). Only a rolled
        back savepoint restores it; the checks then run once more at commit."""
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                raise _Rollback
        except _Rollback:
            pass
        except DatabaseError as error:
            self._report_deferred(error)

    def _report_deferred(self, error: DatabaseError) -> None:
        """Name the rows that break the rule of ``error``: PostgreSQL stops at the first
        one, so for the rules we know, every offending row is found and listed."""
        diag = getattr(getattr(error, "__cause__", None), "diag", None)
        constraint = getattr(diag, "constraint_name", None) or ""
        message = getattr(diag, "message_primary", None) or str(error).splitlines()[0]
        if constraint == "procedure_has_a_level":
            ids = {row.instance.pk: row for row in self.rows["procedures"] if row.instance}
            empty = Procedure.objects.filter(pk__in=[pk for pk in ids if pk]).exclude(
                pk__in=TreatedLevel.objects.values("procedure_id")
            )
            rows = [ids[pk] for pk in empty.values_list("pk", flat=True)]
            if rows:
                for row in sorted(rows, key=lambda row: row.line):
                    self.problem(
                        row,
                        "procedures",
                        "procedure_date",
                        row.cells.get("procedure_date", ""),
                        f"database rule {constraint}: this procedure has no treated level; "
                        "add its levels to the levels table (same registry id and procedure "
                        "date)",
                    )
                return
        self.problem(
            None, "", "", "", f"database rule {constraint}: {message}" if constraint else message
        )

    # follow-ups ------------------------------------------------------------------------

    def _follow_ups(self) -> None:
        """Give imported procedures their follow-up schedule and complete the follow-ups
        whose answers were imported (as ``followup_complete`` does for one response).

        The same rows as ``followups_ensure`` and one ``followup_complete`` per answer would
        write, found through the indexes on ``procedure_id`` only: a fixed number of
        statements per ``FOLLOW_UP_CHUNK`` procedures, whose cost does not grow with the
        follow-ups and answers the registry already holds (issue 32)."""
        if self.result.problems:
            return
        procedure_ids = sorted({p.pk for p in self.procedures.values() if p.pk})
        for start in range(0, len(procedure_ids), FOLLOW_UP_CHUNK):
            chunk = procedure_ids[start : start + FOLLOW_UP_CHUNK]
            self._schedule(chunk)
            self._complete_answered(chunk)

    def _schedule(self, procedure_ids: list[int]) -> None:
        """``followups_ensure`` for ``procedure_ids``: a procedure without its baseline or
        12-month follow-up gets every missing one of its schedule; follow-ups not started
        whose dates no longer match their procedure's date take the schedule's."""
        have: dict[int, set[str]] = {}
        for procedure_id, timepoint in FollowUp.objects.filter(
            procedure_id__in=procedure_ids
        ).values_list("procedure_id", "timepoint"):
            have.setdefault(procedure_id, set()).add(timepoint)
        dates = {p.pk: p.date for p in self.procedures.values() if p.pk}
        missing = [
            FollowUp(
                procedure_id=procedure_id,
                timepoint=planned.timepoint,
                due_date=planned.due_date,
                window_start=planned.window_start,
                window_end=planned.window_end,
            )
            for procedure_id in procedure_ids
            if not {"baseline", "month_12"} <= have.get(procedure_id, set())
            for planned in schedule_for(dates[procedure_id])
            if planned.timepoint not in have.get(procedure_id, set())
        ]
        FollowUp.objects.bulk_create(missing, batch_size=2000, ignore_conflicts=True)
        day = datetime.timedelta(days=1)
        moved = models.Q()
        for plan in PLAN:
            moved |= models.Q(timepoint=plan.timepoint) & ~models.Q(
                due_date=models.F("procedure__date") + plan.due_offset * day
            )
        stale = FollowUp.objects.filter(
            moved, procedure_id__in=procedure_ids, state=FollowUp.State.SCHEDULED
        ).order_by()
        for followup_id, timepoint, procedure_date in stale.values_list(
            "pk", "timepoint", "procedure__date"
        ):
            (planned,) = [d for d in schedule_for(procedure_date) if d.timepoint == timepoint]
            FollowUp.objects.filter(pk=followup_id, state=FollowUp.State.SCHEDULED).update(
                due_date=planned.due_date,
                window_start=planned.window_start,
                window_end=planned.window_end,
            )

    def _complete_answered(self, procedure_ids: list[int]) -> None:
        """Complete, in one statement, the follow-ups of ``procedure_ids`` that have answers
        (imported now or before): joined on the answers' (procedure, timepoint) pairs through
        the follow-ups' unique index, not by scanning the answers per timepoint."""
        pairs = list(
            QuestionnaireResponse.objects.filter(procedure_id__in=procedure_ids)
            .order_by()
            .values_list("procedure_id", "timepoint")
        )
        if not pairs:
            return
        quote = connection.ops.quote_name
        table = quote(FollowUp._meta.db_table)
        sql = (
            f"UPDATE {table} AS f SET state = %s, completed_at = %s, cancel_reason = '' "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::text[]) AS a(procedure_id, timepoint) "
            "WHERE f.procedure_id = a.procedure_id AND f.timepoint = a.timepoint "
            "AND f.state <> %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(
                sql,
                [
                    str(FollowUp.State.COMPLETED),
                    self.now,
                    [procedure_id for procedure_id, _timepoint in pairs],
                    [str(timepoint) for _procedure_id, timepoint in pairs],
                    str(FollowUp.State.COMPLETED),
                ],
            )


def _names(constraints: list[str]) -> str:
    return ", ".join(connection.ops.quote_name(name) for name in constraints)


def _allowed_codes(model, name: str) -> str:
    model_field = model._meta.get_field(name)
    base = model_field.base_field if isinstance(model_field, ArrayField) else model_field
    return ", ".join(str(value) for value, _label in base.choices or ())


def _same(old, new) -> bool:
    if isinstance(old, Decimal) or isinstance(new, Decimal):
        if old is None or new is None:
            return old is new
        return Decimal(old) == Decimal(new)
    if isinstance(old, list | tuple) or isinstance(new, list | tuple):
        return list(old or []) == list(new or [])
    return old == new


def _constraint_columns(model, name: str) -> list[str]:
    """The fields a named constraint of ``model`` is about (for a problem's column)."""
    for constraint in model._meta.constraints:
        if constraint.name != name:
            continue
        if isinstance(constraint, models.UniqueConstraint):
            return list(constraint.fields)
        return list(dict.fromkeys(_condition_fields(getattr(constraint, "condition", None))))
    # Trigger-enforced rules name the date they guard.
    if name.startswith("procedure_date") or name.startswith("complication_procedure"):
        return ["procedure_date", "date"]
    if name.startswith("patient_death"):
        return ["date_of_death"]
    return []


def _condition_fields(node) -> list[str]:
    names = []
    for child in getattr(node, "children", []):
        if isinstance(child, tuple):
            names.append(child[0].split("__")[0])
        else:
            names += _condition_fields(child)
    return names


def cases_import(
    *,
    files: list[tuple[str, bytes]],
    user=None,
    site_code: str = "",
    dry_run: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    entered_by=None,
) -> ImportResult:
    """Import ``files`` ((name, content) pairs) whole or not at all (module docstring).

    ``user`` limits the sites (None: every site, for the command line) and is recorded as
    having entered new answers (or ``entered_by``); ``site_code`` limits the sites to one
    and fills a missing site column. Raises ``ImportFileError`` for a file that
    is not a table at all.
    """
    importer = Importer(user=user, site_code=site_code, dry_run=dry_run, entered_by=entered_by)
    for name, content in files:
        importer.add_file(name, content)
    if on_start:
        on_start(importer.total_rows())
    if (
        user is not None
        and not is_registry_manager(user)
        and not user.has_perms(["registry.add_patient", "registry.change_patient"])
    ):
        importer.problem(None, "", "", "", "your role may not import cases")
        return importer.result
    return importer.run(progress=progress)
