"""The annual registry report (``manage.py annual_report``, the admin's annual report page):
inclusion and completeness by site and year, patient and procedure characteristics and
outcomes by cohort (the cohort report's own tables), the site benchmarking with its funnel
plots, complications, and a methods section stating every definition and model.

Scope: every index procedure up to 31 December of the year, with the data known on that day
(or today, for the current year). The whole registry's edition names every site; an edition
for one site (``site``) names that site, shows the others as letters, and gives its own
characteristics and outcomes beside those of the rest of the registry.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
from django.conf import settings
from django.utils import translation

import outcomes.reports.statistics as st
from outcomes.followups.schedule import PLAN_BY_TIMEPOINT
from outcomes.reports import benchmarking
from outcomes.reports.dataset import (
    FOLLOW_UP_TIMEPOINTS,
    Columns,
    ReportFilter,
    load_patients,
)
from outcomes.reports.formats import benchmark_tables, funnel_pngs, model_tables
from outcomes.reports.sites import benchmark_from_patients, registry_site_labels
from outcomes.reports.tables import build_report
from registry.models import Site

SECTIONS = (
    "Inclusion and completeness",
    "Patient and procedure characteristics",
    "Outcomes by cohort",
    "Site benchmarking",
    "Complications",
    "Methods",
    "Appendix: the case-mix models",
)
CHARACTERISTICS = ("table_1",)
OUTCOMES = ("table_2", "table_3", "changes", "responders", "completeness")


def annual_filters(year: int, *, today: datetime.date | None = None) -> ReportFilter:
    end = datetime.date(year, 12, 31)
    return ReportFilter.of(date_to=end, as_of=min(end, today or datetime.date.today()))


def _subset(patients: Columns, mask: np.ndarray) -> Columns:
    return {name: values[mask] for name, values in patients.items()}


def _pct(n: int, total: int) -> str:
    return f"{n}/{total} ({100 * n / total:.1f}%)" if total else f"{n}/{total}"


def inclusion_tables(patients: Columns, labels, year: int) -> list[dict]:
    """Index procedures per site and calendar year; follow-up completeness per site."""
    years = sorted({int(y) for y in patients["index_year"]}) or [year]
    rows = []
    order = sorted(labels.values(), key=lambda label: label.label)
    for label in order:
        mine = patients["site"] == label.site_id
        counts = [int(np.count_nonzero(mine & (patients["index_year"] == y))) for y in years]
        rows.append([label.label, *counts, int(np.count_nonzero(mine))])
    totals = [int(np.count_nonzero(patients["index_year"] == y)) for y in years]
    rows.append(["All sites", *totals, len(patients["patient_id"])])
    inclusion = {
        "id": "inclusion",
        "title": "Patients included (index procedures) by site and year",
        "columns": ["Site", *(str(y) for y in years), "Total"],
        "rows": rows,
        "footnotes": ["Each patient counts once, in the year of the index (first) procedure."],
    }
    completeness_rows = []
    results = {
        tp: st.completeness(
            death_day=patients["death_day"],
            withdrawn_day=patients["withdrawn_day"],
            as_of_day=patients["as_of_day"],
            answered=patients[f"answered_{tp}"],
            due_day=PLAN_BY_TIMEPOINT[tp].due_offset,
            window_end_day=PLAN_BY_TIMEPOINT[tp].window_end_offset,
        )
        for tp in FOLLOW_UP_TIMEPOINTS
    }
    for name, mine in [
        *((label.label, patients["site"] == label.site_id) for label in order),
        ("All sites", np.ones(len(patients["site"]), dtype=bool)),
    ]:
        cells = []
        for tp in FOLLOW_UP_TIMEPOINTS:
            r = results[tp]
            done = int(np.count_nonzero(mine & r.completed))
            closed = int(np.count_nonzero(mine & (r.completed | r.missed)))
            cells += [_pct(done, closed), int(np.count_nonzero(mine & r.still_open))]
        completeness_rows.append([name, *cells])
    completeness = {
        "id": "completeness-by-site",
        "title": "Follow-up completeness by site",
        "columns": [
            "Site",
            "3 months: completed",
            "3 months: still open",
            "12 months: completed",
            "12 months: still open",
        ],  # fmt: skip
        "rows": completeness_rows,
        "footnotes": [
            "Completed / (completed + missed): eligible patients whose window has closed "
            "(design §8); still open: eligible, window not yet closed."
        ],
    }
    return [inclusion, completeness]


def complication_table(patients: Columns, labels) -> dict:
    rows = []
    order = sorted(labels.values(), key=lambda label: label.label)
    for name, mine in [
        *((label.label, patients["site"] == label.site_id) for label in order),
        ("All sites", np.ones(len(patients["site"]), dtype=bool)),
    ]:
        n = int(np.count_nonzero(mine))
        rows.append(
            [
                name,
                n,
                int(patients["complications"][mine].sum()),
                _pct(int(np.count_nonzero(mine & (patients["complications"] > 0))), n),
                _pct(int(np.count_nonzero(mine & (patients["symptomatic_complications"] > 0))), n),
                _pct(int(np.count_nonzero(mine & (patients["worst_grade"] >= 3))), n),
                _pct(int(patients["leaks"][mine].sum()), int(patients["levels"][mine].sum())),
            ]
        )
    return {
        "id": "complications-by-site",
        "title": "Complications related to the index procedure, by site",
        "columns": [
            "Site",
            "Patients",
            "Records",
            "Patients with any",
            "Symptomatic",
            "CIRSE grade ≥ 3",
            "Cement leakage per vertebra",
        ],  # fmt: skip
        "rows": rows,
        "footnotes": [
            "Related: definite, probable or possible relation to the procedure. Patients with "
            "any, symptomatic and CIRSE ≥ 3 count each patient once (worst grade)."
        ],
    }


def _cohort_tables(report: dict, keys, suffix: str = "") -> list[dict]:
    out = []
    for table in report["tables"]:
        if table["id"] in keys:
            title = table["title"] + (f" — {suffix.strip('-').replace('-', ' ')}" if suffix else "")
            out.append({**table, "id": f"{table['id']}{suffix}", "title": title})
    return out


def methods_text(report: dict) -> list[str]:
    """Every definition and model, in words (design.md §8 and §8a)."""
    min_n = settings.REPORT_MIN_N
    mcid = (settings.REPORT_MCID_EQ5D, settings.REPORT_MCID_ODI, settings.REPORT_MCID_VAS)
    paragraphs = [
        f"Population: every patient whose index (first) procedure is on or before "
        f"{report['filters']['date_to']}, with the data recorded by {report['filters']['as_of']}. "
        "A procedure is pathologic if any treated level's etiology is malignant (metastasis, "
        "myeloma, lymphoma/leukaemia), osteoporotic if every level is osteoporotic, and other "
        "otherwise (design §7). Age is in completed years at the index procedure.",
        "Outcomes: EQ-5D-3L/5L index (each site's national value set), Oswestry Disability "
        "Index v2.1a (0–100%) and pain VAS (0–100) at baseline, 3 months (day 91) and 12 "
        f"months (day 365). The {st.PAIRED_T} compares follow-up with baseline in patients "
        f"with both; the {st.WELCH} compares the cohorts' mean changes; the {st.FISHER} or "
        f"the {st.CHI_SQUARED} compares proportions (the test is named in each table).",
        f"Responders: EQ-5D improvement ≥ {mcid[0]}, ODI ≥ {mcid[1]} points, VAS ≥ {mcid[2]} "
        "points, compared exactly on the stored values; a good result is a ≥ 50% VAS "
        "reduction (patients with a baseline VAS of 0 are left out of its denominator).",
        "Follow-up completeness at due day D (91, 365): died before = death ≤ D days after "
        "the procedure; withdrawn = consent withdrawn before D; eligible = the rest; completed "
        "= eligible with a response; missed = eligible without one once the window has closed; "
        "still open = eligible, window not yet closed.",
        "Survival: alive at day t if there is no death or death − procedure > t days "
        "(Kaplan–Meier S(t) = P(T > t)).",
        "Complications: records related to the procedure (definite, probable, possible), with "
        "their CIRSE grade; a symptomatic cement leakage is recorded once, as a complication "
        "linked to its level.",
        "Site benchmarking (case-mix adjustment): for each outcome a model is fitted on every "
        "site's patients — ordinary least squares for the ODI and EQ-5D changes, logistic "
        "regression for the rates (statsmodels) — with the baseline score of the outcome where "
        "it has one, age, sex, cohort (pathologic, other and unknown etiology against "
        "osteoporotic), number of "
        "treated levels, Karnofsky (per 10 points) and ASA class where recorded, each with an "
        "indicator of not recorded. A site's expected value is the mean prediction for its own "
        "patients (indirect standardisation); O − E is shown with its 95% CI (t interval for "
        "changes, exact Poisson interval of the observed count for rates, also as O/E).",
        "Funnel plots: O − E per patient against the number of patients n, with control limits "
        "0 ± z·√(v/n), z = 1.96 (95%) and 3.09 (99.8%), v the variance of one patient's outcome "
        "under the model (the residual variance, or the mean p(1 − p) for a rate; Spiegelhalter, "
        "Stat Med 2005). A site beyond the 99.8% limit is an outlier; beyond the 95% limit, an "
        "alert. No model is fitted from fewer than ten patients per parameter, or when the "
        f"outcome does not vary. Sites with fewer than {min_n} patients are listed with their "
        "n and never compared.",
        "Outcome definitions used for benchmarking: "
        + " ".join(f"{d.label}: {d.definition}" for d in benchmarking.DEFINITIONS),
        f"Statistics from fewer than {min_n} patients are not shown (n too small).",
    ]
    return paragraphs


def _english_filter_text(filters: ReportFilter) -> str:
    with translation.override("en"):
        return filters.describe(every_site=True)


def annual_report(*, year: int, site: Site | None = None, today=None) -> dict:
    """The annual report of ``year`` (the whole registry, or ``site``'s edition)."""
    filters = annual_filters(year, today=today)
    patients = load_patients(user=None, filters=filters)
    named = None if site is None else {site.pk}
    labels = registry_site_labels(patients, named=named)
    bench = benchmark_from_patients(patients, filters, named=named)
    if site is None:
        whole = build_report(patients, filters).data
        characteristics = _cohort_tables(whole, CHARACTERISTICS)
        outcome_tables = _cohort_tables(whole, OUTCOMES)
    else:
        mine = patients["site"] == site.pk
        own = build_report(_subset(patients, mine), filters).data
        rest = build_report(_subset(patients, ~mine), filters).data
        characteristics = [*_cohort_tables(own, CHARACTERISTICS, f"-{site.code}"),
                           *_cohort_tables(rest, CHARACTERISTICS, "-rest-of-registry")]  # fmt: skip
        outcome_tables = [*_cohort_tables(own, OUTCOMES, f"-{site.code}"),
                          *_cohort_tables(rest, OUTCOMES, "-rest-of-registry")]  # fmt: skip
    edition = f"{site.code} – {site.name}" if site else "All sites"
    inclusion = inclusion_tables(patients, labels, year)
    sections = [
        {"title": SECTIONS[0], "paragraphs": [], "tables": inclusion},
        {"title": SECTIONS[1], "paragraphs": [], "tables": characteristics},
        {"title": SECTIONS[2], "paragraphs": [], "tables": outcome_tables},
        {
            "title": SECTIONS[3],
            "paragraphs": [
                "Each site against what the whole registry achieves in patients like its own "
                "(observed − expected, case-mix adjusted). Points beyond the outer (99.8%) "
                "funnel are outliers; beyond the inner (95%), alerts."
                + ("" if site is None else f" {site.code} is named; the other sites are letters.")
            ],
            "tables": benchmark_tables(bench),
            "funnels": True,
        },
        {"title": SECTIONS[4], "paragraphs": [], "tables": [complication_table(patients, labels)]},
        {"title": SECTIONS[5], "paragraphs": methods_text(bench), "tables": []},
        {"title": SECTIONS[6], "paragraphs": [], "tables": model_tables(bench)},
    ]
    return {
        "title": f"Annual registry report {year}",
        "edition": edition,
        "year": year,
        "site": site.code if site else None,
        "filters": filters.as_dict(),
        # English like the rest of the report, whatever language the page's request is in.
        "filter_text": _english_filter_text(filters),
        "patients": int(len(patients["patient_id"])),
        "sections": sections,
        "benchmark": bench,
    }


def annual_report_docx(report: dict) -> bytes:
    """The annual report as a Word document: headings per section, tables, funnel plots."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Cm, Pt

    document = Document()
    section = document.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width, section.page_height = section.page_height, section.page_width
    for margin in ("left_margin", "right_margin", "top_margin", "bottom_margin"):
        setattr(section, margin, Cm(1.5))
    document.styles["Normal"].font.size = Pt(9)
    document.add_heading(f"{report['title']}: {report['edition']}", level=0)
    document.add_paragraph(f"{report['filter_text']} Patients: {report['patients']}.")
    for part in report["sections"]:
        document.add_heading(part["title"], level=1)
        for text in part["paragraphs"]:
            document.add_paragraph(text)
        if part.get("funnels"):
            for caption, png in funnel_pngs(report["benchmark"]):
                document.add_paragraph(f"Funnel plot: {caption}")
                document.add_picture(io.BytesIO(png), width=Cm(14))
        for table in part["tables"]:
            document.add_heading(table["title"], level=2)
            grid = document.add_table(rows=1 + len(table["rows"]), cols=len(table["columns"]))
            grid.style = "Table Grid"
            for i, label in enumerate(table["columns"]):
                grid.cell(0, i).text = str(label)
                for run in grid.cell(0, i).paragraphs[0].runs:
                    run.bold = True
            for r, row in enumerate(table["rows"], start=1):
                for c, value in enumerate(row):
                    grid.cell(r, c).text = str(value)
            for note in table["footnotes"]:
                document.add_paragraph(note, style="List Bullet")
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
