"""Edits with history, reactions, pins and polls (chats.services.content):
each action, its event after commit, and each refusal changing nothing."""

import datetime

import pytest
from django.utils import timezone

from chats.models import (
    ChatKind,
    ChatMember,
    MemberRole,
    Message,
    MessageKind,
    MessageRevision,
    Notification,
    Pin,
    Poll,
    PollOption,
    PollVote,
    Reaction,
)
from chats.services import content
from chats.services.messages import message_send
from chats.tests.content_helpers import events_recorded, make_chat
from common.errors import ApplicationError, NotFound, PermissionDenied
from organisations.tests.factories import make_school_with_class, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return events_recorded(monkeypatch)


@pytest.fixture
def people():
    teacher, student, other = make_user(), make_user(), make_user()
    chat = make_chat(moderators=(teacher,), members=(student, other))
    return chat, teacher, student, other


def send(user, chat, body="Контрольная работа в пятницу"):
    message, created = message_send(user=user, chat_id=chat.pk, body=body)
    assert created
    return message


def snapshot(message):
    message.refresh_from_db()
    return (
        message.body,
        message.edited_at,
        message.deleted_at,
        MessageRevision.objects.count(),
        Reaction.objects.count(),
        Pin.objects.count(),
        Poll.objects.count(),
        PollVote.objects.count(),
    )


# --- Edit -----------------------------------------------------------------------------


def test_edit_keeps_the_old_text_and_publishes_after_commit(people, published, django_capture_on_commit_callbacks):
    chat, _teacher, student, _other = people
    message = send(student, chat, "Контрольная в четверг")

    with django_capture_on_commit_callbacks(execute=True):
        edited = content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="  Контрольная в пятницу ")

    message.refresh_from_db()
    assert message.body == "Контрольная в пятницу"
    assert message.edited_at is not None
    assert edited.edited_at == message.edited_at
    assert list(MessageRevision.objects.values_list("message_id", "body")) == [(message.pk, "Контрольная в четверг")]
    assert published.sent == [
        (
            f"chat.{chat.pk}",
            {
                "type": "message.updated",
                "message": {
                    "id": message.pk,
                    "chat": chat.pk,
                    "seq": 1,
                    "kind": "text",
                    "author": {
                        "id": student.pk,
                        "display_name": student.display_name,
                        "is_verified_educator": False,
                        "is_name_flagged": False,
                    },
                    "client_id": None,
                    "body": "Контрольная в пятницу",
                    "reply_to": None,
                    "created_at": message.created_at.isoformat(),
                    "edited_at": message.edited_at.isoformat(),
                    "is_deleted": False,
                    "requires_acknowledgement": False,
                    "attachments": [],
                },
            },
        )
    ]


def test_edit_to_the_same_text_changes_nothing(people, published, django_capture_on_commit_callbacks):
    chat, _teacher, student, _other = people
    message = send(student, chat, "Привет")
    before = snapshot(message)

    with django_capture_on_commit_callbacks(execute=True):
        content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Привет ")

    assert snapshot(message) == before
    assert published.sent == []


def test_history_lists_earlier_texts_oldest_first(people):
    chat, teacher, student, _other = people
    message = send(student, chat, "Первый")
    content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Второй")
    content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Третий")

    shown, revisions = content.message_revisions_get(user=teacher, chat_id=chat.pk, seq=message.seq)

    assert shown.body == "Третий"
    assert [revision.body for revision in revisions] == ["Первый", "Второй"]


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("another_member", PermissionDenied, "not_author"),
        ("too_long", ApplicationError, "message_too_long"),
        ("empty", ApplicationError, "message_empty"),
        ("too_late", PermissionDenied, "edit_window_passed"),
        ("deleted", ApplicationError, "message_deleted"),
        ("poll", ApplicationError, "message_not_editable"),
        ("muted", PermissionDenied, "muted"),
        ("announcement_only", PermissionDenied, "announcement_only"),
    ],
)
def test_edit_refusals_change_nothing(people, published, django_capture_on_commit_callbacks, case, error, code):
    chat, _teacher, student, other = people
    message = send(student, chat, "Текст")
    editor, body = student, "Новый текст"
    if case == "another_member":
        editor = other
    elif case == "too_long":
        body = "я" * 4001
    elif case == "empty":
        body = "   "
    elif case == "too_late":
        Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - datetime.timedelta(hours=49))
    elif case == "deleted":
        Message.objects.filter(pk=message.pk).update(deleted_at=timezone.now())
    elif case == "poll":
        Message.objects.filter(pk=message.pk).update(kind=MessageKind.POLL)
    elif case == "muted":
        ChatMember.objects.filter(user=student).update(muted_until=timezone.now() + datetime.timedelta(hours=1))
    elif case == "announcement_only":
        type(chat).objects.filter(pk=chat.pk).update(is_announcement_only=True)
    before = snapshot(message)

    with pytest.raises(error) as refused, django_capture_on_commit_callbacks(execute=True) as callbacks:
        content.message_edit(user=editor, chat_id=chat.pk, seq=message.seq, body=body)

    assert refused.value.code == code
    assert snapshot(message) == before
    assert callbacks == []
    assert published.sent == []


def test_non_member_cannot_edit_or_read_history_and_learns_nothing(people):
    chat, _teacher, student, _other = people
    message = send(student, chat)
    stranger = make_user()

    with pytest.raises(NotFound) as not_member:
        content.message_edit(user=stranger, chat_id=chat.pk, seq=message.seq, body="x")
    with pytest.raises(NotFound) as no_chat:
        content.message_edit(user=stranger, chat_id=10**9, seq=message.seq, body="x")
    with pytest.raises(NotFound):
        content.message_revisions_get(user=stranger, chat_id=chat.pk, seq=message.seq)

    assert (not_member.value.code, not_member.value.message) == (no_chat.value.code, no_chat.value.message)
    assert MessageRevision.objects.count() == 0


def test_a_member_who_left_can_no_longer_edit(people):
    chat, _teacher, student, _other = people
    message = send(student, chat, "Текст")
    ChatMember.objects.filter(user=student).update(left_at=timezone.now())

    with pytest.raises(NotFound):
        content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Другой")

    message.refresh_from_db()
    assert message.body == "Текст"


def test_the_resend_of_the_first_text_still_finds_the_edited_message(people):
    chat, _teacher, student, _other = people
    message, _created = message_send(user=student, chat_id=chat.pk, body="Первый", client_id="c-1")
    content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Второй")

    again, created = message_send(user=student, chat_id=chat.pk, body="Первый", client_id="c-1")

    assert (again.pk, created) == (message.pk, False)


def test_retract_removes_reactions_and_mention_notifications_and_closes_a_poll(people):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"])
    content.reaction_toggle(user=student, chat_id=chat.pk, seq=poll.message.seq, emoji="👍")
    Notification.objects.create(user=student, kind=Notification.Kind.MENTION, chat=chat, message=poll.message)

    content.message_content_retract(message=poll.message)

    poll.refresh_from_db()
    assert poll.closed_at is not None
    assert Reaction.objects.count() == 0
    assert Notification.objects.filter(message=poll.message).count() == 0


# --- Reactions ---------------------------------------------------------------------------


def test_reaction_toggles_and_counts_per_emoji(people, published, django_capture_on_commit_callbacks):
    chat, teacher, student, other = people
    message = send(teacher, chat)

    with django_capture_on_commit_callbacks(execute=True):
        first = content.reaction_toggle(user=student, chat_id=chat.pk, seq=message.seq, emoji="👍")
        second = content.reaction_toggle(user=other, chat_id=chat.pk, seq=message.seq, emoji="👍")
        third = content.reaction_toggle(user=other, chat_id=chat.pk, seq=message.seq, emoji="❤")
        fourth = content.reaction_toggle(user=student, chat_id=chat.pk, seq=message.seq, emoji="👍")

    assert first == (True, {"👍": 1})
    assert second == (True, {"👍": 2})
    assert third == (True, {"👍": 2, "❤️": 1})
    assert fourth == (False, {"👍": 1, "❤️": 1})
    assert published.events[-1] == {
        "type": "message.reactions",
        "chat": chat.pk,
        "seq": message.seq,
        "reactions": {"👍": 1, "❤️": 1},
    }
    assert published.types() == ["message.reactions"] * 4
    assert content.reactions_of_user(user=other, message_ids=[message.pk]) == {message.pk: ["👍", "❤️"]}


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("not_allowed", ApplicationError, "reaction_not_allowed"),
        ("deleted", ApplicationError, "message_deleted"),
        ("muted", PermissionDenied, "muted"),
        ("no_message", NotFound, "not_found"),
        ("stranger", NotFound, "not_found"),
    ],
)
def test_reaction_refusals_change_nothing(people, published, django_capture_on_commit_callbacks, case, error, code):
    chat, teacher, student, _other = people
    message = send(teacher, chat)
    user, emoji, seq = student, "👍", message.seq
    if case == "not_allowed":
        emoji = "<script>"
    elif case == "deleted":
        Message.objects.filter(pk=message.pk).update(deleted_at=timezone.now())
    elif case == "muted":
        ChatMember.objects.filter(user=student).update(muted_until=timezone.now() + datetime.timedelta(hours=1))
    elif case == "no_message":
        seq = 99
    elif case == "stranger":
        user = make_user()

    with pytest.raises(error) as refused, django_capture_on_commit_callbacks(execute=True) as callbacks:
        content.reaction_toggle(user=user, chat_id=chat.pk, seq=seq, emoji=emoji)

    assert refused.value.code == code
    assert Reaction.objects.count() == 0
    assert callbacks == []
    assert published.sent == []


def test_a_stranger_in_an_old_direct_chat_cannot_react_to_a_child_in_safe_mode():
    world = make_school_with_class(students=1)
    stranger = make_user()
    chat = make_chat(members=(stranger, world.student), kind=ChatKind.DIRECT, title="")
    message = send(world.student, chat, "Привет")
    world.student.refresh_from_db()
    assert world.student.is_safe_mode

    with pytest.raises(PermissionDenied) as refused:
        content.reaction_toggle(user=stranger, chat_id=chat.pk, seq=message.seq, emoji="👍")

    assert refused.value.code == "contact_not_allowed"
    assert Reaction.objects.count() == 0


# --- Pins ----------------------------------------------------------------------------------


def test_moderator_pins_and_unpins(people, published, django_capture_on_commit_callbacks):
    chat, teacher, student, _other = people
    message = send(student, chat)

    with django_capture_on_commit_callbacks(execute=True):
        pin, created = content.pin_add(user=teacher, chat_id=chat.pk, seq=message.seq)
        again, created_again = content.pin_add(user=teacher, chat_id=chat.pk, seq=message.seq)

    assert (created, created_again, again.pk) == (True, False, pin.pk)
    assert [p.message_id for p in content.pin_list(user=student, chat_id=chat.pk)] == [message.pk]
    assert published.types() == ["pin.added"]
    assert published.events[0]["seq"] == message.seq
    assert published.events[0]["message"]["body"] == message.body

    with django_capture_on_commit_callbacks(execute=True):
        content.pin_remove(user=teacher, chat_id=chat.pk, seq=message.seq)

    assert Pin.objects.count() == 0
    assert published.events[-1] == {"type": "pin.removed", "chat": chat.pk, "seq": message.seq}
    with pytest.raises(NotFound):
        content.pin_remove(user=teacher, chat_id=chat.pk, seq=message.seq)


def test_members_do_not_pin_or_unpin(people, published, django_capture_on_commit_callbacks):
    chat, teacher, student, _other = people
    message = send(student, chat)
    content.pin_add(user=teacher, chat_id=chat.pk, seq=message.seq)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        with pytest.raises(PermissionDenied) as add_refused:
            content.pin_add(user=student, chat_id=chat.pk, seq=message.seq)
        with pytest.raises(PermissionDenied) as remove_refused:
            content.pin_remove(user=student, chat_id=chat.pk, seq=message.seq)

    assert (add_refused.value.code, remove_refused.value.code) == ("not_moderator", "not_moderator")
    assert Pin.objects.count() == 1
    assert callbacks == []


def test_channel_editors_pin():
    editor = make_user()
    chat = make_chat(kind=ChatKind.CHANNEL)
    ChatMember.objects.create(chat=chat, user=editor, role=MemberRole.EDITOR)
    message = send(editor, chat, "Объявление")

    _pin, created = content.pin_add(user=editor, chat_id=chat.pk, seq=message.seq)

    assert created


def test_pins_have_a_limit_and_deleted_messages_are_not_pinned(people, monkeypatch):
    chat, teacher, _student, _other = people
    monkeypatch.setattr(content, "PINS_MAX", 1)
    first, second, deleted = send(teacher, chat, "1"), send(teacher, chat, "2"), send(teacher, chat, "3")
    Message.objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    content.pin_add(user=teacher, chat_id=chat.pk, seq=first.seq)

    with pytest.raises(ApplicationError) as too_many:
        content.pin_add(user=teacher, chat_id=chat.pk, seq=second.seq)
    with pytest.raises(ApplicationError) as was_deleted:
        content.pin_add(user=teacher, chat_id=chat.pk, seq=deleted.seq)

    assert (too_many.value.code, was_deleted.value.code) == ("too_many_pins", "message_deleted")
    assert list(Pin.objects.values_list("message_id", flat=True)) == [first.pk]


# --- Polls ---------------------------------------------------------------------------------


def test_teacher_creates_a_poll_as_a_message(people, published, django_capture_on_commit_callbacks):
    chat, teacher, _student, _other = people

    with django_capture_on_commit_callbacks(execute=True):
        poll, created = content.poll_create(
            user=teacher,
            chat_id=chat.pk,
            question="  Когда   собрание? ",
            options=["Понедельник", "Вторник", "Среда"],
            allows_multiple=True,
        )

    assert created
    message = poll.message
    assert (message.kind, message.body, message.seq, message.author_id) == ("poll", "Когда собрание?", 1, teacher.pk)
    assert list(PollOption.objects.filter(poll=poll).values_list("text", "position")) == [
        ("Понедельник", 0),
        ("Вторник", 1),
        ("Среда", 2),
    ]
    assert published.types() == ["message", "poll.updated"]
    options = list(PollOption.objects.filter(poll=poll))
    assert published.events[1] == {
        "type": "poll.updated",
        "chat": chat.pk,
        "seq": 1,
        "poll": {
            "id": poll.pk,
            "question": "Когда собрание?",
            "allows_multiple": True,
            "is_anonymous": False,
            "is_closed": False,
            "closed_at": None,
            "voters_count": 0,
            "options": [{"id": option.pk, "text": option.text, "votes": 0} for option in options],
        },
    }


def test_poll_resend_with_the_same_client_id_returns_the_first(people):
    chat, teacher, _student, _other = people
    first, _created = content.poll_create(
        user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"], client_id="p-1"
    )

    again, created = content.poll_create(
        user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"], client_id="p-1"
    )

    assert (again.pk, created) == (first.pk, False)
    assert Poll.objects.count() == 1


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("student", "poll_staff_only"),
        ("one_option", "poll_options_invalid"),
        ("eleven_options", "poll_options_invalid"),
        ("same_options", "poll_options_invalid"),
        ("empty_question", "invalid"),
        ("long_option", "invalid"),
        ("flag_not_boolean", "invalid"),
    ],
)
def test_poll_create_refusals_change_nothing(people, published, django_capture_on_commit_callbacks, case, code):
    chat, teacher, student, _other = people
    user, question, options, flag = teacher, "Когда?", ["Пн", "Вт"], False
    if case == "student":
        user = student
    elif case == "one_option":
        options = ["Пн"]
    elif case == "eleven_options":
        options = [str(number) for number in range(11)]
    elif case == "same_options":
        options = ["Пн", "пн"]
    elif case == "empty_question":
        question = "  "
    elif case == "long_option":
        options = ["Пн", "я" * 201]
    elif case == "flag_not_boolean":
        flag = "yes"

    with pytest.raises(ApplicationError) as refused, django_capture_on_commit_callbacks(execute=True) as callbacks:
        content.poll_create(user=user, chat_id=chat.pk, question=question, options=options, is_anonymous=flag)

    assert refused.value.code == code
    assert (Message.objects.count(), Poll.objects.count(), PollOption.objects.count()) == (0, 0, 0)
    assert callbacks == []


def test_single_choice_vote_replaces_and_empty_list_takes_it_back(
    people, published, django_capture_on_commit_callbacks
):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"])
    monday, tuesday = PollOption.objects.filter(poll=poll)

    with django_capture_on_commit_callbacks(execute=True):
        content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[monday.pk])
        view = content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[tuesday.pk])
        unchanged = content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[tuesday.pk])

    assert [(option["text"], option["votes"]) for option in view["options"]] == [("Пн", 0), ("Вт", 1)]
    assert view["my_votes"] == [tuesday.pk]
    assert view["voters_count"] == 1
    assert "voters" not in view["options"][0]  # a student sees no names
    assert unchanged == view
    assert published.types() == ["poll.updated", "poll.updated"]

    taken_back = content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[])

    assert taken_back["my_votes"] == []
    assert PollVote.objects.count() == 0


def test_multiple_choice_and_voters_names_for_staff_only(people):
    chat, teacher, student, other = people
    poll, _created = content.poll_create(
        user=teacher, chat_id=chat.pk, question="Что принести?", options=["Мяч", "Сок", "Торт"], allows_multiple=True
    )
    ball, juice, _cake = PollOption.objects.filter(poll=poll)
    content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[ball.pk, juice.pk])
    content.poll_vote(user=other, chat_id=chat.pk, poll_id=poll.pk, option_ids=[juice.pk])

    for_teacher = content.poll_get(user=teacher, chat_id=chat.pk, poll_id=poll.pk)
    for_student = content.poll_get(user=other, chat_id=chat.pk, poll_id=poll.pk)

    assert [option["votes"] for option in for_teacher["options"]] == [1, 2, 0]
    assert for_teacher["voters_count"] == 2
    assert [[voter["id"] for voter in option["voters"]] for option in for_teacher["options"]] == [
        [student.pk],
        [student.pk, other.pk],
        [],
    ]
    assert all("voters" not in option for option in for_student["options"])
    assert for_student["my_votes"] == [juice.pk]


def test_anonymous_poll_shows_no_names_even_to_staff(people):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(
        user=teacher, chat_id=chat.pk, question="Понятна тема?", options=["Да", "Нет"], is_anonymous=True
    )
    yes = PollOption.objects.filter(poll=poll).first()
    content.poll_vote(user=student, chat_id=chat.pk, poll_id=poll.pk, option_ids=[yes.pk])

    view = content.poll_get(user=teacher, chat_id=chat.pk, poll_id=poll.pk)

    assert view["options"][0]["votes"] == 1
    assert all("voters" not in option for option in view["options"])


@pytest.mark.parametrize(
    ("case", "error", "code"),
    [
        ("two_in_single_choice", ApplicationError, "poll_single_choice"),
        ("option_of_another_poll", ApplicationError, "poll_option_invalid"),
        ("not_a_list", ApplicationError, "invalid"),
        ("boolean", ApplicationError, "invalid"),
        ("closed", ApplicationError, "poll_closed"),
        ("stranger", NotFound, "not_found"),
        ("poll_of_another_chat", NotFound, "not_found"),
    ],
)
def test_vote_refusals_change_nothing(people, published, django_capture_on_commit_callbacks, case, error, code):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"])
    other_chat = make_chat(moderators=(teacher,), members=(student,))
    other_poll, _created = content.poll_create(user=teacher, chat_id=other_chat.pk, question="?", options=["А", "Б"])
    monday, tuesday = PollOption.objects.filter(poll=poll)
    user, chat_id, poll_id, option_ids = student, chat.pk, poll.pk, [monday.pk]
    if case == "two_in_single_choice":
        option_ids = [monday.pk, tuesday.pk]
    elif case == "option_of_another_poll":
        option_ids = [PollOption.objects.filter(poll=other_poll).first().pk]
    elif case == "not_a_list":
        option_ids = monday.pk
    elif case == "boolean":
        option_ids = [True]
    elif case == "closed":
        content.poll_close(user=teacher, chat_id=chat.pk, poll_id=poll.pk)
    elif case == "stranger":
        user = make_user()
    elif case == "poll_of_another_chat":
        poll_id = other_poll.pk
    published.sent.clear()

    with pytest.raises(error) as refused, django_capture_on_commit_callbacks(execute=True) as callbacks:
        content.poll_vote(user=user, chat_id=chat_id, poll_id=poll_id, option_ids=option_ids)

    assert refused.value.code == code
    assert PollVote.objects.count() == 0
    assert callbacks == []


def test_only_the_author_closes_a_poll(people, published, django_capture_on_commit_callbacks):
    chat, teacher, student, _other = people
    colleague = make_user()
    ChatMember.objects.create(chat=chat, user=colleague, role=MemberRole.MODERATOR)
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"])
    published.sent.clear()

    for user in (student, colleague):
        with pytest.raises(PermissionDenied) as refused, django_capture_on_commit_callbacks(execute=True) as calls:
            content.poll_close(user=user, chat_id=chat.pk, poll_id=poll.pk)
        assert refused.value.code == "not_author"
        assert calls == []
    poll.refresh_from_db()
    assert poll.closed_at is None

    with django_capture_on_commit_callbacks(execute=True):
        view = content.poll_close(user=teacher, chat_id=chat.pk, poll_id=poll.pk)
        content.poll_close(user=teacher, chat_id=chat.pk, poll_id=poll.pk)

    assert view["is_closed"] is True
    assert published.types() == ["poll.updated"]


def test_messages_content_collects_everything_in_fixed_queries(people, django_assert_num_queries):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="Когда?", options=["Пн", "Вт"])
    text = send(student, chat, "Текст")
    content.reaction_toggle(user=student, chat_id=chat.pk, seq=text.seq, emoji="🔥")
    shown = list(Message.objects.order_by("seq"))

    # attachments, reaction counts, own reactions, polls, options, votes, own votes
    with django_assert_num_queries(7):
        collected = content.messages_content(user=student, messages_shown=shown)

    assert collected[text.pk] == {"attachments": [], "reactions": {"🔥": 1}, "my_reactions": ["🔥"], "poll": None}
    assert collected[poll.message_id]["poll"]["question"] == "Когда?"
    assert collected[poll.message_id]["poll"]["my_votes"] == []
