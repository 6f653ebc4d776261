"""Bots in the admin: created by superusers with their account, tokens shown
once, the internal-webhook flag for superusers only, the knowledge base of
an organisation's bots for its administrators; and housekeeping."""

import datetime

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from bots import services
from bots.models import Bot, BotToken, KnowledgeArticle, Update, UpdateKind
from bots.tests.factories import bot_client, call, make_bot
from common.errors import RateLimited
from organisations.tests.factories import make_organisation, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


def superuser_client() -> Client:
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))
    return client


def test_a_superuser_creates_a_bot_in_admin_and_issues_a_token_shown_once():
    client = superuser_client()

    response = client.post(
        "/admin/bots/bot/add/",
        {
            "name": "Школьное расписание",
            "username": "school_timetable_bot",
            "description": "Расписание уроков",
            "is_verified": "on",
            "is_listed": "on",
            "is_active": "on",
            "help_settings-TOTAL_FORMS": "0",
            "help_settings-INITIAL_FORMS": "0",
            "tokens-TOTAL_FORMS": "0",
            "tokens-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    bot = Bot.objects.get(username="school_timetable_bot")
    assert (bot.name, bot.is_verified, bot.organisation_id) == ("Школьное расписание", True, None)
    assert bot.user.display_name == "Школьное расписание"

    issued = client.post("/admin/bots/bot/", {"action": "issue_token", "_selected_action": [bot.pk]}, follow=True)
    [notice] = [str(message) for message in get_messages(issued.wsgi_request) if f" {bot.pk}:" in str(message)]
    token = notice.rsplit(" ", 1)[-1]
    assert token.startswith(str(bot.pk) + ":")
    assert BotToken.objects.get(bot=bot).key_hash == services.token_hash(token)
    assert token not in BotToken.objects.get(bot=bot).prefix
    assert call(bot_client(token), "getMe").json()["username"] == "school_timetable_bot"

    client.post("/admin/bots/bot/", {"action": "revoke_tokens", "_selected_action": [bot.pk]})
    assert call(bot_client(token), "getMe").status_code == 401


def test_bots_admin_is_for_superusers_only():
    world = make_school_with_class()
    bot = make_bot(organisation=world.school)
    administrator = world.administrator
    administrator.is_staff = True
    administrator.save(update_fields=["is_staff"])
    client = Client()
    client.force_login(administrator)

    assert client.get("/admin/bots/bot/").status_code == 403
    assert client.get(f"/admin/bots/bot/{bot.pk}/change/").status_code in (302, 403)
    assert client.get("/admin/bots/webhookdelivery/").status_code == 403


def test_only_a_superuser_may_allow_an_internal_webhook():
    bot = make_bot()
    client = superuser_client()

    page = client.get(f"/admin/bots/bot/{bot.pk}/change/").content.decode()

    assert 'name="allow_internal_webhook"' in page


def test_a_school_administrator_edits_only_the_knowledge_base_of_the_schools_bots():
    world = make_school_with_class()
    own = make_bot(organisation=world.school, name="Бот школы")
    other = make_bot(organisation=make_organisation(), name="Бот другой школы")
    platform = make_bot(name="Бот платформы")
    KnowledgeArticle.objects.create(bot=own, question="Где столовая?", answer="На первом этаже.")
    KnowledgeArticle.objects.create(bot=other, question="Где спортзал?", answer="Во дворе.")
    KnowledgeArticle.objects.create(bot=platform, question="Что такое ЕГЭ?", answer="Экзамен.")
    administrator = world.administrator
    administrator.is_staff = True
    administrator.save(update_fields=["is_staff"])
    from django.contrib.auth.models import Permission

    administrator.user_permissions.add(*Permission.objects.filter(codename__endswith="knowledgearticle"))
    client = Client()
    client.force_login(administrator)

    page = client.get("/admin/bots/knowledgearticle/").content.decode()

    assert "Где столовая?" in page
    assert "Где спортзал?" not in page
    assert "Что такое ЕГЭ?" not in page
    form = client.get("/admin/bots/knowledgearticle/add/").content.decode()
    assert f'<option value="{own.pk}">' in form
    assert f'<option value="{other.pk}">' not in form


def test_confirmed_updates_are_forgotten_after_a_week():
    bot = make_bot()
    old = services.update_create(bot=bot, kind=UpdateKind.MESSAGE, chat_id=None, payload={"text": "старое"})
    recent = services.update_create(bot=bot, kind=UpdateKind.MESSAGE, chat_id=None, payload={"text": "новое"})
    pending = services.update_create(bot=bot, kind=UpdateKind.MESSAGE, chat_id=None, payload={"text": "ждёт"})
    now = timezone.now()
    Update.objects.filter(pk=old.pk).update(confirmed_at=now - datetime.timedelta(days=8))
    Update.objects.filter(pk=recent.pk).update(confirmed_at=now - datetime.timedelta(days=1))

    assert services.updates_purge(now=now) == 1

    assert set(Update.objects.values_list("pk", flat=True)) == {recent.pk, pending.pk}


def test_starting_a_bot_again_and_again_is_throttled(settings):
    settings.CHAT_SEND_RATE = "2/minute"
    world = make_school_with_class()
    bot = make_bot()
    services.bot_start(user=world.parent, bot=bot)
    services.bot_start(user=world.parent, bot=bot)

    with pytest.raises(RateLimited):
        services.bot_start(user=world.parent, bot=bot)
