"""The core pages of the portal (issue 7, SPEC §10): the pages that must work
on the simplest devices — with JavaScript switched off, at 320 px, within
50 KB of HTML, CSS and scripts — and pass the accessibility checks.

A new core page is added to CORE_PAGES below: tests/browser/test_core_pages.py
runs its no-JavaScript, weight, axe-core, keyboard and screenshot checks
for every entry, and bench/bench_pages.py times it under a slow network.

Plain functions, no pytest fixtures: `core_world()` fills the database
(the test's, or a benchmark's) through the same factories and services the
app tests use; `session_cookie()` signs a browser in."""

import dataclasses
import datetime
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from accounts.models import User
from chats.models import Chat, Message
from chats.services import channels
from chats.tests.factories import SchoolWithChats, make_school_with_chats, send
from lessons import services as lesson_services
from lessons.models import Meeting
from lessons.tests.factories import make_lesson_now, make_parent_meeting_now, verify_teacher
from miniapps import services as diary_services
from miniapps.tests.factories import make_app
from organisations.models import Role


@dataclasses.dataclass
class CoreWorld:
    """A verified school with class 7Б: its verified homeroom teacher, one
    student and the student's parent; the class chats (with messages in the
    parents' chat), the school's channel with a post to acknowledge, a
    lesson going on now (the student has come in), a parent meeting going on
    now with a guest link, and the student's diary filled."""

    school: SchoolWithChats
    chat: Chat
    channel: Chat
    post: Message
    lesson: Meeting
    parent_meeting: Meeting
    guest_token: str

    @property
    def teacher(self) -> User:
        return self.school.teacher

    @property
    def student(self) -> User:
        return self.school.student

    @property
    def parent(self) -> User:
        return self.school.parent

    @property
    def administrator(self) -> User:
        return self.school.administrator


@dataclasses.dataclass(frozen=True)
class CorePage:
    name: str
    # The attribute of CoreWorld who opens it; None: nobody signed in.
    person: str | None
    path: Callable[[CoreWorld], str]
    # Shows that the page is usable (the slow-network bench waits for it).
    ready: str = "main"

    def user(self, world: CoreWorld) -> User | None:
        return None if self.person is None else getattr(world, self.person)


CORE_PAGES: list[CorePage] = [
    CorePage("sign_in", None, lambda world: "/login/", ready="main form"),
    CorePage("showcase", "student", lambda world: "/education/", ready="main h1"),
    CorePage("chat_list", "parent", lambda world: "/chats/", ready="main h1"),
    CorePage("chat", "parent", lambda world: f"/chats/{world.chat.pk}/", ready="#send"),
    CorePage("channel_post", "parent", lambda world: f"/channels/{world.channel.pk}/", ready="main h1"),
    CorePage("calendar", "student", lambda world: "/lessons/", ready="main h1"),
    CorePage("lesson_join", "student", lambda world: f"/lessons/{world.lesson.pk}/join/", ready="main h1"),
    CorePage("guest_join", None, lambda world: f"/join/{world.guest_token}/", ready="main form"),
    CorePage("diary", "student", lambda world: "/diary/", ready="main h1"),
    # What the service worker shows when a page cannot load (no network).
    CorePage("offline", None, lambda world: "/offline/", ready="main h1"),
]


def core_page(name: str) -> CorePage:
    return next(page for page in CORE_PAGES if page.name == name)


def core_world() -> CoreWorld:
    """Create the core pages' world in the database (see CoreWorld)."""
    school = make_school_with_chats(students=1, is_verified=True)
    teacher = verify_teacher(world=school)
    student, parent = school.student, school.parent
    assert school.parents_chat is not None

    chat = school.parents_chat
    send(teacher, chat, "Добрый день! Завтра собрание в 18:00, кабинет 21.")
    send(parent, chat, "Спасибо, будем.")
    send(teacher, chat, "Не забудьте подписать согласие на экскурсию.")

    channel = channels.channel_create(actor=school.administrator, organisation=school.school, title="Объявления школы")
    channels.channel_editor_add(actor=school.administrator, chat_id=channel.pk, user_id=teacher.pk)
    post, _created = channels.channel_post(
        user=teacher,
        chat_id=channel.pk,
        body="С понедельника уроки начинаются в 8:30. Прочтите и подтвердите.",
        requires_acknowledgement=True,
    )

    lesson = make_lesson_now(school, title="Урок математики")
    lesson_services.meeting_join(user=student, meeting_id=lesson.pk)
    parent_meeting = make_parent_meeting_now(school)
    _link, guest_token = lesson_services.join_link_create(
        actor=teacher, meeting_id=parent_meeting.pk, label="Бабушка Ивановой"
    )

    make_app(
        slug="my-school",
        name="Моя школа",
        url="/diary/",
        is_builtin=True,
        audience=(Role.STUDENT, Role.PARENT, Role.TEACHER),
        position=10,
        icon_static="miniapps/my-school.svg",
        is_verified=True,
        description="Оценки, расписание, домашние задания",
    )
    make_app(
        slug="peremenka",
        name="Переменка",
        audience=(Role.STUDENT, Role.TEACHER),
        position=50,
        description="Сервис для полезного отдыха между уроками",
    )
    _diary_fill(school=school, teacher=teacher)
    return CoreWorld(
        school=school,
        chat=chat,
        channel=channel,
        post=post,
        lesson=lesson,
        parent_meeting=parent_meeting,
        guest_token=guest_token,
    )


def _diary_fill(*, school: SchoolWithChats, teacher: User) -> None:
    today = timezone.localdate()
    group_id = school.group.pk
    for weekday, period, subject, room in [
        (1, 1, "Русский язык", "204"),
        (1, 2, "Математика", "312"),
        (2, 1, "История", "108"),
        (3, 1, "Физика", "301"),
        (4, 1, "Литература", "204"),
        (5, 1, "Английский язык", "110"),
    ]:
        diary_services.timetable_entry_set(
            actor=teacher, group_id=group_id, weekday=weekday, period=period, subject=subject, room=room
        )
    diary_services.homework_create(
        actor=teacher,
        group_id=group_id,
        subject="Математика",
        due_date=today + datetime.timedelta(days=1),
        text="№ 245, 247 (стр. 61)",
    )
    for subject, value in [("Математика", "5"), ("Русский язык", "4")]:
        diary_services.mark_create(
            actor=teacher, group_id=group_id, student_id=school.student.pk, subject=subject, date=today, value=value
        )


def session_cookie(user: User, *, url: str | None = None) -> dict:
    """A Playwright cookie of a session signed in as `user`, made in the
    database as Client.force_login makes it (the host of `url`, 127.0.0.1
    by default: cookies are per host, whatever the port)."""
    assert isinstance(user, get_user_model())
    client = Client()
    client.force_login(user)
    cookie: dict = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value}
    if url is not None:
        cookie["url"] = url
    else:
        cookie.update({"domain": "127.0.0.1", "path": "/"})
    return cookie
