"""Paper answers typed as digits, one box per instrument (issue 27, item 6).

A nurse entering a paper questionnaire types the answers in the printed order, e.g. ``11223``
for the five EQ-5D dimensions or ``3122121022`` for the ten ODI sections, instead of clicking
15 radio buttons through long texts. Each digit is the answer's value as the scoring reads it
(EQ-5D levels 1–3 or 1–5 by the site's version; ODI answers 0–5, design.md §4). ODI v2.1a may
be scored with one section unanswered (``outcomes.instruments.odi.MAX_MISSING_SECTIONS``), so
an unanswered section is typed as ``-``; the EQ-5D is all five or nothing, so it has no mark.

Spaces are ignored (``11 223`` is ``11223``). Wrong length or a digit out of range is refused
with a message saying which position and what is allowed; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from outcomes.instruments.odi import MAX_SECTION_SCORE, SECTION_COUNT

UNANSWERED_MARK = "-"


@dataclass(frozen=True)
class Scale:
    """What one instrument's box accepts."""

    count: int  # number of questions, one digit each
    low: int
    high: int
    missing_allowed: bool  # may a question be marked unanswered with "-"


def digits_normalise(text: str) -> str:
    """The typed text without spaces (what is checked, stored for the preview and shown)."""
    return "".join(text.split())


def digits_parse(text: str, scale: Scale) -> tuple[int | None, ...]:
    """The answers typed in ``text``, in order (None for a section marked ``-``).

    Raises ValidationError (code ``length``, ``character`` or ``range``) naming the first
    wrong position and what the instrument allows.
    """
    typed = digits_normalise(text)
    if len(typed) != scale.count:
        raise ValidationError(
            _("Type %(count)d characters, one per question in the printed order (%(typed)d typed).")
            % {"count": scale.count, "typed": len(typed)},
            code="length",
        )
    values: list[int | None] = []
    for position, char in enumerate(typed, start=1):
        if char == UNANSWERED_MARK and scale.missing_allowed:
            values.append(None)
            continue
        if not ("0" <= char <= "9"):
            if scale.missing_allowed:
                message = _(
                    "Question %(position)d: “%(char)s” is not an answer. Type a digit "
                    "%(low)d–%(high)d, or - for an unanswered question."
                )
            else:
                message = _(
                    "Question %(position)d: “%(char)s” is not an answer. Type a digit "
                    "%(low)d–%(high)d."
                )
            raise ValidationError(
                message
                % {"position": position, "char": char, "low": scale.low, "high": scale.high},
                code="character",
            )
        value = int(char)
        if not scale.low <= value <= scale.high:
            raise ValidationError(
                _("Question %(position)d: %(value)d is out of range; answers are %(low)d–%(high)d.")
                % {"position": position, "value": value, "low": scale.low, "high": scale.high},
                code="range",
            )
        values.append(value)
    return tuple(values)


def eq5d_scale(levels: int) -> Scale:
    """EQ-5D: five dimensions, levels 1–3 (3L) or 1–5 (5L); all five or none (no mark)."""
    return Scale(count=5, low=1, high=levels, missing_allowed=False)


def odi_scale() -> Scale:
    """ODI v2.1a: ten sections scored 0–5; a section may be left unanswered (``-``)."""
    return Scale(count=SECTION_COUNT, low=0, high=MAX_SECTION_SCORE, missing_allowed=True)
