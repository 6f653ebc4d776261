"""Factories of the migration tests: a school with a teacher who owns old
chats, and exports built from small pieces."""

import datetime
import json
from typing import Any

from django.utils import timezone

from accounts.models import User
from chats.models import Chat, ChatMember, Message
from common.models import AuditEvent
from migration.models import Invitation, LegacyChat, LegacyNotice
from organisations.models import Organisation, Role
from organisations.selectors import current_academic_year
from organisations.tests.factories import make_member, make_organisation, make_user, next_phone


def state() -> tuple[int, ...]:
    """How many of everything an import writes: a refused import or a dry
    run leaves it the same."""
    return (
        Chat.objects.count(),
        ChatMember.objects.count(),
        Message.objects.count(),
        LegacyChat.objects.count(),
        LegacyNotice.objects.count(),
        Invitation.objects.count(),
        User.objects.count(),
        AuditEvent.objects.count(),
    )


def this_year_date(day: int = 10) -> int:
    """A moment in the current academic year (Unix seconds)."""
    year = current_academic_year()
    return int(datetime.datetime(year, 9, day, 12, tzinfo=datetime.UTC).timestamp())


def last_year_date() -> int:
    year = current_academic_year() - 1
    return int(datetime.datetime(year, 10, 1, 12, tzinfo=datetime.UTC).timestamp())


def profile(profile_id: int, *, phone: str | None, role: str = "parent", confirmed: bool = False, **extra: Any) -> dict:
    item = {
        "id": profile_id,
        "first_name": extra.pop("first_name", "Анна"),
        "last_name": extra.pop("last_name", f"Петрова{profile_id}"),
        "role": role,
        "confirmed": confirmed,
        **extra,
    }
    if phone is not None:
        item["phone"] = phone
    return item


def conversation(
    peer_id: int,
    *,
    owner_id: int,
    member_ids: list[int],
    admin_ids: list[int] | None = None,
    messages: list[dict] | None = None,
    title: str = "7Б — родители",
) -> dict:
    admin_ids = [owner_id] if admin_ids is None else admin_ids
    item: dict[str, Any] = {
        "peer_id": peer_id,
        "chat_settings": {"title": title, "owner_id": owner_id, "admin_ids": admin_ids},
        "members": [
            {
                "member_id": member_id,
                "is_owner": member_id == owner_id,
                "is_admin": member_id in admin_ids,
                "join_date": this_year_date(1),
            }
            for member_id in [owner_id, *member_ids]
        ],
    }
    if messages is not None:
        item["messages"] = messages
    return item


def message(message_id: int, *, from_id: int, text: str, date: int | None = None) -> dict:
    return {
        "id": message_id,
        "date": date if date is not None else this_year_date() + message_id,
        "from_id": from_id,
        "text": text,
    }


def export(*, organisation: Organisation, profiles: list[dict], conversations: list[dict]) -> dict:
    return {
        "organisation": {"inn": organisation.inn},
        "exported_at": int(timezone.now().timestamp()),
        "profiles": profiles,
        "conversations": conversations,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


class School:
    """A school with a teacher (profile 101), a parent with an account
    (102), a parent without one (103, invited by SMS)."""

    def __init__(self) -> None:
        self.organisation = make_organisation()
        self.teacher = make_member(organisation=self.organisation, role=Role.TEACHER)
        self.parent = make_member(organisation=self.organisation, role=Role.PARENT)
        self.new_parent_phone = next_phone()

    def profiles(self) -> list[dict]:
        return [
            profile(
                101,
                phone=str(self.teacher.phone),
                role="teacher",
                confirmed=True,
                first_name="Мария",
                last_name="Иванова",
            ),
            profile(102, phone=str(self.parent.phone), role="parent"),
            profile(103, phone=self.new_parent_phone, role="parent", first_name="Ольга", last_name="Смирнова"),
        ]

    def chat(self, peer_id: int = 2000000001, **kwargs: Any) -> dict:
        kwargs.setdefault("member_ids", [102, 103])
        kwargs.setdefault(
            "messages",
            [message(1, from_id=101, text="Добрый вечер!"), message(2, from_id=102, text="Спасибо!")],
        )
        return conversation(peer_id, owner_id=101, **kwargs)

    def export(self, *conversations: dict, profiles: list[dict] | None = None) -> dict:
        return export(
            organisation=self.organisation,
            profiles=profiles if profiles is not None else self.profiles(),
            conversations=list(conversations) or [self.chat()],
        )


def user_by_phone(phone: str) -> User | None:
    return User.objects.filter(phone=phone).first()


__all__ = ["make_member", "make_organisation", "make_user"]
