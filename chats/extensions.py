"""How higher apps (bots, adoption) follow what happens in chats without
chats importing them. Hooks are registered in the higher app's
AppConfig.ready() and run after the transaction commits, so a rolled-back
send or read is never seen.

- a message hook is called with every new message (text, system message,
  channel post, a held message when it is delivered);
- a read hook is called with (user id, chat id, read position) when a
  person's read position moved forward.

Hooks run in the sender's request or socket turn: they must be cheap for
chats they do not care about (no query per message; keep what they need in
the cache) and must not raise."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.db import transaction

if TYPE_CHECKING:
    from chats.models import Message

MessageHook = Callable[["Message"], None]
ReadHook = Callable[[int, int, int], None]
_message_hooks: list[MessageHook] = []
_read_hooks: list[ReadHook] = []


def message_hook_register(hook: MessageHook) -> None:
    if hook not in _message_hooks:
        _message_hooks.append(hook)


def read_hook_register(hook: ReadHook) -> None:
    if hook not in _read_hooks:
        _read_hooks.append(hook)


def message_created(message: "Message") -> None:
    """Run the message hooks once the current transaction commits."""
    if _message_hooks:
        transaction.on_commit(lambda: [hook(message) for hook in list(_message_hooks)])


def read_moved(*, user_id: int, chat_id: int, seq: int) -> None:
    """Run the read hooks once the current transaction commits."""
    if _read_hooks:
        transaction.on_commit(lambda: [hook(user_id, chat_id, seq) for hook in list(_read_hooks)])
