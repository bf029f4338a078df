"""The import template: an Excel workbook with one sheet per table (the columns the import
takes, keys first), a dictionary sheet, and dropdowns (data validation) on every coded
column, so that a site types only values the import accepts."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from api.exports import _field, column_choices, dictionary_entry
from api.imports import LEVEL_BY_LABEL, ORDER, TABLES

ROWS = 5000  # rows the dropdowns cover
MAX_INLINE = 255  # Excel's limit on an inline list; longer lists go to the lists sheet


def _codes(table, name: str) -> list[str]:
    if name == "level":
        return list(LEVEL_BY_LABEL)
    column = next(c for c in table.export.columns if c.name == name)
    if column.path and not (column.path == "id" or "__" in column.path):
        model_field = _field(table.model, column.path)
        if model_field.get_internal_type() == "BooleanField":
            return ["true", "false"]
    return [str(value) for value, _label in column_choices(table.export, column)]


def template_workbook() -> bytes:
    book = Workbook()
    book.remove(book.active)
    lists = book.create_sheet("lists")
    lists.sheet_state = "hidden"
    list_column = 0
    dictionary = []
    for name in ORDER:
        table = TABLES[name]
        sheet = book.create_sheet(name)
        columns = [*table.keys, *(c for c in table.fields if c not in table.keys)]
        for index, column_name in enumerate(columns, start=1):
            cell = sheet.cell(row=1, column=index, value=column_name)
            cell.font = Font(bold=True)
            sheet.column_dimensions[get_column_letter(index)].width = max(12, len(column_name) + 2)
            export_column = next(c for c in table.export.columns if c.name == column_name)
            entry = dictionary_entry(table.export, export_column)
            dictionary.append([name, column_name, entry["label"], entry["type"], entry["unit"],
                               entry["allowed"]])  # fmt: skip
            codes = _codes(table, column_name)
            if not codes or entry["type"].startswith("list"):
                continue
            inline = ",".join(codes)
            if len(inline) <= MAX_INLINE and "," not in "".join(codes):
                formula = f'"{inline}"'
            else:
                list_column += 1
                letter = get_column_letter(list_column)
                for row, code in enumerate(codes, start=1):
                    lists.cell(row=row, column=list_column, value=code)
                formula = f"lists!${letter}$1:${letter}${len(codes)}"
            validation = DataValidation(
                type="list",
                formula1=formula,
                allow_blank=True,
                showErrorMessage=True,
                errorTitle=f"{column_name}: not an allowed value",
                error=f"Allowed: {inline}"[:255],
            )
            sheet.add_data_validation(validation)
            letter = get_column_letter(index)
            validation.add(f"{letter}2:{letter}{ROWS + 1}")
        sheet.freeze_panes = "A2"
    about = book.create_sheet("dictionary")
    about.append(["table", "column", "label", "type", "unit", "allowed"])
    for cell in about[1]:
        cell.font = Font(bold=True)
    for row in dictionary:
        about.append(row)
    book.move_sheet("lists", offset=len(book.sheetnames))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
