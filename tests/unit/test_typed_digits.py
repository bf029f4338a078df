"""Paper answers typed as digits (outcomes.typed_digits): what each instrument's box accepts,
and the message that refuses the rest (no database)."""

import pytest
from django.core.exceptions import ValidationError

from outcomes.typed_digits import digits_parse, eq5d_scale, odi_scale


@pytest.mark.parametrize(
    ("typed", "levels", "expected"),
    [
        ("11223", 5, (1, 1, 2, 2, 3)),
        ("55555", 5, (5, 5, 5, 5, 5)),
        ("12 3 21", 3, (1, 2, 3, 2, 1)),  # spaces ignored
        ("33333", 3, (3, 3, 3, 3, 3)),
    ],
)
def test_eq5d_digits_within_the_versions_levels_are_the_answers(typed, levels, expected):
    assert digits_parse(typed, eq5d_scale(levels)) == expected


@pytest.mark.parametrize(
    ("typed", "levels", "code", "words"),
    [
        ("1122", 5, "length", "Type 5 characters, one per question in the printed order (4 typed)"),
        ("112233", 5, "length", "(6 typed)"),
        ("11243", 3, "range", "Question 4: 4 is out of range; answers are 1–3."),
        ("11263", 5, "range", "Question 4: 6 is out of range; answers are 1–5."),
        ("01111", 5, "range", "Question 1: 0 is out of range; answers are 1–5."),
        ("11-11", 5, "character", "Question 3: “-” is not an answer. Type a digit 1–5."),
        ("1a111", 3, "character", "Question 2: “a” is not an answer. Type a digit 1–3."),
    ],
)
def test_eq5d_digits_refused_with_the_position_and_what_is_allowed(typed, levels, code, words):
    with pytest.raises(ValidationError) as refused:
        digits_parse(typed, eq5d_scale(levels))
    assert refused.value.code == code
    assert words in refused.value.messages[0]


def test_a_level_of_5l_is_refused_for_3l_but_taken_for_5l():
    """The adversary: a 5L answer typed at a 3L site must not be stored as a 3L level."""
    assert digits_parse("12451", eq5d_scale(5)) == (1, 2, 4, 5, 1)
    with pytest.raises(ValidationError, match="Question 3: 4 is out of range; answers are 1–3"):
        digits_parse("12451", eq5d_scale(3))


def test_odi_digits_with_one_section_marked_unanswered():
    assert digits_parse("3122121-22", odi_scale()) == (3, 1, 2, 2, 1, 2, 1, None, 2, 2)
    assert digits_parse("0000000000", odi_scale()) == (0,) * 10


@pytest.mark.parametrize(
    ("typed", "code", "words"),
    [
        ("312212102", "length", "Type 10 characters"),
        ("3122121622", "range", "Question 8: 6 is out of range; answers are 0–5."),
        ("31221210x2", "character", "or - for an unanswered question"),
    ],
)
def test_odi_digits_refused(typed, code, words):
    with pytest.raises(ValidationError) as refused:
        digits_parse(typed, odi_scale())
    assert refused.value.code == code
    assert words in refused.value.messages[0]
