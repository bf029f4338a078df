"""The cohort report as formatted CSV, tidy CSV, Markdown, Word (python-docx) and charts
(matplotlib SVG and PNG), all drawn from the one report dict."""

from __future__ import annotations

import csv
import io
import math
import re

from django.utils import translation
from django.utils.translation import gettext
from matplotlib.figure import Figure

from outcomes.reports.dataset import COLUMN_LABELS, TOO_SMALL

FORMATTED_CSV_HEADER = ["table", "row", "column", "value"]
TIDY_CSV_HEADER = ["table", "row", "column", "statistic", "value", "n"]
COLOURS = {"pathologic": "#b2182b", "osteoporotic": "#2166ac", "overall": "#000000",
           "other": "#7f7f7f"}  # fmt: skip
MARKERS = {"pathologic": "o", "osteoporotic": "s", "other": "^"}


def download_name(report: dict, kind: str, slug: str | None = None) -> str:
    """File name of a download: the filter and the data cut-off (``slug``, else the
    report's own), then the kind (``csv``, ``tidy.csv``, ``md``, ``docx``)."""
    return f"cohort-report_{slug or report['filter_slug']}.{kind}"


_DECIMAL_POINT = re.compile(r"(?<=[0-9])\.(?=[0-9])")


def decimals_localised(text: str, separator: str) -> str:
    """A cell's text with ``separator`` as its decimal mark (Danish ``0,331 ± 0,457``,
    ``3/20 (15,0%)``, ``<0,001``). The report writes no thousands separator, so every point
    between two digits is a decimal mark."""
    if separator == ".":
        return text
    return _DECIMAL_POINT.sub(separator, text)


def report_localised(report: dict, separator: str) -> dict:
    """The report with the decimal marks of its tables' cells and row labels (a responder's
    threshold, ``≥ 0,12``; not notes or the numbers of the JSON) written with ``separator``;
    the report given is left as it is."""
    if separator == ".":
        return report
    tables = [
        {**table, "rows": [[decimals_localised(str(cell), separator) for cell in row]
                           for row in table["rows"]]}
        for table in report["tables"]
    ]  # fmt: skip
    return {**report, "tables": tables}


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


def _heading() -> str:
    return gettext("Cohort report: pathologic vs osteoporotic")


def _too_small_note(report: dict) -> str:
    """The filter and the minimum n, under a download's heading (in the active language)."""
    note = gettext("Cells from fewer than %(min_n)s patients: %(too_small)s.")
    return f"{report['filter_text']} " + note % {
        "min_n": report["min_n"],
        "too_small": gettext(TOO_SMALL),
    }


def report_markdown(report: dict, *, language: str = "en") -> str:
    """The report as Markdown; its own words in ``language``, the report's (built in the
    same language) as they are."""
    with translation.override(language):
        lines = ["# " + _heading(), "", _too_small_note(report)]
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
MARGIN_MM = 15
FONT_PT = 9.0  # the document's text; a table too wide for the page is set smaller, down to
SMALLEST_FONT_PT = 6.0  # this, in half points, before any word would have to break
# Width of a character in ems, a generous estimate for Word's default font (Calibri's letters
# are 0.23–0.89 em, its average about 0.5): wide letters, capitals and the rest. Bold is wider.
WIDE_CHARACTERS = frozenset("MWmw@%—–±≥≤")
CHARACTER_EM = {"wide": 0.95, "capital": 0.72, "other": 0.6}
BOLD_FACTOR = 1.08
# Space a cell takes besides its text: Table Grid's left and right cell margins (0.08 inch
# each) and a border.
CELL_PADDING_PT = 2 * 5.76 + 1.0
_WORDS = re.compile(r"^\s*\S+|\S+")  # a line's leading indent stays with its first word


def text_width_pt(text: str, size: float, *, bold: bool = False) -> float:
    """Estimated width in points of ``text`` on one line at font ``size``."""
    ems = sum(
        CHARACTER_EM["wide"] if ch in WIDE_CHARACTERS
        else CHARACTER_EM["capital"] if ch.isupper()
        else CHARACTER_EM["other"]
        for ch in text
    )  # fmt: skip
    return ems * size * (BOLD_FACTOR if bold else 1.0)


def word_width_pt(text: str, size: float, *, bold: bool = False) -> float:
    """Width a cell holding ``text`` needs so that no word breaks mid-letters (its longest
    word, with the cell's padding)."""
    words = _WORDS.findall(str(text))
    longest = max((text_width_pt(w, size, bold=bold) for w in words), default=0.0)
    return longest + CELL_PADDING_PT


def text_width_mm(paper: str) -> float:
    """The width between the margins of a landscape page."""
    return PAPER_MM[paper][0] - 2 * MARGIN_MM


def _needs(table: dict, size: float) -> tuple[list[float], list[float]]:
    """(least, natural) width of each column of ``table`` in points at font ``size``: least
    fits its longest word, natural its longest text unwrapped. A header group spanning
    columns needs its label's width over them together."""
    columns = table["columns"]
    header = table.get("header")
    least, natural = [0.0] * len(columns), [0.0] * len(columns)

    def take(column: int, text: str, bold: bool) -> None:
        least[column] = max(least[column], word_width_pt(text, size, bold=bold))
        natural[column] = max(
            natural[column], text_width_pt(text, size, bold=bold) + CELL_PADDING_PT
        )

    for column, label in enumerate(header["labels"] if header else columns):
        take(column, str(label), True)
    for row in table["rows"]:
        for column, value in enumerate(row):
            take(column, str(value), False)
    if header:
        position = 0
        for label, span in header["groups"]:
            spanned = range(position, position + span)
            for widths, need in (
                (least, word_width_pt(label, size, bold=True)),
                (natural, text_width_pt(label, size, bold=True) + CELL_PADDING_PT),
            ):
                short = need - sum(widths[c] for c in spanned)
                for c in spanned:
                    widths[c] += max(short, 0.0) / span
            position += span
    return least, [max(a, b) for a, b in zip(least, natural, strict=True)]


def column_widths(table: dict, available_pt: float) -> tuple[float, list[float]]:
    """The font size and column widths (points) of a Word table: every column at least as
    wide as its longest word, the spare width shared out towards each column's unwrapped
    text, the total within ``available_pt``. A table whose words do not fit at the
    document's font is set smaller (half a point at a time)."""
    size = FONT_PT
    while True:
        least, natural = _needs(table, size)
        if sum(natural) <= available_pt:
            return size, natural
        if sum(least) <= available_pt:
            spare = available_pt - sum(least)
            wanted = [n - m for m, n in zip(least, natural, strict=True)]
            total = sum(wanted)
            return size, [m + w * spare / total for m, w in zip(least, wanted, strict=True)]
        if size <= SMALLEST_FONT_PT:
            raise ValueError(
                f"table {table.get('id')!r}: its words do not fit the page even at "
                f"{SMALLEST_FONT_PT} pt"
            )
        size -= 0.5


def _set_widths(grid, size: float, widths: list[float]) -> None:
    """Fixed column widths (Word does not autofit them away) and the table's font size."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt, Twips

    grid.autofit = False
    properties = grid._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    properties.append(layout)
    # Word stores widths in whole twips (1/20 pt): rounded up, never below a word's width.
    twips = [math.ceil(width * 20) for width in widths]
    for column, width in zip(grid.columns, twips, strict=True):
        column.width = Twips(width)
    for row in grid.rows:
        position = 0
        for cell in row._tr.tc_lst:
            span = cell.grid_span
            cell.width = Twips(sum(twips[position : position + span]))
            position += span
            if size != FONT_PT:
                for run in cell.iter(qn("w:r")):
                    run.get_or_add_rPr().sz_val = Pt(size)


def report_docx(report: dict, *, paper: str = "a4", language: str = "en") -> bytes:
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
        setattr(section, margin, Mm(MARGIN_MM))
    available = Mm(text_width_mm(paper)).pt
    document.styles["Normal"].font.size = Pt(FONT_PT)
    with translation.override(language):
        document.add_heading(_heading(), level=1)
        document.add_paragraph(_too_small_note(report))
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
        # Less a twentieth of a point per column, for the rounding up to whole twips.
        _set_widths(grid, *column_widths(table, available - 0.05 * len(columns)))
        for note in table["footnotes"]:
            document.add_paragraph(note, style="List Bullet")
    with translation.override(language):
        document.add_heading(gettext("Figures"), level=2)
        figures = chart_pngs(report)
    for title, png in figures:
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
    """(caption, figure) of every chart; the captions those of ``chart_keys`` (the active
    language), the drawings English."""
    captions = dict(chart_keys(report))
    for key in report["charts"]["trajectories"]:
        yield captions[key], trajectory_figure(report, key)
    yield captions["survival"], survival_figure(report)


def chart_svgs(report: dict) -> list[tuple[str, str, str]]:
    """(id, caption, SVG) of every chart."""
    keys = [*report["charts"]["trajectories"], "survival"]
    return [
        (f"{key}-chart", title, _svg(figure))
        for key, (title, figure) in zip(keys, _charts(report), strict=True)
    ]


def chart_keys(report: dict) -> list[tuple[str, str]]:
    """(key, caption) of every chart, in the report's order, without drawing any; the captions
    in the active language (the page's)."""
    charts = report["charts"]["trajectories"]
    return [
        *(
            (
                key,
                gettext("%(outcome)s: mean and 95%% CI per timepoint")
                % {"outcome": chart["label"]},
            )
            for key, chart in charts.items()
        ),  # fmt: skip
        ("survival", gettext("Kaplan–Meier survival with numbers at risk")),
    ]


def chart_svg(report: dict, key: str) -> str:
    """One chart as SVG (``key``: an outcome of the trajectories, or ``survival``); KeyError
    for any other key."""
    if key == "survival":
        return _svg(survival_figure(report))
    report["charts"]["trajectories"][key]  # KeyError: no such chart
    return _svg(trajectory_figure(report, key))


def chart_pngs(report: dict) -> list[tuple[str, bytes]]:
    return [(title, _png(figure)) for title, figure in _charts(report)]


# --- site benchmarking -----------------------------------------------------------------------


def funnel_figure(outcome: dict) -> Figure:
    """Observed − expected per site against n, with the 95% and 99.8% control limits around
    0 (design §8a); sites below the minimum n are not drawn (they are listed under the plot)."""
    figure = _figure()
    axes = figure.subplots()
    curve = outcome["funnel"]
    if curve:
        ns = [point["n"] for point in curve]
        for level, style in (("95", "--"), ("99.8", "-")):
            for side in ("low", "high"):
                axes.plot(ns, [point[f"{level}_{side}"] for point in curve], style,
                          color="#7f7f7f", linewidth=1,
                          label=f"{level}% limits" if side == "low" else None)  # fmt: skip
        axes.axhline(0, color="#000000", linewidth=0.8)
    shown = [site for site in outcome["sites"] if not site["too_small"]]
    for site in shown:
        outside = site["position"] != "inside"
        axes.plot(site["n"], site["difference"], "o", color="#b2182b" if outside else "#2166ac",
                  markersize=6)  # fmt: skip
        axes.annotate(site["site"].split(" – ")[0], (site["n"], site["difference"]),
                      textcoords="offset points", xytext=(4, 4), fontsize=7)  # fmt: skip
    if shown:
        values = [abs(s["difference"]) for s in shown]
        limit = max(values + [abs(curve[-1]["99.8_high"]) if curve else 0]) * 1.3 or 1
        axes.set_ylim(-limit, limit)
        axes.set_xlim(0, max(s["n"] for s in shown) * 1.1)
    unit = "percentage points" if outcome["model"] == "logistic" else outcome["unit"]
    if outcome["model"] == "logistic":
        axes.yaxis.set_major_formatter(lambda v, _: f"{100 * v:.0f}")
    axes.set_xlabel(f"{outcome['counts'].capitalize()}, n")
    axes.set_ylabel(f"Observed − expected ({unit})")
    axes.set_title(outcome["label"])
    if axes.get_legend_handles_labels()[0]:
        axes.legend(frameon=False, fontsize=8)
    return figure


def funnel_svgs(report: dict) -> list[tuple[str, str, str]]:
    """(id, caption, SVG) of each outcome's funnel plot."""
    return [
        (
            f"funnel-{outcome['key']}",
            f"{outcome['label']}: funnel plot",
            _svg(funnel_figure(outcome)),
        )
        for outcome in report["outcomes"]
    ]


def funnel_pngs(report: dict) -> list[tuple[str, bytes]]:
    return [(outcome["label"], _png(funnel_figure(outcome))) for outcome in report["outcomes"]]


def _value(outcome: dict, value: float | None, *, signed: bool = False) -> str:
    """A mean change in its unit (EQ-5D three decimals, ODI one) or a rate in per cent."""
    if value is None:
        return "–"
    sign = "+" if signed else ""
    if outcome["model"] == "logistic":
        return f"{100 * value:{sign}.1f}%"
    decimals = 3 if outcome["key"].startswith("eq5d") else 1
    return f"{value:{sign}.{decimals}f}"


def benchmark_tables(report: dict) -> list[dict]:
    """One table per outcome: each site's n, observed, expected, O − E (95% CI), O/E (95% CI)
    for rates, and where it lies against the funnel; the shape of the cohort report's tables
    (id, title, columns, rows, footnotes) so the page and the Word document print them alike."""
    tables = []
    for outcome in report["outcomes"]:
        rate = outcome["model"] == "logistic"
        ratio_column = ["O/E (95% CI)"] if rate else []
        columns = ["Site", outcome["counts"].capitalize(), "Observed", "Expected",
                   "O − E (95% CI)", *ratio_column, "Against the funnel"]  # fmt: skip
        rows = []
        for site in outcome["sites"]:
            if site["too_small"]:
                rows.append([site["site"], site["n"], "n too small", "", "",
                             *([""] if rate else []), "not compared"])  # fmt: skip
                continue
            difference = (
                f"{_value(outcome, site['difference'], signed=True)} "
                f"({_value(outcome, site['ci_low'], signed=True)} to "
                f"{_value(outcome, site['ci_high'], signed=True)})"
            )
            ratio = (
                [f"{site['ratio']:.2f} ({site['ratio_ci_low']:.2f}–{site['ratio_ci_high']:.2f})"]
                if rate and site["ratio"] is not None
                else (["–"] if rate else [])
            )
            rows.append([site["site"], site["n"], _value(outcome, site["observed"]),
                         _value(outcome, site["expected"]), difference, *ratio,
                         site["verdict"]])  # fmt: skip
        notes = [outcome["definition"]]
        if outcome["model_error"]:
            notes.append(f"No case-mix model: {outcome['model_error']}")
        notes.append(
            f"Expected: the mean prediction of the {outcome['model']} case-mix model fitted on "
            f"every site's {outcome['counts']} (n = {outcome['n']}); sites with fewer than "
            f"{report['min_n']} {outcome['counts']} are not compared."
        )
        tables.append({"id": f"benchmark-{outcome['key']}", "title": outcome["label"],
                       "columns": columns, "rows": rows, "footnotes": notes})  # fmt: skip
    return tables


def model_tables(report: dict) -> list[dict]:
    """The appendix: each model's coefficients with 95% CIs, n, R² or c-statistic, and its
    calibration by tenths of prediction."""
    tables = []
    for outcome in report["outcomes"]:
        fit = outcome["fit"]
        if fit is None:
            continue
        if fit["kind"] == "linear":
            quality = f"R² = {fit['r_squared']:.3f}; residual SD = {fit['residual_sd']:.3f}"
        else:
            hl = fit["hosmer_lemeshow"]
            quality = f"c-statistic = {fit['c_statistic']:.3f}" + (
                f"; Hosmer–Lemeshow χ² = {hl['chi2']:.2f}, df = {hl['df']}, p = {hl['p']:.3f}"
                if hl
                else ""
            )
        rows = [
            [c["label"], f"{c['estimate']:.4f}", f"{c['ci_low']:.4f} to {c['ci_high']:.4f}",
             "<0.001" if c["p"] < 0.001 else f"{c['p']:.3f}"]
            for c in fit["coefficients"]
        ]  # fmt: skip
        calibration = "; ".join(
            f"{_value(outcome, g['predicted'])} vs {_value(outcome, g['observed'])} (n={g['n']})"
            for g in fit["calibration"]
        )
        scale = "log odds" if fit["kind"] == "logistic" else outcome["unit"]
        notes = [
            f"{fit['kind'].capitalize()} model, n = {fit['n']} {outcome['counts']}; {quality}.",
            f"Coefficients in {scale}.",
            f"Calibration, predicted vs observed by tenths of prediction: {calibration}.",
        ]
        if not fit["converged"]:
            notes.append(
                "The fit did not converge cleanly (a group in which nobody or everybody had "
                "the event): its coefficients are not interpretable; predictions still are."
            )
        tables.append({"id": f"model-{outcome['key']}", "title": f"Model: {outcome['label']}",
                       "columns": ["Predictor", "Coefficient", "95% CI", "p"], "rows": rows,
                       "footnotes": notes})  # fmt: skip
    return tables
