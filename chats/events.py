"""Topic names and event payloads of the chat WebSocket. Every event is
serialised once per chat (not once per socket) and published through
common.realtime only after the transaction that made it has committed."""

import json
import logging
from typing import Any

from django.db import transaction

from chats.models import Chat, Message
from common import realtime

logger = logging.getLogger(__name__)


def chat_group_name(chat_id: int) -> str:
    return f"chat.{chat_id}"


def author_payload(user: Any) -> dict[str, Any] | None:
    if user is None:
        return None
    return {
        "id": user.pk,
        "display_name": str(user.display_name),
        "is_verified_educator": user.is_verified_educator,
        "is_name_flagged": user.is_name_flagged,
    }


def message_payload(message: Message) -> dict[str, Any]:
    """A message as clients see it (REST and WebSocket alike). A deleted
    message keeps its place (seq) but loses its text."""
    is_deleted = message.deleted_at is not None
    payload: dict[str, Any] = {
        "id": message.pk,
        "chat": message.chat_id,
        "seq": message.seq,
        "kind": message.kind,
        "author": author_payload(message.author),
        "client_id": message.client_id or None,
        "body": "" if is_deleted else message.body,
        "reply_to": message.reply_to.seq if message.reply_to_id and message.reply_to else None,
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "is_deleted": is_deleted,
        "requires_acknowledgement": message.requires_acknowledgement,
    }
    if message.buttons and not is_deleted:
        # A bot's inline buttons, only on messages that have them: rows of
        # {"text", "callback_data"}.
        payload["buttons"] = message.buttons
    return payload


def frames_publish(items: list[tuple[str, dict[str, Any]]], *, what: str) -> None:
    """Publish (topic, event) pairs once the current transaction commits, in
    one round trip to Redis. A Redis failure loses nothing: the events' data
    is in the database and clients catch up by seq on reconnect."""
    if not items:
        return
    texts = [(topic, json.dumps(event, ensure_ascii=False, separators=(",", ":"))) for topic, event in items]

    def send() -> None:
        try:
            realtime.publish_many(texts)
        except Exception as error:
            reason = type(error).__name__
            logger.warning("%s not published (Redis unavailable: %s); clients will catch up", what, reason)

    transaction.on_commit(send)


def event_publish(*, chat: Chat | int, event: dict[str, Any]) -> None:
    """Publish an event to every open socket of the chat after commit."""
    chat_id = chat if isinstance(chat, int) else chat.pk
    frames_publish([(chat_group_name(chat_id), event)], what="chat event")


def user_event_publish(*, user_id: int, event: dict[str, Any]) -> None:
    """An event for every socket of one person (e.g. "you were added")."""
    from accounts.events import user_group_name

    frames_publish([(user_group_name(user_id), event)], what="user event")


def user_events_publish(items: list[tuple[int, dict[str, Any]]], *, what: str = "user events") -> None:
    """user_event_publish for many people at once: one callback after commit
    and one round trip to Redis."""
    from accounts.events import user_group_name

    frames_publish([(user_group_name(user_id), event) for user_id, event in items], what=what)
