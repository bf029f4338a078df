"""Request ids and the one log line per request (``LOG_FORMAT=json`` makes them JSON).

Every request gets an id (the caller's ``X-Request-ID`` when it is a plain token, else a new
one), returned in the ``X-Request-ID`` header and put on every log line written while the
request runs, and on the lines of the Celery tasks it queues (registry.project.celery). The
request line names the route (``questionnaire_step``), never the path: paths carry the
patients' link tokens.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.core.signals import request_finished, request_started
from django.http import HttpRequest, HttpResponse

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "X-Request-ID"
_ACCEPTED_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")

logger = logging.getLogger("registry.requests")


class RequestIdFilter(logging.Filter):
    """Puts the current request id (or None) on every record, as ``request_id``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class RequestAsRouteFilter(logging.Filter):
    """Names the request of a record by method and route (``GET questionnaire_step``), never
    by its path: Django's own request warnings carry the request object, whose path holds a
    patient's link token. (The message itself is redacted by ``RedactTokensFilter``.)"""

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if request is not None and not isinstance(request, str):
            match = getattr(request, "resolver_match", None)
            route = match.view_name if match else "-"
            record.request = f"{getattr(request, 'method', '-')} {route}"
        return True


def new_request_id() -> str:
    return uuid.uuid4().hex


def _request_started(sender, environ=None, **kwargs) -> None:
    incoming = (environ or {}).get("HTTP_X_REQUEST_ID", "")
    request_id_var.set(incoming if _ACCEPTED_ID.fullmatch(incoming) else new_request_id())


def _request_finished(sender, **kwargs) -> None:
    request_id_var.set(None)


class RequestLogMiddleware:
    """Logs the request line and returns the id in ``X-Request-ID``.

    The id itself is set on Django's ``request_started`` signal and cleared on
    ``request_finished`` (after a streamed response's last byte), so it is on every line of the
    request, also Django's own "Not Found" warning written after the middleware returns.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        request_started.connect(_request_started, dispatch_uid="registry.request_id.start")
        request_finished.connect(_request_finished, dispatch_uid="registry.request_id.finish")

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = request_id_var.get()
        if request_id is None:  # a handler that sends no request_started
            request_id = new_request_id()
            request_id_var.set(request_id)
        started = time.perf_counter()
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        match = request.resolver_match
        logger.info(
            "%s %s %s",
            request.method,
            match.view_name if match else "-",
            response.status_code,
            extra={
                "method": request.method,
                "route": match.view_name if match else None,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return response
