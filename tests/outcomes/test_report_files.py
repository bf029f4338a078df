"""The report's files: on a spreadsheet, formula-looking cells written safely and rows under
a heading carrying it; in Word, columns wide enough that no word breaks mid-letters."""

import csv
import io

import docx
import pytest
from docx.oxml.ns import qn
from docx.shared import Length, Mm
from docx.table import _Cell

from outcomes.reports.formats import (
    FONT_PT,
    SMALLEST_FONT_PT,
    column_widths,
    report_csv,
    report_docx,
    report_tidy_csv,
    spreadsheet_safe,
    text_width_mm,
    text_width_pt,
    word_width_pt,
)


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


def word_fits(body: bytes) -> list[str]:
    """Read a Word report back: every table has fixed column widths within the page's text
    width, and every cell is at least as wide as its longest word needs (same estimate as
    the writer, at the font size and weight each run has). The cells that do not, as text."""
    document = docx.Document(io.BytesIO(body))
    section = document.sections[0]
    available = section.page_width - section.left_margin - section.right_margin
    too_narrow = []
    assert document.tables
    for number, table in enumerate(document.tables):
        layout = table._tbl.tblPr.find(qn("w:tblLayout"))
        assert layout is not None and layout.get(qn("w:type")) == "fixed"
        grid = [column.width for column in table.columns]
        assert sum(grid) <= available, (number, sum(grid), available)
        for row in table.rows:
            position = 0
            for tc in row._tr.tc_lst:
                span = tc.grid_span
                width = Length(sum(grid[position : position + span]))
                assert abs(tc.width - width) <= 1000, (number, tc.width, width)  # EMU rounding
                for paragraph in _Cell(tc, table).paragraphs:
                    for run in paragraph.runs:
                        size = run.font.size.pt if run.font.size else FONT_PT
                        need = word_width_pt(run.text, size, bold=bool(run.bold))
                        if width.pt < need - 0.01:
                            too_narrow.append(f"table {number}: {run.text!r} {width.pt} < {need}")
                position += span
    return too_narrow


LONG_WORDS = {
    "id": "wide",
    "title": "A table with long words and many columns",
    "columns": ["", *(f"Group {i // 2}: {('baseline', '12 months')[i % 2]}" for i in range(8))],
    "header": {
        "groups": [("", 1), *(("Vertebroplasty", 2) for _ in range(4))],
        "labels": ["", *(["Baseline", "12 months"] * 4)],
    },
    "rows": [
        ["Region per treated vertebra", *[""] * 8],
        ["  Thoracolumbar", *["Vertebroplasty"] * 8],
        ["Symptomatic cement leakage, n/N (%)", *["1234/5678 (100.0%)"] * 8],
    ],
    "numbers": [],
    "footnotes": ["A footnote."],
}
NARROW = {
    "id": "narrow",
    "title": "A small table",
    "columns": ["", "Pathologic", "p", "Test"],
    "rows": [["Male, n (%)", "6 (100.0%)", "0.031", "Fisher's exact test"]],
    "numbers": [],
    "footnotes": [],
}


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_word_columns_fit_their_longest_word_and_the_page(paper):
    report = {"filter_text": "All.", "min_n": 5, "tables": [NARROW, LONG_WORDS],
              "charts": {"trajectories": {}, "survival": {}}}  # fmt: skip
    body = report_docx(report, paper=paper)
    assert word_fits(body) == []
    document = docx.Document(io.BytesIO(body))
    narrow, wide = document.tables
    # The small table keeps the document's font and its natural widths (no wrap at all).
    assert {r.font.size for c in narrow._cells for p in c.paragraphs for r in p.runs} <= {None}
    test_column = narrow.columns[3].width.pt
    assert test_column >= text_width_pt("Fisher's exact test", FONT_PT, bold=False)
    # The wide one could not fit its words at 9 pt: set smaller, and still no word broken.
    sizes = {r.font.size.pt for c in wide._cells for p in c.paragraphs for r in p.runs}
    assert len(sizes) == 1 and SMALLEST_FONT_PT <= sizes.pop() < FONT_PT


def test_a_table_whose_words_cannot_fit_is_refused_not_broken():
    hopeless = dict(NARROW, columns=["", *["x"] * 40], rows=[["", *["Pneumonoultra"] * 40]])
    with pytest.raises(ValueError, match="do not fit the page"):
        column_widths(hopeless, Mm(text_width_mm("a4")).pt)
