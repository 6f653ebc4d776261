"""Group commit of the chat sockets' messages.

Every "send" frame of every chat socket of a daphne process is written by
the process's one database thread. Written one by one, each paid a hop to
that thread, a round trip to Redis for the sender's budget, a transaction
of its own (BEGIN and COMMIT: a write to the WAL on SQLite, a round trip and
a flush on PostgreSQL) and waits for the GIL, while under load the sends
queued for the thread anyway. Here the sends waiting when the thread
becomes free are written together: one hop, one round trip to Redis for
all their budgets, one transaction with each send in the savepoint
`message_send` makes for its writes. Each is answered once that
transaction has committed (and its message handed to the real-time
publisher): the guarantee of docs/protocol.md is unchanged, committed
before acknowledged or published. The hooks of other apps (adoption,
bots) run after the answers, off the sender's wait. A send that finds the
writer idle is written at once, alone: no timer, no added latency on a
quiet process.

In a batch the sends are written in the order of their chat ids (a stable
sort: a chat's sends keep their order), so two processes' batches take the
chats' row locks in the same order and cannot deadlock on PostgreSQL. A
refusal (ApplicationError: over the budget, not a member, muted, a client
id reused…) concerns its own send only. Any other failure, the commit's
included, rolls the batch back and each of its sends is written again on
its own, so one send's trouble never fails another's.
"""

import asyncio
import contextvars
import logging
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.db import transaction
from django.utils import translation

from chats import extensions
from chats.services import messages
from common.errors import ApplicationError

logger = logging.getLogger(__name__)

# Sends written in one transaction at most: a batch holds the database's
# write lock (SQLite) or its chats' rows (PostgreSQL) while it is written.
BATCH_MAX = 64

# (True, result) or (False, the exception raised).
Outcome = tuple[bool, Any]


@dataclass
class Write:
    """One send: its chat, whose budget it counts against (None: nobody's),
    the language of its socket (for the texts of a refusal), the service
    call, and the future its socket waits on."""

    chat_id: int
    sender_id: int | None
    language: str
    call: Callable[[], Any]
    future: "asyncio.Future[Outcome] | None" = None


Answer = Callable[[Write, Outcome], None]


def writes_run(writes: list[Write], answer: Answer) -> None:
    """Write a batch, in the database thread: each write's outcome goes to
    `answer` once it is committed or refused, then the message hooks of
    what was written run.

    A call must be a unit of its own: what it writes is in a
    `transaction.atomic()` block of its own, so that an ApplicationError it
    raises leaves nothing written.
    """
    with extensions.hooks_deferred() as hooks:
        outcomes = _outcomes(writes)
    for write, outcome in zip(writes, outcomes, strict=True):
        answer(write, outcome)
    for hook in hooks:
        try:
            hook()
        except Exception:
            logger.exception("a chat message hook failed")


def _outcomes(writes: list[Write]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(writes)
    budgeted = [index for index, write in enumerate(writes) if write.sender_id is not None]
    try:
        checks = messages.message_send_rate_checks([writes[index].sender_id or 0 for index in budgeted])
    except Exception as error:  # Redis unavailable: nothing is written
        return [(False, error)] * len(writes)
    for index, check in zip(budgeted, checks, strict=True):
        with translation.override(writes[index].language):
            try:
                check()
            except ApplicationError as error:
                outcomes[index] = (False, error)
    allowed = [index for index, outcome in enumerate(outcomes) if outcome is None]
    if len(allowed) == 1:
        outcomes[allowed[0]] = _alone(writes[allowed[0]])
    elif allowed:
        for index, outcome in zip(allowed, _together([writes[index] for index in allowed]), strict=True):
            outcomes[index] = outcome
    return [outcome if outcome is not None else (False, RuntimeError("not written")) for outcome in outcomes]


def _alone(write: Write) -> Outcome:
    with translation.override(write.language):
        try:
            return True, write.call()
        except Exception as error:
            return False, error


def _together(writes: list[Write]) -> list[Outcome]:
    outcomes: list[Outcome] = [(False, None)] * len(writes)
    try:
        with transaction.atomic(), messages.sends_batched():
            for index in sorted(range(len(writes)), key=lambda position: writes[position].chat_id):
                write = writes[index]
                with translation.override(write.language):
                    try:
                        outcomes[index] = (True, write.call())
                    except ApplicationError as error:
                        outcomes[index] = (False, error)
    except Exception as error:
        logger.warning("a batch of %d chat sends failed (%s); written one by one", len(writes), type(error).__name__)
        return [_alone(write) for write in writes]
    return outcomes


def _settle(future: "asyncio.Future[Outcome] | None", outcome: Outcome) -> None:
    if future is not None and not future.done():
        future.set_result(outcome)


class GroupCommit:
    """The sends of one process's chat sockets waiting for the database
    thread, and the task that writes them."""

    def __init__(self) -> None:
        self.waiting: deque[Write] = deque()
        self.writer: asyncio.Task[None] | None = None
        # The writer's context, kept from one writer task to the next: not
        # the one of the socket that woke it, and the same for every batch.
        # Django's cache handler keeps its clients in the context (asgiref's
        # Local), so a new context each time was a new Redis connection.
        self.context = contextvars.Context()

    async def write(self, chat_id: int, call: Callable[[], Any], *, sender_id: int | None = None) -> Any:
        """Run `call` in the database thread with the sends waiting beside
        it, after counting it against `sender_id`'s send budget; returns its
        result once committed, or raises what it raised (RateLimited over
        the budget)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        language = translation.get_language() or settings.LANGUAGE_CODE
        self.waiting.append(Write(chat_id, sender_id, language, call, future))
        if self.writer is None:
            self.writer = loop.create_task(self._write_waiting(), context=self.context)
        is_done, value = await future
        if is_done:
            return value
        raise value

    async def _write_waiting(self) -> None:
        loop = asyncio.get_running_loop()

        def answer(write: Write, outcome: Outcome) -> None:
            loop.call_soon_threadsafe(_settle, write.future, outcome)

        try:
            while self.waiting:
                batch = [self.waiting.popleft() for _ in range(min(BATCH_MAX, len(self.waiting)))]
                try:
                    await database_sync_to_async(writes_run)(batch, answer)
                except Exception as error:
                    for write in batch:
                        _settle(write.future, (False, error))
        finally:
            self.writer = None


_group_commits: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit]" = weakref.WeakKeyDictionary()


def group_commit() -> GroupCommit:
    """The GroupCommit of the running event loop (one per daphne process)."""
    loop = asyncio.get_running_loop()
    current = _group_commits.get(loop)
    if current is None:
        current = _group_commits[loop] = GroupCommit()
    return current
