"""Request ids, the request log line, JSON output and the redaction of link tokens."""

import datetime
import json
import logging
import logging.config
import re
import secrets

import pytest
from django.conf import settings

from registry.project.celery import _pass_request_id, app
from registry.project.gunicorn_logging import RedactingLogger
from registry.project.logs import request_id_var

TOKEN = secrets.token_urlsafe(32)  # the shape of a questionnaire link's token


def json_formatter() -> logging.Formatter:
    return logging.config.DictConfigurator({}).configure_formatter(
        dict(settings.LOGGING["formatters"]["json"])
    )


def handler_filters() -> list[logging.Filter]:
    configurator = logging.config.DictConfigurator({})
    return [
        configurator.configure_filter(dict(settings.LOGGING["filters"][name]))
        for name in settings.LOGGING["handlers"]["console"]["filters"]
    ]


def as_json(record: logging.LogRecord) -> dict:
    for log_filter in handler_filters():
        log_filter.filter(record)
    return json.loads(json_formatter().format(record))


def request_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "registry.requests"]


def test_each_request_logs_one_json_line_with_route_status_duration_and_id(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get("/healthz", HTTP_X_REQUEST_ID="lb-7f3a9c21")
    assert response["X-Request-ID"] == "lb-7f3a9c21"
    (record,) = request_lines(caplog)
    line = as_json(record)
    assert line["logger"] == "registry.requests"
    assert line["level"] == "INFO"
    assert (line["method"], line["route"], line["status"]) == ("GET", "healthz", 200)
    assert line["request_id"] == "lb-7f3a9c21"
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["time"]


@pytest.mark.django_db
def test_link_tokens_stay_out_of_every_log_line(client, caplog):
    caplog.set_level(logging.INFO)
    response = client.get(f"/q/{TOKEN}/", HTTP_X_REQUEST_ID="has spaces, refused")
    assert response.status_code == 404
    request_id = response["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)  # a caller's malformed id is replaced
    lines = [as_json(record) for record in caplog.records]
    assert lines, "the request wrote log lines"
    assert all(TOKEN not in json.dumps(line) for line in lines)
    (request_line,) = [line for line in lines if line["logger"] == "registry.requests"]
    assert (request_line["route"], request_line["status"]) == ("questionnaire", 404)
    # Django's own "Not Found" warning belongs to the same request, with the path redacted.
    (not_found,) = [line for line in lines if line["logger"] == "django.request"]
    assert not_found["message"] == "Not Found: /q/[redacted]/"
    assert not_found["request_id"] == request_id
    assert not_found["request"] == "GET questionnaire"


def test_a_task_queued_during_a_request_carries_its_id():
    headers: dict = {}
    token = request_id_var.set("req-0123456789")
    try:
        _pass_request_id(headers=headers)
    finally:
        request_id_var.reset(token)
    assert headers == {"request_id": "req-0123456789"}
    untouched: dict = {}
    _pass_request_id(headers=untouched)  # outside a request
    assert untouched == {}


@app.task(name="tests.log_a_line")
def log_a_line() -> str | None:
    logging.getLogger("tests.task").warning("inside the task")
    return request_id_var.get()


def test_a_tasks_log_lines_carry_the_request_id_it_was_queued_with(caplog):
    caplog.set_level(logging.INFO)
    result = log_a_line.apply(headers={"request_id": "req-from-header"})
    assert result.get() == "req-from-header"
    (record,) = [r for r in caplog.records if r.name == "tests.task"]
    assert as_json(record)["request_id"] == "req-from-header"
    assert request_id_var.get() is None  # not left behind for the next task

    # Run eagerly inside a request (CELERY_TASK_ALWAYS_EAGER), it keeps the request's id.
    token = request_id_var.set("req-running")
    try:
        assert log_a_line.apply().get() == "req-running"
    finally:
        request_id_var.reset(token)


def test_the_access_log_has_no_query_string_and_no_link_token():
    class Response:
        status = "200 OK"
        sent = 512
        headers = [("X-Request-ID", "abc123456")]

    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/q/{TOKEN}/pain/?lang=da",
        "PATH_INFO": f"/q/{TOKEN}/pain/",
        "QUERY_STRING": "lang=da",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.7",
        "HTTP_REFERER": f"https://registry.example/q/{TOKEN}/?x=1",
    }
    logger = RedactingLogger.__new__(RedactingLogger)
    atoms = logger.atoms(Response(), [], environ, datetime.timedelta(milliseconds=12))
    line = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms %({x-request-id}o)s' % atoms  # noqa: UP031
    assert line == '10.0.0.7 "GET /q/[redacted]/pain/" 200 512 12ms abc123456'
    assert TOKEN not in json.dumps(atoms, default=str)
    assert "lang=da" not in json.dumps(atoms, default=str)


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", ["/Q/", "/%51/", "/%71/", "/q//", "/%51%2F"])
def test_a_mistyped_link_prefix_leaves_no_token_in_any_log_line(client, caplog, prefix):
    """The attack: upper case or percent-encoded /q/ reached Django's "Not Found" warning
    (and gunicorn's access line) in clear, the redaction matching lower-case /q/ only."""
    caplog.set_level(logging.INFO)
    response = client.get(f"{prefix}{TOKEN}/")
    assert response.status_code == 404
    lines = [json.dumps(as_json(record)) for record in caplog.records]
    assert any("Not Found" in line for line in lines)
    assert all(TOKEN not in line for line in lines), lines
    environ = {"REQUEST_METHOD": "GET", "RAW_URI": f"{prefix}{TOKEN}/", "QUERY_STRING": "",
               "PATH_INFO": f"{prefix}{TOKEN}/", "SERVER_PROTOCOL": "HTTP/1.1"}  # fmt: skip
    logger = RedactingLogger.__new__(RedactingLogger)
    atoms = logger.atoms(_Response(), [], environ, datetime.timedelta(milliseconds=3))
    assert TOKEN not in json.dumps(atoms, default=str)


class _Response:
    status = "404 Not Found"
    sent = 10
    headers = []


def test_gunicorns_error_log_goes_through_the_redaction(tmp_path):
    """gunicorn quotes a malformed request line in its own error log (``gunicorn.error``),
    which bypassed the application's handlers and their redaction."""
    from gunicorn.config import Config

    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    config.set("loglevel", "debug")
    config.set("logger_class", "registry.project.gunicorn_logging.RedactingLogger")
    logger = config.logger_class(config)
    for line in (f"GET /q/{TOKEN}/\x01 HTTP/1.1", f"GET /Q/{TOKEN}/ HTTP/1.1"):
        logger.debug("Invalid request from ip=%s: Invalid HTTP request line: %r", "10.0.0.7", line)
        logger.error("Invalid HTTP request line: %r", line)
    for handler in logger.error_log.handlers:
        handler.flush()
    written = (tmp_path / "error.log").read_text()
    assert "Invalid HTTP request line" in written
    assert "/q/[redacted]" in written and "/Q/[redacted]" in written
    assert TOKEN not in written
