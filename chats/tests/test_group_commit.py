"""Group commit of the chat sockets' sends (chats/group_commit.py): sends
waiting together share one transaction, yet each is answered as if it had
been written alone."""

import asyncio
import functools
from typing import Any

import pytest
from django.db import DatabaseError, transaction

from chats import consumers, extensions, group_commit
from chats.group_commit import GroupCommit, Write, writes_run
from chats.models import Message
from chats.tests.factories import make_group_chat
from common.errors import ApplicationError, NotFound, RateLimited
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db(transaction=True)


def world() -> dict[str, Any]:
    teacher, parent, stranger = make_user(), make_user(), make_user()
    first = make_group_chat(owner=teacher, members=[parent])
    second = make_group_chat(owner=teacher, members=[parent])
    return {"teacher": teacher, "parent": parent, "stranger": stranger, "first": first, "second": second}


def send_call(user: Any, chat_id: int, body: str, client_id: str) -> Any:
    frame = {"body": body, "client_id": client_id}
    return functools.partial(consumers._send, user=user, frame=frame, chat_id=chat_id)


def run(writes: list[Write]) -> list[Any]:
    """writes_run's answers, in the order of the writes."""
    answers: dict[int, Any] = {}
    writes_run(writes, lambda write, outcome: answers.__setitem__(id(write), outcome))
    return [answers[id(write)] for write in writes]


def stored(chat_id: int) -> list[tuple[int, str]]:
    return list(Message.objects.filter(chat_id=chat_id).order_by("seq").values_list("seq", "client_id"))


def test_sends_waiting_together_share_a_transaction_and_each_gets_its_own_answer(monkeypatch, settings):
    settings.CHAT_SEND_RATE = "3/minute"
    people = world()
    first, second = people["first"].pk, people["second"].pk
    batches: list[int] = []

    def counted(writes: list[Write], answer: Any) -> None:
        batches.append(len(writes))
        writes_run(writes, answer)

    monkeypatch.setattr(group_commit, "writes_run", counted)
    sends = [
        (people["teacher"], first, "Завтра контрольная", "a1"),
        (people["parent"], second, "Спасибо, поняли", "b1"),
        (people["stranger"], first, "Я не из этого чата", "x1"),  # not a member
        (people["parent"], first, "Во сколько начало?", "a2"),
        (people["teacher"], second, "   ", "b2"),  # empty
        (people["teacher"], first, "В 9:00", "a3"),
        (people["parent"], second, "Хорошо", "b3"),
        (people["teacher"], first, "И ещё одно", "a4"),  # the teacher's fourth this minute
    ]

    async def all_at_once() -> list[Any]:
        writer = GroupCommit()
        calls = [
            writer.write(chat_id, send_call(user, chat_id, body, key), sender_id=user.pk)
            for user, chat_id, body, key in sends
        ]
        return await asyncio.gather(*calls, return_exceptions=True)

    answers = asyncio.run(all_at_once())

    # Sent in the same moment: written together.
    assert batches == [8]
    assert [answer["seq"] if isinstance(answer, dict) else type(answer) for answer in answers] == [
        1,
        1,
        NotFound,
        2,
        ApplicationError,
        3,
        2,
        RateLimited,
    ]
    assert answers[4].code == "message_empty"
    assert answers[7].retry_after > 0
    # A chat's sends keep the order they came in; refused ones left nothing.
    assert stored(first) == [(1, "a1"), (2, "a2"), (3, "a3")]
    assert stored(second) == [(1, "b1"), (2, "b3")]


def test_a_send_that_finds_the_writer_idle_goes_alone_and_later_ones_wait_together(monkeypatch):
    people = world()
    first = people["first"].pk
    batches: list[int] = []

    def counted(writes: list[Write], answer: Any) -> None:
        batches.append(len(writes))
        writes_run(writes, answer)

    monkeypatch.setattr(group_commit, "writes_run", counted)

    async def one_then_three() -> list[int]:
        writer = GroupCommit()
        alone = asyncio.ensure_future(writer.write(first, send_call(people["teacher"], first, "Первое", "f0")))
        await asyncio.sleep(0)  # the writer takes it
        later = [writer.write(first, send_call(people["parent"], first, f"Ответ {n}", f"f{n}")) for n in (1, 2, 3)]
        answers = await asyncio.gather(alone, *later)
        return [answer["seq"] for answer in answers]

    assert asyncio.run(one_then_three()) == [1, 2, 3, 4]
    assert batches == [1, 3]


def test_a_database_failure_in_a_batch_rewrites_the_others_one_by_one():
    people = world()
    first = people["first"].pk

    def broken() -> None:
        with transaction.atomic():
            Message.objects.filter(chat_id=first).update(body="испорчено")
            raise DatabaseError("disk I/O error")

    writes = [
        Write(first, None, "ru", send_call(people["teacher"], first, "Первое", "c1")),
        Write(first, None, "ru", broken),
        Write(first, None, "ru", send_call(people["parent"], first, "Второе", "c2")),
    ]

    outcomes = run(writes)

    assert [is_done for is_done, _value in outcomes] == [True, False, True]
    assert isinstance(outcomes[1][1], DatabaseError)
    # Written once each, in order, and the failed call changed nothing.
    assert stored(first) == [(1, "c1"), (2, "c2")]
    assert list(Message.objects.filter(chat_id=first).values_list("body", flat=True)) == ["Первое", "Второе"]


def test_a_refusal_speaks_the_language_of_its_own_socket():
    people = world()
    first = people["first"].pk
    writes = [
        Write(first, None, "ru", send_call(people["teacher"], first, "", "d1")),
        Write(first, None, "en", send_call(people["parent"], first, "", "d2")),
    ]

    outcomes = run(writes)

    assert [value.message for _is_done, value in outcomes] == ["Сообщение пустое.", "The message is empty."]


def test_the_sender_is_answered_before_other_apps_hear_of_the_message(monkeypatch):
    people = world()
    first = people["first"].pk
    happened: list[str] = []
    monkeypatch.setattr(extensions, "_message_hooks", [lambda message: happened.append("hook: " + message.body)])

    writes_run(
        [Write(first, None, "ru", send_call(people["teacher"], first, "Собрание в четверг", "g1"))],
        lambda write, outcome: happened.append(f"answer: {outcome[1]['seq']}"),
    )

    assert happened == ["answer: 1", "hook: Собрание в четверг"]
