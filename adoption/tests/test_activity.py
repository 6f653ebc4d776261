"""Reading and writing days: cheap hooks, padding resistance (issue 6 part 5)."""

import datetime

import pytest
from django.core.cache import cache

from adoption.models import ActivityDay, ActivityKind
from adoption.services import activity_day, message_written, write_fingerprint
from chats.services.chats import chat_read_mark
from chats.tests.factories import make_group_chat, send
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db

MONDAY = datetime.datetime(2026, 9, 7, 10, 0, tzinfo=datetime.UTC)


def days(user, kind=ActivityKind.WRITE):
    return sorted(ActivityDay.objects.filter(user=user, kind=kind).values_list("day", flat=True))


@pytest.mark.parametrize("body", ["", "   ", "ок", "+", "👍👍👍👍👍👍", "да!!!", "1234567890", "Ок ок"])
def test_too_short_messages_are_not_writing(body):
    assert write_fingerprint(body) is None


def test_a_message_counts_once_a_day_and_a_repeat_never():
    teacher = make_user()

    assert message_written(user_id=teacher.pk, body="Добрый день, родители!", moment=MONDAY) is True
    # The rest of the day's burst adds nothing.
    for number in range(50):
        assert message_written(user_id=teacher.pk, body=f"Сообщение номер {number}", moment=MONDAY) is False
    tuesday = MONDAY + datetime.timedelta(days=1)
    # The same text again (case, spaces and punctuation aside) the next day: a repeat.
    assert message_written(user_id=teacher.pk, body="ДОБРЫЙ ДЕНЬ родители", moment=tuesday) is False
    assert message_written(user_id=teacher.pk, body="Собрание в четверг в 18:00", moment=tuesday) is True

    assert days(teacher) == [activity_day(MONDAY), activity_day(tuesday)]


def test_empty_and_short_bursts_count_nothing():
    teacher = make_user()

    for _index in range(100):
        message_written(user_id=teacher.pk, body="ок", moment=MONDAY)
        message_written(user_id=teacher.pk, body="", moment=MONDAY)

    assert days(teacher) == []


def test_the_chat_hooks_record_writing_and_reading(django_capture_on_commit_callbacks):
    teacher, parent = make_user(), make_user()
    chat = make_group_chat(owner=teacher, members=[parent])
    today = activity_day()

    with django_capture_on_commit_callbacks(execute=True):
        message = send(teacher, chat, "Завтра экскурсия, не забудьте сменную обувь")
        send(teacher, chat, "ок")
        chat_read_mark(user=parent, chat_id=chat.pk, seq=message.seq)

    assert days(teacher) == [today]
    assert days(parent, ActivityKind.READ) == [today]
    assert days(parent) == []


def test_hooks_survive_a_cache_outage(monkeypatch):
    teacher = make_user()

    def broken(*args, **kwargs):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(cache, "add", broken)
    monkeypatch.setattr(cache, "get", broken)
    monkeypatch.setattr(cache, "set", broken)

    assert message_written(user_id=teacher.pk, body="Добрый вечер всем", moment=MONDAY) is True
    assert message_written(user_id=teacher.pk, body="Другой текст сообщения", moment=MONDAY) is False
    assert days(teacher) == [activity_day(MONDAY)]


def test_one_cache_round_trip_and_no_query_once_the_day_counted(django_assert_num_queries):
    teacher = make_user()
    message_written(user_id=teacher.pk, body="Первое сообщение дня", moment=MONDAY)

    with django_assert_num_queries(0):
        for number in range(20):
            message_written(user_id=teacher.pk, body=f"Ещё одно сообщение {number}", moment=MONDAY)


def test_a_pasted_repeat_asks_redis_once_and_a_new_text_still_counts(monkeypatch):
    teacher = make_user()
    message_written(user_id=teacher.pk, body="Напоминание: завтра субботник", moment=MONDAY)
    tuesday = MONDAY + datetime.timedelta(days=1)
    looked_up = []
    cache_get = cache.get
    monkeypatch.setattr(cache, "get", lambda key, *args, **kwargs: looked_up.append(key) or cache_get(key, *args))

    for _number in range(30):
        assert message_written(user_id=teacher.pk, body="Напоминание: завтра субботник!", moment=tuesday) is False
    assert len(looked_up) == 1
    assert message_written(user_id=teacher.pk, body="Субботник переносится на среду", moment=tuesday) is True
    assert days(teacher) == [activity_day(MONDAY), activity_day(tuesday)]
