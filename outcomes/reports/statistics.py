"""Definitions and statistics of the cohort report (design.md §8), as pure functions over plain
numbers and NumPy arrays (no database).

Definitions (each once, each tested on hand-made data in ``tests/unit/test_statistics.py``):
- ``reaches``: a change reaches a threshold (MCID), compared exactly on the stored values in
  integer units (decimal arithmetic: an EQ-5D change of +0.120 reaches 0.12).
- ``good_result``: a ≥ 50% pain reduction, 2 × (baseline − follow-up) ≥ baseline in integers;
  a baseline of 0 cannot be halved and is left out of the denominator.
- ``follow_up_time`` and ``alive_at``: a patient is alive at day t if there is no death or
  death − procedure > t days; a death on day t counts as dead, as in the Kaplan–Meier
  S(t) = P(T > t). Patients censored (report cut-off, withdrawal) before t are not counted.
- ``completeness``: died before (death ≤ D days after the procedure), withdrawn before
  (consent withdrawn before day D), eligible (the rest), completed (eligible with an answer),
  missed (eligible without one once the window has closed, or after dying past the due day),
  still open (eligible, window not yet closed).

Every test statistic comes from SciPy (``scipy.stats``), never a hand-written formula: the
paired t-test ``ttest_rel(baseline, follow_up)``, Welch's t-test
``ttest_ind(equal_var=False)`` with its 95% confidence interval, Fisher's exact test
``fisher_exact`` on 2 × 2 tables, Pearson's chi-squared ``chi2_contingency`` otherwise (SciPy's
defaults; categories nobody is in are dropped first), the 95% CI of a mean from
``ttest_1samp(...).confidence_interval``, and the Kaplan–Meier estimator ``ecdf`` over
right-censored data. Means and SDs are NumPy's (SD with n − 1).

A result computed from fewer than ``min_n`` patients is returned with ``too_small=True`` and
no numbers, and the report prints "n too small" (a p-value from three patients would end up
in a paper).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
from scipy import stats

# --- definitions of design.md §8 ------------------------------------------------------------


def reaches(change: np.ndarray, threshold: str | Decimal, *, scale: int) -> np.ndarray:
    """Whether each ``change`` (an improvement, in exact integer units of 1/``scale``) is at
    least ``threshold`` (as configured, e.g. "0.12"). Exact: the threshold is converted with
    ``Decimal`` and rounded up to a whole unit, which an integer change reaches or not."""
    bound = math.ceil(Decimal(str(threshold)) * scale)
    return np.asarray(change) >= bound


def good_result(before: np.ndarray, after: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(good, counted): a pain reduction of at least 50%, 2 × (before − after) ≥ before in
    integers, over the patients whose baseline is above 0 (``counted``)."""
    before, after = np.asarray(before), np.asarray(after)
    counted = before > 0
    return counted & (2 * (before - after) >= before), counted


def follow_up_time(death_day, withdrawn_day, as_of_day) -> tuple[np.ndarray, np.ndarray]:
    """(days, died): days from the procedure to death, or to censoring at the earlier of
    withdrawal and the report cut-off; ``died`` where a death is recorded (NaN: none)."""
    death_day = np.asarray(death_day, dtype=float)
    died = ~np.isnan(death_day)
    censored = np.maximum(np.fmin(np.asarray(as_of_day, float), withdrawn_day), 0)
    return np.where(died, death_day, censored), died


def alive_at(days: np.ndarray, died: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(alive, known) at day ``t``: dead when death − procedure ≤ t (a death on day t is
    dead); alive when followed to day t without that; ``known`` leaves out patients censored
    before t, so that with no censoring before t, alive / known is the Kaplan–Meier S(t)."""
    dead = died & (days <= t)
    alive = ~dead & (days >= t)
    return alive, alive | dead


@dataclass(frozen=True)
class Completeness:
    """Masks over the patients of one timepoint with due day D (see the module docstring)."""

    died: np.ndarray
    withdrawn: np.ndarray
    eligible: np.ndarray
    completed: np.ndarray
    missed: np.ndarray
    still_open: np.ndarray


def completeness(
    *, death_day, withdrawn_day, as_of_day, answered, due_day: int, window_end_day: int
) -> Completeness:
    death_day = np.asarray(death_day, dtype=float)
    died = death_day <= due_day  # NaN (no death) compares false
    withdrawn = ~died & (np.asarray(withdrawn_day, dtype=float) < due_day)
    eligible = ~died & ~withdrawn
    answered = np.asarray(answered) == 1
    completed = eligible & answered
    closed = np.asarray(as_of_day) > window_end_day
    died_after_due = death_day > due_day
    missed = eligible & ~answered & (closed | died_after_due)
    return Completeness(
        died=died,
        withdrawn=withdrawn,
        eligible=eligible,
        completed=completed,
        missed=missed,
        still_open=eligible & ~answered & ~missed,
    )


# --- statistics ------------------------------------------------------------------------------


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
class MeanInterval:
    n: int
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    too_small: bool = False


def mean_ci(values: Sequence[float], *, min_n: int) -> MeanInterval:
    """Mean and its 95% confidence interval (t distribution, SciPy's ``ttest_1samp``)."""
    n = len(values)
    if n < max(min_n, 2):
        return MeanInterval(n=n, too_small=True)
    interval = stats.ttest_1samp(values, 0.0).confidence_interval(0.95)
    return MeanInterval(
        n=n, mean=float(np.mean(values)), low=_number(interval.low), high=_number(interval.high)
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
    change: float | None = None  # mean of follow-up − baseline
    t: float | None = None  # of ttest_rel(baseline, follow_up)
    p: float | None = None
    too_small: bool = False


def paired_t_test(before: Sequence[float], after: Sequence[float], *, min_n: int) -> Paired:
    """Paired t-test, ``scipy.stats.ttest_rel(before, after)`` (same patients, same order)."""
    if len(before) != len(after):
        raise ValueError("paired samples must have the same length")
    n = len(before)
    if n < max(min_n, 2):
        small = Summary(n=n, too_small=True)
        return Paired(n=n, before=small, after=small, too_small=True)
    result = stats.ttest_rel(before, after)
    return Paired(
        n=n,
        before=summarise(before),
        after=summarise(after),
        change=float(np.mean(np.asarray(after, float) - np.asarray(before, float))),
        t=_number(result.statistic),
        p=_number(result.pvalue),
    )


@dataclass(frozen=True)
class Difference:
    """Mean of group A minus mean of group B, its 95% CI and Welch's t and p."""

    n_a: int
    n_b: int
    a: Summary | None = None
    b: Summary | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    t: float | None = None
    p: float | None = None
    too_small: bool = False


def welch_t_test(a: Sequence[float], b: Sequence[float], *, min_n: int) -> Difference:
    """Welch's unequal-variance t-test of mean(a) − mean(b), with its 95% CI."""
    if min(len(a), len(b)) < max(min_n, 2):
        return Difference(n_a=len(a), n_b=len(b), too_small=True)
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(0.95)
    summary_a, summary_b = summarise(a), summarise(b)
    return Difference(
        n_a=len(a),
        n_b=len(b),
        a=summary_a,
        b=summary_b,
        difference=summary_a.mean - summary_b.mean,
        ci_low=_number(interval.low),
        ci_high=_number(interval.high),
        t=_number(result.statistic),
        p=_number(result.pvalue),
    )


@dataclass(frozen=True)
class Comparison:
    """A test between groups: its name, statistic, degrees of freedom and p."""

    test: str
    total: int
    statistic: float | None = None
    dof: float | None = None
    p: float | None = None
    too_small: bool = False


# The one spelling of each test's name, in every table, footnote and tidy CSV label
# (``p (<name>)``) of the reports (tests/outcomes/test_report_files.py).
PAIRED_T = "Paired t-test"
WELCH = "Welch t-test"
FISHER = "Fisher's exact test"
CHI_SQUARED = "Chi-squared test"
TEST_NAMES = (PAIRED_T, WELCH, FISHER, CHI_SQUARED)


def p_label(test: str) -> str:
    """The tidy CSV's statistic of a test's p value: ``p (Welch t-test)``."""
    if test not in TEST_NAMES:
        raise ValueError(f"not one of the report's test names: {test!r}")
    return f"p ({test})"


def chi_squared(table: Sequence[Sequence[int]], *, min_n: int, group_n=None) -> Comparison:
    """Pearson's chi-squared test of independence on a contingency table of counts
    (``chi2_contingency``, SciPy's defaults).

    Rows or columns that are all zero (a category nobody is in) carry no information and are
    dropped first; a table left with fewer than two rows or columns has no test. ``group_n``
    (patients per row; the row sums unless given) must reach ``min_n`` in every row.
    """
    array = np.asarray(table, dtype=float)
    total = int(array.sum())
    sizes = array.sum(axis=1) if group_n is None else np.asarray(group_n)
    if array.size:
        array = array[array.sum(axis=1) > 0][:, array.sum(axis=0) > 0]
    if not len(sizes) or min(sizes) < min_n or array.ndim != 2 or min(array.shape) < 2:
        return Comparison(CHI_SQUARED, total=total, too_small=True)
    result = stats.chi2_contingency(array)
    return Comparison(
        CHI_SQUARED,
        total=total,
        statistic=_number(result.statistic),
        dof=int(result.dof),
        p=_number(result.pvalue),
    )


def fisher_exact(table: Sequence[Sequence[int]], *, min_n: int, group_n=None) -> Comparison:
    """Fisher's exact test (two-sided) on a 2 × 2 table of counts; ``group_n`` as above."""
    array = np.asarray(table, dtype=int)
    sizes = array.sum(axis=1) if group_n is None else np.asarray(group_n)
    if min(sizes) < min_n:
        return Comparison(FISHER, total=int(array.sum()), too_small=True)
    result = stats.fisher_exact(array)
    return Comparison(FISHER, total=int(array.sum()), p=_number(result.pvalue))


def compare_means(a: Sequence[float], b: Sequence[float], *, min_n: int) -> Comparison:
    """Welch's t-test between two groups, as a ``Comparison``."""
    result = welch_t_test(a, b, min_n=min_n)
    if result.too_small:
        return Comparison(WELCH, total=len(a) + len(b), too_small=True)
    return Comparison(WELCH, total=len(a) + len(b), statistic=result.t, p=result.p)


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


def at_risk(days: np.ndarray, t: float) -> np.ndarray:
    """Patients at risk at day ``t``: followed at least to t (dead or censored on day t or
    later)."""
    return np.asarray(days) >= t


def _number(value) -> float | None:
    """A finite float, or None (undefined, e.g. t when every paired difference is equal; JSON
    has no NaN or infinity)."""
    value = float(value)
    return value if math.isfinite(value) else None
