"""How the API answers errors: JSON bodies for every 4xx, throttling of requests without
valid credentials, and the schema documenting those answers."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler

from api.throttling import AnonThrottle


def exception_handler(exc, context):
    """DRF's handler, after counting a request refused for its credentials (none, a wrong,
    revoked or expired token) against its address: past ``API_THROTTLE_ANON_RATE`` the answer
    is 429, so tokens cannot be guessed at speed."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        throttle = AnonThrottle()
        request = context.get("request")
        if request is not None and not throttle.allow_request(request, context.get("view")):
            exc = exceptions.Throttled(throttle.wait())
    return drf_exception_handler(exc, context)


# --- the schema ---------------------------------------------------------------------------------

DETAIL = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
# 400: {"detail": "..."} or the messages per parameter.
MESSAGES = {"type": "array", "items": {"type": "string"}}
BAD_REQUEST = {
    "type": "object",
    "additionalProperties": {
        "oneOf": [
            {"type": "string"},
            MESSAGES,
            # a list parameter: messages per item ({"site": {"0": ["…"]}})
            {"type": "object", "additionalProperties": MESSAGES},
        ]
    },
}
ERRORS = {
    "400": ("A parameter is malformed, empty or unknown in value; the body names it.", BAD_REQUEST),
    "401": ("No token, or a wrong, revoked or expired one.", DETAIL),
    "403": ("The token's user may not read this.", DETAIL),
    "404": ("No such object in the caller's sites, or an invalid cursor.", DETAIL),
    "405": ("Only GET (and HEAD) are answered.", DETAIL),
    "406": ("The Accept header asks for a format this endpoint does not give.", DETAIL),
    "429": ("Too many requests; retry after the seconds in Retry-After.", DETAIL),
}
CSV_ERROR = {"type": "string"}


PAGING = {"cursor", "page_size"}
# RefuseNulMiddleware answers 400 to a NUL character anywhere in the path or the query.
NO_NUL = "^[^\\u0000]*$"


def _refuse_nul(schema: dict) -> None:
    if schema.get("type") == "string" and "enum" not in schema:
        schema.setdefault("pattern", NO_NUL)


def _refuse_empty(parameter: dict) -> None:
    """A filter given empty, or any parameter with a NUL character, is refused (400): say so
    in its schema."""
    schema = parameter.get("schema", {})
    if parameter.get("in") in ("query", "path"):
        _refuse_nul(schema)
        _refuse_nul(schema.get("items", {}))
    if parameter.get("in") != "query" or parameter["name"] in PAGING:
        return
    if schema.get("type") == "array":
        schema["minItems"] = 1
        schema.setdefault("items", {})["minLength"] = 1
    elif schema.get("type") == "string" and "enum" not in schema:
        schema["minLength"] = 1


def document_error_responses(result, generator, request, public):
    """drf-spectacular post-processing hook: every operation documents the error answers the
    API really gives, in the media types it gives them in (CSV endpoints answer errors as a
    small CSV unless the client accepts JSON)."""
    for path_item in result.get("paths", {}).values():
        for method, operation in path_item.items():
            if method not in {"get", "head"}:
                continue
            for parameter in operation.get("parameters", []):
                _refuse_empty(parameter)
            responses = operation.setdefault("responses", {})
            csv = any("text/csv" in r.get("content", {}) for r in responses.values())
            for status, (description, schema) in ERRORS.items():
                content = {"application/json": {"schema": schema}}
                if csv:
                    content["text/csv"] = {"schema": CSV_ERROR}
                responses.setdefault(status, {"description": description, "content": content})
    return result
