import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chats.models import Chat, ChatMember, Mention, Message, MessageKind, Notification
from chats.services import messages as message_services
from chats.tests.factories import (
    event_log_install,
    make_direct_chat,
    make_group_chat,
    make_school_with_chats,
    send,
)
from common.errors import ApplicationError, NotFound, PermissionDenied, RateLimited
from organisations import services as organisation_services
from organisations.tests.factories import make_member, make_study_group

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return event_log_install(monkeypatch)


def assert_nothing_sent(published) -> None:
    assert Message.objects.count() == 0
    assert Mention.objects.count() == 0
    assert Notification.objects.count() == 0
    assert published.chat_events == []


def test_every_message_takes_the_chats_next_seq(published):
    world = make_school_with_chats(students=2)
    chat = world.parents_chat
    published.clear()

    messages = [
        send(world.teacher, chat, "Здравствуйте!"),
        send(world.parents[0], chat, "Добрый день"),
        send(world.parents[1], chat, "Здравствуйте"),
    ]

    assert [message.seq for message in messages] == [1, 2, 3]
    chat.refresh_from_db()
    assert chat.last_seq == 3
    assert ChatMember.objects.get(chat=chat, user=world.parents[1]).last_read_seq == 3
    assert ChatMember.objects.get(chat=chat, user=world.teacher).last_read_seq == 1
    assert [event["message"]["seq"] for _chat, event in published.chat_events] == [1, 2, 3]
    assert published.chat_events[0] == (chat.pk, {"type": "message", "message": published.chat_events[0][1]["message"]})
    assert published.chat_events[0][1]["message"]["body"] == "Здравствуйте!"


@pytest.mark.django_db(transaction=True)
def test_parallel_senders_get_distinct_consecutive_seqs():
    world = make_school_with_chats(students=3)
    senders = [world.teacher, *world.parents]
    errors: list[BaseException] = []

    def send_many(user) -> None:
        try:
            for index in range(5):
                send(user, world.parents_chat, f"Сообщение {index}", client_id=f"{user.pk}-{index}")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=send_many, args=(user,)) for user in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    seqs = sorted(Message.objects.filter(chat=world.parents_chat).values_list("seq", flat=True))
    assert seqs == list(range(1, 21))
    assert Chat.objects.get(pk=world.parents_chat.pk).last_seq == 20


def test_a_resend_with_the_same_client_id_and_text_is_the_same_message(published):
    world = make_school_with_chats(students=1)
    first, created = message_services.message_send(
        user=world.parent, chat_id=world.parents_chat.pk, body="Спасибо!", client_id="abc-1"
    )
    published.clear()

    again, created_again = message_services.message_send(
        user=world.parent, chat_id=world.parents_chat.pk, body="  Спасибо!  ", client_id="abc-1"
    )

    assert (created, created_again, again.pk, again.seq) == (True, False, first.pk, 1)
    assert Message.objects.count() == 1
    assert published.chat_events == []


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plan")
def test_the_client_id_look_up_uses_the_unique_index_not_a_scan_of_the_chat():
    world = make_school_with_chats(students=1)
    with CaptureQueriesContext(connection) as queries:
        message_services.message_send(user=world.parent, chat_id=world.parents_chat.pk, body="Да", client_id="c-1")
    [look_up] = [query["sql"] for query in queries if query["sql"].startswith("SELECT id, body_hash")]

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN QUERY PLAN " + look_up)
        plan = " ".join(str(row[-1]) for row in cursor.fetchall())

    assert "USING INDEX message_unique_client_id" in plan


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's query plans")
def test_a_message_writes_only_the_indexes_it_needs_and_they_still_serve_their_queries():
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, Message._meta.db_table)
    indexed = {tuple(index["columns"]) for index in constraints.values() if index["index"] or index["unique"]}
    # The chat's messages are found through (chat, seq): no index of chat_id alone.
    assert ("chat_id",) not in indexed
    assert ("chat_id", "seq") in indexed
    # Replies, deleters and escalations through partial indexes of the few
    # rows that have them.
    now = timezone.now()
    assert "USING INDEX message_reply_to" in Message.objects.filter(reply_to_id__in=[1, 2]).explain()
    assert "USING INDEX message_deleted_by" in Message.objects.filter(deleted_by_id__in=[1]).explain()
    escalations = Message.objects.filter(escalate_at__lte=now, escalated_at__isnull=True).order_by("escalate_at", "pk")
    assert "USING INDEX message_escalate_at" in escalations.explain()


def test_the_same_client_id_with_another_text_is_a_conflict(published):
    world = make_school_with_chats(students=1)
    send(world.parent, world.parents_chat, "Спасибо!", client_id="abc-1")
    published.clear()

    with pytest.raises(ApplicationError) as refusal:
        send(world.parent, world.parents_chat, "Другой текст", client_id="abc-1")

    assert refusal.value.code == "client_id_conflict"
    assert list(Message.objects.values_list("body", flat=True)) == ["Спасибо!"]
    assert published.chat_events == []


def test_client_ids_belong_to_their_sender():
    world = make_school_with_chats(students=2)

    first = send(world.parents[0], world.parents_chat, "Да", client_id="same")
    second = send(world.parents[1], world.parents_chat, "Нет", client_id="same")

    assert (first.seq, second.seq) == (1, 2)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("", "message_empty"),
        ("   \n ", "message_empty"),
        ("я" * 4001, "message_too_long"),
        (None, "invalid"),
        (5, "invalid"),
    ],
)
def test_a_message_is_text_of_one_to_four_thousand_characters(body, code, published):
    world = make_school_with_chats(students=1)
    published.clear()

    with pytest.raises(ApplicationError) as refusal:
        message_services.message_send(user=world.parent, chat_id=world.parents_chat.pk, body=body)

    assert refusal.value.code == code
    assert_nothing_sent(published)


def test_four_thousand_characters_fit():
    world = make_school_with_chats(students=1)

    assert len(send(world.parent, world.parents_chat, "я" * 4000).body) == 4000


@pytest.mark.parametrize("client_id", ["x" * 65, 12, "tab\there"])
def test_a_client_id_is_a_short_printable_string(client_id):
    world = make_school_with_chats(students=1)

    with pytest.raises(ApplicationError) as refusal:
        send(world.parent, world.parents_chat, client_id=client_id)

    assert refusal.value.code == "invalid"
    assert Message.objects.count() == 0


def test_html_is_stored_as_written_for_the_interfaces_to_escape():
    world = make_school_with_chats(students=1)

    message = send(world.parent, world.parents_chat, '<script>alert("x")</script>')

    assert message.body == '<script>alert("x")</script>'


def test_a_reply_names_a_message_of_the_same_chat():
    world = make_school_with_chats(students=1)
    question = send(world.parent, world.parents_chat, "Когда собрание?")
    elsewhere = send(world.teacher, world.students_chat, "Другой чат")

    answer = send(world.teacher, world.parents_chat, "В четверг", reply_to_seq=question.seq)

    assert answer.reply_to_id == question.pk
    with pytest.raises(ApplicationError) as refusal:
        send(world.teacher, world.parents_chat, "Ответ", reply_to_seq=elsewhere.seq + 5)
    assert refusal.value.code == "invalid_reply"
    with pytest.raises(ApplicationError) as refusal:
        send(world.teacher, world.parents_chat, "Ответ", reply_to_seq=True)
    assert refusal.value.code == "invalid"


def test_a_mention_notifies_the_member_mentioned():
    world = make_school_with_chats(students=2)

    message = send(world.teacher, world.parents_chat, "Прошу ответить", mention_ids=[world.parents[0].pk])

    assert list(Mention.objects.values_list("message_id", "user_id")) == [(message.pk, world.parents[0].pk)]
    assert list(Notification.objects.values_list("user_id", "kind", "message_id")) == [
        (world.parents[0].pk, Notification.Kind.MENTION, message.pk)
    ]


def test_only_members_are_mentioned():
    world = make_school_with_chats(students=1)

    with pytest.raises(ApplicationError) as refusal:
        send(world.teacher, world.parents_chat, "Привет", mention_ids=[world.student.pk])

    assert refusal.value.code == "invalid_mention"
    assert Message.objects.count() == 0


def test_a_stranger_cannot_mention_a_child_in_safe_mode(published):
    world = make_school_with_chats(students=1)
    outsider = make_member(organisation=world.school, role="parent")
    chat = make_group_chat(owner=world.teacher, members=[world.student, outsider])
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        send(outsider, chat, "Эй, ты где?", mention_ids=[world.student.pk])

    assert refusal.value.code == "contact_not_allowed"
    assert_nothing_sent(published)
    assert send(world.teacher, chat, "Ваня, зайди", mention_ids=[world.student.pk]).seq == 1


def test_an_existing_direct_chat_closes_when_the_child_is_no_longer_a_contact(published):
    world = make_school_with_chats(students=2)
    child, classmate = world.students
    chat = make_direct_chat(classmate, child)
    assert send(classmate, chat, "Привет!").seq == 1
    other_class = make_study_group(organisation=world.school, name="7А")
    organisation_services.study_group_student_remove(actor=None, group=world.group, student=classmate)
    organisation_services.study_group_student_add(actor=None, group=other_class, student=classmate)
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        send(classmate, chat, "Как дела?")

    assert refusal.value.code == "contact_not_allowed"
    assert Message.objects.count() == 1
    assert Notification.objects.count() == 0
    assert published.chat_events == []


def test_a_stranger_in_an_old_direct_chat_with_a_child_cannot_write(published):
    world = make_school_with_chats(students=1)
    stranger = make_member(organisation=world.school, role="parent")
    chat = make_direct_chat(stranger, world.student)
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        send(stranger, chat, "Привет")

    assert refusal.value.code == "contact_not_allowed"
    assert_nothing_sent(published)


def test_people_outside_a_chat_cannot_post_in_it():
    world = make_school_with_chats(students=1)

    with pytest.raises(NotFound):
        send(world.student, world.parents_chat)
    Chat.objects.filter(pk=world.parents_chat.pk).update(is_archived=True)
    with pytest.raises(NotFound):
        send(world.parent, world.parents_chat)
    assert Message.objects.count() == 0


def test_sending_is_rate_limited_per_person(settings):
    settings.CHAT_SEND_RATE = "2/minute"
    world = make_school_with_chats(students=1)

    message_services.message_send_rate_check(user=world.parent)
    message_services.message_send_rate_check(user=world.parent)
    with pytest.raises(RateLimited) as refusal:
        message_services.message_send_rate_check(user=world.parent)

    assert 1 <= refusal.value.retry_after <= 60
    message_services.message_send_rate_check(user=world.teacher)


def test_a_system_message_has_no_author_and_the_next_seq():
    world = make_school_with_chats(students=1)
    send(world.teacher, world.parents_chat)

    message = message_services.message_system_post(chat=world.parents_chat, text="Чат перенесён из старого мессенджера")

    assert (message.seq, message.author_id, message.kind) == (2, None, MessageKind.SYSTEM)
