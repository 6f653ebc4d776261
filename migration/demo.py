"""Demo of the migration bot for `manage.py seed_demo`: the bot «Перенос
чатов» and a kept export of the old messenger for school No. 1 with three
old chats of the verified demo teacher (two to move, one last year's that
cannot be), so that after `make run` the teacher can start the bot and move
them. Idempotent: the bot is found by its username, and an export already
kept for the school (the demo's, or a real upload) is left as it is."""

import datetime
import json
from typing import Any

from django.utils import timezone

from migration.bot import migration_bot_ensure
from migration.export import export_parse
from migration.models import LegacyExport
from migration.services import legacy_export_keep
from organisations.demo import DemoData, DemoStep
from organisations.selectors import current_academic_year

# Old messenger ids of the demo (peer ids of group chats start at 2·10⁹).
PEER_PARENTS = 2000000701
PEER_ROBOTICS = 2000000702
PEER_LAST_YEAR = 2000000703
# Parents who have no account yet: they get an SMS invitation on the move.
NEW_PARENTS = [("Светлана", "Орлова", "+79000000101"), ("Игорь", "Зайцев", "+79000000102")]


def _date(days_ago: float) -> int:
    """A moment `days_ago` before now, but inside the current academic year."""
    year_start = datetime.datetime(current_academic_year(), 9, 1, 9, tzinfo=datetime.UTC)
    moment = max(timezone.now() - datetime.timedelta(days=days_ago), year_start + datetime.timedelta(hours=days_ago))
    return int(moment.timestamp())


def demo_export(data: DemoData) -> dict[str, Any]:
    """The demo school's export in the format of SPEC §9.1."""
    teacher = data["teacher_verified"]
    parent = data["parent"]
    students = data["students_7b"]
    profiles: list[dict[str, Any]] = [
        {
            "id": 1,
            "first_name": teacher.first_name,
            "last_name": teacher.last_name,
            "phone": str(teacher.phone),
            "role": "teacher",
            "confirmed": True,
        },
        {
            "id": 2,
            "first_name": parent.first_name,
            "last_name": parent.last_name,
            "phone": str(parent.phone),
            "role": "parent",
        },
    ]
    for number, (first_name, last_name, phone) in enumerate(NEW_PARENTS, start=3):
        profiles.append(
            {"id": number, "first_name": first_name, "last_name": last_name, "phone": phone, "role": "parent"}
        )
    student_ids = []
    for number, student in enumerate(students[:2], start=10):
        profiles.append(
            {
                "id": number,
                "first_name": student.first_name,
                "last_name": student.last_name,
                "phone": str(student.phone),
                "role": "student",
            }
        )
        student_ids.append(number)

    def members(ids: list[int]) -> list[dict[str, Any]]:
        return [{"member_id": pk, "is_owner": pk == 1, "is_admin": pk == 1} for pk in [1, *ids]]

    last_year = int(datetime.datetime(current_academic_year() - 1, 10, 5, 15, tzinfo=datetime.UTC).timestamp())
    conversations = [
        {
            "peer_id": PEER_PARENTS,
            "chat_settings": {"title": "7Б — родители (ВКМ)", "owner_id": 1, "admin_ids": [1]},
            "members": members([2, 3, 4]),
            "messages": [
                {"id": 1, "date": _date(20), "from_id": 1, "text": "Добрый вечер! Завтра уроки по расписанию."},
                {"id": 2, "date": _date(19.9), "from_id": 2, "text": "Спасибо, Анна Сергеевна!"},
                {"id": 3, "date": _date(6), "from_id": 1, "text": "Напоминаю: в пятницу собрание в 18:30."},
                {"id": 4, "date": _date(5.9), "from_id": 3, "text": "Подскажите, в каком кабинете?"},
                {"id": 5, "date": _date(5.8), "from_id": 1, "text": "В кабинете 204."},
            ],
        },
        {
            "peer_id": PEER_ROBOTICS,
            "chat_settings": {"title": "Кружок робототехники", "owner_id": 1, "admin_ids": [1]},
            "members": members(student_ids),
            "messages": [
                {"id": 6, "date": _date(10), "from_id": 1, "text": "Ребята, в среду собираем манипулятор."},
                {"id": 7, "date": _date(9.9), "from_id": student_ids[0], "text": "Хорошо!"}
                if student_ids
                else {"id": 7, "date": _date(9.9), "from_id": 1, "text": "Приходите все."},
            ],
        },
        {
            "peer_id": PEER_LAST_YEAR,
            "chat_settings": {"title": "Экскурсия в Коломенское", "owner_id": 1, "admin_ids": [1]},
            "members": members([2]),
            "messages": [{"id": 8, "date": last_year, "from_id": 1, "text": "Сбор у школы в 9:00."}],
        },
    ]
    return {
        "organisation": {"inn": data["school_1"].inn},
        "exported_at": int(timezone.now().timestamp()),
        "profiles": profiles,
        "conversations": conversations,
    }


def seed_migration_bot(data: DemoData) -> None:
    bot = migration_bot_ensure()
    data.add("bot_" + bot.username, bot)
    school = data["school_1"]
    if not LegacyExport.objects.filter(organisation=school).exists():
        export = export_parse(json.dumps(demo_export(data), ensure_ascii=False))
        legacy_export_keep(export=export, organisation=school)


DEMO_STEPS: list[DemoStep] = [seed_migration_bot]
