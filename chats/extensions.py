"""How higher apps (bots, adoption) follow what happens in chats without
chats importing them. Hooks are registered in the higher app's
AppConfig.ready() and run after the transaction commits, so a rolled-back
send or read is never seen.

- a message hook is called with every new message (text, system message,
  channel post, a held message when it is delivered);
- a read hook is called with (user id, chat id, read position) when a
  person's read position moved forward.

Hooks run in the sender's request, or after the chat socket has been
answered (`hooks_deferred`): they must be cheap for chats they do not care
about (no query per message; keep what they need in the cache) and must not
raise."""

import contextlib
import contextvars
from collections.abc import Callable, Iterator
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


# The hooks of committed messages waiting for `hooks_deferred`'s caller.
_deferred: contextvars.ContextVar[list[Callable[[], None]] | None] = contextvars.ContextVar(
    "chats_hooks_deferred", default=None
)


@contextlib.contextmanager
def hooks_deferred() -> Iterator[list[Callable[[], None]]]:
    """Within the block, the message hooks of what commits are collected in
    the list given, not run: the chat sockets' writer answers its sends
    first and runs them afterwards."""
    collected: list[Callable[[], None]] = []
    token = _deferred.set(collected)
    try:
        yield collected
    finally:
        _deferred.reset(token)


def _run_or_defer(work: Callable[[], None]) -> None:
    collected = _deferred.get()
    if collected is None:
        work()
    else:
        collected.append(work)


def message_created(message: "Message") -> None:
    """Run the message hooks once the current transaction commits."""
    if _message_hooks:
        transaction.on_commit(lambda: _run_or_defer(lambda: _message_hooks_run(message)))


def _message_hooks_run(message: "Message") -> None:
    for hook in list(_message_hooks):
        hook(message)


def read_moved(*, user_id: int, chat_id: int, seq: int) -> None:
    """Run the read hooks once the current transaction commits."""
    if _read_hooks:
        transaction.on_commit(lambda: [hook(user_id, chat_id, seq) for hook in list(_read_hooks)])
