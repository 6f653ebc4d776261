import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message
from chats.services import sync
from chats.services.sync import SyncResult, chats_sync
from chats.tests.factories import (
    active_member_ids,
    active_roles,
    class_chats,
    directory_changes_forget,
    event_log_install,
    make_school_with_chats,
)
from organisations import services as organisation_services
from organisations.models import Guardianship, Membership, OrganisationKind, Role
from organisations.selectors import current_academic_year
from organisations.tests.factories import (
    make_member,
    make_organisation,
    make_parent,
    make_school_with_class,
    make_study_group,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return event_log_install(monkeypatch)


@pytest.fixture(autouse=True)
def _fresh_directory_changes():
    directory_changes_forget()
    yield
    directory_changes_forget()


def test_a_class_gets_a_students_chat_a_parents_chat_and_the_school_a_staff_chat():
    world = make_school_with_class(name="7Б", students=2, short_name="Школа № 7")

    result = chats_sync(organisation_ids=[world.school.pk])

    chats = class_chats(world.group)
    students_chat = chats[ChatKind.CLASS_STUDENTS]
    parents_chat = chats[ChatKind.CLASS_PARENTS]
    staff_chat = Chat.objects.get(organisation=world.school, kind=ChatKind.STAFF)
    assert result == SyncResult(chats_created=3, members_added=3 + 3 + 2)
    assert students_chat.title == "7Б — ученики"
    assert parents_chat.title == "7Б — родители"
    assert staff_chat.title == "Школа № 7 — педагоги"
    assert {chat.organisation_id for chat in (students_chat, parents_chat, staff_chat)} == {world.school.pk}
    assert active_roles(students_chat) == {
        world.teacher.pk: MemberRole.MODERATOR,
        world.students[0].pk: MemberRole.MEMBER,
        world.students[1].pk: MemberRole.MEMBER,
    }
    assert active_roles(parents_chat) == {
        world.teacher.pk: MemberRole.MODERATOR,
        world.parents[0].pk: MemberRole.MEMBER,
        world.parents[1].pk: MemberRole.MEMBER,
    }
    assert active_roles(staff_chat) == {
        world.administrator.pk: MemberRole.MODERATOR,
        world.teacher.pk: MemberRole.MEMBER,
    }
    assert set(ChatMember.objects.values_list("is_synced", flat=True)) == {True}


def test_subject_teachers_moderate_both_class_chats():
    world = make_school_with_class(students=1)
    subject_teacher = make_user()
    organisation_services.study_group_teacher_add(
        actor=None, group=world.group, teacher=subject_teacher, subject="Математика"
    )

    chats_sync(organisation_ids=[world.school.pk])

    for chat in class_chats(world.group).values():
        assert active_roles(chat)[subject_teacher.pk] == MemberRole.MODERATOR


def test_new_members_get_a_joined_event_and_history_is_not_unread(published):
    world = make_school_with_chats(students=1)
    world.students_chat.last_seq = 7
    world.students_chat.save(update_fields=["last_seq"])
    newcomer = make_user()
    organisation_services.study_group_student_add(actor=None, group=world.group, student=newcomer)
    published.clear()

    result = chats_sync(organisation_ids=[world.school.pk])

    assert result == SyncResult(members_added=1)
    member = ChatMember.objects.get(chat=world.students_chat, user=newcomer)
    assert (member.role, member.is_synced, member.last_read_seq) == (MemberRole.MEMBER, True, 7)
    assert published.user_events == [(newcomer.pk, {"type": "chat.joined", "chat": world.students_chat.pk})]


def test_running_the_sync_again_changes_nothing(published):
    world = make_school_with_chats(students=3)
    rows_before = list(ChatMember.objects.order_by("pk").values())
    published.clear()

    result = chats_sync(organisation_ids=[world.school.pk])

    assert result == SyncResult()
    assert not result.changed
    assert list(ChatMember.objects.order_by("pk").values()) == rows_before
    assert Chat.objects.count() == 3
    assert published.user_events == []
    assert published.chat_events == []


def test_a_student_who_leaves_the_class_leaves_its_chats_with_their_parent(published):
    world = make_school_with_chats(students=2)
    leaving, parent = world.students[0], world.parents[0]
    organisation_services.study_group_student_remove(actor=None, group=world.group, student=leaving)
    published.clear()

    result = chats_sync(organisation_ids=[world.school.pk])

    assert result == SyncResult(members_removed=2)
    assert active_member_ids(world.students_chat) == {world.teacher.pk, world.students[1].pk}
    assert active_member_ids(world.parents_chat) == {world.teacher.pk, world.parents[1].pk}
    left = ChatMember.objects.get(chat=world.students_chat, user=leaving)
    assert left.left_at is not None
    assert sorted(published.user_events) == sorted(
        [
            (leaving.pk, {"type": "chat.left", "chat": world.students_chat.pk}),
            (parent.pk, {"type": "chat.left", "chat": world.parents_chat.pk}),
        ]
    )


def test_an_ended_guardianship_takes_the_parent_out_of_the_parents_chat():
    world = make_school_with_chats(students=1)
    guardianship = Guardianship.objects.get(parent=world.parent, student=world.student)
    organisation_services.guardianship_end(actor=None, guardianship=guardianship)

    chats_sync(organisation_ids=[world.school.pk])

    assert active_member_ids(world.parents_chat) == {world.teacher.pk}
    assert world.parent.pk not in active_member_ids(world.students_chat)


def test_a_teacher_who_leaves_the_school_leaves_the_class_and_staff_chats():
    world = make_school_with_chats(students=1)
    membership = Membership.objects.active().get(user=world.teacher, organisation=world.school, role=Role.TEACHER)
    organisation_services.membership_end(actor=None, membership=membership)

    chats_sync(organisation_ids=[world.school.pk])

    assert world.teacher.pk not in active_member_ids(world.students_chat)
    assert world.teacher.pk not in active_member_ids(world.parents_chat)
    assert active_member_ids(world.staff_chat) == {world.administrator.pk}


def test_a_student_who_leaves_the_school_leaves_the_class_chat():
    world = make_school_with_chats(students=2)
    membership = Membership.objects.active().get(user=world.student, organisation=world.school, role=Role.STUDENT)
    organisation_services.membership_end(actor=None, membership=membership)

    chats_sync(organisation_ids=[world.school.pk])

    assert world.student.pk not in active_member_ids(world.students_chat)
    assert world.parent.pk not in active_member_ids(world.parents_chat)


def test_members_added_by_hand_stay_and_people_removed_by_a_moderator_stay_out():
    world = make_school_with_chats(students=2)
    guest = make_user()
    ChatMember.objects.create(chat=world.parents_chat, user=guest)
    ChatMember.objects.filter(chat=world.students_chat, user=world.student).update(
        left_at=ChatMember.objects.get(chat=world.students_chat, user=world.student).joined_at, is_removed=True
    )

    result = chats_sync(organisation_ids=[world.school.pk])

    assert result == SyncResult()
    assert guest.pk in active_member_ids(world.parents_chat)
    assert world.student.pk not in active_member_ids(world.students_chat)


def test_a_teacher_who_is_also_a_parent_of_the_class_moderates_the_parents_chat():
    world = make_school_with_class(students=1)
    make_parent(student=world.student, organisation=world.school, parent=world.teacher)

    chats_sync(organisation_ids=[world.school.pk])

    parents_chat = class_chats(world.group)[ChatKind.CLASS_PARENTS]
    assert active_roles(parents_chat)[world.teacher.pk] == MemberRole.MODERATOR
    assert ChatMember.objects.filter(chat=parents_chat, user=world.teacher).count() == 1


def test_a_promoted_administrator_becomes_a_moderator_of_the_staff_chat():
    world = make_school_with_chats(students=0)
    make_member(organisation=world.school, role=Role.ADMINISTRATOR, user=world.teacher)

    result = chats_sync(organisation_ids=[world.school.pk])

    assert result == SyncResult(roles_changed=1)
    assert active_roles(world.staff_chat)[world.teacher.pk] == MemberRole.MODERATOR


def test_last_years_class_chats_are_archived_once_this_years_classes_exist(published):
    year = current_academic_year()
    world = make_school_with_class(name="6Б", students=1, academic_year=year - 1)
    chats_sync(organisation_ids=[world.school.pk])
    old_chats = class_chats(world.group)
    assert old_chats == {}  # only the current year's classes have chats

    last_year_chat = Chat.objects.create(
        kind=ChatKind.CLASS_STUDENTS, title="6Б — ученики", organisation=world.school, study_group=world.group
    )
    chats_sync(organisation_ids=[world.school.pk])
    last_year_chat.refresh_from_db()
    assert last_year_chat.is_archived is False  # no class of this year yet: keep it
    organisation_services.academic_year_advance(actor=None, organisation=world.school, from_year=year - 1)
    published.clear()

    result = chats_sync(organisation_ids=[world.school.pk])

    last_year_chat.refresh_from_db()
    assert last_year_chat.is_archived is True
    assert result.chats_archived == 1
    assert ("chat.archived" in published.chat_event_types()) is True
    new_group = world.group.__class__.objects.get(organisation=world.school, academic_year=year)
    assert new_group.name == "7Б"
    assert world.student.pk in active_member_ids(class_chats(new_group)[ChatKind.CLASS_STUDENTS])


def test_a_renamed_school_renames_its_staff_chat(published):
    world = make_school_with_chats(short_name="Школа № 3")
    organisation_services.organisation_update(actor=None, organisation=world.school, short_name="Лицей № 3")
    published.clear()

    chats_sync(organisation_ids=[world.school.pk])

    world.staff_chat.refresh_from_db()
    assert world.staff_chat.title == "Лицей № 3 — педагоги"
    assert published.chat_events == [
        (world.staff_chat.pk, {"type": "chat.updated", "chat": world.staff_chat.pk, "title": "Лицей № 3 — педагоги"})
    ]


def test_authorities_get_no_staff_chat():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    make_member(organisation=authority, role=Role.OFFICIAL)

    result = chats_sync(organisation_ids=[authority.pk])

    assert result == SyncResult()
    assert Chat.objects.count() == 0


def test_the_number_of_queries_does_not_depend_on_the_size_of_the_school():
    def queries_of_first_and_second_sync(students: int) -> tuple[int, int]:
        world = make_school_with_class(students=students)
        for index in range(students // 2):
            make_study_group(organisation=world.school, name=f"{5 + index}А", homeroom_teacher=make_user())
        with CaptureQueriesContext(connection) as first:
            chats_sync(organisation_ids=[world.school.pk])
        with CaptureQueriesContext(connection) as second:
            chats_sync(organisation_ids=[world.school.pk])
        return len(first.captured_queries), len(second.captured_queries)

    # (Inserts go in batches of the database's size: SQLite's 999 parameters
    # hold about a hundred members, more than the larger school has here.)
    small = queries_of_first_and_second_sync(2)
    large = queries_of_first_and_second_sync(20)

    assert small == large


def test_many_directory_changes_in_one_transaction_sync_once(monkeypatch, django_capture_on_commit_callbacks):
    world = make_school_with_chats(students=0)
    directory_changes_forget()
    calls: list[set[int]] = []
    real_sync = sync.chats_sync

    def counting_sync(*, organisation_ids):
        calls.append(set(organisation_ids))
        return real_sync(organisation_ids=organisation_ids)

    monkeypatch.setattr(sync, "chats_sync", counting_sync)
    students = [make_user() for _index in range(30)]

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        for student in students:
            organisation_services.study_group_student_add(actor=None, group=world.group, student=student)

    assert calls == [{world.school.pk}]
    assert active_member_ids(world.students_chat) == {world.teacher.pk, *(student.pk for student in students)}


def test_a_failing_sync_does_not_break_the_directory_change(monkeypatch, caplog):
    def broken_sync(*, organisation_ids):
        raise RuntimeError("database went away")

    monkeypatch.setattr(sync, "chats_sync", broken_sync)

    sync.directory_changed_hook({1})

    assert "run `manage.py sync_chats`" in caplog.text


def test_the_sync_chats_command_repairs_every_organisation(capsys):
    first = make_school_with_class(students=1)
    second = make_school_with_class(students=1)

    call_command("sync_chats")

    assert set(Chat.objects.values_list("kind", "organisation_id")) == {
        (kind, world.school.pk)
        for world in (first, second)
        for kind in (ChatKind.CLASS_STUDENTS, ChatKind.CLASS_PARENTS, ChatKind.STAFF)
    }
    assert capsys.readouterr().out == "chats created: 6, archived: 0, members added: 12, removed: 0, roles changed: 0\n"


def test_the_demo_has_class_chats_with_the_teachers_messages_and_a_second_run_adds_nothing():
    from organisations.demo import seed_demo_data

    data = seed_demo_data()
    counts = (Chat.objects.count(), ChatMember.objects.count(), Message.objects.count())
    seed_demo_data()

    assert (Chat.objects.count(), ChatMember.objects.count(), Message.objects.count()) == counts
    parents_chat = Chat.objects.get(study_group=data["class_7b"], kind=ChatKind.CLASS_PARENTS)
    students_chat = Chat.objects.get(study_group=data["class_7b"], kind=ChatKind.CLASS_STUDENTS)
    assert (parents_chat.title, students_chat.title) == ("7Б — родители", "7Б — ученики")
    assert Chat.objects.filter(study_group=data["class_5a"]).count() == 2
    assert Chat.objects.get(kind=ChatKind.STAFF, organisation=data["school_1"]).title == "МБОУ СОШ № 1 — педагоги"
    teacher = data["teacher_verified"]
    assert list(parents_chat.messages.values_list("seq", "author_id")) == [(1, teacher.pk), (2, teacher.pk)]
    assert list(students_chat.messages.values_list("seq", "author_id")) == [(1, teacher.pk), (2, teacher.pk)]
    assert data["parent"].pk in active_member_ids(parents_chat)
    assert data["student"].pk in active_member_ids(students_chat)


@pytest.mark.django_db(transaction=True)
async def test_a_student_put_into_a_class_hears_of_the_chat_on_their_sockets():

    from channels.db import database_sync_to_async

    from accounts.events import user_group_name
    from common import realtime
    from common.testing import Inbox

    world = await database_sync_to_async(make_school_with_class)(students=0)
    student = await database_sync_to_async(make_user)()
    inbox = Inbox()
    await realtime.hub().join(inbox, [user_group_name(student.pk)])

    await database_sync_to_async(organisation_services.study_group_student_add)(
        actor=None, group=world.group, student=student
    )

    chat = await Chat.objects.aget(study_group=world.group, kind=ChatKind.CLASS_STUDENTS)
    assert await inbox.next_text() == '{"type":"chat.joined","chat":' + str(chat.pk) + "}"
    await realtime.hub().close()
