"""The cohort report against an independent computation (design.md §8).

A fixture cohort of 48 patients (pathologic, osteoporotic and other) is built to hold the
edge cases: an EQ-5D change of exactly +0.120, an ODI change of exactly 10.0, baseline VAS 0,
deaths on the 3-month and 1-year due days and one day after, withdrawals before a due day,
answers after the cut-off, unrelated and symptomatic complications, cervical and sacral
levels, four or more levels. The expected numbers are computed here, from the raw rows this
test wrote, with SciPy and plain Python (never the report's code), and compared number by
number with the report's tidy numbers: counts exactly, statistics to 1e-9.
"""

from __future__ import annotations

import datetime
import math
import random
from decimal import Decimal

import numpy as np
import pytest
from scipy import stats

from outcomes.models import QuestionnaireResponse
from outcomes.reports.dataset import ReportFilter
from outcomes.reports.tables import cohort_report
from tests.factories import make_complication, make_level, make_patient, make_procedure

START = datetime.date(2024, 1, 8)
AS_OF = datetime.date(2025, 6, 30)
MIN_N = 5
COLUMNS = ["Pathologic", "Osteoporotic", "Overall", "Other"]
TIMEPOINTS = {"month_3": ("3 months", 91, 120), "month_12": ("12 months", 365, 450)}
TUMOURS = {"breast": "Breast", "lung": "Lung", "multiple_myeloma": "Multiple myeloma", "": None}
REGIONS = [("Cervical", 2, 7), ("Thoracic", 8, 19), ("Lumbar", 20, 24), ("Sacral", 25, 25)]
OUTCOMES = [  # key, label, higher is better, MCID, decimals
    ("eq5d", "EQ-5D index", True, Decimal("0.12")),
    ("odi", "ODI (%)", False, Decimal("10")),
    ("vas", "Pain VAS (0–100)", False, Decimal("15")),
]
MCID_TEXT = {"eq5d": "0.12", "odi": "10.0", "vas": "15.0"}


def _day(n: int) -> datetime.date:
    return START + datetime.timedelta(days=n)


def _build(site) -> list[dict]:
    """Write the cohort and return its raw rows as plain Python (what was stored)."""
    rng = random.Random(16)
    deaths = {0: 91, 1: 92, 2: 365, 3: 366, 5: 30, 13: 200, 26: 91, 30: 400}
    withdrawals = {7: 60, 18: 90, 19: 91, 31: 300}
    patients = []
    responses = []
    for i in range(48):
        kind = ("pathologic", "osteoporotic", "other")[0 if i % 12 < 5 else 1 if i % 12 < 11 else 2]
        offset = (i * 37) % 170  # index dates over ~6 months, so some 12-month windows are open
        index = _day(offset)
        born = datetime.date(1930 + rng.randrange(35), index.month, min(index.day, 28))
        if i % 4 == 0:  # birthday one day after the procedure: one year younger
            born = born + datetime.timedelta(days=1)
        death = deaths.get(i)
        withdrawn = withdrawals.get(i)
        patient = make_patient(
            site,
            sex="male" if rng.random() < 0.45 else "female",
            date_of_birth=born,
            consent_date=index,
            consent_withdrawn_date=_day(offset + withdrawn) if withdrawn else None,
            date_of_death=_day(offset + death) if death else None,
            cause_of_death="other" if death else "",
            primary_tumour=rng.choice(list(TUMOURS)) if kind == "pathologic" else "",
        )
        procedure = make_procedure(patient, date=index)
        count = [1, 2, 3, 4, 5, 1, 2][i % 7]
        first = rng.choice([5, 8, 15, 18, 22, 25 - count + 1])
        levels = []
        for k in range(count):
            level = min(first, 25 - count + 1) + k
            etiology = {
                "pathologic": "metastasis"
                if k == 0
                else rng.choice(["osteoporotic", "metastasis"]),
                "osteoporotic": "osteoporotic",
                "other": "haemangioma",
            }[kind]
            leak = rng.random() < 0.35
            symptomatic = leak and rng.random() < 0.3
            made = make_level(
                procedure,
                level=level,
                etiology=etiology,
                posterior_wall_defect=rng.random() < 0.25,
                cement_leakage=leak,
                leakage_sites=["paravertebral"] if leak else [],
                leakage_detected_by="ct" if leak else "",
                leakage_symptomatic=symptomatic,
            )
            levels.append(
                {
                    "level": level,
                    "posterior": made.posterior_wall_defect,
                    "leak": leak,
                    "symptomatic": symptomatic,
                    "obj": made,
                }
            )
        complications = []
        if rng.random() < 0.4 or i in (4, 9):
            for _ in range(rng.choice([1, 1, 2])):
                grade = rng.choice([1, 2, 2, 3, 4])
                record = {
                    "grade": grade,
                    "relation": rng.choice(["definite", "probable", "possible", "unrelated"]),
                    "symptomatic": rng.choice([True, False, None]),
                    "type": "haematoma",
                    "day": rng.randrange(0, 20),
                    "level": None,
                }
                complications.append(record)
        if i == 9:  # a symptomatic leakage complication on a level not flagged symptomatic
            target = next(lv for lv in levels if not lv["symptomatic"])
            complications.append(
                {
                    "grade": 2,
                    "relation": "definite",
                    "symptomatic": True,
                    "type": "symptomatic_leakage",
                    "day": 1,
                    "level": target,
                }
            )
        if i == 4:  # dated after the cut-off: not counted
            complications.append(
                {
                    "grade": 3,
                    "relation": "definite",
                    "symptomatic": True,
                    "type": "haematoma",
                    "day": 600,
                    "level": None,
                }
            )
        for record in complications:
            make_complication(
                procedure,
                cirse_grade=record["grade"],
                relation=record["relation"],
                symptomatic=record["symptomatic"],
                type=record["type"],
                date=_day(offset + record["day"]),
                treated_level=record["level"]["obj"] if record["level"] else None,
            )
        answers = {}
        for timepoint, due, chance in (
            ("baseline", 0, 0.9),
            ("month_3", 95, 0.75),
            ("month_12", 370, 0.6),
        ):
            if death is not None and death <= due:
                continue
            if rng.random() > chance and not (timepoint == "baseline" and i in (6, 10, 11, 16)):
                continue
            vas = rng.randrange(0, 101)
            eq5d = Decimal(rng.randrange(-200, 1001)) / 1000
            odi = Decimal(rng.randrange(0, 1001)) / 10
            if timepoint == "baseline" and i in (6, 16):
                vas = 0
            if i in (10, 11, 12, 15, 17, 22, 23, 27):  # EQ-5D +0.120 and ODI −10.0 exactly
                eq5d = {
                    "baseline": Decimal("0.464"),
                    "month_3": Decimal("0.584"),
                    "month_12": Decimal("0.583"),
                }[timepoint]
                odi = {
                    "baseline": Decimal("42.0"),
                    "month_3": Decimal("32.0"),
                    "month_12": Decimal("32.1"),
                }[timepoint]
            if i in (10, 12, 15):  # a pain reduction of exactly 50% at 3 months
                vas = {"baseline": 80, "month_3": 40, "month_12": 41}[timepoint]
            answered_on = _day(offset + due)
            answers[timepoint] = {
                "vas": vas,
                "eq5d": eq5d,
                "odi": odi,
                "pain": rng.randrange(0, 6) if rng.random() < 0.95 else None,
                "counted": answered_on <= AS_OF,
            }
            responses.append(
                QuestionnaireResponse(
                    procedure=procedure,
                    timepoint=timepoint,
                    mode="paper",
                    answered_on=answered_on,
                    vas_pain=vas,
                    eq5d_version="5L",
                    eq5d_mobility=1,
                    eq5d_self_care=1,
                    eq5d_usual_activities=1,
                    eq5d_pain_discomfort=1,
                    eq5d_anxiety_depression=1,
                    eq5d_value_set="DK-5L",
                    eq5d_index=eq5d,
                    odi_score=odi,
                    odi_pain_intensity=answers[timepoint]["pain"],
                )
            )
        patients.append(
            {
                "cohort": kind,
                "index": index,
                "born": born,
                "male": patient.sex == "male",
                "tumour": patient.primary_tumour,
                "death": death,
                "withdrawn": withdrawn,
                "as_of": (AS_OF - index).days,
                "levels": levels,
                "complications": [
                    c for c in complications if offset + c["day"] <= (AS_OF - START).days
                ],
                "answers": {t: a for t, a in answers.items() if a["counted"]},
            }
        )
    QuestionnaireResponse.objects.bulk_create(responses)
    return patients


# --- the expected numbers, from the raw rows ----------------------------------------------------


def _groups(patients):
    by = {
        "Pathologic": [p for p in patients if p["cohort"] == "pathologic"],
        "Osteoporotic": [p for p in patients if p["cohort"] == "osteoporotic"],
        "Other": [p for p in patients if p["cohort"] == "other"],
    }
    by["Overall"] = by["Pathologic"] + by["Osteoporotic"]
    return by


def _age(p) -> int:
    on, born = p["index"], p["born"]
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _expected(patients) -> dict:
    groups = _groups(patients)
    e: dict = {}

    def put(table, row, column, statistic, value):
        e[(table, row, column, statistic)] = value

    def share(table, row, counts, per_vertebra=False):  # counts: column → (n, N)
        """n, and the percentage when MIN_N patients are behind N (the cohort's patients
        when N counts vertebrae)."""
        for column, (n, total) in counts.items():
            put(table, row, column, "n", n)
            patients = len(groups[column]) if per_vertebra else total
            if patients >= MIN_N:
                put(table, row, column, "percent", 100 * n / total if total else None)

    def fisher(table, row, counts, label="p (Fisher's exact test)", per_patient=True):
        """per_patient: each cohort needs MIN_N patients; else MIN_N in the denominator."""
        (a, n_a), (b, n_b) = counts["Pathologic"], counts["Osteoporotic"]
        sizes = (
            [len(groups["Pathologic"]), len(groups["Osteoporotic"])] if per_patient else [n_a, n_b]
        )
        if min(sizes) >= MIN_N:
            put(table, row, "p", label, stats.fisher_exact([[a, n_a - a], [b, n_b - b]]).pvalue)

    def chi2(table, row, rows, label="p (Chi-squared test)"):
        array = np.array(rows, dtype=float)
        array = array[array.sum(axis=1) > 0][:, array.sum(axis=0) > 0]
        put(table, row, "p", label, stats.chi2_contingency(array).pvalue)

    def patients_share(row, test, compare=True):
        counts = {c: (sum(map(test, g)), len(g)) for c, g in groups.items()}
        share("table_1", row, counts)
        if compare:
            fisher("table_1", row, counts)

    def vertebrae(p, test):
        return sum(1 for level in p["levels"] if test(level))

    def vertebra_share(row, test, compare=True):
        counts = {
            c: (sum(vertebrae(p, test) for p in g), sum(len(p["levels"]) for p in g))
            for c, g in groups.items()
        }
        share("table_1", row, counts, per_vertebra=True)
        if compare:
            fisher("table_1", row, counts)

    def related(p):
        return [c for c in p["complications"] if c["relation"] != "unrelated"]

    # Table 1
    for column, g in groups.items():
        put("table_1", "Patients, n", column, "n", len(g))
        ages = [_age(p) for p in g]
        described = stats.describe(ages)
        for statistic, value in (
            ()
            if len(ages) < MIN_N
            else (
                ("mean", described.mean),
                ("sd", math.sqrt(described.variance)),
                ("min", described.minmax[0]),
                ("max", described.minmax[1]),
            )
        ):
            put("table_1", "Age at procedure, years, mean ± SD (range)", column, statistic, value)
    put(
        "table_1",
        "Age at procedure, years, mean ± SD (range)",
        "p",
        "p (Welch t-test)",
        stats.ttest_ind(
            [_age(p) for p in groups["Pathologic"]],
            [_age(p) for p in groups["Osteoporotic"]],
            equal_var=False,
        ).pvalue,
    )
    patients_share("Male, n (%)", lambda p: p["male"])
    path = groups["Pathologic"]
    for code, label in TUMOURS.items():
        n = sum(p["tumour"] == code for p in path)
        if n:
            share("table_1", label or "Not recorded", {"Pathologic": (n, len(path))})
    categories = [
        ("1", lambda k: k == 1),
        ("2", lambda k: k == 2),
        ("3", lambda k: k == 3),
        ("≥ 4", lambda k: k >= 4),
    ]
    chi2(
        "table_1",
        "Treated levels per patient, n (%)",
        [
            [sum(test(len(p["levels"])) for p in groups[c]) for _l, test in categories]
            for c in ("Pathologic", "Osteoporotic")
        ],
    )
    for label, test in categories:
        patients_share(label, lambda p, t=test: t(len(p["levels"])), compare=False)
    patients_share("Single treated level, n (%)", lambda p: len(p["levels"]) == 1)
    patients_share("Multiple treated levels, n (%)", lambda p: len(p["levels"]) > 1, compare=False)
    for column, g in groups.items():
        put("table_1", "Treated vertebrae, n", column, "n", sum(len(p["levels"]) for p in g))
    chi2(
        "table_1",
        "Region per treated vertebra, n/N (%)",
        [
            [
                sum(vertebrae(p, lambda lv, a=a, b=b: a <= lv["level"] <= b) for p in groups[c])
                for _r, a, b in REGIONS
            ]
            for c in ("Pathologic", "Osteoporotic")
        ],
    )
    for label, a, b in REGIONS:
        vertebra_share(label, lambda lv, a=a, b=b: a <= lv["level"] <= b, compare=False)
    vertebra_share(
        "Other (cervical + sacral)", lambda lv: lv["level"] <= 7 or lv["level"] == 25, compare=False
    )
    vertebra_share("Posterior wall defect per vertebra, n/N (%)", lambda lv: lv["posterior"])
    vertebra_share("Cement leakage per vertebra, n/N (%)", lambda lv: lv["leak"])

    def symptomatic_leak(p):
        linked = {
            id(c["level"])
            for c in p["complications"]
            if c["level"]
            and c["symptomatic"] is True
            and c["type"] in ("symptomatic_leakage", "pulmonary_embolism")
        }
        return lambda lv: lv["symptomatic"] or id(lv) in linked

    counts = {
        c: (sum(vertebrae(p, symptomatic_leak(p)) for p in g), sum(len(p["levels"]) for p in g))
        for c, g in groups.items()
    }
    share("table_1", "Symptomatic cement leakage per vertebra, n/N (%)", counts, per_vertebra=True)
    fisher("table_1", "Symptomatic cement leakage per vertebra, n/N (%)", counts)
    patients_share(
        "Cement leakage per patient, n/N (%)", lambda p: any(lv["leak"] for lv in p["levels"])
    )
    for column, g in groups.items():
        put("table_1", "Complications, records n", column, "n", sum(len(related(p)) for p in g))
        put(
            "table_1",
            "Symptomatic complications, records n",
            column,
            "n",
            sum(c["symptomatic"] is True for p in g for c in related(p)),
        )
        put(
            "table_1",
            "Complications with symptoms not recorded, records n",
            column,
            "n",
            sum(c["symptomatic"] is None for p in g for c in related(p)),
        )
        for grade in range(1, 7):
            put(
                "table_1",
                f"CIRSE grade {grade}, records n",
                column,
                "n",
                sum(c["grade"] == grade for p in g for c in related(p)),
            )
    patients_share("Complications, patients n (%)", lambda p: bool(related(p)))
    patients_share(
        "Symptomatic complications, patients n (%)",
        lambda p: any(c["symptomatic"] is True for c in related(p)),
    )

    def worst(p):
        return max((c["grade"] for c in related(p)), default=0)

    chi2(
        "table_1",
        "Worst CIRSE grade per patient (none, 1–6)",
        [
            [sum(worst(p) == k for p in groups[c]) for k in range(7)]
            for c in ("Pathologic", "Osteoporotic")
        ],
    )
    for grade in range(1, 7):
        patients_share(
            f"CIRSE grade {grade}, patients (worst grade) n (%)",
            lambda p, k=grade: worst(p) == k,
            compare=False,
        )

    def followed(p):
        if p["death"] is not None and p["death"] <= p["as_of"]:
            return p["death"], True
        end = p["as_of"] if p["withdrawn"] is None else min(p["as_of"], p["withdrawn"])
        return end, False

    for label, day in (("3 months", 91), ("1 year", 365)):
        row = f"Alive at {label} (day {day}), n/N (%)"
        counts = {}
        for column, g in groups.items():
            alive = [
                p
                for p in g
                if not (followed(p)[1] and followed(p)[0] <= day) and followed(p)[0] >= day
            ]
            dead = [p for p in g if followed(p)[1] and followed(p)[0] <= day]
            counts[column] = (len(alive), len(alive) + len(dead))
            times = [followed(p) for p in g]
            curve = stats.ecdf(
                stats.CensoredData(
                    uncensored=[t for t, d in times if d], right=[t for t, d in times if not d]
                )
            ).sf
            if max(t for t, _d in times) >= day and len(g) >= MIN_N:
                put(
                    "table_1",
                    f"Survival at {label}, Kaplan–Meier (%)",
                    column,
                    "km_percent",
                    100 * float(curve.evaluate(day)),
                )
        share("table_1", row, counts)
        fisher("table_1", row, counts)

    # Table 2, changes and responders
    def pairs(g, key, timepoint):
        both = [p for p in g if "baseline" in p["answers"] and timepoint in p["answers"]]
        return (
            both,
            [float(p["answers"]["baseline"][key]) for p in both],
            [float(p["answers"][timepoint][key]) for p in both],
        )

    for key, label, _higher, _mcid in OUTCOMES:
        for column, g in groups.items():
            row = f"{label}, {column}"
            for timepoint, (tp, _due, _end) in TIMEPOINTS.items():
                _both, before, after = pairs(g, key, timepoint)
                put("table_2", row, f"{tp}: n", "n", len(before))
                if len(before) < MIN_N:
                    continue
                test = stats.ttest_rel(before, after)
                for name, values in (("baseline", before), ("follow_up", after)):
                    column_name = "Baseline" if name == "baseline" else "Follow-up"
                    described = stats.describe(values)
                    put(
                        "table_2",
                        row,
                        f"{tp}: {column_name}, mean ± SD",
                        f"{name}_mean",
                        described.mean,
                    )
                    put(
                        "table_2",
                        row,
                        f"{tp}: {column_name}, mean ± SD",
                        f"{name}_sd",
                        math.sqrt(described.variance),
                    )
                put(
                    "table_2",
                    row,
                    f"{tp}: Mean change",
                    "mean_change",
                    np.mean(after) - np.mean(before),
                )
                put("table_2", row, f"{tp}: t", "t", test.statistic)
                put("table_2", row, f"{tp}: p", "p (Paired t-test)", test.pvalue)
        for timepoint, (tp, _due, _end) in TIMEPOINTS.items():
            row = f"{label}, {tp}"
            changes = {}
            for column in ("Pathologic", "Osteoporotic"):
                _both, before, after = pairs(groups[column], key, timepoint)
                changes[column] = [a - b for b, a in zip(before, after, strict=True)]
                put("changes", row, f"{column}: n", "n", len(before))
                if len(before) >= MIN_N:
                    put(
                        "changes",
                        row,
                        f"{column}: change, mean ± SD",
                        "mean",
                        np.mean(changes[column]),
                    )
                    put(
                        "changes",
                        row,
                        f"{column}: change, mean ± SD",
                        "sd",
                        stats.tstd(changes[column]),
                    )
            if min(map(len, changes.values())) >= MIN_N:
                test = stats.ttest_ind(
                    changes["Pathologic"], changes["Osteoporotic"], equal_var=False
                )
                interval = test.confidence_interval(0.95)
                difference = np.mean(changes["Pathologic"]) - np.mean(changes["Osteoporotic"])
                put("changes", row, "Difference (95% CI)", "difference", difference)
                put("changes", row, "Difference (95% CI)", "ci_low", interval.low)
                put("changes", row, "Difference (95% CI)", "ci_high", interval.high)
                put("changes", row, "t", "t", test.statistic)
                put("changes", row, "p", "p (Welch t-test)", test.pvalue)
    for timepoint, (tp, due, window_end) in TIMEPOINTS.items():
        for key, label, higher, mcid in OUTCOMES:
            direction = "improvement" if higher else "reduction"
            row = f"{label}: {direction} ≥ {MCID_TEXT[key]}, {tp}"
            counts = {}
            for column, g in groups.items():
                both = [p for p in g if "baseline" in p["answers"] and timepoint in p["answers"]]
                gains = [
                    (p["answers"][timepoint][key] - p["answers"]["baseline"][key])
                    * (1 if higher else -1)
                    for p in both
                ]  # Decimal: exact
                counts[column] = (sum(gain >= mcid for gain in gains), len(both))
            share("responders", row, counts)
            fisher("responders", row, counts, per_patient=False)
        row = f"Pain VAS: reduction ≥ 50%, {tp}"
        counts = {}
        for column, g in groups.items():
            both = [p for p in g if "baseline" in p["answers"] and timepoint in p["answers"]]
            counted = [p for p in both if p["answers"]["baseline"]["vas"] > 0]
            good = [
                p
                for p in counted
                if p["answers"][timepoint]["vas"] <= p["answers"]["baseline"]["vas"] / 2
            ]
            counts[column] = (len(good), len(counted))
            put(
                "responders",
                f"Pain VAS baseline 0, left out of ≥ 50%, {tp}, n",
                column,
                "n",
                len(both) - len(counted),
            )
        share("responders", row, counts)
        fisher("responders", row, counts, per_patient=False)

        # completeness
        for column, g in groups.items():
            died = [
                p
                for p in g
                if p["death"] is not None and p["death"] <= p["as_of"] and p["death"] <= due
            ]
            withdrawn = [
                p
                for p in g
                if p not in died
                and p["withdrawn"] is not None
                and p["withdrawn"] <= p["as_of"]
                and p["withdrawn"] < due
            ]
            eligible = [p for p in g if p not in died and p not in withdrawn]
            completed = [p for p in eligible if timepoint in p["answers"]]
            missed = [
                p
                for p in eligible
                if timepoint not in p["answers"]
                and (
                    p["as_of"] > window_end
                    or (p["death"] is not None and due < p["death"] <= p["as_of"])
                )
            ]
            still_open = [p for p in eligible if p not in completed and p not in missed]
            for name, found in (
                ("patients", g),
                ("died before", died),
                ("withdrawn before", withdrawn),
                ("eligible", eligible),
                ("missed", missed),
                ("still open", still_open),
            ):
                put("completeness", f"{tp}: {name}, n", column, "n", len(found))
            share(
                "completeness",
                f"{tp}: completed, n/N (%)",
                {column: (len(completed), len(eligible))},
            )

    # Table 3: every answer at each timepoint, not paired
    for column, g in groups.items():
        counts = []
        for timepoint, name in (("baseline", "baseline"), ("month_12", "12 months")):
            pains = [
                p["answers"][timepoint]["pain"]
                for p in g
                if timepoint in p["answers"] and p["answers"][timepoint]["pain"] is not None
            ]
            put("table_3", "Patients answering, n", f"{column}: {name}", "n", len(pains))
            row_counts = [pains.count(k) for k in range(6)]
            counts.append(row_counts)
            for k in range(6):
                put("table_3", f"{k}", f"{column}: {name}", "n", row_counts[k])
                if len(pains) >= MIN_N:
                    percent = 100 * row_counts[k] / len(pains)
                    put("table_3", f"{k}", f"{column}: {name}", "percent", percent)
        if min(sum(r) for r in counts) >= MIN_N:
            array = np.array(counts)
            array = array[:, array.sum(axis=0) > 0]
            result = stats.chi2_contingency(array)
            put("table_3", "Chi-squared", f"{column}: baseline", "chi_squared", result.statistic)
            put("table_3", "Degrees of freedom", f"{column}: baseline", "df", result.dof)
            put("table_3", "p", f"{column}: baseline", "p (Chi-squared test)", result.pvalue)
    return e


def _actual(report) -> dict:
    found = {}
    for table in report["tables"]:
        if table["id"] == "at_risk":
            continue
        for number in table["numbers"]:
            row = number["row"].strip()
            if table["id"] == "table_3" and row[:1].isdigit():
                row = row[:1]  # the category, without its wording
            found[(table["id"], row, number["column"], number["statistic"])] = number["value"]
    return found


@pytest.mark.django_db
def test_every_number_equals_an_independent_computation_on_48_patients(site_a, manager):
    patients = _build(site_a)
    assert len(patients) >= 40
    report = cohort_report(user=manager, filters=ReportFilter(as_of=AS_OF))
    expected, actual = _expected(patients), _actual(report)
    assert set(actual) == set(expected)
    wrong = {}
    for key, value in expected.items():
        got = actual[key]
        if value is None or got is None:
            ok = value is got
        elif key[3] in ("n", "df"):
            ok = got == value
        else:
            ok = math.isclose(got, float(value), rel_tol=0, abs_tol=1e-9)
        if not ok:
            wrong[key] = (got, value)
    assert wrong == {}
    # The edge cases are in the data, not only possible.
    eq5d = expected[("responders", "EQ-5D index: improvement ≥ 0.12, 3 months", "Overall", "n")]
    assert eq5d >= 5
    assert (
        expected[
            ("responders", "Pain VAS baseline 0, left out of ≥ 50%, 3 months, n", "Overall", "n")
        ]
        >= 1
    )
