"""Questionnaire tokens are redacted from URLs wherever the application writes one."""

from __future__ import annotations

import logging

import pytest

from registry.project.celery import _redact_tokens_in_worker_logs
from registry.project.redaction import RedactTokensFilter, redact

TOKEN = "e0V2d6Y6uFBD0h5SMu5MQst_1kJeqxyGodXUMpAfCvw"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"/q/{TOKEN}/", "/q/[redacted]/"),
        (f"GET /q/{TOKEN}/pain/?lang=da HTTP/1.1", "GET /q/[redacted]/pain/?lang=da HTTP/1.1"),
        (
            f"https://registry.example.org/q/{TOKEN}/check/",
            "https://registry.example.org/q/[redacted]/check/",
        ),
        (f"/q/{TOKEN[:20]}%2F{TOKEN[20:]}/", "/q/[redacted]/"),
        ("/q/thanks/", "/q/thanks/"),
        ("/admin/outcomes/followup/3/", "/admin/outcomes/followup/3/"),
        (f"two: /q/{TOKEN}/ and /q/{TOKEN[::-1]}/", "two: /q/[redacted]/ and /q/[redacted]/"),
    ],
)
def test_redact_drops_the_token_and_keeps_the_shape(text, redacted):
    assert redact(text) == redacted


def test_celery_worker_log_handlers_redact_tokens():
    logger = logging.getLogger("celery.test-redaction")
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    try:
        _redact_tokens_in_worker_logs(logger=logger)
        _redact_tokens_in_worker_logs(logger=logger)  # idempotent
        assert [type(f) for f in handler.filters] == [RedactTokensFilter]
        record = logger.makeRecord(
            logger.name, logging.INFO, __file__, 1, "sent %s", ("/q/" + "a" * 43 + "/",), None
        )
        assert handler.filter(record)
        assert record.getMessage() == "sent /q/[redacted]/"
    finally:
        logger.removeHandler(handler)
