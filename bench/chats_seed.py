"""The seeded world of the chats benchmark, made in the bench database by a
child process (DJANGO_SETTINGS_MODULE=bench.settings) through the services:
one school, `chats` classes of `members - 1` students and a homeroom teacher,
their class chats (made by the directory sync), and a fresh API token for
every member. Idempotent: a second run reuses the school and its people and
only issues new tokens.

    python -m bench.chats_seed OUT.json CHATS MEMBERS

writes {"chats": [{"id", "last_seq", "members": [{"user", "token"}]}], "chats_made_by_bench"}.
"""

import json
import sys
from pathlib import Path

SCHOOL_NAME = "Бенчмарк чатов"
TOKEN_NAME = "bench-chats"
PHONE_BASE = 5_000_000  # +7998 5xxxxxx: apart from the factories' +7998 1xxxxxx


def phone(number: int) -> str:
    return "+7998" + str(PHONE_BASE + number)


def seed(chat_count: int, member_count: int) -> dict:
    from django.db import transaction

    from accounts.models import ApiToken, User
    from accounts.services import api_token_create
    from chats.models import Chat, ChatKind, ChatMember, MemberRole
    from organisations import services
    from organisations.models import Organisation, Role, StudyGroupStudent
    from organisations.selectors import current_academic_year
    from organisations.tests.factories import make_organisation

    year = current_academic_year()
    numbers = [index * 100 + n for index in range(chat_count) for n in range(member_count)]
    existing = {str(user.phone): user for user in User.objects.filter(phone__in=[phone(n) for n in numbers])}

    def person(number: int, first_name: str, last_name: str) -> User:
        user = existing.get(phone(number))
        return user or User.objects.create_user(phone(number), first_name=first_name, last_name=last_name)

    with transaction.atomic():
        school = Organisation.objects.filter(short_name=SCHOOL_NAME).first() or make_organisation(
            short_name=SCHOOL_NAME, full_name=SCHOOL_NAME + " (нагрузочный стенд)"
        )
        group_of = {group.name: group for group in school.study_groups.filter(academic_year=year)}
        present = set(
            StudyGroupStudent.objects.filter(group__in=group_of.values()).values_list("group_id", "student_id")
        )
        groups = []
        for index in range(chat_count):
            # Person number index*100 + n: the teacher is n = 0.
            teacher = person(index * 100, "Учитель", f"Класса{index:03d}")
            students = [person(index * 100 + n, "Ученик", f"К{index:03d}Н{n:02d}") for n in range(1, member_count)]
            group = group_of.get(f"7-{index:03d}")
            if group is None:
                services.membership_create(actor=None, user=teacher, organisation=school, role=Role.TEACHER)
                group = services.study_group_create(
                    actor=None,
                    organisation=school,
                    name=f"7-{index:03d}",
                    academic_year=year,
                    grade=7,
                    homeroom_teacher=teacher,
                )
            for student in students:
                if (group.pk, student.pk) not in present:
                    services.study_group_student_add(actor=None, group=group, student=student)
            groups.append((group, teacher, students))
    # The directory sync (chats.services.sync, run after the commit) has made
    # the class chats; where it did not, make them here.
    fallback = 0
    world = []
    with transaction.atomic():
        ApiToken.objects.filter(name=TOKEN_NAME).delete()
        chat_of = {
            chat.study_group_id: chat
            for chat in Chat.objects.filter(
                study_group__in=[group for group, _t, _s in groups], kind=ChatKind.CLASS_STUDENTS
            )
        }
        membership = set(
            ChatMember.objects.active().filter(chat__in=chat_of.values()).values_list("chat_id", "user_id")
        )
        for group, teacher, students in groups:
            chat = chat_of.get(group.pk)
            if chat is None:
                fallback += 1
                chat = Chat.objects.create(
                    kind=ChatKind.CLASS_STUDENTS, organisation=school, study_group=group, title=group.name
                )
            for user, role in [(teacher, MemberRole.OWNER), *[(student, MemberRole.MEMBER) for student in students]]:
                if (chat.pk, user.pk) not in membership:
                    ChatMember.objects.create(chat=chat, user=user, role=role, is_synced=True)
            world.append(
                {
                    "id": chat.pk,
                    "last_seq": chat.last_seq,
                    "members": [
                        {"user": user.pk, "token": api_token_create(user=user, name=TOKEN_NAME)}
                        for user in [teacher, *students]
                    ],
                }
            )
    return {"chats": world, "chats_made_by_bench": fallback}


def main(argv: list[str]) -> int:
    import django

    django.setup()
    out, chat_count, member_count = Path(argv[0]), int(argv[1]), int(argv[2])
    out.write_text(json.dumps(seed(chat_count, member_count)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
