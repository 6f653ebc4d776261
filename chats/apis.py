"""REST API of chats: the list, direct and group chats, history and sending,
read position and receipts, members and moderation, office hours. Thin:
parse, call one service or selector, shape the answer. A chat the user is
not in answers 404 exactly like one that does not exist (the services go
through chats.selectors.chat_member_get). Edit, reactions, pins, polls,
attachments and search are in apis_content; channels in apis_channels."""

from typing import Any, cast

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from chats import events, selectors
from chats.apis_content import AttachmentSerializer, MessageEditApi
from chats.models import ScheduledMessage
from chats.serializers import (
    ChatDetailSerializer,
    ChatListItemSerializer,
    MessageSerializer,
)
from chats.services import chats as chat_services
from chats.services import content, moderation
from chats.services import messages as message_services
from common.api import BAD_REQUEST, FORBIDDEN, NOT_AUTHENTICATED, RATE_LIMITED, refusal
from common.errors import ApplicationError, PermissionDenied

CHAT_NOT_FOUND = refusal("No such chat, or one the user is not in: both answer alike (code not_found).")
RECEIPT_SEQS_MAX = 100


def user_of(request: Request) -> User:
    """The signed-in user: every view here requires IsAuthenticated."""
    return cast(User, request.user)


def body_of(request: Request) -> dict[str, Any]:
    """The JSON object of the request (services validate its values, the
    same way for REST and WebSocket)."""
    if not isinstance(request.data, dict):
        raise ApplicationError(_("A JSON object is expected."), code="invalid")
    return dict(request.data)


class SignedInApi(APIView):
    permission_classes = [IsAuthenticated]


def detail_response(*, user: User, chat_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    detail = selectors.chat_detail_get(user=user, chat_id=chat_id)
    return Response(ChatDetailSerializer(detail).data, status=status_code)


# --- Chats ---------------------------------------------------------------------


class ChatPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ChatListCreateApi(SignedInApi):
    pagination_class = ChatPagination

    @extend_schema_serializer(component_name="ChatGroupCreate")
    class GroupInputSerializer(serializers.Serializer):
        title = serializers.CharField(max_length=200)
        member_ids = serializers.ListField(child=serializers.IntegerField(), max_length=200)

    @extend_schema(
        operation_id="chats_list",
        summary="The user's chats, most recently active first",
        description=(
            "Each with its title (a direct chat is named after the other person), kind, last message and unread "
            "count. The number of queries does not depend on the page size."
        ),
        responses={200: ChatListItemSerializer(many=True), 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        user = user_of(request)
        paginator = ChatPagination()
        page = paginator.paginate_queryset(selectors.chat_memberships_of_user(user=user), request, view=self)
        items = selectors.chat_list_items(user=user, members=page or [])
        return paginator.get_paginated_response(ChatListItemSerializer(items, many=True).data)

    @extend_schema(
        operation_id="chats_group_create",
        summary="Create a group chat",
        description=(
            "The creator owns it. Every member must be someone the creator may see; a child in safe mode only a "
            "contact of the creator (else 403 contact_not_allowed and nothing is created)."
        ),
        request=GroupInputSerializer,
        responses={
            201: ChatDetailSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: refusal("A member is unknown (code user_not_found)."),
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        chat = chat_services.group_chat_create(
            user=user_of(request), title=data.get("title"), member_ids=data.get("member_ids")
        )
        return detail_response(user=user_of(request), chat_id=chat.pk, status_code=status.HTTP_201_CREATED)


class DirectChatApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatDirectOpen")
    class InputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()

    @extend_schema(
        operation_id="chats_direct_open",
        summary="Open the direct chat with a person (created on first use)",
        description="A child in safe mode accepts only contacts: 403 contact_not_allowed, nothing stored.",
        request=InputSerializer,
        responses={
            200: ChatDetailSerializer,
            201: ChatDetailSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: refusal("No such person, or one the user may not see."),
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        chat, created = chat_services.direct_chat_get_or_create(user=user_of(request), other=data.get("user_id"))
        return detail_response(
            user=user_of(request),
            chat_id=chat.pk,
            status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ChatDetailApi(SignedInApi):
    @extend_schema(
        operation_id="chats_retrieve",
        summary="A chat: members with badges, pins, settings and the user's own role",
        responses={200: ChatDetailSerializer, 401: NOT_AUTHENTICATED, 404: CHAT_NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        return detail_response(user=user_of(request), chat_id=chat_id)


class ChatSettingsApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatSettings")
    class InputSerializer(serializers.Serializer):
        is_announcement_only = serializers.BooleanField(required=False)
        opens_at = serializers.TimeField(required=False, allow_null=True, help_text='"HH:MM", local time.')
        closes_at = serializers.TimeField(required=False, allow_null=True, help_text='"HH:MM", local time.')
        title = serializers.CharField(required=False, max_length=200)

    @extend_schema(
        operation_id="chats_settings_update",
        summary="Change a chat's settings (moderators)",
        description=(
            "Announcement mode (only staff post), opening hours for students (both times, or both null to "
            "clear) and the title of a group chat. All or nothing."
        ),
        request=InputSerializer,
        responses={
            200: ChatDetailSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHAT_NOT_FOUND,
        },
    )
    def patch(self, request: Request, chat_id: int) -> Response:
        serializer = self.InputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        moderation.chat_settings_update(
            actor=user_of(request), chat_id=chat_id, changes=dict(serializer.validated_data)
        )
        return detail_response(user=user_of(request), chat_id=chat_id)


# --- Messages --------------------------------------------------------------------


@extend_schema_serializer(component_name="ChatHistoryMessage")
class HistoryMessageSerializer(MessageSerializer):
    """A message of a history page, with its content."""

    attachments = AttachmentSerializer(many=True)
    reactions = serializers.DictField(child=serializers.IntegerField(), help_text="{emoji: count}")
    my_reactions = serializers.ListField(child=serializers.CharField(), help_text="The user's own reactions.")
    poll = serializers.JSONField(allow_null=True, help_text="The poll of a poll message (see the polls API).")


@extend_schema_serializer(component_name="ChatHistory")
class HistorySerializer(serializers.Serializer):
    messages = HistoryMessageSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="The chat's newest seq.")
    has_more = serializers.BooleanField(help_text="More messages beyond this page in the direction asked.")


@extend_schema_serializer(component_name="ChatMessageScheduled")
class ScheduledSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["scheduled"])
    deliver_at = serializers.DateTimeField()
    client_id = serializers.CharField(allow_null=True)


class MessageListCreateApi(SignedInApi):
    class FilterSerializer(serializers.Serializer):
        before = serializers.IntegerField(required=False, min_value=1, help_text="Messages before this seq.")
        after = serializers.IntegerField(required=False, min_value=0, help_text="Messages after this seq.")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=50)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            if "before" in attrs and "after" in attrs:
                raise serializers.ValidationError(_("Give either before or after, not both."))
            return attrs

    @extend_schema_serializer(component_name="ChatMessageSend")
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=4000)
        client_id = serializers.CharField(required=False, max_length=64, help_text="Makes a resend idempotent.")
        reply_to = serializers.IntegerField(required=False, allow_null=True, help_text="The seq replied to.")
        mentions = serializers.ListField(child=serializers.IntegerField(), required=False, max_length=50)

    @extend_schema(
        operation_id="chats_messages_list",
        summary="History of a chat, a page at a time",
        description=(
            "The newest page, or the page before `before`, or after `after` (catch-up); oldest first. "
            "`has_more` tells whether there are more in that direction."
        ),
        parameters=[FilterSerializer],
        responses={200: HistorySerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: CHAT_NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        member = selectors.chat_member_get(user=user_of(request), chat_id=chat_id)
        messages, has_more = selectors.message_history(
            chat_id=member.chat_id,
            before=filters.validated_data.get("before"),
            after=filters.validated_data.get("after"),
            limit=filters.validated_data["limit"],
        )
        extras = content.messages_content(user=user_of(request), messages_shown=messages)
        return Response(
            {
                "messages": [{**events.message_payload(message), **extras[message.pk]} for message in messages],
                "last_seq": member.chat.last_seq,
                "has_more": has_more,
            }
        )

    @extend_schema(
        operation_id="chats_messages_send",
        summary="Send a message",
        description=(
            "201: sent. 200: a resend of the same client_id and body (the same message). 202: written to a "
            "teacher after their office hours, held until `deliver_at`. 400 client_id_conflict: the client_id "
            "was used for another text. 403 codes: announcement_only, muted, chat_closed, contact_not_allowed, "
            "channel_read_only."
        ),
        request=InputSerializer,
        responses={
            200: MessageSerializer,
            201: MessageSerializer,
            202: ScheduledSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHAT_NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = user_of(request)
        message_services.message_send_rate_check(user=user)
        data = body_of(request)
        sent, created = message_services.message_send(
            user=user,
            chat_id=chat_id,
            body=data.get("body"),
            client_id=data.get("client_id", ""),
            reply_to_seq=data.get("reply_to"),
            mention_ids=data.get("mentions") or [],
        )
        if isinstance(sent, ScheduledMessage):
            return Response(
                {"status": "scheduled", "deliver_at": sent.deliver_at.isoformat(), "client_id": sent.client_id or None},
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(events.message_payload(sent), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class MessageApi(MessageEditApi):
    """One view for /chats/{chat_id}/messages/{seq}/: PATCH (edit) is the
    content API's, DELETE is here."""

    @extend_schema(
        operation_id="chats_messages_delete",
        summary="Delete a message (its author, or a moderator)",
        description="Soft: the message keeps its seq and shows as deleted. Deleting again changes nothing.",
        responses={200: MessageSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: CHAT_NOT_FOUND},
    )
    def delete(self, request: Request, chat_id: int, seq: int) -> Response:
        message = moderation.message_delete(actor=user_of(request), chat_id=chat_id, seq=seq)
        return Response(events.message_payload(message))


@extend_schema_serializer(component_name="ChatMessageReport")
class ReportSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    seq = serializers.IntegerField(source="message.seq")
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()


class MessageReportApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatMessageReportRequest")
    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(
        operation_id="chats_messages_report",
        summary="Report a message to the chat's moderators",
        description="201 reported; 200 when the user had already reported it (nothing changes).",
        request=InputSerializer,
        responses={
            200: ReportSerializer,
            201: ReportSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            404: CHAT_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int, seq: int) -> Response:
        data = body_of(request)
        report, created = moderation.message_report(
            user=user_of(request), chat_id=chat_id, seq=seq, reason=data.get("reason", "")
        )
        return Response(
            ReportSerializer(report).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


# --- Read position and receipts ---------------------------------------------------


@extend_schema_serializer(component_name="ChatReadPosition")
class ReadPositionSerializer(serializers.Serializer):
    last_read_seq = serializers.IntegerField()
    unread_count = serializers.IntegerField()


class ChatReadApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatRead")
    class InputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(min_value=0)

    @extend_schema(
        operation_id="chats_read",
        summary="Mark the chat read up to a seq",
        description="The position only moves forward, and never past the last message.",
        request=InputSerializer,
        responses={200: ReadPositionSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: CHAT_NOT_FOUND},
    )
    def post(self, request: Request, chat_id: int) -> Response:
        data = body_of(request)
        position, last_seq = chat_services.chat_read_mark(user=user_of(request), chat_id=chat_id, seq=data.get("seq"))
        return Response({"last_read_seq": position, "unread_count": max(0, last_seq - position)})


@extend_schema_serializer(component_name="ChatReceipt")
class ReceiptSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    seen_by = serializers.IntegerField(help_text="Members (other than the author) who have read it.")
    of_members = serializers.IntegerField(help_text="Members other than the author.")


class ChatReceiptsApi(SignedInApi):
    @extend_schema(
        operation_id="chats_receipts",
        summary='"Seen by N of M" for messages of the chat (its staff; both people of a direct chat)',
        parameters=[
            OpenApiParameter(
                "seqs", OpenApiTypes.STR, description="Comma-separated seqs, at most 100: 1,2,3", required=True
            )
        ],
        responses={
            200: ReceiptSerializer(many=True),
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: refusal("Not staff of the chat (code staff_only)."),
            404: CHAT_NOT_FOUND,
        },
    )
    def get(self, request: Request, chat_id: int) -> Response:
        member = selectors.chat_member_get(user=user_of(request), chat_id=chat_id)
        if not selectors.member_may_see_receipts(member):
            raise PermissionDenied(_("Only the chat's teachers see who has read a message."), code="staff_only")
        try:
            seqs = [int(part) for part in request.query_params.get("seqs", "").split(",") if part.strip()]
        except ValueError:
            raise ApplicationError(
                _("seqs are numbers separated by commas."), code="invalid", extra={"field": "seqs"}
            ) from None
        if not seqs or len(seqs) > RECEIPT_SEQS_MAX:
            raise ApplicationError(
                _("Give from 1 to %(limit)d seqs.") % {"limit": RECEIPT_SEQS_MAX},
                code="invalid",
                extra={"field": "seqs"},
            )
        counts = selectors.message_seen_counts(chat=member.chat, seqs=seqs)
        return Response(
            [{"seq": seq, "seen_by": seen, "of_members": total} for seq, (seen, total) in sorted(counts.items())]
        )


# --- Members ---------------------------------------------------------------------


@extend_schema_serializer(component_name="ChatMemberChange")
class MemberChangeSerializer(serializers.Serializer):
    user = serializers.IntegerField(source="user_id")
    role = serializers.CharField()
    muted_until = serializers.DateTimeField(allow_null=True)


class ChatMemberAddApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatMemberAdd")
    class InputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField()

    @extend_schema(
        operation_id="chats_members_add",
        summary="Add a person to a group chat (moderators)",
        description=(
            "201 added, 200 already there. Class and staff chats follow the directory: there a moderator may "
            "only let back someone removed by a moderator (else 403 chat_managed_by_directory). A child in safe "
            "mode only by a contact (403 contact_not_allowed)."
        ),
        request=InputSerializer,
        responses={
            200: MemberChangeSerializer,
            201: MemberChangeSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHAT_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        data = body_of(request)
        member, created = chat_services.chat_member_add(
            actor=user_of(request), chat_id=chat_id, user_id=data.get("user_id")
        )
        return Response(
            MemberChangeSerializer(member).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class ChatMemberRemoveApi(SignedInApi):
    @extend_schema(
        operation_id="chats_members_remove",
        summary="Remove a member (moderators), or leave the chat (one's own id)",
        responses={
            204: None,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHAT_NOT_FOUND,
        },
    )
    def delete(self, request: Request, chat_id: int, user_id: int) -> Response:
        user = user_of(request)
        if user_id == user.pk:
            chat_services.chat_leave(user=user, chat_id=chat_id)
        else:
            moderation.chat_member_remove(actor=user, chat_id=chat_id, user_id=user_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChatMemberMuteApi(SignedInApi):
    @extend_schema_serializer(component_name="ChatMemberMute")
    class InputSerializer(serializers.Serializer):
        minutes = serializers.IntegerField(min_value=0, max_value=moderation.MUTE_MINUTES_MAX, help_text="0 unmutes.")

    @extend_schema(
        operation_id="chats_members_mute",
        summary="Mute a member for some minutes, or unmute (moderators)",
        request=InputSerializer,
        responses={
            200: MemberChangeSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHAT_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int, user_id: int) -> Response:
        data = body_of(request)
        member = moderation.chat_member_mute(
            actor=user_of(request), chat_id=chat_id, user_id=user_id, minutes=data.get("minutes")
        )
        return Response(MemberChangeSerializer(member).data)


# --- Office hours ----------------------------------------------------------------


@extend_schema_serializer(component_name="OfficeHours")
class OfficeHoursSerializer(serializers.Serializer):
    starts_at = serializers.TimeField(format="%H:%M", help_text='"HH:MM"')
    ends_at = serializers.TimeField(format="%H:%M", help_text='"HH:MM"')
    weekdays = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=7), help_text="ISO weekdays, 1 = Monday."
    )
    time_zone = serializers.CharField(required=False, max_length=64)


@extend_schema_serializer(component_name="MyOfficeHours")
class MyOfficeHoursSerializer(serializers.Serializer):
    office_hours = OfficeHoursSerializer(allow_null=True, help_text="null: no office hours.")


def office_hours_data(hours: Any) -> dict[str, Any]:
    if hours is None:
        return {"office_hours": None}
    return {
        "office_hours": {
            "starts_at": hours.starts_at.strftime("%H:%M"),
            "ends_at": hours.ends_at.strftime("%H:%M"),
            "weekdays": [int(day) for day in hours.weekdays],
            "time_zone": hours.time_zone,
        }
    }


class OfficeHoursApi(SignedInApi):
    @extend_schema(
        operation_id="me_office_hours_retrieve",
        summary="The user's office hours",
        responses={200: MyOfficeHoursSerializer, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        return Response(office_hours_data(selectors.office_hours_get(user=user_of(request))))

    @extend_schema(
        operation_id="me_office_hours_set",
        summary="Set one's office hours (teachers and staff)",
        description=(
            "Direct messages from parents and students written outside them are held and delivered at the next opening."
        ),
        request=OfficeHoursSerializer,
        responses={200: MyOfficeHoursSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 403: FORBIDDEN},
    )
    def put(self, request: Request) -> Response:
        serializer = OfficeHoursSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        hours = moderation.office_hours_set(
            user=user_of(request),
            starts_at=data["starts_at"],
            ends_at=data["ends_at"],
            weekdays=data["weekdays"],
            time_zone=data.get("time_zone"),
        )
        return Response(office_hours_data(hours))

    @extend_schema(
        operation_id="me_office_hours_clear",
        summary="Clear one's office hours: messages arrive at once",
        responses={204: None, 401: NOT_AUTHENTICATED},
    )
    def delete(self, request: Request) -> Response:
        moderation.office_hours_clear(user=user_of(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


urlpatterns = [
    path("chats/", ChatListCreateApi.as_view(), name="chats-list"),
    path("chats/direct/", DirectChatApi.as_view(), name="chats-direct"),
    path("chats/<int:chat_id>/", ChatDetailApi.as_view(), name="chats-detail"),
    path("chats/<int:chat_id>/settings/", ChatSettingsApi.as_view(), name="chats-settings"),
    path("chats/<int:chat_id>/messages/", MessageListCreateApi.as_view(), name="chats-messages"),
    path("chats/<int:chat_id>/messages/<int:seq>/", MessageApi.as_view(), name="chats-message"),
    path("chats/<int:chat_id>/messages/<int:seq>/report/", MessageReportApi.as_view(), name="chats-message-report"),
    path("chats/<int:chat_id>/read/", ChatReadApi.as_view(), name="chats-read"),
    path("chats/<int:chat_id>/receipts/", ChatReceiptsApi.as_view(), name="chats-receipts"),
    path("chats/<int:chat_id>/members/", ChatMemberAddApi.as_view(), name="chats-members"),
    path("chats/<int:chat_id>/members/<int:user_id>/", ChatMemberRemoveApi.as_view(), name="chats-member"),
    path("chats/<int:chat_id>/members/<int:user_id>/mute/", ChatMemberMuteApi.as_view(), name="chats-member-mute"),
    path("me/office-hours/", OfficeHoursApi.as_view(), name="me-office-hours"),
]
