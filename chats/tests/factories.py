"""Factories for the chats tests. Chats are made the way real use makes them:
class and staff chats by the directory sync, direct and group chats by the
services. `EventLog` records what would be published to sockets."""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import connection

from accounts.models import User
from chats import events
from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message
from chats.services import messages, sync
from chats.services.sync import chats_sync
from organisations.models import StudyGroup
from organisations.tests.factories import SchoolWithClass, make_school_with_class


@dataclass
class EventLog:
    """Events of chats.events, as they would go out after commit."""

    chat_events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    user_events: list[tuple[int, dict[str, Any]]] = field(default_factory=list)

    def chat_event_types(self) -> list[str]:
        return [event["type"] for _chat, event in self.chat_events]

    def clear(self) -> None:
        self.chat_events.clear()
        self.user_events.clear()


def event_log_install(monkeypatch: pytest.MonkeyPatch) -> EventLog:
    log = EventLog()

    def chat_event(*, chat: Chat | int, event: dict[str, Any]) -> None:
        log.chat_events.append((chat if isinstance(chat, int) else chat.pk, event))

    def user_event(*, user_id: int, event: dict[str, Any]) -> None:
        log.user_events.append((user_id, event))

    def user_events(items: list[tuple[int, dict[str, Any]]]) -> None:
        log.user_events.extend(items)

    monkeypatch.setattr(events, "event_publish", chat_event)
    monkeypatch.setattr(events, "user_event_publish", user_event)
    monkeypatch.setattr(sync, "_user_events_publish", user_events)
    monkeypatch.setattr(events, "user_events_publish", lambda items, **options: user_events(items))
    return log


def directory_changes_forget() -> None:
    """organisations.extensions keeps the pending directory change on the
    connection until its transaction commits; a test's transaction never
    commits, so a later test would otherwise never see its hooks run."""
    connection.__dict__.pop("_parta_directory_changes", None)


@dataclass
class SchoolWithChats(SchoolWithClass):
    students_chat: Chat | None = None
    parents_chat: Chat | None = None
    staff_chat: Chat | None = None


def class_chats(group: StudyGroup) -> dict[str, Chat]:
    return {chat.kind: chat for chat in Chat.objects.filter(study_group=group)}


def make_school_with_chats(**fields: Any) -> SchoolWithChats:
    """make_school_with_class, then the sync: its class and staff chats."""
    world = make_school_with_class(**fields)
    chats_sync(organisation_ids=[world.school.pk])
    chats = class_chats(world.group)
    return SchoolWithChats(
        school=world.school,
        group=world.group,
        administrator=world.administrator,
        teacher=world.teacher,
        students=world.students,
        parents=world.parents,
        students_chat=chats[ChatKind.CLASS_STUDENTS],
        parents_chat=chats[ChatKind.CLASS_PARENTS],
        staff_chat=Chat.objects.get(organisation=world.school, kind=ChatKind.STAFF),
    )


def make_group_chat(*, owner: User, members: list[User], title: str = "Кружок робототехники") -> Chat:
    """A group chat stored directly (no visibility or safe-mode checks): for
    tests that need a chat to exist before a rule changes."""
    chat = Chat.objects.create(kind=ChatKind.GROUP, title=title, created_by=owner)
    ChatMember.objects.create(chat=chat, user=owner, role=MemberRole.OWNER)
    for member in members:
        ChatMember.objects.create(chat=chat, user=member)
    return chat


def make_direct_chat(first: User, second: User) -> Chat:
    """A direct chat stored directly, like one made while the rules allowed it."""
    low, high = sorted((first.pk, second.pk))
    chat = Chat.objects.create(kind=ChatKind.DIRECT, direct_key=f"{low}:{high}", created_by=first)
    ChatMember.objects.create(chat=chat, user=first)
    ChatMember.objects.create(chat=chat, user=second)
    return chat


def send(user: User, chat: Chat, body: str = "Добрый день!", client_id: str = "", **fields: Any) -> Message:
    message, _created = messages.message_send(user=user, chat_id=chat.pk, body=body, client_id=client_id, **fields)
    assert isinstance(message, Message)
    return message


def active_member_ids(chat: Chat) -> set[int]:
    return set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True))


def active_roles(chat: Chat) -> dict[int, str]:
    return dict(ChatMember.objects.active().filter(chat=chat).values_list("user_id", "role"))
