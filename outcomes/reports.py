"""The cohort report: pathologic against osteoporotic fractures, as in the source studies
(design.md §7, §8).

``cohort_report`` loads the index procedures in scope with five queries whatever the cohort
size (patients, treated levels, complications, responses, follow-ups), and ``build_report``
turns those plain rows into every table with the pure functions of ``outcomes.statistics``.
One result backs the admin page, its CSV and Markdown downloads, the API and the
``cohort_report`` command, so they cannot disagree.

Definitions chosen where the studies leave room (also in the README):
- Patient-level analyses use each patient's index (first) procedure; the date filter applies
  to the index date.
- Age is completed years at the index procedure.
- Paired analyses (Table 2, Table 3, changes, responders) use only patients with both the
  baseline and the follow-up value. Change = follow-up − baseline.
- Complications: those of the index procedure not judged unrelated, counted per patient at the
  worst CIRSE grade.
- Survival runs from the index date to death, censored at withdrawal of consent or at the
  report date. "Alive at t" n/N counts patients known alive at t over those followed to t or
  dead before it; the Kaplan–Meier estimate uses everyone.
- Follow-up completeness counts a timepoint as eligible once its due date has passed, unless
  the patient died or withdrew before it.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.db.models import Subquery
from django.utils import translation

from outcomes.models import FollowUp, QuestionnaireResponse, Timepoint
from outcomes.questionnaire_items import odi_choices
from outcomes.statistics import (
    Difference,
    Paired,
    Proportion,
    Summary,
    chi_squared,
    kaplan_meier,
    paired_t_test,
    summarise,
    welch_t_test,
)
from registry.models import Cohort, Complication, Procedure, TreatedLevel, region_of_level

COHORTS = [Cohort.PATHOLOGIC, Cohort.OSTEOPOROTIC, Cohort.OTHER]
COLUMNS = [*COHORTS, "overall"]
COLUMN_LABELS = {
    Cohort.PATHOLOGIC: "Pathologic",
    Cohort.OSTEOPOROTIC: "Osteoporotic",
    Cohort.OTHER: "Other",
    "overall": "Overall",
}
FOLLOW_UP_TIMEPOINTS = [Timepoint.MONTH_3, Timepoint.MONTH_12]
SURVIVAL_DAYS = {"3 months": 91, "1 year": 365}
TOO_SMALL = "n too small"


@dataclass(frozen=True)
class Outcome:
    key: str
    label: str
    decimals: int
    higher_is_better: bool
    mcid: float


def outcomes_measured() -> list[Outcome]:
    return [
        Outcome("eq5d_index", "EQ-5D index", 3, True, settings.REPORT_MCID_EQ5D),
        Outcome("odi_score", "ODI (%)", 1, False, settings.REPORT_MCID_ODI),
        Outcome("vas_pain", "Pain VAS (0–100)", 1, False, settings.REPORT_MCID_VAS),
    ]


@dataclass(frozen=True)
class ReportFilter:
    sites: tuple[str, ...] = ()
    date_from: datetime.date | None = None
    date_to: datetime.date | None = None
    as_of: datetime.date = field(default_factory=datetime.date.today)

    @classmethod
    def of(cls, *, sites=(), date_from=None, date_to=None, as_of=None) -> ReportFilter:
        """A filter from optional inputs (form, API query, command line); as of today unless
        given."""
        return cls(
            sites=tuple(sites or ()),
            date_from=date_from,
            date_to=date_to,
            as_of=as_of or datetime.date.today(),
        )

    def as_dict(self) -> dict:
        return {
            "sites": list(self.sites),
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "as_of": self.as_of.isoformat(),
        }


@dataclass
class PatientRow:
    procedure_id: int
    cohort: str
    index_date: datetime.date
    sex: str
    date_of_birth: datetime.date
    date_of_death: datetime.date | None
    consent_withdrawn_date: datetime.date | None
    primary_tumour: str


@dataclass
class ReportRows:
    """Everything the report needs, as plain values (the five queries' results)."""

    patients: list[PatientRow]
    levels: list[tuple]  # procedure_id, level, posterior_wall_defect, cement_leakage
    complications: list[tuple]  # procedure_id, cirse_grade
    responses: list[tuple]  # procedure_id, timepoint, eq5d_index, odi_score, vas_pain, odi_1
    followups: list[tuple]  # procedure_id, timepoint, due_date, state


def index_procedures(*, user, filters: ReportFilter):
    """The index procedures in the user's scope (every site for ``user=None``) and the filter,
    as a queryset of procedures annotated with ``cohort`` (one per patient: the first by date).
    """
    scope = Procedure.objects.all() if user is None else Procedure.objects.for_user(user)
    first = scope.order_by("patient_id", "date", "pk").distinct("patient_id").values("pk")
    queryset = Procedure.objects.with_cohort().filter(pk__in=Subquery(first))
    if filters.sites:
        queryset = queryset.filter(patient__site__code__in=filters.sites)
    if filters.date_from:
        queryset = queryset.filter(date__gte=filters.date_from)
    if filters.date_to:
        queryset = queryset.filter(date__lte=filters.date_to)
    return queryset


def load_rows(*, user, filters: ReportFilter) -> ReportRows:
    """The five queries."""
    procedures = index_procedures(user=user, filters=filters)
    ids = procedures.values("pk")
    patients = [
        PatientRow(*row)
        for row in procedures.values_list(
            "pk",
            "cohort",
            "date",
            "patient__sex",
            "patient__date_of_birth",
            "patient__date_of_death",
            "patient__consent_withdrawn_date",
            "patient__primary_tumour",
        )
    ]
    levels = list(
        TreatedLevel.objects.filter(procedure_id__in=ids).values_list(
            "procedure_id", "level", "posterior_wall_defect", "cement_leakage"
        )
    )
    complications = list(
        Complication.objects.filter(procedure_id__in=ids)
        .exclude(relation=Complication.Relation.UNRELATED)
        .values_list("procedure_id", "cirse_grade")
    )
    responses = list(
        QuestionnaireResponse.objects.filter(procedure_id__in=ids).values_list(
            "procedure_id", "timepoint", "eq5d_index", "odi_score", "vas_pain", "odi_pain_intensity"
        )
    )
    followups = list(
        FollowUp.objects.filter(procedure_id__in=ids).values_list(
            "procedure_id", "timepoint", "due_date", "state"
        )
    )
    return ReportRows(patients, levels, complications, responses, followups)


def cohort_report(*, user, filters: ReportFilter) -> dict:
    """The whole report for ``user``'s sites within ``filters``, as JSON-ready data."""
    return build_report(load_rows(user=user, filters=filters), filters)


# --- building the tables (no database below this line) -------------------------------------


def build_report(rows: ReportRows, filters: ReportFilter) -> dict:
    min_n = settings.REPORT_MIN_N
    groups = _groups(rows.patients)
    values = _response_values(rows.responses)
    tables = [
        _table_1(rows, groups, filters, min_n),
        _table_2(groups, values, min_n),
        _table_3(groups, values, min_n),
        _table_changes(groups, values, min_n),
        _table_responders(groups, values, min_n),
        _table_complications(rows, groups, min_n),
        _table_completeness(rows, groups, filters, values),
    ]
    return {
        "filters": filters.as_dict(),
        "min_n": min_n,
        "mcid": {o.key: o.mcid for o in outcomes_measured()},
        "tables": tables,
        "charts": {
            "pain": _pain_trajectory(groups, values),
            "survival": _survival_curves(groups, filters, min_n),
        },
    }


def _groups(patients: list[PatientRow]) -> dict[str, list[PatientRow]]:
    groups: dict[str, list[PatientRow]] = {column: [] for column in COLUMNS}
    for patient in patients:
        groups[patient.cohort].append(patient)
        groups["overall"].append(patient)
    return groups


class Answers(dict):
    """Response values by (procedure id, timepoint), with the paired lists already drawn
    (the tables ask for the same pairs several times)."""

    def __init__(self):
        super().__init__()
        self.pair_cache: dict[tuple, tuple[list[float], list[float]]] = {}


def _response_values(responses: list[tuple]) -> Answers:
    values = Answers()
    for procedure_id, timepoint, eq5d, odi, vas, odi_1 in responses:
        values[(procedure_id, timepoint)] = {
            "eq5d_index": _float(eq5d),
            "odi_score": _float(odi),
            "vas_pain": _float(vas),
            "odi_pain_intensity": odi_1,
        }
    return values


def _pairs(
    patients: list[PatientRow], values: Answers, key: str, timepoint: str
) -> tuple[list[float], list[float]]:
    """Baseline and ``timepoint`` values of ``key`` for the patients who have both."""
    cache_key = (id(patients), key, timepoint)
    if cache_key in values.pair_cache:
        return values.pair_cache[cache_key]
    before, after = [], []
    empty: dict = {}
    for patient in patients:
        base = values.get((patient.procedure_id, Timepoint.BASELINE), empty).get(key)
        later = values.get((patient.procedure_id, timepoint), empty).get(key)
        if base is not None and later is not None:
            before.append(base)
            after.append(later)
    values.pair_cache[cache_key] = (before, after)
    return before, after


def _table(key: str, title: str, columns: list[str], rows: list[list]) -> dict:
    return {
        "id": key,
        "title": title,
        "columns": columns,
        "rows": [[_cell(value) for value in row] for row in rows],
    }


def _cohort_header(first: str) -> list[str]:
    return [first, *(COLUMN_LABELS[c] for c in COLUMNS)]


def _table_1(rows: ReportRows, groups, filters: ReportFilter, min_n: int) -> dict:
    levels_by_procedure: dict[int, list[tuple]] = defaultdict(list)
    for level in rows.levels:
        levels_by_procedure[level[0]].append(level)
    table: list[list] = []

    def add(label, fn):
        table.append([label, *(fn(groups[c]) for c in COLUMNS)])

    def levels_of(patients):
        return [lv for p in patients for lv in levels_by_procedure[p.procedure_id]]

    def ages(patients):
        return [_age(p.date_of_birth, p.index_date) for p in patients]

    add("Patients, n", lambda ps: len(ps))
    add("Age, mean (range)", lambda ps: _mean_range(summarise(ages(ps))))
    add("Male, n (%)", lambda ps: _np(Proportion(sum(p.sex == "male" for p in ps), len(ps))))
    add(
        "Primary malignancy, n (%)",
        lambda ps: _np(Proportion(sum(bool(p.primary_tumour) for p in ps), len(ps))),
    )
    add(
        "Single treated level, n (%)",
        lambda ps: _np(
            Proportion(sum(len(levels_by_procedure[p.procedure_id]) == 1 for p in ps), len(ps))
        ),
    )
    add(
        "Multiple treated levels, n (%)",
        lambda ps: _np(
            Proportion(sum(len(levels_by_procedure[p.procedure_id]) > 1 for p in ps), len(ps))
        ),
    )
    add("Treated vertebrae, n", lambda ps: len(levels_of(ps)))
    for region, label in (("thoracic", "Thoracic"), ("lumbar", "Lumbar")):
        add(
            f"{label} vertebrae, n (%)",
            lambda ps, region=region: _np(
                Proportion(
                    sum(region_of_level(lv[1]) == region for lv in levels_of(ps)),
                    len(levels_of(ps)),
                )
            ),
        )
    add(
        "Other vertebrae (cervical, sacral), n (%)",
        lambda ps: _np(
            Proportion(
                sum(region_of_level(lv[1]) not in ("thoracic", "lumbar") for lv in levels_of(ps)),
                len(levels_of(ps)),
            )
        ),
    )
    add(
        "Posterior wall defect per vertebra, n/N (%)",
        lambda ps: _nn(Proportion(sum(lv[2] for lv in levels_of(ps)), len(levels_of(ps)))),
    )
    add(
        "Cement leakage per vertebra, n/N (%)",
        lambda ps: _nn(Proportion(sum(lv[3] for lv in levels_of(ps)), len(levels_of(ps)))),
    )
    add(
        "Cement leakage per patient, n/N (%)",
        lambda ps: _nn(
            Proportion(
                sum(any(lv[3] for lv in levels_by_procedure[p.procedure_id]) for p in ps), len(ps)
            )
        ),
    )
    graded = {procedure_id for procedure_id, _grade in rows.complications}
    add(
        "Complications (CIRSE any grade), patients n (%)",
        lambda ps: _np(Proportion(sum(p.procedure_id in graded for p in ps), len(ps))),
    )
    for label, days in SURVIVAL_DAYS.items():
        add(
            f"Alive at {label}, n/N (%)",
            lambda ps, days=days: _nn(_alive_at(ps, days, filters.as_of)),
        )
        add(
            f"Survival at {label}, Kaplan–Meier (%)",
            lambda ps, days=days: _km_cell(ps, days, filters.as_of, min_n),
        )
    return _table("table_1", "Table 1. Demographics", _cohort_header(""), table)


def _table_2(groups, values, min_n: int) -> dict:
    table = []
    for outcome in outcomes_measured():
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            for column in COLUMNS:
                before, after = _pairs(groups[column], values, outcome.key, timepoint)
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


def _table_3(groups, values, min_n: int) -> dict:
    counts = {}
    tests = {}
    for column in COLUMNS:
        before, after = _pairs(
            groups[column], values, "odi_pain_intensity", Timepoint.MONTH_12
        )  # fmt: skip
        base = [before.count(category) for category in range(6)]
        late = [after.count(category) for category in range(6)]
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


def _changes(patients, values, outcome: Outcome, timepoint: str) -> list[float]:
    before, after = _pairs(patients, values, outcome.key, timepoint)
    return [b - a for a, b in zip(before, after, strict=True)]


def _table_changes(groups, values, min_n: int) -> dict:
    table = []
    for outcome in outcomes_measured():
        for timepoint in FOLLOW_UP_TIMEPOINTS:
            path = _changes(groups[Cohort.PATHOLOGIC], values, outcome, timepoint)
            osteo = _changes(groups[Cohort.OSTEOPOROTIC], values, outcome, timepoint)
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


def _responder(outcome: Outcome, before: float, after: float) -> bool:
    change = after - before
    return change >= outcome.mcid if outcome.higher_is_better else -change >= outcome.mcid


def _table_responders(groups, values, min_n: int) -> dict:
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
        criteria.append(
            (
                "Pain VAS: reduction ≥ 50% (good result)",
                "vas_pain",
                lambda a, b: a > 0 and (a - b) / a >= 0.5,
            )
        )
        for label, key, is_responder in criteria:
            found = {}
            for column in COLUMNS:
                before, after = _pairs(groups[column], values, key, timepoint)
                found[column] = Proportion(
                    sum(is_responder(a, b) for a, b in zip(before, after, strict=True)),
                    len(before),
                )
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


def _table_complications(rows: ReportRows, groups, min_n: int) -> dict:
    worst: dict[int, int] = {}
    for procedure_id, grade in rows.complications:
        worst[procedure_id] = max(grade, worst.get(procedure_id, 0))
    table = []
    for grade in range(1, 7):
        label = Complication.CirseGrade(grade).label
        table.append(
            [
                f"CIRSE {label}",
                *(
                    _np(
                        Proportion(
                            sum(worst.get(p.procedure_id) == grade for p in groups[c]),
                            len(groups[c]),
                        )
                    )
                    for c in COLUMNS
                ),
                "",
            ]
        )
    anyone = {
        c: Proportion(sum(p.procedure_id in worst for p in groups[c]), len(groups[c]))
        for c in COLUMNS
    }
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


def _table_completeness(rows: ReportRows, groups, filters: ReportFilter, values) -> dict:
    """A timepoint counts as completed when its response is stored (whatever the follow-up's
    state says until the next sweep)."""
    patients = {p.procedure_id: p for p in groups["overall"]}
    counts = {
        tp: {"eligible": 0, "completed": 0, "missed": 0, "died": 0, "withdrawn": 0}
        for tp in Timepoint.values
    }
    for procedure_id, timepoint, due_date, state in rows.followups:
        patient = patients[procedure_id]
        row = counts[timepoint]
        if patient.date_of_death is not None and patient.date_of_death < due_date:
            row["died"] += 1
        elif patient.consent_withdrawn_date and patient.consent_withdrawn_date < due_date:
            row["withdrawn"] += 1
        elif due_date <= filters.as_of:
            row["eligible"] += 1
            answered = (procedure_id, timepoint) in values
            row["completed"] += answered
            row["missed"] += not answered and state == FollowUp.State.MISSED
    table = []
    for timepoint in Timepoint.values:
        row = counts[timepoint]
        table.append(
            [
                Timepoint(timepoint).label,
                row["eligible"],
                _np(Proportion(row["completed"], row["eligible"])),
                row["missed"],
                row["eligible"] - row["completed"] - row["missed"],
                row["died"],
                row["withdrawn"],
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


def _follow_up(patient: PatientRow, as_of: datetime.date) -> tuple[int, bool]:
    """Days from the index procedure to death (event) or censoring, and whether it died."""
    if patient.date_of_death is not None and patient.date_of_death <= as_of:
        return (patient.date_of_death - patient.index_date).days, True
    end = as_of
    if patient.consent_withdrawn_date is not None:
        end = min(end, patient.consent_withdrawn_date)
    return max((end - patient.index_date).days, 0), False


def _alive_at(patients, days: int, as_of: datetime.date) -> Proportion:
    alive = known = 0
    for patient in patients:
        followed, died = _follow_up(patient, as_of)
        if died and followed < days:
            known += 1
        elif followed >= days:
            known += 1
            alive += 1
    return Proportion(alive, known)


def _survival(patients, as_of, min_n):
    pairs = [_follow_up(p, as_of) for p in patients]
    return kaplan_meier(
        [d for d, _ in pairs], [e for _, e in pairs], at=list(SURVIVAL_DAYS.values()), min_n=min_n
    )


def _km_cell(patients, days: int, as_of, min_n: int) -> str:
    result = _survival(patients, as_of, min_n)
    if result.too_small:
        return TOO_SMALL
    estimate = result.at[days]
    return "not yet reached" if estimate is None else f"{100 * estimate:.1f}"


def _survival_curves(groups, filters: ReportFilter, min_n: int) -> dict:
    curves = {}
    for column in COHORTS:
        result = _survival(groups[column], filters.as_of, min_n)
        curves[column] = {
            "n": result.n,
            "too_small": result.too_small,
            "days": result.times,
            "survival": result.probabilities,
        }
    return curves


def _pain_trajectory(groups, values) -> dict:
    """Mean pain VAS per timepoint and cohort, with all answers at each timepoint."""
    result = {}
    for column in COHORTS:
        points = []
        for timepoint in Timepoint.values:
            scores = [
                values[(p.procedure_id, timepoint)]["vas_pain"]
                for p in groups[column]
                if values.get((p.procedure_id, timepoint), {}).get("vas_pain") is not None
            ]
            summary = summarise(scores)
            points.append(
                {"timepoint": timepoint, "n": summary.n, "mean": summary.mean, "sd": summary.sd}
            )
        result[column] = points
    return result


# --- cells ------------------------------------------------------------------------------------


def _cell(value) -> str | int:
    return value if isinstance(value, int | str) else str(value)


def _float(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal | int | float) else value


def _age(birth: datetime.date, on: datetime.date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


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
