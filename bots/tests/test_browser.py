"""A bot in headless Chromium against a real daphne: starting it from its
page, its buttons arriving live in the open chat, pressing one, and the
bot's answer to the press."""

import pytest

from bots import services
from bots.models import Update, UpdateKind
from bots.tests.factories import make_bot
from organisations.tests.factories import make_school_with_class
from tests.browser.test_chats_browser import TIMEOUT_MS, UNLABELLED_CONTROLS, signed_in
from tests.browser.test_pages_live_browser import elsewhere, no_problems

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_start_a_bot_see_its_buttons_live_and_press_one(live_daphne, browser, artifacts_dir):
    world = make_school_with_class(students=1)
    bot = make_bot(name="Школьный помощник", description="Расписание, оценки, домашние задания")
    context = signed_in(browser, live_daphne, world.parent)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text + " " + message.location["url"]) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_daphne.url}/bots/{bot.username}/")
    assert page.locator("h1").inner_text() == "Школьный помощник"
    page.locator("form[action$='/start/'] button[type=submit]").click()
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    assert page.locator("#m1 .body").inner_text() == "/start"
    chat_id = int(page.locator("#messages").get_attribute("data-chat"))
    page.evaluate("window.notReloaded = true")

    elsewhere(
        lambda: services.bot_message_send(
            bot=bot,
            chat_id=chat_id,
            text="Чем помочь?",
            buttons=[
                [{"text": "Расписание", "callback_data": "timetable"}, {"text": "Оценки", "callback_data": "marks"}]
            ],
        )
    )

    page.wait_for_selector("#m2 .bot-buttons button", timeout=TIMEOUT_MS)
    assert page.locator("#m2 .body").inner_text() == "Чем помочь?"
    assert page.locator("#m2 .bot-buttons button").all_inner_texts() == ["Расписание", "Оценки"]
    assert page.evaluate("window.notReloaded") is True
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.screenshot(path=str(artifacts_dir / "bot-buttons.png"), full_page=True)

    page.locator("#m2 .bot-buttons button", has_text="Оценки").click()
    page.wait_for_load_state()
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    press = Update.objects.get(bot=bot, kind=UpdateKind.CALLBACK_QUERY)
    assert press.payload["data"] == "marks"
    assert press.payload["from"]["id"] == world.parent.pk

    elsewhere(lambda: services.callback_answer(bot=bot, callback_query_id=press.payload["id"], text="Открываю оценки"))

    page.wait_for_selector("#bot-answer:has-text('Открываю оценки')", timeout=TIMEOUT_MS)
    assert no_problems(problems) == []
    context.close()


def test_bot_buttons_work_without_javascript(live_daphne, browser):
    world = make_school_with_class(students=1)
    bot = make_bot(name="Школьный помощник")
    chat = services.bot_start(user=world.parent, bot=bot)
    services.bot_message_send(
        bot=bot, chat_id=chat.pk, text="Подтвердите", buttons=[[{"text": "Подтверждаю", "callback_data": "ok"}]]
    )
    context = signed_in(browser, live_daphne, world.parent, java_script_enabled=False)
    page = context.new_page()

    page.goto(f"{live_daphne.url}/chats/{chat.pk}/")
    page.get_by_role("button", name="Подтверждаю").click()
    page.wait_for_load_state()

    assert Update.objects.get(bot=bot, kind=UpdateKind.CALLBACK_QUERY).payload["data"] == "ok"
    assert page.url.endswith(f"/chats/{chat.pk}/#m2")
    context.close()
