"""Waits on services grow with the machine's load (issue 24 item 5): a suite that passes on a
quiet machine must not time out on a busy CI machine, and a wait that does time out says what
it waited for and with which limit."""

import time

import pytest

from tests.services import MAX_WAIT_SCALE, scaled, wait_for, wait_scale


def test_configured_scale_multiplies_the_limit_and_the_error_names_it(monkeypatch):
    monkeypatch.setenv("TEST_WAIT_SCALE", "3")
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        wait_for(lambda: False, timeout=0.2, interval=0.02, what="the sink to answer")
    waited = time.monotonic() - started
    assert 0.6 <= waited < 2.0
    assert "the sink to answer" in str(raised.value)
    assert "limit 0.2 s x load scale 3.0" in str(raised.value)
    assert scaled(10) == 30


def test_a_ready_service_ends_the_wait_at_once_whatever_the_scale(monkeypatch):
    monkeypatch.setenv("TEST_WAIT_SCALE", "10")
    calls = iter([False, False, "ready"])
    started = time.monotonic()
    assert wait_for(lambda: next(calls), timeout=60, interval=0.01) == "ready"
    assert time.monotonic() - started < 1


@pytest.mark.parametrize(
    ("load", "cores", "expected"),
    [(0.3, 2, 1.0), (2.0, 2, 1.0), (12.0, 2, 6.0), (100.0, 2, MAX_WAIT_SCALE)],
)
def test_without_a_setting_the_scale_follows_the_load_per_core(monkeypatch, load, cores, expected):
    monkeypatch.delenv("TEST_WAIT_SCALE", raising=False)
    monkeypatch.setattr("os.getloadavg", lambda: (load, load, load))
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    assert wait_scale() == expected
