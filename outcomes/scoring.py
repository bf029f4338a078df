"""The public scoring interface (pure functions, no database).

- ``eq5d_index(state, value_set)`` — EQ-5D index, see ``outcomes.instruments.eq5d``.
- ``odi_score(answers)`` — ODI v2.1a percentage, see ``outcomes.instruments.odi``.
- ``validate_vas(value)`` and ``odi_pain_category(answer)``.
"""

from outcomes.instruments.eq5d import VALUE_SETS, eq5d_index, eq5d_index_decimal
from outcomes.instruments.odi import MAX_MISSING_SECTIONS, odi_pain_category, odi_score
from outcomes.instruments.vas import validate_vas

__all__ = [
    "MAX_MISSING_SECTIONS",
    "VALUE_SETS",
    "eq5d_index",
    "eq5d_index_decimal",
    "odi_pain_category",
    "odi_score",
    "validate_vas",
]
