"""The class chats follow changes of a class made through the directory's
services: the chats app's hook (organisations.extensions) runs after the
change commits, as it does in real use. The directory does not import the
chats app; only this test looks at its chats."""

import pytest
from django.db import connection

from organisations import services
from organisations.tests.factories import SchoolWithClass, make_school_with_class, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def committed(monkeypatch, django_capture_on_commit_callbacks):
    """Runs the on-commit hooks of the directory changes made inside it,
    starting from no pending change (a test's transaction never commits)."""
    monkeypatch.setitem(connection.__dict__, "_parta_directory_changes", set())
    return lambda: django_capture_on_commit_callbacks(execute=True)


def class_chats(world: SchoolWithClass) -> dict[str, tuple[str, set[int]]]:
    """The class's chats by kind: their title and the ids of their members."""
    from chats.models import Chat, ChatMember

    return {
        chat.kind: (
            chat.title,
            set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True)),
        )
        for chat in Chat.objects.filter(study_group=world.group)
    }


def staff_chat_member_ids(world: SchoolWithClass) -> set[int]:
    from chats.models import Chat, ChatKind, ChatMember

    chat = Chat.objects.get(organisation=world.school, kind=ChatKind.STAFF)
    return set(ChatMember.objects.active().filter(chat=chat).values_list("user_id", flat=True))


def test_a_teacher_taken_off_a_class_leaves_its_chats_and_stays_in_the_staff_chat(committed):
    with committed():
        world = make_school_with_class(name="7Б", students=1)
        teacher = make_user()
        services.study_group_teacher_add(actor=None, group=world.group, teacher=teacher, subject="Математика")
    before = class_chats(world)

    with committed():
        services.study_group_teacher_remove(actor=world.administrator, group=world.group, teacher=teacher)

    after = class_chats(world)
    assert {kind: members for kind, (_title, members) in before.items()} == {
        "class_students": {world.teacher.pk, teacher.pk, world.student.pk},
        "class_parents": {world.teacher.pk, teacher.pk, world.parent.pk},
    }
    assert {kind: members for kind, (_title, members) in after.items()} == {
        "class_students": {world.teacher.pk, world.student.pk},
        "class_parents": {world.teacher.pk, world.parent.pk},
    }
    assert teacher.pk in staff_chat_member_ids(world)


def test_a_renamed_class_renames_its_chats(committed):
    with committed():
        world = make_school_with_class(name="7Б", students=1)

    with committed():
        services.study_group_rename(actor=world.administrator, group=world.group, name="7в")

    assert {kind: title for kind, (title, _members) in class_chats(world).items()} == {
        "class_students": "7В — ученики",
        "class_parents": "7В — родители",
    }
