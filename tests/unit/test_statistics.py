"""Report statistics against SciPy called directly on the same numbers."""

import numpy as np
import pytest
from scipy import stats

from outcomes.reports.statistics import (
    chi_squared,
    kaplan_meier,
    paired_t_test,
    summarise,
    welch_t_test,
)

BEFORE = [72, 80, 65, 90, 77, 84, 70]
AFTER = [30, 45, 40, 52, 20, 61, 35]


def test_summary_uses_the_sample_sd():
    summary = summarise(BEFORE)
    assert summary.n == 7
    assert summary.mean == pytest.approx(np.mean(BEFORE))
    assert summary.sd == pytest.approx(np.std(BEFORE, ddof=1))
    assert (summary.minimum, summary.maximum) == (65, 90)


def test_paired_t_test_matches_scipy_ttest_rel():
    result = paired_t_test(BEFORE, AFTER, min_n=5)
    assert result.n == 7
    assert result.p == pytest.approx(stats.ttest_rel(AFTER, BEFORE).pvalue)
    assert result.after.mean == pytest.approx(np.mean(AFTER))


def test_paired_t_test_below_min_n_gives_no_numbers():
    result = paired_t_test(BEFORE[:4], AFTER[:4], min_n=5)
    assert result.too_small
    assert result.p is None
    assert result.before.mean is None


def test_welch_matches_scipy_ttest_ind_unequal_variances():
    a = [-42.0, -35.5, -50.1, -20.0, -38.2, -44.0]
    b = [-20.0, -15.5, -31.0, -5.0, -25.2]
    result = welch_t_test(a, b, min_n=5)
    expected = stats.ttest_ind(a, b, equal_var=False)
    interval = expected.confidence_interval(0.95)
    assert result.p == pytest.approx(expected.pvalue)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert (result.ci_low, result.ci_high) == pytest.approx((interval.low, interval.high))
    # Welch, not Student: the pooled-variance p differs on these unequal groups.
    assert result.p != pytest.approx(stats.ttest_ind(a, b).pvalue, rel=1e-6)


def test_chi_squared_matches_scipy_after_dropping_empty_categories():
    table = [[0, 2, 5, 9, 4, 1], [0, 8, 9, 3, 1, 0]]
    result = chi_squared(table, min_n=5)
    expected = stats.chi2_contingency([[2, 5, 9, 4, 1], [8, 9, 3, 1, 0]])
    assert result.p == pytest.approx(expected.pvalue)
    assert result.dof == 4


def test_chi_squared_with_too_few_patients_or_one_category():
    assert chi_squared([[1, 1], [1, 0]], min_n=5).too_small
    assert chi_squared([[4, 0], [6, 0]], min_n=5).too_small


def test_kaplan_meier_censors_the_living_and_matches_scipy_ecdf():
    days = [10, 20, 30, 15, 40, 400]
    died = [True, True, True, False, False, False]
    result = kaplan_meier(days, died, at=[12, 25, 365], min_n=5)
    expected = stats.ecdf(stats.CensoredData(uncensored=[10, 20, 30], right=[15, 40, 400])).sf
    assert result.at[12] == pytest.approx(float(expected.evaluate(12)))
    # By hand: 5/6 after day 10; the censored patient at 15 leaves 4; 3/4 after day 20.
    assert result.at[25] == pytest.approx(5 / 6 * 3 / 4)
    assert result.at[365] == pytest.approx(5 / 6 * 3 / 4 * 2 / 3)
    assert result.times[0] == 0.0 and result.probabilities[0] == 1.0


def test_kaplan_meier_beyond_the_last_follow_up_is_unknown():
    result = kaplan_meier([10, 20, 30, 40, 50], [False] * 5, at=[91], min_n=5)
    assert result.at[91] is None
