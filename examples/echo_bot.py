#!/usr/bin/env python3
"""An example Parta bot, written from docs/bots.md alone, with the Python
standard library only.

It answers /start with a greeting and a button, a press of the button with
an answer to the press and a message, and repeats any other text.

Long polling:
    PARTA_BOT_TOKEN=... python examples/echo_bot.py --url https://parta.example.org

Webhook (verifies X-Parta-Signature on every request):
    PARTA_BOT_TOKEN=... python examples/echo_bot.py --url https://parta.example.org \\
        --webhook https://bot.example.org/hook --listen 0.0.0.0:8443 --secret <16-128 characters>
"""

import argparse
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

GREETING = "Здравствуйте! Я пример бота Парты. Нажмите кнопку."
BUTTON = {"text": "Нажми меня", "callback_data": "pressed"}
PRESSED = "Вы нажали кнопку. Спасибо!"


class BotApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class Client:
    """The Bot API: POST /api/v1/bot/<method>/ with the token in the
    Authorization header (never in the URL)."""

    def __init__(self, base_url: str, token: str) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError("The portal's URL must start with https:// or http://")
        self.base_url = base_url.rstrip("/") + "/api/v1/bot/"
        self.token = token

    def call(self, method: str, body: dict[str, Any] | None = None, *, timeout: float = 35) -> Any:
        headers = {"Authorization": "Bot " + self.token, "Content-Type": "application/json"}
        data = None if method == "getMe" else json.dumps(body or {}).encode()
        # The scheme was checked in __init__ (http or https only).
        request = urllib.request.Request(self.base_url + method + "/", data=data, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            try:
                details = json.loads(error.read() or b"{}")
            except ValueError:
                details = {}
            if error.code == 429:
                # Over a rate limit: wait as told, then the caller tries again.
                time.sleep(int(error.headers.get("Retry-After", "1")))
            raise BotApiError(error.code, details) from None


def handle(client: Client, update: dict[str, Any]) -> None:
    """What the bot does with one update."""
    if "callback_query" in update:
        press = update["callback_query"]
        client.call("answerCallbackQuery", {"callback_query_id": press["id"], "text": "Готово"})
        if press["data"] == BUTTON["callback_data"]:
            client.call("sendMessage", {"chat_id": press["message"]["chat"]["id"], "text": PRESSED})
        return
    message = update.get("message")
    if not message:
        return
    chat_id = message["chat"]["id"]
    if message.get("command") == "start":
        client.call("sendMessage", {"chat_id": chat_id, "text": GREETING, "buttons": [[BUTTON]]})
    elif message.get("command") is None:
        client.call(
            "sendMessage",
            {"chat_id": chat_id, "text": "Вы написали: " + message["text"], "reply_to_seq": message["seq"]},
        )


def run_polling(client: Client) -> None:
    client.call("deleteWebhook")
    offset = None
    print("polling as @" + client.call("getMe")["username"], flush=True)
    while True:
        try:
            updates = client.call("getUpdates", {"offset": offset, "timeout": 25})
        except (BotApiError, OSError) as error:
            print("getUpdates failed:", error, file=sys.stderr, flush=True)
            time.sleep(1)
            continue
        for update in updates:
            try:
                handle(client, update)
            except (BotApiError, OSError) as error:
                print("update", update["update_id"], "failed:", error, file=sys.stderr, flush=True)
            offset = update["update_id"] + 1


def signature_is_valid(secret: str, body: bytes, header: str | None) -> bool:
    """HMAC-SHA256 of the raw body with the secret, "sha256=" + hex,
    compared in constant time (docs/bots.md, "Verifying the signature")."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


def run_webhook(client: Client, *, public_url: str, listen: str, secret: str) -> None:
    host, _colon, port = listen.rpartition(":")
    handled: set[int] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if not signature_is_valid(secret, body, self.headers.get("X-Parta-Signature")):
                self.send_response(403)
                self.end_headers()
                return
            update = json.loads(body)
            # A delivery may come again after a failure: handle it once.
            if update["update_id"] not in handled:
                handle(client, update)
                handled.add(update["update_id"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    client.call("setWebhook", {"url": public_url, "secret": secret})
    print("webhook at " + public_url, flush=True)
    server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the portal, e.g. https://parta.example.org")
    parser.add_argument("--token", default=os.environ.get("PARTA_BOT_TOKEN"), help="or PARTA_BOT_TOKEN")
    parser.add_argument("--webhook", help="the public URL of this bot's webhook (webhook mode)")
    parser.add_argument("--listen", default="127.0.0.1:8443", help="host:port to listen on (0.0.0.0:8443 for all)")
    parser.add_argument("--secret", help="the webhook secret (16-128 of A-Z a-z 0-9 _ -)")
    arguments = parser.parse_args()
    if not arguments.token:
        parser.error("a token is required (--token or PARTA_BOT_TOKEN)")
    client = Client(arguments.url, arguments.token)
    if arguments.webhook:
        if not arguments.secret:
            parser.error("--secret is required with --webhook")
        run_webhook(client, public_url=arguments.webhook, listen=arguments.listen, secret=arguments.secret)
    else:
        run_polling(client)


if __name__ == "__main__":
    main()
