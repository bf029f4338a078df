"""The codebook (HTML and Word) and the R, SPSS and Stata syntax files that read the CSV
exports with their types and labels.

Everything here is written from the data dictionary (:mod:`api.exports`: the one column list
with its labels, types, allowed values and decimals), so the codebook, the syntax files, the
SPSS/Stata files and the dictionary never disagree. The codebook lists, like REDCap's, each
variable with its label, type, unit, allowed values and their labels, what an empty cell
means, and counts over the rows the reader may see (filled cells, and each coded value).
"""

from __future__ import annotations

import html
import io
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.views import APIView

from api.exports import (
    EXPORTS,
    Export,
    column_choices,
    column_decimals,
    dictionary_entry,
    export_select_sql,
)
from api.services import export_log_read
from api.statexports import STATA_LABEL_MAX, shorten
from registry.models import Patient

MISSING = "empty cell = not recorded / not applicable (system-missing in SPSS and Stata)"


@dataclass(frozen=True)
class Variable:
    name: str
    label: str
    type: str
    unit: str
    decimals: int | None
    choices: tuple  # (value, label)
    allowed: str

    @property
    def kind(self) -> str:
        """integer, decimal, date, timestamp, boolean, list or text"""
        return self.type.split(" ")[0]


def variables(export: Export) -> list[Variable]:
    result = []
    for column in export.columns:
        entry = dictionary_entry(export, column)
        result.append(
            Variable(
                name=column.name,
                label=entry["label"],
                type=entry["type"],
                unit=entry["unit"],
                decimals=column_decimals(export, column),
                choices=column_choices(export, column),
                allowed=entry["allowed"],
            )
        )
    return result


# --- counts -----------------------------------------------------------------------------------


def counts(export: Export, queryset) -> dict[str, tuple[int, Counter]]:
    """Per column: how many cells are filled, and how often each value occurs (coded and
    true/false columns only)."""
    described = variables(export)
    sql, params = export_select_sql(export, queryset)
    filled = dict.fromkeys((v.name for v in described), 0)
    values: dict[str, Counter] = {v.name: Counter() for v in described}
    tallied = [(i, v) for i, v in enumerate(described) if v.choices or v.kind == "boolean"]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(2000):
            for row in rows:
                for i, variable in enumerate(described):
                    if row[i] not in (None, ""):
                        filled[variable.name] += 1
                for i, variable in tallied:
                    value = row[i]
                    if value not in (None, ""):
                        key = int(value) if isinstance(value, Decimal) else value
                        values[variable.name][str(key)] += 1
    return {name: (filled[name], values[name]) for name in filled}


def _value_rows(variable: Variable, tally: Counter) -> list[tuple[str, str, int]]:
    if variable.choices:
        return [(str(v), str(label), tally.get(str(v), 0)) for v, label in variable.choices]
    if variable.kind == "boolean":
        return [("true", "Yes", tally.get("true", 0)), ("false", "No", tally.get("false", 0))]
    return []


# --- the codebook -------------------------------------------------------------------------------


def codebook_html(sections: list[tuple[Export, list[Variable], dict | None]]) -> str:
    """One section per export file; ``None`` counts for a file the reader may not export."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Registry codebook</title>',
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;width:100%}"
        "th,td{border:1px solid #999;padding:3px 6px;vertical-align:top;text-align:left}"
        "td.n{text-align:right}</style></head><body>",
        "<h1>Registry codebook</h1>",
        f"<p>Missing values: {html.escape(MISSING)}.</p>",
    ]
    for export, described, tallies in sections:
        out.append(f'<h2 id="{html.escape(export.name)}">{html.escape(export.name)}</h2>')
        out.append(f"<p>{html.escape(export.title)}</p>")
        out.append(
            "<table><thead><tr><th>#</th><th>Variable</th><th>Label</th><th>Type</th>"
            "<th>Unit</th><th>Values</th><th>Filled</th></tr></thead><tbody>"
        )
        for number, v in enumerate(described, start=1):
            filled, tally = tallies[v.name] if tallies else (None, Counter())
            rows = _value_rows(v, tally)
            if rows:
                values = "<br>".join(
                    f"{html.escape(code)} = {html.escape(label)}" + (f" ({n})" if tallies else "")
                    for code, label, n in rows
                )
            else:
                values = html.escape(v.allowed)
            kind = v.type + (f", {v.decimals} decimals" if v.decimals else "")
            out.append(
                f"<tr><td>{number}</td><td><code>{html.escape(v.name)}</code></td>"
                f"<td>{html.escape(v.label)}</td><td>{html.escape(kind)}</td>"
                f"<td>{html.escape(v.unit)}</td><td>{values}</td>"
                f'<td class="n">{"" if filled is None else filled}</td></tr>'
            )
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


def codebook_docx(sections: list[tuple[Export, list[Variable], dict | None]]) -> bytes:
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm

    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = Mm(297), Mm(210)  # A4 landscape
    document.add_heading("Registry codebook", level=0)
    document.add_paragraph(f"Missing values: {MISSING}.")
    for export, described, tallies in sections:
        document.add_heading(export.name, level=1)
        document.add_paragraph(export.title)
        table = document.add_table(rows=1, cols=6)
        table.style = "Table Grid"
        for cell, text in zip(
            table.rows[0].cells,
            ["Variable", "Label", "Type", "Unit", "Values", "Filled"],
            strict=True,
        ):
            cell.text = text
        _repeat_header(table.rows[0])
        for v in described:
            filled, tally = tallies[v.name] if tallies else (None, Counter())
            rows = _value_rows(v, tally)
            values = (
                "\n".join(
                    f"{code} = {label}" + (f" ({n})" if tallies else "") for code, label, n in rows
                )
                if rows
                else v.allowed
            )
            kind = v.type + (f", {v.decimals} decimals" if v.decimals else "")
            cells = table.add_row().cells
            for cell, text in zip(
                cells,
                [v.name, v.label, kind, v.unit, values, "" if filled is None else str(filled)],
                strict=True,
            ):
                cell.text = text
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _repeat_header(row) -> None:
    """Word repeats this row at the top of every page the table continues on."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    properties = row._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    properties.append(header)


# --- syntax files -------------------------------------------------------------------------------


def _r_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def r_syntax(export: Export) -> str:
    """R code that reads ``export``'s CSV with its types, factors and variable labels."""
    described = variables(export)
    classes = {
        "integer": "integer",
        "decimal": "numeric",
    }
    col_classes = ", ".join(
        f"{v.name} = {_r_string(classes.get(v.kind, 'character'))}" for v in described
    )
    lines = [
        f"# {export.name}: {export.title}",
        "# Written by the registry from its data dictionary. Run with the CSV file in the",
        "# working directory (or change `path`).",
        f"path <- {_r_string(export.name)}",
        'd <- utils::read.csv(path, na.strings = "", encoding = "UTF-8",',
        f"                     colClasses = c({col_classes}))",
    ]
    for v in described:
        name = f"d${v.name}" if v.name.isidentifier() else f"d[[{_r_string(v.name)}]]"
        if v.choices:
            levels = ", ".join(
                str(c) if isinstance(c, int) else _r_string(str(c)) for c, _label in v.choices
            )
            labels = ", ".join(_r_string(label) for _c, label in v.choices)
            lines.append(f"{name} <- factor({name}, levels = c({levels}), labels = c({labels}))")
        elif v.kind == "boolean":
            lines.append(f'{name} <- {name} == "true"')
        elif v.kind == "date":
            lines.append(f"{name} <- as.Date({name})")
        elif v.kind == "timestamp":
            lines.append(
                f'{name} <- as.POSIXct(sub("\\\\+00$", "", {name}), tz = "UTC", '
                'format = "%Y-%m-%d %H:%M:%OS")'
            )
        lines.append(f'attr({name}, "label") <- {_r_string(v.label)}')
    return "\n".join(lines) + "\n"


def _spss_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def spss_syntax(export: Export) -> str:
    """SPSS syntax that reads ``export``'s CSV with formats, variable and value labels."""
    described = variables(export)
    formats = []
    for v in described:
        if v.kind in ("integer", "decimal"):
            formats.append(f"  {v.name} F8.{v.decimals or 0}")
        elif v.kind == "date":
            formats.append(f"  {v.name} SDATE10")
        else:
            formats.append(f"  {v.name} A255")
    lines = [
        f"* {export.name}: {export.title}.",
        "* Written by the registry from its data dictionary.",
        "GET DATA /TYPE=TXT",
        f"  /FILE={_spss_string(export.name)}",
        "  /ENCODING='UTF8'",
        "  /DELIMITERS=','",
        "  /QUALIFIER='\"'",
        "  /ARRANGEMENT=DELIMITED",
        "  /FIRSTCASE=2",
        "  /VARIABLES=",
        *formats,
        ".",
        "VARIABLE LABELS",
        *(f"  {v.name} {_spss_string(shorten(v.label, 256))}" for v in described),
        ".",
    ]
    coded = [v for v in described if v.choices or v.kind == "boolean"]
    if coded:
        lines.append("VALUE LABELS")
        for i, v in enumerate(coded):
            pairs = v.choices or (("true", "Yes"), ("false", "No"))
            values = " ".join(
                f"{c if isinstance(c, int) else _spss_string(str(c))} "
                f"{_spss_string(shorten(str(label), 120))}"
                for c, label in pairs
            )
            lines.append(f"  {'/' if i else ''}{v.name} {values}")
        lines.append(".")
    lines.append("EXECUTE.")
    return "\n".join(lines) + "\n"


def _stata_string(text: str) -> str:
    return '`"' + text + "\"'"


def stata_syntax(export: Export) -> str:
    """A Stata do-file that reads ``export``'s CSV with types, variable and value labels."""
    described = variables(export)
    strings = [v.name for v in described if v.kind not in ("integer", "decimal")]
    lines = [
        f"* {export.name}: {export.title}",
        "* Written by the registry from its data dictionary.",
        f'import delimited using "{export.name}", varnames(1) encoding("utf-8") '
        f"stringcols({' '.join(strings) or '_none'}) case(preserve) clear",
    ]
    for v in described:
        if v.choices and all(isinstance(c, int) for c, _l in v.choices):
            lines.append(f"label define {v.name}_lbl, replace")
            for c, label in v.choices:
                lines.append(f"label define {v.name}_lbl {c} {_stata_string(str(label))}, add")
            lines.append(f"label values {v.name} {v.name}_lbl")
        elif v.choices:
            # text codes: numbered 1, 2, … in the dictionary's order, as the .dta file has them
            lines.append("generate long _code = .")
            lines.append(f"label define {v.name}_lbl, replace")
            for n, (c, label) in enumerate(v.choices, start=1):
                lines.append(f'replace _code = {n} if {v.name} == "{c}"')
                lines.append(f"label define {v.name}_lbl {n} {_stata_string(str(label))}, add")
            lines += [
                f"drop {v.name}",
                f"rename _code {v.name}",
                f"label values {v.name} {v.name}_lbl",
            ]
        elif v.kind == "boolean":
            lines += [
                f'generate byte _flag = 1 if {v.name} == "true"',
                f'replace _flag = 0 if {v.name} == "false"',
                f"drop {v.name}",
                f"rename _flag {v.name}",
                'label define yes_no 0 "No" 1 "Yes", replace',
                f"label values {v.name} yes_no",
            ]
        elif v.kind == "date":
            lines += [
                f'generate _date = date({v.name}, "YMD")',
                "format _date %td",
                f"drop {v.name}",
                f"rename _date {v.name}",
            ]
        elif v.kind in ("integer", "decimal"):
            lines.append(f"format {v.name} %8.{v.decimals or 0}f")
        lines.append(f"label variable {v.name} {_stata_string(shorten(v.label, STATA_LABEL_MAX))}")
    lines.append(f"order {' '.join(v.name for v in described)}")
    return "\n".join(lines) + "\n"


SYNTAX = {
    "R": ("text/x-r", r_syntax),
    "sps": ("text/plain", spss_syntax),
    "do": ("text/plain", stata_syntax),
}


# --- the views ----------------------------------------------------------------------------------


def sections_for(user) -> list[tuple[Export, list[Variable], dict | None]]:
    """Every export file, with counts over the rows ``user`` may export (none for a file they
    may not)."""
    result = []
    for export in EXPORTS.values():
        meta = export.model._meta
        allowed = user.has_perm(f"{meta.app_label}.view_{meta.model_name}") and user.has_perms(
            export.permissions
        )
        tallies = counts(export, export.queryset(user)) if allowed else None
        result.append((export, variables(export), tallies))
    return result


class CodebookView(APIView):
    """The codebook of every export file: variables, labels, types, allowed values with their
    labels, missing values and counts over the caller's rows (HTML, or Word with
    ``codebook.docx``)."""

    permission_model = Patient
    renderer_classes = [JSONRenderer]
    suffix = "html"

    @extend_schema(operation_id="codebook_html", responses={(200, "text/html"): OpenApiTypes.STR})
    def get(self, request: Request) -> HttpResponse:
        sections = sections_for(request.user)
        export_log_read(
            user=request.user,
            resource=f"codebook.{self.suffix}",
            filters={},
            rows=sum(1 for _e, _v, t in sections if t is not None),
        )
        if self.suffix == "docx":
            response = HttpResponse(codebook_docx(sections), content_type=DOCX)
            response["Content-Disposition"] = 'attachment; filename="codebook.docx"'
        else:
            response = HttpResponse(
                codebook_html(sections), content_type="text/html; charset=utf-8"
            )
        response["Cache-Control"] = "no-store"
        return response


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


class CodebookDocxView(CodebookView):
    """The codebook as a Word document (A4 landscape, header rows repeated)."""

    suffix = "docx"

    @extend_schema(operation_id="codebook_docx", responses={(200, DOCX): OpenApiTypes.BINARY})
    def get(self, request: Request) -> HttpResponse:
        return super().get(request)


class SyntaxView(APIView):
    """R, SPSS or Stata code that reads one CSV export with its types and labels."""

    permission_model = Patient
    renderer_classes = [JSONRenderer]
    export: Export
    suffix: str

    def get(self, request: Request) -> HttpResponse:
        content_type, write = SYNTAX[self.suffix]
        name = f"{self.export.name.removesuffix('.csv')}.{self.suffix}"
        response = HttpResponse(write(self.export), content_type=f"{content_type}; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


def syntax_view(export: Export, suffix: str):
    stem = export.name.removesuffix(".csv")
    view = type(
        f"{stem.title()}{suffix.title()}Syntax",
        (SyntaxView,),
        {"export": export, "suffix": suffix, "__doc__": f"Code that reads {export.name}"},
    )
    schema = extend_schema(
        operation_id=f"syntax_{stem}_{suffix.lower()}",
        responses={(200, SYNTAX[suffix][0]): OpenApiTypes.STR},
    )
    return extend_schema_view(get=schema)(view)
