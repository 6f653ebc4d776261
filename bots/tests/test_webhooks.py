"""Webhook delivery by the Celery task to a real local HTTP server: the
signature, retries with backoff, parking after the last attempt (nothing
lost, retried from admin), and the address checked again at delivery."""

import datetime
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.admin.sites import site
from django.test import Client
from django.utils import timezone

from bots import network, services, tasks
from bots.models import Bot, DeliveryState, Update, WebhookDelivery
from bots.tests.factories import make_bot_with_token
from chats.tests.factories import send
from organisations.tests.factories import make_school_with_class, make_user

pytestmark = pytest.mark.django_db

SECRET = "webhook-secret-0123456789"


class Receiver:
    """A real HTTP server on a free local port, answering `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append(({key.lower(): value for key, value in self.headers.items()}, body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/parta-hook?bot=1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def hooked(receiver, eager_celery, django_capture_on_commit_callbacks):
    """A parent who started a bot whose webhook is the local receiver."""
    world = make_school_with_class()
    bot, _token = make_bot_with_token()
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=True)
    bot.refresh_from_db()
    services.webhook_set(bot=bot, url=receiver.url, secret=SECRET)
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=bot)
    return world, bot, chat


def test_an_update_is_posted_signed_to_the_webhook(hooked, receiver):
    _world, bot, chat = hooked

    [(headers, body)] = receiver.requests
    expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["x-parta-signature"] == expected
    assert headers["content-type"] == "application/json"
    assert headers["x-parta-update-id"] == "1"
    update = json.loads(body)
    assert update["update_id"] == 1
    assert update["message"]["command"] == "start"
    assert update["message"]["chat"]["id"] == chat.pk
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.attempts, delivery.last_error) == (DeliveryState.DELIVERED, 1, "")
    assert Update.objects.get(bot=bot).confirmed_at is not None


def test_a_webhook_that_is_down_is_retried_with_backoff_then_parked_and_nothing_is_lost(
    hooked, receiver, settings, django_capture_on_commit_callbacks
):
    settings.BOT_WEBHOOK_MAX_ATTEMPTS = 3
    settings.BOT_WEBHOOK_RETRY_BASE_SECONDS = 10
    world, _bot, chat = hooked
    receiver.status = 503
    receiver.requests.clear()
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Когда родительское собрание?")
    delivery = WebhookDelivery.objects.get(update__update_id=2)
    first_try = delivery.last_attempt_at

    assert (delivery.state, delivery.attempts, delivery.last_error) == (DeliveryState.PENDING, 1, "HTTP 503")
    assert delivery.next_attempt_at - first_try == datetime.timedelta(seconds=10)
    # Not yet due: a second run of the task does nothing.
    assert tasks.webhook_deliver(delivery.pk) == "skipped"

    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert tasks.webhook_deliver(delivery.pk) == "retry"
    delivery.refresh_from_db()
    assert delivery.attempts == 2
    assert delivery.next_attempt_at - delivery.last_attempt_at == datetime.timedelta(seconds=20)

    # The sweep of the beat enqueues what is due.
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    with django_capture_on_commit_callbacks(execute=True):
        assert services.webhook_deliveries_sweep() == 1
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.next_attempt_at) == (DeliveryState.PARKED, 3, None)
    assert len(receiver.requests) == 3
    assert Update.objects.get(pk=delivery.update_id).confirmed_at is None

    # An administrator retries it from admin once the server is back.
    receiver.status = 200
    admin_user = make_user(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/admin/bots/webhookdelivery/", {"action": "retry", "_selected_action": [delivery.pk]}, follow=True
        )
    assert response.status_code == 200
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 1)
    assert json.loads(receiver.requests[-1][1])["message"]["text"] == "Когда родительское собрание?"


def test_parked_deliveries_are_listed_in_admin(hooked, receiver, settings, django_capture_on_commit_callbacks):
    settings.BOT_WEBHOOK_MAX_ATTEMPTS = 1
    world, _bot, chat = hooked
    receiver.status = 500
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Вопрос")
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))

    response = client.get("/admin/bots/webhookdelivery/?state__exact=parked")

    assert response.status_code == 200
    assert "HTTP 500" in response.content.decode()
    assert site.is_registered(WebhookDelivery)


def test_a_webhook_is_checked_again_at_delivery_time(hooked, receiver, django_capture_on_commit_callbacks):
    """An administrator withdrew the permission (or the name now resolves
    to an internal address: DNS rebinding): nothing is sent there."""
    world, bot, chat = hooked
    receiver.requests.clear()
    Bot.objects.filter(pk=bot.pk).update(allow_internal_webhook=False)

    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Вопрос")

    assert receiver.requests == []
    delivery = WebhookDelivery.objects.get(update__update_id=2)
    assert (delivery.state, delivery.last_error) == (DeliveryState.PENDING, "webhook_url_internal")


def test_dns_rebinding_is_caught_at_delivery(monkeypatch):
    """The name resolved to a public address when the webhook was set and to
    the metadata address now."""
    answers = {"hooks.example.org": "93.184.216.34"}

    def fake_getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(network.socket, "getaddrinfo", fake_getaddrinfo)
    assert network.target_resolve("https://hooks.example.org/x", allow_internal=False).addresses == ("93.184.216.34",)

    answers["hooks.example.org"] = "169.254.169.254"
    with pytest.raises(network.WebhookUrlError) as refused:
        network.target_resolve("https://hooks.example.org/x", allow_internal=False)
    assert refused.value.code == "webhook_url_internal"


def test_a_delivery_runs_once_even_when_the_task_runs_twice(hooked, receiver):
    _world, _bot, _chat = hooked
    delivery = WebhookDelivery.objects.get()

    assert tasks.webhook_deliver(delivery.pk) == "skipped"
    assert tasks.webhook_deliver(10**9) == "skipped"
    assert len(receiver.requests) == 1


def test_deleting_the_webhook_hands_pending_updates_back_to_get_updates(
    hooked, receiver, django_capture_on_commit_callbacks
):
    world, bot, chat = hooked
    receiver.status = 503
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Вопрос")
    services.webhook_delete(bot=bot)

    updates, _timeout = services.updates_get(bot=bot, offset=None, limit=10)

    assert [update.update_id for update in updates] == [2]
    assert WebhookDelivery.objects.filter(state=DeliveryState.PENDING).count() == 0
