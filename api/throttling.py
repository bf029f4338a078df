"""API rate limits (DRF throttling): per token, and per address for requests that carry no
valid credentials (``api.errors`` counts those, since they never reach a view's throttles).

Counts live in the default cache: per process unless ``CACHE_URL`` names a shared Redis.
Each count is one atomic increment (Redis ``INCR``; the local cache's under its lock) of a
counter per window, never DRF's read-modify-write of a request history: parallel
requests of one token each see their own number, so exactly the rate passes (DRF's lost about
a fifth of them, letting more through).
"""

from __future__ import annotations

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRate(SimpleRateThrottle):
    """A counter per window: at most ``num_requests`` in the ``duration`` seconds from the
    first request of the window, counted by the cache's atomic ``incr`` (which keeps the
    counter's expiry, in Redis as in the local cache)."""

    def get_rate(self) -> str | None:
        # Read now rather than at import, so settings changed in tests take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        now = self.timer()
        for _attempt in range(2):
            # add() starts the window once (the first writer wins); incr() is atomic. Should
            # the counter expire between the two, the next window starts.
            self.cache.add(self.key, 0, timeout=self.duration)
            self.cache.add(f"{self.key}:start", now, timeout=self.duration)
            try:
                count = self.cache.incr(self.key)
            except ValueError:
                continue
            return count <= self.num_requests
        return True  # a cache that keeps nothing limits nothing (as DRF's)

    def wait(self) -> float:
        start = self.cache.get(f"{self.key}:start")
        remaining = self.duration if start is None else start + self.duration - self.timer()
        return max(remaining, 1)


class TokenRateThrottle(_SettingsRate):
    """Requests per API token (a staff session counts per user)."""

    scope = "token"

    def get_cache_key(self, request, view) -> str | None:
        auth = request.auth
        if auth is not None and hasattr(auth, "digest"):  # knox: only the digest, never the token
            ident = "token:" + hashlib.sha256(auth.digest.encode()).hexdigest()[:32]
        elif request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            return None
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonThrottle(_SettingsRate):
    """Requests without valid credentials, per client address (``REMOTE_ADDR``)."""

    scope = "anon"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
