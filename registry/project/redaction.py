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
# The segment after /q/, except the fixed "thanks" page, however the client spelt the prefix:
# upper case (/Q/), percent-encoded (/%51/, /%71/, %2F for a slash) or with doubled slashes.
_LINK = re.compile(
    r"((?:/|%2f)(?:q|%51|%71)(?:/|%2f)+)"  # the prefix
    r"(?!thanks(?:/|%2f|[?#\s\"'<>]|$))"  # the thanks page has no token
    r"[^/?#\s\"'<>]+",  # the token, up to the next slash (an encoded one is redacted too)
    flags=re.I,
)
# A variable or dictionary key whose value is a patient's contact detail or identity.
_PERSONAL_NAME = re.compile(r"name|email|phone|mobile|address|birth|cpr", flags=re.I)
# A variable or setting whose value is a token or secret.
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASS|SIGNATURE|COOKIE|SESSION", flags=re.I)


# A phone number in E.164 (how the registry stores them, and how an SMS provider's errors and
# webhooks spell them): a patient's number is contact data, never for a log.
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}\b")
PHONE_REDACTED = "[phone]"


def redact(text: str) -> str:
    """``text`` with the token of every questionnaire link in it replaced by ``[redacted]``,
    and every E.164 phone number by ``[phone]``."""
    text = _LINK.sub(rf"\1{REDACTED}", text)
    if "+" in text:
        text = _PHONE.sub(PHONE_REDACTED, text)
    return text


def mentions_link(text: str) -> bool:
    return _LINK.search(text) is not None


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
    """A shallow copy of ``request`` whose path and headers carry no token and whose query
    string keeps its parameter names but no value (a search may be a patient's name), for log
    records and error reports (the original is left alone)."""
    if request is None or not hasattr(request, "META"):
        return request
    meta = request.META
    seen = f"{request.path} {meta.get('HTTP_REFERER', '')}"
    if not mentions_link(seen) and not meta.get("QUERY_STRING"):
        return request
    clone = copy.copy(request)
    clone.path = redact(request.path)
    clone.path_info = redact(request.path_info)
    clone.META = {key: _redact_meta(value) for key, value in request.META.items()}
    clone.resolver_match = None  # its kwargs hold the token
    query = QueryDict(mutable=True)
    for key, values in request.GET.lists():
        query.setlist(redact(key), [REDACTED for _value in values])
    clone.GET = query
    clone.META["QUERY_STRING"] = query.urlencode(safe="[]")
    return clone


# POST parameters an error report may show: the form's mechanics, never what was typed
# (names, email addresses, phone numbers, dates of birth, free text).
_SHOWN_POST = re.compile(
    r"^(?:_save|_continue|_addanother|_saveasnew|action|index|select_across|post"
    r"|.*-(?:TOTAL|INITIAL|MIN_NUM|MAX_NUM)_FORMS)$"
)


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
        """Every value typed into a form is hidden (contact details, clinical values, free
        text): an error report shows which fields were sent, not what they held."""
        parameters = super().get_post_parameters(request)
        if not parameters:
            return parameters
        cleansed = parameters.copy()
        for key in list(cleansed.keys()):
            if not _SHOWN_POST.match(key):
                cleansed[key] = self.cleansed_substitute
        return cleansed

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if (
                _SECRET_NAME.search(name)
                or _PERSONAL_NAME.search(name)
                or _SEARCH_NAME.fullmatch(name)
            ):
                value = self.cleansed_substitute
            elif isinstance(value, dict) and any(
                isinstance(key, str) and _PERSONAL_NAME.search(key) for key in value
            ):  # a form's cleaned_data, a row: keys kept, personal values hidden
                value = {
                    key: self.cleansed_substitute
                    if isinstance(key, str) and _PERSONAL_NAME.search(key)
                    else redact_value(item)
                    for key, item in value.items()
                }
            elif isinstance(value, str):
                value = redact(value)
            elif name == "request" or hasattr(value, "META"):
                value = redacted_request(value)
            elif isinstance(value, dict | list | tuple):
                value = redact_value(value)
            cleansed.append((name, value))
        return cleansed
