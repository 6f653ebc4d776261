"""Realistic sample exports of the old messenger (SPEC §9.1) for tests, the
benchmark and demonstrations: class chats of parents and of students, a
staff chat, clubs; Russian names; teachers owning the chats of their class;
history in the current academic year. Deterministic for a given seed."""

import datetime
import random
from typing import Any

from django.utils import timezone

from accounts.models import User
from accounts.names import display_name_skeleton
from organisations.models import Membership, Organisation, Role
from organisations.selectors import current_academic_year

FIRST_NAMES_FEMALE = ["Анна", "Мария", "Елена", "Ольга", "Наталья", "Ирина", "Татьяна", "Светлана", "Юлия", "Дарья"]
FIRST_NAMES_MALE = ["Иван", "Сергей", "Андрей", "Дмитрий", "Алексей", "Михаил", "Пётр", "Николай", "Артём", "Егор"]
LAST_NAMES = ["Иванов", "Петров", "Сидоров", "Кузнецов", "Смирнов", "Попов", "Волков", "Морозов", "Соколов", "Лебедев"]
LETTERS = "АБВГ"
PHRASES = [
    "Добрый вечер! Завтра уроки по расписанию.",
    "Напоминаю: в пятницу родительское собрание в 18:00.",
    "Домашнее задание выложено в дневнике.",
    "Спасибо!",
    "Подскажите, во сколько заканчивается экскурсия?",
    "Не забудьте сменную обувь.",
    "Сбор на подарки учителям до конца недели.",
    "Фотографии с праздника пришлю позже.",
    "Завтра физкультура на улице, оденьте детей потеплее.",
    "Кто может помочь с украшением класса?",
]

PHONE_PREFIX = "+7997"


def _name(generator: random.Random) -> tuple[str, str]:
    if generator.random() < 0.5:
        return generator.choice(FIRST_NAMES_FEMALE), generator.choice(LAST_NAMES) + "а"
    return generator.choice(FIRST_NAMES_MALE), generator.choice(LAST_NAMES)


def sample_export(
    *,
    inn: str,
    chats: int = 10,
    members: int = 30,
    messages: int = 100,
    seed: int = 1,
    phone_offset: int = 0,
    today: datetime.date | None = None,
) -> dict[str, Any]:
    """An export with `chats` conversations of `members` members each
    (the owner included) and `messages` messages each, all written in the
    current academic year before `today`. Phone numbers are +7997NNNNNNN from
    `phone_offset` on, so that several samples in one database do not
    collide. Every profile has a phone number; teachers are confirmed."""
    generator = random.Random(seed)
    today = today or timezone.localdate()
    year = current_academic_year(today)
    start = datetime.datetime(year, 9, 1, 9, tzinfo=datetime.UTC)
    end = datetime.datetime.combine(today, datetime.time(9), tzinfo=datetime.UTC)
    span = max(3600, int((end - start).total_seconds()))
    profiles: list[dict[str, Any]] = []
    next_id = [100]

    def profile(role: str) -> int:
        next_id[0] += 1
        first_name, last_name = _name(generator)
        number = phone_offset + len(profiles) + 1
        profiles.append(
            {
                "id": next_id[0],
                "first_name": first_name,
                "last_name": last_name,
                "phone": f"{PHONE_PREFIX}{number:07d}",
                "role": role,
                "confirmed": role in ("admin", "teacher", "staff"),
            }
        )
        return next_id[0]

    conversations = []
    teacher = 0
    for index in range(chats):
        grade, letter = 1 + (index // 2) % 11, LETTERS[(index // 22) % len(LETTERS)]
        kind = "родители" if index % 2 == 0 else "ученики"
        title = f"{grade}{letter} — {kind}"
        if index % 2 == 0:
            teacher = profile("teacher")
        member_role = "parent" if kind == "родители" else "student"
        member_ids = [teacher] + [profile(member_role) for _ in range(members - 1)]
        admin_ids = [teacher]
        if members > 3:
            admin_ids.append(member_ids[1])  # the parents' committee chair keeps moderating
        base = int(start.timestamp()) + generator.randrange(span // 2)
        history = []
        for number in range(messages):
            author = teacher if number % 3 == 0 else generator.choice(member_ids)
            history.append(
                {
                    "id": number + 1,
                    "date": base + number * max(1, (span // 2) // max(1, messages)),
                    "from_id": author,
                    "text": generator.choice(PHRASES),
                }
            )
        conversations.append(
            {
                "peer_id": 2000000001 + phone_offset + index,
                "chat_settings": {"title": title, "owner_id": teacher, "admin_ids": admin_ids},
                "members": [
                    {
                        "member_id": member_id,
                        "is_owner": member_id == teacher,
                        "is_admin": member_id in admin_ids,
                        "join_date": int(start.timestamp()),
                    }
                    for member_id in member_ids
                ],
                "messages": history,
            }
        )
    return {
        "organisation": {"inn": inn},
        "exported_at": int(end.timestamp()),
        "profiles": profiles,
        "conversations": conversations,
    }


def sample_accounts_create(*, export: dict[str, Any], organisation: Organisation, share: float = 0.7) -> int:
    """Accounts for the export's people, as a school that already uses the
    portal has them: every teacher (a teacher of the organisation) and
    `share` of the others (parents and students of it); the rest will be
    invited by SMS. Bulk inserts, for the benchmark's sake; returns how many
    accounts were created."""
    generator = random.Random(len(export["profiles"]))
    roles = {"teacher": Role.TEACHER, "admin": Role.ADMINISTRATOR, "staff": Role.STAFF}
    users = []
    for item in export["profiles"]:
        is_staff = item["role"] in roles
        if not is_staff and generator.random() >= share:
            continue
        users.append(
            (
                User(
                    phone=item["phone"],
                    first_name=item["first_name"],
                    last_name=item["last_name"],
                    name_skeleton=display_name_skeleton(item["first_name"], item["last_name"]),
                ),
                roles.get(item["role"], Role.PARENT if item["role"] == "parent" else Role.STUDENT),
            )
        )
    created = User.objects.bulk_create([user for user, _role in users], batch_size=500)
    by_phone = dict(User.objects.filter(phone__in=[str(user.phone) for user in created]).values_list("phone", "pk"))
    Membership.objects.bulk_create(
        [Membership(user_id=by_phone[str(user.phone)], organisation=organisation, role=role) for user, role in users],
        batch_size=500,
    )
    return len(created)
