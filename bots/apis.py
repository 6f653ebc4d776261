"""The Bot API: /api/v1/bot/<method>/ with `Authorization: Bot <token>`.
Method names follow Telegram's Bot API (getMe, getUpdates, sendMessage…);
answers are the result itself, refusals the portal's usual
{"detail", "code"[, "field"]} with 400/401/403/404/409/429."""

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bots import longpoll, selectors, services
from bots.authentication import BotTokenAuthentication
from bots.models import Bot
from common.api import BAD_REQUEST, RATE_LIMITED, refusal
from common.errors import ApplicationError

BOT_NOT_AUTHENTICATED = refusal("No bot token, or an invalid or revoked one (code invalid_token / not_authenticated).")
BOT_FORBIDDEN = refusal(
    "The bot is disabled (bot_disabled), or a rule refuses it: chat_not_allowed (a chat the bot is not in, "
    "or no such chat), chat_left, contact_not_allowed, not_author, and the chats' posting rules."
)
# Every method's refusals of the caller: no bot, or a disabled one.
BOT_REFUSALS = {401: BOT_NOT_AUTHENTICATED, 403: BOT_FORBIDDEN}
TAGS = ["bot"]


class IsBot(BasePermission):
    def has_permission(self, request: Request, view: Any) -> bool:
        return isinstance(request.auth, Bot)


def bot_of(request: Request) -> Bot:
    assert isinstance(request.auth, Bot)
    return request.auth


def body_of(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ApplicationError(_("A JSON object is expected."), code="invalid", extra={"field": "body"})
    return dict(request.data)


class BotApi(APIView):
    authentication_classes = [BotTokenAuthentication]
    permission_classes = [IsBot]

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # A long poll's second look (after waking) is the same call.
        if not getattr(request._request, "_bots_second_look", False):
            services.bot_api_rate_check(bot=bot_of(request))
        # Refused before it is read: a legitimate call is a few kilobytes.
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = int(getattr(settings, "BOT_API_MAX_BODY_BYTES", 64 * 1024))
        if length > limit:
            raise ApplicationError(
                _("The request body may have at most %(limit)d bytes.") % {"limit": limit},
                code="body_too_large",
                extra={"field": "body"},
            )


# --- Shapes (for the schema) --------------------------------------------------------------------------------------


@extend_schema_serializer(component_name="BotButton")
class ButtonSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=services.BUTTON_TEXT_MAX, help_text="What the button says.")
    callback_data = serializers.CharField(
        max_length=services.CALLBACK_DATA_MAX_BYTES, help_text="Sent back to the bot when pressed (1-64 bytes)."
    )


class ButtonRowsField(serializers.ListField):
    child = serializers.ListField(child=ButtonSerializer(), max_length=services.BUTTONS_PER_ROW_MAX)


@extend_schema_serializer(component_name="BotOrganisation")
class OrganisationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_name = serializers.CharField()


@extend_schema_serializer(component_name="BotProfile")
class ProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The bot's account id: `from.id` of its messages.")
    username = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_verified = serializers.BooleanField()
    is_staff_only = serializers.BooleanField(help_text="Only verified staff may start it.")
    organisation = OrganisationSerializer(allow_null=True, help_text="None for a bot of the platform.")
    webhook_url = serializers.CharField(allow_blank=True, help_text="Empty when updates are fetched by getUpdates.")
    pending_update_count = serializers.IntegerField()


@extend_schema_serializer(component_name="BotPerson")
class PersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    is_verified_educator = serializers.BooleanField()


@extend_schema_serializer(component_name="BotChat")
class ChatSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField(help_text="direct, group, class_students, class_parents, staff or channel.")
    title = serializers.CharField(allow_blank=True)


# Shows the field `from_` under its real name, "from" (a Python keyword). A
# comment, not a docstring: the schema would take a docstring as the
# description of the serializers that inherit it.
class FromFieldMixin(serializers.Serializer):
    def get_fields(self) -> dict[str, Any]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


@extend_schema_serializer(component_name="BotMessage")
class MessageSerializer(FromFieldMixin):
    message_id = serializers.IntegerField()
    seq = serializers.IntegerField(help_text="The message's number in its chat; editMessageText takes it.")
    chat = ChatSerializer()
    # "from" is a keyword; the schema shows the real name.
    from_ = PersonSerializer(allow_null=True)
    date = serializers.DateTimeField()
    edit_date = serializers.DateTimeField(required=False)
    text = serializers.CharField()
    reply_to_seq = serializers.IntegerField(allow_null=True)
    buttons = ButtonRowsField()
    command = serializers.CharField(required=False, help_text='"start" for "/start": commands only.')
    command_args = serializers.CharField(required=False, help_text='"abc" for "/start abc".')


@extend_schema_serializer(component_name="BotCallbackQuery")
class CallbackQuerySerializer(FromFieldMixin):
    id = serializers.CharField(help_text="Pass it to answerCallbackQuery.")
    from_ = PersonSerializer()
    message = MessageSerializer(help_text="The bot's message whose button was pressed.")
    data = serializers.CharField(help_text="The button's callback_data.")  # type: ignore[assignment]


@extend_schema_serializer(component_name="BotUpdate")
class UpdateSerializer(serializers.Serializer):
    update_id = serializers.IntegerField(help_text="Increases by one with every update of the bot.")
    message = MessageSerializer(required=False, help_text="A message or a command (`command` set).")
    callback_query = CallbackQuerySerializer(required=False, help_text="A button press.")


def profile_data(bot: Bot) -> dict[str, Any]:
    return {
        "id": bot.user_id,
        "username": bot.username,
        "name": bot.name,
        "description": bot.description,
        "is_verified": bot.is_verified,
        "is_staff_only": bot.is_staff_only,
        "organisation": (
            {"id": bot.organisation.pk, "short_name": bot.organisation.short_name} if bot.organisation else None
        ),
        "webhook_url": bot.webhook_url,
        "pending_update_count": bot.updates.filter(confirmed_at__isnull=True).count(),
    }


# --- Methods ------------------------------------------------------------------------------------------------------


class GetMeApi(BotApi):
    @extend_schema(
        operation_id="bot_get_me",
        summary="The bot's profile",
        tags=TAGS,
        responses={200: ProfileSerializer, **BOT_REFUSALS, 429: RATE_LIMITED},
    )
    def get(self, request: Request) -> Response:
        return Response(profile_data(bot_of(request)))


class GetUpdatesApi(BotApi):
    @extend_schema_serializer(component_name="BotGetUpdatesInput")
    class InputSerializer(serializers.Serializer):
        offset = serializers.IntegerField(
            required=False,
            help_text="The update_id of the first update wanted: every update before it is confirmed and "
            "never returned again. Pass the last update_id received + 1.",
        )
        limit = serializers.IntegerField(required=False, min_value=1, max_value=100, default=100)
        timeout = serializers.IntegerField(
            required=False,
            min_value=0,
            max_value=25,
            default=0,
            help_text="Long polling: seconds to wait for an update when there is none (0-25).",
        )

    @extend_schema(
        operation_id="bot_get_updates",
        summary="Pending updates, by long polling",
        description=(
            "Answers at once when there are updates; otherwise waits up to `timeout` seconds for one. "
            "409 webhook_active while a webhook is set."
        ),
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: UpdateSerializer(many=True),
            400: BAD_REQUEST,
            **BOT_REFUSALS,
            409: refusal("A webhook is set (code webhook_active): delete it first."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        bot = bot_of(request)
        data = body_of(request)
        second_look = getattr(request._request, "_bots_second_look", False)
        if data.get("timeout") and not second_look:
            # Drop earlier wake-ups before reading, so that an update
            # committed after the read still wakes the wait.
            longpoll.forget(bot.pk)
        updates, timeout = services.updates_get(
            bot=bot, offset=data.get("offset"), limit=data.get("limit"), timeout=data.get("timeout")
        )
        if not updates and timeout and not second_look:
            request._request._bots_wait = (bot.pk, timeout)  # type: ignore[attr-defined]
            if not connection.in_atomic_block:
                # No database connection is held while waiting.
                connection.close()
            return Response([])
        return Response([selectors.update_as_json(update) for update in updates])


_get_updates_sync = GetUpdatesApi.as_view()


async def get_updates_view(request: HttpRequest) -> HttpResponse:
    """getUpdates as an async view: the first look and the second (after a
    wake-up or the timeout) are the DRF view, run in a thread; the wait in
    between is in the event loop, holding no thread and no connection."""
    response = await sync_to_async(_get_updates_sync)(request)
    waiting = getattr(request, "_bots_wait", None)
    if waiting is None:
        return response
    bot_id, timeout = waiting
    await longpoll.wait(bot_id, timeout)
    request._bots_second_look = True  # type: ignore[attr-defined]
    return await sync_to_async(_get_updates_sync)(request)


# drf-spectacular finds the operation through these, as on any APIView.
get_updates_view.cls = GetUpdatesApi  # type: ignore[attr-defined]
get_updates_view.initkwargs = {}  # type: ignore[attr-defined]
get_updates_view.csrf_exempt = True  # type: ignore[attr-defined]


class SendMessageApi(BotApi):
    @extend_schema_serializer(component_name="BotSendMessageInput")
    class InputSerializer(serializers.Serializer):
        chat_id = serializers.IntegerField(help_text="A chat the bot is a member of (`message.chat.id`).")
        text = serializers.CharField(max_length=4000)
        buttons = ButtonRowsField(
            required=False, max_length=services.BUTTON_ROWS_MAX, help_text="Inline buttons: up to 8 rows of 8."
        )
        reply_to_seq = serializers.IntegerField(required=False)

    @extend_schema(
        operation_id="bot_send_message",
        summary="Send a message, with inline buttons",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: MessageSerializer,
            400: BAD_REQUEST,
            **BOT_REFUSALS,
            429: refusal("The bot's API budget, or its budget in this chat (a flood), is spent; see Retry-After."),
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        message, chat = services.bot_message_send(
            bot=bot_of(request),
            chat_id=data.get("chat_id"),
            text=data.get("text"),
            buttons=data.get("buttons"),
            reply_to_seq=data.get("reply_to_seq"),
        )
        return Response(services.message_json(message, chat=chat))


class EditMessageTextApi(BotApi):
    @extend_schema_serializer(component_name="BotEditMessageInput")
    class InputSerializer(serializers.Serializer):
        chat_id = serializers.IntegerField()
        seq = serializers.IntegerField(help_text="The seq of the bot's own message.")
        text = serializers.CharField(required=False, max_length=4000)
        buttons = ButtonRowsField(required=False, help_text="New buttons; [] removes them.")

    @extend_schema(
        operation_id="bot_edit_message_text",
        summary="Edit the text or the buttons of the bot's own message",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: MessageSerializer,
            400: BAD_REQUEST,
            **BOT_REFUSALS,
            404: refusal("No message with this seq (code message_not_found)."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        message = services.bot_message_edit(
            bot=bot_of(request),
            chat_id=data.get("chat_id"),
            seq=data.get("seq"),
            text=data.get("text"),
            buttons=data.get("buttons"),
        )
        return Response(services.message_json(message, chat=message.chat))


class AnswerCallbackQueryApi(BotApi):
    @extend_schema_serializer(component_name="BotAnswerCallbackInput")
    class InputSerializer(serializers.Serializer):
        callback_query_id = serializers.CharField()
        text = serializers.CharField(required=False, max_length=services.ANSWER_TEXT_MAX)

    @extend_schema_serializer(component_name="BotOk")
    class OkSerializer(serializers.Serializer):
        ok = serializers.BooleanField()

    @extend_schema(
        operation_id="bot_answer_callback_query",
        summary="Answer a button press",
        description="The text, if any, is shown to the person who pressed the button.",
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: OkSerializer,
            400: BAD_REQUEST,
            **BOT_REFUSALS,
            404: refusal("No such button press of this bot (code callback_query_not_found)."),
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        services.callback_answer(
            bot=bot_of(request), callback_query_id=data.get("callback_query_id"), text=data.get("text")
        )
        return Response({"ok": True})


class SetWebhookApi(BotApi):
    @extend_schema_serializer(component_name="BotSetWebhookInput")
    class InputSerializer(serializers.Serializer):
        url = serializers.URLField(max_length=500, help_text="http(s); internal addresses are refused.")
        secret = serializers.CharField(
            required=False,
            min_length=16,
            max_length=128,
            help_text="The key of the X-Parta-Signature HMAC; made up and returned when not given.",
        )

    @extend_schema_serializer(component_name="BotWebhook")
    class OutputSerializer(serializers.Serializer):
        url = serializers.CharField()
        secret = serializers.CharField()

    @extend_schema(
        operation_id="bot_set_webhook",
        summary="Receive updates by webhook",
        description=(
            "Updates are POSTed to the URL, signed (see docs/bots.md). 400 codes (field url): "
            "webhook_url_invalid, webhook_host_unknown, webhook_url_internal."
        ),
        tags=TAGS,
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            400: BAD_REQUEST,
            **BOT_REFUSALS,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        data = body_of(request)
        bot = services.webhook_set(bot=bot_of(request), url=data.get("url"), secret=data.get("secret"))
        return Response({"url": bot.webhook_url, "secret": bot.webhook_secret})


class DeleteWebhookApi(BotApi):
    @extend_schema(
        operation_id="bot_delete_webhook",
        summary="Stop the webhook; updates wait for getUpdates again",
        tags=TAGS,
        request=None,
        responses={
            200: AnswerCallbackQueryApi.OkSerializer,
            **BOT_REFUSALS,
            429: RATE_LIMITED,
        },
    )
    def post(self, request: Request) -> Response:
        services.webhook_delete(bot=bot_of(request))
        return Response({"ok": True})
