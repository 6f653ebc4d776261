"""Group names and event payloads of the chat WebSocket. Every event is
serialised once per chat (not once per socket) and published only after the
transaction that made it has committed."""

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from chats.models import Chat, Message

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
    return {
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


def event_publish(*, chat: Chat | int, event: dict[str, Any]) -> None:
    """Publish an event to every open socket of the chat once the current
    transaction commits. A channel layer failure loses nothing: the event's
    data is in the database and clients catch up by seq on reconnect."""
    chat_id = chat if isinstance(chat, int) else chat.pk
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(  # type: ignore[union-attr]
                chat_group_name(chat_id), {"type": "chat.event", "text": text}
            )
        except Exception:
            logger.warning("chat event not published (channel layer unavailable); clients will catch up")

    transaction.on_commit(send)


def user_event_publish(*, user_id: int, event: dict[str, Any]) -> None:
    """An event for every socket of one person (e.g. "you were added")."""
    from accounts.events import user_group_name

    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(  # type: ignore[union-attr]
                user_group_name(user_id), {"type": "user.event", "text": text}
            )
        except Exception:
            logger.warning("user event not published (channel layer unavailable)")

    transaction.on_commit(send)
