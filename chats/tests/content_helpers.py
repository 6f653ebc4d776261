"""Shared pieces of the content tests (edits, reactions, pins, polls,
attachments, search): chats made directly, and a recorder of what reaches
the channel layer after commit."""

import io
import json
from typing import Any

import pytest
from PIL import Image

from accounts.models import User
from chats import events
from chats.models import Chat, ChatKind, ChatMember, MemberRole


def make_chat(
    *,
    members: tuple[User, ...] = (),
    moderators: tuple[User, ...] = (),
    kind: str = ChatKind.GROUP,
    title: str = "7Б — ученики",
    **fields: Any,
) -> Chat:
    chat = Chat.objects.create(kind=kind, title=title, **fields)
    for user in moderators:
        ChatMember.objects.create(chat=chat, user=user, role=MemberRole.MODERATOR)
    for user in members:
        ChatMember.objects.create(chat=chat, user=user, role=MemberRole.MEMBER)
    return chat


class EventRecorder:
    """Stands in for Redis: keeps what event_publish sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def publish_many(self, items: Any) -> None:
        self.sent.extend((topic, json.loads(text)) for topic, text in items)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for _group, event in self.sent]

    def types(self) -> list[str]:
        return [event["type"] for event in self.events]


def events_recorded(monkeypatch: pytest.MonkeyPatch) -> EventRecorder:
    """Put an EventRecorder in place of Redis (for a fixture)."""
    recorder = EventRecorder()
    monkeypatch.setattr(events.realtime, "publish_many", recorder.publish_many)
    return recorder


def image_bytes(
    *, size: tuple[int, int] = (800, 600), image_format: str = "JPEG", exif: bool = False, mode: str = "RGB"
) -> bytes:
    """A picture; with `exif`, a camera's EXIF with a GPS position and the
    "rotate 90°" orientation."""
    picture = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128))
    options: dict[str, Any] = {}
    if exif:
        data = Image.Exif()
        data[0x010F] = "PhoneMaker"
        data[0x0110] = "Phone 15"
        data[0x0112] = 6  # rotate 90° clockwise to display
        gps = data.get_ifd(0x8825)
        gps[1] = "N"
        gps[2] = (55.0, 45.0, 21.0)
        gps[3] = "E"
        gps[4] = (37.0, 37.0, 4.0)
        options["exif"] = data.tobytes()
    output = io.BytesIO()
    picture.save(output, format=image_format, **options)
    return output.getvalue()
