"""Every API operation against every role (SPEC §10).

MATRIX names, for each path and method of the OpenAPI schema, the roles
allowed to use it on the objects of the world below. An operation in the
schema without an entry fails `test_every_api_operation_has_a_matrix_entry`,
so a new endpoint cannot land without deciding who may call it. Allowed roles
must not get 401/403/404; every other role must get one of them.
"""

import datetime
import importlib

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from chats.models import Chat, ChatKind, Message
from chats.services import channels, content
from chats.services.chats import group_chat_create
from chats.services.messages import message_send
from chats.services.sync import chats_sync
from lessons import services as lesson_services
from lessons.models import MeetingKind
from organisations import services
from organisations.models import Membership, Role
from organisations.selectors import current_academic_year
from organisations.tests.factories import make_organisation

ROLES = ("anonymous", "stranger", "student", "parent", "teacher", "administrator", "official", "other_admin")
EVERYONE = set(ROLES)
SIGNED_IN = EVERYONE - {"anonymous"}
ADULTS_WITH_A_ROLE = {"parent", "teacher", "administrator", "official", "other_admin"}
SCHOOL_A_MEMBERS = {"student", "parent", "teacher", "administrator"}
DENIED = {401, 403, 404}

# path -> method -> (allowed roles, path parameters by name -> world key, body)
MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {
    "/api/v1/auth/code/": {"post": (EVERYONE, {}, {"phone": "+79990000001"})},
    "/api/v1/auth/token/": {"post": (EVERYONE, {}, {"phone": "+79990000001", "code": "000000"})},
    "/api/v1/auth/logout/": {"post": (SIGNED_IN, {}, {})},
    "/api/v1/auth/logout-all/": {"post": (SIGNED_IN, {}, {})},
    "/api/v1/me/": {"get": (SIGNED_IN, {}, {}), "patch": (SIGNED_IN, {}, {"first_name": "Имя"})},
    # Without a file the upload answers 415 (multipart only): past the permission check.
    "/api/v1/me/photo/": {"put": (SIGNED_IN, {}, {}), "delete": (SIGNED_IN, {}, {})},
    "/api/v1/me/export/": {"get": (SIGNED_IN, {}, {})},
    # No code was sent: 400 code_invalid, past the permission check, and nothing is deleted.
    "/api/v1/me/delete/": {"post": (SIGNED_IN, {}, {"code": "000000"})},
    "/api/v1/regions/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/organisations/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/organisations/{organisation_id}/": {"get": (SIGNED_IN - {"stranger"}, {"organisation_id": "school"}, {})},
    "/api/v1/organisations/{organisation_id}/groups/": {
        "get": (SIGNED_IN - {"stranger"}, {"organisation_id": "school"}, {})
    },
    "/api/v1/organisations/{organisation_id}/students/{student_id}/guardianship-codes/": {
        "post": ({"teacher", "administrator"}, {"organisation_id": "school", "student_id": "student"}, {})
    },
    "/api/v1/memberships/{membership_id}/verification-request/": {
        "post": ({"teacher"}, {"membership_id": "teacher_membership"}, {})
    },
    "/api/v1/guardianships/claim/": {"post": (SIGNED_IN, {}, {"code": "ABCDE-FGHJK"})},
    "/api/v1/students/{student_id}/safe-mode/": {
        "get": ({"parent", "teacher", "administrator"}, {"student_id": "student"}, {}),
        "patch": ({"parent", "teacher", "administrator"}, {"student_id": "student"}, {"is_safe_mode": True}),
    },
    "/api/v1/users/": {"get": (SIGNED_IN, {}, {})},
    "/api/v1/users/{user_id}/": {
        "get": ({"student", "parent", "teacher", "administrator"}, {"user_id": "student"}, {})
    },
}

CLASS_STUDENTS = {"student", "teacher"}
CLASS_PARENTS = {"parent", "teacher"}
TEACHER = {"teacher"}
STUDENTS_CHAT = {"chat_id": "students_chat"}
PARENTS_CHAT = {"chat_id": "parents_chat"}
CHANNEL = {"chat_id": "channel"}
CHANNEL_POST = {"chat_id": "channel", "seq": "channel_post"}
STAFF_WITH_A_ROLE = {"teacher", "administrator", "official", "other_admin"}

MATRIX.update(
    {
        "/api/v1/chats/": {
            "get": (SIGNED_IN, {}, {}),
            "post": (SIGNED_IN, {}, {"title": "Чат", "member_ids": []}),
        },
        # A fixed body cannot name a world id; everyone gets 404 for an
        # unknown person, which is a refusal for all.
        "/api/v1/chats/direct/": {"post": (set(), {}, {"user_id": 999999})},
        "/api/v1/chats/{chat_id}/": {"get": (CLASS_PARENTS, PARENTS_CHAT, {})},
        "/api/v1/chats/{chat_id}/messages/": {
            "get": (CLASS_PARENTS, PARENTS_CHAT, {}),
            "post": (CLASS_PARENTS, PARENTS_CHAT, {"body": "Здравствуйте"}),
        },
        "/api/v1/chats/{chat_id}/settings/": {"patch": (TEACHER, PARENTS_CHAT, {"is_announcement_only": True})},
        "/api/v1/chats/{chat_id}/read/": {"post": (CLASS_PARENTS, PARENTS_CHAT, {"seq": 1})},
        "/api/v1/chats/{chat_id}/receipts/": {"get": (TEACHER, PARENTS_CHAT, {})},
        "/api/v1/chats/{chat_id}/messages/{seq}/": {
            "patch": (TEACHER, {**STUDENTS_CHAT, "seq": "seq"}, {"body": "Контрольная в понедельник"}),
            "delete": (TEACHER, {**STUDENTS_CHAT, "seq": "seq"}, {}),
        },
        "/api/v1/chats/{chat_id}/messages/{seq}/report/": {
            "post": (CLASS_STUDENTS, {**STUDENTS_CHAT, "seq": "seq"}, {"reason": "спам"})
        },
        "/api/v1/chats/{chat_id}/messages/{seq}/history/": {
            "get": (CLASS_STUDENTS, {**STUDENTS_CHAT, "seq": "seq"}, {})
        },
        "/api/v1/chats/{chat_id}/messages/{seq}/reactions/": {
            "post": (CLASS_STUDENTS, {**STUDENTS_CHAT, "seq": "seq"}, {"emoji": "👍"})
        },
        "/api/v1/chats/{chat_id}/members/": {"post": (TEACHER, {"chat_id": "group_chat"}, {})},
        "/api/v1/chats/{chat_id}/members/{user_id}/": {
            # A moderator removes; the parent may remove themselves (leave).
            "delete": ({"teacher", "parent"}, {"chat_id": "group_chat", "user_id": "parent"}, {})
        },
        "/api/v1/chats/{chat_id}/members/{user_id}/mute/": {
            "post": (TEACHER, {**PARENTS_CHAT, "user_id": "parent"}, {"minutes": 5})
        },
        "/api/v1/chats/{chat_id}/pins/": {
            "get": (CLASS_STUDENTS, STUDENTS_CHAT, {}),
            "post": (TEACHER, STUDENTS_CHAT, {"seq": 1}),
        },
        "/api/v1/chats/{chat_id}/pins/{seq}/": {"delete": (TEACHER, {**STUDENTS_CHAT, "seq": "seq"}, {})},
        "/api/v1/chats/{chat_id}/polls/": {
            "post": (TEACHER, STUDENTS_CHAT, {"question": "Кто придёт?", "options": ["Да", "Нет"]})
        },
        "/api/v1/chats/{chat_id}/polls/{poll_id}/": {"get": (CLASS_STUDENTS, {**STUDENTS_CHAT, "poll_id": "poll"}, {})},
        "/api/v1/chats/{chat_id}/polls/{poll_id}/votes/": {
            "post": (CLASS_STUDENTS, {**STUDENTS_CHAT, "poll_id": "poll"}, {"option_ids": []})
        },
        "/api/v1/chats/{chat_id}/polls/{poll_id}/close/": {"post": (TEACHER, {**STUDENTS_CHAT, "poll_id": "poll"}, {})},
        "/api/v1/chats/{chat_id}/attachments/": {"post": (CLASS_STUDENTS, STUDENTS_CHAT, {})},
        "/api/v1/search/messages/": {"get": (SIGNED_IN, {}, {"q": "контрольная"})},
        "/api/v1/me/office-hours/": {
            "get": (SIGNED_IN, {}, {}),
            "put": (STAFF_WITH_A_ROLE, {}, {"starts_at": "09:00", "ends_at": "17:00", "weekdays": [1, 2, 3, 4, 5]}),
            "delete": (SIGNED_IN, {}, {}),
        },
        "/api/v1/channels/": {"get": (SIGNED_IN, {}, {}), "post": (SIGNED_IN, {}, {"title": "Канал"})},
        "/api/v1/channels/{chat_id}/": {"get": (SCHOOL_A_MEMBERS, CHANNEL, {})},
        "/api/v1/channels/{chat_id}/subscription/": {
            "post": (SCHOOL_A_MEMBERS, CHANNEL, {}),
            "delete": (SCHOOL_A_MEMBERS, CHANNEL, {}),
        },
        "/api/v1/channels/{chat_id}/editors/": {"post": ({"administrator"}, CHANNEL, {})},
        "/api/v1/channels/{chat_id}/posts/": {
            "get": (SCHOOL_A_MEMBERS, CHANNEL, {}),
            "post": ({"teacher", "administrator"}, CHANNEL, {"body": "Объявление"}),
        },
        "/api/v1/channels/{chat_id}/posts/{seq}/acknowledge/": {"post": (SCHOOL_A_MEMBERS, CHANNEL_POST, {})},
        "/api/v1/channels/{chat_id}/posts/{seq}/stats/": {"get": ({"teacher", "administrator"}, CHANNEL_POST, {})},
        "/api/v1/channels/{chat_id}/posts/{seq}/private-reply/": {
            "post": (SCHOOL_A_MEMBERS, CHANNEL_POST, {"body": "Вопрос"})
        },
    }
)


LESSON_HOSTS = {"teacher", "administrator"}
PARENT_MEETING_PEOPLE = {"parent", "teacher", "administrator"}
MEETING = {"meeting_id": "meeting"}
MEETING_GUEST = {"meeting_id": "meeting", "participant_id": "guest_participant"}

MATRIX.update(
    {
        # A fixed body cannot name the organisation: {} answers 400 to every
        # signed-in role (past the permission check, nothing stored).
        "/api/v1/meetings/": {"get": (SIGNED_IN, {}, {}), "post": (SIGNED_IN, {}, {})},
        "/api/v1/meetings/{meeting_id}/": {
            "get": (PARENT_MEETING_PEOPLE, MEETING, {}),
            "patch": (LESSON_HOSTS, MEETING, {"title": "Собрание 7Б, перенесено"}),
        },
        "/api/v1/meetings/{meeting_id}/cancel/": {"post": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/meetings/{meeting_id}/links/": {
            "get": (LESSON_HOSTS, MEETING, {}),
            "post": (LESSON_HOSTS, MEETING, {"label": "Бабушка Ивана"}),
        },
        "/api/v1/meetings/{meeting_id}/links/{link_id}/": {
            "delete": (LESSON_HOSTS, {"meeting_id": "meeting", "link_id": "link"}, {})
        },
        "/api/v1/meetings/{meeting_id}/join/": {
            "get": (PARENT_MEETING_PEOPLE, MEETING, {}),
            "post": (PARENT_MEETING_PEOPLE, MEETING, {}),
        },
        "/api/v1/meetings/{meeting_id}/lobby/": {"get": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/meetings/{meeting_id}/lobby/admit-all/": {"post": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/meetings/{meeting_id}/lobby/{participant_id}/admit/": {"post": (LESSON_HOSTS, MEETING_GUEST, {})},
        "/api/v1/meetings/{meeting_id}/lobby/{participant_id}/deny/": {"post": (LESSON_HOSTS, MEETING_GUEST, {})},
        "/api/v1/meetings/{meeting_id}/participants/": {"get": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/meetings/{meeting_id}/participants/{participant_id}/remove/": {
            "post": (LESSON_HOSTS, MEETING_GUEST, {})
        },
        "/api/v1/meetings/{meeting_id}/attendance/": {"get": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/meetings/{meeting_id}/attendance.csv": {"get": (LESSON_HOSTS, MEETING, {})},
        "/api/v1/study-groups/{group_id}/attendance/": {"get": (LESSON_HOSTS, {"group_id": "group"}, {})},
        "/api/v1/study-groups/{group_id}/attendance.csv": {"get": (LESSON_HOSTS, {"group_id": "group"}, {})},
        "/api/v1/calendar/": {"get": (SIGNED_IN, {}, {})},
        "/api/v1/meeting-notifications/": {"get": (SIGNED_IN, {}, {})},
        "/api/v1/meeting-notifications/read/": {"post": (SIGNED_IN, {}, {})},
        "/api/v1/me/meeting-reminders/": {
            "get": (SIGNED_IN, {}, {}),
            "put": (SIGNED_IN, {}, {"by_sms": True}),
        },
        # No sign-in needed; a signed-in child in safe mode is refused as a guest (403 safe_mode).
        "/api/v1/join/{token}/": {
            "get": (EVERYONE - {"student"}, {"token": "link_token"}, {}),
            "post": (EVERYONE - {"student"}, {"token": "link_token"}, {"display_name": "Нина Петровна"}),
        },
    }
)


# Apps above lessons keep their entries and objects next to their own tests.
MATRIX_EXTENSIONS = [
    importlib.import_module(f"{app}.tests.matrix") for app in ("bots", "miniapps", "migration", "adoption")
]
for extension in MATRIX_EXTENSIONS:
    MATRIX.update(extension.MATRIX)


class World:
    def __init__(self) -> None:
        year = current_academic_year()
        self.authority = make_organisation(kind="regional_authority", short_name="Минобр области")
        self.school = make_organisation(kind="school", short_name="Школа А", parent=self.authority)
        self.other_school = make_organisation(kind="school", short_name="Школа Б")
        self.users = {
            role: User.objects.create_user(f"+7990100000{index}", first_name=role.title(), last_name="Тестов")
            for index, role in enumerate(ROLES[1:])
        }
        group = services.study_group_create(actor=None, organisation=self.school, name="7Б", academic_year=year)
        services.study_group_student_add(actor=None, group=group, student=self.users["student"])
        self.teacher_membership = services.study_group_teacher_add(
            actor=None, group=group, teacher=self.users["teacher"]
        )
        services.guardianship_link(
            actor=None, parent=self.users["parent"], student=self.users["student"], organisation=self.school
        )
        services.membership_create(
            actor=None, user=self.users["administrator"], organisation=self.school, role=Role.ADMINISTRATOR
        )
        services.membership_create(
            actor=None, user=self.users["official"], organisation=self.authority, role=Role.OFFICIAL
        )
        services.membership_create(
            actor=None, user=self.users["other_admin"], organisation=self.other_school, role=Role.ADMINISTRATOR
        )
        self.group = group
        self.values: dict[str, int | str] = {
            "school": self.school.pk,
            "group": group.pk,
            "student": self.users["student"].pk,
            "parent": self.users["parent"].pk,
            "teacher_membership": self.users["teacher"].memberships.get().pk,
        }
        self._chats()
        self._lessons()
        for extension in MATRIX_EXTENSIONS:
            extension.world_extend(self)

    def _chats(self) -> None:
        """The class chats of 7Б (the teacher moderates both), a message and a
        pinned poll in the students' chat, and the school's channel with a
        post to acknowledge."""
        teacher, administrator = self.users["teacher"], self.users["administrator"]
        chats_sync(organisation_ids=[self.school.pk, self.other_school.pk])
        students_chat = Chat.objects.get(study_group=self.group, kind=ChatKind.CLASS_STUDENTS)
        parents_chat = Chat.objects.get(study_group=self.group, kind=ChatKind.CLASS_PARENTS)
        message, _created = message_send(user=teacher, chat_id=students_chat.pk, body="Контрольная в пятницу")
        assert isinstance(message, Message)
        message_send(user=teacher, chat_id=parents_chat.pk, body="Собрание в четверг")
        content.pin_add(user=teacher, chat_id=students_chat.pk, seq=message.seq)
        poll, _created = content.poll_create(
            user=teacher, chat_id=students_chat.pk, question="Когда экскурсия?", options=["Суббота", "Воскресенье"]
        )
        group_chat = group_chat_create(user=teacher, title="Родительский комитет", member_ids=[self.users["parent"].pk])
        channel = channels.channel_create(actor=administrator, organisation=self.school, title="Школа А")
        channels.channel_editor_add(actor=administrator, chat_id=channel.pk, user_id=teacher.pk)
        post, _created = channels.channel_post(
            user=teacher, chat_id=channel.pk, body="Прочтите", requires_acknowledgement=True
        )
        self.values.update(
            {
                "students_chat": students_chat.pk,
                "parents_chat": parents_chat.pk,
                "group_chat": group_chat.pk,
                "seq": message.seq,
                "poll": poll.pk,
                "channel": channel.pk,
                "channel_post": post.seq,
            }
        )

    def _lessons(self) -> None:
        """The teacher, verified by the school, hosts a parent meeting of 7Б
        that started five minutes ago (so joining and the lobby are open):
        one unused guest link ("link", its token "link_token") and a guest
        waiting in the lobby through another link ("guest_participant")."""
        teacher, administrator = self.users["teacher"], self.users["administrator"]
        services.verification_decide(
            actor=administrator,
            membership=Membership.objects.get(user=teacher, organisation=self.school, role=Role.TEACHER),
            approve=True,
        )
        teacher.refresh_from_db()
        meeting = lesson_services.meeting_create(
            actor=teacher,
            organisation_id=self.school.pk,
            kind=MeetingKind.PARENT_MEETING,
            title="Собрание 7Б",
            starts_at=timezone.now() - datetime.timedelta(minutes=5),
            duration_minutes=60,
            audience=lesson_services.AudienceSpec(guardian_group_ids=(self.group.pk,)),
        )
        link, token = lesson_services.join_link_create(actor=teacher, meeting_id=meeting.pk, label="Бабушка")
        _guest_link, guest_token = lesson_services.join_link_create(actor=teacher, meeting_id=meeting.pk)
        guest = lesson_services.guest_join(token=guest_token, display_name="Гость", ip="192.0.2.1")
        self.values.update({"meeting": meeting.pk, "link": link.pk, "link_token": token, "guest_participant": guest.pk})

    def client(self, role: str) -> Client:
        client = APIClient()
        if role != "anonymous":
            client.force_authenticate(self.users[role])
        return client


def schema_operations() -> set[tuple[str, str]]:
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (path, method)
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }


@pytest.mark.django_db
def test_every_api_operation_has_a_matrix_entry():
    operations = schema_operations()
    in_matrix = {(path, method) for path, methods in MATRIX.items() for method in methods}

    assert sorted(operations - in_matrix) == [], "API operations without a permission matrix entry"
    assert sorted(in_matrix - operations) == [], "matrix entries for operations that no longer exist"


CASES = [(path, method, role) for path, methods in MATRIX.items() for method in methods for role in ROLES]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "role"), CASES, ids=[f"{m.upper()} {p} as {r}" for p, m, r in CASES])
def test_permission_matrix(path, method, role):
    world = World()
    allowed, parameters, body = MATRIX[path][method]
    url = path
    for name, key in parameters.items():
        url = url.replace("{" + name + "}", str(world.values[key]))
    client = world.client(role)

    response = getattr(client, method)(url, data=body or None, format="json")

    if role in allowed:
        assert response.status_code not in DENIED, f"{role} refused: {response.status_code} {response.content[:200]!r}"
    else:
        assert response.status_code in DENIED, f"{role} let through: {response.status_code}"
