"""Scoring reproduces the published value sets state for state (no database).

Expected values come from two public implementations and are quoted, rounded to the published
three decimals:
- EuroQol's eq5dsuite state tables (MathsinHealth/eq5dsuite-value-sets: EQ-5D-3L/UK.csv,
  EQ-5D-3L/DK.csv, EQ-5D-5L/DK.csv, EQ-5D-5L/US.csv);
- the test suite of the eq5d R package (fragla/eq5d, tests/testthat/test-eq5d3l.R and
  test-eq5d5l.R), marked "eq5d" below.
"""

import math
from decimal import Decimal

import pytest

from outcomes.instruments.eq5d import DIMENSIONS, VALUE_SETS
from outcomes.scoring import eq5d_index, odi_pain_category, odi_score, validate_vas

PUBLISHED = {
    "UK-3L": {
        "11111": 1.000,
        "11112": 0.848,
        "11113": 0.414,
        "11121": 0.796,
        "11211": 0.883,
        "12111": 0.815,
        "21111": 0.850,
        "11122": 0.725,
        "11221": 0.760,  # eq5d
        "22222": 0.516,
        "12321": 0.329,  # also eq5d
        "21232": 0.088,
        "32211": 0.196,
        "23313": 0.037,
        "33133": -0.500,
        "32223": -0.163,
        "13332": -0.115,
        "33121": -0.001,
        "12332": -0.005,
        "33221": -0.037,  # eq5d
        "33333": -0.594,
    },
    "DK-3L": {
        "11111": 1.000,
        "11112": 0.818,
        "11113": 0.519,
        "11121": 0.824,
        "11211": 0.838,
        "12111": 0.823,  # also eq5d
        "21111": 0.833,
        "12121": 0.761,  # eq5d
        "22222": 0.592,
        "12323": 0.250,
        "31223": -0.002,
        "32213": -0.003,
        "21133": 0.070,
        "22133": 0.007,
        "13333": -0.213,
        "23322": 0.367,
        "33312": 0.071,
        "32123": -0.017,  # eq5d
        "32323": -0.161,  # eq5d
        "33333": -0.624,
    },
    "DK-5L": {
        "11111": 1.000,
        "11112": 0.928,
        "11115": 0.382,
        "11121": 0.952,
        "11155": -0.155,
        "11254": 0.000,
        "11354": -0.007,
        "12345": -0.074,
        "13224": 0.439,  # also eq5d
        "13444": 0.000,
        "14435": 0.005,
        "15515": -0.001,
        "21111": 0.959,
        "22222": 0.771,
        "24153": 0.087,
        "25555": -0.579,
        "55555": -0.758,  # eq5d
    },
    "US-5L": {
        "11111": 1.000,
        "11112": 0.943,
        "11115": 0.679,
        "11511": 0.745,
        "12111": 0.911,  # also eq5d
        "12345": 0.171,
        "13445": -0.001,
        "14254": -0.001,
        "15555": -0.251,
        "21111": 0.904,  # eq5d
        "21354": 0.090,  # eq5d
        "22354": 0.001,
        "23455": -0.193,
        "24451": 0.015,
        "25455": -0.347,
        "55555": -0.573,  # eq5d
    },
    "EN-5L": {
        # eq5d package tests
        "11111": 1.000,
        "11112": 0.922,
        "11121": 0.937,
        "11211": 0.950,
        "12111": 0.950,
        "21111": 0.942,
        "23245": 0.247,
        "55555": -0.285,
        # hand-summed from the coefficients of Devlin 2018 (checks the additive model)
        "12345": 0.322,  # 1 - .050 - .063 - .276 - .289
        "22222": 0.701,  # 1 - .058 - .050 - .050 - .063 - .078
        "33333": 0.593,  # 1 - .076 - .080 - .063 - .084 - .104
        "44444": -0.094,  # 1 - .207 - .164 - .162 - .276 - .285
        "51111": 0.726,  # 1 - .274
        "15151": 0.462,  # 1 - .203 - .335
    },
    "UK26-5L": {
        # eq5d package tests of the UK 2026 set (Rowen 2026)
        "11111": 1.000,
        "22222": 0.784,
        "33333": 0.604,
        "44444": -0.209,
        "55555": -0.567,
        # hand-summed from the coefficients (each dimension alone, and mixed states)
        "21111": 0.968,  # 1 - .032
        "12111": 0.962,  # 1 - .038
        "11211": 0.951,  # 1 - .049
        "11121": 0.944,  # 1 - .056
        "11112": 0.959,  # 1 - .041
        "12345": 0.114,  # 1 - .038 - .086 - .371 - .391
        "51111": 0.721,  # 1 - .279
        "15151": 0.315,  # 1 - .206 - .479
        "23245": 0.097,  # 1 - .032 - .060 - .049 - .371 - .391
        "55551": -0.176,  # 1 - .279 - .206 - .212 - .479
    },
}
CASES = [(vs, state, value) for vs, table in PUBLISHED.items() for state, value in table.items()]


@pytest.mark.parametrize(("value_set", "state", "expected"), CASES)
def test_index_matches_published_value(value_set, state, expected):
    assert eq5d_index(state, value_set) == expected


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_every_value_set_has_full_health_and_worst_state_and_a_dozen_more(value_set):
    table = PUBLISHED[value_set]
    worst = "33333" if VALUE_SETS[value_set].levels == 3 else "55555"
    assert table["11111"] == 1.0 and worst in table
    assert len(table) >= 14


def naive_float_index(state: str, value_set: str) -> float:
    vs = VALUE_SETS[value_set]
    digits = [int(ch) for ch in state]
    value = 1.0
    if any(d > 1 for d in digits):
        value -= float(vs.constant)
    if vs.levels == 3 and 3 in digits:
        value -= float(vs.n3)
    for dimension, level in zip(DIMENSIONS, digits, strict=True):
        value -= float(vs.decrements[dimension][level - 1])
    return value


@pytest.mark.parametrize(
    ("state", "value_set", "expected"),
    [("11254", "DK-5L", 0.0), ("13444", "DK-5L", 0.0), ("23245", "EN-5L", 0.247)],
)
def test_states_whose_float_sum_is_not_exact_are_exact(state, value_set, expected):
    naive = naive_float_index(state, value_set)
    # The float sum is off in the last bits: truncating it to three decimals is wrong...
    assert math.floor(naive * 1000) / 1000 != expected
    # ...while the exact computation is right, with no negative zero.
    result = eq5d_index(state, value_set)
    assert result == expected
    assert math.copysign(1, result) == 1


def test_index_has_three_decimals():
    for value_set, state, _expected in CASES:
        result = eq5d_index(state, value_set)
        assert Decimal(str(result)).as_tuple().exponent >= -3


@pytest.mark.parametrize(
    ("state", "value_set", "message"),
    [
        ("1111", "UK-3L", "five digits"),
        ("111111", "UK-3L", "five digits"),
        ("1a111", "UK-3L", "five digits"),
        (11111, "UK-3L", "five digits"),
        ("11141", "UK-3L", "PD must be 1–3"),
        ("01111", "DK-5L", "MO must be 1–5"),
        ("11116", "DK-5L", "AD must be 1–5"),
        ("11111", "SE-5L", "Unknown EQ-5D value set"),
        ("11111", "uk-3l", "Unknown EQ-5D value set"),
    ],
)
def test_invalid_state_or_value_set_is_refused(state, value_set, message):
    with pytest.raises(ValueError, match=message):
        eq5d_index(state, value_set)


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ([0] * 10, 0.0),
        ([5] * 10, 100.0),
        ([3, 1, 2, 2, 1, 2, 1, 0, 2, 2], 32.0),  # 16 / 50 (Fairbank 2000 example)
        ([3, 1, 2, 2, 1, 2, 1, None, 2, 2], 35.6),  # 16 / 45, one section missing
        ([4, 3, 5, 3, 2, 3, 2, None, 3, 2], 60.0),  # 27 / 45
        ([1, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2.0),
        ([1, 0, 0, 0, 0, 0, 0, None, 0, 0], 2.2),  # 1 / 45 = 2.22
        ([5, 5, 5, 5, 5, 5, 5, 5, 5, None], 100.0),
        ([2, 2, 2, 2, 2, 2, 2, 2, 2, 1], 38.0),
    ],
)
def test_odi_worked_examples(answers, expected):
    assert odi_score(answers) == expected


def test_odi_rounds_half_up_to_one_decimal():
    # 37 / 45 = 82.2222 -> 82.2; 4 / 45 = 8.888 -> 8.9; 29/45 = 64.444 -> 64.4
    assert odi_score([5, 5, 5, 5, 5, 5, 5, None, 2, 0]) == 82.2
    assert odi_score([1, 1, 1, 1, 0, 0, 0, None, 0, 0]) == 8.9


@pytest.mark.parametrize(
    "answers",
    [
        [3, 1, 2, 2, 1, 2, 1, None, None, 2],
        [None] * 10,
        [None, None, None, 5, 5, 5, 5, 5, 5, 5],
    ],
)
def test_odi_with_two_or_more_sections_missing_gives_no_score(answers):
    assert odi_score(answers) is None


@pytest.mark.parametrize(
    ("answers", "message"),
    [
        ([6, 0, 0, 0, 0, 0, 0, 0, 0, 0], "section 1 must be 0–5"),
        ([0, -1, 0, 0, 0, 0, 0, 0, 0, 0], "section 2 must be 0–5"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, 2.5], "section 10 must be a whole number"),
        ([0, 0, 0, 0, 0, 0, 0, 0, 0, True], "section 10 must be a whole number"),
        ([0] * 9, "has 10 sections"),
        ([0] * 11, "has 10 sections"),
    ],
)
def test_odi_out_of_range_is_refused(answers, message):
    with pytest.raises(ValueError, match=message):
        odi_score(answers)


@pytest.mark.parametrize("value", [0, 1, 57, 100])
def test_vas_accepts_whole_millimetres(value):
    assert validate_vas(value) == value


@pytest.mark.parametrize("value", [-1, 101, 55.5, "50", None, True])
def test_vas_refuses_anything_else(value):
    with pytest.raises(ValueError, match="VAS"):
        validate_vas(value)


def test_odi_pain_item_is_six_categories():
    assert [odi_pain_category(v) for v in (None, 0, 5)] == [None, 0, 5]
    with pytest.raises(ValueError, match="pain intensity"):
        odi_pain_category(6)
