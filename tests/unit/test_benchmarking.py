"""Site benchmarking without a database: the case-mix models recover a known generating model,
a site made worse is flagged, sites drawn from the same model fall inside the control limits
at about the nominal rate, and sites below the minimum n are never placed on the funnel."""

from __future__ import annotations

import numpy as np
import pytest

from outcomes.reports import benchmarking, casemix

# The generating model of the synthetic registry: ODI change at 12 months (points).
TRUE_ODI = {
    "intercept": 5.0,
    "baseline": -0.6,
    "age": 0.1,
    "male": -2.0,
    "pathologic": 4.0,
    "other": 1.5,
    "levels": 1.2,
    "karnofsky": -1.5,  # per 10 points
    "asa": 2.0,
}
SIGMA = 12.0
# Symptomatic complications (log odds).
TRUE_LOGIT = {"intercept": -3.0, "age": 0.02, "pathologic": 0.8, "levels": 0.3}


def registry(rng, *, sites: int, per_site: int, worse: dict[int, float] | None = None):
    """Analysis-dataset columns (``PATIENT_COLUMNS`` names) drawn from the true models; the
    sites in ``worse`` have ODI changes that many SDs above (worse than) the model."""
    n = sites * per_site
    site = np.repeat(np.arange(1, sites + 1), per_site).astype(float)
    age = rng.integers(45, 90, n).astype(float)
    male = (rng.random(n) < 0.4).astype(float)
    cohort = rng.choice([0, 1, 2], n, p=[0.3, 0.6, 0.1]).astype(float)
    levels = rng.integers(1, 5, n).astype(float)
    karnofsky = rng.choice(np.arange(40, 101, 10), n).astype(float)
    karnofsky[rng.random(n) < 0.2] = np.nan  # not recorded for one in five
    asa = rng.integers(1, 5, n).astype(float)
    asa[rng.random(n) < 0.1] = np.nan
    baseline = rng.uniform(20, 90, n)
    t = TRUE_ODI
    change = (
        t["intercept"] + t["baseline"] * baseline + t["age"] * age + t["male"] * male
        + t["pathologic"] * (cohort == 0) + t["other"] * (cohort == 2) + t["levels"] * levels
        + t["karnofsky"] * np.nan_to_num(karnofsky / 10) + t["asa"] * np.nan_to_num(asa)
        + rng.normal(0, SIGMA, n)
    )  # fmt: skip
    for s, sds in (worse or {}).items():
        change[site == s] += sds * SIGMA
    u = TRUE_LOGIT
    logit = u["intercept"] + u["age"] * age + u["pathologic"] * (cohort == 0) + u["levels"] * levels
    complication = rng.random(n) < 1 / (1 + np.exp(-logit))
    return {
        "patient_id": np.arange(n, dtype=float),
        "site": site,
        "age": age,
        "male": male,
        "cohort": cohort,
        "levels": levels,
        "leaks": np.zeros(n),
        "karnofsky": karnofsky,
        "asa": asa,
        # Stored in integer units of 0.1 ODI point, as the dataset has them; the change is
        # exact to a tenth, the coefficients are recovered regardless.
        "odi_score_baseline": np.round(baseline * 10),
        "odi_score_month_12": np.round((baseline + change) * 10),
        "symptomatic_complications": complication.astype(float),
    }


def _fit(p, key):
    definition = benchmarking.DEFINITION[key]
    data = benchmarking.outcome_data(p, definition, mcid_vas="15")
    rows = {name: values[data.rows] for name, values in p.items()}
    x, names = benchmarking.predictors(rows, data.baseline)
    return casemix.fit_model(definition.kind, data.y, x, names)


def test_linear_model_recovers_the_generating_coefficients_within_their_95_percent_ci():
    # One registry, as the issue asks; with nine 95% CIs some seeds miss one by chance,
    # which is why the coverage test below checks the rate over 200 registries.
    fit = _fit(registry(np.random.default_rng(35), sites=20, per_site=150), "odi_change_12m")
    assert fit.n == 3000
    for name, truth in TRUE_ODI.items():
        c = fit.coefficient(name)
        assert c.ci_low <= truth <= c.ci_high, (name, truth, c)
    assert fit.residual_sd == pytest.approx(SIGMA, rel=0.05)
    assert 0 < fit.r_squared < 1


def test_logistic_model_recovers_the_generating_coefficients_and_discriminates():
    fit = _fit(registry(np.random.default_rng(7), sites=20, per_site=300),
               "symptomatic_complications")  # fmt: skip
    for name, truth in TRUE_LOGIT.items():
        c = fit.coefficient(name)
        assert c.ci_low <= truth <= c.ci_high, (name, truth, c)
    # Predictors absent from the generating model: their CIs hold 0.
    for name in ("male", "asa"):
        c = fit.coefficient(name)
        assert c.ci_low <= 0 <= c.ci_high, (name, c)
    assert 0.6 < fit.c_statistic < 0.8
    chi2, df, p = fit.hosmer_lemeshow
    assert df == 8 and p > 0.01
    # Calibration: observed and predicted agree by tenths of risk.
    for group in fit.calibration:
        assert abs(group.observed - group.predicted) < 0.06


def test_confidence_intervals_cover_the_truth_at_about_the_nominal_rate():
    """Not luck of one seed: across 200 registries each 95% CI covers its true coefficient
    in about 95% of them (binomial 99.9% range for 200 draws: 176–199)."""
    rng = np.random.default_rng(2026)
    covered = dict.fromkeys(TRUE_ODI, 0)
    for _ in range(200):
        fit = _fit(registry(rng, sites=5, per_site=60), "odi_change_12m")
        for name, truth in TRUE_ODI.items():
            c = fit.coefficient(name)
            covered[name] += c.ci_low <= truth <= c.ci_high
    assert all(176 <= hits <= 199 for hits in covered.values()), covered


def _odi_sites(p):
    result = benchmarking.benchmark_outcome(
        p, benchmarking.DEFINITION["odi_change_12m"], min_n=5, mcid_vas="15"
    )
    return result


def test_a_site_two_sd_worse_is_flagged_beyond_the_998_limit():
    p = registry(np.random.default_rng(5), sites=30, per_site=60, worse={7: 2.0})
    result = _odi_sites(p)
    bad = result.sites[7]
    assert bad.position == "above 99.8%"
    assert bad.difference > bad.limits["99.8"][1]
    assert bad.difference == pytest.approx(2 * SIGMA, rel=0.25)
    labels = benchmarking.site_labels([(s, str(s), 60) for s in result.sites], named=None)
    entry = next(
        s for o in benchmarking.as_dict([result], labels) for s in o["sites"] if s["site"] == "7"
    )
    # A rising ODI is more disability: above the funnel is worse.
    assert entry["verdict"] == "worse than expected (beyond 99.8%)"
    others = [c for s, c in result.sites.items() if s != 7]
    assert sum(c.outside_998 for c in others) <= 1


def test_sites_from_the_same_model_fall_outside_the_limits_at_about_the_nominal_rate():
    """400 sites of 40 patients from one model: about 5% outside the 95% limits (binomial
    99.9% range 9–35 of 400) and about 0.2% outside the 99.8% limits (at most 5 of 400)."""
    p = registry(np.random.default_rng(11), sites=400, per_site=40)
    sites = _odi_sites(p).sites.values()
    outside_95 = sum(c.position != "inside" for c in sites)
    outside_998 = sum(c.outside_998 for c in sites)
    assert 9 <= outside_95 <= 35, outside_95
    assert outside_998 <= 5, outside_998


def test_rates_fall_outside_the_limits_at_about_the_nominal_rate():
    p = registry(np.random.default_rng(12), sites=300, per_site=80)
    result = benchmarking.benchmark_outcome(
        p, benchmarking.DEFINITION["symptomatic_complications"], min_n=5, mcid_vas="15"
    )
    sites = list(result.sites.values())
    assert 5 <= sum(c.position != "inside" for c in sites) <= 30
    assert sum(c.outside_998 for c in sites) <= 5
    # O/E and its exact Poisson interval: the interval holds the ratio.
    for c in sites:
        if c.ratio is not None:
            assert c.ratio_ci_low <= c.ratio <= c.ratio_ci_high


def test_a_site_below_the_minimum_n_is_shown_as_such_and_never_as_an_outlier():
    p = registry(np.random.default_rng(3), sites=10, per_site=50, worse={4: 5.0})
    keep = (p["site"] != 4) | (np.arange(len(p["site"])) % 50 < 4)  # site 4: 4 patients left
    p = {name: values[keep] for name, values in p.items()}
    result = _odi_sites(p)
    small = result.sites[4]
    assert (small.n, small.too_small, small.position, small.difference) == (4, True, None, None)
    labels = benchmarking.site_labels([(s, f"S{s}", 1) for s in result.sites], named={1})
    entry = next(
        s for o in benchmarking.as_dict([result], labels) for s in o["sites"] if s["n"] == 4
    )
    assert entry == {"site": entry["site"], "named": False, "n": 4, "too_small": True}


def test_site_labels_name_the_users_own_sites_and_letter_the_others_by_size():
    sites = [(10, "AAR – Aarhus", 30), (11, "ODE – Odense", 80), (12, "CPH – Rigshospitalet", 50)]
    labels = benchmarking.site_labels(sites, named={10})
    assert {k: (v.label, v.named) for k, v in labels.items()} == {
        10: ("AAR – Aarhus", True),
        11: ("Site A", False),
        12: ("Site B", False),
    }
    assert {v.label for v in benchmarking.site_labels(sites, named=None).values()} == {
        "AAR – Aarhus", "ODE – Odense", "CPH – Rigshospitalet"}  # fmt: skip


def test_leakage_counts_every_vertebra_once():
    p = {
        "levels": np.array([3.0, 1.0, 2.0]),
        "leaks": np.array([1.0, 0.0, 2.0]),
    }
    data = benchmarking.outcome_data(p, benchmarking.DEFINITION["leakage_per_level"], mcid_vas="15")
    assert data.rows.tolist() == [0, 0, 0, 1, 2, 2]
    assert data.y.tolist() == [1, 0, 0, 0, 1, 1]


def test_funnel_limits_narrow_with_the_square_root_of_n():
    limits = casemix.funnel_limits(4.0, 100)
    assert limits["95"] == pytest.approx((-1.959964 * 0.2, 1.959964 * 0.2))
    assert limits["99.8"] == pytest.approx((-3.090232 * 0.2, 3.090232 * 0.2))
    assert casemix.position(0.5, limits) == "above 95%"
    assert casemix.position(-0.7, limits) == "below 99.8%"
    assert casemix.position(0.39, limits) == "inside"


def test_a_model_is_not_fitted_from_too_few_patients_or_an_outcome_that_never_varies():
    x = np.arange(30.0).reshape(-1, 1)
    with pytest.raises(casemix.ModelError, match="too few"):
        casemix.fit_model(casemix.LINEAR, np.arange(15.0), x[:15], ["a"])
    with pytest.raises(casemix.ModelError, match="same for every patient"):
        casemix.fit_model(casemix.LOGISTIC, np.zeros(30), x, ["a"])


def test_an_empty_registry_gives_every_outcome_without_a_model_and_no_sites():
    """A filter nobody matches (schemathesis found the 500 this was)."""
    names = ["patient_id", "site", "age", "male", "cohort", "levels", "leaks", "karnofsky",
             "asa", "death_day", "withdrawn_day", "as_of_day", "answered_month_3",
             "answered_month_12", "symptomatic_complications",
             *(f"{s}_{t}" for s in ("odi_score", "eq5d_index", "vas_pain")
               for t in ("baseline", "month_12"))]  # fmt: skip
    p = {name: np.empty(0) for name in names}
    results = benchmarking.benchmark(p, min_n=5, mcid_vas="15")
    assert [(r.n, r.fit, r.sites) for r in results] == [(0, None, {})] * 7
    assert {r.error for r in results} == {"No patients have this outcome."}
    assert all(o["funnel"] == [] for o in benchmarking.as_dict(results, {}))
