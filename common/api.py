"""What every REST API shares: the exception handler that gives each refusal
a machine-readable code, and the OpenAPI description of those refusals, so
that all apps document a 401 or a 404 in the same words and shape."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema_serializer
from rest_framework import serializers, status
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


# --- OpenAPI: the refusals ------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="Error")
class ErrorSerializer(serializers.Serializer):
    """Every refusal: a message for people and a code for programs. Field
    errors of the input come as {"<field>": ["message", ...]} instead."""

    detail = serializers.CharField()
    code = serializers.CharField()


@extend_schema_serializer(component_name="FieldError")
class FieldErrorSerializer(ErrorSerializer):
    """A refusal about one field of the input, named in `field`."""

    field = serializers.CharField()


def refusal(description: str, serializer: type[ErrorSerializer] = ErrorSerializer) -> OpenApiResponse:
    """An error answer for `extend_schema(responses=...)`: the Error shape
    and what the status means for this operation."""
    return OpenApiResponse(serializer, description=description)


BAD_REQUEST = refusal(
    'Invalid input: {"detail", "code"} with "field" when one field is at fault, '
    'or field errors {"<field>": ["message"]}.'
)
# Operations whose only 400 is their input serializer's.
FIELD_ERRORS = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Invalid input: field errors, {"<field>": ["message"]}.'
)
NOT_AUTHENTICATED = refusal("Not signed in: no valid token or session.")
FORBIDDEN = refusal("A rule refuses it; `code` names the rule.")
NOT_FOUND = refusal("No such object, or one the user may not see: both answer alike (code not_found).")
RATE_LIMITED = refusal("Too many requests; the Retry-After header says in how many seconds to try again.")
