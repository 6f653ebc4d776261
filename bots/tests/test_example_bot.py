"""examples/echo_bot.py against a real daphne: by long polling, and by
webhook delivered by a real Celery worker. What a person would check: the
bot greets with a button after Start, and answers the press."""

import hashlib
import hmac
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bots import services
from bots.models import Bot, DeliveryState, Update, WebhookDelivery
from bots.tests.factories import make_bot_with_token
from chats.models import Message
from organisations.tests.factories import make_user
from tests.live import ROOT, database_environment, free_port

EXAMPLE = ROOT / "examples" / "echo_bot.py"
SECRET = "example-webhook-secret-42"


def wait_for(condition: Callable[[], Any], what: str, *, deadline_seconds: float = 60) -> Any:
    """Poll until `condition()` is truthy (end-to-end: other processes are at work)."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


class Process:
    def __init__(self, arguments: list[str], *, log: Path, environment: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            arguments, cwd=ROOT, env={**os.environ, **(environment or {})}, stdout=self._log, stderr=subprocess.STDOUT
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


@pytest.fixture
def processes(tmp_path) -> Iterator[Callable[..., Process]]:
    started: list[Process] = []

    def start(name: str, arguments: list[str], environment: dict[str, str] | None = None) -> Process:
        process = Process(arguments, log=tmp_path / (name + ".log"), environment=environment)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def bot_messages(chat_id: int, bot: Bot) -> list[Message]:
    return list(Message.objects.filter(chat_id=chat_id, author=bot.user).order_by("seq"))


def start_and_press(bot: Bot, process: Process) -> None:
    """A person starts the bot, gets the greeting with its button, presses
    it and gets the answer."""
    person = make_user()
    chat = services.bot_start(user=person, bot=bot)
    greeting = wait_for(
        lambda: bot_messages(chat.pk, bot), "the greeting; bot output:\n" + process.output(), deadline_seconds=60
    )[0]
    assert greeting.body == "Здравствуйте! Я пример бота Парты. Нажмите кнопку."
    assert greeting.buttons == [[{"text": "Нажми меня", "callback_data": "pressed"}]]

    press = services.button_press(user=person, chat_id=chat.pk, seq=greeting.seq, row=0, column=0)

    answer = wait_for(lambda: bot_messages(chat.pk, bot)[1:], "the answer to the press")[0]
    assert answer.body == "Вы нажали кнопку. Спасибо!"
    wait_for(lambda: Update.objects.get(pk=press.pk).answered_at, "answerCallbackQuery")


def test_the_example_bot_by_long_polling(live_daphne, processes):
    bot, token = make_bot_with_token(name="Пример")
    process = processes(
        "echo-bot", [sys.executable, str(EXAMPLE), "--url", live_daphne.url], {"PARTA_BOT_TOKEN": token}
    )
    wait_for(lambda: "polling as @" + bot.username in process.output(), "the bot to start: " + process.output())

    start_and_press(bot, process)


def test_the_example_bot_by_webhook(live_daphne, processes):
    bot, token = make_bot_with_token(name="Пример с вебхуком")
    # The bot runs next to the portal (127.0.0.1): an administrator allowed it.
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=True)
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    environment = {
        "DJANGO_SETTINGS_MODULE": "portal.settings.test",
        **database_environment(),
    }
    processes(
        "celery",
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "portal",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "--loglevel=INFO",
        ],
        environment,
    )
    process = processes(
        "echo-bot",
        [
            sys.executable,
            str(EXAMPLE),
            "--url",
            live_daphne.url,
            "--webhook",
            hook,
            "--listen",
            f"127.0.0.1:{port}",
            "--secret",
            SECRET,
        ],
        {"PARTA_BOT_TOKEN": token},
    )
    wait_for(lambda: Bot.objects.get(pk=bot.pk).webhook_url == hook, "setWebhook: " + process.output())
    bot.refresh_from_db()

    start_and_press(bot, process)

    # The example answers 200 once it has handled the update: the delivery is
    # marked a moment after the bot's answer is in the chat.
    wait_for(
        lambda: (
            set(WebhookDelivery.objects.filter(bot=bot).values_list("state", flat=True)) == {DeliveryState.DELIVERED}
        ),
        "every delivery marked delivered",
    )
    assert WebhookDelivery.objects.filter(bot=bot).count() == 2
    # A forged request is refused by the example.
    body = json.dumps({"update_id": 99, "message": {"text": "/start"}}).encode()
    forged = urllib.request.Request(hook, data=body, headers={"X-Parta-Signature": "sha256=" + "0" * 64})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(forged, timeout=10)
    assert refused.value.code == 403


def test_the_documented_signature_example_holds():
    """docs/bots.md, "Verifying the signature": the worked example."""
    body = b'{"update_id": 1, "message": {"text": "/start"}}'
    expected = "sha256=7617a0e50cf58c41c502fb0af40d11de03975491ba380d079b0769c6bc2259c4"

    assert services.signature(secret="webhook-secret-0123456789", body=body) == expected
    assert expected in (ROOT / "docs" / "bots.md").read_text().replace("SHA2-256(stdin)= ", "sha256=")
    assert hmac.new(b"webhook-secret-0123456789", body, hashlib.sha256).hexdigest() == expected[7:]
