"""API rate limits (DRF throttling): per token, and per address for requests that carry no
valid credentials (``api.errors`` counts those, since they never reach a view's throttles).

Counts live in the default cache: per process unless ``CACHE_URL`` names a shared Redis.
"""

from __future__ import annotations

import hashlib

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRate(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # Read now rather than at import, so settings changed in tests take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


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
