"""Django's error pages: JSON under /api/ (like every other API answer), Django's own
pages elsewhere. Used for what happens before a view runs (too many query parameters, a
URL no route matches) and for server errors."""

from __future__ import annotations

from django.http import JsonResponse
from django.views import defaults


def _api(request) -> bool:
    return request.path.startswith("/api/")


def bad_request(request, exception=None):
    if _api(request):
        return JsonResponse(
            {"detail": "Bad request: too many parameters, or a malformed one."}, status=400
        )
    return defaults.bad_request(request, exception)


def page_not_found(request, exception=None):
    if _api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request):
    if _api(request):
        return JsonResponse({"detail": "Server error."}, status=500)
    return defaults.server_error(request)
