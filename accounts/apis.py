"""REST API of sign-in, sign-out and the current user (SPEC §2.1): the
profile and its photo, the personal data export and deletion on request."""

from collections.abc import Callable, Iterable
from typing import Any

from django.contrib.auth import logout
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser, MultiPartParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.extensions import user_summary
from accounts.models import ApiToken, User
from accounts.network import client_ip
from accounts.selectors import personal_data_export
from accounts.serializers import MeSerializer
from accounts.services import (
    PROFILE_FIELDS,
    account_delete,
    api_token_create,
    api_token_revoke,
    login_code_clean,
    login_code_request,
    login_code_verify,
    phone_normalise,
    profile_field_clean,
    profile_photo_clear,
    profile_photo_set,
    profile_update,
    session_logout_everywhere,
)
from common.api import BAD_REQUEST, NOT_AUTHENTICATED, RATE_LIMITED, refusal
from common.errors import ApplicationError


def _field_value(clean: Callable[..., str], **kwargs: Any) -> str:
    """A service's field check as a serializer field error."""
    try:
        return clean(**kwargs)
    except ApplicationError as error:
        raise serializers.ValidationError(error.message, code=error.code) from None


def me_representation(user: User, request: Request) -> dict[str, Any]:
    return MeSerializer(user, context={"memberships_summary": user_summary(user=user), "request": request}).data


def user_of(request: Request) -> User:
    """The signed-in user: every view that calls this requires IsAuthenticated."""
    return request.user  # type: ignore[return-value]


class LoginCodeRequestApi(APIView):
    """Send a one-time sign-in code by SMS."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="LoginCode")
    class InputSerializer(serializers.Serializer):
        phone = serializers.CharField(max_length=64, help_text="+79001234567; 8 (900) 123-45-67 is accepted too.")

        def validate_phone(self, value: str) -> str:
            return _field_value(phone_normalise, raw=value)

    @extend_schema_serializer(component_name="LoginCodeSent")
    class OutputSerializer(serializers.Serializer):
        resend_after = serializers.IntegerField(help_text="Seconds before another code may be requested.")

    @extend_schema(
        operation_id="auth_code_request",
        tags=["auth"],
        auth=[],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: BAD_REQUEST,
            429: RATE_LIMITED,
            503: refusal("The SMS could not be sent (code sms_unavailable)."),
        },
        description="Codes: resend_too_soon and daily_limit (per number), rate_limited (per IP address).",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        resend_after = login_code_request(phone=serializer.validated_data["phone"], ip=client_ip(request))
        return Response(self.OutputSerializer({"resend_after": resend_after}).data)


class LoginTokenApi(APIView):
    """Exchange the code from the SMS for an API token."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema_serializer(component_name="LoginToken")
    class InputSerializer(serializers.Serializer):
        phone = serializers.CharField(max_length=64)
        code = serializers.CharField(max_length=32, help_text="The 6 digits from the SMS.")

        def validate_phone(self, value: str) -> str:
            return _field_value(phone_normalise, raw=value)

        def validate_code(self, value: str) -> str:
            return _field_value(login_code_clean, raw=value)

    @extend_schema_serializer(component_name="LoginTokenIssued")
    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField(help_text="Send it as `Authorization: Token <token>`.")
        user = MeSerializer()

    @extend_schema(
        operation_id="auth_token_create",
        tags=["auth"],
        auth=[],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: refusal(
                "Codes: code_invalid, code_expired, code_wrong (with attempts_left), code_burned "
                "(5 evaluations: request a new code); or field errors."
            ),
            403: refusal("The account is blocked (code account_blocked)."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = login_code_verify(
            phone=serializer.validated_data["phone"], code=serializer.validated_data["code"], ip=client_ip(request)
        )
        key = api_token_create(user=user, name=request.headers.get("User-Agent", "")[:120])
        return Response({"token": key, "user": me_representation(user, request)})


class LogoutApi(APIView):
    """Sign this device out: revoke the token of the request, or end the
    browser session."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout",
        tags=["auth"],
        request=None,
        responses={204: None, 401: NOT_AUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        if isinstance(request.auth, ApiToken):
            api_token_revoke(token=request.auth)
        else:
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutEverywhereApi(APIView):
    """Sign out on every device: all tokens and sessions end, open
    WebSockets close."""

    permission_classes = [IsAuthenticated]

    @extend_schema(
        operation_id="auth_logout_everywhere",
        tags=["auth"],
        request=None,
        responses={204: None, 401: NOT_AUTHENTICATED},
    )
    def post(self, request: Request) -> Response:
        session_logout_everywhere(user=request.user)  # type: ignore[arg-type]
        if not isinstance(request.auth, ApiToken):
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    """The current user; PATCH changes the name, language and time zone."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="ProfileUpdate")
    class InputSerializer(serializers.Serializer):
        first_name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False)
        last_name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False)
        middle_name = serializers.CharField(required=False, allow_blank=True, max_length=200, trim_whitespace=False)
        language = serializers.CharField(required=False, max_length=8)
        time_zone = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="IANA name.")

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            errors = {}
            cleaned = {}
            for field, value in attrs.items():
                try:
                    cleaned[field] = profile_field_clean(field=field, value=value)
                except ApplicationError as error:
                    errors[field] = [error.message]
            if errors:
                raise serializers.ValidationError(errors)
            return cleaned

    @extend_schema(operation_id="me_retrieve", tags=["me"], responses={200: MeSerializer, 401: NOT_AUTHENTICATED})
    def get(self, request: Request) -> Response:
        return Response(me_representation(user_of(request), request))

    @extend_schema(
        operation_id="me_update",
        tags=["me"],
        request=InputSerializer,
        responses={200: MeSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def patch(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        values = {field: serializer.validated_data.get(field, getattr(user, field)) for field in PROFILE_FIELDS}
        user = profile_update(user=user, **values)
        return Response(me_representation(user, request))


PHOTO_REFUSED = refusal('Not a JPEG, PNG or WebP picture (code photo_invalid, field "photo").')
PHOTO_TOO_LARGE = refusal('Over 5 MB or 4096 × 4096 pixels (code photo_too_large, field "photo").')


class MePhotoApi(APIView):
    """PUT a new profile photo, DELETE it. One class for both methods: they
    share the URL and the permission."""

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="PhotoUpload")
    class InputSerializer(serializers.Serializer):
        photo = serializers.FileField(
            allow_empty_file=False,
            help_text="JPEG, PNG or WebP, at most 5 MB and 4096 × 4096 pixels; stored as a JPEG of at most "
            "512 × 512 without metadata.",
        )

    @extend_schema(
        operation_id="me_photo_update",
        tags=["me"],
        request={"multipart/form-data": InputSerializer},
        responses={
            200: MeSerializer,
            400: PHOTO_REFUSED,
            401: NOT_AUTHENTICATED,
            413: PHOTO_TOO_LARGE,
            415: refusal("Not multipart/form-data."),
        },
    )
    def put(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = profile_photo_set(user=user_of(request), uploaded_file=serializer.validated_data["photo"])
        return Response(me_representation(user, request))

    @extend_schema(
        operation_id="me_photo_delete",
        tags=["me"],
        request=None,
        responses={204: None, 401: NOT_AUTHENTICATED},
        description="Idempotent: without a photo nothing happens.",
    )
    def delete(self, request: Request) -> Response:
        profile_photo_clear(user=user_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlwaysJson(BaseContentNegotiation):
    """JSON whatever the client accepts: a link on a page downloads the file
    instead of answering 406 or showing the browsable API."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


class MeExportApi(APIView):
    """Everything kept about the current user, as a JSON file (152-FZ)."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = AlwaysJson

    @extend_schema(
        operation_id="me_export",
        tags=["me"],
        responses={
            200: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='{"format", "version", "exported_at", "account", "api_tokens" (devices and dates, '
                'never keys), "memberships", "guardianships", "study_groups", "safe_mode_changes", …}; '
                "sent as the attachment parta-export-<id>.json.",
            ),
            401: NOT_AUTHENTICATED,
        },
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        response = Response(personal_data_export(user=user))
        response["Content-Disposition"] = f'attachment; filename="parta-export-{user.pk}.json"'
        response["Cache-Control"] = "private, no-store"
        return response


class MeDeleteApi(APIView):
    """Delete one's own account, confirmed with a code sent by SMS to its
    number (request it with POST /api/v1/auth/code/)."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="AccountDelete")
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=32, help_text="The 6 digits from the SMS sent to the account's number.")

        def validate_code(self, value: str) -> str:
            return _field_value(login_code_clean, raw=value)

    @extend_schema(
        operation_id="me_delete",
        tags=["me"],
        request=InputSerializer,
        responses={
            204: None,
            400: refusal(
                "The sign-in refusals, and nothing changes: code_invalid, code_expired, code_wrong "
                "(with attempts_left), code_burned; or field errors."
            ),
            401: NOT_AUTHENTICATED,
            429: RATE_LIMITED,
        },
        description="Every session and token ends, memberships and guardianships end, and the account is "
        "anonymised; its number may sign up again as a new account. Messages stay, under a neutral name.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        account_delete(user=user_of(request), code=serializer.validated_data["code"], ip=client_ip(request))
        if not isinstance(request.auth, ApiToken):
            logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)
