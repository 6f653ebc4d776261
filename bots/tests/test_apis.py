"""The Bot API over HTTP: tokens, updates, sending and editing, buttons,
webhook settings, rate limits and bad input."""

import json
import threading

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.tests.factories import make_token
from bots import services
from bots.models import Bot, BotToken, Update, WebhookDelivery
from bots.tests.factories import bot_client, call, make_bot_with_token
from chats.models import Message, MessageRevision
from chats.tests.factories import make_group_chat, send
from organisations.tests.factories import make_organisation, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(django_capture_on_commit_callbacks):
    """A parent who started a bot: (world, bot, token, chat)."""
    world = make_school_with_class()
    bot, token = make_bot_with_token(name="Школьный помощник", organisation=world.school)
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    return world, bot, token, chat


# --- Tokens --------------------------------------------------------------------------------------------------------


def test_get_me_answers_the_bots_profile():
    world = make_school_with_class()
    bot, token = make_bot_with_token(
        name="Школьный помощник", organisation=world.school, description="Расписание и домашние задания"
    )

    response = call(bot_client(token), "getMe")

    assert response.status_code == 200
    assert response.json() == {
        "id": bot.user_id,
        "username": bot.username,
        "name": "Школьный помощник",
        "description": "Расписание и домашние задания",
        "is_verified": False,
        "is_staff_only": False,
        "organisation": {"id": world.school.pk, "short_name": world.school.short_name},
        "webhook_url": "",
        "pending_update_count": 0,
    }


@pytest.mark.parametrize(
    "header",
    [None, "Bot", "Bot 1:not-a-token", "Bot a b", "Token 1:abc", "Bearer 1:abc", "Bot " + "x" * 200],
)
def test_a_missing_or_invalid_token_is_401(header):
    make_bot_with_token()
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = call(client, "getMe")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bot realm="api"'


def test_a_revoked_token_is_401_and_a_new_one_works():
    bot, token = make_bot_with_token()
    services.bot_token_revoke(token=BotToken.objects.get(bot=bot))

    response = call(bot_client(token), "getMe")

    assert response.status_code == 401
    assert response.json()["code"] == "invalid_token"
    assert call(bot_client(services.bot_token_issue(bot=bot)), "getMe").status_code == 200


def test_a_disabled_bot_is_403():
    bot, token = make_bot_with_token()
    Bot.objects.filter(pk=bot.pk).update(is_active=False)

    response = call(bot_client(token), "getMe")

    assert response.status_code == 403
    assert response.json()["code"] == "bot_disabled"


def test_a_persons_api_token_does_not_open_the_bot_api_and_a_bot_token_not_the_persons_api():
    _user, person_token = make_token()
    _bot, bot_token = make_bot_with_token()
    person = APIClient()
    person.credentials(HTTP_AUTHORIZATION="Token " + person_token)

    assert call(person, "getMe").status_code == 401
    assert bot_client(bot_token).get("/api/v1/me/").status_code == 401
    assert bot_client(bot_token).get("/api/v1/chats/").status_code == 401


def test_another_organisations_bot_cannot_write_to_a_chat_it_is_not_in(started):
    _world, _bot, _token, chat = started
    _other, other_token = make_bot_with_token(organisation=make_organisation())

    response = call(bot_client(other_token), "sendMessage", {"chat_id": chat.pk, "text": "Здравствуйте!"})

    assert response.status_code == 403
    assert response.json()["code"] == "chat_not_allowed"
    assert Message.objects.filter(chat=chat).count() == 1  # only /start
    unknown = call(bot_client(other_token), "sendMessage", {"chat_id": 10**9, "text": "Здравствуйте!"})
    assert unknown.status_code == 403
    assert unknown.json() == response.json()


# --- Updates -------------------------------------------------------------------------------------------------------


def test_get_updates_returns_the_start_command_and_the_offset_confirms_it(started, django_capture_on_commit_callbacks):
    world, _bot, token, chat = started
    client = bot_client(token)

    first = call(client, "getUpdates", {})
    assert first.status_code == 200
    [update] = first.json()
    assert update["update_id"] == 1
    assert update["message"]["command"] == "start"
    assert update["message"]["chat"]["id"] == chat.pk
    assert update["message"]["from"]["id"] == world.parent.pk
    # Without an offset the same update comes again.
    assert [u["update_id"] for u in call(client, "getUpdates", {}).json()] == [1]

    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Что задали по алгебре?")
    second = call(client, "getUpdates", {"offset": 2})
    assert [(u["update_id"], u["message"]["text"]) for u in second.json()] == [(2, "Что задали по алгебре?")]
    assert list(Update.objects.filter(confirmed_at__isnull=True).values_list("update_id", flat=True)) == [2]
    assert call(client, "getUpdates", {"offset": 3}).json() == []


def test_get_updates_limit(started, django_capture_on_commit_callbacks):
    world, _bot, token, chat = started
    with django_capture_on_commit_callbacks(execute=True):
        for number in range(3):
            send(world.parent, chat, f"Вопрос {number}")

    response = call(bot_client(token), "getUpdates", {"limit": 2})

    assert [u["update_id"] for u in response.json()] == [1, 2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout": 26}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"offset": "первый"}, "offset"),
        ({"offset": True}, "offset"),
    ],
)
def test_bad_get_updates_input_names_the_field(started, body, field):
    _world, _bot, token, _chat = started

    response = call(bot_client(token), "getUpdates", body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Update.objects.filter(confirmed_at__isnull=False).count() == 0


def test_malformed_json_is_400(started):
    _world, _bot, token, _chat = started
    client = bot_client(token)

    broken = client.post("/api/v1/bot/sendMessage/", data='{"chat_id": 1, "text": ', content_type="application/json")
    not_an_object = client.post("/api/v1/bot/sendMessage/", data="[1, 2]", content_type="application/json")

    assert broken.status_code == 400
    assert broken.json()["code"] == "parse_error"
    assert not_an_object.status_code == 400
    assert not_an_object.json()["field"] == "body"


@pytest.mark.django_db(transaction=True)
def test_a_long_poll_wakes_up_when_an_update_arrives():
    world = make_school_with_class()
    bot, token = make_bot_with_token()
    chat = services.bot_start(user=world.parent, bot=bot)
    client = bot_client(token)
    assert [u["update_id"] for u in call(client, "getUpdates", {"offset": 1}).json()] == [1]
    answers = []

    def poll():
        try:
            answers.append(call(client, "getUpdates", {"offset": 2, "timeout": 20}))
        finally:
            # The poll's thread had a connection of its own.
            connection.close()

    poller = threading.Thread(target=poll)
    poller.start()
    # Sent while the poll waits (or just before it started waiting: it is
    # woken either way, never left to its timeout).
    send(world.parent, chat, "Можно вопрос?")
    poller.join(timeout=30)

    assert not poller.is_alive()
    [response] = answers
    assert [u["message"]["text"] for u in response.json()] == ["Можно вопрос?"]


def test_a_long_poll_with_nothing_to_wait_for_answers_an_empty_list(started):
    _world, _bot, token, _chat = started

    response = call(bot_client(token), "getUpdates", {"offset": 2, "timeout": 1})

    assert response.status_code == 200
    assert response.json() == []


# --- Sending and editing -------------------------------------------------------------------------------------------


def test_send_message_with_buttons(started):
    _world, bot, token, chat = started
    buttons = [[{"text": "Расписание", "callback_data": "timetable"}], [{"text": "Оценки", "callback_data": "marks"}]]

    response = call(bot_client(token), "sendMessage", {"chat_id": chat.pk, "text": "Чем помочь?", "buttons": buttons})

    assert response.status_code == 200
    data = response.json()
    message = Message.objects.get(chat=chat, author=bot.user)
    assert data["message_id"] == message.pk
    assert data["seq"] == 2
    assert data["text"] == "Чем помочь?"
    assert data["buttons"] == buttons
    assert data["from"]["id"] == bot.user_id
    assert message.buttons == buttons
    assert Update.objects.filter(bot=bot).count() == 1  # its own message is not an update


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 42}, "text"),
        ({"text": "я" * 4001}, "text"),
        ({"text": "Да?", "buttons": "yes"}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Да"}]]}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Да", "callback_data": "x" * 65}]]}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Д" * 65, "callback_data": "yes"}]]}, "buttons"),
        ({"text": "Да?", "buttons": [[]]}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Да", "callback_data": "y"}]] * 9}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Да", "callback_data": "y"}] * 9]}, "buttons"),
        ({"text": "Да?", "buttons": [[{"text": "Да", "callback_data": "y", "url": "http://x"}]]}, "buttons"),
        ({"text": "Да?", "reply_to_seq": "first"}, "reply_to_seq"),
        ({"text": "Да?", "reply_to_seq": 99}, "reply_to_seq"),
        ({"text": "Да?", "chat_id": "general"}, "chat_id"),
        ({"text": "Да?", "chat_id": None}, "chat_id"),
    ],
)
def test_bad_send_message_input_names_the_field_and_sends_nothing(started, body, field):
    _world, bot, token, chat = started
    body = {"chat_id": chat.pk, **body}

    response = call(bot_client(token), "sendMessage", body)

    assert response.status_code == 400
    assert response.json()["field"] == field
    assert Message.objects.filter(author=bot.user).count() == 0


def test_a_bot_flooding_a_chat_is_throttled(started, settings):
    settings.BOT_CHAT_SEND_RATE = "3/minute"
    _world, bot, token, chat = started
    client = bot_client(token)

    answers = [call(client, "sendMessage", {"chat_id": chat.pk, "text": f"Сообщение {n}"}) for n in range(4)]

    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    assert answers[3].json()["code"] == "rate_limited"
    assert 1 <= int(answers[3]["Retry-After"]) <= 60
    assert Message.objects.filter(author=bot.user).count() == 3


def test_the_bot_api_has_a_budget_per_bot(started, settings):
    settings.BOT_API_RATE = "2/minute"
    _world, _bot, token, _chat = started
    client = bot_client(token)
    _other, other_token = make_bot_with_token()

    assert [call(client, "getMe").status_code for _ in range(3)] == [200, 200, 429]
    assert call(bot_client(other_token), "getMe").status_code == 200


def test_a_bot_cannot_write_after_the_person_left(started):
    world, bot, token, chat = started
    from chats.services.chats import chat_leave

    chat_leave(user=world.parent, chat_id=chat.pk)

    response = call(bot_client(token), "sendMessage", {"chat_id": chat.pk, "text": "Вы тут?"})

    assert response.status_code == 403
    assert response.json()["code"] == "chat_left"
    assert Message.objects.filter(author=bot.user).count() == 0


def test_edit_message_text_and_buttons(started):
    _world, _bot, token, chat = started
    client = bot_client(token)
    sent = call(
        client,
        "sendMessage",
        {"chat_id": chat.pk, "text": "Голосуем", "buttons": [[{"text": "За", "callback_data": "yes"}]]},
    ).json()

    response = call(
        client,
        "editMessageText",
        {"chat_id": chat.pk, "seq": sent["seq"], "text": "Голосование закрыто", "buttons": []},
    )

    assert response.status_code == 200
    assert response.json()["text"] == "Голосование закрыто"
    assert response.json()["buttons"] == []
    message = Message.objects.get(pk=sent["message_id"])
    assert (message.body, message.buttons) == ("Голосование закрыто", [])
    assert list(MessageRevision.objects.filter(message=message).values_list("body", flat=True)) == ["Голосуем"]


def test_a_bot_edits_only_its_own_messages(started):
    _world, _bot, token, chat = started

    response = call(bot_client(token), "editMessageText", {"chat_id": chat.pk, "seq": 1, "text": "/stop"})

    assert response.status_code == 403
    assert response.json()["code"] == "not_author"
    assert Message.objects.get(chat=chat, seq=1).body == "/start"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"seq": "1", "text": "x"}, 400, "seq"),
        ({"seq": 2}, 400, "text"),
        ({"seq": 2, "text": ""}, 400, "text"),
        ({"seq": 2, "buttons": [[{"text": 1, "callback_data": "a"}]]}, 400, "buttons"),
    ],
)
def test_bad_edit_input_names_the_field_and_changes_nothing(started, body, status, field):
    _world, bot, token, chat = started
    client = bot_client(token)
    call(client, "sendMessage", {"chat_id": chat.pk, "text": "Исходный текст"})

    response = call(client, "editMessageText", {"chat_id": chat.pk, **body})

    assert response.status_code == status
    assert response.json()["field"] == field
    assert Message.objects.get(chat=chat, author=bot.user).body == "Исходный текст"


def test_editing_an_unknown_message_is_404(started):
    _world, _bot, token, chat = started

    response = call(bot_client(token), "editMessageText", {"chat_id": chat.pk, "seq": 50, "text": "x"})

    assert response.status_code == 404


def test_answering_a_button_press(started, django_capture_on_commit_callbacks):
    world, bot, token, chat = started
    client = bot_client(token)
    sent = call(
        client, "sendMessage", {"chat_id": chat.pk, "text": "Да?", "buttons": [[{"text": "Да", "callback_data": "y"}]]}
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        services.button_press(user=world.parent, chat_id=chat.pk, seq=sent["seq"], row=0, column=0)
    [press] = call(client, "getUpdates", {"offset": 2}).json()

    assert press["callback_query"]["data"] == "y"
    response = call(
        client, "answerCallbackQuery", {"callback_query_id": press["callback_query"]["id"], "text": "Принято"}
    )
    assert response.status_code == 200
    assert Update.objects.get(bot=bot, update_id=press["update_id"]).answered_at is not None
    assert call(client, "answerCallbackQuery", {"callback_query_id": "nope"}).status_code == 404
    too_long = call(
        client, "answerCallbackQuery", {"callback_query_id": press["callback_query"]["id"], "text": "я" * 201}
    )
    assert too_long.status_code == 400
    assert too_long.json()["field"] == "text"


def test_a_bot_cannot_answer_another_bots_button_press(started, django_capture_on_commit_callbacks):
    world, _bot, token, chat = started
    sent = call(
        bot_client(token),
        "sendMessage",
        {"chat_id": chat.pk, "text": "Да?", "buttons": [[{"text": "Да", "callback_data": "y"}]]},
    ).json()
    with django_capture_on_commit_callbacks(execute=True):
        press = services.button_press(user=world.parent, chat_id=chat.pk, seq=sent["seq"], row=0, column=0)
    _other, other_token = make_bot_with_token()

    response = call(bot_client(other_token), "answerCallbackQuery", {"callback_query_id": press.payload["id"]})

    assert response.status_code == 404
    assert Update.objects.get(pk=press.pk).answered_at is None


# --- Webhook settings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://127.0.0.1:8000/hook", "webhook_url_internal"),
        ("http://localhost/hook", "webhook_url_internal"),
        ("http://10.0.0.5/hook", "webhook_url_internal"),
        ("http://192.168.1.10/hook", "webhook_url_internal"),
        ("http://172.16.0.1/hook", "webhook_url_internal"),
        ("http://169.254.169.254/latest/meta-data/", "webhook_url_internal"),
        ("http://[::1]/hook", "webhook_url_internal"),
        ("http://[fd00::1]/hook", "webhook_url_internal"),
        ("http://[::ffff:127.0.0.1]/hook", "webhook_url_internal"),
        ("http://0.0.0.0/hook", "webhook_url_internal"),
        ("http://100.64.0.1/hook", "webhook_url_internal"),
        ("ftp://example.org/hook", "webhook_url_invalid"),
        ("http://user:password@example.org/hook", "webhook_url_invalid"),
        ("hook", "webhook_url_invalid"),
        ("http://example.org:99999/hook", "webhook_url_invalid"),
        ("http://no-such-host.invalid/hook", "webhook_host_unknown"),
    ],
)
def test_webhooks_on_internal_or_bad_addresses_are_refused(url, code):
    bot, token = make_bot_with_token()

    response = call(bot_client(token), "setWebhook", {"url": url})

    assert response.status_code == 400
    assert response.json()["code"] == code
    assert response.json()["field"] == "url"
    bot.refresh_from_db()
    assert bot.webhook_url == ""


@pytest.mark.parametrize("secret", ["short", "x" * 129, "with spaces in it!!", 42])
def test_a_bad_webhook_secret_is_refused(secret):
    bot, token = make_bot_with_token()
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=True)

    response = call(bot_client(token), "setWebhook", {"url": "http://127.0.0.1:9/hook", "secret": secret})

    assert response.status_code == 400
    assert response.json()["field"] == "secret"
    bot.refresh_from_db()
    assert bot.webhook_url == ""


def test_an_internal_webhook_allowed_by_an_administrator(started):
    _world, bot, token, _chat = started
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=True)
    client = bot_client(token)

    response = call(client, "setWebhook", {"url": "http://127.0.0.1:9/hook", "secret": "s" * 20})

    assert response.status_code == 200
    assert response.json() == {"url": "http://127.0.0.1:9/hook", "secret": "s" * 20}
    # The pending /start is now to be delivered by webhook, and polling is closed.
    assert list(WebhookDelivery.objects.values_list("update__update_id", "state")) == [(1, "pending")]
    refused = call(client, "getUpdates", {})
    assert refused.status_code == 409
    assert refused.json()["code"] == "webhook_active"

    assert call(client, "deleteWebhook").status_code == 200
    assert WebhookDelivery.objects.count() == 0
    assert [u["update_id"] for u in call(client, "getUpdates", {}).json()] == [1]


def test_a_bot_cannot_set_its_own_allow_internal_flag():
    bot, token = make_bot_with_token()

    response = call(
        bot_client(token),
        "setWebhook",
        {"url": "http://127.0.0.1:9/hook", "allow_internal_webhook": True},
    )

    assert response.status_code == 400
    bot.refresh_from_db()
    assert bot.allow_internal_webhook is False


def test_a_webhook_secret_is_made_up_when_not_given():
    bot, token = make_bot_with_token()
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=True)

    response = call(bot_client(token), "setWebhook", {"url": "http://127.0.0.1:9/hook"})

    assert response.status_code == 200
    bot.refresh_from_db()
    assert response.json()["secret"] == bot.webhook_secret
    assert len(bot.webhook_secret) >= 32


def test_a_group_chat_bot_sends_to_the_group():
    owner, member = make_user(), make_user()
    chat = make_group_chat(owner=owner, members=[member])
    bot, token = make_bot_with_token()
    services.bot_chat_add(actor=owner, bot=bot, chat_id=chat.pk)

    response = call(bot_client(token), "sendMessage", {"chat_id": chat.pk, "text": "Напоминаю о собрании"})

    assert response.status_code == 200
    assert response.json()["chat"] == {"id": chat.pk, "type": "group", "title": chat.title}


def test_an_oversized_body_is_refused_before_it_is_read(started):
    _world, bot, token, chat = started
    body = json.dumps({"chat_id": chat.pk, "text": "я" * 40000}, ensure_ascii=False)

    response = bot_client(token).post("/api/v1/bot/sendMessage/", data=body, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["code"] == "body_too_large"
    assert response.json()["field"] == "body"
    assert Message.objects.filter(author=bot.user).count() == 0
