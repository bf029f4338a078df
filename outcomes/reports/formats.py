"""The cohort report as formatted CSV, tidy CSV, Markdown, Word (python-docx) and charts
(matplotlib SVG and PNG), all drawn from the one report dict."""

from __future__ import annotations

import csv
import io

from matplotlib.figure import Figure

from outcomes.reports.dataset import COLUMN_LABELS

FORMATTED_CSV_HEADER = ["table", "row", "column", "value"]
TIDY_CSV_HEADER = ["table", "row", "column", "statistic", "value", "n"]
COLOURS = {"pathologic": "#b2182b", "osteoporotic": "#2166ac", "overall": "#000000",
           "other": "#7f7f7f"}  # fmt: skip
MARKERS = {"pathologic": "o", "osteoporotic": "s", "other": "^"}


def download_name(report: dict, kind: str) -> str:
    """File name of a download: the filter and the data cut-off, then the kind
    (``csv``, ``tidy.csv``, ``md``, ``docx``)."""
    return f"cohort-report_{report['filter_slug']}.{kind}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text) -> str:
    """``text`` as a spreadsheet shows it, never run: a cell it would read as a formula
    (``+0.331 ± 0.457``, ``=…``, ``@…``) gets a leading apostrophe (OWASP's CSV injection
    advice), which spreadsheets hide; a plain number such as ``-0.5`` is left as it is."""
    text = str(text)
    if not text.startswith(FORMULA_STARTS):
        return text
    try:
        float(text)
    except ValueError:
        return "'" + text
    return text


def row_labels(table: dict) -> list[tuple[str, str]]:
    """Each row's label as printed and with its parent heading: an indented row
    (``  Lumbar``) belongs to the last row above it that is not indented
    (``Region per treated vertebra: Lumbar``)."""
    labels, parent = [], ""
    for row in table["rows"]:
        label = str(row[0])
        if label.startswith(" ") and parent:
            labels.append((label, f"{parent}: {label.strip()}"))
        else:
            parent = label.strip()
            labels.append((label, parent))
    return labels


def _with_parents(table: dict, numbers: list[dict]) -> list[str]:
    """The full row label of each number, by the row it belongs to."""
    labels = row_labels(table)
    return [labels[number["row_index"]][1] for number in numbers]


def report_csv(report: dict) -> str:
    """Formatted, long: one line per cell as printed (table id, row, column, text); cells a
    spreadsheet would run as formulas are written safely (:func:`spreadsheet_safe`)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FORMATTED_CSV_HEADER)
    for table in report["tables"]:
        columns = table["columns"]
        for row in table["rows"]:
            for column, value in zip(columns[1:], row[1:], strict=True):
                if value != "":
                    writer.writerow(
                        [
                            spreadsheet_safe(cell)
                            for cell in (table["id"], row[0].strip(), column, value)
                        ]
                    )
    return out.getvalue()


def report_tidy_csv(report: dict) -> str:
    """Tidy, for statisticians: one number per line (table, row, column, statistic, value,
    n); ``value`` is a plain number (full precision), empty where it does not exist. A row
    under a heading carries it (``Region per treated vertebra: Lumbar``)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TIDY_CSV_HEADER)
    for table in report["tables"]:
        rows = _with_parents(table, table["numbers"])
        for number, row in zip(table["numbers"], rows, strict=True):
            value = number["value"]
            writer.writerow(
                [
                    table["id"],
                    spreadsheet_safe(row),
                    spreadsheet_safe(number["column"]),
                    spreadsheet_safe(number["statistic"]),
                    "" if value is None else repr(value) if isinstance(value, float) else value,
                    "" if number["n"] is None else number["n"],
                ]
            )
    return out.getvalue()


def report_markdown(report: dict) -> str:
    lines = [
        "# Cohort report: pathologic vs osteoporotic",
        "",
        f"{report['filter_text']} Cells from fewer than {report['min_n']} patients: n too small.",
    ]
    for table in report["tables"]:
        lines += ["", f"## {table['title']}", ""]
        lines.append("| " + " | ".join(_md(c) for c in table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            lines.append("| " + " | ".join(_md(v) for v in row) + " |")
        lines.append("")
        lines += [f"- {note}" for note in table["footnotes"]]
    return "\n".join(lines) + "\n"


def _md(value) -> str:
    return str(value).replace("|", "\\|")


# --- Word ------------------------------------------------------------------------------------


PAPER_MM = {"a4": (297, 210), "letter": (279.4, 215.9)}  # landscape width, height


def report_docx(report: dict, *, paper: str = "a4") -> bytes:
    """A Word document with every table (header groups, footnotes) and the charts (PNG), in
    a form that pastes into a manuscript: A4 landscape (``paper="letter"`` for US Letter),
    header rows repeated on every page a table continues on, rows never split across
    pages, each figure's title kept on the figure's page."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm, Mm, Pt

    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    width, height = PAPER_MM[paper]
    section.page_width, section.page_height = Mm(width), Mm(height)
    for margin in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, margin, Cm(1.5))
    document.styles["Normal"].font.size = Pt(9)
    document.add_heading("Cohort report: pathologic vs osteoporotic", level=1)
    document.add_paragraph(
        f"{report['filter_text']} Cells from fewer than {report['min_n']} patients: n too small."
    )
    for table in report["tables"]:
        document.add_heading(table["title"], level=2)
        header = table.get("header")
        columns = table["columns"]
        header_rows = 2 if header else 1
        grid = document.add_table(rows=header_rows + len(table["rows"]), cols=len(columns))
        grid.style = "Table Grid"
        if header:
            position = 0
            for label, span in header["groups"]:
                first = grid.cell(0, position)
                if span > 1:
                    first = first.merge(grid.cell(0, position + span - 1))
                first.text = label
                position += span
            for i, label in enumerate(header["labels"]):
                grid.cell(1, i).text = label
        else:
            for i, label in enumerate(columns):
                grid.cell(0, i).text = label
        for r, row in enumerate(table["rows"], start=header_rows):
            for c, value in enumerate(row):
                grid.cell(r, c).text = str(value)
        for r in range(header_rows):
            _repeat_as_header(grid.rows[r])
            for cell in grid.rows[r].cells:
                for run in cell.paragraphs[0].runs:
                    run.bold = True
        for grid_row in grid.rows:
            _keep_row_together(grid_row)
        for note in table["footnotes"]:
            document.add_paragraph(note, style="List Bullet")
    document.add_heading("Figures", level=2)
    for title, png in chart_pngs(report):
        caption = document.add_paragraph(title)
        caption.paragraph_format.keep_with_next = True  # never a title alone at a page's end
        document.add_picture(io.BytesIO(png), width=Cm(16))
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _row_property(row, name: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    element = OxmlElement(f"w:{name}")
    element.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(element)


def _repeat_as_header(row) -> None:
    """Word repeats this row at the top of every page the table continues on."""
    _row_property(row, "tblHeader")


def _keep_row_together(row) -> None:
    """Word moves the whole row to the next page rather than split it."""
    _row_property(row, "cantSplit")


# --- charts ----------------------------------------------------------------------------------


def _figure(height: float = 3.6) -> Figure:
    figure = Figure(figsize=(6.4, height))
    figure.set_layout_engine("constrained")
    return figure


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def _png(figure: Figure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=200, bbox_inches="tight")
    return out.getvalue()


def trajectory_figure(report: dict, key: str) -> Figure:
    """Mean and 95% CI of one outcome at each timepoint, one line per cohort; a timepoint with
    fewer than the minimum n answers has no point."""
    chart = report["charts"]["trajectories"][key]
    figure = _figure()
    axes = figure.subplots()
    cohorts = chart["cohorts"]
    labels = next(iter(cohorts.values()), [])
    for offset, (column, points) in enumerate(cohorts.items()):
        xs = [i for i, point in enumerate(points) if point["mean"] is not None]
        for i in xs:  # no spread (every answer the same): the interval is the mean itself
            points[i] = {**points[i], "ci_low": points[i]["ci_low"] if points[i]["ci_low"]
                         is not None else points[i]["mean"], "ci_high": points[i]["ci_high"]
                         if points[i]["ci_high"] is not None else points[i]["mean"]}  # fmt: skip
        if not xs:
            continue
        shift = (offset - (len(cohorts) - 1) / 2) * 0.06  # keep error bars apart
        means = [points[i]["mean"] for i in xs]
        axes.errorbar(
            [x + shift for x in xs],
            means,
            yerr=[
                [m - points[i]["ci_low"] for i, m in zip(xs, means, strict=True)],
                [points[i]["ci_high"] - m for i, m in zip(xs, means, strict=True)],
            ],
            label=COLUMN_LABELS[column],
            color=COLOURS.get(column, "#000000"),
            marker=MARKERS.get(column, "o"),
            capsize=4,
        )
    axes.set_xticks(range(len(labels)), [point["label"] for point in labels])
    axes.set_ylabel(f"{chart['label']}, mean (95% CI)")
    axes.set_title(f"{chart['label']} by timepoint")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(frameon=False)
    return figure


def survival_figure(report: dict) -> Figure:
    """Kaplan–Meier survival per cohort with the numbers at risk under it; a curve stops
    where fewer than the minimum n remain at risk."""
    curves = report["charts"]["survival"]
    figure = _figure(4.4)
    axes, risk = figure.subplots(2, 1, height_ratios=[4, 1], sharex=True)
    days = [int(day) for day in next(iter(curves.values()))["at_risk"]] if curves else []
    for column, curve in curves.items():
        if curve["too_small"] or not curve["days"]:
            continue
        axes.step(
            curve["days"],
            curve["survival"],
            where="post",
            label=f"{curve['label']} (n={curve['n']})",
            color=COLOURS.get(column, "#000000"),
        )
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("Survival (Kaplan–Meier)")
    axes.set_title("Survival after the index procedure")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(frameon=False, loc="lower left")
    names = list(curves)
    for row, column in enumerate(names):
        for day in days:
            risk.text(day, row, str(curves[column]["at_risk"][str(day)]), ha="center",
                      va="center", color=COLOURS.get(column, "#000000"), fontsize=8)  # fmt: skip
    risk.set_ylim(len(names) - 0.5, -0.5)
    risk.set_yticks(range(len(names)), [curves[c]["label"] for c in names], fontsize=8)
    risk.set_xticks(days)
    risk.set_xlabel("Days after the index procedure (numbers at risk)")
    risk.tick_params(left=False)
    for spine in risk.spines.values():
        spine.set_visible(False)
    if days:
        axes.set_xlim(-0.03 * days[-1], days[-1] * 1.03)
    return figure


def _charts(report: dict):
    for key in report["charts"]["trajectories"]:
        title = report["charts"]["trajectories"][key]["label"]
        yield f"{title}: mean and 95% CI per timepoint", trajectory_figure(report, key)
    yield "Kaplan–Meier survival with numbers at risk", survival_figure(report)


def chart_svgs(report: dict) -> list[tuple[str, str, str]]:
    """(id, caption, SVG) of every chart."""
    keys = [*report["charts"]["trajectories"], "survival"]
    return [
        (f"{key}-chart", title, _svg(figure))
        for key, (title, figure) in zip(keys, _charts(report), strict=True)
    ]


def chart_pngs(report: dict) -> list[tuple[str, bytes]]:
    return [(title, _png(figure)) for title, figure in _charts(report)]
