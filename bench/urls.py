import json

from django.http import HttpRequest, JsonResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare_view(request: HttpRequest) -> JsonResponse:
    """The baseline: a bare Django view that parses a JSON body and answers JSON."""
    body = json.loads(request.body or b"{}")
    return JsonResponse({"echo": len(body)})


urlpatterns = [
    path("bench/bare/", bare_view),
    path("", include("portal.urls")),
]
