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


def new_request_id() -> str:
    return uuid.uuid4().hex


class RequestLogMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _ACCEPTED_ID.fullmatch(incoming) else new_request_id()
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        try:
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
        finally:
            request_id_var.reset(token)
