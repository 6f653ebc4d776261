"""REST API of broadcast channels (SPEC §6): the list and the directory of
channels, creating one, subscribing, editors, posting, acknowledging
("Ознакомлен"), statistics for editors and the private reply to a post's
author. Thin: parse, call one service or selector, shape the answer. A
channel the user may not see answers 404 exactly like one that does not
exist."""

from typing import Any, cast

from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from chats import events
from chats.models import Chat, MemberRole, Message, ScheduledMessage
from chats.serializers import MessageSerializer, PersonSerializer, person_data
from chats.services import channels
from chats.services.messages import message_send_rate_check
from common.api import BAD_REQUEST, FORBIDDEN, NOT_AUTHENTICATED, RATE_LIMITED, refusal
from common.errors import ApplicationError, NotFound
from organisations.selectors import organisation_get

CHANNEL_NOT_FOUND = refusal(
    "No such channel, or one the user may not see (a private channel of another organisation): "
    "both answer alike (code not_found)."
)
POST_NOT_FOUND = refusal("No such channel or post, or a channel the user is not subscribed to (not_found).")


def user_of(request: Request) -> User:
    """The signed-in user: every view here requires IsAuthenticated."""
    return cast(User, request.user)


def body_of(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ApplicationError(_("A JSON object is expected."), code="invalid")
    return dict(request.data)


class SignedInApi(APIView):
    permission_classes = [IsAuthenticated]


# --- Shapes -------------------------------------------------------------------------


@extend_schema_serializer(component_name="ChannelOrganisation")
class ChannelOrganisationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    short_name = serializers.CharField()
    is_verified = serializers.BooleanField()


@extend_schema_serializer(component_name="Channel")
class ChannelSerializer(serializers.Serializer):
    """A channel as one person sees it. `is_verified` (the official badge)
    is decided by the server: a channel of a verified organisation created by
    its administrator, while the organisation stays verified."""

    id = serializers.IntegerField()
    title = serializers.CharField()
    description = serializers.CharField()
    organisation = ChannelOrganisationSerializer()
    is_verified = serializers.SerializerMethodField()
    is_public = serializers.BooleanField(help_text="Anyone who may see the organisation may subscribe.")
    is_subscribed = serializers.BooleanField()
    role = serializers.SerializerMethodField(help_text="owner, editor or member; null when not subscribed.")
    is_automatic = serializers.BooleanField(
        help_text="Subscribed as a member of the organisation: stays while a member, cannot unsubscribe."
    )
    may_post = serializers.SerializerMethodField(help_text="The user is one of the channel's editors.")
    last_seq = serializers.IntegerField(help_text="The newest post's seq.")
    awaiting_acknowledgement = serializers.SerializerMethodField(
        help_text="Posts asking for the user's acknowledgement that the user has not acknowledged."
    )
    created_at = serializers.DateTimeField()

    def get_is_verified(self, chat: Chat) -> bool:
        return channels.channel_is_verified(chat)

    @extend_schema_field(serializers.ChoiceField(choices=MemberRole.choices, allow_null=True))
    def get_role(self, chat: Chat) -> str | None:
        return getattr(chat, "my_role", None)

    def get_may_post(self, chat: Chat) -> bool:
        return getattr(chat, "my_role", None) in channels.EDITOR_ROLES

    def get_awaiting_acknowledgement(self, chat: Chat) -> int:
        return channels.awaiting_acknowledgement_count(chat)


@extend_schema_serializer(component_name="ChannelDetail")
class ChannelDetailSerializer(ChannelSerializer):
    may_manage = serializers.SerializerMethodField(
        help_text="The user may add editors (the channel's owner or an administrator of its organisation)."
    )

    def get_may_manage(self, chat: Chat) -> bool:
        return bool(self.context.get("may_manage"))


@extend_schema_serializer(component_name="ChannelPostStatisticsSummary")
class PostSummarySerializer(serializers.Serializer):
    read = serializers.IntegerField(help_text="Subscribers whose read position is at or past the post.")
    acknowledged = serializers.IntegerField()


@extend_schema_serializer(component_name="ChannelPost")
class ChannelPostSerializer(MessageSerializer):
    is_acknowledged = serializers.BooleanField(help_text="The user acknowledged this post.")
    escalate_at = serializers.DateTimeField(
        allow_null=True, help_text="When guardians of students who have not acknowledged get an SMS."
    )
    summary = PostSummarySerializer(allow_null=True, help_text="For editors: read and acknowledged counts.")


def post_data(post: Message, *, state: channels.PostsState | None = None) -> dict[str, Any]:
    summary = state.summaries.get(post.pk) if state is not None else None
    return {
        **events.message_payload(post),
        "is_acknowledged": bool(state and post.pk in state.acknowledged_ids),
        "escalate_at": post.escalate_at.isoformat() if post.escalate_at else None,
        "summary": {"read": summary.read, "acknowledged": summary.acknowledged} if summary else None,
    }


@extend_schema_serializer(component_name="ChannelPosts")
class ChannelPostsSerializer(serializers.Serializer):
    posts = ChannelPostSerializer(many=True)
    last_seq = serializers.IntegerField()
    has_more = serializers.BooleanField(help_text="Older posts exist before this page.")
    subscribers = serializers.IntegerField(allow_null=True, help_text="For editors: the number of subscribers.")


@extend_schema_serializer(component_name="ChannelSubscription")
class SubscriptionSerializer(serializers.Serializer):
    chat = serializers.IntegerField()
    is_subscribed = serializers.BooleanField()
    role = serializers.ChoiceField(choices=MemberRole.choices)
    is_automatic = serializers.BooleanField()


@extend_schema_serializer(component_name="ChannelEditor")
class EditorSerializer(serializers.Serializer):
    user = PersonSerializer()
    role = serializers.ChoiceField(choices=MemberRole.choices)


@extend_schema_serializer(component_name="ChannelAcknowledgement")
class AcknowledgementSerializer(serializers.Serializer):
    chat = serializers.IntegerField()
    seq = serializers.IntegerField()
    acknowledged_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="ChannelStatisticsGroup")
class GroupStatisticsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    subscribers = serializers.IntegerField()
    read = serializers.IntegerField()
    acknowledged = serializers.IntegerField()


@extend_schema_serializer(component_name="ChannelStatisticsClass")
class ClassStatisticsSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    students = serializers.IntegerField()
    students_acknowledged = serializers.IntegerField()
    parents = serializers.IntegerField()
    parents_acknowledged = serializers.IntegerField()


@extend_schema_serializer(component_name="ChannelPostStatistics")
class StatisticsSerializer(serializers.Serializer):
    seq = serializers.IntegerField(source="post.seq")
    requires_acknowledgement = serializers.BooleanField(source="post.requires_acknowledgement")
    subscribers = serializers.IntegerField(help_text="Active subscribers (editors not counted).")
    read = serializers.IntegerField()
    acknowledged = serializers.IntegerField()
    not_acknowledged_count = serializers.IntegerField()
    names_shown = serializers.BooleanField(
        help_text="Names are listed only in the channels of a school, kindergarten or college; an authority's "
        "channels give counts per organisation."
    )
    not_acknowledged = serializers.SerializerMethodField(help_text="A page (offset, limit) of those who have not.")
    by_organisation = GroupStatisticsSerializer(many=True)
    by_class = ClassStatisticsSerializer(many=True, help_text="Classes of the current academic year.")

    @extend_schema_field(PersonSerializer(many=True))
    def get_not_acknowledged(self, statistics: channels.PostStatistics) -> list[dict[str, Any] | None]:
        return [person_data(user) for user in statistics.not_acknowledged]


@extend_schema_serializer(component_name="ChannelPrivateReply")
class PrivateReplySerializer(serializers.Serializer):
    chat = serializers.IntegerField(help_text="The direct chat with the post's author.")
    status = serializers.ChoiceField(choices=["sent", "scheduled"])
    message = MessageSerializer(allow_null=True, help_text="The message sent; null while held.")
    deliver_at = serializers.DateTimeField(
        allow_null=True, help_text="Written after the author's office hours: delivered then."
    )


# --- Channels ------------------------------------------------------------------------


class ChannelPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 200


class ChannelListCreateApi(SignedInApi):
    pagination_class = ChannelPagination

    class FilterSerializer(serializers.Serializer):
        organisation = serializers.IntegerField(required=False, min_value=1, help_text="Channels of one organisation.")
        subscribed = serializers.BooleanField(
            required=False, allow_null=True, default=None, help_text="Only subscriptions (true) or only others."
        )

    @extend_schema_serializer(component_name="ChannelCreateInput")
    class InputSerializer(serializers.Serializer):
        organisation = serializers.IntegerField(min_value=1, help_text="The owning organisation.")
        title = serializers.CharField(max_length=200)
        description = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
        is_public = serializers.BooleanField(required=False, default=False)

    @extend_schema(
        operation_id="channels_list",
        summary="My channels and the public channels I may subscribe to",
        description=(
            "Subscriptions first, then the public channels of organisations the directory shows the user "
            "(for students and guests: their own organisations)."
        ),
        parameters=[FilterSerializer],
        responses={200: ChannelSerializer(many=True), 400: BAD_REQUEST, 401: NOT_AUTHENTICATED},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        chats = channels.channel_list(
            user=user_of(request),
            organisation_id=filters.validated_data.get("organisation"),
            subscribed=filters.validated_data.get("subscribed"),
        )
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(chats, request, view=self)
        return paginator.get_paginated_response(ChannelSerializer(page, many=True).data)

    @extend_schema(
        operation_id="channels_create",
        summary="Create a channel of an organisation (its administrators)",
        description=(
            "The creator becomes the owner; the organisation's members (for an authority, the members of every "
            "organisation under it) are subscribed (at once; for an audience over 1,000, by a background task "
            "within minutes). `is_verified` is not input: the channel is official when "
            "the organisation is verified. 403 not_organisation_administrator."
        ),
        request=InputSerializer,
        responses={
            201: ChannelDetailSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: refusal("No such organisation, or one the user may not see."),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = user_of(request)
        organisation = organisation_get(user=user, organisation_id=data["organisation"])
        if organisation is None:
            raise NotFound(_("Not found."))
        chat = channels.channel_create(
            actor=user,
            organisation=organisation,
            title=data["title"],
            description=data["description"],
            is_public=data["is_public"],
        )
        return channel_response(user=user, chat_id=chat.pk, status_code=status.HTTP_201_CREATED)


def channel_response(*, user: User, chat_id: int, status_code: int = status.HTTP_200_OK) -> Response:
    chat = channels.channel_get(user=user, chat_id=chat_id)
    context = {"may_manage": channels.channel_may_manage(user=user, chat=chat)}
    return Response(ChannelDetailSerializer(chat, context=context).data, status=status_code)


class ChannelDetailApi(SignedInApi):
    @extend_schema(
        operation_id="channels_retrieve",
        summary="A channel",
        responses={200: ChannelDetailSerializer, 401: NOT_AUTHENTICATED, 404: CHANNEL_NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        return channel_response(user=user_of(request), chat_id=chat_id)


class ChannelSubscriptionApi(SignedInApi):
    @extend_schema(
        operation_id="channels_subscribe",
        summary="Subscribe to a channel",
        description="201 subscribed; 200 already subscribed (idempotent). 403 removed_from_chat.",
        request=None,
        responses={
            200: SubscriptionSerializer,
            201: SubscriptionSerializer,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHANNEL_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        member, created = channels.channel_subscribe(user=user_of(request), chat_id=chat_id)
        data = {"chat": member.chat_id, "is_subscribed": True, "role": member.role, "is_automatic": member.is_synced}
        return Response(data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)

    @extend_schema(
        operation_id="channels_unsubscribe",
        summary="Unsubscribe from a channel subscribed to from the directory",
        description=(
            "Members of the channel's organisation are subscribed automatically and stay subscribed while they "
            "are members: 409 subscription_automatic."
        ),
        request=None,
        responses={
            204: None,
            401: NOT_AUTHENTICATED,
            404: CHANNEL_NOT_FOUND,
            409: refusal("An automatic subscription (subscription_automatic)."),
        },
    )
    def delete(self, request: Request, chat_id: int) -> Response:
        channels.channel_unsubscribe(user=user_of(request), chat_id=chat_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChannelEditorsApi(SignedInApi):
    @extend_schema_serializer(component_name="ChannelEditorInput")
    class InputSerializer(serializers.Serializer):
        user_id = serializers.IntegerField(help_text="A staff member of the channel's organisation.")

    @extend_schema(
        operation_id="channels_editors_add",
        summary="Make a staff member an editor (the owner or the organisation's administrators)",
        description="201 made an editor; 200 already one. 400 editor_not_staff; 403 not_channel_manager.",
        request=InputSerializer,
        responses={
            200: EditorSerializer,
            201: EditorSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHANNEL_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        member, changed = channels.channel_editor_add(
            actor=user_of(request), chat_id=chat_id, user_id=body_of(request).get("user_id")
        )
        return Response(
            {"user": person_data(member.user), "role": member.role},
            status=status.HTTP_201_CREATED if changed else status.HTTP_200_OK,
        )


# --- Posts ------------------------------------------------------------------------------


class ChannelPostListCreateApi(SignedInApi):
    class FilterSerializer(serializers.Serializer):
        before = serializers.IntegerField(required=False, min_value=1, help_text="Posts before this seq.")
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=20)

    @extend_schema_serializer(component_name="ChannelPostInput")
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=4000)
        client_id = serializers.CharField(required=False, max_length=64, help_text="Makes a resend idempotent.")
        requires_acknowledgement = serializers.BooleanField(required=False, default=False)
        escalate_after_hours = serializers.IntegerField(
            required=False,
            allow_null=True,
            min_value=1,
            max_value=channels.ESCALATE_AFTER_HOURS_MAX,
            help_text="SMS to guardians of students who have not acknowledged after this many hours.",
        )

    @extend_schema(
        operation_id="channels_posts_list",
        summary="Posts of a channel, a page at a time (subscribers)",
        description=(
            "The newest page, or the page before `before`; oldest first. With the user's own acknowledgements "
            "and, for editors, read and acknowledgement counts. A constant number of queries."
        ),
        parameters=[FilterSerializer],
        responses={200: ChannelPostsSerializer, 400: BAD_REQUEST, 401: NOT_AUTHENTICATED, 404: CHANNEL_NOT_FOUND},
    )
    def get(self, request: Request, chat_id: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        member = channels.channel_member_get(user=user_of(request), chat_id=chat_id)
        posts, has_more = channels.channel_posts_page(
            member=member, before_seq=filters.validated_data.get("before"), limit=filters.validated_data["limit"]
        )
        state = channels.channel_posts_state(member=member, posts=posts)
        return Response(
            {
                "posts": [post_data(post, state=state) for post in posts],
                "last_seq": member.chat.last_seq,
                "has_more": has_more,
                "subscribers": state.subscribers,
            }
        )

    @extend_schema(
        operation_id="channels_posts_create",
        summary="Post to a channel (its editors)",
        description=(
            "201 posted; 200 a resend of the same client_id and body. 403 channel_read_only for subscribers. "
            "400 client_id_conflict, message_empty, message_too_long, invalid (field escalate_after_hours: "
            "only with requires_acknowledgement)."
        ),
        request=InputSerializer,
        responses={
            200: ChannelPostSerializer,
            201: ChannelPostSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: CHANNEL_NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int) -> Response:
        user = user_of(request)
        data = body_of(request)
        requires_acknowledgement = data.get("requires_acknowledgement", False)
        if not isinstance(requires_acknowledgement, bool):
            raise ApplicationError(
                _("Must be true or false."), code="invalid", extra={"field": "requires_acknowledgement"}
            )
        message_send_rate_check(user=user)
        message, created = channels.channel_post(
            user=user,
            chat_id=chat_id,
            body=data.get("body"),
            client_id=data.get("client_id", ""),
            requires_acknowledgement=requires_acknowledgement,
            escalate_after_hours=data.get("escalate_after_hours"),
        )
        return Response(post_data(message), status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ChannelPostAcknowledgeApi(SignedInApi):
    @extend_schema(
        operation_id="channels_posts_acknowledge",
        summary='Acknowledge a post ("Ознакомлен")',
        description="201 acknowledged; 200 already (idempotent). 400 acknowledgement_not_required.",
        request=None,
        responses={
            200: AcknowledgementSerializer,
            201: AcknowledgementSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            404: POST_NOT_FOUND,
        },
    )
    def post(self, request: Request, chat_id: int, seq: int) -> Response:
        acknowledgement, created = channels.acknowledgement_create(user=user_of(request), chat_id=chat_id, seq=seq)
        return Response(
            {"chat": chat_id, "seq": seq, "acknowledged_at": acknowledgement.created_at.isoformat()},
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ChannelPostStatisticsApi(SignedInApi):
    class FilterSerializer(serializers.Serializer):
        offset = serializers.IntegerField(required=False, min_value=0, default=0)
        limit = serializers.IntegerField(
            required=False, min_value=1, max_value=channels.STATISTICS_PAGE_MAX, default=50
        )

    @extend_schema(
        operation_id="channels_posts_statistics",
        summary="Read and acknowledgement statistics of a post (editors)",
        description="403 not_channel_editor for subscribers. A constant number of queries.",
        parameters=[FilterSerializer],
        responses={
            200: StatisticsSerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: POST_NOT_FOUND,
        },
    )
    def get(self, request: Request, chat_id: int, seq: int) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        statistics = channels.post_statistics_get(
            user=user_of(request),
            chat_id=chat_id,
            seq=seq,
            offset=filters.validated_data["offset"],
            limit=filters.validated_data["limit"],
        )
        return Response(StatisticsSerializer(statistics).data)


class ChannelPostPrivateReplyApi(SignedInApi):
    @extend_schema_serializer(component_name="ChannelPrivateReplyInput")
    class InputSerializer(serializers.Serializer):
        body = serializers.CharField(max_length=4000)
        client_id = serializers.CharField(required=False, max_length=64, help_text="Makes a resend idempotent.")

    @extend_schema(
        operation_id="channels_posts_private_reply",
        summary="Reply privately to the author of a post",
        description=(
            "Sends, in the direct chat with the author (created on the first reply), a message opening with a "
            "line quoting the post. 201 sent; 200 a resend; 202 held until the author's office hours. A child "
            "in safe mode may reply only to an author who is one of their contacts (403 contact_not_allowed). "
            "400 private_reply_unavailable (one's own post), message_too_long (with the quote)."
        ),
        request=InputSerializer,
        responses={
            200: PrivateReplySerializer,
            201: PrivateReplySerializer,
            202: PrivateReplySerializer,
            400: BAD_REQUEST,
            401: NOT_AUTHENTICATED,
            403: FORBIDDEN,
            404: POST_NOT_FOUND,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request, chat_id: int, seq: int) -> Response:
        user = user_of(request)
        data = body_of(request)
        message_send_rate_check(user=user)
        reply = channels.private_reply_send(
            user=user, chat_id=chat_id, seq=seq, body=data.get("body"), client_id=data.get("client_id", "")
        )
        if isinstance(reply.message, ScheduledMessage):
            return Response(
                {
                    "chat": reply.chat.pk,
                    "status": "scheduled",
                    "message": None,
                    "deliver_at": reply.message.deliver_at.isoformat(),
                },
                status=status.HTTP_202_ACCEPTED,
            )
        return Response(
            {
                "chat": reply.chat.pk,
                "status": "sent",
                "message": events.message_payload(reply.message),
                "deliver_at": None,
            },
            status=status.HTTP_201_CREATED if reply.created else status.HTTP_200_OK,
        )


urlpatterns = [
    path("channels/", ChannelListCreateApi.as_view(), name="channels"),
    path("channels/<int:chat_id>/", ChannelDetailApi.as_view(), name="channel"),
    path("channels/<int:chat_id>/subscription/", ChannelSubscriptionApi.as_view(), name="channel-subscription"),
    path("channels/<int:chat_id>/editors/", ChannelEditorsApi.as_view(), name="channel-editors"),
    path("channels/<int:chat_id>/posts/", ChannelPostListCreateApi.as_view(), name="channel-posts"),
    path(
        "channels/<int:chat_id>/posts/<int:seq>/acknowledge/",
        ChannelPostAcknowledgeApi.as_view(),
        name="channel-post-acknowledge",
    ),
    path(
        "channels/<int:chat_id>/posts/<int:seq>/stats/",
        ChannelPostStatisticsApi.as_view(),
        name="channel-post-statistics",
    ),
    path(
        "channels/<int:chat_id>/posts/<int:seq>/private-reply/",
        ChannelPostPrivateReplyApi.as_view(),
        name="channel-post-private-reply",
    ),
]
