"""The report's tables and charts from the analysis dataset: NumPy over its columns and the
pure functions of ``outcomes.reports.statistics`` (no database here).
"""

from __future__ import annotations

import numpy as np
from django.conf import settings
from django.utils import translation

from outcomes.models import Timepoint
from outcomes.questionnaire.items import odi_choices
from outcomes.reports.dataset import (
    COHORTS,
    COLUMN_LABELS,
    COLUMNS,
    FOLLOW_UP_TIMEPOINTS,
    SURVIVAL_DAYS,
    TOO_SMALL,
    Columns,
    Outcome,
    ReportFilter,
    load_patients,
    outcomes_measured,
)
from outcomes.reports.statistics import (
    Difference,
    Paired,
    Proportion,
    Summary,
    Survival,
    chi_squared,
    kaplan_meier,
    paired_t_test,
    summarise,
    welch_t_test,
)
from registry.models import Cohort, Complication


def cohort_report(*, user, filters: ReportFilter) -> dict:
    """The whole report for ``user``'s sites within ``filters``, as JSON-ready data."""
    return build_report(load_patients(user=user, filters=filters), filters)


def build_report(patients: Columns, filters: ReportFilter) -> dict:
    """Every table and chart of the report from the analysis dataset (``PATIENT_COLUMNS``)."""
    min_n = settings.REPORT_MIN_N
    groups = {column: patients["cohort"] == i for i, column in enumerate(COHORTS)}
    groups["overall"] = np.ones(len(patients["cohort"]), dtype=bool)
    survival = {column: _survival(patients, groups[column], min_n) for column in COLUMNS}
    tables = [
        _table_1(patients, groups, survival),
        _table_2(patients, groups, min_n),
        _table_3(patients, groups, min_n),
        _table_changes(patients, groups, min_n),
        _table_responders(patients, groups, min_n),
        _table_complications(patients, groups, min_n),
        _table_completeness(patients),
    ]
    return {
        "filters": filters.as_dict(),
        "min_n": min_n,
        "mcid": {o.key: o.mcid for o in outcomes_measured()},
        "tables": tables,
        "charts": {
            "pain": _pain_trajectory(patients, groups),
            "survival": {
                column: {
                    "n": survival[column].n,
                    "too_small": survival[column].too_small,
                    "days": survival[column].times,
                    "survival": survival[column].probabilities,
                }
                for column in COHORTS
            },
        },
    }


def _count(mask: np.ndarray) -> int:
    return int(np.count_nonzero(mask))


def _sum(values: np.ndarray) -> int:
    return int(values.sum())


def _pairs(patients, mask, key: str, timepoint: str) -> tuple[np.ndarray, np.ndarray]:
    """Baseline and ``timepoint`` values of ``key`` for the patients in ``mask`` who have
    both."""
    before = patients[f"{key}_{Timepoint.BASELINE}"][mask]
    after = patients[f"{key}_{timepoint}"][mask]
    both = ~np.isnan(before) & ~np.isnan(after)
    return before[both], after[both]


def _table(key: str, title: str, columns: list[str], rows: list[list]) -> dict:
    return {
        "id": key,
        "title": title,
        "columns": columns,
        "rows": [[_cell(value) for value in row] for row in rows],
    }


def _cohort_header(first: str) -> list[str]:
    return [first, *(COLUMN_LABELS[c] for c in COLUMNS)]


def _table_1(patients, groups, survival) -> dict:
    table: list[list] = []

    def add(label, fn):
        table.append([label, *(fn(groups[c], c) for c in COLUMNS)])

    def column(name):
        return lambda mask: patients[name][mask]

    levels, leaks, worst = column("levels"), column("leaks"), column("worst_grade")

    def of_patients(test):
        return lambda mask, _c: _np(Proportion(_count(test(mask)), _count(mask)))

    def of_vertebrae(name):
        return lambda mask, _c: _nn(Proportion(_sum(column(name)(mask)), _sum(levels(mask))))

    add("Patients, n", lambda mask, _c: _count(mask))
    add("Age, mean (range)", lambda mask, _c: _mean_range(summarise(patients["age"][mask])))
    add("Male, n (%)", of_patients(lambda mask: column("male")(mask) == 1))
    add("Primary malignancy, n (%)", of_patients(lambda mask: column("primary")(mask) == 1))
    add("Single treated level, n (%)", of_patients(lambda mask: levels(mask) == 1))
    add("Multiple treated levels, n (%)", of_patients(lambda mask: levels(mask) > 1))
    add("Treated vertebrae, n", lambda mask, _c: _sum(levels(mask)))
    for name, label in (("thoracic", "Thoracic"), ("lumbar", "Lumbar")):
        add(
            f"{label} vertebrae, n (%)",
            lambda mask, _c, name=name: _np(
                Proportion(_sum(column(name)(mask)), _sum(levels(mask)))
            ),
        )
    add(
        "Other vertebrae (cervical, sacral), n (%)",
        lambda mask, _c: _np(
            Proportion(
                _sum(levels(mask) - column("thoracic")(mask) - column("lumbar")(mask)),
                _sum(levels(mask)),
            )
        ),
    )
    add("Posterior wall defect per vertebra, n/N (%)", of_vertebrae("posterior_wall"))
    add("Cement leakage per vertebra, n/N (%)", of_vertebrae("leaks"))
    add(
        "Cement leakage per patient, n/N (%)",
        lambda mask, _c: _nn(Proportion(_count(leaks(mask) > 0), _count(mask))),
    )
    add("Complications (CIRSE any grade), patients n (%)", of_patients(lambda m: worst(m) > 0))
    for label, days in SURVIVAL_DAYS.items():
        add(
            f"Alive at {label}, n/N (%)",
            lambda mask, _c, days=days: _nn(_alive_at(patients, mask, days)),
        )
        add(
            f"Survival at {label}, Kaplan–Meier (%)",
            lambda _mask, c, days=days: _km_cell(survival[c], days),
        )
    return _table("table_1", "Table 1. Demographics", _cohort_header(""), table)


def _table_2(patients, groups, min_n: int) -> dict:
    table = []
    for outcome in outcomes_measured():
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            for column in COLUMNS:
                before, after = _pairs(patients, groups[column], outcome.key, timepoint)
                result = paired_t_test(before, after, min_n=min_n)
                table.append(
                    [
                        outcome.label,
                        Timepoint(timepoint).label,
                        COLUMN_LABELS[column],
                        result.n,
                        *_paired_cells(result, outcome.decimals),
                    ]
                )
    return _table(
        "table_2",
        "Table 2. Outcomes before and after (patients with both values; paired t-test)",
        ["Outcome", "Follow-up", "Cohort", "n", "Baseline", "Follow-up value", "p"],
        table,
    )


def _table_3(patients, groups, min_n: int) -> dict:
    counts = {}
    tests = {}
    for column in COLUMNS:
        before, after = _pairs(patients, groups[column], "odi_pain_intensity", Timepoint.MONTH_12)
        base = [_count(before == category) for category in range(6)]
        late = [_count(after == category) for category in range(6)]
        counts[column] = (base, late, len(before))
        tests[column] = chi_squared([base, late], min_n=min_n)
    with translation.override("en"):
        labels = [str(text) for _value, text in odi_choices("pain_intensity")]
    table = []
    for category in range(6):
        row = [f"{category}: {labels[category]}"]
        for column in COLUMNS:
            base, late, n = counts[column]
            row += [_np(Proportion(base[category], n)), _np(Proportion(late[category], n))]
        table.append(row)
    table.append(
        [
            "p (chi-squared, baseline vs 12 months)",
            *[cell for c in COLUMNS for cell in ("", _p_cell(tests[c]))],
        ]
    )
    columns = ["ODI section 1, pain intensity"]
    for column in COLUMNS:
        columns += [f"{COLUMN_LABELS[column]} baseline", f"{COLUMN_LABELS[column]} 12 months"]
    return _table(
        "table_3",
        "Table 3. ODI pain intensity (section 1) at baseline and 12 months, n (%)",
        columns,
        table,
    )


def _changes(patients, mask, outcome: Outcome, timepoint: str) -> np.ndarray:
    before, after = _pairs(patients, mask, outcome.key, timepoint)
    return after - before


def _table_changes(patients, groups, min_n: int) -> dict:
    table = []
    for outcome in outcomes_measured():
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            path = _changes(patients, groups[Cohort.PATHOLOGIC], outcome, timepoint)
            osteo = _changes(patients, groups[Cohort.OSTEOPOROTIC], outcome, timepoint)
            result = welch_t_test(path, osteo, min_n=min_n)
            table.append(
                [
                    outcome.label,
                    Timepoint(timepoint).label,
                    *_difference_cells(result, outcome.decimals),
                ]
            )
    return _table(
        "changes",
        "Change from baseline, pathologic vs osteoporotic (Welch t-test)",
        [
            "Outcome",
            "Follow-up",
            "Pathologic change, mean (n)",
            "Osteoporotic change, mean (n)",
            "Difference (95% CI)",
            "p",
        ],
        table,
    )


def _responder(outcome: Outcome, before: np.ndarray, after: np.ndarray) -> np.ndarray:
    change = after - before
    return change >= outcome.mcid if outcome.higher_is_better else -change >= outcome.mcid


def _halved(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """A reduction of at least 50% (a baseline of 0 cannot be halved)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (before > 0) & ((before - after) / before >= 0.5)


def _table_responders(patients, groups, min_n: int) -> dict:
    table = []
    compared = [Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC]
    for timepoint in FOLLOW_UP_TIMEPOINTS:
        criteria = []
        for outcome in outcomes_measured():
            direction = "improvement" if outcome.higher_is_better else "reduction"
            criteria.append(
                (
                    f"{outcome.label}: {direction} ≥ {outcome.mcid:g} (MCID)",
                    outcome.key,
                    lambda a, b, o=outcome: _responder(o, a, b),
                )
            )
        criteria.append(("Pain VAS: reduction ≥ 50% (good result)", "vas_pain", _halved))
        for label, key, is_responder in criteria:
            found = {}
            for column in COLUMNS:
                before, after = _pairs(patients, groups[column], key, timepoint)
                found[column] = Proportion(_count(is_responder(before, after)), len(before))
            test = chi_squared(
                [[found[c].n, found[c].total - found[c].n] for c in compared], min_n=min_n
            )
            table.append(
                [
                    label,
                    Timepoint(timepoint).label,
                    *(_nn(found[c]) for c in COLUMNS),
                    _p_cell(test),
                ]
            )
    return _table(
        "responders",
        "Responders (patients with both values), pathologic vs osteoporotic (chi-squared)",
        ["Criterion", "Follow-up", *(COLUMN_LABELS[c] for c in COLUMNS), "p"],
        table,
    )


def _table_complications(patients, groups, min_n: int) -> dict:
    worst = patients["worst_grade"]
    table = []
    for grade in range(1, 7):
        label = Complication.CirseGrade(grade).label
        table.append(
            [
                f"CIRSE {label}",
                *(
                    _np(Proportion(_count(worst[groups[c]] == grade), _count(groups[c])))
                    for c in COLUMNS
                ),
                "",
            ]
        )
    anyone = {c: Proportion(_count(worst[groups[c]] > 0), _count(groups[c])) for c in COLUMNS}
    test = chi_squared(
        [
            [anyone[c].n, anyone[c].total - anyone[c].n]
            for c in (Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC)
        ],
        min_n=min_n,
    )
    table.append(["Any complication", *(_np(anyone[c]) for c in COLUMNS), _p_cell(test)])
    return _table(
        "complications",
        "Complications of the index procedure by worst CIRSE grade, patients n (%)",
        [*_cohort_header("Grade"), "p (any, pathologic vs osteoporotic)"],
        table,
    )


def _table_completeness(patients) -> dict:
    """A timepoint is eligible once its follow-up is due, unless the patient died or withdrew
    before it; it is completed when its response is stored (whatever the follow-up's state
    says until the next sweep)."""
    table = []
    for timepoint in Timepoint.values:
        due = patients[f"due_day_{timepoint}"]
        scheduled = ~np.isnan(due)
        died = scheduled & (patients["death_day"] < due)
        withdrawn = scheduled & ~died & (patients["withdrawn_day"] < due)
        eligible = scheduled & ~died & ~withdrawn & (due <= patients["as_of_day"])
        answered = patients[f"answered_{timepoint}"] == 1
        completed = _count(eligible & answered)
        missed = _count(eligible & ~answered & (patients[f"missed_{timepoint}"] == 1))
        table.append(
            [
                Timepoint(timepoint).label,
                _count(eligible),
                _np(Proportion(completed, _count(eligible))),
                missed,
                _count(eligible) - completed - missed,
                _count(died),
                _count(withdrawn),
            ]
        )
    return _table(
        "completeness",
        "Follow-up completeness (all cohorts)",
        [
            "Timepoint",
            "Eligible (due)",
            "Completed, n (%)",
            "Missed",
            "Still open",
            "Died before",
            "Withdrawn before",
        ],
        table,
    )


# --- survival --------------------------------------------------------------------------------


def _follow_up(patients, mask) -> tuple[np.ndarray, np.ndarray]:
    """Days from the index procedure to death (event) or censoring at withdrawal or the
    report date, and whether each patient died."""
    death = patients["death_day"][mask]
    as_of = patients["as_of_day"][mask]
    died = death <= as_of  # False where there is no death (NaN)
    censored = np.maximum(np.fmin(as_of, patients["withdrawn_day"][mask]), 0)
    return np.where(died, death, censored), died


def _alive_at(patients, mask, days: int) -> Proportion:
    """Known alive at ``days`` over those followed that long or dead before."""
    followed, died = _follow_up(patients, mask)
    alive = followed >= days
    return Proportion(_count(alive), _count(alive | (died & (followed < days))))


def _survival(patients, mask, min_n: int) -> Survival:
    followed, died = _follow_up(patients, mask)
    return kaplan_meier(followed, died, at=list(SURVIVAL_DAYS.values()), min_n=min_n)


def _km_cell(result: Survival, days: int) -> str:
    if result.too_small:
        return TOO_SMALL
    estimate = result.at[days]
    return "not yet reached" if estimate is None else f"{100 * estimate:.1f}"


def _pain_trajectory(patients, groups) -> dict:
    """Mean pain VAS per timepoint and cohort, with all answers at each timepoint."""
    result = {}
    for column in COHORTS:
        points = []
        for timepoint in Timepoint.values:
            scores = patients[f"vas_pain_{timepoint}"][groups[column]]
            summary = summarise(scores[~np.isnan(scores)])
            points.append(
                {"timepoint": timepoint, "n": summary.n, "mean": summary.mean, "sd": summary.sd}
            )
        result[column] = points
    return result


# --- cells ------------------------------------------------------------------------------------


def _cell(value) -> str | int:
    return value if isinstance(value, int | str) else str(value)


def _mean_range(summary: Summary) -> str:
    if summary.too_small:
        return "–"
    return f"{summary.mean:.1f} ({summary.minimum:.0f}–{summary.maximum:.0f})"


def _np(proportion: Proportion) -> str:
    if not proportion.total:
        return "0"
    return f"{proportion.n} ({proportion.percent:.1f}%)"


def _nn(proportion: Proportion) -> str:
    if not proportion.total:
        return "0/0"
    return f"{proportion.n}/{proportion.total} ({proportion.percent:.1f}%)"


def _mean_sd(summary: Summary, decimals: int) -> str:
    sd = "–" if summary.sd is None else f"{summary.sd:.{decimals}f}"
    return f"{summary.mean:.{decimals}f} ± {sd}"


def _format_p(p: float | None) -> str:
    if p is None:
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _p_cell(test) -> str:
    return TOO_SMALL if test.too_small else _format_p(test.p)


def _paired_cells(result: Paired, decimals: int) -> list[str]:
    if result.too_small:
        return [TOO_SMALL, TOO_SMALL, TOO_SMALL]
    return [
        _mean_sd(result.before, decimals),
        _mean_sd(result.after, decimals),
        _format_p(result.p),
    ]


def _difference_cells(result: Difference, decimals: int) -> list[str]:
    if result.too_small:
        return [f"n={result.n_a}", f"n={result.n_b}", TOO_SMALL, TOO_SMALL]
    d = decimals
    return [
        f"{result.mean_a:.{d}f} ({result.n_a})",
        f"{result.mean_b:.{d}f} ({result.n_b})",
        f"{result.difference:.{d}f} ({result.ci_low:.{d}f} to {result.ci_high:.{d}f})",
        _format_p(result.p),
    ]
