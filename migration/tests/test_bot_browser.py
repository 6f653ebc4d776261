"""The migration bot in headless Chromium against a real daphne: a verified
teacher starts «Перенос чатов» from its page, sees their old chat with a
button, presses «Move» and reads the result and the summary. The bot's
Celery task is run here, in the test (no worker runs in tests)."""

import pytest

from bots import services as bot_services
from bots.models import Update
from migration.models import LegacyChat
from migration.tests.test_bot import PEER, World
from tests.browser.test_chats_browser import TIMEOUT_MS, signed_in
from tests.browser.test_pages_live_browser import elsewhere, no_problems

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def run_the_bot(world: World) -> int:
    """What the Celery worker would do: hand the pending updates to the bot."""

    def run() -> int:
        pending = Update.objects.filter(bot=world.bot, confirmed_at__isnull=True).order_by("update_id")
        return sum(bot_services.builtin_update_process(update_pk=pk) for pk in pending.values_list("pk", flat=True))

    return int(elsewhere(run))


def test_a_teacher_starts_the_bot_and_moves_a_chat(live_daphne, browser, artifacts_dir, no_follow_ups, settings):
    settings.PUBLIC_URL = live_daphne.url
    world = World()
    world.upload(world.export(world.chat(PEER, title="7Б — родители")))
    context = signed_in(browser, live_daphne, world.teacher)
    page = context.new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text + " " + message.location["url"]) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(f"{live_daphne.url}/bots/chat_migration_bot/")
    assert page.locator("h1").inner_text() == "Перенос чатов"
    page.locator("form[action$='/start/'] button[type=submit]").click()
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    assert page.locator("#m1 .body").inner_text() == "/start"
    assert run_the_bot(world) == 1

    page.wait_for_selector("#m2 .bot-buttons button", timeout=TIMEOUT_MS)
    assert "1. «7Б — родители»: 3 members" in page.locator("#m2 .body").inner_text()
    assert page.locator("#m2 .bot-buttons button").all_inner_texts() == ["Move «7Б — родители»", "Move all"]
    page.screenshot(path=str(artifacts_dir / "migration-bot-list.png"), full_page=True)

    page.locator("#m2 .bot-buttons button", has_text="Move «7Б — родители»").click()
    page.wait_for_load_state()
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    assert run_the_bot(world) == 1

    page.wait_for_selector("#m4 .body", timeout=TIMEOUT_MS)
    legacy = LegacyChat.objects.get(peer_id=PEER)
    assert legacy.chat_id is not None
    new_chat_url = f"{live_daphne.url}/chats/{legacy.chat_id}/"
    assert page.locator("#m3 .body").inner_text() == (
        f"✓ «7Б — родители» moved: 2 members, 1 invited by SMS: {new_chat_url}"
    )
    summary = page.locator("#m4 .body").inner_text()
    assert summary.startswith("Done! What has changed:")
    assert f"teacher (verified), {world.organisation.short_name}" in summary
    assert f"{live_daphne.url}/education/" in summary
    assert no_follow_ups == [legacy.pk]
    page.screenshot(path=str(artifacts_dir / "migration-bot-summary.png"), full_page=True)

    # The new chat opens, with its history.
    page.goto(new_chat_url)
    assert page.locator("h1").inner_text().strip().startswith("7Б — родители")
    assert page.get_by_text("Добрый вечер!").count() == 1
    assert no_problems(problems) == []
    context.close()
