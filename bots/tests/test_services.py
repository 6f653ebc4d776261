"""Bots, starting them, the updates queue and the rules around them."""

import pytest
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import phone_normalise
from bots import selectors, services
from bots.models import Bot, Update, UpdateKind
from bots.tests.factories import make_bot
from chats.models import Chat, ChatKind, ChatMember, Message
from chats.tests.factories import make_group_chat, make_school_with_chats, send
from common.errors import ApplicationError, NotFound, PermissionDenied
from organisations import services as organisation_services
from organisations.models import Membership, Role, VerificationStatus
from organisations.selectors import contact_is_allowed
from organisations.tests.factories import make_member, make_organisation, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


def verified_teacher(organisation):
    teacher = make_member(organisation=organisation, role=Role.TEACHER)
    Membership.objects.filter(user=teacher, organisation=organisation).update(
        verification_status=VerificationStatus.VERIFIED
    )
    return teacher


def updates_of(bot: Bot) -> list[tuple[int, str, dict]]:
    return [(u.update_id, u.kind, u.payload) for u in Update.objects.filter(bot=bot).order_by("update_id")]


# --- The bot's account ---------------------------------------------------------------------------------------------


def test_a_bot_has_an_account_no_one_can_sign_in_with():
    bot = make_bot(name="Помощник ученика", username="student_helper_bot")

    assert bot.user.display_name == "Помощник ученика"
    assert bot.user.is_hidden_from_search is True
    assert bot.user.has_usable_password() is False
    assert str(bot.user.phone).startswith("+7000")
    with pytest.raises(ApplicationError) as refused:
        phone_normalise(str(bot.user.phone))
    assert refused.value.code == "invalid_phone"


@pytest.mark.parametrize("username", ["helper", "Helper_bot", "1helper_bot", "ab_bot" + "x" * 40, "", None])
def test_a_bot_username_must_be_latin_and_end_with_bot(username):
    with pytest.raises(ApplicationError) as refused:
        services.bot_create(username=username, name="Бот")

    assert refused.value.extra == {"field": "username"}
    assert Bot.objects.count() == 0


def test_a_taken_username_is_refused():
    make_bot(username="duty_bot")

    with pytest.raises(ApplicationError) as refused:
        services.bot_create(username="duty_bot", name="Другой")

    assert refused.value.code == "username_taken"
    assert Bot.objects.count() == 1


# --- Who may start which bot ---------------------------------------------------------------------------------------


def test_the_showcase_lists_platform_bots_and_the_bots_of_ones_organisations():
    world = make_school_with_class()
    other_school = make_organisation()
    platform = make_bot(name="Рособрнадзор: помощник", is_verified=True)
    own = make_bot(name="Бот школы", organisation=world.school)
    make_bot(name="Бот другой школы", organisation=other_school)
    make_bot(name="Для учителей", is_staff_only=True)
    hidden = make_bot(name="Скрытый")
    Bot.objects.filter(pk=hidden.pk).update(is_listed=False)
    disabled = make_bot(name="Выключенный")
    Bot.objects.filter(pk=disabled.pk).update(is_active=False)

    assert selectors.bot_showcase_list(user=world.parent) == [platform, own]
    assert selectors.bot_showcase_list(user=make_user()) == [platform]


def test_bots_for_verified_staff_are_shown_only_to_verified_staff():
    world = make_school_with_class()
    for_staff = make_bot(name="Для учителей", is_staff_only=True)
    school_staff = make_bot(name="Учительская", organisation=world.school, is_staff_only=True)
    other_staff = make_bot(name="Чужая учительская", organisation=make_organisation(), is_staff_only=True)
    teacher = verified_teacher(world.school)
    unverified = make_member(organisation=world.school, role=Role.TEACHER)

    assert selectors.bot_showcase_list(user=teacher) == [for_staff, school_staff]
    assert selectors.bot_showcase_list(user=unverified) == []
    assert selectors.bot_showcase_list(user=world.parent) == []
    assert other_staff not in selectors.bot_showcase_list(user=teacher)


def test_starting_a_bot_opens_the_direct_chat_and_sends_start(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot(name="Помощник")

    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)

    assert chat.kind == ChatKind.DIRECT
    assert set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True)) == {
        world.parent.pk,
        bot.user_id,
    }
    assert list(Message.objects.filter(chat=chat).values_list("author_id", "body")) == [(world.parent.pk, "/start")]
    [(update_id, kind, payload)] = updates_of(bot)
    assert (update_id, kind) == (1, UpdateKind.COMMAND)
    assert payload["command"] == "start"
    assert payload["command_args"] == ""
    assert payload["chat"] == {"id": chat.pk, "type": "direct", "title": ""}
    assert payload["from"] == {
        "id": world.parent.pk,
        "display_name": world.parent.display_name,
        "is_verified_educator": False,
    }
    assert payload["text"] == "/start"


def test_starting_again_reuses_the_chat(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        first = services.bot_start(user=world.parent, bot=bot)
        second = services.bot_start(user=world.parent, bot=bot)

    assert first.pk == second.pk
    assert [kind for _id, kind, _payload in updates_of(bot)] == ["command", "command"]


def test_a_bot_for_verified_staff_refuses_others_and_stores_nothing():
    world = make_school_with_class()
    bot = make_bot(is_staff_only=True)

    with pytest.raises(PermissionDenied) as refused:
        services.bot_start(user=world.parent, bot=bot)

    assert refused.value.code == "bot_staff_only"
    assert Chat.objects.filter(kind=ChatKind.DIRECT).count() == 0
    assert Update.objects.count() == 0
    teacher = verified_teacher(world.school)
    assert services.bot_start(user=teacher, bot=bot).kind == ChatKind.DIRECT


def test_another_organisations_bot_is_not_found():
    world = make_school_with_class()
    bot = make_bot(organisation=make_organisation())

    with pytest.raises(NotFound):
        services.bot_start(user=world.parent, bot=bot)

    assert Chat.objects.filter(kind=ChatKind.DIRECT).count() == 0


def test_a_child_in_safe_mode_is_reached_only_by_platform_bots_and_own_school_bots(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    child = world.student
    assert child.is_safe_mode is True
    platform = make_bot(name="Платформа")
    own = make_bot(name="Своя школа", organisation=world.school)
    other = make_bot(name="Чужая школа", organisation=make_organisation())

    # The one contact rule decides, through the bot's organisation.
    assert contact_is_allowed(actor=platform.user, child=child) is True
    assert contact_is_allowed(actor=own.user, child=child) is True
    assert contact_is_allowed(actor=other.user, child=child) is False
    with pytest.raises(PermissionDenied) as refused:
        services.bot_start(user=child, bot=other)
    assert refused.value.code == "contact_not_allowed"
    assert not Chat.objects.filter(direct_key__contains=str(other.user_id)).exists()

    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=child, bot=own)
    message, _chat = services.bot_message_send(bot=own, chat_id=chat.pk, text="Привет!")
    assert message.body == "Привет!"


def test_a_bot_whose_school_the_child_left_may_no_longer_write(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    child = world.student
    bot = make_bot(organisation=world.school)
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=child, bot=bot)
    Membership.objects.filter(user=child).update(ended_at="2020-01-01T00:00:00Z")

    with pytest.raises(PermissionDenied) as refused:
        services.bot_message_send(bot=bot, chat_id=chat.pk, text="Напоминание")

    assert refused.value.code == "contact_not_allowed"
    assert Message.objects.filter(chat=chat, author=bot.user).count() == 0


# --- The updates queue ---------------------------------------------------------------------------------------------


def test_messages_in_a_direct_chat_reach_the_bot_in_order(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
        send(world.parent, chat, "Когда каникулы?")
        send(world.parent, chat, "/help@" + bot.username + " каникулы")
        send(world.parent, chat, "/help@other_bot")

    assert [(update_id, kind, payload["text"]) for update_id, kind, payload in updates_of(bot)] == [
        (1, "command", "/start"),
        (2, "message", "Когда каникулы?"),
        (3, "command", "/help@" + bot.username + " каникулы"),
        (4, "message", "/help@other_bot"),
    ]
    assert updates_of(bot)[2][2]["command_args"] == "каникулы"


def test_in_a_group_chat_a_bot_gets_commands_only_and_never_its_own_or_system_messages(
    django_capture_on_commit_callbacks,
):
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member])
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        services.bot_chat_add(actor=owner, bot=bot, chat_id=chat.pk)
        send(member, chat, "Всем привет")
        send(member, chat, "/poll Пойдём в музей?")
        services.bot_message_send(bot=bot, chat_id=chat.pk, text="/start сам себе")

    assert [(kind, payload["text"]) for _id, kind, payload in updates_of(bot)] == [("command", "/poll Пойдём в музей?")]


def test_a_bot_is_told_nothing_of_chats_it_is_not_in(django_capture_on_commit_callbacks):
    world = make_school_with_chats()
    bot = make_bot(organisation=world.school)
    with django_capture_on_commit_callbacks(execute=True):
        send(world.teacher, world.parents_chat, "/start")
        send(world.teacher, world.staff_chat, "Педсовет в 15:00")

    assert Update.objects.count() == 0
    with pytest.raises(PermissionDenied) as refused:
        services.bot_message_send(bot=bot, chat_id=world.parents_chat.pk, text="Я тут")
    assert refused.value.code == "chat_not_allowed"
    assert Message.objects.filter(author=bot.user).count() == 0


def test_the_hook_costs_no_query_for_a_chat_without_bots(django_capture_on_commit_callbacks):
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member])
    make_bot()
    selectors.chat_bots_rebuild()
    message = send(member, chat, "Просто сообщение")

    with CaptureQueriesContext(connection) as queries:
        services.message_hook(message)

    assert len(queries) == 0


def test_the_hook_costs_no_query_for_a_direct_chat_between_people(django_capture_on_commit_callbacks):
    from chats.tests.factories import make_direct_chat

    first, second = make_user(), make_user()
    chat = make_direct_chat(first, second)
    make_bot()
    services.message_hook(send(first, chat, "Здравствуйте"))  # the map of bot accounts is built once
    message = send(second, chat, "Добрый день")

    with CaptureQueriesContext(connection) as queries:
        services.message_hook(message)

    assert len(queries) == 0
    assert Update.objects.count() == 0


def test_a_direct_chat_with_a_staff_only_bot_opened_another_way_gives_it_nothing(
    django_capture_on_commit_callbacks,
):
    """Someone who shares a group chat with a bot may open a direct chat
    with its account from the chat; that is no way round "verified staff
    only"."""
    from chats.tests.factories import make_direct_chat

    world = make_school_with_class()
    bot = make_bot(is_staff_only=True)
    chat = make_direct_chat(world.parent, bot.user)
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "/start")

    assert Update.objects.count() == 0
    teacher = verified_teacher(world.school)
    teacher_chat = make_direct_chat(teacher, bot.user)
    with django_capture_on_commit_callbacks(execute=True):
        send(teacher, teacher_chat, "/start")
    assert [kind for _id, kind, _payload in updates_of(bot)] == ["command"]


def test_the_cache_of_chats_with_bots_is_rebuilt_when_redis_forgot_it(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    cache.clear()

    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Вы тут?")

    assert [payload["text"] for _id, _kind, payload in updates_of(bot)] == ["/start", "Вы тут?"]
    assert selectors.chat_bot_ids(chat) == [bot.pk]


def test_a_removed_bot_stops_getting_updates(django_capture_on_commit_callbacks):
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member])
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        services.bot_chat_add(actor=owner, bot=bot, chat_id=chat.pk)
        services.bot_chat_remove(actor=owner, bot=bot, chat_id=chat.pk)
        send(member, chat, "/start")

    assert Update.objects.count() == 0
    assert selectors.chat_bot_ids(chat) == []


def test_only_a_moderator_adds_a_bot_to_a_group_chat():
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member])
    bot = make_bot()

    with pytest.raises(PermissionDenied) as refused:
        services.bot_chat_add(actor=member, bot=bot, chat_id=chat.pk)

    assert refused.value.code == "not_moderator"
    assert not ChatMember.objects.filter(chat=chat, user=bot.user).exists()


def test_a_bot_of_another_school_is_not_added_to_a_chat_with_a_child_in_safe_mode():
    world = make_school_with_class()
    teacher = verified_teacher(world.school)
    chat = make_group_chat(owner=teacher, members=[world.student])
    other_school = make_organisation()
    organisation_services.membership_create(actor=None, user=teacher, organisation=other_school, role=Role.TEACHER)
    bot = make_bot(organisation=other_school)

    with pytest.raises(PermissionDenied) as refused:
        services.bot_chat_add(actor=teacher, bot=bot, chat_id=chat.pk)

    assert refused.value.code == "contact_not_allowed"
    assert not ChatMember.objects.filter(chat=chat, user=bot.user).exists()


# --- Buttons -------------------------------------------------------------------------------------------------------


def test_pressing_a_button_queues_a_callback_query(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    with django_capture_on_commit_callbacks(execute=True):
        message, _chat = services.bot_message_send(
            bot=bot,
            chat_id=chat.pk,
            text="Выберите класс",
            buttons=[[{"text": "7А", "callback_data": "class:7a"}, {"text": "7Б", "callback_data": "class:7b"}]],
        )
        services.button_press(user=world.parent, chat_id=chat.pk, seq=message.seq, row="0", column="1")

    update_id, kind, payload = updates_of(bot)[-1]
    assert (update_id, kind) == (2, "callback_query")
    assert payload["data"] == "class:7b"
    assert payload["from"]["id"] == world.parent.pk
    assert payload["message"]["seq"] == message.seq
    assert payload["message"]["buttons"] == message.buttons
    assert payload["id"].startswith(str(bot.pk) + "-")


@pytest.mark.parametrize(("row", "column"), [("0", "5"), ("3", "0"), ("x", "0"), ("", "")])
def test_a_button_that_does_not_exist_is_not_found(row, column, django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    message, _chat = services.bot_message_send(
        bot=bot, chat_id=chat.pk, text="Да?", buttons=[[{"text": "Да", "callback_data": "yes"}]]
    )

    with pytest.raises(NotFound):
        services.button_press(user=world.parent, chat_id=chat.pk, seq=message.seq, row=row, column=column)

    assert Update.objects.filter(kind=UpdateKind.CALLBACK_QUERY).count() == 0


def test_a_stranger_cannot_press_buttons_in_someone_elses_chat(django_capture_on_commit_callbacks):
    world = make_school_with_class()
    bot = make_bot()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    message, _chat = services.bot_message_send(
        bot=bot, chat_id=chat.pk, text="Да?", buttons=[[{"text": "Да", "callback_data": "yes"}]]
    )

    with pytest.raises(NotFound):
        services.button_press(user=make_user(), chat_id=chat.pk, seq=message.seq, row=0, column=0)

    assert Update.objects.filter(kind=UpdateKind.CALLBACK_QUERY).count() == 0


def test_bot_buttons_are_in_the_message_payload_of_the_chat():
    from chats.events import message_payload

    world = make_school_with_class()
    bot = make_bot()
    chat = services.bot_start(user=world.parent, bot=bot)
    buttons = [[{"text": "Да", "callback_data": "yes"}]]
    message, _chat = services.bot_message_send(bot=bot, chat_id=chat.pk, text="Да?", buttons=buttons)
    plain = send(world.parent, chat, "Ок")

    assert message_payload(message)["buttons"] == buttons
    assert "buttons" not in message_payload(plain)


@pytest.mark.django_db(transaction=True)
def test_a_bot_is_created_while_the_cache_is_down_and_the_outage_is_logged(private_redis, settings, caplog):
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": private_redis.url}}
    private_redis.stop()

    bot = make_bot(username="outage_bot")

    assert Bot.objects.filter(pk=bot.pk, username="outage_bot").exists()
    assert "the map of chats with bots was not updated" in caplog.text
