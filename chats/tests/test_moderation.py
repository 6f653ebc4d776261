import datetime
import zoneinfo

import pytest
from django.utils import timezone

from chats.models import ChatMember, Message, MessageReport, Notification, OfficeHours, Pin
from chats.services import messages as message_services
from chats.services import moderation
from chats.services.sync import chats_sync
from chats.tests.factories import (
    active_member_ids,
    event_log_install,
    make_direct_chat,
    make_school_with_chats,
    send,
)
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.models import AuditEvent
from organisations.tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return event_log_install(monkeypatch)


def audit_actions() -> list[str]:
    return list(AuditEvent.objects.filter(action__startswith="chat.").order_by("pk").values_list("action", flat=True))


# --- Announcement mode -------------------------------------------------------------


def test_in_announcement_mode_only_teachers_post(published):
    world = make_school_with_chats(students=1)
    published.clear()

    moderation.chat_announcement_mode_set(actor=world.teacher, chat_id=world.parents_chat.pk, is_on=True)

    world.parents_chat.refresh_from_db()
    assert world.parents_chat.is_announcement_only is True
    assert audit_actions() == ["chat.announcement_mode"]
    assert published.chat_events == [
        (
            world.parents_chat.pk,
            {"type": "chat.updated", "chat": world.parents_chat.pk, "is_announcement_only": True},
        )
    ]
    with pytest.raises(PermissionDenied) as refusal:
        send(world.parent, world.parents_chat, "Можно вопрос?")
    assert refusal.value.code == "announcement_only"
    assert Message.objects.count() == 0
    assert send(world.teacher, world.parents_chat, "Собрание в четверг.").seq == 1


def test_members_cannot_switch_announcement_mode(published):
    world = make_school_with_chats(students=1)
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        moderation.chat_announcement_mode_set(actor=world.parent, chat_id=world.parents_chat.pk, is_on=True)

    assert refusal.value.code == "not_moderator"
    world.parents_chat.refresh_from_db()
    assert world.parents_chat.is_announcement_only is False
    assert audit_actions() == []
    assert published.chat_events == []


def test_a_chat_one_is_not_in_cannot_be_moderated():
    world = make_school_with_chats(students=1)
    other_teacher = make_member(organisation=world.school)

    with pytest.raises(NotFound):
        moderation.chat_announcement_mode_set(actor=other_teacher, chat_id=world.parents_chat.pk, is_on=True)


# --- Mute and remove -----------------------------------------------------------------


def test_a_muted_member_cannot_post_until_unmuted(published):
    world = make_school_with_chats(students=1)
    published.clear()
    before = timezone.now()

    member = moderation.chat_member_mute(
        actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk, minutes=30
    )

    assert member.muted_until is not None
    assert (
        before + datetime.timedelta(minutes=30) <= member.muted_until <= timezone.now() + datetime.timedelta(minutes=30)
    )
    assert published.chat_events == [
        (
            world.parents_chat.pk,
            {
                "type": "member.muted",
                "chat": world.parents_chat.pk,
                "user": world.parent.pk,
                "muted_until": member.muted_until.isoformat(),
            },
        )
    ]
    with pytest.raises(PermissionDenied) as refusal:
        send(world.parent, world.parents_chat)
    assert refusal.value.code == "muted"
    assert Message.objects.count() == 0

    moderation.chat_member_mute(actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk, minutes=0)

    assert ChatMember.objects.get(chat=world.parents_chat, user=world.parent, left_at=None).muted_until is None
    assert send(world.parent, world.parents_chat).seq == 1
    assert audit_actions() == ["chat.member_mute", "chat.member_unmute"]


@pytest.mark.parametrize("minutes", [-1, 7 * 24 * 60 + 1, "30", None, True, 1.5])
def test_mute_minutes_must_be_a_whole_number_up_to_a_week(minutes):
    world = make_school_with_chats(students=1)

    with pytest.raises(ApplicationError) as refusal:
        moderation.chat_member_mute(
            actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk, minutes=minutes
        )

    assert refusal.value.code == "invalid"
    assert ChatMember.objects.filter(muted_until__isnull=False).count() == 0


def test_moderators_cannot_mute_or_remove_each_other_or_themselves():
    world = make_school_with_chats(students=1)
    colleague = make_member(organisation=world.school)
    from organisations import services as organisation_services

    organisation_services.study_group_teacher_add(actor=None, group=world.group, teacher=colleague)
    chats_sync(organisation_ids=[world.school.pk])

    with pytest.raises(PermissionDenied) as refusal:
        moderation.chat_member_mute(actor=world.teacher, chat_id=world.parents_chat.pk, user_id=colleague.pk, minutes=5)
    assert refusal.value.code == "target_is_moderator"
    with pytest.raises(PermissionDenied) as refusal:
        moderation.chat_member_remove(actor=world.teacher, chat_id=world.parents_chat.pk, user_id=colleague.pk)
    assert refusal.value.code == "target_is_moderator"
    with pytest.raises(ApplicationError) as refusal:
        moderation.chat_member_mute(
            actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.teacher.pk, minutes=5
        )
    assert refusal.value.code == "invalid"
    with pytest.raises(NotFound) as refusal:
        moderation.chat_member_mute(
            actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.student.pk, minutes=5
        )
    assert refusal.value.code == "member_not_found"
    assert audit_actions() == []


def test_a_removed_member_is_out_and_the_sync_does_not_bring_them_back(published):
    world = make_school_with_chats(students=1)
    published.clear()

    moderation.chat_member_remove(actor=world.teacher, chat_id=world.parents_chat.pk, user_id=world.parent.pk)

    assert world.parent.pk not in active_member_ids(world.parents_chat)
    assert ChatMember.objects.get(chat=world.parents_chat, user=world.parent).is_removed is True
    assert published.chat_events == [
        (world.parents_chat.pk, {"type": "member.removed", "chat": world.parents_chat.pk, "user": world.parent.pk})
    ]
    assert published.user_events == [(world.parent.pk, {"type": "chat.left", "chat": world.parents_chat.pk})]
    assert audit_actions() == ["chat.member_remove"]
    with pytest.raises(NotFound):
        send(world.parent, world.parents_chat)

    chats_sync(organisation_ids=[world.school.pk])

    assert world.parent.pk not in active_member_ids(world.parents_chat)


def test_members_cannot_remove_others_and_nobody_is_removed_from_a_direct_chat():
    world = make_school_with_chats(students=2)
    direct = make_direct_chat(world.parents[0], world.parents[1])

    with pytest.raises(PermissionDenied) as refusal:
        moderation.chat_member_remove(
            actor=world.parents[0], chat_id=world.parents_chat.pk, user_id=world.parents[1].pk
        )
    assert refusal.value.code == "not_moderator"
    with pytest.raises(PermissionDenied) as refusal:
        moderation.chat_member_remove(actor=world.parents[0], chat_id=direct.pk, user_id=world.parents[1].pk)
    assert refusal.value.code == "not_moderator"
    assert active_member_ids(world.parents_chat) == {world.teacher.pk, *(parent.pk for parent in world.parents)}


# --- Deleting messages ---------------------------------------------------------------


def test_a_moderator_deletes_any_message_softly(published):
    world = make_school_with_chats(students=1)
    first = send(world.parent, world.parents_chat, "Грубость")
    second = send(world.parent, world.parents_chat, "Ещё сообщение")
    Pin.objects.create(chat=world.parents_chat, message=first, pinned_by=world.teacher)
    published.clear()

    deleted = moderation.message_delete(actor=world.teacher, chat_id=world.parents_chat.pk, seq=first.seq)

    deleted.refresh_from_db()
    assert (deleted.seq, deleted.deleted_by_id, deleted.body) == (1, world.teacher.pk, "Грубость")
    assert deleted.deleted_at is not None
    assert Pin.objects.count() == 0
    assert published.chat_events == [
        (world.parents_chat.pk, {"type": "message.deleted", "chat": world.parents_chat.pk, "seq": 1})
    ]
    assert AuditEvent.objects.get(action="chat.message_delete").changes == {"seq": 1, "author": world.parent.pk}
    second.refresh_from_db()
    assert second.deleted_at is None
    assert send(world.teacher, world.parents_chat).seq == 3

    published.clear()
    moderation.message_delete(actor=world.teacher, chat_id=world.parents_chat.pk, seq=first.seq)
    assert published.chat_events == []


def test_an_author_deleting_their_own_message_erases_its_text():
    world = make_school_with_chats(students=1)
    message = send(world.parent, world.parents_chat, "Ошиблась чатом")

    moderation.message_delete(actor=world.parent, chat_id=world.parents_chat.pk, seq=message.seq)

    message.refresh_from_db()
    assert (message.body, message.deleted_by_id) == ("", world.parent.pk)
    assert message.deleted_at is not None
    assert audit_actions() == []


def test_members_cannot_delete_other_peoples_messages(published):
    world = make_school_with_chats(students=2)
    message = send(world.parents[0], world.parents_chat, "Моё сообщение")
    published.clear()

    with pytest.raises(PermissionDenied) as refusal:
        moderation.message_delete(actor=world.parents[1], chat_id=world.parents_chat.pk, seq=message.seq)

    assert refusal.value.code == "not_author"
    message.refresh_from_db()
    assert (message.deleted_at, message.body) == (None, "Моё сообщение")
    assert published.chat_events == []
    with pytest.raises(NotFound):
        moderation.message_delete(actor=world.teacher, chat_id=world.parents_chat.pk, seq=99)


# --- Reports -----------------------------------------------------------------------


def test_a_report_notifies_the_moderators_once(published):
    world = make_school_with_chats(students=2)
    message = send(world.parents[0], world.parents_chat, "Оскорбление")
    published.clear()

    report, created = moderation.message_report(
        user=world.parents[1], chat_id=world.parents_chat.pk, seq=message.seq, reason="  Оскорбление  "
    )
    again, created_again = moderation.message_report(
        user=world.parents[1], chat_id=world.parents_chat.pk, seq=message.seq, reason="Ещё раз"
    )

    assert (created, created_again, again.pk) == (True, False, report.pk)
    assert (report.reason, report.reporter_id, report.message_id) == ("Оскорбление", world.parents[1].pk, message.pk)
    assert list(Notification.objects.values_list("user_id", "kind", "message_id")) == [
        (world.teacher.pk, Notification.Kind.REPORT, message.pk)
    ]
    assert published.user_events == [
        (world.teacher.pk, {"type": "message.reported", "chat": world.parents_chat.pk, "seq": message.seq})
    ]
    assert published.chat_events == []
    assert audit_actions() == ["chat.message_report"]


def test_reports_of_ones_own_or_missing_messages_are_refused():
    world = make_school_with_chats(students=1)
    message = send(world.parent, world.parents_chat)

    with pytest.raises(ApplicationError) as refusal:
        moderation.message_report(user=world.parent, chat_id=world.parents_chat.pk, seq=message.seq)
    assert refusal.value.code == "report_own_message"
    with pytest.raises(NotFound):
        moderation.message_report(user=world.teacher, chat_id=world.parents_chat.pk, seq=2)
    with pytest.raises(NotFound):
        moderation.message_report(user=world.student, chat_id=world.parents_chat.pk, seq=message.seq)
    assert MessageReport.objects.count() == 0
    assert Notification.objects.count() == 0


# --- Opening hours -----------------------------------------------------------------


def test_outside_opening_hours_students_may_not_post_but_teachers_may():
    world = make_school_with_chats(students=1)
    moderation.chat_opening_hours_set(
        actor=world.teacher, chat_id=world.students_chat.pk, opens_at=datetime.time(8), closes_at=datetime.time(20)
    )
    zone = zoneinfo.ZoneInfo(world.school.effective_time_zone)
    night = datetime.datetime(2026, 3, 2, 23, 30, tzinfo=zone)
    day = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=zone)
    student = ChatMember.objects.select_related("chat", "chat__organisation", "user").get(
        chat=world.students_chat, user=world.student
    )
    teacher = ChatMember.objects.select_related("chat", "chat__organisation", "user").get(
        chat=world.students_chat, user=world.teacher
    )

    with pytest.raises(PermissionDenied) as refusal:
        message_services.posting_check(member=student, now=night)
    assert refusal.value.code == "chat_closed"
    message_services.posting_check(member=student, now=day)
    message_services.posting_check(member=teacher, now=night)
    assert AuditEvent.objects.get(action="chat.opening_hours").changes == {"opens_at": "08:00", "closes_at": "20:00"}


def test_opening_hours_are_cleared_with_both_ends_and_need_both_ends():
    world = make_school_with_chats(students=1)
    chat_id = world.students_chat.pk
    moderation.chat_opening_hours_set(
        actor=world.teacher, chat_id=chat_id, opens_at=datetime.time(8), closes_at=datetime.time(20)
    )

    for opens_at, closes_at in ((datetime.time(8), None), (datetime.time(8), datetime.time(8))):
        with pytest.raises(ApplicationError) as refusal:
            moderation.chat_opening_hours_set(
                actor=world.teacher, chat_id=chat_id, opens_at=opens_at, closes_at=closes_at
            )
        assert refusal.value.code == "invalid_hours"
    moderation.chat_opening_hours_set(actor=world.teacher, chat_id=chat_id, opens_at=None, closes_at=None)

    world.students_chat.refresh_from_db()
    assert (world.students_chat.opens_at, world.students_chat.closes_at) == (None, None)


def test_settings_change_together_or_not_at_all():
    world = make_school_with_chats(students=1)

    with pytest.raises(ApplicationError) as refusal:
        moderation.chat_settings_update(
            actor=world.teacher,
            chat_id=world.students_chat.pk,
            changes={"is_announcement_only": True, "opens_at": datetime.time(8)},
        )

    assert refusal.value.code == "invalid_hours"

    world.students_chat.refresh_from_db()
    assert world.students_chat.is_announcement_only is False
    assert audit_actions() == []


# --- Office hours ------------------------------------------------------------------


def closed_hours_for(teacher, *, now: datetime.datetime) -> OfficeHours:
    """Office hours that start two hours from now, every day."""
    local = now.astimezone(zoneinfo.ZoneInfo("Europe/Moscow"))
    return moderation.office_hours_set(
        user=teacher,
        starts_at=(local + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0),
        ends_at=(local + datetime.timedelta(hours=3)).time().replace(second=0, microsecond=0),
        weekdays=[1, 2, 3, 4, 5, 6, 7],
        time_zone="Europe/Moscow",
    )


def test_only_educators_have_office_hours():
    world = make_school_with_chats(students=1)

    with pytest.raises(PermissionDenied) as refusal:
        moderation.office_hours_set(user=world.parent, starts_at=datetime.time(9), ends_at=datetime.time(17))

    assert refusal.value.code == "not_an_educator"
    assert OfficeHours.objects.count() == 0


@pytest.mark.parametrize(
    ("weekdays", "time_zone"), [([], "Europe/Moscow"), ([0, 8], "Europe/Moscow"), ("12345", "Mars/Olympus")]
)
def test_office_hours_need_real_weekdays_and_time_zone(weekdays, time_zone):
    world = make_school_with_chats(students=1)

    with pytest.raises(ApplicationError) as refusal:
        moderation.office_hours_set(
            user=world.teacher,
            starts_at=datetime.time(9),
            ends_at=datetime.time(17),
            weekdays=weekdays,
            time_zone=time_zone,
        )

    assert refusal.value.code == "invalid"
    assert OfficeHours.objects.count() == 0


def test_a_parents_message_after_office_hours_waits_for_the_morning(published):
    world = make_school_with_chats(students=1)
    now = timezone.now()
    hours = closed_hours_for(world.teacher, now=now)
    chat = make_direct_chat(world.parent, world.teacher)
    published.clear()

    held, created = message_services.message_send(
        user=world.parent, chat_id=chat.pk, body="Добрый вечер! Ваня завтра опоздает.", client_id="c-1"
    )
    again, created_again = message_services.message_send(
        user=world.parent, chat_id=chat.pk, body="Добрый вечер! Ваня завтра опоздает.", client_id="c-1"
    )

    assert (created, created_again, again.pk) == (True, False, held.pk)
    assert Message.objects.count() == 0
    assert published.chat_events == []
    expected = message_services.office_hours_next_opening(hours=hours, now=now)
    assert expected is not None
    assert held.deliver_at == expected
    with pytest.raises(ApplicationError) as refusal:
        message_services.message_send(user=world.parent, chat_id=chat.pk, body="Другой текст", client_id="c-1")
    assert refusal.value.code == "client_id_conflict"

    assert message_services.scheduled_messages_deliver(now=held.deliver_at - datetime.timedelta(seconds=1)) == 0
    assert message_services.scheduled_messages_deliver(now=held.deliver_at) == 1
    assert message_services.scheduled_messages_deliver(now=held.deliver_at) == 0

    message = Message.objects.get()
    assert (message.seq, message.author_id, message.client_id) == (1, world.parent.pk, "c-1")
    assert published.chat_event_types() == ["message"]
    repeat, repeat_created = message_services.message_send(
        user=world.parent, chat_id=chat.pk, body="Добрый вечер! Ваня завтра опоздает.", client_id="c-1"
    )
    assert (repeat.pk, repeat_created) == (message.pk, False)


def test_colleagues_write_to_a_teacher_at_any_time():
    world = make_school_with_chats(students=1)
    closed_hours_for(world.teacher, now=timezone.now())
    chat = make_direct_chat(world.administrator, world.teacher)

    message, created = message_services.message_send(user=world.administrator, chat_id=chat.pk, body="Зайдите ко мне")

    assert created is True
    assert isinstance(message, Message)


def test_a_held_message_is_not_delivered_once_its_author_left_the_chat():
    world = make_school_with_chats(students=1)
    closed_hours_for(world.teacher, now=timezone.now())
    chat = make_direct_chat(world.parent, world.teacher)
    held, _created = message_services.message_send(user=world.parent, chat_id=chat.pk, body="Вопрос")
    ChatMember.objects.filter(chat=chat, user=world.parent).update(left_at=timezone.now())

    assert message_services.scheduled_messages_deliver(now=held.deliver_at) == 0

    held.refresh_from_db()
    assert held.cancelled_at is not None
    assert Message.objects.count() == 0


def test_the_celery_task_delivers_held_messages(monkeypatch):
    from chats import tasks

    calls = []
    monkeypatch.setattr(tasks.messages, "scheduled_messages_deliver", lambda: calls.append(1) or 3)

    assert tasks.scheduled_messages_deliver.run() == 3
    assert calls == [1]
    assert tasks.scheduled_messages_deliver.name == "chats.tasks.scheduled_messages_deliver"


def test_office_hours_are_cleared():
    world = make_school_with_chats(students=1)
    closed_hours_for(world.teacher, now=timezone.now())

    moderation.office_hours_clear(user=world.teacher)
    moderation.office_hours_clear(user=world.teacher)

    assert OfficeHours.objects.count() == 0
    assert audit_actions() == ["chat.office_hours_set", "chat.office_hours_clear"]
