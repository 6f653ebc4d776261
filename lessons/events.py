"""Channel layer group names and events of lessons, published only after
the transaction that made them commits.

- Every open portal socket of a person (accounts' "user.<id>" group, which
  the chat WebSocket joins) gets "meeting.notification" when a meeting they
  are invited to is scheduled, changed or cancelled, or a reminder is due.
- The call's signalling side listens on `meeting_group_name(occurrence_id)`
  for "lobby.changed", "participant.admitted", "participant.removed" and
  "meeting.cancelled", so that it can let people in and drop them.
"""

import json
import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

NOTIFICATION = "meeting.notification"
LOBBY_CHANGED = "lobby.changed"
PARTICIPANT_ADMITTED = "participant.admitted"
PARTICIPANT_REMOVED = "participant.removed"
MEETING_CANCELLED = "meeting.cancelled"


def meeting_group_name(occurrence_id: int) -> str:
    """The group of one occurrence's call ("lessons.occurrence.17"): ASCII,
    well under the channel layer's 100 characters."""
    return "lessons.occurrence." + str(int(occurrence_id))


def occurrence_event_publish(*, occurrence_id: int, event: dict[str, Any]) -> None:
    """After commit, an event for the signalling side of one occurrence. A
    channel layer failure is logged: the state is in the database and the
    signalling side checks `participant_may_be_in_call` on every action."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))

    def send() -> None:
        try:
            layer = get_channel_layer()
            if layer is not None:
                async_to_sync(layer.group_send)(
                    meeting_group_name(occurrence_id), {"type": "lessons.event", "text": text}
                )
        except Exception:
            logger.warning("lessons event not published (channel layer unavailable)")

    transaction.on_commit(send)


def notifications_publish(*, user_ids: list[int], payload: dict[str, Any]) -> None:
    """After commit, "meeting.notification" to every open socket of each person."""
    from chats.events import user_event_publish

    event = {"type": NOTIFICATION, **payload}
    for user_id in user_ids:
        user_event_publish(user_id=user_id, event=event)
