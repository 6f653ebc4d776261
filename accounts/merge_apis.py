"""REST API of merging two accounts of one person (accounts.merge)."""

from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import me_representation, user_of
from accounts.merge import MERGE_CONFIRMATION_SECONDS, account_merge_codes_request, account_merge_confirm
from accounts.network import client_ip
from accounts.serializers import MeSerializer
from common.api import BAD_REQUEST, NOT_AUTHENTICATED, RATE_LIMITED, refusal


class MergeCodesRequestApi(APIView):
    """Start merging another account of yours into this one: a sign-in code
    goes by SMS to this account's number and to the other number."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="MergeCodesRequest")
    class InputSerializer(serializers.Serializer):
        other_phone = serializers.CharField(max_length=64, help_text="The number of the other account.")

    @extend_schema_serializer(component_name="MergeCodesSent")
    class OutputSerializer(serializers.Serializer):
        other_phone = serializers.CharField(help_text="The other number, normalised (E.164).")
        confirm_within = serializers.IntegerField(help_text="Seconds a confirmed number stays confirmed.")

    @extend_schema(
        operation_id="me_merge_codes",
        tags=["me"],
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            429: RATE_LIMITED,
            503: refusal("The SMS could not be sent (code sms_unavailable)."),
        },
        description="Codes: invalid_phone and merge_same_account (field other_phone), daily_limit, rate_limited. "
        "The answer does not tell whether the other number has an account.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        other_phone = account_merge_codes_request(
            user=user_of(request), other_phone=serializer.validated_data["other_phone"], ip=client_ip(request)
        )
        return Response(
            self.OutputSerializer({"other_phone": other_phone, "confirm_within": MERGE_CONFIRMATION_SECONDS}).data
        )


class MergeConfirmApi(APIView):
    """Confirm both numbers with their codes; the other account is merged
    into this one."""

    permission_classes = [IsAuthenticated]

    @extend_schema_serializer(component_name="MergeConfirm")
    class InputSerializer(serializers.Serializer):
        code = serializers.CharField(
            max_length=32,
            required=False,
            default="",
            help_text="The code sent to this account's number (may be left out once confirmed).",
        )
        other_code = serializers.CharField(
            max_length=32,
            required=False,
            default="",
            help_text="The code sent to the other number (may be left out once confirmed).",
        )

    @extend_schema(
        operation_id="me_merge_confirm",
        tags=["me"],
        request=InputSerializer,
        responses={
            200: MeSerializer,
            400: refusal(
                "Nothing moves: merge_not_requested; the sign-in refusals with field code or other_code "
                "(invalid_code_format, code_invalid, code_expired, code_wrong with attempts_left, code_burned); "
                "merge_account_unavailable."
            ),
            401: NOT_AUTHENTICATED,
            409: refusal("A row could not move (merge_conflict): nothing moved."),
            429: RATE_LIMITED,
        },
        description="A number confirmed once stays confirmed for a while, so a mistyped code costs only that code. "
        "The other account's sessions end, its number is freed and it is closed; the answer is this account.",
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        kept = account_merge_confirm(
            user=user_of(request),
            code=serializer.validated_data["code"],
            other_code=serializer.validated_data["other_code"],
            ip=client_ip(request),
        )
        return Response(me_representation(kept, request))
