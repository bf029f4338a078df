"""Case-mix models and funnel plots for comparing sites (design.md §8a), as pure functions
over NumPy arrays (no database, no Django).

- The expected value of a patient is the prediction of a model fitted on the whole registry:
  ordinary least squares for a change score (``statsmodels.api.OLS``), logistic regression
  for a yes/no outcome (``statsmodels.api.Logit``). A site's expected value is the mean of its
  patients' predictions (indirect standardisation), so O − E compares the site with what the
  registry as a whole achieves in patients like its own.
- Funnel plot: observed − expected per patient against n, with control limits
  0 ± z·√(v / n), z = 1.960 (95%) and 3.090 (99.8%), where v is the variance of one patient's
  outcome under the model: the residual variance σ² of the linear model, the mean of
  p(1 − p) over the registry for a logistic model (Spiegelhalter DJ. Funnel plots for
  comparing institutional performance. Stat Med 2005;24:1185-202, §3 and §4.3).
- 95% CI of a site's O − E: mean ± t(n − 1)·σ/√n for a change (σ of the model); for a rate,
  the exact Poisson interval of the observed count O (``scipy.stats.chi2``, Ulm K. Am J
  Epidemiol 1990;131:373-5), as O/E and as (O_ci − E)/n.
- Model honesty: coefficients with 95% CIs, n, R² (linear) or the c-statistic (logistic:
  the area under the ROC curve, Mann–Whitney U / (n₁·n₀), ``scipy.stats.mannwhitneyu``),
  and calibration by tenths of predicted value (observed against mean predicted), with the
  Hosmer–Lemeshow χ² on g − 2 degrees of freedom for a logistic model (Hosmer DW,
  Lemeshow S. Applied Logistic Regression, 2nd ed. 2000, §5.2.2).

A site with fewer patients than ``min_n`` is shown with its n and no numbers: never placed
on the funnel, never flagged.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import statsmodels.api as sm
from scipy import stats

LINEAR = "linear"
LOGISTIC = "logistic"
LEVELS = {"95": 0.95, "99.8": 0.998}
Z = {name: float(stats.norm.ppf(0.5 + level / 2)) for name, level in LEVELS.items()}
CALIBRATION_GROUPS = 10


class ModelError(ValueError):
    """A model that cannot be fitted (too few patients, no variation in the outcome)."""


@dataclass(frozen=True)
class Coefficient:
    name: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p: float


@dataclass(frozen=True)
class CalibrationGroup:
    n: int
    predicted: float  # mean predicted value in the group
    observed: float  # mean observed value in the group


@dataclass(frozen=True)
class ModelFit:
    kind: str  # LINEAR or LOGISTIC
    n: int
    coefficients: tuple[Coefficient, ...]
    unit_variance: float  # variance of one patient's outcome under the model (see module)
    r_squared: float | None = None
    residual_sd: float | None = None
    c_statistic: float | None = None
    hosmer_lemeshow: tuple[float, int, float] | None = None  # chi², df, p
    calibration: tuple[CalibrationGroup, ...] = ()
    converged: bool = True
    predicted: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def coefficient(self, name: str) -> Coefficient:
        return next(c for c in self.coefficients if c.name == name)


def fit_model(kind: str, y: np.ndarray, x: np.ndarray, names: list[str]) -> ModelFit:
    """The model of ``kind`` for outcome ``y`` on the columns of ``x`` (named ``names``; the
    intercept is added here). Columns that do not vary are left out (a predictor nobody has
    recorded, a cohort nobody is in). ``ModelError`` when there are fewer than ten patients per
    predictor, or the outcome does not vary."""
    y = np.asarray(y, dtype=float)
    x = np.asarray(x, dtype=float)
    if not len(y):
        raise ModelError("No patients have this outcome.")
    x = x.reshape(len(y), -1)
    varies = [i for i in range(x.shape[1]) if np.ptp(x[:, i]) > 0]
    names = ["intercept", *(names[i] for i in varies)]
    design = np.column_stack([np.ones(len(y)), x[:, varies]])
    if len(y) < 10 * len(names):
        raise ModelError(f"{len(y)} patients are too few for {len(names)} parameters.")
    if np.ptp(y) == 0:
        raise ModelError("The outcome is the same for every patient.")
    if kind == LINEAR:
        return _linear(y, design, names)
    if kind == LOGISTIC:
        return _logistic(y, design, names)
    raise ValueError(f"unknown model {kind!r}")


def _coefficients(result, names: list[str]) -> tuple[Coefficient, ...]:
    ci = np.asarray(result.conf_int(alpha=0.05))
    return tuple(
        Coefficient(name, float(b), float(se), float(lo), float(hi), float(p))
        for name, b, se, (lo, hi), p in zip(
            names, result.params, result.bse, ci, result.pvalues, strict=True
        )
    )


def _linear(y: np.ndarray, design: np.ndarray, names: list[str]) -> ModelFit:
    result = sm.OLS(y, design).fit()
    predicted = np.asarray(result.fittedvalues)
    return ModelFit(
        kind=LINEAR,
        n=len(y),
        coefficients=_coefficients(result, names),
        unit_variance=float(result.scale),
        r_squared=float(result.rsquared),
        residual_sd=math.sqrt(result.scale),
        calibration=calibration(y, predicted),
        predicted=predicted,
    )


def _logistic(y: np.ndarray, design: np.ndarray, names: list[str]) -> ModelFit:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = sm.Logit(y, design).fit(disp=0, maxiter=200)
    # Separation (a group where nobody had the event) or no convergence: the predictions
    # still describe the registry, the coefficients of that group do not; shown as such.
    converged = bool(result.mle_retvals.get("converged", True)) and not caught
    predicted = np.asarray(result.predict(design))
    return ModelFit(
        kind=LOGISTIC,
        n=len(y),
        coefficients=_coefficients(result, names),
        unit_variance=float(np.mean(predicted * (1 - predicted))),
        c_statistic=c_statistic(y, predicted),
        hosmer_lemeshow=hosmer_lemeshow(y, predicted),
        calibration=calibration(y, predicted),
        converged=converged,
        predicted=predicted,
    )


def c_statistic(y: np.ndarray, predicted: np.ndarray) -> float | None:
    """Area under the ROC curve: the chance that a patient with the event has a higher
    prediction than one without (ties count half), Mann–Whitney U / (n₁·n₀)."""
    events, others = predicted[y == 1], predicted[y == 0]
    if not len(events) or not len(others):
        return None
    u = stats.mannwhitneyu(events, others, alternative="two-sided").statistic
    return float(u / (len(events) * len(others)))


def _groups(predicted: np.ndarray, groups: int) -> list[np.ndarray]:
    """Indices in ``groups`` groups of (nearly) equal size by rank of prediction."""
    order = np.argsort(predicted, kind="stable")
    return [part for part in np.array_split(order, min(groups, len(order))) if len(part)]


def calibration(y: np.ndarray, predicted: np.ndarray, groups: int = CALIBRATION_GROUPS):
    """Observed against mean predicted value in tenths of the predictions."""
    return tuple(
        CalibrationGroup(len(part), float(predicted[part].mean()), float(y[part].mean()))
        for part in _groups(predicted, groups)
    )


def hosmer_lemeshow(
    y: np.ndarray, predicted: np.ndarray, groups: int = CALIBRATION_GROUPS
) -> tuple[float, int, float] | None:
    """Hosmer–Lemeshow χ² over tenths of predicted risk, g − 2 degrees of freedom."""
    parts = _groups(predicted, groups)
    if len(parts) < 3:
        return None
    chi2 = 0.0
    for part in parts:
        observed, expected, n = y[part].sum(), predicted[part].sum(), len(part)
        variance = expected * (1 - expected / n)
        if variance > 0:
            chi2 += (observed - expected) ** 2 / variance
    df = len(parts) - 2
    return float(chi2), df, float(stats.chi2.sf(chi2, df))


def funnel_limits(unit_variance: float, n: int | np.ndarray) -> dict[str, tuple]:
    """Control limits of O − E per patient at ``n`` patients: {"95": (low, high), "99.8": …}."""
    n = np.asarray(n, dtype=float)
    half = {name: z * np.sqrt(unit_variance / n) for name, z in Z.items()}
    if half["95"].ndim == 0:
        return {name: (-float(h), float(h)) for name, h in half.items()}
    return {name: (-h, h) for name, h in half.items()}


@dataclass(frozen=True)
class SiteComparison:
    n: int
    too_small: bool
    observed: float | None = None  # mean per patient (a change, or a rate 0–1)
    expected: float | None = None
    difference: float | None = None  # observed − expected
    ci_low: float | None = None
    ci_high: float | None = None
    ratio: float | None = None  # O/E, rates only
    ratio_ci_low: float | None = None
    ratio_ci_high: float | None = None
    limits: dict[str, tuple[float, float]] = field(default_factory=dict)
    position: str | None = None  # "inside", "above 95%", "above 99.8%", "below 95%", …

    @property
    def outside_998(self) -> bool:
        return bool(self.position and self.position.endswith("99.8%"))


def position(difference: float, limits: dict[str, tuple[float, float]]) -> str:
    """Where O − E lies against the funnel: beyond the 99.8% limit, else the 95%, else
    inside. A value on a limit is inside."""
    for name in ("99.8", "95"):
        low, high = limits[name]
        if difference > high:
            return f"above {name}%"
        if difference < low:
            return f"below {name}%"
    return "inside"


def compare_site(
    kind: str, y: np.ndarray, predicted: np.ndarray, *, unit_variance: float, min_n: int
) -> SiteComparison:
    """Observed against expected for one site's patients (``y`` and their predictions)."""
    y, predicted = np.asarray(y, dtype=float), np.asarray(predicted, dtype=float)
    n = len(y)
    if n < min_n or n == 0:
        return SiteComparison(n=n, too_small=True)
    observed, expected = float(y.mean()), float(predicted.mean())
    difference = observed - expected
    limits = funnel_limits(unit_variance, n)
    ratio = ratio_low = ratio_high = None
    if kind == LINEAR:
        half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(unit_variance / n)
        low, high = difference - half, difference + half
    else:
        count, expected_count = float(y.sum()), float(predicted.sum())
        count_low = 0.0 if count == 0 else stats.chi2.ppf(0.025, 2 * count) / 2
        count_high = stats.chi2.ppf(0.975, 2 * count + 2) / 2
        low, high = (count_low - expected_count) / n, (count_high - expected_count) / n
        if expected_count > 0:
            ratio = count / expected_count
            ratio_low, ratio_high = count_low / expected_count, count_high / expected_count
    return SiteComparison(
        n=n,
        too_small=False,
        observed=observed,
        expected=expected,
        difference=difference,
        ci_low=float(low),
        ci_high=float(high),
        ratio=ratio,
        ratio_ci_low=None if ratio_low is None else float(ratio_low),
        ratio_ci_high=None if ratio_high is None else float(ratio_high),
        limits=limits,
        position=position(difference, limits),
    )
