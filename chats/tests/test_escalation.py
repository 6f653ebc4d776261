"""SMS escalation of unacknowledged channel posts to the students' guardians:
one SMS per guardian per post, never twice, none for acknowledged students."""

import datetime
import json
import threading

import pytest
from django.db import connection
from django.utils import timezone

from chats import tasks_channels
from chats.models import Message
from chats.services import channels
from chats.tests.test_channels import ChannelWorld, make_channel_world
from common.models import AuditEvent
from organisations import services as organisation_services
from organisations.tests.factories import make_parent, make_user


def outbox_lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def escalated_world() -> tuple[ChannelWorld, Message]:
    """Three students: 0 and 2 share a guardian (parents[0]); student 2 has a
    second one; student 1 acknowledges. The post is due."""
    world = make_channel_world(students=2)
    school = world.school
    third = make_user()
    organisation_services.study_group_student_add(actor=None, group=school.group, student=third)
    school.students.append(third)
    make_parent(student=third, organisation=school.school, parent=school.parents[0])
    school.parents.append(make_parent(student=third, organisation=school.school))
    channels.channel_subscriptions_sync(chat=world.channel)
    message, _created = channels.channel_post(
        user=world.editor,
        chat_id=world.channel.pk,
        body="Заполните согласие до пятницы",
        client_id="consent",
        requires_acknowledgement=True,
        escalate_after_hours=24,
    )
    channels.acknowledgement_create(user=school.students[1], chat_id=world.channel.pk, seq=message.seq)
    Message.objects.filter(pk=message.pk).update(escalate_at=timezone.now() - datetime.timedelta(minutes=1))
    return world, message


@pytest.mark.django_db
def test_each_guardian_gets_one_sms_per_post_and_never_twice(sms_outbox, django_capture_on_commit_callbacks):
    world, message = escalated_world()
    school = world.school

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks_channels.channel_escalations_run() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert tasks_channels.channel_escalations_run() == 0

    lines = outbox_lines(sms_outbox)
    assert sorted(line["to"] for line in lines) == sorted(
        [school.parents[0].phone.as_e164, school.parents[2].phone.as_e164]
    )
    for line in lines:
        assert "«Объявления школы»" in line["text"]
    message.refresh_from_db()
    assert message.escalated_at is not None
    event = AuditEvent.objects.get(action="channel.post_escalated")
    assert event.object_id == str(message.pk)
    assert event.changes == {"students_not_acknowledged": 2, "guardians_sent": 2}


@pytest.mark.django_db
def test_no_sms_when_every_student_acknowledged(sms_outbox, django_capture_on_commit_callbacks):
    world, message = escalated_world()
    for student in (world.school.students[0], world.school.students[2]):
        channels.acknowledgement_create(user=student, chat_id=world.channel.pk, seq=message.seq)

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks_channels.channel_escalations_run() == 1

    assert outbox_lines(sms_outbox) == []
    assert AuditEvent.objects.get(action="channel.post_escalated").changes == {
        "students_not_acknowledged": 0,
        "guardians_sent": 0,
    }


@pytest.mark.django_db
def test_a_guardian_who_acknowledged_gets_no_sms(sms_outbox, django_capture_on_commit_callbacks):
    world, message = escalated_world()
    channels.acknowledgement_create(user=world.school.parents[0], chat_id=world.channel.pk, seq=message.seq)

    with django_capture_on_commit_callbacks(execute=True):
        tasks_channels.channel_escalations_run()

    assert [line["to"] for line in outbox_lines(sms_outbox)] == [world.school.parents[2].phone.as_e164]


@pytest.mark.django_db
def test_nothing_is_sent_before_the_time_or_for_posts_without_escalation(
    sms_outbox, django_capture_on_commit_callbacks
):
    world, message = escalated_world()
    Message.objects.filter(pk=message.pk).update(escalate_at=timezone.now() + datetime.timedelta(minutes=5))
    channels.channel_post(
        user=world.editor, chat_id=world.channel.pk, body="Без эскалации", requires_acknowledgement=True
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks_channels.channel_escalations_run() == 0

    assert outbox_lines(sms_outbox) == []
    message.refresh_from_db()
    assert message.escalated_at is None


@pytest.mark.django_db
def test_a_deleted_post_is_not_escalated(sms_outbox, django_capture_on_commit_callbacks):
    _world, message = escalated_world()
    Message.objects.filter(pk=message.pk).update(deleted_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=True):
        assert tasks_channels.channel_escalations_run() == 0

    assert outbox_lines(sms_outbox) == []
    assert not AuditEvent.objects.filter(action="channel.post_escalated").exists()


@pytest.mark.django_db
def test_the_sms_text_is_short_and_names_no_person(sms_outbox, django_capture_on_commit_callbacks):
    world, _message = escalated_world()

    with django_capture_on_commit_callbacks(execute=True):
        tasks_channels.channel_escalations_run()

    for line in outbox_lines(sms_outbox):
        for student in world.school.students:
            assert student.first_name not in line["text"]
            assert student.last_name not in line["text"]
        assert "Заполните согласие" not in line["text"]


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_send_each_sms_once(sms_outbox) -> None:
    _world, _message = escalated_world()
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(tasks_channels.channel_escalations_run())
        except BaseException as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(results) == [0, 1]
    assert len(outbox_lines(sms_outbox)) == 2
    assert AuditEvent.objects.filter(action="channel.post_escalated").count() == 1
