"""The admin's view of meetings (scoped to the administrator's
organisations, cancellation through the service) and the demo data."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from lessons import schedule, services
from lessons.demo import LESSON_TITLE, PARENT_MEETING_TITLE, _demo_days
from lessons.models import Meeting, MeetingKind, MeetingNotification, NotificationKind
from lessons.tests.factories import make_lesson_world, make_meeting

pytestmark = pytest.mark.django_db


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_a_school_administrator_sees_the_schools_meetings_only():
    world = make_lesson_world(students=1)
    other = make_lesson_world(students=1)
    mine = make_meeting(world=world, title="Наш урок")
    theirs = make_meeting(world=other, title="Чужой урок")
    client = admin_client(world.administrator)

    listing = client.get("/admin/lessons/meeting/")

    assert listing.status_code == 200
    page = listing.content.decode()
    assert "Наш урок" in page
    assert "Чужой урок" not in page
    assert client.get(f"/admin/lessons/meeting/{mine.pk}/change/").status_code == 200
    assert client.get(f"/admin/lessons/meeting/{theirs.pk}/change/").status_code == 404


def test_a_guest_links_hash_is_not_shown_in_the_admin():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)
    link, token = services.join_link_create(actor=world.teacher, meeting_id=meeting.pk, label="Петрова")

    page = admin_client(world.administrator).get(f"/admin/lessons/meeting/{meeting.pk}/change/").content.decode()

    assert "Петрова" in page
    assert token not in page
    assert link.token_hash not in page


def test_the_admin_cancels_through_the_service_and_the_invitees_are_told():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)

    response = admin_client(world.administrator).post(
        "/admin/lessons/meeting/", {"action": "cancel_meetings", "_selected_action": [meeting.pk]}
    )

    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.cancelled_at is not None
    assert MeetingNotification.objects.filter(kind=NotificationKind.CANCELLED, user=world.parent).count() == 1


def test_reminders_and_notifications_are_for_superusers_only():
    world = make_lesson_world(students=1)
    client = admin_client(world.administrator)

    assert client.get("/admin/lessons/reminder/").status_code == 403
    assert client.get("/admin/lessons/meetingnotification/").status_code == 403
    assert admin_client(world.teacher).get("/admin/lessons/meeting/").status_code in (302, 403)


def test_the_demo_has_a_lesson_and_a_parent_meeting_and_a_second_run_adds_nothing():
    output = StringIO()
    call_command("seed_demo", stdout=output)
    first = list(Meeting.objects.order_by("pk").values_list("pk", "title", "kind"))
    call_command("seed_demo", stdout=StringIO())

    assert list(Meeting.objects.order_by("pk").values_list("pk", "title", "kind")) == first
    assert {(title, kind) for _pk, title, kind in first} == {
        (LESSON_TITLE, MeetingKind.LESSON),
        (PARENT_MEETING_TITLE, MeetingKind.PARENT_MEETING),
    }
    lesson = Meeting.objects.get(title=LESSON_TITLE)
    assert lesson.host.phone == "+79000000002"
    assert lesson.occurrences.count() == 8
    local = schedule.utc_to_local(lesson.starts_at, lesson.time_zone)
    assert local.strftime("%H:%M") == "10:00"
    assert local.date() > schedule.utc_to_local(timezone.now(), lesson.time_zone).date()


def test_the_demo_days_stay_in_this_week_while_they_can():
    import datetime

    monday = datetime.date(2025, 10, 6)
    assert _demo_days(today=monday) == (datetime.date(2025, 10, 7), datetime.date(2025, 10, 12))
    assert _demo_days(today=monday + datetime.timedelta(days=4)) == (
        datetime.date(2025, 10, 11),
        datetime.date(2025, 10, 12),
    )
    assert _demo_days(today=monday + datetime.timedelta(days=6)) == (
        datetime.date(2025, 10, 13),
        datetime.date(2025, 10, 14),
    )


def test_the_personal_data_export_has_the_persons_meetings():
    import json

    from accounts.selectors import personal_data_export

    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, title="Собрание", kind=MeetingKind.PARENT_MEETING, starts_at=None)
    services.reminder_preference_update(user=world.parent, by_sms=True)

    teacher_export = personal_data_export(user=world.teacher)
    parent_export = personal_data_export(user=world.parent)

    assert [item["id"] for item in teacher_export["meetings_hosted"]] == [meeting.pk]
    assert parent_export["meetings_hosted"] == []
    assert parent_export["meeting_reminders"] == {"by_sms": True}
    json.dumps(parent_export)
