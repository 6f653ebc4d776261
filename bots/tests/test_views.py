"""The bot page with its Start form, and inline buttons in the chat page as
plain forms (no JavaScript needed)."""

import pytest
from django.test import Client
from django.urls import reverse

from bots import services
from bots.models import Bot, Update, UpdateKind
from bots.tests.factories import make_bot
from chats.models import ChatMember, Message
from chats.tests.factories import make_group_chat
from organisations.tests.factories import make_organisation, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_bot_page_shows_the_bot_and_a_start_form():
    world = make_school_with_class()
    bot = make_bot(name="Рособрнадзор: помощник", description="Ответы об экзаменах", is_verified=True)

    response = signed_in(world.parent).get(reverse("bots:detail", kwargs={"username": bot.username}))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Рособрнадзор: помощник" in page
    assert "Ответы об экзаменах" in page
    assert "@" + bot.username in page
    assert f'action="/bots/{bot.username}/start/"' in page


def test_the_start_form_opens_the_chat_with_the_bot(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()

    with django_capture_on_commit_callbacks(execute=True):
        response = signed_in(world.parent).post(reverse("bots:start", kwargs={"username": bot.username}))

    chat_id = ChatMember.objects.get(user=bot.user).chat_id
    assert response.status_code == 302
    assert response["Location"] == reverse("chats:detail", args=[chat_id])
    assert Update.objects.get(bot=bot).kind == UpdateKind.COMMAND


def test_a_bot_for_verified_staff_tells_a_parent_why_and_starts_nothing():
    world = make_school_with_class()
    bot = make_bot(is_staff_only=True)
    client = signed_in(world.parent)

    assert client.get(reverse("bots:detail", kwargs={"username": bot.username})).status_code == 404
    response = client.post(reverse("bots:start", kwargs={"username": bot.username}))

    assert response.status_code == 404
    assert not ChatMember.objects.filter(user=bot.user).exists()


def test_another_schools_bot_and_an_unknown_bot_are_404():
    world = make_school_with_class()
    bot = make_bot(organisation=make_organisation())
    client = signed_in(world.parent)

    assert client.get(reverse("bots:detail", kwargs={"username": bot.username})).status_code == 404
    assert client.get(reverse("bots:detail", kwargs={"username": "nobody_bot"})).status_code == 404
    assert client.post(reverse("bots:start", kwargs={"username": bot.username})).status_code == 404
    assert not ChatMember.objects.filter(user=bot.user).exists()


def test_bot_pages_need_signing_in():
    bot = make_bot()

    response = Client().get(reverse("bots:detail", kwargs={"username": bot.username}))

    assert response.status_code == 302
    assert "/login" in response["Location"]


def test_the_bot_list_shows_the_bots_one_may_start():
    world = make_school_with_class()
    make_bot(name="Помощник ученика")
    make_bot(name="Бот другой школы", organisation=make_organisation())

    page = signed_in(world.parent).get(reverse("bots:list")).content.decode()

    assert "Помощник ученика" in page
    assert "Бот другой школы" not in page


def test_buttons_are_forms_in_the_chat_page_and_pressing_one_reaches_the_bot(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    message, _chat = services.bot_message_send(
        bot=bot,
        chat_id=chat.pk,
        text="Чем помочь?",
        buttons=[[{"text": "Расписание", "callback_data": "timetable"}, {"text": "Оценки", "callback_data": "marks"}]],
    )
    client = signed_in(world.parent)

    page = client.get(reverse("chats:detail", args=[chat.pk])).content.decode()
    action = reverse("bots:button_press", args=[chat.pk, message.seq])
    assert f'<form method="post" action="{action}" class="button-row">' in page
    assert '<button type="submit" name="button" value="0:1">Оценки</button>' in page

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(action, {"button": "0:1"})

    assert response.status_code == 302
    assert response["Location"] == reverse("chats:detail", args=[chat.pk]) + f"#m{message.seq}"
    press = Update.objects.get(bot=bot, kind=UpdateKind.CALLBACK_QUERY)
    assert press.payload["data"] == "marks"


def test_pressing_a_button_in_a_chat_one_is_not_in_is_404():
    world = make_school_with_class()
    bot = make_bot()
    chat = services.bot_start(user=world.parent, bot=bot)
    message, _chat = services.bot_message_send(
        bot=bot, chat_id=chat.pk, text="?", buttons=[[{"text": "Да", "callback_data": "y"}]]
    )

    response = signed_in(make_user()).post(reverse("bots:button_press", args=[chat.pk, message.seq]), {"button": "0:0"})

    assert response.status_code == 404
    assert not Update.objects.filter(kind=UpdateKind.CALLBACK_QUERY).exists()


def test_a_moderator_adds_a_bot_to_a_group_chat_from_its_page(django_capture_on_commit_callbacks):
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member], title="Родительский комитет")
    bot = make_bot()
    client = signed_in(owner)

    page = client.get(reverse("bots:detail", kwargs={"username": bot.username})).content.decode()
    assert f'<option value="{chat.pk}">Родительский комитет</option>' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("bots:chat_add", kwargs={"username": bot.username}), {"chat_id": chat.pk})

    assert response.status_code == 302
    assert ChatMember.objects.active().filter(chat=chat, user=bot.user).exists()
    refused = signed_in(member).post(reverse("bots:chat_add", kwargs={"username": bot.username}), {"chat_id": chat.pk})
    assert refused.status_code == 302
    assert Bot.objects.count() == 1
    assert Message.objects.filter(chat=chat).count() == 0
