"""A password check beside Django's: enough different characters, so that twelve spaces or
"aaaaaaaaaaaa" (which pass the length, common and numeric checks) are refused."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


class VariedCharactersValidator:
    """At least ``min_distinct`` different characters, not counting spaces, and no character
    making up more than half of the password."""

    def __init__(self, min_distinct: int = 6):
        self.min_distinct = min_distinct

    def validate(self, password: str, user=None) -> None:
        characters = password.replace(" ", "")
        most = max((characters.count(c) for c in set(characters)), default=len(password))
        if len(set(characters)) < self.min_distinct or most * 2 > len(password):
            raise ValidationError(
                _(
                    "This password repeats too few characters. Use at least %(count)d "
                    "different ones, e.g. a few unrelated words."
                )
                % {"count": self.min_distinct},
                code="password_too_repetitive",
            )

    def get_help_text(self) -> str:
        return _("Your password must use at least %(count)d different characters.") % {
            "count": self.min_distinct
        }
