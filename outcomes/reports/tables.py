"""The report's tables and charts from the analysis dataset: NumPy over its columns, the
definitions and SciPy tests of ``outcomes.reports.statistics`` (no database here).

Every cell carries its formatted text (HTML, Markdown, Word, formatted CSV), its numbers
(statistic, value, n: the tidy CSV) and, for counts, the patients it counts (traceability:
the admin page links each count to the list of those patients).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext

from outcomes.models import Timepoint
from outcomes.questionnaire.items import odi_choices
from outcomes.reports import statistics as st
from outcomes.reports.dataset import (
    CIRSE_GRADES,
    COHORTS,
    COLUMN_LABELS,
    DUE_DAY,
    FOLLOW_UP_TIMEPOINTS,
    SURVIVAL_DAYS,
    TOO_SMALL,
    TUMOURS,
    WINDOW_END_DAY,
    Columns,
    Outcome,
    ReportFilter,
    load_patients,
    outcomes_measured,
)
from registry.models import Cohort, Patient, TreatedLevel

OVERALL = "overall"
COMPARED = (Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC)
_M3, _M12 = DUE_DAY[Timepoint.MONTH_3], DUE_DAY[Timepoint.MONTH_12]
# Numbers at risk under the Kaplan–Meier curve: 0, 3, 6, 12, 18 and 24 months.
RISK_DAYS = (0, _M3, 2 * _M3, _M12, _M12 + 2 * _M3, 2 * _M12)


# --- cells and tables ------------------------------------------------------------------------


@dataclass
class Cell:
    text: str | int = ""
    numbers: tuple[tuple[str, float | int | None], ...] = ()
    n: int | None = None
    patients: np.ndarray | None = None  # the patients a count counts


@dataclass
class Table:
    key: str
    title: str
    columns: list[str]
    groups: list[tuple[str, int]] | None = None  # header groups over the columns: (label, span)
    labels: list[str] | None = None  # short column labels under the groups
    rows: list[tuple[str, list[Cell]]] = field(default_factory=list)
    footnotes: list[str] = field(default_factory=list)

    def add(self, label: str, cells: list[Cell | str | int]) -> None:
        cells = [c if isinstance(c, Cell) else Cell(text=c) for c in cells]
        if len(cells) != len(self.columns) - 1:
            raise ValueError(f"{self.key}: {label!r} has {len(cells)} cells")
        self.rows.append((label, cells))

    def as_dict(self, masks: dict | None) -> dict:
        numbers, links = [], {}
        for r, (label, cells) in enumerate(self.rows):
            for c, cell in enumerate(cells, start=1):
                for statistic, value in cell.numbers:
                    numbers.append(
                        {
                            "row": label,
                            "row_index": r,  # its line in ``rows`` (its heading is above)
                            "column": self.columns[c],
                            "statistic": statistic,
                            "value": value,
                            "n": cell.n,
                        }
                    )
                if cell.patients is not None:
                    key = f"{self.key}.{r}.{c}"
                    links[f"{r}.{c}"] = key
                    if masks is not None:
                        masks[key] = (label, self.columns[c], cell.patients)
        data = {
            "id": self.key,
            "title": self.title,
            "columns": self.columns,
            "rows": [[label, *(cell.text for cell in cells)] for label, cells in self.rows],
            "numbers": numbers,
            "footnotes": self.footnotes,
            "links": links,
        }
        if self.groups:
            data["header"] = {"groups": self.groups, "labels": self.labels}
        return data


def _count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def _pct(n: int, total: int) -> float | None:
    return 100.0 * n / total if total else None


def count_cell(mask: np.ndarray) -> Cell:
    n = _count(mask)
    return Cell(text=n, numbers=(("n", n),), n=n, patients=mask)


def sum_cell(values: np.ndarray, patients: np.ndarray) -> Cell:
    total = int(values.sum())
    return Cell(text=total, numbers=(("n", total),), n=total, patients=patients)


def proportion_cell(
    n: int, total: int, patients: np.ndarray, *, of: bool = False, small: bool = False
) -> Cell:
    """n (%) or, with ``of``, n/N (%); the patients counted link from the cell. ``small``
    (fewer patients behind it than the minimum n): the count only, no percentage."""
    percent = None if small else _pct(n, total)
    share = f"{n}/{total}" if of else f"{n}"
    text = f"{share} ({percent:.1f}%)" if percent is not None else share
    numbers = (("n", n),) if small else (("n", n), ("percent", percent))
    return Cell(text=text, numbers=numbers, n=total, patients=patients)


def p_text(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def too_small() -> str:
    """The text of a cell from fewer than the minimum n patients, in the active language."""
    return gettext(TOO_SMALL)


def test_cells(result: st.Comparison) -> list[Cell]:
    """The p and test-name cells of a between-cohort comparison (the test's name is its
    constant in every language)."""
    if result.too_small:
        return [Cell(text=too_small(), n=result.total), Cell(text=result.test)]
    return [
        Cell(text=p_text(result.p), numbers=((st.p_label(result.test), result.p),), n=result.total),
        Cell(text=result.test),
    ]


def _mean_sd(summary: st.Summary, decimals: int) -> str:
    if summary.too_small or summary.mean is None:
        return too_small()
    sd = "–" if summary.sd is None else f"{summary.sd:.{decimals}f}"
    return f"{summary.mean:.{decimals}f} ± {sd}"


def _signed(value: float | None, decimals: int) -> str:
    return "–" if value is None else f"{value:+.{decimals}f}".replace("-", "−")


def _fixed(value: float | None, decimals: int = 2) -> str:
    return "–" if value is None else f"{value:.{decimals}f}".replace("-", "−")


# --- the report ------------------------------------------------------------------------------


@dataclass
class Report:
    data: dict
    masks: dict[str, tuple[str, str, np.ndarray]]
    patient_ids: np.ndarray


def cohort_report(*, user, filters: ReportFilter, language: str = "en") -> dict:
    """The whole report for ``user``'s sites within ``filters``, as JSON-ready data; its labels
    in ``language`` (English, the language of the papers, for the API and the downloads)."""
    return build_report(load_patients(user=user, filters=filters), filters, language=language).data


def cohort_report_traced(*, user, filters: ReportFilter, language: str = "en") -> Report:
    """The report with the patients behind every count (for the admin's cell lists)."""
    patients = load_patients(user=user, filters=filters)
    return build_report(patients, filters, trace=True, language=language)


def build_report(
    patients: Columns, filters: ReportFilter, *, trace: bool = False, language: str = "en"
) -> Report:
    """Every table and chart of the report from the analysis dataset (``PATIENT_COLUMNS``),
    its labels in ``language``: English unless the page asks for its user's language."""
    with translation.override(language):
        return _build(patients, filters, trace=trace)


def _build(patients: Columns, filters: ReportFilter, *, trace: bool) -> Report:
    min_n = settings.REPORT_MIN_N
    builder = _Builder(patients, filters, min_n)
    tables = [
        builder.table_1(),
        builder.table_2(),
        builder.table_3(),
        builder.changes(),
        builder.responders(),
        builder.completeness(),
        builder.numbers_at_risk(),
    ]
    masks: dict | None = {} if trace else None
    data = {
        "filters": filters.as_dict(),
        "filter_text": filters.describe(),
        "filter_slug": filters.slug(),
        "min_n": min_n,
        "mcid": {o.key: o.mcid for o in outcomes_measured()},
        "columns": [gettext(COLUMN_LABELS[c]) for c in builder.shown],
        "tables": [t.as_dict(masks) for t in tables],
        "charts": {"trajectories": builder.trajectories(), "survival": builder.survival_curves()},
    }
    return Report(data=data, masks=masks or {}, patient_ids=patients["patient_id"])


class _Builder:
    def __init__(self, patients: Columns, filters: ReportFilter, min_n: int):
        self.p = patients
        self.filters = filters
        self.min_n = min_n
        cohort = patients["cohort"]
        self.groups = {c: cohort == i for i, c in enumerate(COHORTS)}
        self.groups[OVERALL] = self.groups[Cohort.PATHOLOGIC] | self.groups[Cohort.OSTEOPOROTIC]
        # Pathologic, osteoporotic, overall (the two together); "other" only when it has
        # patients, so that no column is empty.
        self.shown = [*COMPARED, OVERALL]
        if self.groups[Cohort.OTHER].any():
            self.shown.append(Cohort.OTHER)
        self._both: dict[tuple[str, str], np.ndarray] = {}
        self._survival: dict[str, st.Survival] = {}
        self.days, self.died = st.follow_up_time(
            patients["death_day"], patients["withdrawn_day"], patients["as_of_day"]
        )

    # -- helpers

    def share(self, n, total, patients, *, of=False, base=None) -> Cell:
        """A proportion; ``base``: the patients behind the denominator when it is not them
        (vertebrae), which must reach the minimum n for a percentage."""
        small = (total if base is None else base) < self.min_n
        return proportion_cell(n, total, patients, of=of, small=small)

    def header(self, first: str = "", *extra: str) -> list[str]:
        return [first, *(gettext(COLUMN_LABELS[c]) for c in self.shown), *extra]

    def common_footnotes(self) -> list[str]:
        """The notes under every table, in the active language; placeholders carry the
        numbers and the test names (their constants, the same in every language)."""
        notes = [
            self.filters.describe()
            + " "
            + gettext(
                "Each patient counts once, with the index (first) procedure. Cells from fewer "
                "than %(min_n)s patients show the count only (%(too_small)s)."
            )
            % {"min_n": self.min_n, "too_small": too_small()},
            gettext("Overall = pathologic + osteoporotic."),
        ]
        if Cohort.OTHER in self.shown:
            notes.append(
                gettext(
                    "Other: index procedures neither pathologic nor osteoporotic (design §7); "
                    "not in Overall."
                )
            )
        notes.append(
            gettext(
                "Left out for unknown etiology: %(n)s patients whose index procedure has a "
                "level of unknown etiology and none malignant (design §7); in no column."
            )
            % {"n": _count(self.groups[Cohort.UNKNOWN])}
        )
        return notes

    def per_group(self, fn) -> list[Cell]:
        return [fn(self.groups[c]) for c in self.shown]

    def compare(self, table_for, test) -> list[Cell]:
        """p and test of the pathologic against the osteoporotic column; ``table_for(mask)``
        gives a group's row of counts. Each group needs ``min_n`` patients."""
        rows = [table_for(self.groups[c]) for c in COMPARED]
        sizes = [_count(self.groups[c]) for c in COMPARED]
        return test_cells(test(rows, min_n=self.min_n, group_n=sizes))

    def no_test(self) -> list[Cell]:
        return [Cell(), Cell()]

    def pairs(self, mask, key: str, timepoint: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Baseline and ``timepoint`` values (integer units) of ``key`` for the patients in
        ``mask`` who have both, and the mask of those patients."""
        before = self.p[f"{key}_{Timepoint.BASELINE}"]
        after = self.p[f"{key}_{timepoint}"]
        if (key, timepoint) not in self._both:
            self._both[key, timepoint] = ~np.isnan(before) & ~np.isnan(after)
        both = mask & self._both[key, timepoint]
        return before[both], after[both], both

    def survival(self, column: str) -> st.Survival:
        """Kaplan–Meier of a column's patients (computed once)."""
        if column not in self._survival:
            group = self.groups[column]
            self._survival[column] = st.kaplan_meier(
                self.days[group], self.died[group], at=list(SURVIVAL_DAYS.values()),
                min_n=self.min_n,
            )  # fmt: skip
        return self._survival[column]

    # -- Table 1

    def table_1(self) -> Table:
        p = self.p
        table = Table("table_1", gettext("Table 1. Patients, treated vertebrae and complications"),
                      self.header("", "p", gettext("Test")))  # fmt: skip
        levels = p["levels"]

        def of_patients(label, test_mask, *, compare=True):
            cells = self.per_group(
                lambda g: self.share(_count(g & test_mask), _count(g), g & test_mask)
            )
            tests = (
                self.compare(
                    lambda g: [_count(g & test_mask), _count(g & ~test_mask)], st.fisher_exact
                )
                if compare
                else self.no_test()
            )
            table.add(label, [*cells, *tests])

        def of_vertebrae(label, column):
            values = p[column]
            cells = self.per_group(
                lambda g: self.share(
                    int(values[g].sum()),
                    int(levels[g].sum()),
                    g & (values > 0),
                    of=True,
                    base=_count(g),
                )
            )
            tests = self.compare(
                lambda g: [int(values[g].sum()), int((levels[g] - values[g]).sum())],
                st.fisher_exact,
            )
            table.add(label, [*cells, *tests])

        table.add(gettext("Patients, n"), [*self.per_group(count_cell), *self.no_test()])
        ages = {c: p["age"][self.groups[c]] for c in self.shown}
        table.add(
            gettext("Age at procedure, years, mean ± SD (range)"),
            [
                *(self._age_cell(ages[c]) for c in self.shown),
                *test_cells(
                    st.compare_means(
                        ages[Cohort.PATHOLOGIC], ages[Cohort.OSTEOPOROTIC], min_n=self.min_n
                    )
                ),
            ],
        )
        of_patients(gettext("Male, n (%)"), p["male"] == 1)
        self._tumours(table)

        categories = [("1", levels == 1), ("2", levels == 2), ("3", levels == 3),
                      ("≥ 4", levels >= 4)]  # fmt: skip
        table.add(
            gettext("Treated levels per patient, n (%)"),
            [
                *(Cell() for _ in self.shown),
                *self.compare(lambda g: [_count(g & m) for _l, m in categories], st.chi_squared),
            ],
        )
        for label, category in categories:
            of_patients(f"  {label}", category, compare=False)
        of_patients(gettext("Single treated level, n (%)"), levels == 1)
        of_patients(gettext("Multiple treated levels, n (%)"), levels > 1, compare=False)
        table.add(gettext("Treated vertebrae, n"), [
            *self.per_group(lambda g: sum_cell(levels[g], g & (levels > 0))), *self.no_test(),
        ])  # fmt: skip

        regions = [region.value for region in TreatedLevel.Region]
        table.add(
            gettext("Region per treated vertebra, n/N (%)"),
            [
                *(Cell() for _ in self.shown),
                *self.compare(lambda g: [int(p[r][g].sum()) for r in regions], st.chi_squared),
            ],
        )
        for region in TreatedLevel.Region:
            values = p[region.value]
            table.add(
                f"  {str(region.label)}",
                [
                    *self.per_group(
                        lambda g, v=values: self.share(
                            int(v[g].sum()),
                            int(levels[g].sum()),
                            g & (v > 0),
                            of=True,
                            base=_count(g),
                        )
                    ),
                    *self.no_test(),
                ],
            )
        other = p[TreatedLevel.Region.CERVICAL] + p[TreatedLevel.Region.SACRAL]
        table.add(
            "  " + gettext("Other (cervical + sacral)"),
            [
                *self.per_group(
                    lambda g: self.share(
                        int(other[g].sum()),
                        int(levels[g].sum()),
                        g & (other > 0),
                        of=True,
                        base=_count(g),
                    )
                ),
                *self.no_test(),
            ],
        )
        of_vertebrae(gettext("Posterior wall defect per vertebra, n/N (%)"), "posterior_wall")
        of_vertebrae(gettext("Cement leakage per vertebra, n/N (%)"), "leaks")
        of_vertebrae(
            gettext("Symptomatic cement leakage per vertebra, n/N (%)"), "symptomatic_leaks"
        )
        leaked = p["leaks"] > 0
        table.add(
            gettext("Cement leakage per patient, n/N (%)"),
            [
                *self.per_group(
                    lambda g: self.share(_count(g & leaked), _count(g), g & leaked, of=True)
                ),
                *self.compare(lambda g: [_count(g & leaked), _count(g & ~leaked)],
                              st.fisher_exact),
            ],
        )  # fmt: skip

        records = p["complications"]
        table.add(gettext("Complications, records n"), [
            *self.per_group(lambda g: sum_cell(records[g], g & (records > 0))), *self.no_test(),
        ])  # fmt: skip
        of_patients(gettext("Complications, patients n (%)"), records > 0)
        symptomatic = p["symptomatic_complications"]
        table.add(gettext("Symptomatic complications, records n"), [
            *self.per_group(lambda g: sum_cell(symptomatic[g], g & (symptomatic > 0))),
            *self.no_test(),
        ])  # fmt: skip
        of_patients(gettext("Symptomatic complications, patients n (%)"), symptomatic > 0)
        unknown = p["unknown_symptomatic"]
        table.add(gettext("Complications with symptoms not recorded, records n"), [
            *self.per_group(lambda g: sum_cell(unknown[g], g & (unknown > 0))), *self.no_test(),
        ])  # fmt: skip
        worst = p["worst_grade"]
        table.add(
            gettext("Worst CIRSE grade per patient (none, 1–6)"),
            [
                *(Cell() for _ in self.shown),
                *self.compare(lambda g: [_count(g & (worst == k)) for k in range(7)],
                              st.chi_squared),
            ],
        )  # fmt: skip
        for grade in CIRSE_GRADES:
            per_grade = p[f"grade_{grade}"]
            table.add(gettext("  CIRSE grade %(grade)s, records n") % {"grade": grade}, [
                *self.per_group(lambda g, v=per_grade: sum_cell(v[g], g & (v > 0))),
                *self.no_test(),
            ])  # fmt: skip
            worst_label = gettext("  CIRSE grade %(grade)s, patients (worst grade) n (%%)")
            of_patients(worst_label % {"grade": grade}, worst == grade, compare=False)

        for label, day in SURVIVAL_DAYS.items():
            alive, known = st.alive_at(self.days, self.died, day)
            table.add(
                gettext("Alive at %(time)s (day %(day)s), n/N (%%)")
                % {"time": gettext(label), "day": day},
                [
                    *self.per_group(
                        lambda g, a=alive, k=known: self.share(
                            _count(g & a), _count(g & k), g & a, of=True
                        )
                    ),
                    *self.compare(
                        lambda g, a=alive, k=known: [_count(g & a), _count(g & k & ~a)],
                        st.fisher_exact,
                    ),
                ],
            )
            table.add(
                gettext("Survival at %(time)s, Kaplan–Meier (%%)") % {"time": gettext(label)},
                [*(self._km_cell(c, day) for c in self.shown), *self.no_test()],
            )
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "p: pathologic against osteoporotic; %(welch)s for age, %(fisher)s (two-sided) "
                "for 2 × 2 tables, %(chi_squared)s for larger tables (categories nobody is in "
                "left out). Per-vertebra tests count vertebrae."
            )
            % {"welch": st.WELCH, "fisher": st.FISHER, "chi_squared": st.CHI_SQUARED},
            gettext(
                "Age in completed years at the index procedure. Tumour types among pathologic "
                "patients. Region per treated vertebra: cervical C2–C7, thoracic T1–T12, "
                "lumbar L1–L5, sacral S1."
            ),
            gettext(
                "Symptomatic cement leakage: the level records a symptomatic leakage, or a "
                "symptomatic complication of type symptomatic cement leakage or pulmonary "
                "cement embolism is linked to it."
            ),
            gettext(
                "Complications of the index procedure not judged unrelated (definite, "
                "probable, possible), dated up to the cut-off; symptomatic as recorded, "
                "unknown where not yet recorded."
            ),
            gettext(
                "Alive at day t: no death, or death more than t days after the procedure (a "
                "death on day t counts as dead); N leaves out patients followed less than t "
                "days (censored at withdrawal or the cut-off). Kaplan–Meier S(t) = P(T > t); "
                "3 months = day %(month_3)s, 1 year = day %(month_12)s."
            )
            % {"month_3": _M3, "month_12": _M12},
        ]
        return table

    def _age_cell(self, ages: np.ndarray) -> Cell:
        summary = st.summarise(ages, min_n=self.min_n)
        if summary.too_small:
            return Cell(text=too_small(), n=summary.n)
        sd = summary.sd
        text = (
            f"{summary.mean:.1f} ± {'–' if sd is None else f'{sd:.1f}'} "
            f"({summary.minimum:.0f}–{summary.maximum:.0f})"
        )
        numbers = (("mean", summary.mean), ("sd", sd), ("min", summary.minimum),
                   ("max", summary.maximum))  # fmt: skip
        return Cell(text=text, numbers=numbers, n=summary.n)

    def _tumours(self, table: Table) -> None:
        pathologic = self.groups[Cohort.PATHOLOGIC]
        tumour = self.p["tumour"]
        total = _count(pathologic)
        table.add(
            gettext("Primary tumour (pathologic patients), n (%)"),
            [*(Cell() for _ in self.shown), *self.no_test()],
        )
        found = [
            (str(Patient.PrimaryTumour(TUMOURS[i]).label), tumour == i)
            for i in range(len(TUMOURS))
            if (pathologic & (tumour == i)).any()
        ]
        missing = pathologic & np.isnan(tumour)
        if missing.any():
            found.append((gettext("Not recorded"), np.isnan(tumour)))
        for label, mask in found:
            cells = [
                self.share(_count(pathologic & mask), total, pathologic & mask)
                if c == Cohort.PATHOLOGIC
                else Cell()
                for c in self.shown
            ]
            table.add(f"  {label}", [*cells, *self.no_test()])

    def _km_cell(self, column: str, day: int) -> Cell:
        result = self.survival(column)
        if result.too_small:
            return Cell(text=too_small(), n=result.n)
        estimate = result.at[day]
        if estimate is None:
            return Cell(text=gettext("not yet reached"), n=result.n)
        return Cell(
            text=f"{100 * estimate:.1f}", numbers=(("km_percent", 100 * estimate),), n=result.n
        )

    # -- Table 2

    def table_2(self) -> Table:
        sub = [
            "n",
            gettext("Baseline, mean ± SD"),
            gettext("Follow-up, mean ± SD"),
            gettext("Mean change"),
            "t",
            "p",
        ]
        columns, groups = [""], [("", 1)]
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            label = str(Timepoint(timepoint).label)
            columns += [f"{label}: {s}" for s in sub]
            groups.append((label, len(sub)))
        table = Table(
            "table_2",
            gettext("Table 2. Outcomes at baseline and follow-up (patients with both values)"),
            columns,
            groups=groups,
            labels=["", *sub * len(FOLLOW_UP_TIMEPOINTS)],
        )
        for outcome in outcomes_measured():
            for column in self.shown:
                cells = []
                for timepoint in FOLLOW_UP_TIMEPOINTS:
                    cells += self._paired_cells(outcome, self.groups[column], timepoint)
                table.add(f"{outcome.label}, {gettext(COLUMN_LABELS[column])}", cells)
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "For each follow-up, only patients with both the baseline and that follow-up "
                "value (paired); n is their number. Mean change = follow-up − baseline. t and "
                "p: %(paired_t)s, scipy.stats.ttest_rel(baseline, follow-up) (t > 0 when "
                "values fell)."
            )
            % {"paired_t": st.PAIRED_T},
            gettext(
                "Answers dated up to the cut-off. EQ-5D index on the site's value set (higher "
                "is better); ODI 0–100% and pain VAS 0–100 (lower is better)."
            ),
        ]
        return table

    def _paired_cells(self, outcome: Outcome, mask, timepoint: str) -> list[Cell]:
        before, after, both = self.pairs(mask, outcome.key, timepoint)
        result = st.paired_t_test(before / outcome.scale, after / outcome.scale, min_n=self.min_n)
        n = result.n
        count = Cell(text=n, numbers=(("n", n),), n=n, patients=both)
        if result.too_small:
            return [count, *(Cell(text=too_small(), n=n) for _ in range(5))]
        d = outcome.decimals
        return [
            count,
            Cell(text=_mean_sd(result.before, d), n=n,
                 numbers=(("baseline_mean", result.before.mean),
                          ("baseline_sd", result.before.sd))),
            Cell(text=_mean_sd(result.after, d), n=n,
                 numbers=(("follow_up_mean", result.after.mean),
                          ("follow_up_sd", result.after.sd))),
            Cell(text=_signed(result.change, d), numbers=(("mean_change", result.change),), n=n),
            Cell(text=_fixed(result.t),
                 numbers=(("t", result.t),), n=n),
            Cell(text=p_text(result.p), numbers=((st.p_label(st.PAIRED_T), result.p),), n=n),
        ]  # fmt: skip

    # -- Table 3

    def table_3(self) -> Table:
        columns, groups, labels = [""], [("", 1)], [""]
        for column in self.shown:
            name = gettext(COLUMN_LABELS[column])
            columns += [gettext("%(column)s: baseline") % {"column": name},
                        gettext("%(column)s: 12 months") % {"column": name}]  # fmt: skip
            groups.append((name, 2))
            labels += [gettext("Baseline"), gettext("12 months")]
        table = Table(
            "table_3",
            gettext("Table 3. ODI section 1 (pain intensity) at baseline and 12 months, n (%)"),
            columns,
            groups=groups,
            labels=labels,
        )
        names = [str(text) for _value, text in odi_choices("pain_intensity")]
        answers = {
            timepoint: self.p[f"odi_pain_intensity_{timepoint}"]
            for timepoint in (Timepoint.BASELINE, Timepoint.MONTH_12)
        }
        answered = {t: ~np.isnan(v) for t, v in answers.items()}
        totals = {(c, t): _count(self.groups[c] & answered[t]) for c in self.shown for t in answers}
        tests = {}
        for c in self.shown:
            counts = [
                [_count(self.groups[c] & (answers[t] == k)) for k in range(6)] for t in answers
            ]
            sizes = [totals[c, t] for t in answers]
            tests[c] = st.chi_squared(counts, min_n=self.min_n, group_n=sizes)
        table.add(
            gettext("Patients answering, n"),
            [count_cell(self.groups[c] & answered[t]) for c in self.shown for t in answers],
        )
        for category in range(6):
            table.add(
                f"{category}: {names[category]}",
                [
                    self.share(
                        _count(self.groups[c] & (answers[t] == category)),
                        totals[c, t],
                        self.groups[c] & (answers[t] == category),
                    )
                    for c in self.shown
                    for t in answers
                ],
            )
        for label, statistic, fmt in (
            (gettext("Chi-squared"), "chi_squared", lambda r: _fixed(r.statistic)),
            (gettext("Degrees of freedom"), "df", lambda r: f"{r.dof:d}"),
            ("p", st.p_label(st.CHI_SQUARED), lambda r: p_text(r.p)),
        ):
            cells = []
            for c in self.shown:
                result = tests[c]
                value = {"chi_squared": result.statistic, "df": result.dof}.get(statistic, result.p)
                if result.too_small:
                    cells += [Cell(text=too_small(), n=result.total), Cell()]
                else:
                    cells += [Cell(text=fmt(result), numbers=((statistic, value),),
                                   n=result.total), Cell()]  # fmt: skip
            table.add(label, cells)
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "Not paired: baseline over every patient with a baseline answer, 12 months "
                "over every patient with a 12-month answer. %(chi_squared)s "
                "(scipy.stats.chi2_contingency) on the 2 × 6 table of each column pair, "
                "categories nobody chose left out (degrees of freedom shown); statistics need "
                "%(min_n)s patients at each timepoint."
            )
            % {"chi_squared": st.CHI_SQUARED, "min_n": self.min_n},
        ]
        return table

    # -- between cohorts

    def changes(self) -> Table:
        table = Table(
            "changes",
            gettext("Change from baseline, pathologic against osteoporotic"),
            [
                "",
                gettext("Pathologic: n"),
                gettext("Pathologic: change, mean ± SD"),
                gettext("Osteoporotic: n"),
                gettext("Osteoporotic: change, mean ± SD"),
                gettext("Difference (95% CI)"),
                "t",
                "p",
            ],
        )
        for outcome in outcomes_measured():
            for timepoint in FOLLOW_UP_TIMEPOINTS:
                changes, cells = {}, []
                for column in COMPARED:
                    before, after, both = self.pairs(self.groups[column], outcome.key, timepoint)
                    changes[column] = (after - before) / outcome.scale
                    n = len(before)
                    cells += [
                        Cell(text=n, numbers=(("n", n),), n=n, patients=both),
                        self._change_cell(changes[column], outcome.decimals),
                    ]
                result = st.welch_t_test(
                    changes[Cohort.PATHOLOGIC], changes[Cohort.OSTEOPOROTIC], min_n=self.min_n
                )
                total = result.n_a + result.n_b
                if result.too_small:
                    cells += [Cell(text=too_small(), n=total) for _ in range(3)]
                else:
                    d = outcome.decimals
                    cells += [
                        Cell(
                            text=f"{_signed(result.difference, d)} ("
                            + gettext("%(low)s to %(high)s")
                            % {"low": _signed(result.ci_low, d), "high": _signed(result.ci_high, d)}
                            + ")",
                            numbers=(("difference", result.difference),
                                     ("ci_low", result.ci_low), ("ci_high", result.ci_high)),
                            n=total,
                        ),
                        Cell(text=_fixed(result.t), numbers=(("t", result.t),), n=total),
                        Cell(text=p_text(result.p), numbers=((st.p_label(st.WELCH), result.p),),
                             n=total),
                    ]  # fmt: skip
                table.add(f"{outcome.label}, {Timepoint(timepoint).label}", cells)
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "Change = follow-up − baseline per patient with both values. Difference of "
                "mean changes (pathologic − osteoporotic) with its 95%% confidence interval, "
                "t and p of the %(welch)s (scipy.stats.ttest_ind, equal_var=False)."
            )
            % {"welch": st.WELCH},
        ]
        return table

    def _change_cell(self, change: np.ndarray, decimals: int) -> Cell:
        summary = st.summarise(change, min_n=self.min_n)
        if summary.too_small:
            return Cell(text=too_small(), n=summary.n)
        sd = "–" if summary.sd is None else f"{summary.sd:.{decimals}f}"
        return Cell(
            text=f"{_signed(summary.mean, decimals)} ± {sd}",
            numbers=(("mean", summary.mean), ("sd", summary.sd)),
            n=summary.n,
        )

    # -- responders

    def responders(self) -> Table:
        table = Table(
            "responders",
            gettext("Responders at 3 and 12 months (patients with both values), n/N (%)"),
            self.header("", "p", gettext("Test")),
        )
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            tp = Timepoint(timepoint).label
            for outcome in outcomes_measured():
                direction = (
                    gettext("improvement") if outcome.higher_is_better else gettext("reduction")
                )

                def responder(mask, o=outcome, timepoint=timepoint):
                    before, after, both = self.pairs(mask, o.key, timepoint)
                    gain = (after - before) if o.higher_is_better else (before - after)
                    hit = np.zeros_like(mask)
                    hit[both] = st.reaches(gain, o.mcid, scale=o.scale)
                    return hit, both

                self._responder_row(
                    table, f"{outcome.label}: {direction} ≥ {outcome.mcid}, {tp}", responder
                )

            def halved(mask, timepoint=timepoint):
                before, after, both = self.pairs(mask, "vas_pain", timepoint)
                good, counted = st.good_result(before, after)
                hit, denominator = np.zeros_like(mask), np.zeros_like(mask)
                hit[both], denominator[both] = good, counted
                return hit, denominator

            self._responder_row(
                table,
                gettext("Pain VAS: reduction ≥ 50%%, %(timepoint)s") % {"timepoint": tp},
                halved,
            )
            table.add(
                gettext("  Pain VAS baseline 0, left out of ≥ 50%%, %(timepoint)s, n")
                % {"timepoint": tp},
                [
                    *self.per_group(
                        lambda g, timepoint=timepoint: count_cell(
                            self.pairs(g, "vas_pain", timepoint)[2]
                            & (self.p[f"vas_pain_{Timepoint.BASELINE}"] == 0)
                        )
                    ),
                    *self.no_test(),
                ],
            )
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "N = patients with both the baseline and the follow-up value. Thresholds "
                "(MCID, configurable) compared exactly on the stored values (EQ-5D index to 3 "
                "decimals, ODI to 1 decimal, VAS in whole points): an EQ-5D change of +0.120 "
                "reaches 0.12."
            ),
            gettext(
                "≥ 50% pain reduction: 2 × (baseline − follow-up) ≥ baseline; patients with a "
                "baseline VAS of 0 cannot be halved and are left out of N (their number "
                "below)."
            ),
            gettext("p: %(fisher)s (two-sided), pathologic against osteoporotic.")
            % {"fisher": st.FISHER},
        ]
        return table

    def _responder_row(self, table: Table, label: str, classify) -> None:
        found = {}
        for c in self.shown:
            hit, denominator = classify(self.groups[c])
            found[c] = (hit, denominator)
        cells = [
            self.share(_count(found[c][0]), _count(found[c][1]), found[c][0], of=True)
            for c in self.shown
        ]
        rows = [[_count(found[c][0]), _count(found[c][1] & ~found[c][0])] for c in COMPARED]
        sizes = [_count(found[c][1]) for c in COMPARED]
        result = st.fisher_exact(rows, min_n=self.min_n, group_n=sizes)
        table.add(label, [*cells, *test_cells(result)])

    # -- completeness

    def completeness(self) -> Table:
        table = Table(
            "completeness", gettext("Follow-up completeness per timepoint"), self.header("")
        )
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            tp = Timepoint(timepoint).label
            result = st.completeness(
                death_day=self.p["death_day"],
                withdrawn_day=self.p["withdrawn_day"],
                as_of_day=self.p["as_of_day"],
                answered=self.p[f"answered_{timepoint}"],
                due_day=DUE_DAY[timepoint],
                window_end_day=WINDOW_END_DAY[timepoint],
            )
            table.add(
                gettext("%(timepoint)s: patients, n") % {"timepoint": tp},
                self.per_group(count_cell),
            )
            for label, mask in (
                (gettext("died before"), result.died),
                (gettext("withdrawn before"), result.withdrawn),
                (gettext("eligible"), result.eligible),
            ):
                table.add(f"{tp}: {label}, n", self.per_group(lambda g, m=mask: count_cell(g & m)))
            table.add(
                gettext("%(timepoint)s: completed, n/N (%%)") % {"timepoint": tp},
                self.per_group(
                    lambda g, r=result: self.share(
                        _count(g & r.completed), _count(g & r.eligible), g & r.completed, of=True
                    )
                ),
            )
            for label, mask in (
                (gettext("missed"), result.missed),
                (gettext("still open"), result.still_open),
            ):
                table.add(f"{tp}: {label}, n", self.per_group(lambda g, m=mask: count_cell(g & m)))
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "Due day D: 3 months = day %(month_3)s, 12 months = day %(month_12)s; windows "
                "close on day %(end_3)s and %(end_12)s. Died before: death ≤ D days after the "
                "procedure. Withdrawn before: consent withdrawn before day D. Eligible: the "
                "rest. Completed: eligible with an answer at that timepoint by the cut-off. "
                "Missed: eligible without one once the window has closed, or who died after "
                "the due day without answering. Still open: eligible, window not yet closed."
            )
            % {
                "month_3": _M3,
                "month_12": _M12,
                "end_3": WINDOW_END_DAY[Timepoint.MONTH_3],
                "end_12": WINDOW_END_DAY[Timepoint.MONTH_12],
            },
        ]
        return table

    # -- survival

    def numbers_at_risk(self) -> Table:
        table = Table(
            "at_risk",
            gettext("Kaplan–Meier: patients at risk"),
            ["", *(gettext("Day %(day)s") % {"day": day} for day in RISK_DAYS)],
        )
        for column in self.shown:
            group = self.groups[column]
            table.add(
                gettext(COLUMN_LABELS[column]),
                [count_cell(group & st.at_risk(self.days, day)) for day in RISK_DAYS],
            )
        table.footnotes = [
            *self.common_footnotes(),
            gettext(
                "At risk at day t: followed at least t days after the index procedure (to "
                "death, withdrawal of consent or the cut-off)."
            ),
        ]
        return table

    def survival_curves(self) -> dict:
        """Kaplan–Meier curve per cohort, drawn only while at least ``min_n`` patients are at
        risk, with the numbers at risk under it."""
        curves = {}
        for column in self.shown:
            group = self.groups[column]
            days = self.days[group]
            result = self.survival(column)
            times, survival = result.times, result.probabilities
            if not result.too_small:
                # The last day with min_n patients still at risk.
                limit = float(np.sort(days)[-self.min_n]) if self.min_n else float(days.max())
                kept = [i for i, t in enumerate(times) if t <= limit]
                times = [times[i] for i in kept] + [limit]
                survival = [survival[i] for i in kept] + [survival[kept[-1]]]
            curves[column] = {
                "label": COLUMN_LABELS[column],
                "n": result.n,
                "too_small": result.too_small,
                "days": times if not result.too_small else [],
                "survival": survival if not result.too_small else [],
                "at_risk": {str(day): _count(st.at_risk(days, day)) for day in RISK_DAYS},
            }
        return curves

    # -- trajectories

    def trajectories(self) -> dict:
        """Mean and 95% CI of each outcome per timepoint and cohort, over every answer at the
        timepoint (not paired); no point from fewer than ``min_n`` patients."""
        result = {}
        for outcome in outcomes_measured():
            per_cohort = {}
            for column in self.shown:
                if column == OVERALL:
                    continue
                points = []
                for timepoint in Timepoint.values:
                    values = self.p[f"{outcome.key}_{timepoint}"][self.groups[column]]
                    values = values[~np.isnan(values)] / outcome.scale
                    interval = st.mean_ci(values, min_n=self.min_n)
                    points.append(
                        {
                            "timepoint": timepoint,
                            "label": str(Timepoint(timepoint).label),
                            "n": interval.n,
                            "mean": interval.mean,
                            "ci_low": interval.low,
                            "ci_high": interval.high,
                        }
                    )
                per_cohort[column] = points
            result[outcome.key] = {"label": outcome.label, "cohorts": per_cohort}
        return result
