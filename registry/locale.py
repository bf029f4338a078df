"""Staff pages in the user's language and the site's time zone (issue 19).

- ``SiteTimeZoneMiddleware`` shows every time in the time zone of the user's site (for a user
  of several sites, the first by code); the formats name the zone (``CET``/``CEST``).
- ``LocalizedEntryMixin`` for admin classes: every date field takes 28-11-2026, 28.11.2026 and
  2026-11-28 whatever the language and says so beside the field; every decimal field takes a
  decimal comma or point ("4,5" and "4.5" are 4.5, never 45) in a text box, and refuses a
  thousands separator rather than guess.
"""

from __future__ import annotations

import re
import zoneinfo

from django import forms
from django.contrib.admin.widgets import AdminDateWidget
from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from registry.validation import DATE_INPUT_FORMATS  # the formats have one home

DATE_HINT = _("e.g. 28-11-2026, 28.11.2026 or 2026-11-28")
_DECIMAL = re.compile(r"[+-]?\d+([.,]\d+)?")


class SiteTimeZoneMiddleware:
    """Activate the time zone of the logged-in user's site for the request.

    The zone is looked up once, at login, and kept in the session, so a page costs no query
    for it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = user_time_zone(request)
        if zone:
            timezone.activate(zoneinfo.ZoneInfo(zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()


SESSION_KEY = "registry_time_zone"


def user_time_zone(request) -> str:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    cached = request.session.get(SESSION_KEY)
    if cached and cached[0] == user.pk:
        return cached[1]
    return remember_time_zone(request, user)


def remember_time_zone(request, user, **_kwargs) -> str:
    """Store the user's site time zone in the session (connected to ``user_logged_in``)."""
    from registry.models import Site

    zone = (
        Site.objects.for_user(user).order_by("code").values_list("time_zone", flat=True).first()
    ) or ""
    request.session[SESSION_KEY] = (user.pk, zone)
    return zone


def _remember_at_login(sender, request, user, **kwargs) -> None:
    if request is not None and hasattr(request, "session"):
        remember_time_zone(request, user)


user_logged_in.connect(_remember_at_login, dispatch_uid="registry_site_time_zone")


class DateField(forms.DateField):
    """A date in any of the accepted forms, with the forms named in the hint and the error."""

    default_error_messages = {
        "invalid": _(
            "Enter the date as a day-month-year date, e.g. 28-11-2026, 28.11.2026 or 2026-11-28."
        ),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", DATE_INPUT_FORMATS)
        super().__init__(**kwargs)


class DecimalField(forms.DecimalField):
    """A decimal with a comma or a point; rendered in a text box (a browser's number box may
    drop the comma on its own and turn 4,5 into 45)."""

    default_error_messages = {
        "invalid": _("Enter a number such as 4,5 or 4.5 (no thousands separator)."),
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("localize", True)
        super().__init__(**kwargs)
        self.widget = forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})
        self.widget.is_localized = True

    def to_python(self, value):
        if isinstance(value, str):
            text = value.strip()
            if text and not _DECIMAL.fullmatch(text):
                raise ValidationError(self.error_messages["invalid"], code="invalid")
            value = text.replace(",", ".")
            if value in self.empty_values:
                return None
            return super().to_python(_as_locale_input(value))
        return super().to_python(value)

    def widget_attrs(self, widget):
        # No min/max/step: they belong to number boxes; the validators check the range.
        return {}


def _as_locale_input(value: str) -> str:
    """``value`` (with a point) as the active language writes it, for Django's own parsing."""
    from django.utils.formats import get_format

    return value.replace(".", get_format("DECIMAL_SEPARATOR"))


class LocalizedEntryMixin:
    """For ModelAdmin and inline classes: the date and decimal fields above, with hints."""

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if isinstance(db_field, models.DecimalField):
            return db_field.formfield(form_class=DecimalField, **kwargs)
        if isinstance(db_field, models.DateField) and not isinstance(
            db_field, models.DateTimeField
        ):
            kwargs.setdefault("widget", AdminDateWidget)
            field = db_field.formfield(form_class=DateField, **kwargs)
            field.help_text = (
                format_lazy("{} ({})", field.help_text, DATE_HINT) if field.help_text else DATE_HINT
            )
            return field
        return super().formfield_for_dbfield(db_field, request, **kwargs)
