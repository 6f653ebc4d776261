"""Writes of the bots app: bots and their tokens, starting a bot, the
updates queue (made by the chat message hook and by button presses), what a
bot does through the Bot API (send, edit, answer a button, webhooks), and
webhook delivery with retries."""

import datetime
import hashlib
import hmac
import json
import logging
import re
import secrets
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from bots import builtin, longpoll, network, selectors
from bots.models import USERNAME_PATTERN, Bot, BotToken, DeliveryState, Update, UpdateKind, WebhookDelivery
from chats import events as chat_events
from chats import selectors as chat_selectors
from chats.models import MESSAGE_MAX_LENGTH, Chat, ChatKind, ChatMember, Message, MessageKind
from chats.services import content as chat_content
from chats.services import messages as chat_messages
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.ratelimit import rate_limit_hit
from common.services import audit_record
from organisations.extensions import BotOwner
from organisations.models import Organisation
from organisations.selectors import bot_contact_is_allowed

logger = logging.getLogger(__name__)

BUTTON_ROWS_MAX = 8
BUTTONS_PER_ROW_MAX = 8
BUTTON_TEXT_MAX = 64
CALLBACK_DATA_MAX_BYTES = 64
ANSWER_TEXT_MAX = 200
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
SIGNATURE_HEADER = "X-Parta-Signature"
_COMMAND = re.compile(r"^/([A-Za-z0-9_]{1,32})(?:@([A-Za-z0-9_]{1,40}))?(?:\s+(.*))?$", re.DOTALL)


def field_error(message: str, *, field: str, code: str = "invalid") -> ApplicationError:
    return ApplicationError(message, code=code, extra={"field": field})


# --- Bots and tokens ----------------------------------------------------------------------------------------------


def _bot_phone() -> str:
    """A number no one can sign in with: +7 000… is not a valid Russian
    number, so the sign-in form refuses it and no SMS is ever sent to it."""
    return "+7000" + str(secrets.randbelow(10**7)).zfill(7)


def bot_create(
    *,
    username: str,
    name: str,
    description: str = "",
    organisation: Organisation | None = None,
    is_verified: bool = False,
    is_staff_only: bool = False,
    actor: User | None = None,
) -> Bot:
    """A bot with its own account (hidden from search, no password, a
    number nobody can sign in with).

    Raises ApplicationError "invalid" (field "username") for a malformed or
    taken username."""
    if not isinstance(username, str) or not re.match(USERNAME_PATTERN, username):
        raise field_error(_("The username must end with 'bot' (Latin letters, digits, _)."), field="username")
    if Bot.objects.filter(username=username).exists():
        raise field_error(_("This username is taken."), field="username", code="username_taken")
    with transaction.atomic():
        for _attempt in range(5):
            try:
                with transaction.atomic():
                    user = User.objects.create_user(
                        _bot_phone(), first_name=name[:80], is_hidden_from_search=True, language="ru"
                    )
                break
            except IntegrityError:
                continue
        else:  # pragma: no cover - ten million numbers
            raise ApplicationError(_("Try again."), code="try_again")
        bot = Bot.objects.create(
            user=user,
            username=username,
            name=name,
            description=description,
            organisation=organisation,
            is_verified=is_verified,
            is_staff_only=is_staff_only,
        )
        audit_record(
            actor=actor, action="bot.create", target=bot, organisation_id=organisation.pk if organisation else None
        )
        transaction.on_commit(selectors.bot_accounts_forget)
    return bot


def bot_account_sync(*, bot: Bot) -> None:
    """Keep the bot's account named like the bot (after an edit in admin)."""
    if bot.user.first_name != bot.name[:80]:
        bot.user.first_name = bot.name[:80]
        bot.user.save(update_fields=["first_name"])


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def bot_token_issue(*, bot: Bot, actor: User | None = None) -> str:
    """A new token for the bot, returned once (only its hash is kept).
    Earlier tokens keep working until revoked."""
    token = str(bot.pk) + ":" + secrets.token_urlsafe(32)
    BotToken.objects.create(bot=bot, key_hash=token_hash(token), prefix=token[: len(str(bot.pk)) + 7])
    audit_record(actor=actor, action="bot.token_issue", target=bot, organisation_id=bot.organisation_id)
    return token


def bot_token_revoke(*, token: BotToken, actor: User | None = None) -> None:
    """The token stops working at once."""
    if token.revoked_at is None:
        BotToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        bot = token.bot
        audit_record(actor=actor, action="bot.token_revoke", target=bot, organisation_id=bot.organisation_id)


def bot_owner_of_user(user_id: int) -> BotOwner | None:
    """The organisations app's contact rule asks who owns a bot account."""
    row = Bot.objects.filter(user_id=user_id).values_list("organisation_id", flat=True)[:1]
    found = list(row)
    return BotOwner(organisation_id=found[0]) if found else None


# --- Starting a bot -----------------------------------------------------------------------------------------------


def bot_start(*, user: User, bot: Bot) -> Chat:
    """Open (or reopen) the person's direct chat with the bot and send it
    "/start", which reaches the bot as a command update.

    Raises NotFound (a bot the person may not see), PermissionDenied
    "bot_staff_only" (only verified staff start it) and
    "contact_not_allowed" (a child in safe mode and a bot of another
    organisation). A refusal stores nothing."""
    if not bot.is_active or not user.is_active:
        raise NotFound()
    # "/start" is a message like any other: it counts towards the person's budget.
    chat_messages.message_send_rate_check(user=user)
    if user.is_safe_mode and not bot_contact_is_allowed(organisation_id=bot.organisation_id, child=user):
        raise PermissionDenied(_("This bot is not available to students of your school."), code="contact_not_allowed")
    if not selectors.user_may_start(user=user, bot=bot):
        if bot.is_staff_only and bot_is_visible_to_everyone_of_scope(user=user, bot=bot):
            raise PermissionDenied(_("Only verified staff may start this bot."), code="bot_staff_only")
        raise NotFound()
    low, high = sorted((user.pk, bot.user_id))
    key = f"{low}:{high}"
    with transaction.atomic():
        chat = Chat.objects.filter(direct_key=key).first()
        if chat is None:
            try:
                with transaction.atomic():
                    chat = Chat.objects.create(kind=ChatKind.DIRECT, direct_key=key, created_by=user)
            except IntegrityError:
                chat = Chat.objects.get(direct_key=key)
        present = set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True))
        added = ChatMember.objects.bulk_create(
            [ChatMember(chat=chat, user_id=pk) for pk in (user.pk, bot.user_id) if pk not in present],
            ignore_conflicts=True,
        )
        if any(member.user_id == user.pk for member in added):
            chat_events.user_event_publish(user_id=user.pk, event={"type": "chat.joined", "chat": chat.pk})
        chat_id = chat.pk
        transaction.on_commit(lambda: selectors.chat_bots_refresh(chat_id))
    # The cache learns of the bot (on commit, above) before the hook of
    # "/start" runs: callbacks run in the order they were registered.
    chat_messages.message_send(user=user, chat_id=chat.pk, body="/start")
    return chat


def bot_is_visible_to_everyone_of_scope(*, user: User, bot: Bot) -> bool:
    """Would the person see the bot if it were not for verified staff only?
    (So that they are told why they may not start it.)"""
    if bot.organisation_id is None:
        return True
    return bot.organisation_id in selectors._organisation_ids(user)


def _not_moderator() -> PermissionDenied:
    return PermissionDenied(_("Only the chat's moderators may do this."), code="not_moderator")


def bot_chat_add(*, actor: User, bot: Bot, chat_id: int) -> ChatMember:
    """A moderator of a group chat adds a bot they may start to it. In a
    group the bot receives commands only (privacy mode).

    Raises NotFound (no such chat for the actor, or a bot they may not see),
    PermissionDenied "not_moderator", "bot_group_only" (not a group chat)
    and "contact_not_allowed" (a child in safe mode there whom the bot may
    not reach)."""
    member = chat_selectors.chat_member_get(user=actor, chat_id=chat_id)
    if not selectors.user_may_start(user=actor, bot=bot):
        raise NotFound()
    if member.chat.kind != ChatKind.GROUP:
        raise PermissionDenied(_("Bots are added to group chats only."), code="bot_group_only")
    if not chat_selectors.member_may_moderate(member):
        raise _not_moderator()
    children = User.objects.filter(
        chat_memberships__chat_id=chat_id, chat_memberships__left_at__isnull=True, is_safe_mode=True
    ).distinct()
    for child in children:
        if not bot_contact_is_allowed(organisation_id=bot.organisation_id, child=child):
            raise PermissionDenied(
                _("A student in this chat accepts messages only from contacts."), code="contact_not_allowed"
            )
    with transaction.atomic():
        bot_member = ChatMember.objects.active().filter(chat_id=chat_id, user_id=bot.user_id).first()
        if bot_member is None:
            bot_member = ChatMember.objects.create(chat_id=chat_id, user_id=bot.user_id)
            audit_record(actor=actor, action="bot.chat_add", target=bot, changes={"chat": chat_id})
        transaction.on_commit(lambda: selectors.chat_bots_refresh(chat_id))
    return bot_member


def bot_chat_remove(*, actor: User, bot: Bot, chat_id: int) -> None:
    """A moderator removes the bot from a group chat.

    Raises NotFound and PermissionDenied "not_moderator"."""
    member = chat_selectors.chat_member_get(user=actor, chat_id=chat_id)
    if not chat_selectors.member_may_moderate(member):
        raise _not_moderator()
    with transaction.atomic():
        ChatMember.objects.active().filter(chat_id=chat_id, user_id=bot.user_id).update(left_at=timezone.now())
        transaction.on_commit(lambda: selectors.chat_bots_refresh(chat_id))


# --- The updates queue --------------------------------------------------------------------------------------------


def person_json(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "display_name": str(user.display_name),
        "is_verified_educator": user.is_verified_educator,
    }


def chat_json(chat: Chat) -> dict[str, Any]:
    return {"id": chat.pk, "type": chat.kind, "title": chat.title}


def message_json(message: Message, *, chat: Chat, command: tuple[str, str] | None = None) -> dict[str, Any]:
    """A message as bots see it (in updates and in answers to sendMessage)."""
    data: dict[str, Any] = {
        "message_id": message.pk,
        "seq": message.seq,
        "chat": chat_json(chat),
        "from": person_json(message.author),
        "date": message.created_at.isoformat(),
        "text": message.body,
        "reply_to_seq": message.reply_to.seq if message.reply_to_id and message.reply_to else None,
        "buttons": message.buttons or [],
    }
    if message.edited_at:
        data["edit_date"] = message.edited_at.isoformat()
    if command is not None:
        data["command"], data["command_args"] = command
    return data


def command_parse(text: str, *, username: str) -> tuple[str, str] | None:
    """("start", "args") for "/start args" or "/start@this_bot args"; None
    for other text and for a command addressed to another bot."""
    match = _COMMAND.match(text.strip())
    if match is None:
        return None
    if match.group(2) and match.group(2).lower() != username.lower():
        return None
    return match.group(1).lower(), (match.group(3) or "").strip()


def message_hook(message: Message) -> None:
    """chats.extensions message hook (after commit): queue the message for
    every bot of its chat. Costs nothing for a message that is not a
    command outside direct chats, one cache read otherwise.
    Direct chats: every message; group chats: commands only. Messages of
    bots and of the system reach no bot. Never raises."""
    try:
        if message.kind == MessageKind.SYSTEM or message.author_id is None:
            return
        chat = message.chat
        # In other chats than direct ones bots hear commands only: the rest
        # of the messages (nearly all, and this runs for every one of them)
        # need no look-up at all.
        if chat.kind != ChatKind.DIRECT and not message.body.lstrip().startswith("/"):
            return
        bot_ids = selectors.chat_bot_ids(chat)
        if not bot_ids:
            return
        author = message.author
        if author is None:
            return
        bots = list(Bot.objects.filter(pk__in=bot_ids, is_active=True))
        if any(bot.user_id == message.author_id for bot in bots):
            return
        for bot in bots:
            command = command_parse(message.body, username=bot.username)
            if chat.kind != ChatKind.DIRECT and command is None:
                continue
            # A direct chat opened some other way than Start (e.g. from a
            # shared group) is no way round "only verified staff".
            if chat.kind == ChatKind.DIRECT and not selectors.user_may_start(user=author, bot=bot):
                continue
            update_create(
                bot=bot,
                kind=UpdateKind.COMMAND if command else UpdateKind.MESSAGE,
                chat_id=chat.pk,
                payload=message_json(message, chat=chat, command=command),
            )
    except Exception:
        logger.exception("bots: message %s not queued for its chat's bots", message.pk)


def update_create(*, bot: Bot, kind: str, chat_id: int | None, payload: dict[str, Any]) -> Update:
    """Queue an update for the bot with its next update_id (taken with a row
    update, so ids follow commit order within the bot). After commit: a
    long poll waiting for the bot wakes up; a webhook delivery or the
    built-in handler is enqueued."""
    handler = builtin.builtin_handler_for(bot)
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(last_update_id=F("last_update_id") + 1)
        update_id = Bot.objects.filter(pk=bot.pk).values_list("last_update_id", flat=True).get()
        update = Update.objects.create(bot=bot, update_id=update_id, kind=kind, chat_id=chat_id, payload=payload)
        if handler is not None:
            _on_commit_enqueue("builtin_update_process", update.pk)
        elif bot.webhook_url:
            delivery = WebhookDelivery.objects.create(update=update, bot=bot, next_attempt_at=timezone.now())
            _on_commit_enqueue("webhook_deliver", delivery.pk)
        bot_id = bot.pk
        transaction.on_commit(lambda: longpoll.wake(bot_id))
    return update


def _on_commit_enqueue(task_name: str, object_id: int, countdown: float | None = None) -> None:
    def enqueue() -> None:
        from bots import tasks

        try:
            getattr(tasks, task_name).apply_async((object_id,), countdown=countdown)
        except Exception:
            # The broker is away: the beat's sweep finds it (nothing is lost,
            # the row is in the database).
            logger.warning("bots: %s not enqueued (broker unavailable); the sweep will", task_name)

    transaction.on_commit(enqueue)


def updates_get(*, bot: Bot, offset: Any, limit: Any, timeout: Any = 0) -> tuple[list[Update], int]:
    """Confirm the updates before `offset` and return the pending ones from
    it (at most `limit`) with the clean timeout.

    Raises ApplicationError "webhook_active" (409) while a webhook is set,
    and "invalid" naming the field for a bad offset, limit or timeout."""
    offset = _int_field(offset, field="offset", low=None, high=None, default=None)
    limit = _int_field(limit, field="limit", low=1, high=100, default=100)
    timeout = _int_field(timeout, field="timeout", low=0, high=longpoll.max_timeout(), default=0)
    if bot.webhook_url:
        raise ApplicationError(
            _("A webhook is set: delete it before asking for updates."), code="webhook_active", status_code=409
        )
    if offset is not None:
        Update.objects.filter(bot=bot, update_id__lt=offset, confirmed_at__isnull=True).update(
            confirmed_at=timezone.now()
        )
    return selectors.updates_pending(bot=bot, offset=offset, limit=limit), timeout


def _int_field(value: Any, *, field: str, low: int | None, high: int | None, default: int | None) -> Any:
    if value is None or value == "":
        return default
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,18}", value.strip()):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise field_error(_("%(field)s must be a whole number.") % {"field": field}, field=field)
    if (low is not None and value < low) or (high is not None and value > high):
        raise field_error(
            _("%(field)s must be from %(low)s to %(high)s.") % {"field": field, "low": low, "high": high}, field=field
        )
    return value


# --- What a bot does ----------------------------------------------------------------------------------------------


def bot_api_rate_check(*, bot: Bot) -> None:
    """Count one Bot API call towards the bot's budget (BOT_API_RATE).

    Raises RateLimited."""
    rate_limit_hit(scope="bot_api", key=str(bot.pk), rate=getattr(settings, "BOT_API_RATE", "120/minute"))


def text_clean(text: Any, *, field: str = "text") -> str:
    if not isinstance(text, str) or not text.strip():
        raise field_error(_("The text is required."), field=field)
    text = text.strip()
    if len(text) > MESSAGE_MAX_LENGTH:
        raise field_error(
            _("A message may have at most %(limit)d characters.") % {"limit": MESSAGE_MAX_LENGTH},
            field=field,
            code="message_too_long",
        )
    return text


def buttons_clean(buttons: Any) -> list[list[dict[str, str]]]:
    """Inline buttons: up to 8 rows of up to 8 {"text", "callback_data"},
    text 1..64 characters, callback_data 1..64 bytes.

    Raises ApplicationError "invalid" (field "buttons")."""
    if buttons is None:
        return []

    def refuse(message: str) -> ApplicationError:
        return field_error(message, field="buttons")

    if not isinstance(buttons, list) or len(buttons) > BUTTON_ROWS_MAX:
        raise refuse(_("buttons must be a list of at most %(rows)d rows.") % {"rows": BUTTON_ROWS_MAX})
    clean: list[list[dict[str, str]]] = []
    for row in buttons:
        if not isinstance(row, list) or not row or len(row) > BUTTONS_PER_ROW_MAX:
            raise refuse(
                _("Each row of buttons must be a list of 1 to %(count)d buttons.") % {"count": BUTTONS_PER_ROW_MAX}
            )
        clean_row = []
        for button in row:
            if not isinstance(button, dict) or set(button) != {"text", "callback_data"}:
                raise refuse(_('Each button must be {"text": …, "callback_data": …}.'))
            text, data = button["text"], button["callback_data"]
            if not isinstance(text, str) or not text.strip() or len(text) > BUTTON_TEXT_MAX:
                raise refuse(_("A button's text must have 1 to %(limit)d characters.") % {"limit": BUTTON_TEXT_MAX})
            if not isinstance(data, str) or not data or len(data.encode()) > CALLBACK_DATA_MAX_BYTES:
                raise refuse(
                    _("A button's callback_data must have 1 to %(limit)d bytes.") % {"limit": CALLBACK_DATA_MAX_BYTES}
                )
            clean_row.append({"text": text.strip(), "callback_data": data})
        clean.append(clean_row)
    return clean


def _chat_id_clean(chat_id: Any) -> int:
    if isinstance(chat_id, str) and chat_id.isdigit():
        chat_id = int(chat_id)
    if not isinstance(chat_id, int) or isinstance(chat_id, bool) or chat_id <= 0:
        raise field_error(_("chat_id must be a chat's id."), field="chat_id")
    return chat_id


def chat_not_allowed() -> PermissionDenied:
    # The same answer for a chat that does not exist and one the bot is not
    # in, so that a bot learns nothing of other chats.
    return PermissionDenied(_("The bot is not a member of this chat."), code="chat_not_allowed")


def _bot_member_get(*, bot: Bot, chat_id: int) -> ChatMember:
    try:
        return chat_selectors.chat_member_get(user=bot.user, chat_id=chat_id)
    except NotFound:
        raise chat_not_allowed() from None


def bot_message_send(
    *, bot: Bot, chat_id: Any, text: Any, buttons: Any = None, reply_to_seq: Any = None
) -> tuple[Message, Chat]:
    """The bot writes to one of its chats, with inline buttons.

    Raises ApplicationError naming the field ("text", "buttons", "chat_id",
    "reply_to_seq"), PermissionDenied "chat_not_allowed" (not a member, or
    no such chat), "chat_left" (the person left the direct chat),
    "contact_not_allowed" (a child in safe mode the bot may not reach) and
    the chats' posting rules, RateLimited (BOT_CHAT_SEND_RATE per chat)."""
    chat_id = _chat_id_clean(chat_id)
    clean_text = text_clean(text)
    clean_buttons = buttons_clean(buttons)
    if reply_to_seq is not None and (not isinstance(reply_to_seq, int) or isinstance(reply_to_seq, bool)):
        raise field_error(_("reply_to_seq must be a message's seq."), field="reply_to_seq")
    member = _bot_member_get(bot=bot, chat_id=chat_id)
    chat = member.chat
    if chat.kind == ChatKind.DIRECT and not (
        ChatMember.objects.active().filter(chat=chat).exclude(user_id=bot.user_id).exists()
    ):
        raise PermissionDenied(_("The person has left the chat with the bot."), code="chat_left")
    now = timezone.now()
    chat_messages.posting_check(member=member, now=now)
    rate_limit_hit(
        scope="bot_send",
        key=f"{bot.pk}:{chat_id}",
        rate=getattr(settings, "BOT_CHAT_SEND_RATE", "20/minute"),
    )
    reply_to = None
    if reply_to_seq is not None:
        reply_to = Message.objects.filter(chat_id=chat_id, seq=reply_to_seq).first()
        if reply_to is None:
            raise field_error(_("The message replied to does not exist."), field="reply_to_seq")
    with transaction.atomic():
        message = chat_messages._message_create(
            chat=chat, author=bot.user, text=clean_text, reply_to=reply_to, buttons=clean_buttons
        )
    return message, chat


def bot_message_edit(*, bot: Bot, chat_id: Any, seq: Any, text: Any = None, buttons: Any = None) -> Message:
    """The bot changes the text and/or the buttons of its own message.

    Raises ApplicationError naming the field, PermissionDenied
    "chat_not_allowed", "not_author" (not the bot's message) and the chats'
    edit rules; NotFound for an unknown seq."""
    chat_id = _chat_id_clean(chat_id)
    if not isinstance(seq, int) or isinstance(seq, bool):
        raise field_error(_("seq must be a message's seq."), field="seq")
    if text is None and buttons is None:
        raise field_error(_("Give the new text or the new buttons."), field="text")
    clean_text = text_clean(text) if text is not None else None
    clean_buttons = buttons_clean(buttons) if buttons is not None else None
    _bot_member_get(bot=bot, chat_id=chat_id)
    message = Message.objects.filter(chat_id=chat_id, seq=seq).select_related("author", "reply_to").first()
    if message is None:
        raise NotFound(_("Not found."), code="message_not_found")
    if message.author_id != bot.user_id:
        raise PermissionDenied(_("Only the author may edit a message."), code="not_author")
    with transaction.atomic():
        if clean_text is not None:
            message = chat_content.message_edit(user=bot.user, chat_id=chat_id, seq=seq, body=clean_text)
        if clean_buttons is not None and clean_buttons != message.buttons:
            message.buttons = clean_buttons
            message.save(update_fields=["buttons"])
            chat_events.event_publish(
                chat=chat_id,
                event={"type": "message.updated", "message": chat_content.message_payload_full(message)},
            )
    return message


def callback_answer(*, bot: Bot, callback_query_id: Any, text: Any = None) -> Update:
    """The bot answers a button press; the text (optional, up to 200
    characters) is shown to the person who pressed it.

    Raises ApplicationError naming the field, NotFound for an unknown id."""
    if not isinstance(callback_query_id, str) or not callback_query_id:
        raise field_error(_("callback_query_id is required."), field="callback_query_id")
    if text is not None and (not isinstance(text, str) or len(text) > ANSWER_TEXT_MAX):
        raise field_error(
            _("The answer may have at most %(limit)d characters.") % {"limit": ANSWER_TEXT_MAX}, field="text"
        )
    update = Update.objects.filter(bot=bot, kind=UpdateKind.CALLBACK_QUERY, payload__id=callback_query_id).first()
    if update is None:
        raise NotFound(_("Not found."), code="callback_query_not_found")
    with transaction.atomic():
        if update.answered_at is None:
            Update.objects.filter(pk=update.pk).update(answered_at=timezone.now())
        if text:
            user_id = update.payload["from"]["id"]
            chat_events.user_event_publish(
                user_id=user_id,
                event={"type": "bot.answer", "chat": update.chat_id, "bot": bot.username, "text": text},
            )
    return update


def button_press(*, user: User, chat_id: int, seq: int, row: Any, column: Any) -> Update:
    """A person presses an inline button of a bot's message: the bot gets a
    callback_query update.

    Raises NotFound (not a member, no such message or button, or its bot
    left the chat)."""
    member = chat_selectors.chat_member_get(user=user, chat_id=chat_id)
    message = Message.objects.filter(chat_id=chat_id, seq=seq, deleted_at__isnull=True).first()
    if message is None or not message.buttons or message.author_id is None:
        raise NotFound()
    try:
        button = message.buttons[int(row)][int(column)]
    except (ValueError, TypeError, IndexError):
        raise NotFound() from None
    bot = Bot.objects.filter(user_id=message.author_id, is_active=True).first()
    if bot is None or not ChatMember.objects.active().filter(chat_id=chat_id, user_id=bot.user_id).exists():
        raise NotFound()
    rate_limit_hit(scope="bot_press", key=str(user.pk), rate=getattr(settings, "CHAT_SEND_RATE", "30/minute"))
    payload = {
        "id": f"{bot.pk}-{secrets.token_hex(8)}",
        "from": person_json(user),
        "message": message_json(message, chat=member.chat),
        "data": button["callback_data"],
    }
    return update_create(bot=bot, kind=UpdateKind.CALLBACK_QUERY, chat_id=chat_id, payload=payload)


# --- Webhooks -----------------------------------------------------------------------------------------------------


def webhook_set(*, bot: Bot, url: Any, secret: Any = None) -> Bot:
    """Deliver the bot's updates to `url` from now on (pending ones too),
    signed with `secret` (16 to 128 of A-Z a-z 0-9 _ -; made up when
    not given).

    Raises ApplicationError naming the field: "webhook_url_invalid",
    "webhook_host_unknown", "webhook_url_internal" (field "url"), "invalid"
    (field "secret")."""
    if not isinstance(url, str) or not url or len(url) > 500:
        raise field_error(_("url must be an http(s) URL of at most 500 characters."), field="url")
    if secret is None:
        secret = secrets.token_urlsafe(32)
    if not isinstance(secret, str) or not WEBHOOK_SECRET_PATTERN.match(secret):
        raise field_error(_("secret must have 16 to 128 characters: A-Z, a-z, 0-9, _ and -."), field="secret")
    try:
        network.target_resolve(url, allow_internal=bot.allow_internal_webhook)
    except network.WebhookUrlError as error:
        raise field_error(_webhook_error_text(error.code), field="url", code=error.code) from None
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(webhook_url=url, webhook_secret=secret)
        bot.webhook_url, bot.webhook_secret = url, secret
        now = timezone.now()
        pending = list(
            Update.objects.filter(bot=bot, confirmed_at__isnull=True, delivery__isnull=True).order_by("update_id")
        )
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(update=update, bot=bot, next_attempt_at=now) for update in pending]
        )
        for delivery in deliveries:
            _on_commit_enqueue("webhook_deliver", delivery.pk)
    return bot


def _webhook_error_text(code: str) -> str:
    if code == "webhook_url_internal":
        return _(
            "This address is on an internal network (loopback, private, link-local or metadata); "
            "only an administrator may allow it."
        )
    if code == "webhook_host_unknown":
        return _("The webhook's host name does not resolve.")
    return _("url must be an http(s) URL without user name or password.")


def webhook_delete(*, bot: Bot) -> None:
    """Stop webhook delivery; updates not yet delivered (parked ones too)
    wait for getUpdates again."""
    with transaction.atomic():
        Bot.objects.filter(pk=bot.pk).update(webhook_url="", webhook_secret="")
        bot.webhook_url = bot.webhook_secret = ""
        WebhookDelivery.objects.filter(bot=bot).exclude(state=DeliveryState.DELIVERED).delete()


def signature(*, secret: str, body: bytes) -> str:
    """The X-Parta-Signature header: "sha256=" and the hex HMAC-SHA256 of the
    exact body bytes under the webhook secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retry_delay(attempts: int) -> datetime.timedelta:
    base = float(getattr(settings, "BOT_WEBHOOK_RETRY_BASE_SECONDS", 10))
    return datetime.timedelta(seconds=min(base * 2 ** (attempts - 1), 6 * 3600))


def webhook_deliver(*, delivery_id: int) -> str:
    """One attempt at delivering one update to the bot's webhook; returns
    the outcome ("delivered", "retry", "parked", "skipped").

    Safe to run twice at once: an attempt is claimed with a conditional
    update of `attempts`, and the HTTP request is made outside any
    transaction. The address is checked again (DNS rebinding). A failure
    schedules the next attempt after BOT_WEBHOOK_RETRY_BASE_SECONDS * 2^n;
    after BOT_WEBHOOK_MAX_ATTEMPTS it is parked (the update stays)."""
    delivery = WebhookDelivery.objects.select_related("bot", "update").filter(pk=delivery_id).first()
    now = timezone.now()
    if delivery is None or delivery.state != DeliveryState.PENDING:
        return "skipped"
    if delivery.next_attempt_at and delivery.next_attempt_at > now + datetime.timedelta(seconds=1):
        return "skipped"
    bot = delivery.bot
    if not bot.webhook_url:
        delivery.delete()
        return "skipped"
    lease = now + datetime.timedelta(seconds=60)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, state=DeliveryState.PENDING, attempts=delivery.attempts
    ).update(attempts=F("attempts") + 1, next_attempt_at=lease, last_attempt_at=now)
    if not claimed:
        return "skipped"
    attempts = delivery.attempts + 1
    body = json.dumps(selectors.update_as_json(delivery.update), ensure_ascii=False).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Parta-Bot-Webhook/1",
        SIGNATURE_HEADER: signature(secret=bot.webhook_secret, body=body),
        "X-Parta-Update-Id": str(delivery.update.update_id),
    }
    error = ""
    try:
        target = network.target_resolve(bot.webhook_url, allow_internal=bot.allow_internal_webhook)
        result = network.post(
            target, body=body, headers=headers, timeout=float(getattr(settings, "BOT_WEBHOOK_TIMEOUT_SECONDS", 10))
        )
        if 200 <= result.status < 300:
            done = timezone.now()
            with transaction.atomic():
                WebhookDelivery.objects.filter(pk=delivery.pk).update(
                    state=DeliveryState.DELIVERED, delivered_at=done, last_error="", next_attempt_at=None
                )
                Update.objects.filter(pk=delivery.update_id, confirmed_at__isnull=True).update(confirmed_at=done)
            return "delivered"
        error = "HTTP " + str(result.status)
    except network.WebhookUrlError as refused:
        error = refused.code
    except Exception as failure:
        error = type(failure).__name__ + ": " + str(failure)[:200]
    max_attempts = int(getattr(settings, "BOT_WEBHOOK_MAX_ATTEMPTS", 6))
    if attempts >= max_attempts:
        WebhookDelivery.objects.filter(pk=delivery.pk).update(
            state=DeliveryState.PARKED, last_error=error[:500], next_attempt_at=None
        )
        logger.warning("bots: webhook delivery %s parked after %s attempts", delivery.pk, attempts)
        return "parked"
    delay = _retry_delay(attempts)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(last_error=error[:500], next_attempt_at=now + delay)
    _on_commit_enqueue("webhook_deliver", delivery.pk, countdown=delay.total_seconds())
    return "retry"


def webhook_deliveries_retry(*, delivery_ids: list[int], actor: User | None = None) -> int:
    """An administrator sends parked deliveries again (attempts from zero).
    Returns how many."""
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.filter(pk__in=delivery_ids, state=DeliveryState.PARKED).values_list("pk", flat=True)
        )
        WebhookDelivery.objects.filter(pk__in=ids).update(
            state=DeliveryState.PENDING, attempts=0, next_attempt_at=timezone.now()
        )
        for pk in ids:
            _on_commit_enqueue("webhook_deliver", pk)
    return len(ids)


def webhook_deliveries_sweep(*, now: datetime.datetime | None = None) -> int:
    """Celery beat: enqueue deliveries whose attempt is overdue (the broker
    lost the task, or was down when it was made), and built-in bots' updates
    left unprocessed. Returns how many were enqueued."""
    now = now or timezone.now()
    due = list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now).values_list(
            "pk", flat=True
        )[:1000]
    )
    with transaction.atomic():
        for pk in due:
            _on_commit_enqueue("webhook_deliver", pk)
    return len(due)


def updates_purge(*, now: datetime.datetime | None = None) -> int:
    """Celery beat, hourly: forget updates confirmed more than
    BOT_UPDATES_KEEP_DAYS (7) days ago, with their deliveries. Returns how
    many."""
    now = now or timezone.now()
    keep = datetime.timedelta(days=int(getattr(settings, "BOT_UPDATES_KEEP_DAYS", 7)))
    deleted, _by_model = Update.objects.filter(confirmed_at__lt=now - keep).delete()
    return deleted


# --- Built-in bots ------------------------------------------------------------------------------------------------


def builtin_update_process(*, update_pk: int) -> bool:
    """Hand one update of a built-in bot to its handler, once: the update is
    claimed (confirmed) first and released again if the handler fails, so a
    retried task neither skips nor repeats it. Returns whether it ran."""
    update = Update.objects.select_related("bot", "bot__user").filter(pk=update_pk).first()
    if update is None:
        return False
    handler = builtin.builtin_handler_for(update.bot)
    if handler is None:
        return False
    if not Update.objects.filter(pk=update.pk, confirmed_at__isnull=True).update(confirmed_at=timezone.now()):
        return False
    try:
        handler(update.bot, update)
    except Exception:
        Update.objects.filter(pk=update.pk).update(confirmed_at=None)
        raise
    return True
