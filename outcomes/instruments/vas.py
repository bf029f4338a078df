"""Pain visual analogue scale: worst pain in the last week, 0 (no pain) to 100 mm (worst
imaginable), recorded as a whole number of millimetres. Out-of-range values are refused, never
clamped (design.md §4)."""

from __future__ import annotations

VAS_MIN = 0
VAS_MAX = 100


def validate_vas(value: int) -> int:
    """Return ``value`` if it is a whole number 0–100, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"VAS must be a whole number of millimetres 0–100, got {value!r}.")
    if not VAS_MIN <= value <= VAS_MAX:
        raise ValueError(f"VAS must be 0–100 mm, got {value}.")
    return value
