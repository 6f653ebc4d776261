"""Search in one's own chats: Russian full-text search on PostgreSQL, every
word ignoring case (Cyrillic included) on SQLite; never another chat's or a
deleted message."""

import pytest
from django.db import connection
from django.utils import timezone

from chats import search
from chats.models import ChatMember, Message
from chats.services.messages import message_send
from chats.tests.content_helpers import make_chat
from common.errors import ApplicationError, NotFound
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db

IS_POSTGRESQL = connection.vendor == "postgresql"


@pytest.fixture
def world():
    teacher, student, outsider = make_user(), make_user(), make_user()
    chat = make_chat(moderators=(teacher,), members=(student,))
    other_chat = make_chat(moderators=(outsider,), title="8А")
    texts = {
        "test": "Контрольная работа по алгебре в пятницу",
        "trip": "Экскурсия в музей: сбор у школы в 9:00",
        "tree": "Украшаем ёлку в классе",
    }
    sent = {key: message_send(user=teacher, chat_id=chat.pk, body=text)[0] for key, text in texts.items()}
    secret = message_send(user=outsider, chat_id=other_chat.pk, body="Контрольная работа 8А: ответы")[0]
    return {
        "teacher": teacher,
        "student": student,
        "outsider": outsider,
        "chat": chat,
        "other_chat": other_chat,
        "sent": sent,
        "secret": secret,
    }


def found(user, query, chat_id=None):
    return [message.pk for message in search.message_search(user=user, query=query, chat_id=chat_id)]


def test_exact_words_are_found_in_any_case(world):
    sent = world["sent"]

    assert found(world["student"], "контрольная") == [sent["test"].pk]
    assert found(world["student"], "КОНТРОЛЬНАЯ   алгебре") == [sent["test"].pk]
    assert found(world["student"], "Экскурсия музей") == [sent["trip"].pk]
    assert found(world["student"], "контрольная музей") == []


@pytest.mark.skipif(not IS_POSTGRESQL, reason="word forms need PostgreSQL's Russian configuration")
def test_word_forms_are_found_on_postgresql(world):
    sent = world["sent"]

    assert found(world["student"], "контрольной") == [sent["test"].pk]
    assert found(world["student"], "контрольные работы") == [sent["test"].pk]
    assert found(world["student"], "музеи") == [sent["trip"].pk]
    assert found(world["student"], '"работа по алгебре"') == [sent["test"].pk]
    assert found(world["student"], "контрольная -алгебре") == []


@pytest.mark.skipif(not IS_POSTGRESQL, reason="ranking is PostgreSQL's")
def test_better_matches_come_first_on_postgresql(world):
    chat, teacher = world["chat"], world["teacher"]
    once = message_send(user=teacher, chat_id=chat.pk, body="Музей закрыт")[0]
    twice = message_send(user=teacher, chat_id=chat.pk, body="Музей, музей и ещё раз музей")[0]

    assert found(world["student"], "музей")[:2] == [twice.pk, once.pk]


@pytest.mark.skipif(IS_POSTGRESQL, reason="the SQLite fallback's own rules")
def test_the_fallback_folds_yo_and_matches_parts_of_words(world):
    sent = world["sent"]

    assert found(world["student"], "елку") == [sent["tree"].pk]
    assert found(world["student"], "ЁЛКУ") == [sent["tree"].pk]
    assert found(world["student"], "контрольн") == [sent["test"].pk]


def test_newest_first_when_equally_good(world):
    chat, teacher = world["chat"], world["teacher"]
    first = message_send(user=teacher, chat_id=chat.pk, body="Родительское собрание")[0]
    second = message_send(user=teacher, chat_id=chat.pk, body="Родительское собрание")[0]

    assert found(world["student"], "собрание") == [second.pk, first.pk]


def test_other_chats_are_never_searched(world):
    assert world["secret"].pk not in found(world["student"], "контрольная")
    assert found(world["outsider"], "контрольная") == [world["secret"].pk]
    assert found(make_user(), "контрольная") == []


def test_deleted_messages_are_never_found(world):
    Message.objects.filter(pk=world["sent"]["test"].pk).update(deleted_at=timezone.now())

    assert found(world["student"], "контрольная") == []


def test_chats_one_left_or_archived_are_not_searched(world):
    ChatMember.objects.filter(user=world["student"]).update(left_at=timezone.now())
    assert found(world["student"], "контрольная") == []

    type(world["other_chat"]).objects.filter(pk=world["other_chat"].pk).update(is_archived=True)
    assert found(world["outsider"], "контрольная") == []


def test_search_in_one_chat(world):
    chat = world["chat"]
    elsewhere = make_chat(moderators=(world["teacher"],), members=(world["student"],))
    message_send(user=world["teacher"], chat_id=elsewhere.pk, body="Контрольная отменена")

    assert found(world["student"], "контрольная", chat_id=chat.pk) == [world["sent"]["test"].pk]
    with pytest.raises(NotFound):
        found(world["student"], "контрольная", chat_id=world["other_chat"].pk)


@pytest.mark.parametrize("query", ["", "   ", "!!!", None, 5, "я" * 201])
def test_queries_without_words_or_too_long_are_refused(world, query):
    with pytest.raises(ApplicationError) as refused:
        found(world["student"], query)

    assert (refused.value.code, refused.value.extra) == ("search_query_invalid", {"field": "q"})


def test_punctuation_of_the_query_is_not_syntax(world):
    chat, teacher = world["chat"], world["teacher"]
    message = message_send(user=teacher, chat_id=chat.pk, body="Задача (x+y)*2 решена")[0]

    assert found(world["student"], "(x+y)*2 решена") == [message.pk]
    assert found(world["student"], "решена.*") == [message.pk]


@pytest.mark.skipif(not IS_POSTGRESQL, reason="the GIN index exists on PostgreSQL only")
def test_postgresql_search_can_use_the_gin_index(world):
    # The same filter as message_search's; without the membership join the
    # plan does not depend on the other tables' statistics.
    queryset = search.full_text_filter(Message.objects.filter(deleted_at__isnull=True), text="контрольной")
    sql, params = queryset.values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Bitmap Index Scan on chats_message_body_search" in plan
