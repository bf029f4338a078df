"""Site benchmarking (design.md §8a): each outcome's definition, its case-mix model and each
site's observed against expected value, from the analysis dataset of the cohort report
(``outcomes.reports.dataset.PATIENT_COLUMNS``, one row per patient). Pure: NumPy columns in,
plain values out (no database); the models and limits are ``outcomes.reports.casemix``.

Outcomes (each patient's index procedure; the MCID as configured):
- ``odi_change_12m``: ODI at 12 months − baseline (points), patients with both; linear.
- ``eq5d_change_12m``: EQ-5D index at 12 months − baseline, patients with both; linear.
- ``vas_responder_12m``: pain VAS improved by at least the VAS MCID at 12 months (design §8,
  exact in integers), patients with both; logistic.
- ``followup_3m``, ``followup_12m``: answered at that timepoint, among the eligible patients
  whose window has closed (completed / (completed + missed), design §8); logistic.
- ``leakage_per_level``: cement leakage of a treated vertebra, every vertebra of the index
  procedure (n counts vertebrae); logistic with the patient's predictors.
- ``symptomatic_complications``: at least one symptomatic complication related to the index
  procedure (design §8); logistic.

Predictors, for every model: the baseline score of the outcome where it has one (ODI, EQ-5D,
VAS), age (years), male sex, cohort (pathologic, other and unknown etiology against
osteoporotic), the number of treated levels, Karnofsky (per 10 points) and ASA class (1–6,
linear) where recorded, each with an indicator of "not recorded" (missing-indicator method:
patients without them are kept, at the registry's level for their group). A predictor that
does not vary is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import outcomes.reports.casemix as casemix
import outcomes.reports.statistics as st
from outcomes.followups.schedule import PLAN_BY_TIMEPOINT

Columns = dict[str, np.ndarray]
BASELINE, MONTH_3, MONTH_12 = "baseline", "month_3", "month_12"
# Positions in ``dataset.COHORTS``: pathologic, osteoporotic, other, unknown etiology.
PATHOLOGIC, OSTEOPOROTIC, OTHER, UNKNOWN = 0, 1, 2, 3
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class Definition:
    key: str
    label: str
    kind: str  # casemix.LINEAR or casemix.LOGISTIC
    unit: str
    higher_is_better: bool
    definition: str
    baseline: str | None = None  # the score whose baseline value is a predictor
    scale: int = 1  # stored integer units per unit of the score (EQ-5D 1000, ODI 10)
    counts: str = "patients"


DEFINITIONS = (
    Definition("odi_change_12m", "ODI change at 12 months", casemix.LINEAR, "ODI points",
               False, "ODI at 12 months minus ODI at baseline, patients with both "
               "(negative: less disability).", "odi_score", 10),
    Definition("eq5d_change_12m", "EQ-5D index change at 12 months", casemix.LINEAR,
               "index points", True, "EQ-5D index at 12 months minus baseline, patients with "
               "both (scored with each site's value set).", "eq5d_index", 1000),
    Definition("vas_responder_12m", "Pain VAS responders at 12 months", casemix.LOGISTIC,
               "share", True, "Pain VAS at 12 months improved by at least the VAS MCID "
               "(design §8), patients with both.", "vas_pain", 1),
    Definition("followup_3m", "Follow-up completed at 3 months", casemix.LOGISTIC, "share",
               True, "Answered at 3 months, among eligible patients whose window has closed: "
               "completed / (completed + missed)."),
    Definition("followup_12m", "Follow-up completed at 12 months", casemix.LOGISTIC, "share",
               True, "Answered at 12 months, among eligible patients whose window has closed: "
               "completed / (completed + missed)."),
    Definition("leakage_per_level", "Cement leakage per treated vertebra", casemix.LOGISTIC,
               "share", False, "Cement leakage recorded on a vertebra treated in the index "
               "procedure, every vertebra (n counts vertebrae).", counts="vertebrae"),
    Definition("symptomatic_complications", "Symptomatic complications", casemix.LOGISTIC,
               "share", False, "At least one symptomatic complication related to the index "
               "procedure (definite, probable or possible) by the cut-off; a complication "
               "whose symptomatic flag is unknown does not count."),
)  # fmt: skip
DEFINITION = {d.key: d for d in DEFINITIONS}

PREDICTOR_LABELS = {
    "intercept": "Intercept",
    "baseline": "Baseline score",
    "age": "Age (years)",
    "male": "Male",
    "pathologic": "Cohort: pathologic (vs osteoporotic)",
    "other": "Cohort: other (vs osteoporotic)",
    "unknown": "Cohort: unknown etiology (vs osteoporotic)",
    "levels": "Treated levels, n",
    "karnofsky": "Karnofsky (per 10 points)",
    "karnofsky_missing": "Karnofsky not recorded",
    "asa": "ASA class",
    "asa_missing": "ASA class not recorded",
}


def predictors(p: Columns, baseline: np.ndarray | None) -> tuple[np.ndarray, list[str]]:
    """The design matrix (without intercept) of the patients in ``p``."""
    karnofsky, asa = p["karnofsky"], p["asa"]
    columns = {
        "age": p["age"],
        "male": p["male"],
        "pathologic": (p["cohort"] == PATHOLOGIC).astype(float),
        "other": (p["cohort"] == OTHER).astype(float),
        # Its own indicator, so that it never counts as the osteoporotic reference.
        "unknown": (p["cohort"] == UNKNOWN).astype(float),
        "levels": p["levels"],
        "karnofsky": np.nan_to_num(karnofsky / 10, nan=0.0),
        "karnofsky_missing": np.isnan(karnofsky).astype(float),
        "asa": np.nan_to_num(asa, nan=0.0),
        "asa_missing": np.isnan(asa).astype(float),
    }
    if baseline is not None:
        columns = {"baseline": baseline, **columns}
    return np.column_stack(list(columns.values())), list(columns)


@dataclass(frozen=True)
class OutcomeData:
    """One outcome's observations: ``rows`` indexes the patients of ``p`` (a patient repeats
    once per vertebra for a per-vertebra outcome), ``y`` the outcome, ``baseline`` the
    predictor's baseline score (or None)."""

    rows: np.ndarray
    y: np.ndarray
    baseline: np.ndarray | None


def outcome_data(p: Columns, definition: Definition, *, mcid_vas: str) -> OutcomeData:
    key = definition.key
    if definition.baseline:
        score = definition.baseline
        before, after = p[f"{score}_{BASELINE}"], p[f"{score}_{MONTH_12}"]
        rows = np.flatnonzero(~np.isnan(before) & ~np.isnan(after))
        before, after = before[rows], after[rows]
        if key == "vas_responder_12m":
            y = st.reaches(before - after, mcid_vas, scale=1).astype(float)
        else:
            y = (after - before) / definition.scale
        return OutcomeData(rows, y, before / definition.scale)
    if key in ("followup_3m", "followup_12m"):
        timepoint = MONTH_3 if key == "followup_3m" else MONTH_12
        plan = PLAN_BY_TIMEPOINT[timepoint]
        result = st.completeness(
            death_day=p["death_day"],
            withdrawn_day=p["withdrawn_day"],
            as_of_day=p["as_of_day"],
            answered=p[f"answered_{timepoint}"],
            due_day=plan.due_offset,
            window_end_day=plan.window_end_offset,
        )
        rows = np.flatnonzero(result.completed | result.missed)
        return OutcomeData(rows, result.completed[rows].astype(float), None)
    if key == "leakage_per_level":
        levels = p["levels"].astype(int)
        rows = np.repeat(np.arange(len(levels)), levels)
        # The first ``leaks`` vertebrae of each patient leaked: with patient-level
        # predictors the likelihood is the same whichever of them did.
        nth = np.arange(len(rows)) - np.repeat(np.cumsum(levels) - levels, levels)
        y = (nth < p["leaks"][rows]).astype(float)
        return OutcomeData(rows, y, None)
    if key == "symptomatic_complications":
        rows = np.arange(len(p["patient_id"]))
        return OutcomeData(rows, (p["symptomatic_complications"] > 0).astype(float), None)
    raise ValueError(f"unknown outcome {key!r}")


@dataclass(frozen=True)
class OutcomeBenchmark:
    definition: Definition
    fit: casemix.ModelFit | None
    error: str | None  # why there is no model
    sites: dict[int, casemix.SiteComparison]  # site id → comparison
    n: int


def benchmark_outcome(
    p: Columns, definition: Definition, *, min_n: int, mcid_vas: str
) -> OutcomeBenchmark:
    """The outcome's model on every patient in ``p`` and each site's comparison."""
    data = outcome_data(p, definition, mcid_vas=mcid_vas)
    rows_p = {name: values[data.rows] for name, values in p.items()}
    x, names = predictors(rows_p, data.baseline)
    site = rows_p["site"]
    try:
        fit = casemix.fit_model(definition.kind, data.y, x, names)
    except casemix.ModelError as exc:
        sites = {
            int(s): casemix.SiteComparison(n=int((site == s).sum()), too_small=True)
            for s in np.unique(p["site"])
        }
        return OutcomeBenchmark(definition, None, str(exc), sites, len(data.y))
    sites = {}
    for s in np.unique(p["site"]):
        mask = site == s
        sites[int(s)] = casemix.compare_site(
            definition.kind,
            data.y[mask],
            fit.predicted[mask],
            unit_variance=fit.unit_variance,
            min_n=min_n,
        )
    return OutcomeBenchmark(definition, fit, None, sites, len(data.y))


def benchmark(p: Columns, *, min_n: int, mcid_vas: str) -> list[OutcomeBenchmark]:
    return [benchmark_outcome(p, d, min_n=min_n, mcid_vas=mcid_vas) for d in DEFINITIONS]


@dataclass(frozen=True)
class SiteLabel:
    site_id: int
    label: str  # the site's code and name, or a letter
    named: bool


def site_labels(
    sites: list[tuple[int, str, int]], *, named: set[int] | None
) -> dict[int, SiteLabel]:
    """Labels of ``sites`` ((id, name, patients)): a site in ``named`` (every site for
    ``None``) by its name, the others by a letter. Letters go by number of patients, largest
    first (ties by id), so a letter tells nothing the funnel plot does not show already."""
    order = sorted(sites, key=lambda s: (-s[2], s[0]))
    labels = {}
    for i, (site_id, name, _) in enumerate(order):
        letter = LETTERS[i % 26] * (i // 26 + 1)
        visible = named is None or site_id in named
        labels[site_id] = SiteLabel(site_id, name if visible else f"Site {letter}", visible)
    return labels


def _number(value) -> float | None:
    return None if value is None else float(value)


def fit_as_dict(fit: casemix.ModelFit | None) -> dict | None:
    if fit is None:
        return None
    return {
        "kind": fit.kind,
        "n": fit.n,
        "converged": fit.converged,
        "r_squared": fit.r_squared,
        "residual_sd": fit.residual_sd,
        "c_statistic": fit.c_statistic,
        "hosmer_lemeshow": (
            dict(zip(("chi2", "df", "p"), fit.hosmer_lemeshow, strict=True))
            if fit.hosmer_lemeshow
            else None
        ),
        "unit_variance": fit.unit_variance,
        "coefficients": [
            {
                "name": c.name,
                "label": PREDICTOR_LABELS.get(c.name, c.name),
                "estimate": c.estimate,
                "se": c.se,
                "ci_low": c.ci_low,
                "ci_high": c.ci_high,
                "p": c.p,
            }
            for c in fit.coefficients
        ],
        "calibration": [
            {"n": g.n, "predicted": g.predicted, "observed": g.observed} for g in fit.calibration
        ],
    }


def funnel_curve(fit: casemix.ModelFit | None, max_n: int) -> list[dict]:
    """The control limits at n = 1 … ``max_n`` (at most 60 points, spread by square root)."""
    if fit is None or max_n < 1:
        return []
    ns = np.unique(np.round(np.linspace(1, np.sqrt(max_n), 60) ** 2).astype(int))
    limits = casemix.funnel_limits(fit.unit_variance, ns)
    return [
        {"n": int(n), **{f"{k}_{side}": float(limits[k][j][i]) for k in limits
                         for j, side in enumerate(("low", "high"))}}
        for i, n in enumerate(ns)
    ]  # fmt: skip


def as_dict(results: list[OutcomeBenchmark], labels: dict[int, SiteLabel]) -> list[dict]:
    """The benchmark as JSON-ready dicts: per outcome its definition, model, funnel curve and
    sites (by label; a site below the minimum n shows its n only)."""
    out = []
    for result in results:
        d = result.definition
        sites = []
        for site_id, c in sorted(result.sites.items(), key=lambda i: labels[i[0]].label):
            label = labels[site_id]
            entry = {"site": label.label, "named": label.named, "n": c.n,
                     "too_small": c.too_small}  # fmt: skip
            if not c.too_small:
                entry.update(
                    observed=c.observed,
                    expected=c.expected,
                    difference=c.difference,
                    ci_low=c.ci_low,
                    ci_high=c.ci_high,
                    ratio=_number(c.ratio),
                    ratio_ci_low=_number(c.ratio_ci_low),
                    ratio_ci_high=_number(c.ratio_ci_high),
                    limits={k: list(v) for k, v in c.limits.items()},
                    position=c.position,
                    verdict=verdict(c.position, d.higher_is_better),
                )
            sites.append(entry)
        max_n = max((s.n for s in result.sites.values()), default=0)
        out.append(
            {
                "key": d.key,
                "label": d.label,
                "model": d.kind,
                "unit": d.unit,
                "counts": d.counts,
                "higher_is_better": d.higher_is_better,
                "definition": d.definition,
                "n": result.n,
                "fit": fit_as_dict(result.fit),
                "model_error": result.error,
                "funnel": funnel_curve(result.fit, max_n),
                "sites": sites,
            }
        )
    return out


def verdict(position: str | None, higher_is_better: bool) -> str:
    """The position in words a site understands: worse or better than expected, beyond which
    limit; "as expected" inside the 95% limits."""
    if not position or position == "inside":
        return "as expected"
    side, limit = position.split(" ")
    better = (side == "above") == higher_is_better
    return f"{'better' if better else 'worse'} than expected (beyond {limit})"
