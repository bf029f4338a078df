"""EQ-5D index values from published national value sets, computed exactly.

Coefficients are taken from the ``eq5d`` R package (Morton & Nijjar, CRAN; repository
fragla/eq5d, ``data-raw/TTO.csv`` for 3L TTO and ``data-raw/VT.csv`` for 5L), which transcribes
the original publications, and were cross-checked against EuroQol's eq5dsuite state tables:

- ``UK-3L``: Dolan P. Modeling valuations for EuroQol health states. Med Care 1997;35:1095-108
  (TTO; constant for any move away from full health and the N3 term for any level 3).
- ``DK-3L``: Wittrup-Jensen KU et al. Generation of a Danish TTO value set for EQ-5D health
  states. Scand J Public Health 2009;37:459-66 (constant, no N3 term).
- ``EN-5L``: Devlin NJ et al. Valuing health-related quality of life: an EQ-5D-5L value set
  for England. Health Econ 2018;27:7-22.
- ``DK-5L``: Jensen CE et al. The Danish EQ-5D-5L value set. Appl Health Econ Health Policy
  2021;19:579-91.
- ``US-5L``: Pickard AS et al. United States valuation of EQ-5D-5L health states using an
  international protocol. Value Health 2019;22:931-41.
- ``UK26-5L``: Rowen D, Mukuria C, Bray N, Carlton J, Longworth L, Meads D, Oluboyede Y,
  O'Neill C, Yang Y. A UK value set for the EQ-5D-5L. Value Health 2026 (epub 24 March 2026),
  doi:10.1016/j.jval.2026.03.008, PMID 41887403 (composite TTO, 1200 UK adults, random
  effects Tobit model). The UK-wide set of 2026, not England's set of 2018 (``EN-5L``); its
  code says so. Coefficients from the ``eq5d`` package, ``data-raw/VT.csv`` column ``UK``
  (commit 88e902f, "UK EQ-5D-5L value set added", 28 March 2026), with that package's test
  values (``tests/testthat/test-eq5d5l.R``).

All coefficients have three decimals, so the sum is computed with ``Decimal`` and is exact;
binary floats would turn e.g. 0.228 into 0.22799999… and a later truncation would be wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

DIMENSIONS = ("MO", "SC", "UA", "PD", "AD")


@dataclass(frozen=True)
class ValueSet:
    code: str
    levels: int  # 3 for EQ-5D-3L, 5 for EQ-5D-5L
    source: str
    # decrement per dimension, indexed by level - 1 (level 1 is always 0)
    decrements: dict[str, tuple[Decimal, ...]]
    constant: Decimal = Decimal("0")  # subtracted once if any dimension is above level 1
    n3: Decimal = Decimal("0")  # subtracted once if any dimension is at level 3 (3L only)


def _d(*values: str) -> tuple[Decimal, ...]:
    return (Decimal("0"), *(Decimal(v) for v in values))


VALUE_SETS: dict[str, ValueSet] = {
    "UK-3L": ValueSet(
        code="UK-3L",
        levels=3,
        source="Dolan 1997, UK TTO",
        constant=Decimal("0.081"),
        n3=Decimal("0.269"),
        decrements={
            "MO": _d("0.069", "0.314"),
            "SC": _d("0.104", "0.214"),
            "UA": _d("0.036", "0.094"),
            "PD": _d("0.123", "0.386"),
            "AD": _d("0.071", "0.236"),
        },
    ),
    "DK-3L": ValueSet(
        code="DK-3L",
        levels=3,
        source="Wittrup-Jensen 2009, Danish TTO",
        constant=Decimal("0.114"),
        decrements={
            "MO": _d("0.053", "0.411"),
            "SC": _d("0.063", "0.192"),
            "UA": _d("0.048", "0.144"),
            "PD": _d("0.062", "0.396"),
            "AD": _d("0.068", "0.367"),
        },
    ),
    "EN-5L": ValueSet(
        code="EN-5L",
        levels=5,
        source="Devlin 2018, England",
        decrements={
            "MO": _d("0.058", "0.076", "0.207", "0.274"),
            "SC": _d("0.050", "0.080", "0.164", "0.203"),
            "UA": _d("0.050", "0.063", "0.162", "0.184"),
            "PD": _d("0.063", "0.084", "0.276", "0.335"),
            "AD": _d("0.078", "0.104", "0.285", "0.289"),
        },
    ),
    "DK-5L": ValueSet(
        code="DK-5L",
        levels=5,
        source="Jensen 2021, Denmark",
        decrements={
            "MO": _d("0.041", "0.054", "0.157", "0.220"),
            "SC": _d("0.035", "0.050", "0.144", "0.209"),
            "UA": _d("0.033", "0.040", "0.139", "0.174"),
            "PD": _d("0.048", "0.094", "0.381", "0.537"),
            "AD": _d("0.072", "0.191", "0.430", "0.618"),
        },
    ),
    "US-5L": ValueSet(
        code="US-5L",
        levels=5,
        source="Pickard 2019, United States",
        decrements={
            "MO": _d("0.096", "0.122", "0.237", "0.322"),
            "SC": _d("0.089", "0.107", "0.220", "0.261"),
            "UA": _d("0.068", "0.101", "0.255", "0.255"),
            "PD": _d("0.060", "0.098", "0.318", "0.414"),
            "AD": _d("0.057", "0.123", "0.299", "0.321"),
        },
    ),
    "UK26-5L": ValueSet(
        code="UK26-5L",
        levels=5,
        source="Rowen 2026, United Kingdom",
        decrements={
            "MO": _d("0.032", "0.058", "0.179", "0.279"),
            "SC": _d("0.038", "0.060", "0.162", "0.206"),
            "UA": _d("0.049", "0.086", "0.184", "0.212"),
            "PD": _d("0.056", "0.066", "0.371", "0.479"),
            "AD": _d("0.041", "0.126", "0.313", "0.391"),
        },
    ),
}


def parse_state(state: str, levels: int) -> tuple[int, ...]:
    """The five levels of an EQ-5D state string such as ``"21324"`` (MO SC UA PD AD)."""
    if not isinstance(state, str) or len(state) != 5 or not state.isdigit():
        raise ValueError(
            f"EQ-5D state must be five digits in the order MO SC UA PD AD, got {state!r}."
        )
    digits = tuple(int(ch) for ch in state)
    for dimension, level in zip(DIMENSIONS, digits, strict=True):
        if not 1 <= level <= levels:
            raise ValueError(
                f"EQ-5D-{levels}L {dimension} must be 1–{levels}, got {level} in {state!r}."
            )
    return digits


def eq5d_index_decimal(state: str, value_set: str) -> Decimal:
    """The exact index value of ``state`` under ``value_set`` as a ``Decimal`` (3 decimals)."""
    try:
        vs = VALUE_SETS[value_set]
    except KeyError:
        known = ", ".join(sorted(VALUE_SETS))
        raise ValueError(f"Unknown EQ-5D value set {value_set!r}; known: {known}.") from None
    digits = parse_state(state, vs.levels)
    value = Decimal("1")
    if any(level > 1 for level in digits):
        value -= vs.constant
    if vs.levels == 3 and any(level == 3 for level in digits):
        value -= vs.n3
    for dimension, level in zip(DIMENSIONS, digits, strict=True):
        value -= vs.decrements[dimension][level - 1]
    # +0 turns a negative zero into zero; quantize keeps the published three decimals.
    return (value + 0).quantize(Decimal("0.001"))


def eq5d_index(state: str, value_set: str) -> float:
    """EQ-5D index value of ``state`` (five digits MO SC UA PD AD) under ``value_set``.

    Returns a float with three decimals, e.g. ``eq5d_index("11112", "UK-3L") == 0.848``.
    Raises ``ValueError`` for a malformed state, a level outside the version's range, or an
    unknown value set code (``UK-3L``, ``DK-3L``, ``EN-5L``, ``DK-5L``, ``US-5L``).
    """
    return float(eq5d_index_decimal(state, value_set))
