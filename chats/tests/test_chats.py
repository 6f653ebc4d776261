import pytest

from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message, Notification
from chats.services import chats as chat_services
from chats.services import moderation
from chats.tests.factories import (
    active_member_ids,
    active_roles,
    event_log_install,
    make_group_chat,
    make_school_with_chats,
)
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.models import AuditEvent
from organisations import services as organisation_services
from organisations.tests.factories import make_member, make_study_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return event_log_install(monkeypatch)


def assert_nothing_stored(chats_before: int, members_before: int, published) -> None:
    assert Chat.objects.count() == chats_before
    assert ChatMember.objects.count() == members_before
    assert Message.objects.count() == 0
    assert Notification.objects.count() == 0
    assert published.chat_events == []
    assert published.user_events == []


# --- Direct chats ------------------------------------------------------------------


def test_a_direct_chat_is_created_once_per_pair(published):
    world = make_school_with_chats(students=1)
    published.clear()

    chat, created = chat_services.direct_chat_get_or_create(user=world.parent, other=world.teacher)
    again, created_again = chat_services.direct_chat_get_or_create(user=world.teacher, other=world.parent.pk)

    assert (created, created_again) == (True, False)
    assert again.pk == chat.pk
    assert chat.kind == ChatKind.DIRECT
    low, high = sorted((world.parent.pk, world.teacher.pk))
    assert chat.direct_key == f"{low}:{high}"
    assert active_roles(chat) == {world.parent.pk: MemberRole.MEMBER, world.teacher.pk: MemberRole.MEMBER}
    assert sorted(published.user_events) == sorted(
        [
            (world.parent.pk, {"type": "chat.joined", "chat": chat.pk}),
            (world.teacher.pk, {"type": "chat.joined", "chat": chat.pk}),
        ]
    )


def test_someone_who_left_a_direct_chat_is_brought_back_when_it_is_opened_again():
    world = make_school_with_chats(students=1)
    chat, _created = chat_services.direct_chat_get_or_create(user=world.parent, other=world.teacher)
    chat_services.chat_leave(user=world.teacher, chat_id=chat.pk)

    reopened, created = chat_services.direct_chat_get_or_create(user=world.parent, other=world.teacher)

    assert (reopened.pk, created) == (chat.pk, False)
    assert active_member_ids(chat) == {world.parent.pk, world.teacher.pk}


def test_a_stranger_cannot_open_a_direct_chat_with_a_child_in_safe_mode(published):
    world = make_school_with_chats(students=1)
    stranger = make_user()
    chats_before, members_before = Chat.objects.count(), ChatMember.objects.count()
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.direct_chat_get_or_create(user=stranger, other=world.student)

    assert refusal.value.code == "contact_not_allowed"
    assert_nothing_stored(chats_before, members_before, published)


def test_a_parent_of_another_class_is_not_a_contact_of_the_child():
    world = make_school_with_chats(students=1)
    other_class = make_study_group(organisation=world.school, name="5А", students=1)
    other_parent = make_user()
    other_student = other_class.students.get()
    organisation_services.guardianship_link(
        actor=None, parent=other_parent, student=other_student, organisation=world.school
    )

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.direct_chat_get_or_create(user=other_parent, other=world.student)

    assert refusal.value.code == "contact_not_allowed"
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()


@pytest.mark.parametrize("who", ["classmate", "guardian", "teacher", "administrator"])
def test_contacts_may_open_a_direct_chat_with_a_child(who):
    world = make_school_with_chats(students=2)
    actor = {
        "classmate": world.students[1],
        "guardian": world.parent,
        "teacher": world.teacher,
        "administrator": world.administrator,
    }[who]

    chat, created = chat_services.direct_chat_get_or_create(user=actor, other=world.student)

    assert created is True
    assert active_member_ids(chat) == {actor.pk, world.student.pk}


def test_people_one_shares_nothing_with_are_not_found(published):
    world = make_school_with_chats(students=1)
    stranger = make_user()

    for other in (stranger.pk, 10**9):
        with pytest.raises(NotFound) as refusal:
            chat_services.direct_chat_get_or_create(user=world.parent, other=other)
        assert refusal.value.code == "user_not_found"
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()


def test_a_direct_chat_with_oneself_is_refused():
    user = make_user()

    with pytest.raises(ApplicationError) as refusal:
        chat_services.direct_chat_get_or_create(user=user, other=user.pk)

    assert refusal.value.code == "invalid"


def test_an_existing_direct_chat_is_refused_once_the_child_is_no_longer_a_contact(published):
    world = make_school_with_chats(students=2)
    child, classmate = world.students
    chat, _created = chat_services.direct_chat_get_or_create(user=classmate, other=child)
    other_class = make_study_group(organisation=world.school, name="7А")
    organisation_services.study_group_student_remove(actor=None, group=world.group, student=classmate)
    organisation_services.study_group_student_add(actor=None, group=other_class, student=classmate)
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.direct_chat_get_or_create(user=classmate, other=child)

    assert refusal.value.code == "contact_not_allowed"
    assert published.user_events == []
    assert active_member_ids(chat) == {child.pk, classmate.pk}


# --- Group chats ------------------------------------------------------------------


def test_a_group_chat_is_owned_by_its_creator(published):
    world = make_school_with_chats(students=2)
    published.clear()

    chat = chat_services.group_chat_create(
        user=world.teacher, title="  Олимпиада   по математике ", member_ids=[world.students[0].pk, world.parent.pk]
    )

    assert (chat.kind, chat.title, chat.created_by_id) == (ChatKind.GROUP, "Олимпиада по математике", world.teacher.pk)
    assert active_roles(chat) == {
        world.teacher.pk: MemberRole.OWNER,
        world.students[0].pk: MemberRole.MEMBER,
        world.parent.pk: MemberRole.MEMBER,
    }
    assert sorted(user_id for user_id, _event in published.user_events) == sorted(
        [world.teacher.pk, world.students[0].pk, world.parent.pk]
    )


def test_a_group_with_a_child_who_is_not_a_contact_is_not_created_at_all(published):
    world = make_school_with_chats(students=1)
    other_parent = make_member(organisation=world.school, role="parent")
    chats_before, members_before = Chat.objects.count(), ChatMember.objects.count()
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.group_chat_create(
            user=other_parent, title="Родители и дети", member_ids=[world.parent.pk, world.student.pk]
        )

    assert refusal.value.code == "contact_not_allowed"
    assert_nothing_stored(chats_before, members_before, published)


def test_a_group_with_someone_the_creator_may_not_see_is_refused(published):
    world = make_school_with_chats(students=1)
    stranger = make_user()
    chats_before, members_before = Chat.objects.count(), ChatMember.objects.count()
    published.clear()

    with pytest.raises(NotFound) as refusal:
        chat_services.group_chat_create(user=world.parent, title="Чат", member_ids=[world.teacher.pk, stranger.pk])

    assert refusal.value.code == "user_not_found"
    assert_nothing_stored(chats_before, members_before, published)


@pytest.mark.parametrize(
    ("title", "member_ids"),
    [("", []), ("   ", []), ("x" * 201, []), (None, []), ("Чат", "1,2"), ("Чат", list(range(201)))],
)
def test_a_group_needs_a_title_and_a_list_of_people(title, member_ids):
    user = make_user()

    with pytest.raises(ApplicationError) as refusal:
        chat_services.group_chat_create(user=user, title=title, member_ids=member_ids)

    assert refusal.value.code == "invalid"
    assert Chat.objects.count() == 0


def test_a_moderator_adds_people_to_a_group_chat(published):
    world = make_school_with_chats(students=2)
    chat = chat_services.group_chat_create(user=world.teacher, title="Кружок", member_ids=[world.students[0].pk])
    published.clear()

    member, created = chat_services.chat_member_add(actor=world.teacher, chat_id=chat.pk, user_id=world.students[1].pk)
    again, created_again = chat_services.chat_member_add(
        actor=world.teacher, chat_id=chat.pk, user_id=world.students[1].pk
    )

    assert (created, created_again, again.pk) == (True, False, member.pk)
    assert (member.role, member.is_synced) == (MemberRole.MEMBER, False)
    assert published.user_events == [(world.students[1].pk, {"type": "chat.joined", "chat": chat.pk})]
    assert published.chat_event_types() == ["member.added"]
    assert AuditEvent.objects.filter(action="chat.member_add").count() == 1


def test_members_who_do_not_moderate_cannot_add_people():
    world = make_school_with_chats(students=2)
    chat = chat_services.group_chat_create(user=world.teacher, title="Кружок", member_ids=[world.students[0].pk])

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.chat_member_add(actor=world.students[0], chat_id=chat.pk, user_id=world.students[1].pk)

    assert refusal.value.code == "not_moderator"
    assert active_member_ids(chat) == {world.teacher.pk, world.students[0].pk}


def test_a_stranger_cannot_add_a_child_to_an_existing_group(published):
    world = make_school_with_chats(students=1)
    outsider = make_member(organisation=world.school, role="parent")
    chat = make_group_chat(owner=outsider, members=[world.parent])
    members_before = ChatMember.objects.count()
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.chat_member_add(actor=outsider, chat_id=chat.pk, user_id=world.student.pk)

    assert refusal.value.code == "contact_not_allowed"
    assert ChatMember.objects.count() == members_before
    assert published.chat_events == published.user_events == []
    assert AuditEvent.objects.filter(action="chat.member_add").count() == 0


def test_nobody_is_added_by_hand_to_class_chats():
    world = make_school_with_chats(students=1)
    colleague = make_member(organisation=world.school)

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.chat_member_add(actor=world.teacher, chat_id=world.students_chat.pk, user_id=colleague.pk)

    assert refusal.value.code == "chat_managed_by_directory"
    assert colleague.pk not in active_member_ids(world.students_chat)


def test_a_moderator_lets_back_someone_removed_from_a_class_chat():
    world = make_school_with_chats(students=2)
    moderation.chat_member_remove(actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk)

    member, created = chat_services.chat_member_add(
        actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk
    )

    assert created is True
    assert (member.user_id, member.is_synced, member.left_at) == (world.parent.pk, True, None)
    assert AuditEvent.objects.filter(action="chat.member_readmit").count() == 1


# --- Leaving, renaming, reading ----------------------------------------------------


def test_a_member_leaves_a_group_chat(published):
    world = make_school_with_chats(students=2)
    chat = chat_services.group_chat_create(user=world.teacher, title="Кружок", member_ids=[world.students[0].pk])
    published.clear()

    chat_services.chat_leave(user=world.students[0], chat_id=chat.pk)

    assert active_member_ids(chat) == {world.teacher.pk}
    assert published.user_events == [(world.students[0].pk, {"type": "chat.left", "chat": chat.pk})]
    assert published.chat_events == [
        (chat.pk, {"type": "member.removed", "chat": chat.pk, "user": world.students[0].pk})
    ]
    with pytest.raises(NotFound):
        chat_services.chat_leave(user=world.students[0], chat_id=chat.pk)


def test_when_the_owner_leaves_the_longest_standing_member_owns_the_group():
    world = make_school_with_chats(students=2)
    chat = chat_services.group_chat_create(
        user=world.teacher, title="Кружок", member_ids=[world.students[0].pk, world.students[1].pk]
    )

    chat_services.chat_leave(user=world.teacher, chat_id=chat.pk)

    assert active_roles(chat) == {world.students[0].pk: MemberRole.OWNER, world.students[1].pk: MemberRole.MEMBER}


def test_class_chats_cannot_be_left():
    world = make_school_with_chats(students=1)

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.chat_leave(user=world.parent, chat_id=world.parents_chat.pk)

    assert refusal.value.code == "chat_managed_by_directory"
    assert world.parent.pk in active_member_ids(world.parents_chat)


def test_a_moderator_renames_a_group_chat(published):
    world = make_school_with_chats(students=1)
    chat = chat_services.group_chat_create(user=world.teacher, title="Кружок", member_ids=[world.student.pk])
    published.clear()

    chat_services.chat_rename(actor=world.teacher, chat_id=chat.pk, title="Кружок робототехники")

    chat.refresh_from_db()
    assert chat.title == "Кружок робототехники"
    assert published.chat_events == [
        (chat.pk, {"type": "chat.updated", "chat": chat.pk, "title": "Кружок робототехники"})
    ]
    assert AuditEvent.objects.get(action="chat.rename").changes == {"title": ["Кружок", "Кружок робототехники"]}


def test_class_chats_are_named_by_the_directory():
    world = make_school_with_chats(students=1)

    with pytest.raises(PermissionDenied) as refusal:
        chat_services.chat_rename(actor=world.teacher, chat_id=world.students_chat.pk, title="Лучший класс")

    assert refusal.value.code == "chat_managed_by_directory"


def test_the_read_position_only_moves_forward_and_not_past_the_last_message(published):
    world = make_school_with_chats(students=2)
    chat = world.parents_chat
    Chat.objects.filter(pk=chat.pk).update(last_seq=10)
    published.clear()

    assert chat_services.chat_read_mark(user=world.parent, chat_id=chat.pk, seq=4) == (4, 10)
    assert chat_services.chat_read_mark(user=world.parent, chat_id=chat.pk, seq=2) == (4, 10)
    assert chat_services.chat_read_mark(user=world.parent, chat_id=chat.pk, seq=99) == (10, 10)
    assert ChatMember.objects.get(chat=chat, user=world.parent).last_read_seq == 10
    # The teacher (the chat's staff) sees read receipts and hears that they
    # changed; the other parents do not.
    assert published.user_events == [
        (world.parent.pk, {"type": "chat.read", "chat": chat.pk, "seq": 4}),
        (world.teacher.pk, {"type": "chat.seen", "chat": chat.pk, "seq": 4}),
        (world.parent.pk, {"type": "chat.read", "chat": chat.pk, "seq": 10}),
        (world.teacher.pk, {"type": "chat.seen", "chat": chat.pk, "seq": 10}),
    ]
