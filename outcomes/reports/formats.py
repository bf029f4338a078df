"""The cohort report as CSV, Markdown and SVG charts, all drawn from the one report dict."""

from __future__ import annotations

import csv
import io

from matplotlib.figure import Figure

from outcomes.models import Timepoint
from outcomes.reports.dataset import COHORTS, COLUMN_LABELS

CSV_HEADER = ["table", "row", "column", "value"]
COLOURS = {"pathologic": "#b2182b", "osteoporotic": "#2166ac", "other": "#6a6a6a"}


def report_csv(report: dict) -> str:
    """Long format, one line per cell: table id, row label, column label, value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for table in report["tables"]:
        columns = table["columns"]
        for row in table["rows"]:
            for column, value in zip(columns[1:], row[1:], strict=True):
                writer.writerow([table["id"], row[0], column, value])
    return out.getvalue()


def report_markdown(report: dict) -> str:
    filters = report["filters"]
    lines = [
        "# Cohort report: pathologic vs osteoporotic",
        "",
        f"Sites: {', '.join(filters['sites']) or 'all in scope'}; index procedures "
        f"{filters['date_from'] or 'any'} to {filters['date_to'] or 'any'}; as of "
        f"{filters['as_of']}. Cells from fewer than {report['min_n']} patients: n too small.",
    ]
    for table in report["tables"]:
        lines += ["", f"## {table['title']}", ""]
        lines.append("| " + " | ".join(_md(c) for c in table["columns"]) + " |")
        lines.append("|" + "---|" * len(table["columns"]))
        for row in table["rows"]:
            lines.append("| " + " | ".join(_md(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def _md(value) -> str:
    return str(value).replace("|", "\\|")


def _svg(figure: Figure) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = out.getvalue()
    return text[text.index("<svg") :]


def _figure() -> Figure:
    figure = Figure(figsize=(6.4, 3.6))
    figure.set_layout_engine("constrained")
    return figure


def pain_chart_svg(report: dict) -> str:
    """Mean pain VAS (± SD) at each timepoint, one line per cohort."""
    figure = _figure()
    axes = figure.subplots()
    pain = report["charts"]["pain"]
    # Only timepoints someone answered, so a line never runs through an empty one.
    shown = [
        i
        for i in range(len(Timepoint.values))
        if any(pain[column][i]["mean"] is not None for column in COHORTS)
    ]
    labels = [Timepoint(Timepoint.values[i]).label for i in shown]
    for column in COHORTS:
        points = [pain[column][i] for i in shown]
        xs = [x for x, p in enumerate(points) if p["mean"] is not None]
        if not xs:
            continue
        axes.errorbar(
            xs,
            [points[x]["mean"] for x in xs],
            yerr=[points[x]["sd"] or 0 for x in xs],
            label=f"{COLUMN_LABELS[column]}",
            color=COLOURS[column],
            marker="o",
            capsize=4,
        )
    axes.set_xticks(range(len(labels)), labels)
    axes.set_ylim(0, 100)
    axes.set_ylabel("Pain VAS, mean ± SD (0–100)")
    axes.set_title("Pain trajectory")
    axes.legend(frameon=False)
    return _svg(figure)


def survival_chart_svg(report: dict) -> str:
    """Kaplan–Meier survival from the index procedure, one step curve per cohort."""
    figure = _figure()
    axes = figure.subplots()
    for column in COHORTS:
        curve = report["charts"]["survival"][column]
        if curve["too_small"] or not curve["days"]:
            continue
        axes.step(
            curve["days"],
            curve["survival"],
            where="post",
            label=f"{COLUMN_LABELS[column]} (n={curve['n']})",
            color=COLOURS[column],
        )
    for day in (91, 365):
        axes.axvline(day, color="#cccccc", linewidth=0.8)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("Days after the index procedure")
    axes.set_ylabel("Survival (Kaplan–Meier)")
    axes.set_title("Survival")
    axes.legend(frameon=False, loc="lower left")
    return _svg(figure)
