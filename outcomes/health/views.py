"""``/healthz`` (the process answers), ``/readyz`` (it can serve pages: for the load balancer)
and ``/healthz/chasing`` (the background chasing: for alerting). None needs a login; none
shows personal data."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from outcomes.health.checks import Check, chasing_health, readiness


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: answers without touching the database, so a database outage does not make
    an orchestrator restart healthy web processes."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database reachable and migrations applied; 503 with the failing checks named
    otherwise. The broker and the sweep are not asked: patients' links work without them."""
    return _answer(readiness(), failing="unavailable")


@never_cache
@require_GET
def healthz_chasing(request: HttpRequest) -> JsonResponse:
    """The chasing: broker reachable (queue depths), the last sweep recent, no message due for
    longer than CHASE_BACKLOG_ALERT_SECONDS; 503 ("alerting") when any fails."""
    return _answer(chasing_health(), failing="alerting")


def _answer(checks: dict[str, Check], *, failing: str) -> JsonResponse:
    ok = all(check.ok for check in checks.values())
    body = {
        "status": "ok" if ok else failing,
        "checks": {name: {"ok": check.ok, **check.detail} for name, check in checks.items()},
    }
    return JsonResponse(body, status=200 if ok else 503)
