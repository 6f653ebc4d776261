"""The lessons REST API as a client uses it: scheduling in the
organisation's time zone, the calendar, links and guests, the lobby,
attendance (JSON and CSV), notifications and the reminder choice."""

import csv
import datetime
import io
import zoneinfo

import pytest
from django.utils import timezone

from lessons import schedule, services
from lessons.models import (
    JoinLink,
    Meeting,
    MeetingKind,
    MeetingNotification,
    Participant,
    ParticipantStatus,
)
from lessons.tests.factories import (
    api_client,
    in_minutes,
    make_lesson_now,
    make_lesson_world,
    make_meeting,
    make_parent_meeting_now,
)
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db


def next_tuesday(time_zone: str) -> datetime.date:
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(time_zone)).date()
    return schedule.week_monday(today) + datetime.timedelta(weeks=1, days=1)


# --- Scheduling ---------------------------------------------------------------------------------------------------


def test_a_teacher_schedules_a_weekly_lesson_in_the_schools_time():
    world = make_lesson_world(students=2, time_zone="Asia/Yekaterinburg")
    tuesday = next_tuesday("Asia/Yekaterinburg")

    response = api_client(world.teacher).post(
        "/api/v1/meetings/",
        {
            "organisation": world.school.pk,
            "kind": "lesson",
            "title": "Алгебра",
            "starts_at": f"{tuesday.isoformat()}T09:00",
            "duration_minutes": 40,
            "repeats_weekly": True,
            "repeat_until": (tuesday + datetime.timedelta(weeks=3)).isoformat(),
            "student_group_ids": [world.group.pk],
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["time_zone"] == "Asia/Yekaterinburg"
    assert body["local_starts_at"] == f"{tuesday.isoformat()}T09:00"
    assert body["starts_at"].endswith("+03:00") or body["starts_at"].endswith("Z") or "T" in body["starts_at"]
    assert datetime.datetime.fromisoformat(body["starts_at"]).astimezone(datetime.UTC).hour == 4
    assert body["role"] == "host"
    assert body["audience"] == {
        "student_group_ids": [world.group.pk],
        "guardian_group_ids": [],
        "invite_staff": False,
        "user_ids": [],
    }
    assert len(body["upcoming"]) == 4
    assert body["host"]["is_verified_educator"] is True


def test_a_student_sees_the_lesson_but_not_who_is_invited():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)

    response = api_client(world.student).get(f"/api/v1/meetings/{meeting.pk}/")

    assert response.status_code == 200
    assert response.json()["role"] == "member"
    assert response.json()["audience"] is None


def test_a_meeting_one_may_not_see_is_not_found_like_a_missing_one():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world)
    stranger = api_client(make_user())

    hidden = stranger.get(f"/api/v1/meetings/{meeting.pk}/")
    missing = stranger.get("/api/v1/meetings/999999/")

    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_an_unverified_teacher_is_refused_and_nothing_is_stored():
    world = make_lesson_world(students=1)
    from organisations.models import Role
    from organisations.tests.factories import make_member

    colleague = make_member(organisation=world.school, role=Role.TEACHER)

    response = api_client(colleague).post(
        "/api/v1/meetings/",
        {
            "organisation": world.school.pk,
            "kind": "parent_meeting",
            "title": "Собрание",
            "starts_at": in_minutes(600).isoformat(),
            "duration_minutes": 60,
            "guardian_group_ids": [world.group.pk],
        },
        format="json",
    )

    assert response.status_code == 403
    assert response.json()["code"] == "not_verified"
    assert Meeting.objects.count() == 0


def test_bad_input_names_its_field():
    world = make_lesson_world(students=1)

    response = api_client(world.teacher).post(
        "/api/v1/meetings/",
        {
            "organisation": world.school.pk,
            "kind": "lesson",
            "title": "Урок",
            "starts_at": "завтра",
            "duration_minutes": 40,
            "student_group_ids": [world.group.pk],
        },
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["field"] == "starts_at"
    assert Meeting.objects.count() == 0


def test_the_host_changes_the_time_and_the_invitation():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING)
    new_start = in_minutes(60 * 24 * 4).replace(second=0, microsecond=0)

    response = api_client(world.teacher).patch(
        f"/api/v1/meetings/{meeting.pk}/",
        {"starts_at": new_start.isoformat(), "invite_staff": True},
        format="json",
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert datetime.datetime.fromisoformat(body["starts_at"]) == new_start
    assert body["audience"]["guardian_group_ids"] == [world.group.pk]
    assert body["audience"]["invite_staff"] is True
    assert body["revision"] == 2
    assert (
        api_client(world.parent).patch(f"/api/v1/meetings/{meeting.pk}/", {"title": "x"}, format="json").status_code
        == 403
    )


def test_cancel_one_sitting_then_the_meeting():
    world = make_lesson_world(students=1)
    start = in_minutes(600)
    meeting = make_meeting(
        world=world,
        starts_at=start,
        repeats_weekly=True,
        repeat_until=timezone.localdate(start + datetime.timedelta(weeks=1)),
    )
    first = meeting.occurrences.get(sequence=0)
    client = api_client(world.teacher)

    one = client.post(f"/api/v1/meetings/{meeting.pk}/cancel/", {"occurrence": first.pk}, format="json")
    everything = client.post(f"/api/v1/meetings/{meeting.pk}/cancel/", {}, format="json")

    assert one.status_code == 200
    assert [item["is_cancelled"] for item in one.json()["upcoming"]] == [True, False]
    assert everything.json()["cancelled_at"] is not None
    assert (
        api_client(world.student).post(f"/api/v1/meetings/{meeting.pk}/cancel/", {}, format="json").status_code == 403
    )


def test_the_meeting_list_answers_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    world = make_lesson_world(students=1)
    for index in range(6):
        make_meeting(world=world, title=f"Урок {index}", starts_at=in_minutes(60 * 24 + index))
    client = api_client(world.teacher)
    client.get("/api/v1/meetings/")

    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/meetings/")

    assert response.json()["count"] == 6


# --- Calendar ------------------------------------------------------------------------------------------------------


def test_the_calendar_api_gives_the_week_in_the_users_zone():
    world = make_lesson_world(students=1, time_zone="Asia/Yekaterinburg")
    tuesday = next_tuesday("Asia/Yekaterinburg")
    meeting = make_meeting(world=world, starts_at=datetime.datetime.combine(tuesday, datetime.time(9, 0)))
    week = schedule.iso_week_name(tuesday)

    response = api_client(world.student).get("/api/v1/calendar/", {"week": week})

    assert response.status_code == 200
    body = response.json()
    assert body["week"] == week
    assert body["time_zone"] == "Asia/Yekaterinburg"
    assert [len(day["entries"]) for day in body["days"]] == [0, 1, 0, 0, 0, 0, 0]
    entry = body["days"][1]["entries"][0]
    assert entry["meeting"]["id"] == meeting.pk
    assert entry["local_starts_at"] == f"{tuesday.isoformat()}T09:00"
    assert body["may_schedule_in"] == []
    assert api_client(world.teacher).get("/api/v1/calendar/", {"week": week}).json()["may_schedule_in"] == [
        {"id": world.school.pk, "short_name": world.school.short_name, "time_zone": "Asia/Yekaterinburg"}
    ]
    bad = api_client(world.student).get("/api/v1/calendar/", {"week": "2025-41"})
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_week")


def test_the_calendar_answers_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    world = make_lesson_world(students=1)
    for index in range(5):
        make_meeting(world=world, title=f"Урок {index}", starts_at=in_minutes(60 * 24 * 7 + index * 60))
    week = schedule.iso_week_name(timezone.localdate(in_minutes(60 * 24 * 7)))
    client = api_client(world.teacher)

    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/calendar/", {"week": week})

    assert sum(len(day["entries"]) for day in response.json()["days"]) >= 1


# --- Joining and the lobby -------------------------------------------------------------------------------------------


def test_a_member_joins_through_the_api_and_polls_the_lobby():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    student = api_client(world.student)
    host = api_client(world.teacher)

    joined = student.post(f"/api/v1/meetings/{meeting.pk}/join/")
    lobby = host.get(f"/api/v1/meetings/{meeting.pk}/lobby/")

    assert joined.status_code == 200
    assert joined.json()["participant"]["status"] == "waiting"
    assert joined.json()["must_wait"] is True
    waiting = lobby.json()["participants"]
    assert [item["display_name"] for item in waiting] == [world.student.display_name]
    admitted = host.post(f"/api/v1/meetings/{meeting.pk}/lobby/{waiting[0]['id']}/admit/")
    assert admitted.json()["status"] == "admitted"
    assert student.get(f"/api/v1/meetings/{meeting.pk}/join/").json()["participant"]["status"] == "admitted"
    assert student.get(f"/api/v1/meetings/{meeting.pk}/lobby/").status_code == 403


def test_too_early_is_409_to_join_and_200_to_ask():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, starts_at=in_minutes(120))
    student = api_client(world.student)

    joined = student.post(f"/api/v1/meetings/{meeting.pk}/join/")
    asked = student.get(f"/api/v1/meetings/{meeting.pk}/join/")

    assert (joined.status_code, joined.json()["code"]) == (409, "not_open")
    assert "opens_at" in joined.json()
    assert asked.status_code == 200
    assert (asked.json()["may_join"], asked.json()["code"]) == (False, "not_open")
    assert Participant.objects.count() == 0


def test_a_guest_comes_in_by_a_link_the_host_made():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world, is_recording_enabled=True)
    host = api_client(world.teacher)

    created = host.post(f"/api/v1/meetings/{meeting.pk}/links/", {"label": "Бабушка Ивана"}, format="json")
    token = created.json()["token"]
    guest = api_client()
    seen = guest.get(f"/api/v1/join/{token}/")
    entered = guest.post(f"/api/v1/join/{token}/", {"display_name": "Нина Петровна"}, format="json")

    assert created.status_code == 201
    assert created.json()["url"].endswith(f"/join/{token}/")
    assert created.json()["state"] == "active"
    assert seen.status_code == 200
    assert seen.json()["meeting"]["title"] == "Родительское собрание"
    assert seen.json()["meeting"]["is_recording_enabled"] is True
    assert seen.json()["participant"] is None
    assert entered.status_code == 200
    assert entered.json()["participant"]["status"] == "waiting"
    assert entered.json()["participant"]["is_guest"] is True
    listed = host.get(f"/api/v1/meetings/{meeting.pk}/links/").json()
    assert [(item["label"], item["guest_name"]) for item in listed] == [("Бабушка Ивана", "Нина Петровна")]
    assert "token" not in listed[0]


def test_revoked_links_answer_410_forged_404_and_removed_guests_403():
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world, lobby_for_guests=False)
    host = api_client(world.teacher)
    revoked_token = host.post(f"/api/v1/meetings/{meeting.pk}/links/", {}, format="json").json()["token"]
    revoked_id = JoinLink.objects.get(guest_name="", revoked_at__isnull=True).pk
    removed_token = host.post(f"/api/v1/meetings/{meeting.pk}/links/", {}, format="json").json()["token"]
    guest = api_client()
    participant = guest.post(f"/api/v1/join/{removed_token}/", {"display_name": "Гость"}, format="json").json()

    assert host.delete(f"/api/v1/meetings/{meeting.pk}/links/{revoked_id}/").status_code == 204
    removed = host.post(f"/api/v1/meetings/{meeting.pk}/participants/{participant['participant']['id']}/remove/")
    assert removed.json()["status"] == "removed"

    for method in ("get", "post"):
        gone = getattr(guest, method)(f"/api/v1/join/{revoked_token}/", {"display_name": "Гость"}, format="json")
        assert (gone.status_code, gone.json()["code"]) == (410, "link_revoked")
        again = getattr(guest, method)(f"/api/v1/join/{removed_token}/", {"display_name": "Гость"}, format="json")
        assert (again.status_code, again.json()["code"]) == (403, "removed")
    forged = guest.get("/api/v1/join/" + "x" * 43 + "/")
    assert (forged.status_code, forged.json()["code"]) == (404, "link_not_found")


def test_link_guessing_gets_429_with_retry_after(settings):
    settings.LESSON_LINK_GUESS_RATE = "2/hour"
    world = make_lesson_world(students=1)
    meeting = make_parent_meeting_now(world)
    token = api_client(world.teacher).post(f"/api/v1/meetings/{meeting.pk}/links/", {}, format="json").json()["token"]
    guest = api_client()

    codes = [guest.get(f"/api/v1/join/{'G' * 42}{index}/").status_code for index in range(3)]
    blocked = guest.get(f"/api/v1/join/{token}/")

    assert codes == [404, 404, 429]
    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_no_guest_links_for_a_lesson_with_students():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)

    response = api_client(world.teacher).post(f"/api/v1/meetings/{meeting.pk}/links/", {}, format="json")

    assert (response.status_code, response.json()["code"]) == (403, "guests_not_allowed")
    assert JoinLink.objects.count() == 0


def test_the_host_admits_everyone_and_sees_the_participants():
    world = make_lesson_world(students=3)
    meeting = make_lesson_now(world, lobby_for_everyone=True)
    for student in world.students:
        services.meeting_join(user=student, meeting_id=meeting.pk)
    host = api_client(world.teacher)

    admitted = host.post(f"/api/v1/meetings/{meeting.pk}/lobby/admit-all/")
    participants = host.get(f"/api/v1/meetings/{meeting.pk}/participants/").json()["participants"]
    denied = host.post(f"/api/v1/meetings/{meeting.pk}/lobby/{participants[0]['id']}/deny/")

    assert admitted.json() == {"admitted": 3}
    assert {item["status"] for item in participants} == {"admitted"}
    assert denied.json()["status"] == "denied"


# --- Attendance -------------------------------------------------------------------------------------------------------


def held_lesson(world, *, came: list, minutes: int = 30):
    now = timezone.now()
    start = now - datetime.timedelta(minutes=50)
    meeting = make_meeting(world=world, starts_at=now - datetime.timedelta(minutes=5), now=now)
    Meeting.objects.filter(pk=meeting.pk).update(starts_at=start)
    meeting.occurrences.update(starts_at=start, ends_at=start + datetime.timedelta(minutes=45))
    for person in came:
        participant = services.meeting_join(user=person, meeting_id=meeting.pk, now=start)
        services.attendance_join(participant_id=participant.pk, now=start)
        services.attendance_leave(participant_id=participant.pk, now=start + datetime.timedelta(minutes=minutes))
    return meeting


def test_the_attendance_report_with_who_never_came_as_json_and_csv():
    world = make_lesson_world(students=3)
    meeting = held_lesson(world, came=[world.teacher, world.students[0], world.students[2]])
    host = api_client(world.teacher)

    report = host.get(f"/api/v1/meetings/{meeting.pk}/attendance/")
    exported = host.get(f"/api/v1/meetings/{meeting.pk}/attendance.csv")

    assert report.status_code == 200
    body = report.json()
    assert (body["invited"], body["came"], body["never_came"]) == (4, 3, 1)
    never = [row for row in body["rows"] if row["status"] == "never_came"]
    assert [row["user_id"] for row in never] == [world.students[1].pk]
    assert body["rows"][0]["user_id"] == world.teacher.pk
    assert {row["minutes"] for row in body["rows"] if row["status"] == "attended"} == {30}
    assert exported.status_code == 200
    assert exported["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in exported["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 4
    assert {row[0] for row in rows[1:]} == {person.display_name for person in [world.teacher, *world.students]}
    assert api_client(world.student).get(f"/api/v1/meetings/{meeting.pk}/attendance.csv").status_code == 403
    assert api_client(make_user()).get(f"/api/v1/meetings/{meeting.pk}/attendance/").status_code == 404


def test_a_name_in_the_csv_is_never_a_formula():
    world = make_lesson_world(students=1)
    world.student.first_name = "=HYPERLINK(1)"
    world.student.save()
    meeting = held_lesson(world, came=[world.student])

    exported = api_client(world.teacher).get(f"/api/v1/meetings/{meeting.pk}/attendance.csv")

    assert "'=HYPERLINK(1)" in exported.content.decode("utf-8-sig")


def test_the_class_attendance_over_a_term_names_who_never_came():
    world = make_lesson_world(students=3)
    held_lesson(world, came=[world.students[0]])
    held_lesson(world, came=[world.students[0], world.students[1]])
    make_meeting(world=world, title="Ещё не было")
    today = timezone.localdate()
    client = api_client(world.teacher)

    report = client.get(
        f"/api/v1/study-groups/{world.group.pk}/attendance/",
        {"from": (today - datetime.timedelta(days=30)).isoformat(), "to": today.isoformat()},
    )
    exported = client.get(f"/api/v1/study-groups/{world.group.pk}/attendance.csv")

    assert report.status_code == 200, report.content
    body = report.json()
    assert len(body["lessons"]) == 2
    by_id = {student["id"]: student for student in body["students"]}
    assert (by_id[world.students[0].pk]["attended"], by_id[world.students[0].pk]["missed"]) == (2, 0)
    assert by_id[world.students[1].pk]["marks"] == [False, True]
    assert body["never_came"] == [world.students[2].pk]
    rows = list(csv.reader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert len(rows) == 4
    assert rows[0][-2:] == ["Посещено", "Пропущено"] or rows[0][-2:] == ["Attended", "Missed"]
    assert api_client(world.student).get(f"/api/v1/study-groups/{world.group.pk}/attendance/").status_code == 404
    assert api_client(world.administrator).get(f"/api/v1/study-groups/{world.group.pk}/attendance/").status_code == 200


# --- Notifications and reminders --------------------------------------------------------------------------------------


def test_notifications_are_listed_and_marked_read():
    world = make_lesson_world(students=1)
    meeting = make_meeting(world=world, kind=MeetingKind.PARENT_MEETING, title="Собрание 7Б")
    services.meeting_cancel(actor=world.teacher, meeting_id=meeting.pk)
    parent = api_client(world.parent)

    listed = parent.get("/api/v1/meeting-notifications/", {"unread": "1"}).json()
    marked = parent.post("/api/v1/meeting-notifications/read/", {"ids": [listed["results"][0]["id"]]}, format="json")
    unread = parent.get("/api/v1/meeting-notifications/", {"unread": "1"}).json()

    assert [item["kind"] for item in listed["results"]] == ["cancelled", "invited"]
    assert "Собрание 7Б" in listed["results"][0]["text"]
    assert marked.json() == {"marked": 1}
    assert [item["kind"] for item in unread["results"]] == ["invited"]
    assert api_client(world.teacher).post("/api/v1/meeting-notifications/read/", {}, format="json").json() == {
        "marked": 0
    }
    assert MeetingNotification.objects.filter(user=world.parent, read_at__isnull=True).count() == 1


def test_the_reminder_choice():
    world = make_lesson_world(students=1)
    parent = api_client(world.parent)

    assert parent.get("/api/v1/me/meeting-reminders/").json() == {"by_sms": False}
    assert parent.put("/api/v1/me/meeting-reminders/", {"by_sms": True}, format="json").json() == {"by_sms": True}
    assert parent.get("/api/v1/me/meeting-reminders/").json() == {"by_sms": True}
    assert api_client().get("/api/v1/me/meeting-reminders/").status_code in (401, 403)


def test_participants_are_of_this_meeting_only():
    world = make_lesson_world(students=1)
    meeting = make_lesson_now(world)
    other = make_lesson_now(world, title="Другой урок")
    participant = services.meeting_join(user=world.student, meeting_id=other.pk)

    response = api_client(world.teacher).post(f"/api/v1/meetings/{meeting.pk}/participants/{participant.pk}/remove/")

    assert response.status_code == 404
    participant.refresh_from_db()
    assert participant.status == ParticipantStatus.ADMITTED
