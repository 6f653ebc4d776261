import pytest

from chats import selectors
from chats.models import Chat, ChatMember, MemberRole, Message, Pin
from chats.services import chats as chat_services
from chats.services import moderation
from chats.tests.factories import make_direct_chat, make_group_chat, make_school_with_chats, send
from common.errors import NotFound
from organisations.models import Role
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db


def read_up_to(chat: Chat, user, seq: int) -> None:
    ChatMember.objects.filter(chat=chat, user=user, left_at=None).update(last_read_seq=seq)


# --- The chat list -------------------------------------------------------------------


def test_the_chat_list_shows_title_last_message_and_unread_count_most_recent_first():
    world = make_school_with_chats(students=1)
    direct = make_direct_chat(world.parent, world.teacher)
    send(world.teacher, world.parents_chat, "Собрание в четверг в 18:30")
    send(world.teacher, world.parents_chat, "Не забудьте сменную обувь")
    send(world.teacher, direct, "Здравствуйте, Ваня сегодня молодец")

    items = selectors.chat_list(user=world.parent)

    assert [(item.chat.pk, item.title, item.unread_count) for item in items] == [
        (direct.pk, world.teacher.display_name, 1),
        (world.parents_chat.pk, "7Б — родители", 2),
    ]
    last = items[1].last_message
    assert last is not None
    assert (last.seq, last.body, last.author_id) == (2, "Не забудьте сменную обувь", world.teacher.pk)
    assert items[0].other_user == world.teacher
    assert items[1].member.role == MemberRole.MEMBER


def test_own_messages_are_not_unread():
    world = make_school_with_chats(students=1)
    send(world.teacher, world.parents_chat)
    send(world.parent, world.parents_chat)

    [item] = selectors.chat_list(user=world.parent)

    assert item.unread_count == 0


def test_archived_and_left_chats_are_not_listed():
    world = make_school_with_chats(students=1)
    group = chat_services.group_chat_create(user=world.teacher, title="Кружок", member_ids=[world.parent.pk])
    chat_services.chat_leave(user=world.parent, chat_id=group.pk)
    Chat.objects.filter(pk=world.parents_chat.pk).update(is_archived=True)

    assert selectors.chat_list(user=world.parent) == []


@pytest.mark.parametrize("extra_chats", [1, 12])
def test_the_chat_list_takes_three_queries_however_many_chats(django_assert_num_queries, extra_chats):
    world = make_school_with_chats(students=1)
    for index in range(extra_chats):
        colleague = make_user()
        make_direct_chat(world.teacher, colleague)
        group = make_group_chat(owner=colleague, members=[world.teacher], title=f"Группа {index}")
        send(colleague, group, f"Сообщение {index}")

    with django_assert_num_queries(3):
        items = selectors.chat_list(user=world.teacher)

    assert len(items) == 3 + 2 * extra_chats
    assert all(item.title for item in items)


def test_a_preview_is_short_and_a_deleted_message_has_none():
    world = make_school_with_chats(students=1)
    long = send(world.teacher, world.parents_chat, "слово " * 100)
    moderation.message_delete(actor=world.teacher, chat_id=world.parents_chat.pk, seq=long.seq)
    short = send(world.teacher, world.parents_chat, "Короткое\n\nсообщение")

    long.refresh_from_db()
    assert selectors.body_preview(long) == ""
    assert selectors.body_preview(short) == "Короткое сообщение"
    undeleted = Message(body="слово " * 100)
    preview = selectors.body_preview(undeleted)
    assert len(preview) == selectors.PREVIEW_LENGTH
    assert preview.endswith("…")


# --- One chat --------------------------------------------------------------------------


def test_a_chat_shows_its_staff_first_with_their_roles_and_its_pins():
    world = make_school_with_chats(students=2)
    message = send(world.teacher, world.parents_chat, "Расписание на четверть")
    Pin.objects.create(chat=world.parents_chat, message=message, pinned_by=world.teacher)

    detail = selectors.chat_detail_get(user=world.parent, chat_id=world.parents_chat.pk)

    assert detail.title == "7Б — родители"
    assert detail.members_count == 3
    assert detail.members[0].user_id == world.teacher.pk
    assert {member.user_id for member in detail.members} == {world.teacher.pk, *(p.pk for p in world.parents)}
    assert detail.organisation_roles[world.teacher.pk] == [Role.TEACHER]
    assert detail.organisation_roles[world.parent.pk] == [Role.PARENT]
    assert [pin.message.seq for pin in detail.pins] == [1]
    assert detail.member.user_id == world.parent.pk


def test_a_chat_one_is_not_in_does_not_exist():
    world = make_school_with_chats(students=1)

    with pytest.raises(NotFound) as missing:
        selectors.chat_detail_get(user=world.student, chat_id=world.parents_chat.pk)
    with pytest.raises(NotFound) as nonexistent:
        selectors.chat_detail_get(user=world.student, chat_id=10**9)

    assert (missing.value.message, missing.value.code) == (nonexistent.value.message, nonexistent.value.code)


# --- History -----------------------------------------------------------------------


def test_history_pages_backwards_and_forwards():
    world = make_school_with_chats(students=1)
    for index in range(1, 8):
        send(world.teacher, world.parents_chat, f"Сообщение {index}")
    chat_id = world.parents_chat.pk

    def seqs(page):
        messages, has_more = page
        return [message.seq for message in messages], has_more

    assert seqs(selectors.message_history(chat_id=chat_id, limit=3)) == ([5, 6, 7], True)
    assert seqs(selectors.message_history(chat_id=chat_id, before=5, limit=3)) == ([2, 3, 4], True)
    assert seqs(selectors.message_history(chat_id=chat_id, before=2, limit=3)) == ([1], False)
    assert seqs(selectors.message_history(chat_id=chat_id, after=0, limit=3)) == ([1, 2, 3], True)
    assert seqs(selectors.message_history(chat_id=chat_id, after=4, limit=3)) == ([5, 6, 7], False)
    assert seqs(selectors.message_history(chat_id=chat_id, after=7)) == ([], False)
    assert seqs(selectors.message_history(chat_id=chat_id, limit=1000)) == (list(range(1, 8)), False)


# --- Read receipts -----------------------------------------------------------------


def test_seen_counts_leave_out_the_author():
    world = make_school_with_chats(students=3)
    chat = world.parents_chat
    send(world.teacher, chat, "Первое")  # seq 1
    send(world.parents[0], chat, "Второе")  # seq 2
    send(world.teacher, chat, "Третье")  # seq 3
    read_up_to(chat, world.parents[0], 2)
    read_up_to(chat, world.parents[1], 1)
    read_up_to(chat, world.parents[2], 0)

    counts = selectors.message_seen_counts(chat=chat, seqs=[1, 2, 3, 99])

    assert counts == {1: (2, 3), 2: (1, 3), 3: (0, 3)}


def test_receipts_are_for_the_chats_staff_and_both_people_of_a_direct_chat():
    world = make_school_with_chats(students=1)
    direct = make_direct_chat(world.parent, world.teacher)

    def may_see(user, chat):
        return selectors.member_may_see_receipts(selectors.chat_member_get(user=user, chat_id=chat.pk))

    assert may_see(world.teacher, world.parents_chat) is True
    assert may_see(world.parent, world.parents_chat) is False
    assert may_see(world.parent, direct) is True
