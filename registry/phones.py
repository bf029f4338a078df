"""Patients' phone numbers: one rule for what the registry stores (design.md §5).

A number is stored in E.164 (``+4520123456``), parsed with Google's libphonenumber (the
``phonenumbers`` port) in the country of the patient's site, so a nurse may type it the way it
is written locally ("20 12 34 56"). The error messages never repeat the number: they end up in
logs and form errors that are not meant to hold contact details.
"""

from __future__ import annotations

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# What the database accepts (the same rule as a check constraint): "+", a country code not
# starting with 0, at most 15 digits in all (ITU-T E.164 §6.2.1).
E164_REGEX = r"^\+[1-9][0-9]{6,14}$"


def phone_normalise(raw: str, *, country: str) -> str:
    """``raw`` as E.164, read in ``country`` (ISO 3166 alpha-2) unless it starts with ``+``;
    "" for an empty value. Raises ``ValidationError`` (without the number) when it is not a
    valid number there."""
    raw = (raw or "").strip()
    if not raw:
        return ""
    try:
        number = phonenumbers.parse(raw, country.upper() or None)
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _("This is not a phone number. Write it with its country code, e.g. +45 …"),
            code="phone_unparsable",
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("This phone number is not valid in %(country)s. Check the digits and country code.")
            % {"country": country.upper()},
            code="phone_invalid",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_display(e164: str) -> str:
    """A stored number as a nurse reads it aloud: grouped the way its country writes it, with
    the country code (``+45 20 12 34 56``); the stored text when it does not parse."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
