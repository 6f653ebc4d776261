"""Reminders the day before and 15 minutes before: in the portal for every
invitee and by SMS for those who chose it, exactly once even when the task
runs twice, concurrently, or dies mid-run; none for cancelled meetings;
enqueued only after the commit."""

import datetime
import json
import threading

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts import sms
from lessons import services, tasks
from lessons.models import (
    MeetingKind,
    MeetingNotification,
    NotificationKind,
    Reminder,
    ReminderKind,
    SmsStatus,
)
from lessons.tests.factories import in_minutes, make_lesson_world, make_meeting


@pytest.fixture
def enqueued(monkeypatch):
    """What would be sent to the broker: the lessons tasks' .delay calls."""
    calls: list[tuple] = []
    monkeypatch.setattr(tasks.meeting_reminders_send, "delay", lambda *args: calls.append(args))
    return calls


def outbox_lines(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def reminded(kind: str) -> list[int]:
    return sorted(MeetingNotification.objects.filter(kind=kind).values_list("user_id", flat=True))


def parent_meeting_in(world, minutes: float, **fields):
    return make_meeting(
        world=world,
        kind=MeetingKind.PARENT_MEETING,
        title="Родительское собрание 7Б",
        starts_at=in_minutes(minutes),
        **fields,
    )


@pytest.mark.django_db
def test_the_day_before_every_invitee_is_reminded_once_and_by_sms_who_chose_it(
    sms_outbox, django_capture_on_commit_callbacks
):
    world = make_lesson_world(students=2)
    services.reminder_preference_update(user=world.parents[0], by_sms=True)
    meeting = parent_meeting_in(world, 60 * 20)
    invitees = sorted([world.teacher.pk, *(parent.pk for parent in world.parents)])

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 0

    assert reminded(NotificationKind.REMINDER_DAY_BEFORE) == invitees
    assert reminded(NotificationKind.REMINDER_SOON) == []
    assert Reminder.objects.filter(kind=ReminderKind.DAY_BEFORE).count() == 3
    lines = outbox_lines(sms_outbox)
    assert [line["to"] for line in lines] == [world.parents[0].phone.as_e164]
    local = meeting.starts_at.astimezone(datetime.timezone(datetime.timedelta(hours=3)))
    assert "Родительское собрание 7Б" in lines[0]["text"]
    assert local.strftime("%H:%M") in lines[0]["text"]
    reminder = Reminder.objects.get(user=world.parents[0])
    assert reminder.sms_status == SmsStatus.SENT and reminder.sms_sent_at is not None


@pytest.mark.django_db
def test_fifteen_minutes_before_the_start(sms_outbox, django_capture_on_commit_callbacks):
    world = make_lesson_world(students=1)
    parent_meeting_in(world, 10)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 2

    assert reminded(NotificationKind.REMINDER_SOON) == sorted([world.teacher.pk, world.parent.pk])
    assert reminded(NotificationKind.REMINDER_DAY_BEFORE) == []
    assert outbox_lines(sms_outbox) == []


@pytest.mark.django_db
def test_nothing_outside_the_windows():
    world = make_lesson_world(students=1)
    parent_meeting_in(world, 60 * 25)
    parent_meeting_in(world, 60)  # too close for the day before, too far for the 15 minutes
    now = timezone.now()

    assert services.reminders_send(now=now) == 0
    assert MeetingNotification.objects.filter(kind__startswith="reminder").count() == 0


@pytest.mark.django_db
def test_none_for_a_cancelled_meeting_or_occurrence(sms_outbox, django_capture_on_commit_callbacks):
    world = make_lesson_world(students=1)
    services.reminder_preference_update(user=world.parent, by_sms=True)
    cancelled = parent_meeting_in(world, 10)
    start = in_minutes(60 * 20)
    series = make_meeting(
        world=world,
        kind=MeetingKind.PARENT_MEETING,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=1)),
    )
    services.meeting_cancel(actor=world.teacher, meeting_id=cancelled.pk)
    services.meeting_cancel(
        actor=world.teacher, meeting_id=series.pk, occurrence_id=series.occurrences.get(sequence=0).pk
    )

    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 0

    assert Reminder.objects.count() == 0
    assert MeetingNotification.objects.filter(kind__startswith="reminder").count() == 0
    assert outbox_lines(sms_outbox) == []


@pytest.mark.django_db
def test_a_worker_killed_before_its_commit_leaves_nothing_and_the_next_run_sends(
    monkeypatch, sms_outbox, django_capture_on_commit_callbacks
):
    world = make_lesson_world(students=1)
    services.reminder_preference_update(user=world.parent, by_sms=True)
    parent_meeting_in(world, 10)
    real_notify = services._notify

    def killed(**kwargs):
        raise SystemExit("worker killed")

    monkeypatch.setattr(services, "_notify", killed)
    with pytest.raises(SystemExit), django_capture_on_commit_callbacks(execute=True):
        services.reminders_send()

    assert Reminder.objects.count() == 0
    assert MeetingNotification.objects.filter(kind__startswith="reminder").count() == 0
    assert outbox_lines(sms_outbox) == []

    monkeypatch.setattr(services, "_notify", real_notify)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send() == 0
    assert reminded(NotificationKind.REMINDER_SOON) == sorted([world.teacher.pk, world.parent.pk])
    assert len(outbox_lines(sms_outbox)) == 1


@pytest.mark.django_db
def test_a_worker_killed_after_its_commit_never_sends_an_sms_twice(sms_outbox, django_capture_on_commit_callbacks):
    world = make_lesson_world(students=1)
    services.reminder_preference_update(user=world.parent, by_sms=True)
    parent_meeting_in(world, 10)
    now = timezone.now()

    # The claim commits, the worker dies before the SMS goes out.
    with django_capture_on_commit_callbacks(execute=False):
        assert services.reminders_send(now=now) == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert services.reminders_send(now=now + datetime.timedelta(minutes=1)) == 0
        assert services.reminders_send(now=now + datetime.timedelta(minutes=11)) == 0

    assert outbox_lines(sms_outbox) == []
    assert Reminder.objects.get(user=world.parent).sms_status == SmsStatus.FAILED
    assert reminded(NotificationKind.REMINDER_SOON) == sorted([world.teacher.pk, world.parent.pk])


@pytest.mark.django_db
def test_a_refused_sms_is_marked_failed_and_not_retried(monkeypatch, django_capture_on_commit_callbacks):
    world = make_lesson_world(students=1)
    services.reminder_preference_update(user=world.parent, by_sms=True)
    parent_meeting_in(world, 10)
    attempts: list[str] = []

    def refused(*, to, text):
        attempts.append(to)
        raise sms.SmsDeliveryError("gateway down")

    monkeypatch.setattr(services, "sms_send", refused)
    with django_capture_on_commit_callbacks(execute=True):
        services.reminders_send()
        services.reminders_send()

    assert attempts == [world.parent.phone.as_e164]
    assert Reminder.objects.get(user=world.parent).sms_status == SmsStatus.FAILED


@pytest.mark.django_db
def test_moving_a_meeting_reminds_again_for_the_new_time(django_capture_on_commit_callbacks, enqueued):
    world = make_lesson_world(students=1)
    meeting = parent_meeting_in(world, 10)
    services.reminders_send()

    services.meeting_update(actor=world.teacher, meeting_id=meeting.pk, starts_at=in_minutes(12))
    assert services.reminders_send() == 2

    assert MeetingNotification.objects.filter(kind=NotificationKind.REMINDER_SOON, user=world.parent).count() == 2


@pytest.mark.django_db
def test_the_task_is_enqueued_after_the_commit_and_not_for_a_rollback(django_capture_on_commit_callbacks, enqueued):
    world = make_lesson_world(students=1)

    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        meeting = parent_meeting_in(world, 60 * 3)
        assert enqueued == []
    assert enqueued == [(meeting.pk,)]

    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        parent_meeting_in(world, 60 * 24 * 3)  # no reminder due within a day: the beat has time
    assert enqueued == []

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                parent_meeting_in(world, 60 * 3)
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert callbacks == []
    assert enqueued == []


@pytest.mark.django_db
def test_the_beat_task_sends_what_is_due(django_capture_on_commit_callbacks):
    world = make_lesson_world(students=1)
    parent_meeting_in(world, 10)

    assert tasks.reminders_send() == 2
    assert tasks.meeting_reminders_send(999999) == 0


@pytest.mark.django_db(transaction=True)
def test_two_workers_at_once_remind_each_person_once(sms_outbox):
    world = make_lesson_world(students=3)
    for parent in world.parents:
        services.reminder_preference_update(user=parent, by_sms=True)
    parent_meeting_in(world, 10)
    barrier = threading.Barrier(2)
    results: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(services.reminders_send())
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
    assert sum(results) == 4
    assert reminded(NotificationKind.REMINDER_SOON) == sorted([world.teacher.pk, *(p.pk for p in world.parents)])
    assert sorted(line["to"] for line in outbox_lines(sms_outbox)) == sorted(p.phone.as_e164 for p in world.parents)


@pytest.mark.django_db
def test_sms_needs_a_phone_number():
    world = make_lesson_world(students=1)
    world.parent.phone = None
    world.parent.deleted_at = timezone.now()

    with pytest.raises(services.ApplicationError) as refused:
        services.reminder_preference_update(user=world.parent, by_sms=True)

    assert refused.value.code == "no_phone"
