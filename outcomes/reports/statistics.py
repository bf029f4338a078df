"""Statistics of the cohort report (design.md §8), as pure functions over plain numbers.

Every test statistic comes from SciPy (``scipy.stats``), never a hand-written formula:
paired t-test ``ttest_rel``, Welch's t-test ``ttest_ind(equal_var=False)`` with its 95%
confidence interval of the mean difference, Pearson's chi-squared ``chi2_contingency`` (Yates'
continuity correction on 2×2 tables, SciPy's default), and the Kaplan–Meier estimator
``ecdf`` over right-censored data. Means and SDs are NumPy's (SD with n − 1).

A result computed from fewer than ``min_n`` patients is returned with ``too_small=True`` and
no numbers, and the report prints "n too small" (a p-value from three patients would end up
in a paper).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float | None = None
    sd: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    too_small: bool = False


def summarise(values: Sequence[float], *, min_n: int = 1) -> Summary:
    """Mean, SD (n − 1), range and n of ``values``."""
    n = len(values)
    if n < max(min_n, 1):
        return Summary(n=n, too_small=True)
    array = np.asarray(values, dtype=float)
    return Summary(
        n=n,
        mean=float(array.mean()),
        sd=float(array.std(ddof=1)) if n > 1 else None,
        minimum=float(array.min()),
        maximum=float(array.max()),
    )


@dataclass(frozen=True)
class Proportion:
    n: int
    total: int

    @property
    def percent(self) -> float | None:
        return 100.0 * self.n / self.total if self.total else None


@dataclass(frozen=True)
class Paired:
    """Baseline against follow-up in the same patients (only those with both values)."""

    n: int
    before: Summary
    after: Summary
    p: float | None = None
    too_small: bool = False


def paired_t_test(before: Sequence[float], after: Sequence[float], *, min_n: int) -> Paired:
    """Paired t-test of ``after`` against ``before`` (same patients, same order)."""
    if len(before) != len(after):
        raise ValueError("paired samples must have the same length")
    n = len(before)
    if n < max(min_n, 2):
        return Paired(
            n=n, before=Summary(n=n, too_small=True), after=Summary(n=n, too_small=True),
            too_small=True,
        )  # fmt: skip
    result = stats.ttest_rel(after, before)
    return Paired(
        n=n,
        before=summarise(before),
        after=summarise(after),
        p=_p(result.pvalue),
    )


@dataclass(frozen=True)
class Difference:
    """Mean of group A minus mean of group B, its 95% CI and Welch's p."""

    n_a: int
    n_b: int
    mean_a: float | None = None
    mean_b: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    too_small: bool = False


def welch_t_test(a: Sequence[float], b: Sequence[float], *, min_n: int) -> Difference:
    """Welch's unequal-variance t-test of mean(a) − mean(b), with its 95% CI."""
    if min(len(a), len(b)) < max(min_n, 2):
        return Difference(n_a=len(a), n_b=len(b), too_small=True)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(0.95)
    mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
    return Difference(
        n_a=len(a),
        n_b=len(b),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_a - mean_b,
        ci_low=float(interval.low),
        ci_high=float(interval.high),
        p=_p(result.pvalue),
    )


@dataclass(frozen=True)
class ChiSquared:
    total: int
    statistic: float | None = None
    dof: int | None = None
    p: float | None = None
    too_small: bool = False


def chi_squared(table: Sequence[Sequence[int]], *, min_n: int) -> ChiSquared:
    """Pearson's chi-squared test of independence on a contingency table of counts.

    Rows or columns that are all zero (a category nobody chose) carry no information and are
    dropped first; a table left with fewer than two rows or columns has no test.
    """
    array = np.asarray(table, dtype=float)
    total = int(array.sum())
    if array.size:
        array = array[array.sum(axis=1) > 0][:, array.sum(axis=0) > 0]
    if total < min_n or array.ndim != 2 or min(array.shape) < 2:
        return ChiSquared(total=total, too_small=True)
    result = stats.chi2_contingency(array)
    return ChiSquared(
        total=total,
        statistic=float(result.statistic),
        dof=int(result.dof),
        p=_p(result.pvalue),
    )


@dataclass(frozen=True)
class Survival:
    """Kaplan–Meier survival: estimates at the asked days and the step curve."""

    n: int
    at: dict[int, float | None]
    times: list[float]
    probabilities: list[float]
    too_small: bool = False


def kaplan_meier(
    days: Sequence[float], died: Sequence[bool], *, at: Sequence[int], min_n: int
) -> Survival:
    """Kaplan–Meier estimate from ``days`` of follow-up (to death, or to censoring when
    ``died`` is false). Survival at a day beyond the last follow-up is unknown (None)."""
    n = len(days)
    if n < max(min_n, 1):
        return Survival(n=n, at={t: None for t in at}, times=[], probabilities=[], too_small=True)
    days_array = np.asarray(days, dtype=float)
    died_array = np.asarray(died, dtype=bool)
    data = stats.CensoredData(uncensored=days_array[died_array], right=days_array[~died_array])
    curve = stats.ecdf(data).sf
    last = float(days_array.max())
    estimates = {t: (float(curve.evaluate(t)) if t <= last else None) for t in at}
    return Survival(
        n=n,
        at=estimates,
        times=[0.0, *map(float, curve.quantiles)],
        probabilities=[1.0, *map(float, curve.probabilities)],
    )


def _p(value) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value
