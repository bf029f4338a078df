"""Questionnaire tokens (and patients' phone numbers) never reach a log line, an error report
or the audit trail.

A questionnaire link (``/q/<token>/``) is the patient's only credential: whoever reads it can
answer as the patient. Everything that writes down a URL — the pghistory context of the audit
trail, every logging handler, the error reports mailed to ADMINS — passes it through
``redact`` first, which keeps the shape of the path and drops the token.
"""

from __future__ import annotations

import copy
import logging
import re

from django.http import QueryDict
from django.views.debug import SafeExceptionReporterFilter

REDACTED = "[redacted]"
# The segment after /q/ (encoded or not), except the fixed "thanks" page.
_LINK = re.compile(r"(/q/)(?!thanks(?:/|$))([^/?#\s\"'<>]+)")
# A variable or setting whose value is a token or secret.
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|SESSION", flags=re.I)


# A phone number in E.164 (how the registry stores them, and how an SMS provider's errors and
# webhooks spell them): a patient's number is contact data, never for a log.
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}\b")
PHONE_REDACTED = "[phone]"


def redact(text: str) -> str:
    """``text`` with the token of every questionnaire link in it replaced by ``[redacted]``,
    and every E.164 phone number by ``[phone]``."""
    if "/q/" in text:
        text = _LINK.sub(rf"\1{REDACTED}", text)
    if "+" in text:
        text = _PHONE.sub(PHONE_REDACTED, text)
    return text


def redact_value(value):
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", "replace"))
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    return value


# The admin's search box (?q=): staff who see contact details search patients by name,
# phone, email and date of birth, so the term is a patient's identity.
SEARCH_PARAMETER = "q"
# Frame variables holding a search term (PatientQuerySet.search, ModelAdmin search).
_SEARCH_NAME = re.compile(r"search_term|search|term|text|word|words|upper|digits|q")
_SEARCH = re.compile(r"((?:^|[?&])q=)[^&#\s\"']*")


def redact_search(text: str) -> str:
    """``text`` (a query string or URL) with the value of the search parameter dropped."""
    if "q=" not in text:
        return text
    return _SEARCH.sub(rf"\1{REDACTED}", text)


def _redact_meta(value):
    value = redact_value(value)
    return redact_search(value) if isinstance(value, str) else value


def redacted_request(request):
    """A shallow copy of ``request`` whose path, query and headers carry no token and no
    search term, for error reports (the original is left alone)."""
    if request is None or not hasattr(request, "META"):
        return request
    meta = request.META
    seen = f"{request.path} {meta.get('QUERY_STRING', '')} {meta.get('HTTP_REFERER', '')}"
    if "/q/" not in seen and "q=" not in seen:
        return request
    clone = copy.copy(request)
    clone.path = redact(request.path)
    clone.path_info = redact(request.path_info)
    clone.META = {key: _redact_meta(value) for key, value in request.META.items()}
    clone.resolver_match = None  # its kwargs hold the token
    query = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        if key == SEARCH_PARAMETER:
            query.setlist(key, [REDACTED for _value in values])
        else:
            query.setlist(redact(key), [redact(value) for value in values])
    clone.GET = query
    return clone


class RedactTokensFilter(logging.Filter):
    """On every handler: the record's message, arguments, traceback text and request are
    redacted in place, so that no handler after this one sees the token either."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep Python's own error behaviour
            return True
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if getattr(record, "request", None) is not None:
            try:
                record.request = redacted_request(record.request)
            except Exception:  # an odd request object: report without it rather than leak
                record.request = None
        return True


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's error reports (mail to ADMINS, the debug page) without questionnaire tokens:
    request metadata and frame variables are redacted, and a variable named like a token or
    secret is hidden whole."""

    hidden_settings = _SECRET_NAME

    def get_safe_request_meta(self, request):
        return {
            key: redact_value(value)
            for key, value in super().get_safe_request_meta(request).items()
        }

    def get_post_parameters(self, request):
        return redact_value(super().get_post_parameters(request))

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if _SECRET_NAME.search(name) or _SEARCH_NAME.fullmatch(name):
                value = self.cleansed_substitute
            elif isinstance(value, str):
                value = redact(value)
            elif name == "request" or hasattr(value, "META"):
                value = redacted_request(value)
            elif isinstance(value, dict | list | tuple):
                value = redact_value(value)
            cleansed.append((name, value))
        return cleansed
