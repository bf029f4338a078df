"""Oswestry Disability Index, version 2.1a.

Source: Fairbank JCT, Pynsent PB. The Oswestry Disability Index. Spine 2000;25:2940-52.
Ten sections, each scored 0 (first statement) to 5 (last statement). Score =
100 × (sum of answered sections) / (5 × number of answered sections), in percent.

Missing sections: the published instructions give the rule for *one* section missed or not
applicable (the denominator drops by 5, e.g. 16/45 = 35.6 %) and none for more. We follow that
and refuse to score when two or more sections are missing (``MAX_MISSING_SECTIONS``): such a
questionnaire is stored with its answers but no ODI score. Scores are rounded half up to one
decimal (the manual's 35.5 for 16/45 is a truncation).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal

SECTION_COUNT = 10
MAX_SECTION_SCORE = 5
MAX_MISSING_SECTIONS = 1

SECTIONS = (
    "pain_intensity",
    "personal_care",
    "lifting",
    "walking",
    "sitting",
    "standing",
    "sleeping",
    "sex_life",
    "social_life",
    "travelling",
)


def odi_score_decimal(answers: Sequence[int | None]) -> Decimal | None:
    if len(answers) != SECTION_COUNT:
        raise ValueError(f"The ODI has {SECTION_COUNT} sections; got {len(answers)} answers.")
    answered = []
    for number, answer in enumerate(answers, start=1):
        if answer is None:
            continue
        if isinstance(answer, bool) or not isinstance(answer, int):
            raise ValueError(f"ODI section {number} must be a whole number 0–5, got {answer!r}.")
        if not 0 <= answer <= MAX_SECTION_SCORE:
            raise ValueError(f"ODI section {number} must be 0–5, got {answer}.")
        answered.append(answer)
    if SECTION_COUNT - len(answered) > MAX_MISSING_SECTIONS:
        return None
    score = Decimal(100 * sum(answered)) / Decimal(MAX_SECTION_SCORE * len(answered))
    return score.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def odi_score(answers: Sequence[int | None]) -> float | None:
    """ODI v2.1a percentage 0–100 (one decimal), or ``None`` when too many sections are missing.

    ``answers`` are the ten section scores 0–5 in v2.1a order, ``None`` for unanswered. More
    than ``MAX_MISSING_SECTIONS`` (1) missing → ``None``. Out-of-range → ``ValueError``.
    """
    score = odi_score_decimal(answers)
    return None if score is None else float(score)


def odi_pain_category(answer: int | None) -> int | None:
    """ODI section 1 as its six-category pain item (0–5), validated; ``None`` if unanswered."""
    if answer is None:
        return None
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer <= 5:
        raise ValueError(f"ODI pain intensity must be 0–5, got {answer!r}.")
    return answer
