"""The lessons pages without JavaScript: every page and form through
Django's test client, as a browser with scripts off uses them."""

import datetime
import re

import pytest
from django.utils import timezone

from lessons import schedule, services
from lessons.models import JoinLink, Meeting, MeetingKind, Participant, ParticipantStatus, ReminderPreference
from lessons.tests.factories import (
    in_minutes,
    make_lesson_now,
    make_lesson_world,
    make_meeting,
    make_parent_meeting_now,
    page_client,
)
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db


def test_the_calendar_needs_a_sign_in():
    response = page_client().get("/lessons/")

    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_week_calendar_page_of_a_student():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, title="Геометрия")
    week = schedule.iso_week_name(timezone.localdate(meeting.starts_at))

    response = page_client(world.student).get("/lessons/", {"week": week})

    assert response.status_code == 200
    page = response.content.decode()
    assert "Геометрия" in page
    assert f'href="/lessons/{meeting.pk}/"' in page
    assert 'href="/lessons/new/"' not in page
    assert '<html lang="ru">' in page
    assert "?week=" + schedule.iso_week_name(schedule.iso_week_parse(week) + datetime.timedelta(weeks=1)) in page


def test_a_bad_week_shows_the_current_one_with_an_error():
    world = make_lesson_world(students=1)

    response = page_client(world.student).get("/lessons/", {"week": "week-five"})

    assert response.status_code == 200
    assert 'role="alert"' in response.content.decode()


def test_a_verified_teacher_schedules_through_the_form():
    world = make_lesson_world(students=2)
    client = page_client(world.teacher)
    day = timezone.localdate() + datetime.timedelta(days=3)

    form_page = client.get("/lessons/new/")
    response = client.post(
        "/lessons/new/",
        {
            "organisation": world.school.pk,
            "kind": "parent_meeting",
            "title": "Собрание по итогам четверти",
            "date": day.isoformat(),
            "time": "18:30",
            "duration_minutes": "60",
            "guardian_groups": [str(world.group.pk)],
            "lobby_for_guests": "on",
        },
    )

    assert form_page.status_code == 200
    assert str(world.group) in form_page.content.decode()
    meeting = Meeting.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/lessons/{meeting.pk}/"
    local = schedule.utc_to_local(meeting.starts_at, meeting.time_zone)
    assert (local.date(), local.strftime("%H:%M")) == (day, "18:30")
    assert meeting.kind == MeetingKind.PARENT_MEETING
    assert meeting.lobby_for_guests is True


def test_the_form_shows_a_refusal_next_to_the_field_and_stores_nothing():
    world = make_lesson_world(students=1)

    response = page_client(world.teacher).post(
        "/lessons/new/",
        {
            "organisation": world.school.pk,
            "kind": "lesson",
            "title": "Урок",
            "date": (timezone.localdate() - datetime.timedelta(days=2)).isoformat(),
            "time": "09:00",
            "duration_minutes": "40",
            "student_groups": [str(world.group.pk)],
        },
    )

    assert response.status_code == 200
    assert 'class="errorlist' in response.content.decode()
    assert Meeting.objects.count() == 0


def test_people_who_may_not_schedule_do_not_get_the_form():
    world = make_lesson_world(students=1)

    for person in (world.student, world.parent, make_user()):
        assert page_client(person).get("/lessons/new/").status_code == 404


def test_the_meeting_page_for_an_invitee_the_host_and_a_stranger():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world, title="Физика")

    student_page = page_client(world.student).get(f"/lessons/{meeting.pk}/").content.decode()
    host_page = page_client(world.teacher).get(f"/lessons/{meeting.pk}/").content.decode()

    assert "Физика" in student_page
    assert f'action="/lessons/{meeting.pk}/join/"' in student_page
    assert 'id="lobby"' not in student_page
    assert 'id="lobby"' in host_page
    assert f'href="/lessons/{meeting.pk}/attendance/"' in host_page
    assert page_client(make_user()).get(f"/lessons/{meeting.pk}/").status_code == 404
    assert page_client(world.student).get(f"/lessons/{meeting.pk}/edit/").status_code == 404


def test_joining_from_the_page_leads_into_the_call_block():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    client = page_client(world.student)

    joined = client.post(f"/lessons/{meeting.pk}/join/")
    room = client.get(f"/lessons/{meeting.pk}/join/")

    assert joined.status_code == 302
    assert joined["Location"] == f"/lessons/{meeting.pk}/join/"
    participant = Participant.objects.get(user=world.student)
    page = room.content.decode()
    assert f'data-participant="{participant.pk}"' in page
    assert 'data-status="admitted"' in page


def test_in_the_lobby_the_page_says_so_and_offers_to_check_again():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    client = page_client(world.student)
    client.post(f"/lessons/{meeting.pk}/join/")

    page = client.get(f"/lessons/{meeting.pk}/join/").content.decode()

    assert 'data-status="waiting"' in page
    assert '<form method="get">' in page
    assert "/static/js/lessons" in page


def test_too_early_the_join_button_is_replaced_by_the_opening_time():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(180))
    client = page_client(world.student)

    page = client.get(f"/lessons/{meeting.pk}/").content.decode()
    refused = client.post(f"/lessons/{meeting.pk}/join/")

    assert f'action="/lessons/{meeting.pk}/join/"' not in page
    assert refused.status_code == 302
    assert Participant.objects.count() == 0


def test_the_host_makes_a_link_and_a_guest_comes_in_without_an_account():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    host = page_client(world.teacher)

    made = host.post(f"/lessons/{meeting.pk}/links/", {"label": "Бабушка"})
    url = re.search(r'value="(http[^"]+/join/([^"/]+)/)"', made.content.decode())
    assert url is not None
    token = url.group(2)
    assert made["Cache-Control"] == "no-store"
    guest = page_client()
    invitation = guest.get(f"/join/{token}/")
    asked = guest.post(f"/join/{token}/", {"display_name": "Нина Петровна"})
    lobby = guest.get(f"/join/{token}/")

    assert invitation.status_code == 200
    assert "Родительское собрание" in invitation.content.decode()
    assert asked.status_code == 302
    assert 'data-status="waiting"' in lobby.content.decode()
    waiting = Participant.objects.get(join_link__isnull=False)
    host_page = host.get(f"/lessons/{meeting.pk}/").content.decode()
    assert "Нина Петровна" in host_page
    decided = host.post(f"/lessons/{meeting.pk}/participants/{waiting.pk}/", {"action": "admit"})
    assert decided.status_code == 302
    assert 'data-status="admitted"' in guest.get(f"/join/{token}/").content.decode()


def test_a_revoked_link_page_answers_410_and_an_unknown_one_404():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    link, token = services.join_link_create(actor=world.teacher, meeting_id=meeting.pk)

    revoked = page_client(world.teacher).post(f"/lessons/{meeting.pk}/links/{link.pk}/revoke/")
    gone = page_client().get(f"/join/{token}/")
    unknown = page_client().get("/join/" + "q" * 43 + "/")

    assert revoked.status_code == 302
    assert JoinLink.objects.get().revoked_at is not None
    assert gone.status_code == 410
    assert unknown.status_code == 404


def test_a_removed_guest_sees_a_refusal_page():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world, lobby_for_guests=False)
    _link, token = services.join_link_create(actor=world.teacher, meeting_id=meeting.pk)
    guest = page_client()
    guest.post(f"/join/{token}/", {"display_name": "Гость"})
    participant = Participant.objects.get()

    page_client(world.teacher).post(f"/lessons/{meeting.pk}/participants/{participant.pk}/", {"action": "remove"})

    assert guest.get(f"/join/{token}/").status_code == 403
    assert guest.post(f"/join/{token}/", {"display_name": "Гость"}).status_code == 403
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.REMOVED


def test_cancelling_from_the_page():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)

    response = page_client(world.teacher).post(f"/lessons/{meeting.pk}/cancel/")
    refused = page_client(world.student).post(f"/lessons/{meeting.pk}/cancel/")

    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.cancelled_at is not None
    assert refused.status_code == 404


def test_the_host_changes_the_meeting_through_the_form():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)
    client = page_client(world.teacher)
    day = timezone.localdate() + datetime.timedelta(days=5)

    form_page = client.get(f"/lessons/{meeting.pk}/edit/")
    response = client.post(
        f"/lessons/{meeting.pk}/edit/",
        {
            "title": "Собрание перенесено",
            "date": day.isoformat(),
            "time": "19:00",
            "duration_minutes": "45",
            "guardian_groups": [str(world.group.pk)],
            "lobby_for_guests": "on",
        },
    )

    assert form_page.status_code == 200
    assert response.status_code == 302
    meeting.refresh_from_db()
    assert meeting.title == "Собрание перенесено"
    assert schedule.utc_to_local(meeting.starts_at, meeting.time_zone).strftime("%H:%M") == "19:00"


def test_the_attendance_pages_and_csv():
    world = make_lesson_world(students=2)
    meeting = make_lesson_now(world)
    participant = services.meeting_join(user=world.students[0], meeting_id=meeting.pk)
    services.attendance_join(participant_id=participant.pk)
    host = page_client(world.teacher)

    page = host.get(f"/lessons/{meeting.pk}/attendance/").content.decode()
    exported = host.get(f"/lessons/{meeting.pk}/attendance.csv")
    group_page = host.get(f"/lessons/groups/{world.group.pk}/attendance/")
    group_csv = host.get(f"/lessons/groups/{world.group.pk}/attendance.csv")

    assert world.students[0].display_name in page
    assert world.students[1].display_name in page
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    assert world.students[1].display_name in exported.content.decode("utf-8-sig")
    assert group_page.status_code == 200
    assert world.students[1].display_name in group_page.content.decode()
    assert group_csv.status_code == 200
    assert page_client(world.student).get(f"/lessons/{meeting.pk}/attendance/").status_code == 404
    assert page_client(world.student).get(f"/lessons/groups/{world.group.pk}/attendance/").status_code == 404


def test_the_reminder_choice_and_reading_notifications_from_the_calendar():
    world = make_lesson_world(students=1)
    make_meeting(world=world, kind=MeetingKind.PARENT_MEETING, title="Собрание")
    client = page_client(world.parent)

    assert "Собрание" in client.get("/lessons/").content.decode()
    assert client.post("/lessons/reminders/", {"by_sms": "on"}).status_code == 302
    assert client.post("/lessons/notifications/read/").status_code == 302

    assert ReminderPreference.objects.get(user=world.parent).by_sms is True
    assert world.parent.meeting_notifications.filter(read_at__isnull=True).count() == 0
