from typing import Any

from rest_framework import status
from rest_framework.exceptions import APIException
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from common.errors import ApplicationError


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus the service layer's ApplicationError as a 400 (or
    its own status) with a machine-readable code."""
    if isinstance(exc, ApplicationError):
        refusal = Response({"detail": exc.message, "code": exc.code, **exc.extra}, status=exc.status_code)
        if exc.retry_after is not None:
            refusal["Retry-After"] = str(exc.retry_after)
        return refusal
    response = drf_exception_handler(exc, context)
    # DRF's own refusals (401, 403, 404, 405, 415, malformed JSON) get a
    # machine-readable code like the application's.
    if (
        response is not None
        and isinstance(exc, APIException)
        and isinstance(response.data, dict)
        and "detail" in response.data
        and "code" not in response.data
    ):
        codes = exc.get_codes()
        response.data["code"] = codes if isinstance(codes, str) else "invalid"
    return response


def error_response(message: str, code: str, status_code: int = status.HTTP_400_BAD_REQUEST) -> Response:
    return Response({"detail": message, "code": code}, status=status_code)
