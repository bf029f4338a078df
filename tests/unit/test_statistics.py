"""Report statistics against SciPy called directly on the same numbers."""

import numpy as np
import pytest
from scipy import stats

from outcomes.reports.statistics import (
    alive_at,
    chi_squared,
    completeness,
    fisher_exact,
    follow_up_time,
    good_result,
    kaplan_meier,
    mean_ci,
    paired_t_test,
    reaches,
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
    assert result.p == pytest.approx(stats.ttest_rel(BEFORE, AFTER).pvalue)
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


# --- the definitions of design.md §8, on hand-made data ---------------------------------------


def test_an_eq5d_change_of_exactly_0_120_is_a_responder_in_decimal_arithmetic():
    # In floating point 0.584 − 0.464 is 0.11999…, which fails ≥ 0.12.
    assert not (0.584 - 0.464 >= 0.12)
    changes = np.array([584 - 464, 119, 121, -120])  # thousandths of the index
    assert reaches(changes, "0.12", scale=1000).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    ("threshold", "scale", "change", "expected"),
    [
        ("10", 10, 100, True),  # ODI in tenths: 10.0 points
        ("10", 10, 99, False),
        ("15", 1, 15, True),  # VAS in whole points
        ("15", 1, 14, False),
        ("0.1205", 1000, 120, False),  # a threshold finer than the values: rounded up
        ("0.1205", 1000, 121, True),
        ("0.12", 1000, 120, True),
    ],
)
def test_thresholds_are_compared_exactly(threshold, scale, change, expected):
    assert reaches(np.array([change]), threshold, scale=scale).tolist() == [expected]


def test_a_baseline_vas_of_0_is_left_out_of_the_50_percent_reduction():
    before = np.array([0, 80, 80, 1, 3, 3, 0])
    after = np.array([0, 40, 41, 0, 2, 1, 10])
    good, counted = good_result(before, after)
    assert counted.tolist() == [False, True, True, True, True, True, False]
    # 2 × (b − a) ≥ b in integers: 80→40 yes, 80→41 no, 1→0 yes, 3→2 no, 3→1 yes.
    assert good.tolist() == [False, True, False, True, False, True, False]


def test_a_death_on_the_day_is_dead_and_one_day_later_alive():
    nan = np.nan
    death = np.array([91, 92, nan, nan, nan, 30])
    withdrawn = np.array([nan, nan, nan, 50, nan, nan])
    as_of = np.array([400, 400, 91, 400, 400, 400])
    days, died = follow_up_time(death, withdrawn, as_of)
    assert days.tolist() == [91, 92, 91, 50, 400, 30]
    assert died.tolist() == [True, True, False, False, False, True]
    alive, known = alive_at(days, died, 91)
    assert alive.tolist() == [False, True, True, False, True, False]
    # The patient withdrawn on day 50 is censored before day 91: not counted.
    assert known.tolist() == [True, True, True, False, True, True]
    alive_90, _known = alive_at(days, died, 90)
    assert alive_90[0]


def test_alive_at_t_agrees_with_kaplan_meier_when_nobody_is_censored_before_t():
    days = np.array([10.0, 91, 91, 92, 200, 91, 365, 400])
    died = np.array([True, True, False, True, True, False, True, False])
    alive, known = alive_at(days, died, 91)
    km = kaplan_meier(days, died, at=[91], min_n=1)
    assert alive.sum() / known.sum() == pytest.approx(km.at[91], abs=1e-12)
    assert (alive.sum(), known.sum()) == (6, 8)  # deaths on days 10 and 91


def _status(result, i):
    names = ("died", "withdrawn", "completed", "missed", "still_open")
    return [name for name in names if getattr(result, name)[i]]


def test_completeness_at_the_due_day_and_after():
    nan = np.nan
    cases = [
        # death, withdrawn, as of, answered → status
        (91, nan, 200, 0, ["died"]),  # death on the due day: died before
        (92, nan, 100, 0, ["missed"]),  # died one day after the due day, no answer
        (92, nan, 100, 1, ["completed"]),  # … but had answered
        (nan, 90, 200, 0, ["withdrawn"]),  # withdrawn before the due day
        (nan, 91, 200, 0, ["missed"]),  # withdrawn on the due day: eligible
        (nan, nan, 100, 0, ["still_open"]),  # window open
        (nan, nan, 120, 0, ["still_open"]),  # last day of the window
        (nan, nan, 121, 0, ["missed"]),  # window closed
        (nan, nan, 60, 0, ["still_open"]),  # not yet due: eligible, open
        (30, 20, 200, 0, ["died"]),  # died and withdrew before: died counts first
    ]
    columns = list(zip(*cases, strict=True))[:4]
    death, withdrawn, as_of, answered = (np.array(c, dtype=float) for c in columns)
    result = completeness(
        death_day=death,
        withdrawn_day=withdrawn,
        as_of_day=as_of,
        answered=answered,
        due_day=91,
        window_end_day=120,
    )
    assert [_status(result, i) for i in range(len(cases))] == [c[4] for c in cases]
    assert (result.eligible == ~(result.died | result.withdrawn)).all()


def test_fisher_and_chi_squared_match_scipy_and_name_their_test():
    table = [[3, 7], [9, 2]]
    result = fisher_exact(table, min_n=5)
    assert result.test == "Fisher's exact test"
    assert result.p == pytest.approx(stats.fisher_exact(table).pvalue, abs=1e-12)
    assert fisher_exact(table, min_n=5, group_n=[4, 11]).too_small
    wide = [[5, 0, 3, 2], [1, 0, 6, 9]]
    chi = chi_squared(wide, min_n=5)
    expected = stats.chi2_contingency([[5, 3, 2], [1, 6, 9]])
    assert (chi.statistic, chi.dof) == (pytest.approx(expected.statistic), 2)


def test_paired_t_test_gives_mean_change_and_the_t_of_ttest_rel_baseline_first():
    result = paired_t_test(BEFORE, AFTER, min_n=5)
    expected = stats.ttest_rel(BEFORE, AFTER)
    assert result.t == pytest.approx(expected.statistic, abs=1e-12)
    assert result.t > 0  # baseline first: positive when values fell
    assert result.change == pytest.approx(np.mean(np.subtract(AFTER, BEFORE)))


def test_mean_ci_is_the_t_interval_and_needs_min_n():
    values = [0.5, 0.62, 0.71, 0.44, 0.58]
    interval = mean_ci(values, min_n=5)
    low, high = stats.t.interval(0.95, 4, loc=np.mean(values), scale=stats.sem(values))
    assert (interval.low, interval.high) == (pytest.approx(low), pytest.approx(high))
    assert mean_ci(values[:4], min_n=5).mean is None
