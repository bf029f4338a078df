"""The exports as SPSS ``.sav`` and Stata ``.dta`` files, with variable and value labels.

Each file is the same query as its CSV (:func:`api.exports.export_select_sql`: same columns,
scope and filters), read row by row into a pandas frame and written by pyreadstat (ReadStat).
Labels come from the data dictionary (:func:`api.exports.dictionary_entry`), so the three
formats describe a column alike:

- a column with a fixed set of values (a model field's choices, the cohort, the level) becomes
  a numeric variable with value labels: integer choices keep their number (CIRSE grade 3 is
  3), text choices are numbered 1, 2, … in the order the dictionary lists them (levels
  cranial to caudal: C2 = 1 … S1 = 24), each labelled with its readable name;
- a true/false column becomes 0/1 labelled "No"/"Yes";
- integers and decimals are numeric, dates are dates, lists and free text are strings;
- an empty cell is a system-missing value.

Every column's storage type is set here from the dictionary, never guessed by pyreadstat
(which types an untyped column from its first rows, so a date column whose first hundred rows
are empty became text and the export failed): codes, flags and numbers are float64; dates and
timestamps are float64 counts in the format's own epoch with an explicit date or date-time
format (``TEMPORAL``); text is always ``str``.

The variable label is the dictionary's label with its unit, e.g. "Cement volume (mL)",
shortened at a word boundary (with "...") where a format limits it: Stata's 80 characters,
SPSS's 120-byte value labels. Numbers are displayed with the dictionary's decimals (EQ-5D
index F8.3 / %8.3f, ODI 1 decimal, integers none).
"""

from __future__ import annotations

import datetime
import os
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
import pyreadstat
from django.db import connection
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request

from api.exports import (
    Export,
    column_choices,
    column_decimals,
    dictionary_entry,
    export_select_sql,
)
from api.models import ExportLog
from api.services import export_log_finish, export_log_start
from api.views import ExportView, logged_filters

STATA_LABEL_MAX = 80
SPSS_VALUE_LABEL_MAX = 120  # bytes
SPSS_LABEL_MAX = 256  # bytes
YES_NO = {0: "No", 1: "Yes"}


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes, cut at a word boundary with "..." when it
    is longer: never mid-word."""
    if len(text.encode()) <= limit:
        return text
    room = limit - 3
    cut = text.encode()[:room].decode(errors="ignore")
    if " " in cut and not text[len(cut) : len(cut) + 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:–-") + "..."


@dataclass(frozen=True)
class Format:
    suffix: str
    content_type: str
    title: str


SPSS = Format("sav", "application/x-spss-sav", "SPSS")
STATA = Format("dta", "application/x-stata-dta", "Stata")
FORMATS = {f.suffix: f for f in (SPSS, STATA)}


# Dates and timestamps as numbers in each format's epoch and unit, with the format that makes
# SPSS and Stata show them as dates: SPSS counts seconds from 14 October 1582; Stata counts
# days (%td) or milliseconds (%tc) from 1 January 1960.
SPSS_EPOCH = datetime.datetime(1582, 10, 14)
STATA_EPOCH = datetime.datetime(1960, 1, 1)
TEMPORAL = {
    # kind: {suffix: (epoch, seconds per unit, display format)}
    "date": {"sav": (SPSS_EPOCH, 1, "DATE11"), "dta": (STATA_EPOCH, 86400, "%td")},
    "datetime": {"sav": (SPSS_EPOCH, 1, "DATETIME20"), "dta": (STATA_EPOCH, 0.001, "%tc")},
}


@dataclass
class Variable:
    name: str
    label: str
    kind: str  # code, boolean, number, date, datetime, text
    codes: dict = field(default_factory=dict)  # file value -> numeric code
    value_labels: dict = field(default_factory=dict)  # numeric code -> label
    decimals: int | None = None  # display decimals of a number


def _choices(export: Export, column) -> tuple:
    return column_choices(export, column)


def variables(export: Export) -> list[Variable]:
    """How each column of ``export`` is written to SPSS and Stata."""
    result = []
    for column in export.columns:
        entry = dictionary_entry(export, column)
        unit = f" ({entry['unit']})" if entry["unit"] else ""
        label = entry["label"] + (unit if unit.strip() not in entry["label"] else "")
        choices = _choices(export, column)
        kind = entry["type"].split(" ")[0]
        if choices:
            numbered = all(isinstance(value, int) for value, _label in choices)
            codes = {
                value: (value if numbered else position)
                for position, (value, _label) in enumerate(choices, start=1)
            }
            labels = {codes[value]: str(text) for value, text in choices}
            result.append(Variable(column.name, label, "code", codes, labels))
        elif kind == "boolean":
            result.append(Variable(column.name, label, "boolean", value_labels=YES_NO))
        elif kind in ("integer", "decimal"):
            decimals = column_decimals(export, column)
            result.append(Variable(column.name, label, "number", decimals=decimals))
        elif kind == "date":
            result.append(Variable(column.name, label, "date"))
        elif kind == "timestamp":
            result.append(Variable(column.name, label, "datetime"))
        else:
            result.append(Variable(column.name, label, "text"))
    return result


def _moment(value) -> datetime.datetime | None:
    """A date or a timestamp as a naive UTC date-time (dates at midnight)."""
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value
    return datetime.datetime.combine(value, datetime.time())


def _convert(variable: Variable, values: list, fmt: Format) -> pd.Series:
    if variable.kind == "code":
        codes = [
            None if value in (None, "") else variable.codes[_key(value, variable)]
            for value in values
        ]
        return pd.Series(codes, dtype="float64")
    if variable.kind == "boolean":
        flags = {"true": 1, "false": 0, True: 1, False: 0}
        return pd.Series([flags.get(value) for value in values], dtype="float64")
    if variable.kind == "number":
        return pd.Series(
            [None if value is None else float(value) for value in values], dtype="float64"
        )
    if variable.kind in TEMPORAL:
        epoch, unit, _format = TEMPORAL[variable.kind][fmt.suffix]
        moments = [_moment(value) for value in values]
        return pd.Series(
            [None if m is None else (m - epoch).total_seconds() / unit for m in moments],
            dtype="float64",
        )
    return pd.Series(["" if value is None else str(value) for value in values], dtype=object)


def _key(value, variable: Variable):
    """The choice a stored value stands for (integer choices come back as int or Decimal)."""
    if isinstance(value, Decimal):
        value = int(value)
    if value not in variable.codes:
        raise ValueError(f"{variable.name}: {value!r} is not one of its allowed values")
    return value


def export_frame(export: Export, queryset, fmt: Format) -> tuple[pd.DataFrame, list[Variable]]:
    """The rows of ``export`` over ``queryset`` (scoped and filtered) as a frame typed for
    ``fmt``: every column's type set from the dictionary, none left for pyreadstat to guess."""
    sql, params = export_select_sql(export, queryset)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    described = variables(export)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in described]
    frame = pd.DataFrame(
        {
            v.name: _convert(v, list(values), fmt)
            for v, values in zip(described, columns, strict=True)
        }
    )
    return frame, described


def write(frame: pd.DataFrame, described: list[Variable], fmt: Format, title: str) -> str:
    """Write ``frame`` to a temporary file in ``fmt``; returns its path (the caller removes
    it)."""
    handle, path = tempfile.mkstemp(suffix=f".{fmt.suffix}", prefix="registry-export-")
    os.close(handle)
    temporal = {v.name: TEMPORAL[v.kind][fmt.suffix][2] for v in described if v.kind in TEMPORAL}
    numbers = [v for v in described if v.kind == "number" and v.decimals is not None]
    if fmt is SPSS:
        measure = {
            v.name: "nominal" if v.kind in ("code", "boolean", "text") else "scale"
            for v in described
        }
        pyreadstat.write_sav(
            frame,
            path,
            file_label=shorten(title, 64),
            column_labels={v.name: shorten(v.label, SPSS_LABEL_MAX) for v in described},
            variable_value_labels={
                v.name: {c: shorten(t, SPSS_VALUE_LABEL_MAX) for c, t in v.value_labels.items()}
                for v in described
                if v.value_labels
            },
            variable_measure=measure,
            variable_format={**{v.name: f"F8.{v.decimals}" for v in numbers}, **temporal},
        )
    else:
        pyreadstat.write_dta(
            frame,
            path,
            file_label=shorten(title, STATA_LABEL_MAX),
            column_labels={v.name: shorten(v.label, STATA_LABEL_MAX) for v in described},
            variable_value_labels={v.name: v.value_labels for v in described if v.value_labels},
            variable_format={**{v.name: f"%8.{v.decimals}f" for v in numbers}, **temporal},
        )
    return path


# --- the views ------------------------------------------------------------------------------


class BinaryRenderer(BaseRenderer):
    """Lets a client ask for the file's type; errors (400, 401, 403) go out as JSON."""

    format = "bin"
    charset = None

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if isinstance(data, bytes):
            return data
        return JSONRenderer().render(data)


class StatExportView(ExportView):
    """An export as an SPSS or Stata file: same filters, scope and export log as its CSV."""

    fmt: Format

    def handle_exception(self, exc):
        # An error (400 on a bad filter, 401, 403) is JSON, whatever file was asked for.
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response

    def get(self, request: Request) -> FileResponse:
        queryset = self.filter_queryset(self.get_queryset())  # 400 on a bad filter
        name = self.export.name.removesuffix(".csv") + "." + self.fmt.suffix
        log = export_log_start(
            user=request.user,
            kind=ExportLog.Kind.EXPORT,
            resource=name,
            filters=logged_filters(request),
        )
        frame, described = export_frame(self.export, queryset, self.fmt)
        path = write(frame, described, self.fmt, self.export.title)
        handle = open(path, "rb")  # noqa: SIM115 (FileResponse closes it)
        os.unlink(path)  # the open handle keeps the data until the response is sent
        export_log_finish(log=log, rows=len(frame), completed=True)
        response = FileResponse(
            handle, as_attachment=True, filename=name, content_type=self.fmt.content_type
        )
        response["Cache-Control"] = "no-store"
        return response


def stat_export_view(export: Export, fmt: Format):
    stem = export.name.removesuffix(".csv")
    renderer = type(f"{fmt.title}Renderer", (BinaryRenderer,), {"media_type": fmt.content_type})
    view = type(
        f"{export.model.__name__}{fmt.title}Export",
        (StatExportView,),
        {
            "export": export,
            "fmt": fmt,
            "renderer_classes": [renderer, JSONRenderer],
            "__doc__": f"{export.title} ({fmt.title} file with variable and value labels)",
        },
    )
    schema = extend_schema(
        operation_id=f"export_{stem}_{fmt.suffix}",
        filters=True,
        summary=f"{export.title} ({fmt.title})",
        responses={(200, fmt.content_type): OpenApiTypes.BINARY},
    )
    return extend_schema_view(get=schema)(view)
