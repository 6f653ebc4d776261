"""Views of the portal itself: the home page and the health check."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect

from portal.health import health_checks


@login_required
def home(request: HttpRequest) -> HttpResponse:
    # The services showcase (the system folder "Education") is the first
    # thing a signed-in person sees (SPEC §8).
    return redirect("miniapps:showcase")


def healthz(request: HttpRequest) -> JsonResponse:
    checks = health_checks()
    is_healthy = all(state == "ok" for state in checks.values())
    return JsonResponse(
        {"status": "ok" if is_healthy else "unavailable", "checks": checks},
        status=200 if is_healthy else 503,
    )
