"""Project-wide middleware: the audit context without tokens, NUL characters and impossible
years refused, and idle sessions renewed at most once a minute."""

from __future__ import annotations

import re
import time

from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from pghistory import middleware as pghistory_middleware

from registry.project.redaction import redact


class HistoryMiddleware(pghistory_middleware.HistoryMiddleware):
    """pghistory's context (acting user and URL on every audit row), with questionnaire tokens
    redacted from the URL: whoever reads the audit trail must not be able to answer as the
    patient."""

    def get_context(self, request) -> dict:
        context = super().get_context(request)
        context["url"] = redact(context["url"])
        return context


NUL_MESSAGE = "The request contains a NUL character, which no field accepts."
YEAR_MESSAGE = "A year must be a whole number from 1 to 9999."
MULTIPART_MESSAGE = "The request body is not a well-formed multipart form."
# A query parameter that filters by a calendar year (the admin's ``date__year=2025``,
# ``index_date__year__gte=2020``, ``__iso_year``): Django builds the year's first and last day
# in Python, which fails outside 1…9999 as a server error.
YEAR_LOOKUP = re.compile(r"__(iso_)?year(__[a-z]+)?$")


def _has_nul(request) -> bool:
    """A NUL anywhere in the path, the query string or a text body (form fields of a
    multipart body; uploaded files are the import's to judge, and an Excel file is binary)."""
    if "\x00" in request.path:
        return True
    query = request.META.get("QUERY_STRING", "")
    if "%00" in query or "\x00" in query:
        return True
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return False
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith("multipart/form-data"):
        return any("\x00" in key or "\x00" in value for key, value in _form_items(request))
    if content_type.startswith("application/x-www-form-urlencoded"):
        return b"\x00" in request.body or b"%00" in request.body
    if content_type.startswith(("application/json", "text/")):
        return b"\x00" in request.body or b"\\u0000" in request.body
    return False


def _form_items(request):
    for key, values in request.POST.lists():
        for value in values:
            yield key, value


def _bad_year(request) -> bool:
    for key, value in request.GET.items():
        if YEAR_LOOKUP.search(key) and not (
            len(value) <= 4 and value.isascii() and value.isdigit() and int(value) >= 1
        ):
            return True
    return False


class RefuseNulMiddleware:
    """Bad input no field can hold answers 400 before any view or query sees it, on every
    URL (JSON under /api/, plain text elsewhere):

    - a NUL character in the path, the query string or the body: PostgreSQL's text type cannot
      hold NUL, so a look-up with one (an id in the path, a FHIR ``subject``, the admin
      autocomplete's ``term``) would otherwise fail as a server error;
    - a year filter outside 1…9999 (``?index_date__year=99999``), which Django cannot turn
      into dates.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        message = None
        try:
            nul = _has_nul(request)
        except MultiPartParserError:
            nul, message = False, MULTIPART_MESSAGE
        if nul:
            message = NUL_MESSAGE
        elif message is None and _bad_year(request):
            message = YEAR_MESSAGE
        if message is None:
            return self.get_response(request)
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message}, status=400)
        return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")


class RenewSessionMiddleware:
    """Staff sessions end after ``SESSION_COOKIE_AGE`` without a request: each request renews
    the session, but writes it at most once a minute (``RENEW_EVERY`` seconds), not on every
    request as ``SESSION_SAVE_EVERY_REQUEST`` would. A session thus ends between 29 and 30
    idle minutes, and a page costs no session UPDATE."""

    RENEW_EVERY = 60
    KEY = "_renewed_at"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty() and not session.modified:
            now = int(time.time())
            if now - session.get(self.KEY, 0) >= self.RENEW_EVERY:
                session[self.KEY] = now  # modified: SessionMiddleware saves and renews it
        return response
