"""Shared refusals: one home for the rules every door applies (docs/validation.md).

The admin, the import and management commands all reach these through the models' field
validators and ``clean()``; PostgreSQL holds the same rules as CHECK constraints and triggers
(the SQL below), so a row written by raw SQL or ``QuerySet.update()`` is refused too.

- **CPR-shaped values.** A Danish CPR number is ``DDMMYY-SSSS`` (ten digits, the dash
  optional) whose first six digits are a real calendar date. It must never enter the registry,
  so every id and free-text field refuses a value that contains one, with or without the dash
  or with a space instead. The century is unknown from six digits, so 29 February counts as a
  date whenever the two-digit year is divisible by 4 (2000 was a leap year).
- **Date bounds.** No clinical date before 1900-01-01; none later than today *at the site*
  (the site's time zone decides when a day begins).
- **Cement volume per region.** Hard limits (refused) and the usual range (a warning that
  needs a reason), per spinal region. Typical fills are 2–4 mL in thoracic and 3–6 mL in lumbar
  vertebrae (Kallmes & Jensen, Radiology 2003;229:27-36; Röder et al., Eur Spine J 2013), a
  cervical body holds far less; the limits below are the registry's, set wide enough to refuse
  only what cannot be true.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The date entry formats of every date field (registry.locale) and of the patient search.
DATE_INPUT_FORMATS = ["%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%d/%m/%Y"]

# --- CPR-shaped values ---------------------------------------------------------------------

CPR_PATTERN = re.compile(r"(?<![0-9])([0-9]{2})([0-9]{2})([0-9]{2})[- ]?[0-9]{4}(?![0-9])")
# The same pattern for PostgreSQL's regular expressions (lookbehind since PostgreSQL 9.6).
CPR_PATTERN_SQL = r"(?<![0-9])([0-9]{2})([0-9]{2})([0-9]{2})[- ]?[0-9]{4}(?![0-9])"
DAYS_IN_MONTH = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_cpr_date(day: int, month: int, year2: int) -> bool:
    """Whether DD MM YY is a calendar date in some century (29 Feb when YY % 4 == 0)."""
    if not 1 <= month <= 12 or day < 1:
        return False
    if month == 2 and day == 29:
        return year2 % 4 == 0
    return day <= DAYS_IN_MONTH[month - 1]


def looks_like_cpr(text: str | None) -> bool:
    """True when ``text`` contains a CPR-shaped number: ten digits (or six, a dash or space,
    four) not part of a longer run of digits, the first six a valid DDMMYY date."""
    if not text:
        return False
    for match in CPR_PATTERN.finditer(text):
        day, month, year2 = (int(group) for group in match.groups())
        if is_cpr_date(day, month, year2):
            return True
    return False


CPR_MESSAGE = _(
    "This looks like a CPR number (DDMMYY-XXXX). National ids must never be entered in the "
    "registry: remove it."
)


def validate_no_cpr(value: str) -> None:
    if looks_like_cpr(value):
        raise ValidationError(CPR_MESSAGE, code="cpr_shaped")


# PostgreSQL twin of ``looks_like_cpr`` for CHECK constraints (IMMUTABLE: no table access).
CPR_FUNCTION_SQL = f"""
CREATE OR REPLACE FUNCTION registry_cpr_shaped(value text) RETURNS boolean
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $fn$
DECLARE
    m text[];
    d integer;
    mo integer;
    y integer;
BEGIN
    FOR m IN SELECT regexp_matches(value, '{CPR_PATTERN_SQL}', 'g') LOOP
        d := m[1]::integer;
        mo := m[2]::integer;
        y := m[3]::integer;
        IF mo BETWEEN 1 AND 12 AND d >= 1 AND (
            (mo = 2 AND d = 29 AND y % 4 = 0)
            OR d <= (ARRAY[31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])[mo]
        ) THEN
            RETURN true;
        END IF;
    END LOOP;
    RETURN false;
END
$fn$;
"""
CPR_FUNCTION_DROP_SQL = "DROP FUNCTION IF EXISTS registry_cpr_shaped(text);"


# --- Dates ---------------------------------------------------------------------------------

EARLIEST_DATE = datetime.date(1900, 1, 1)
EARLIEST_MESSAGE = _("Dates before 1900-01-01 are not accepted; check the year.")
FUTURE_MESSAGE = _("This date is in the future; enter a date on or before today.")


def validate_not_before_1900(value: datetime.date | None) -> None:
    if value is not None and value < EARLIEST_DATE:
        raise ValidationError(EARLIEST_MESSAGE, code="before_1900")


def site_today(time_zone: str, now: datetime.datetime | None = None) -> datetime.date:
    """Today's calendar date at a site (its IANA time zone)."""
    return (now or timezone.now()).astimezone(ZoneInfo(time_zone)).date()


def future_errors(values: dict[str, datetime.date | None], time_zone: str) -> dict[str, str]:
    """The fields of ``values`` dated after today at the site, each with its message."""
    today = site_today(time_zone)
    return {name: FUTURE_MESSAGE for name, value in values.items() if value and value > today}


def not_in_future_sql(columns: list[str], site_sql: str, constraint: str) -> str:
    """Trigger body refusing any of ``columns`` later than today in the site's time zone;
    ``site_sql`` selects the site's ``time_zone`` for ``NEW``. A CHECK constraint cannot do
    this: PostgreSQL requires CHECK expressions to be immutable, and "today" is not."""
    tests = " OR ".join(f"NEW.{column} > today" for column in columns)
    # Column and constraint names are the models' own constants, never user input.
    return f"""
    SELECT (now() AT TIME ZONE s.time_zone)::date INTO today FROM ({site_sql}) s;
    IF today IS NOT NULL AND ({tests}) THEN
        RAISE EXCEPTION 'a date of % is in the future (today is % at the site)',
            TG_TABLE_NAME, today
            USING ERRCODE = 'check_violation', CONSTRAINT = '{constraint}';
    END IF;
    RETURN NEW;
    """  # noqa: S608


# --- Scores and scales ---------------------------------------------------------------------

VAS_MESSAGE = _("A VAS is a whole number from 0 to 100.")
ASA_MESSAGE = _("The ASA class is 1, 2, 3, 4, 5 or 6.")
KARNOFSKY_MESSAGE = _("The Karnofsky status is 0 to 100 in steps of 10.")
GENANT_MESSAGE = _("The Genant grade is 0, 1, 2 or 3.")
NOT_NEGATIVE_MESSAGE = _("This cannot be negative.")


def _check_range(value, low: int, high: int, message) -> None:
    if value is not None and not low <= value <= high:
        raise ValidationError(message, code="out_of_range")


def validate_vas(value) -> None:
    _check_range(value, 0, 100, VAS_MESSAGE)


def validate_asa_class(value) -> None:
    _check_range(value, 1, 6, ASA_MESSAGE)


def validate_not_negative(value) -> None:
    if value is not None and value < 0:
        raise ValidationError(NOT_NEGATIVE_MESSAGE, code="negative")


# --- Cement volume per region --------------------------------------------------------------


@dataclass(frozen=True)
class CementRange:
    usual_low: Decimal  # below this: a warning that needs a reason
    usual_high: Decimal  # above this: a warning that needs a reason
    maximum: Decimal  # above this: refused


CEMENT_VOLUME_ML = {
    "cervical": CementRange(Decimal("0.5"), Decimal("3.0"), Decimal("8.0")),
    "thoracic": CementRange(Decimal("1.0"), Decimal("6.0"), Decimal("15.0")),
    "lumbar": CementRange(Decimal("1.5"), Decimal("8.0"), Decimal("20.0")),
    "sacral": CementRange(Decimal("1.0"), Decimal("8.0"), Decimal("20.0")),
}
CEMENT_POSITIVE_MESSAGE = _("The cement volume must be more than 0 mL.")
CEMENT_MAX_MESSAGE = _(
    "%(volume)s mL cannot fit in a %(region)s vertebra: at most %(max)s mL is accepted there."
)


# --- Database expressions ------------------------------------------------------------------


class CprShaped(models.Func):
    """``registry_cpr_shaped(column)``: the SQL function above (created by a migration)."""

    function = "registry_cpr_shaped"
    output_field = models.BooleanField()


def no_cpr_check(model_name: str, *fields: str) -> models.CheckConstraint:
    """A CHECK refusing a CPR-shaped value in any of ``fields``."""
    condition = Q()
    for field in fields:
        condition &= ~Q(CprShaped(models.F(field)))
    return models.CheckConstraint(
        condition=condition,
        name=f"{model_name}_no_cpr_number",
        violation_error_message=CPR_MESSAGE,
    )


def cement_volume_positive(value) -> None:
    if value is not None and value <= 0:
        raise ValidationError(CEMENT_POSITIVE_MESSAGE, code="not_positive")
