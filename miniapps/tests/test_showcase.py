"""The services showcase, the system folder "Education": the mini-apps,
bots and official channels that fit the person's roles, and the first page
a signed-in person sees. And the demo that fills it."""

import pytest
from django.test import Client
from django.utils import translation
from django.utils.html import escape
from rest_framework.test import APIClient

from accounts.models import User
from bots.tests.factories import make_bot
from chats.services.channels import channel_create
from miniapps import selectors
from miniapps.models import Homework, Mark, MiniApp, TimetableEntry
from miniapps.tests.factories import client_for, make_app
from organisations.demo import seed_demo_data
from organisations.models import Role
from organisations.tests.factories import make_school_with_class

pytestmark = pytest.mark.django_db


def ru(text: str) -> str:
    with translation.override("ru"):
        return escape(translation.gettext(text))


@pytest.fixture
def world():
    world = make_school_with_class(students=1, is_verified=True)
    make_app(
        slug="diary",
        name="Моя школа",
        url="/diary/",
        is_builtin=True,
        audience=("student", "parent"),
        position=1,
        icon_static="miniapps/my-school.svg",
        is_verified=True,
    )
    make_app(
        slug="peremenka",
        name="Переменка",
        audience=("student", "teacher"),
        position=2,
        description="Отдых между уроками",
    )
    make_app(slug="admins", name="Отчёты", audience=("administrator",), position=3)
    bot = make_bot(name="Помощник ученика", description="Ответы на вопросы", is_verified=True)
    official = channel_create(actor=world.administrator, organisation=world.school, title="Новости школы")
    other = make_school_with_class(students=0, is_verified=True)
    channel_create(actor=other.administrator, organisation=other.school, title="Чужие новости")
    world.official = official
    world.bot = bot
    return world


def test_signed_in_people_land_on_the_showcase():
    world = make_school_with_class(students=1)

    response = client_for(world.student).get("/")

    assert (response.status_code, response["Location"]) == (302, "/education/")
    assert Client().get("/education/")["Location"] == "/login/?next=/education/"


def test_the_student_sees_their_apps_bots_and_official_channels(world):
    page = client_for(world.student).get("/education/").content.decode()

    assert f"<h1>{ru('Education')}</h1>" in page
    assert f'<a href="/education/">{ru("Education")}</a>' in page
    assert '<a href="/apps/diary/">Моя школа</a>' in page
    assert '<img src="/static/miniapps/my-school.svg"' in page
    assert '<a href="/apps/peremenka/">Переменка</a>' in page
    assert "Отдых между уроками" in page
    assert "Отчёты" not in page
    bot_username = world.bot.username
    assert f'<a href="/bots/{bot_username}/">Помощник ученика</a>' in page
    assert f'<a href="/channels/{world.official.pk}/">Новости школы</a>' in page
    assert "Чужие новости" not in page


def test_the_showcase_differs_by_role(world):
    items = {
        person: [item.app.slug for item in selectors.showcase(user=getattr(world, person)).apps]
        for person in ("student", "parent", "teacher", "administrator")
    }

    assert items == {
        "student": ["diary", "peremenka"],
        "parent": ["diary"],
        "teacher": ["peremenka"],
        "administrator": ["admins"],
    }


def test_the_showcase_api(world):
    client = APIClient()
    client.force_authenticate(world.parent)

    body = client.get("/api/v1/showcase/").json()

    assert [app["slug"] for app in body["apps"]] == ["diary"]
    assert [bot["name"] for bot in body["bots"]] == ["Помощник ученика"]
    assert [channel["title"] for channel in body["channels"]] == ["Новости школы"]
    assert body["channels"][0]["organisation"] == world.school.short_name


def test_someone_with_no_role_sees_an_empty_showcase():
    person = User.objects.create_user("+79990007777")

    page = client_for(person).get("/education/").content.decode()

    assert ru("No mini-apps for your roles yet.") in page
    assert ru("No official channels for you yet.") in page


def test_the_demo_fills_the_showcase_and_the_diary_once():
    data = seed_demo_data()
    first = (
        list(MiniApp.objects.order_by("slug").values_list("slug", "name", "url", "secret")),
        TimetableEntry.objects.count(),
        Homework.objects.count(),
        Mark.objects.count(),
    )
    seed_demo_data()
    again = (
        list(MiniApp.objects.order_by("slug").values_list("slug", "name", "url", "secret")),
        TimetableEntry.objects.count(),
        Homework.objects.count(),
        Mark.objects.count(),
    )

    assert first == again
    assert [(slug, name, url) for slug, name, url, _secret in first[0]] == [
        ("achievements", "Награды и достижения", "https://example.org/achievements"),
        ("my-school", "Моя школа", "/diary/"),
        ("peremenka", "Переменка", "https://example.org/peremenka"),
        ("pushkin-card", "События Пушкинской карты", "https://example.org/pushkin-card"),
    ]
    assert first[1:] == (15, 3, 12)
    student = data["student"]
    names = [item.app.name for item in selectors.miniapps_for_user(user=student)]
    assert names == ["Моя школа", "События Пушкинской карты", "Награды и достижения", "Переменка"]
    diary = client_for(student).get(f"/diary/students/{student.pk}/").content.decode()
    assert "Тараса Бульбу" in diary and '<td class="mark">5</td>' in diary
    assert MiniApp.objects.get(slug="my-school").audience == [
        Role.STUDENT,
        Role.PARENT,
        Role.TEACHER,
        Role.ADMINISTRATOR,
    ]
