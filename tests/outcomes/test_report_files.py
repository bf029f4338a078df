"""The report's CSV files on a spreadsheet: formula-looking cells written safely, rows under
a heading carrying it."""

import csv
import io

from outcomes.reports.formats import report_csv, report_tidy_csv, spreadsheet_safe


def number(index: int, row: str, column: str, value: float) -> dict:
    return {
        "row": row,
        "row_index": index,
        "column": column,
        "statistic": "mean",
        "value": value,
        "n": 5,
    }


REPORT = {
    "tables": [
        {
            "id": "table_2",
            "columns": ["", "Change"],
            "rows": [
                ["EQ-5D index change", "+0.331 ± 0.457"],
                ["Region per treated vertebra", ""],
                ["  Lumbar", "=1+1"],
                ["Other heading", ""],
                ["  Lumbar", "@SUM(A1)"],
                ["Negative", "-0.5"],
            ],
            "numbers": [
                number(0, "EQ-5D index change", "Change", 0.331),
                number(2, "  Lumbar", "Change", 2),
                number(4, "  Lumbar", "Change", 3),
                number(5, "Negative", "-", -0.5),
            ],
        }
    ]
}  # fmt: skip


def test_formula_looking_cells_are_written_so_a_spreadsheet_shows_them():
    assert spreadsheet_safe("+0.331 ± 0.457") == "'+0.331 ± 0.457"
    assert spreadsheet_safe("-0.5") == "-0.5" and spreadsheet_safe("12") == "12"
    rows = list(csv.reader(io.StringIO(report_csv(REPORT))))[1:]
    assert [row[3] for row in rows] == ["'+0.331 ± 0.457", "'=1+1", "'@SUM(A1)", "-0.5"]


def test_tidy_rows_carry_their_parent_heading():
    rows = list(csv.DictReader(io.StringIO(report_tidy_csv(REPORT))))
    assert [row["row"] for row in rows] == [
        "EQ-5D index change",
        "Region per treated vertebra: Lumbar",
        "Other heading: Lumbar",
        "Negative",
    ]
    assert rows[3]["value"] == "-0.5" and rows[3]["column"] == "'-"
