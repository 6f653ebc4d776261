"""REST API of what happens to messages after sending: edit and history,
reactions, pins, polls, attachments, and search. Thin: parse, call one
service of chats.services.content (or chats.search), shape the answer.

A chat one is not in answers 404 exactly like one that does not exist.
"""

from typing import Any, cast

from django.conf import settings
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from chats import events, search, selectors
from chats.serializers import MessageSerializer as ChatMessageSerializer
from chats.serializers import PersonSerializer
from chats.services import content
from chats.services.messages import message_send_rate_check
from common.api import BAD_REQUEST, FORBIDDEN, NOT_AUTHENTICATED, RATE_LIMITED, refusal
from common.errors import ApplicationError
from common.ratelimit import rate_limit_hit

NOT_FOUND = refusal("No such chat, message or poll, or a chat the user is not in: both answer alike.")


def action_rate_check(user: User) -> None:
    """Reactions, votes and pins each reach every socket of the chat: a
    budget per person (settings CHAT_ACTION_RATE, "120/minute" by default).

    Raises RateLimited.
    """
    rate_limit_hit(scope="chat_action", key=str(user.pk), rate=getattr(settings, "CHAT_ACTION_RATE", "120/minute"))


def search_rate_check(user: User) -> None:
    """Search scans text: a budget per person (settings CHAT_SEARCH_RATE,
    "30/minute" by default). Raises RateLimited."""
    rate_limit_hit(scope="chat_search", key=str(user.pk), rate=getattr(settings, "CHAT_SEARCH_RATE", "30/minute"))


def user_of(request: Request) -> User:
    """The signed-in user: every view here requires IsAuthenticated."""
    return cast(User, request.user)


def _data(request: Request) -> Any:
    """The request body as a mapping (JSON or a form)."""
    return request.data if hasattr(request.data, "get") else {}


def _form_bool(value: Any) -> Any:
    """A form's "true"/"false" as a boolean; JSON booleans pass as they are."""
    if isinstance(value, str) and value.lower() in {"true", "1", "on", "false", "0", "off", ""}:
        return value.lower() in {"true", "1", "on"}
    return value


# --- Shapes -------------------------------------------------------------------------


@extend_schema_serializer(component_name="Attachment")
class AttachmentSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(help_text="The uploader's file name with the extension of the real type.")
    content_type = serializers.CharField(help_text="Decided from the file's content, not from the upload.")
    size = serializers.IntegerField(help_text="Bytes.")
    width = serializers.IntegerField(allow_null=True, help_text="Images only.")
    height = serializers.IntegerField(allow_null=True, help_text="Images only.")
    url = serializers.CharField(help_text="/chats/files/<id>/ — served only to members of the chat.")
    thumbnail_url = serializers.CharField(allow_null=True, help_text="A JPEG of at most 320 px; images only.")


@extend_schema_serializer(component_name="ChatMessageWithAttachments")
class MessageSerializer(ChatMessageSerializer):
    """A message with its files, as in the WebSocket's "message.updated" event."""

    attachments = AttachmentSerializer(many=True)


@extend_schema_serializer(component_name="PollOption")
class PollOptionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    text = serializers.CharField()
    votes = serializers.IntegerField()
    voters = PersonSerializer(
        many=True,
        required=False,
        help_text="Who chose it: only for the chat's staff, and only when the poll is not anonymous.",
    )


@extend_schema_serializer(component_name="Poll")
class PollSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    chat = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The poll's message.")
    author = serializers.IntegerField(allow_null=True, help_text="The id of the teacher who posted it.")
    question = serializers.CharField()
    allows_multiple = serializers.BooleanField()
    is_anonymous = serializers.BooleanField()
    is_closed = serializers.BooleanField()
    closed_at = serializers.DateTimeField(allow_null=True)
    voters_count = serializers.IntegerField()
    options = PollOptionSerializer(many=True)
    my_votes = serializers.ListField(child=serializers.IntegerField(), help_text="Option ids the user chose.")


class ContentPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 100


class SignedInApi(APIView):
    permission_classes = [IsAuthenticated]


# --- Edit and history ---------------------------------------------------------------


class MessageEditApi(SignedInApi):
    """PATCH /chats/{chat_id}/messages/{seq}/. Not routed here: the path's
    view is the chat API's MessageDeleteApi (DELETE), which takes this
    method by inheriting from this class, so that one view serves the path."""

    @extend_schema_serializer(component_name="MessageEdit")
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=4000)

    @extend_schema(
        operation_id="chat_message_edit",
        summary="Edit one's own message",
        description=(
            "The author changes the text within 48 hours of sending. The earlier text is kept "
            '(see history) and the message is marked edited; members get {"type": "message.updated"}. '
            "Codes: not_author, edit_window_passed (403), message_deleted, message_not_editable, "
            "message_empty, message_too_long, too_many_edits (400), and the posting rules "
            "(muted, announcement_only, chat_closed, contact_not_allowed, channel_read_only: 403)."
        ),
        request=InputSerializer,
        responses={
            200: MessageSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def patch(self, request: Request, chat_id: int, seq: int) -> Response:
        message_send_rate_check(user=user_of(request))
        message = content.message_edit(user=user_of(request), chat_id=chat_id, seq=seq, body=_data(request).get("body"))
        return Response(content.message_payload_full(message))


class MessageHistoryApi(SignedInApi):
    @extend_schema_serializer(component_name="MessageRevision")
    class RevisionSerializer(serializers.Serializer):
        body = serializers.CharField()
        replaced_at = serializers.DateTimeField(help_text="When this text was replaced by the next one.")

    @extend_schema_serializer(component_name="MessageHistory")
    class OutputSerializer(serializers.Serializer):
        message = MessageSerializer()
        revisions = serializers.ListField(
            child=serializers.DictField(), help_text="Earlier texts, oldest first (at most 100); none once deleted."
        )

    @extend_schema(
        operation_id="chat_message_history",
        summary="A message's earlier texts",
        responses={200: OutputSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int, seq: int) -> Response:
        message, revisions = content.message_revisions_get(user=user_of(request), chat_id=chat_id, seq=seq)
        return Response(
            {
                "message": content.message_payload_full(message),
                "revisions": [
                    {"body": revision.body, "replaced_at": revision.replaced_at.isoformat()} for revision in revisions
                ],
            }
        )


# --- Reactions --------------------------------------------------------------------


class ReactionToggleApi(SignedInApi):
    @extend_schema_serializer(component_name="ReactionToggle")
    class InputSerializer(serializers.Serializer):
        emoji = serializers.ChoiceField(choices=content.REACTIONS)

    @extend_schema_serializer(component_name="Reactions")
    class OutputSerializer(serializers.Serializer):
        added = serializers.BooleanField(help_text="False when the call took the reaction back.")
        reactions = serializers.DictField(child=serializers.IntegerField(), help_text="Count per emoji.")

    @extend_schema(
        operation_id="chat_message_reaction_toggle",
        summary="Add or take back a reaction",
        description=(
            "Toggles the user's reaction; members get "
            '{"type": "message.reactions", "chat", "seq", "reactions": {emoji: count}}. '
            "Codes: reaction_not_allowed, message_deleted (400), muted, contact_not_allowed (403)."
        ),
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int, seq: int) -> Response:
        action_rate_check(user_of(request))
        added, counts = content.reaction_toggle(
            user=user_of(request), chat_id=chat_id, seq=seq, emoji=_data(request).get("emoji")
        )
        return Response({"added": added, "reactions": counts})


# --- Pins --------------------------------------------------------------------------


@extend_schema_serializer(component_name="Pin")
class PinSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    pinned_at = serializers.DateTimeField()
    pinned_by = PersonSerializer(allow_null=True)
    message = MessageSerializer()


def _pins_payload(pins: list[Any]) -> list[dict[str, Any]]:
    """Pins with their messages and files: one query for the files of the
    whole page."""
    attachments = content.attachments_payload(message_ids=[pin.message_id for pin in pins])
    payload = []
    for pin in pins:
        message = events.message_payload(pin.message)
        message["attachments"] = attachments.get(pin.message_id, [])
        payload.append(
            {
                "seq": pin.message.seq,
                "pinned_at": pin.pinned_at.isoformat(),
                "pinned_by": events.author_payload(pin.pinned_by),
                "message": message,
            }
        )
    return payload


class PinListApi(SignedInApi):
    pagination_class = ContentPagination

    @extend_schema_serializer(component_name="PinCreate")
    class InputSerializer(serializers.Serializer):
        seq = serializers.IntegerField(min_value=1)

    @extend_schema(
        operation_id="chat_pins_list",
        summary="The chat's pinned messages, newest first",
        responses={200: PinSerializer(many=True), 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        pins = content.pin_list(user=user_of(request), chat_id=chat_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(pins, request, view=self) or []
        return paginator.get_paginated_response(_pins_payload(list(page)))

    @extend_schema(
        operation_id="chat_pin_create",
        summary="Pin a message (moderators)",
        description=(
            'Members get {"type": "pin.added", "chat", "seq", "message"}. Pinning a pinned message answers 200 '
            "and changes nothing. Codes: not_moderator (403), message_deleted, too_many_pins (400)."
        ),
        request=InputSerializer,
        responses={
            200: PinSerializer,
            201: PinSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        seq = _data(request).get("seq")
        if isinstance(seq, str) and seq.isdigit():
            seq = int(seq)
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ApplicationError(_("seq must be a message's number."), code="invalid", extra={"field": "seq"})
        action_rate_check(user_of(request))
        pin, created = content.pin_add(user=user_of(request), chat_id=chat_id, seq=seq)
        return Response(_pins_payload([pin])[0], status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PinDeleteApi(SignedInApi):
    @extend_schema(
        operation_id="chat_pin_delete",
        summary="Unpin a message (moderators)",
        description='Members get {"type": "pin.removed", "chat", "seq"}. 404 when it is not pinned.',
        responses={204: None, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND, 429: RATE_LIMITED},
    )
    def delete(self, request: Request, chat_id: int, seq: int) -> Response:
        action_rate_check(user_of(request))
        content.pin_remove(user=user_of(request), chat_id=chat_id, seq=seq)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Polls -------------------------------------------------------------------------


class PollCreateApi(SignedInApi):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema_serializer(component_name="PollCreate")
    class InputSerializer(serializers.Serializer):
        question = serializers.CharField(max_length=content.POLL_QUESTION_MAX_LENGTH)
        options = serializers.ListField(
            child=serializers.CharField(max_length=content.POLL_OPTION_MAX_LENGTH),
            min_length=content.POLL_OPTIONS_MIN,
            max_length=content.POLL_OPTIONS_MAX,
        )
        allows_multiple = serializers.BooleanField(default=False)
        is_anonymous = serializers.BooleanField(default=False)
        client_id = serializers.CharField(
            required=False, max_length=64, help_text="Makes a resend idempotent, as for messages."
        )

    @extend_schema(
        operation_id="chat_poll_create",
        summary="Post a poll (the chat's teachers)",
        description=(
            'Posts a message of kind "poll" whose text is the question; members get it as a "message" event '
            'and then {"type": "poll.updated", "chat", "seq", "poll"}. Codes: poll_staff_only and the posting '
            "rules (403), invalid, poll_options_invalid, client_id_conflict (400)."
        ),
        request=InputSerializer,
        responses={
            200: OpenApiResponse(PollSerializer, description="A resend with the same client_id: the first poll."),
            201: PollSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        data = _data(request)
        options = data.getlist("options") if hasattr(data, "getlist") else data.get("options")
        user = user_of(request)
        message_send_rate_check(user=user)
        poll, created = content.poll_create(
            user=user,
            chat_id=chat_id,
            question=data.get("question"),
            options=options,
            allows_multiple=_form_bool(data.get("allows_multiple", False)),
            is_anonymous=_form_bool(data.get("is_anonymous", False)),
            client_id=data.get("client_id", ""),
        )
        view = content.poll_get(user=user, chat_id=chat_id, poll_id=poll.pk)
        return Response(view, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class PollDetailApi(SignedInApi):
    @extend_schema(
        operation_id="chat_poll_get",
        summary="A poll with its results",
        responses={200: PollSerializer, 401: NOT_AUTHENTICATED, 404: NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int, poll_id: int) -> Response:
        return Response(content.poll_get(user=user_of(request), chat_id=chat_id, poll_id=poll_id))


class PollVoteApi(SignedInApi):
    @extend_schema_serializer(component_name="PollVote")
    class InputSerializer(serializers.Serializer):
        option_ids = serializers.ListField(
            child=serializers.IntegerField(), help_text="The user's whole choice; an empty list takes the vote back."
        )

    @extend_schema(
        operation_id="chat_poll_vote",
        summary="Vote in a poll (or take the vote back)",
        description=(
            'Replaces the user\'s earlier choice; members get {"type": "poll.updated"} with the counts. '
            "Codes: poll_closed, poll_single_choice, poll_option_invalid, invalid (400)."
        ),
        request=InputSerializer,
        responses={200: PollSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: NOT_FOUND, 429: RATE_LIMITED},
    )
    def post(self, request: Request, chat_id: int, poll_id: int) -> Response:
        data = _data(request)
        option_ids = data.get("option_ids")
        if hasattr(data, "getlist") and not isinstance(option_ids, list):
            option_ids = [int(value) if value.isdigit() else value for value in data.getlist("option_ids")]
        action_rate_check(user_of(request))
        return Response(
            content.poll_vote(user=user_of(request), chat_id=chat_id, poll_id=poll_id, option_ids=option_ids)
        )


class PollCloseApi(SignedInApi):
    @extend_schema(
        operation_id="chat_poll_close",
        summary="Close a poll (its author)",
        description=(
            'Members get {"type": "poll.updated"}. Closing a closed poll changes nothing. Code: not_author (403).'
        ),
        request=None,
        responses={200: PollSerializer, 401: NOT_AUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def post(self, request: Request, chat_id: int, poll_id: int) -> Response:
        return Response(content.poll_close(user=user_of(request), chat_id=chat_id, poll_id=poll_id))


# --- Attachments ---------------------------------------------------------------------


class AttachmentUploadApi(SignedInApi):
    parser_classes = [MultiPartParser]

    @extend_schema_serializer(component_name="AttachmentUpload")
    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()

    @extend_schema(
        operation_id="chat_attachment_upload",
        summary="Upload a file to send in the chat",
        description=(
            "multipart/form-data with one `file`. The type is decided from the content: JPEG, PNG, WebP, GIF "
            "(re-encoded without EXIF, with a thumbnail), PDF, DOCX, XLSX, PPTX, UTF-8 text, MP3, M4A, OGG. "
            "The upload belongs to no message until the user sends a message with its id in `attachments`; "
            "unsent uploads are deleted after a day. Codes: file_required, file_empty (400), file_too_large, "
            "image_too_large (413), file_type_not_allowed (415), rate_limited (429), posting rules (403)."
        ),
        request={"multipart/form-data": InputSerializer},
        responses={
            201: AttachmentSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            413: refusal("Too large; `max_bytes` says the limit."),
            415: refusal("A type of file that is not allowed."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        # Membership first: someone outside the chat learns only "not found".
        selectors.chat_member_get(user=user_of(request), chat_id=chat_id)
        upload = request.FILES.get("file")
        if upload is None:
            raise ApplicationError(_("Choose a file."), code="file_required", extra={"field": "file"})
        attachment = content.attachment_upload(user=user_of(request), chat_id=chat_id, upload=upload)
        return Response(content.attachment_payload(attachment), status=status.HTTP_201_CREATED)


# --- Search --------------------------------------------------------------------------


class MessageSearchApi(SignedInApi):
    pagination_class = ContentPagination

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(max_length=search.QUERY_MAX_LENGTH, help_text="Words to find.")
        chat = serializers.IntegerField(required=False, min_value=1, help_text="Only this chat.")

    @extend_schema_serializer(component_name="MessageSearchResult")
    class OutputSerializer(serializers.Serializer):
        message = MessageSerializer()
        chat_title = serializers.CharField()
        chat_kind = serializers.CharField()

    @extend_schema(
        operation_id="messages_search",
        summary="Search the messages of one's chats",
        description=(
            "Only chats the user is in; deleted messages are never found. On PostgreSQL full-text search with "
            "the Russian configuration (word forms match; web-search syntax: quotes, `or`, `-word`), best "
            "match first; on SQLite every word must occur, newest first. Code: search_query_invalid (400)."
        ),
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, required=True, description="Words to find (1–200 characters)."),
            OpenApiParameter("chat", OpenApiTypes.INT, required=False, description="Only this chat."),
        ],
        responses={
            200: OutputSerializer(many=True),
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            404: NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def get(self, request: Request) -> Response:
        search_rate_check(user_of(request))
        chat = request.query_params.get("chat") or ""
        chat_id = None
        if chat:
            if not chat.isdigit():
                raise ApplicationError(_("chat must be a chat's id."), code="invalid", extra={"field": "chat"})
            chat_id = int(chat)
        found = search.message_search(user=user_of(request), query=request.query_params.get("q"), chat_id=chat_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(found, request, view=self) or []
        attachments = content.attachments_payload(message_ids=[message.pk for message in page])
        results = []
        for message in page:
            payload = events.message_payload(message)
            payload["attachments"] = attachments.get(message.pk, [])
            results.append(
                {
                    "message": payload,
                    "chat_title": selectors.chat_title(chat=message.chat),
                    "chat_kind": message.chat.kind,
                }
            )
        return paginator.get_paginated_response(results)


urlpatterns = [
    path("chats/<int:chat_id>/messages/<int:seq>/history/", MessageHistoryApi.as_view(), name="chat_message_history"),
    path(
        "chats/<int:chat_id>/messages/<int:seq>/reactions/",
        ReactionToggleApi.as_view(),
        name="chat_message_reaction_toggle",
    ),
    path("chats/<int:chat_id>/pins/", PinListApi.as_view(), name="chat_pins"),
    path("chats/<int:chat_id>/pins/<int:seq>/", PinDeleteApi.as_view(), name="chat_pin_delete"),
    path("chats/<int:chat_id>/polls/", PollCreateApi.as_view(), name="chat_poll_create"),
    path("chats/<int:chat_id>/polls/<int:poll_id>/", PollDetailApi.as_view(), name="chat_poll"),
    path("chats/<int:chat_id>/polls/<int:poll_id>/votes/", PollVoteApi.as_view(), name="chat_poll_vote"),
    path("chats/<int:chat_id>/polls/<int:poll_id>/close/", PollCloseApi.as_view(), name="chat_poll_close"),
    path("chats/<int:chat_id>/attachments/", AttachmentUploadApi.as_view(), name="chat_attachment_upload"),
    path("search/messages/", MessageSearchApi.as_view(), name="messages_search"),
]
