"""The per-token limit under parallel requests: exactly the rate passes. The attack is a
client that sends its requests at once instead of one by one — DRF's cache throttle reads the
token's history, appends and writes it back, so parallel requests overwrote each other's
count and about a fifth more than the rate got through. ``api.throttling`` counts with one
atomic increment; both caches the registry runs on are tried (Redis in production, the local
cache per process)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from django.core.cache import cache

from api.throttling import TokenRateThrottle
from tests.services import redis_url_for_test, scaled

LIMIT = 40
THREADS = 16
REQUESTS_PER_THREAD = 10  # 160 requests at once against a limit of 40


@pytest.fixture(params=["redis", "locmem"])
def shared_cache(request, settings):
    rest = dict(settings.REST_FRAMEWORK)
    rest["DEFAULT_THROTTLE_RATES"] = {**rest["DEFAULT_THROTTLE_RATES"], "token": f"{LIMIT}/hour"}
    settings.REST_FRAMEWORK = rest
    if request.param == "locmem":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
        cache.clear()
        yield request.param
        cache.clear()
        return
    with redis_url_for_test(5) as url:
        settings.CACHES = {
            "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
        }
        yield request.param


def parallel_requests(user_pk: int) -> list[bool]:
    request = SimpleNamespace(auth=None, user=SimpleNamespace(is_authenticated=True, pk=user_pk))
    start = threading.Barrier(THREADS, timeout=scaled(30))

    def burst() -> list[bool]:
        start.wait()  # every thread sends at the same moment
        return [
            TokenRateThrottle().allow_request(request, None) for _ in range(REQUESTS_PER_THREAD)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        bursts = list(pool.map(lambda _: burst(), range(THREADS)))
    return [allowed for results in bursts for allowed in results]


def test_exactly_the_rate_passes_when_requests_come_at_once(shared_cache):
    answers = parallel_requests(user_pk=7)
    assert len(answers) == THREADS * REQUESTS_PER_THREAD
    assert answers.count(True) == LIMIT
    # the next one is refused too, and says how long to wait (within the hour's window)
    throttle = TokenRateThrottle()
    request = SimpleNamespace(auth=None, user=SimpleNamespace(is_authenticated=True, pk=7))
    assert throttle.allow_request(request, None) is False
    assert 3500 < throttle.wait() <= 3600
    # another user's allowance is untouched
    assert parallel_requests(user_pk=8).count(True) == LIMIT
