"""Project-wide middleware: the audit context without tokens, NUL characters and impossible
years refused, and idle sessions renewed at most once a minute."""

from __future__ import annotations

import ipaddress
import re
import time
from functools import cache

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.contrib.sessions.backends import db as db_sessions
from django.db import router
from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.urls import reverse
from pghistory import middleware as pghistory_middleware

from registry.project.admin_site import otp_required
from registry.project.redaction import redact


@cache
def _trusted_networks(proxies: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies if proxy != "*")


def _is_trusted_proxy(address: str, proxies: tuple[str, ...]) -> bool:
    if "*" in proxies:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in _trusted_networks(proxies))


def client_address(remote_addr: str, forwarded_for: str, proxies: tuple[str, ...]) -> str:
    """The client's address: ``remote_addr``, unless that is a trusted proxy; then the
    right-most address of X-Forwarded-For that is not itself a trusted proxy. Entries to its
    left were written by the client (or by proxies we do not know) and are never believed."""
    address = remote_addr
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    while _is_trusted_proxy(address, proxies) and hops:
        candidate = hops.pop()
        try:
            address = str(ipaddress.ip_address(candidate))
        except ValueError:
            break  # garbage where the proxy's own entry should be: keep the proxy's address
    return address


class TrustedProxyMiddleware:
    """``REMOTE_ADDR`` becomes the client's address for a request that came through a trusted
    proxy (``TRUSTED_PROXIES``), so the login lockout, the questionnaire's bad-link limit, API
    throttling and the logs count each client, not the proxy. gunicorn's
    ``forwarded_allow_ips`` only affects the scheme; it never rewrites ``REMOTE_ADDR``."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        proxies = tuple(settings.TRUSTED_PROXIES)
        if proxies:
            meta = request.META
            meta["REMOTE_ADDR"] = client_address(
                meta.get("REMOTE_ADDR", ""), meta.get("HTTP_X_FORWARDED_FOR", ""), proxies
            )
        return self.get_response(request)


class SecondFactorGateMiddleware:
    """One gate for every staff page: a session whose user must pass a second factor
    (``otp_required``: a confirmed device, or a manager with ``OTP_REQUIRED_FOR_MANAGERS``)
    but did not is refused everywhere under ``/admin/`` and ``/api/`` — the admin's own views,
    the pages beside it (reports, data quality, import, staff pages, whatever their
    decorator) and the API's docs and schema — except the login and logout pages. Pages are
    sent to the login; the API answers 403 as its permission does. API tokens are their own
    credential: a request without a session is left to the API's authentication."""

    PREFIXES = ("/admin/", "/api/")
    OPEN = ("/admin/login/", "/admin/logout/")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path
        if path.startswith(self.PREFIXES) and not path.startswith(self.OPEN):
            user = getattr(request, "user", None)
            if (
                user is not None
                and user.is_authenticated
                and not user.is_verified()
                and otp_required(user)
            ):
                if path.startswith("/api/"):
                    return JsonResponse({"detail": SECOND_FACTOR_MESSAGE}, status=403)
                return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        return self.get_response(request)


SECOND_FACTOR_MESSAGE = "Log in again with your authenticator code to use this page."


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
    idle minutes, and a page costs no session UPDATE.

    The renewal is written *before* the view runs: a streamed export holds its connection
    in ``COPY … TO STDOUT`` from the view's return until the last byte, and a session saved
    after the view (SessionMiddleware's response phase) would wait on that same connection
    for ever — the worker deadlocked on itself until gunicorn killed it. (The cookie needs no
    renewal: it lasts until the browser closes; the expiry lives in the session row.)"""

    RENEW_EVERY = 60
    KEY = "_renewed_at"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        session = getattr(request, "session", None)
        if session is not None and not session.is_empty():
            now = int(time.time())
            renewed = session.get(self.KEY, 0)  # loads it: an expired key empties it
            if not session.is_empty() and now - renewed >= self.RENEW_EVERY:
                session[self.KEY] = now
                _write(session)
                session.modified = False  # written: nothing left for the response phase
        return self.get_response(request)


def _write(session) -> None:
    """Write a database session's row with one UPDATE (autocommit). ``SessionStore.save()``
    wraps its UPDATE in ``transaction.atomic()``: BEGIN and COMMIT around it (a SAVEPOINT and
    its RELEASE inside a request's transaction), three statements on the page that the
    renewal lands on for one row that needs no transaction. A row already gone (logged out in
    another tab, cleared as expired) stays gone: the next request finds no session, as it
    would have after ``save()`` refused. Other session engines save as they do."""
    if type(session) is not db_sessions.SessionStore:
        session.save()
        return
    using = router.db_for_write(session.model)
    session.model.objects.using(using).filter(session_key=session.session_key).update(
        session_data=session.encode(session._get_session()),
        expire_date=session.get_expiry_date(),
    )
