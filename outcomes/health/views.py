"""``/healthz`` (the process answers) and ``/readyz`` (it can do its work), for load balancers
and monitors. Neither needs a login; neither shows personal data."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from outcomes.health.checks import readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: answers without touching the database, so a database outage does not make
    an orchestrator restart healthy web processes."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database reachable, migrations applied, broker reachable and the last
    chasing sweep recent; 503 with the failing checks named otherwise."""
    checks = readiness()
    ready = all(check.ok for check in checks.values())
    body = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: {"ok": check.ok, **check.detail} for name, check in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
