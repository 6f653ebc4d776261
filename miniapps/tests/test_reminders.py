"""Homework reminders: from 18:00 of the evening before the due date on the
school's clock, one system message in each of the class's chats — exactly
once, whatever the number of runs."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone, translation

from chats.models import Chat, ChatKind, Message, MessageKind
from chats.services.sync import chats_sync
from miniapps import services, tasks
from miniapps.models import Homework
from organisations.tests.factories import make_school_with_class

pytestmark = pytest.mark.django_db

MOSCOW = zoneinfo.ZoneInfo("Europe/Moscow")
DUE = timezone.localdate() + datetime.timedelta(days=2)
EVENING = datetime.datetime.combine(DUE - datetime.timedelta(days=1), datetime.time(18, 0), tzinfo=MOSCOW)


def reminders() -> list[tuple[str, str]]:
    return list(
        Message.objects.filter(kind=MessageKind.SYSTEM).order_by("chat__kind").values_list("chat__kind", "body")
    )


@pytest.fixture
def homework():
    world = make_school_with_class(students=1)
    chats_sync(organisation_ids=[world.school.pk])
    return services.homework_create(
        actor=world.teacher, group_id=world.group.pk, subject="Математика", due_date=DUE, text="№ 245, 247"
    )


def expected_text() -> str:
    with translation.override("ru"):
        return translation.gettext("Reminder: homework in %(subject)s is due tomorrow, %(date)s: %(text)s") % {
            "subject": "Математика",
            "date": DUE.strftime("%d.%m.%Y"),
            "text": "№ 245, 247",
        }


def test_the_class_is_reminded_once_in_the_evening_before(homework):
    assert services.homework_reminders_send(now=EVENING - datetime.timedelta(minutes=1)) == 0
    assert reminders() == []

    assert services.homework_reminders_send(now=EVENING) == 1
    assert services.homework_reminders_send(now=EVENING + datetime.timedelta(minutes=10)) == 0
    assert services.homework_reminders_send(now=EVENING + datetime.timedelta(hours=5)) == 0

    assert reminders() == [(ChatKind.CLASS_PARENTS, expected_text()), (ChatKind.CLASS_STUDENTS, expected_text())]
    assert Homework.objects.get().reminded_at == EVENING


def test_no_reminder_on_the_due_day_or_two_evenings_before(homework):
    two_evenings_before = EVENING - datetime.timedelta(days=1)
    due_day = EVENING + datetime.timedelta(hours=7)

    assert services.homework_reminders_send(now=two_evenings_before) == 0
    assert services.homework_reminders_send(now=due_day) == 0
    assert reminders() == []
    assert Homework.objects.get().reminded_at is None


def test_the_schools_clock_decides(homework):
    homework.group.organisation.time_zone = "Asia/Vladivostok"
    homework.group.organisation.save(update_fields=["time_zone"])
    vladivostok_evening = EVENING.replace(tzinfo=zoneinfo.ZoneInfo("Asia/Vladivostok"))

    # 18:00 in Moscow is already 01:00 of the due day in Vladivostok.
    assert services.homework_reminders_send(now=EVENING) == 0
    assert services.homework_reminders_send(now=vladivostok_evening) == 1


def test_a_claimed_reminder_is_not_sent_again(homework):
    Homework.objects.filter(pk=homework.pk).update(reminded_at=EVENING)

    assert services.homework_reminders_send(now=EVENING) == 0
    assert reminders() == []


def test_the_task_calls_the_service(homework, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: EVENING.astimezone(datetime.UTC))

    assert tasks.homework_reminders_send.run() == 1
    assert tasks.homework_reminders_send.run() == 0
    assert len(reminders()) == 2


def test_an_archived_chat_gets_nothing(homework):
    Chat.objects.filter(kind=ChatKind.CLASS_PARENTS).update(is_archived=True)

    assert services.homework_reminders_send(now=EVENING) == 1
    assert [kind for kind, _body in reminders()] == [ChatKind.CLASS_STUDENTS]


def test_a_long_text_is_cut(homework):
    Homework.objects.filter(pk=homework.pk).update(text="очень " * 200)

    services.homework_reminders_send(now=EVENING)

    assert {len(body) for _kind, body in reminders()} == {services.REMINDER_TEXT_MAX}
