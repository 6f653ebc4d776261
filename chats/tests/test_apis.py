import datetime
import zoneinfo

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from chats.models import Chat, ChatKind, ChatMember, Message, MessageReport, Notification, OfficeHours
from chats.services import moderation
from chats.services.sync import chats_sync
from chats.tests.factories import (
    active_member_ids,
    class_chats,
    make_direct_chat,
    make_group_chat,
    make_school_with_chats,
    send,
)
from organisations.tests.factories import make_parent, make_study_group, make_user

pytestmark = pytest.mark.django_db

NOT_FOUND_BODY = {"detail": "Не найдено.", "code": "not_found"}
MISSING_ID = 10**9


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def person(user: User) -> dict:
    return {
        "id": user.pk,
        "display_name": user.display_name,
        "is_verified_educator": user.is_verified_educator,
        "is_name_flagged": user.is_name_flagged,
    }


# --- The list ----------------------------------------------------------------------


def test_the_chat_list_of_a_parent():
    world = make_school_with_chats(students=1)
    message = send(world.teacher, world.parents_chat, "Собрание в четверг")

    response = client_for(world.parent).get("/api/v1/chats/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    sent_at = body["results"][0]["last_message"].pop("created_at")
    assert datetime.datetime.fromisoformat(sent_at) == message.created_at
    assert body["results"] == [
        {
            "id": world.parents_chat.pk,
            "kind": "class_parents",
            "title": "7Б — родители",
            "is_verified": False,
            "is_announcement_only": False,
            "organisation_id": world.school.pk,
            "role": "member",
            "last_seq": 1,
            "last_read_seq": 0,
            "unread_count": 1,
            "muted_until": None,
            "last_message": {
                "seq": 1,
                "body_preview": "Собрание в четверг",
                "author_name": world.teacher.display_name,
                "author": person(world.teacher),
                "is_deleted": False,
            },
            "other_user": None,
        }
    ]


@pytest.mark.parametrize("limit", [1, 50])
def test_the_chat_list_query_count_does_not_depend_on_page_size(django_assert_num_queries, limit):
    world = make_school_with_chats(students=1)
    for index in range(6):
        colleague = make_user()
        send(colleague, make_group_chat(owner=colleague, members=[world.teacher], title=f"Группа {index}"))
        send(colleague, make_direct_chat(world.teacher, colleague))
    client = client_for(world.teacher)

    # Count, page, last messages, the other people of direct chats.
    with django_assert_num_queries(4):
        response = client.get("/api/v1/chats/", {"limit": limit})

    assert response.json()["count"] == 15
    assert len(response.json()["results"]) == min(limit, 15)
    assert response.json()["results"][0]["kind"] == "direct"


def test_the_chat_list_needs_a_signed_in_user():
    assert client_for(None).get("/api/v1/chats/").status_code == 401


# --- Direct and group chats -----------------------------------------------------------


def test_opening_a_direct_chat_creates_it_once():
    world = make_school_with_chats(students=1)
    client = client_for(world.parent)

    first = client.post("/api/v1/chats/direct/", {"user_id": world.teacher.pk}, format="json")
    second = client.post("/api/v1/chats/direct/", {"user_id": world.teacher.pk}, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["kind"] == "direct"
    assert first.json()["title"] == world.teacher.display_name
    assert first.json()["other_user"] == person(world.teacher)


def test_a_stranger_cannot_open_a_direct_chat_with_a_child():
    world = make_school_with_chats(students=1)
    stranger = make_user()
    chats_before = Chat.objects.count()

    response = client_for(stranger).post("/api/v1/chats/direct/", {"user_id": world.student.pk}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "contact_not_allowed"
    assert Chat.objects.count() == chats_before


@pytest.mark.parametrize("payload", [{}, {"user_id": "abc"}, ["user_id"]])
def test_opening_a_direct_chat_needs_a_persons_id(payload):
    response = client_for(make_user()).post("/api/v1/chats/direct/", payload, format="json")

    assert response.status_code == 400


def test_creating_a_group_chat():
    world = make_school_with_chats(students=2)

    response = client_for(world.teacher).post(
        "/api/v1/chats/", {"title": "Олимпиада", "member_ids": [s.pk for s in world.students]}, format="json"
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["title"], body["members_count"]) == ("group", "Олимпиада", 3)
    assert body["me"] == {
        "role": "owner",
        "last_read_seq": 0,
        "muted_until": None,
        "may_moderate": True,
        "may_see_receipts": True,
    }


def test_a_group_with_a_child_who_is_not_the_creators_contact_is_refused():
    world = make_school_with_chats(students=1)
    stranger = make_user()

    response = client_for(stranger).post(
        "/api/v1/chats/", {"title": "Чат", "member_ids": [world.student.pk]}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "contact_not_allowed"
    assert not Chat.objects.filter(kind=ChatKind.GROUP).exists()


# --- One chat -------------------------------------------------------------------------


def test_a_chat_in_detail():
    world = make_school_with_chats(students=1)
    moderation.chat_opening_hours_set(
        actor=world.teacher, chat_id=world.students_chat.pk, opens_at=datetime.time(8), closes_at=datetime.time(21)
    )

    response = client_for(world.student).get(f"/api/v1/chats/{world.students_chat.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in body if key not in ("members", "pins")} == {
        "id": world.students_chat.pk,
        "kind": "class_students",
        "title": "7Б — ученики",
        "description": "",
        "organisation": {"id": world.school.pk, "short_name": world.school.short_name, "is_verified": False},
        "study_group_id": world.group.pk,
        "is_verified": False,
        "is_announcement_only": False,
        "opens_at": "08:00",
        "closes_at": "21:00",
        "last_seq": 0,
        "me": {
            "role": "member",
            "last_read_seq": 0,
            "muted_until": None,
            "may_moderate": False,
            "may_see_receipts": False,
        },
        "members_count": 2,
        "other_user": None,
    }
    assert body["members"] == [
        {
            "user": person(world.teacher),
            "role": "moderator",
            "organisation_roles": ["teacher"],
            "muted_until": None,
            "is_synced": True,
        },
        {
            "user": person(world.student),
            "role": "member",
            "organisation_roles": ["student"],
            "muted_until": None,
            "is_synced": True,
        },
    ]
    assert body["pins"] == []


def test_another_classs_chat_is_not_found_exactly_like_a_missing_one():
    world = make_school_with_chats(students=1)
    other_class = make_study_group(organisation=world.school, name="5А", students=1)
    make_parent(student=other_class.students.get(), organisation=world.school)
    chats_sync(organisation_ids=[world.school.pk])
    other_chats = class_chats(other_class)
    client = client_for(world.parent)

    for chat_id in (other_chats[ChatKind.CLASS_PARENTS].pk, other_chats[ChatKind.CLASS_STUDENTS].pk, MISSING_ID):
        for method, path, payload in (
            ("get", f"/api/v1/chats/{chat_id}/", None),
            ("get", f"/api/v1/chats/{chat_id}/messages/", None),
            ("post", f"/api/v1/chats/{chat_id}/messages/", {"body": "Привет", "client_id": "x"}),
            ("post", f"/api/v1/chats/{chat_id}/read/", {"seq": 1}),
            ("get", f"/api/v1/chats/{chat_id}/receipts/?seqs=1", None),
            ("patch", f"/api/v1/chats/{chat_id}/settings/", {"is_announcement_only": True}),
            ("post", f"/api/v1/chats/{chat_id}/members/", {"user_id": world.teacher.pk}),
        ):
            response = getattr(client, method)(path, payload, format="json")
            assert (response.status_code, response.json()) == (404, NOT_FOUND_BODY), (method, path)
    assert Message.objects.count() == 0


# --- Messages -------------------------------------------------------------------------


def test_history_pages_with_last_seq_and_has_more():
    world = make_school_with_chats(students=1)
    for index in range(1, 6):
        send(world.teacher, world.parents_chat, f"Сообщение {index}")
    client = client_for(world.parent)

    newest = client.get(f"/api/v1/chats/{world.parents_chat.pk}/messages/", {"limit": 2}).json()
    older = client.get(f"/api/v1/chats/{world.parents_chat.pk}/messages/", {"limit": 2, "before": 4}).json()
    after = client.get(f"/api/v1/chats/{world.parents_chat.pk}/messages/", {"after": 3}).json()

    assert ([m["seq"] for m in newest["messages"]], newest["last_seq"], newest["has_more"]) == ([4, 5], 5, True)
    assert ([m["seq"] for m in older["messages"]], older["has_more"]) == ([2, 3], True)
    assert ([m["seq"] for m in after["messages"]], after["has_more"]) == ([4, 5], False)
    first = newest["messages"][0]
    assert first["body"] == "Сообщение 4"
    assert first["author"] == person(world.teacher)
    assert (first["is_deleted"], first["reply_to"], first["attachments"], first["reactions"]) == (False, None, [], {})


@pytest.mark.parametrize("query", [{"before": 3, "after": 1}, {"limit": 101}, {"limit": 0}, {"before": "x"}])
def test_history_refuses_bad_paging(query):
    world = make_school_with_chats(students=1)

    response = client_for(world.parent).get(f"/api/v1/chats/{world.parents_chat.pk}/messages/", query)

    assert response.status_code == 400


def test_sending_answers_201_then_200_for_the_same_client_id_and_400_for_another_text():
    world = make_school_with_chats(students=1)
    client = client_for(world.parent)
    url = f"/api/v1/chats/{world.parents_chat.pk}/messages/"

    first = client.post(url, {"body": "Спасибо!", "client_id": "m-1"}, format="json")
    repeat = client.post(url, {"body": "Спасибо!", "client_id": "m-1"}, format="json")
    conflict = client.post(url, {"body": "Спасибо большое!", "client_id": "m-1"}, format="json")
    second = client.post(url, {"body": "Ответ", "client_id": "m-2", "reply_to": 1}, format="json")

    assert (first.status_code, repeat.status_code, conflict.status_code, second.status_code) == (201, 200, 400, 201)
    assert first.json() == repeat.json()
    assert (first.json()["seq"], first.json()["client_id"], first.json()["body"]) == (1, "m-1", "Спасибо!")
    assert conflict.json()["code"] == "client_id_conflict"
    assert (second.json()["seq"], second.json()["reply_to"]) == (2, 1)
    assert list(Message.objects.order_by("seq").values_list("body", flat=True)) == ["Спасибо!", "Ответ"]


def test_a_message_to_a_teacher_after_hours_is_accepted_for_later():
    world = make_school_with_chats(students=1)
    local = timezone.now().astimezone(zoneinfo.ZoneInfo("Europe/Moscow"))
    moderation.office_hours_set(
        user=world.teacher,
        starts_at=(local + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0),
        ends_at=(local + datetime.timedelta(hours=3)).time().replace(second=0, microsecond=0),
        weekdays=[1, 2, 3, 4, 5, 6, 7],
    )
    chat = make_direct_chat(world.parent, world.teacher)

    response = client_for(world.parent).post(
        f"/api/v1/chats/{chat.pk}/messages/", {"body": "Вопрос по домашнему заданию", "client_id": "q"}, format="json"
    )

    assert response.status_code == 202
    body = response.json()
    assert (body["status"], body["client_id"]) == ("scheduled", "q")
    assert datetime.datetime.fromisoformat(body["deliver_at"]) > timezone.now()
    assert Message.objects.count() == 0


def test_posting_rules_answer_403_with_their_code():
    world = make_school_with_chats(students=1)
    moderation.chat_announcement_mode_set(actor=world.teacher, chat_id=world.parents_chat.pk, is_on=True)

    response = client_for(world.parent).post(
        f"/api/v1/chats/{world.parents_chat.pk}/messages/", {"body": "Можно?"}, format="json"
    )

    assert response.status_code == 403
    assert response.json()["code"] == "announcement_only"
    assert Message.objects.count() == 0


def test_too_many_messages_answer_429_with_retry_after(settings):
    settings.CHAT_SEND_RATE = "2/minute"
    world = make_school_with_chats(students=1)
    client = client_for(world.parent)
    url = f"/api/v1/chats/{world.parents_chat.pk}/messages/"

    statuses = [client.post(url, {"body": f"Сообщение {i}"}, format="json").status_code for i in range(3)]

    assert statuses == [201, 201, 429]
    response = client.post(url, {"body": "Ещё"}, format="json")
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert Message.objects.count() == 2


def test_deleting_a_message_over_rest():
    world = make_school_with_chats(students=1)
    message = send(world.parent, world.parents_chat, "Ошибка")

    refused = client_for(world.student).delete(f"/api/v1/chats/{world.parents_chat.pk}/messages/{message.seq}/")
    response = client_for(world.teacher).delete(f"/api/v1/chats/{world.parents_chat.pk}/messages/{message.seq}/")

    assert (refused.status_code, refused.json()) == (404, NOT_FOUND_BODY)
    assert response.status_code == 200
    assert (response.json()["seq"], response.json()["is_deleted"], response.json()["body"]) == (1, True, "")


def test_reporting_a_message_over_rest():
    world = make_school_with_chats(students=2)
    message = send(world.parents[0], world.parents_chat, "Грубость")
    client = client_for(world.parents[1])
    url = f"/api/v1/chats/{world.parents_chat.pk}/messages/{message.seq}/report/"

    first = client.post(url, {"reason": "Оскорбление"}, format="json")
    again = client.post(url, {}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["seq"] == 1
    assert first.json() == again.json()
    assert MessageReport.objects.count() == 1
    assert Notification.objects.filter(user=world.teacher, kind=Notification.Kind.REPORT).count() == 1


# --- Read position and receipts -----------------------------------------------------------


def test_marking_read_and_the_receipts_of_the_staff():
    world = make_school_with_chats(students=2)
    for index in range(3):
        send(world.teacher, world.parents_chat, f"Объявление {index}")

    read = client_for(world.parents[0]).post(f"/api/v1/chats/{world.parents_chat.pk}/read/", {"seq": 2}, format="json")
    receipts = client_for(world.teacher).get(f"/api/v1/chats/{world.parents_chat.pk}/receipts/", {"seqs": "1,2,3"})
    refused = client_for(world.parents[0]).get(f"/api/v1/chats/{world.parents_chat.pk}/receipts/", {"seqs": "1"})
    bad = client_for(world.teacher).get(f"/api/v1/chats/{world.parents_chat.pk}/receipts/", {"seqs": "1,x"})

    assert (read.status_code, read.json()) == (200, {"last_read_seq": 2, "unread_count": 1})
    assert receipts.status_code == 200
    assert receipts.json() == [
        {"seq": 1, "seen_by": 1, "of_members": 2},
        {"seq": 2, "seen_by": 1, "of_members": 2},
        {"seq": 3, "seen_by": 0, "of_members": 2},
    ]
    assert (refused.status_code, refused.json()["code"]) == (403, "staff_only")
    assert bad.status_code == 400


# --- Members and settings ------------------------------------------------------------------


def test_members_added_muted_removed_and_leaving_over_rest():
    world = make_school_with_chats(students=3)
    owner = client_for(world.teacher)
    created = owner.post(
        "/api/v1/chats/", {"title": "Кружок", "member_ids": [world.students[0].pk]}, format="json"
    ).json()
    chat_id = created["id"]

    added = owner.post(f"/api/v1/chats/{chat_id}/members/", {"user_id": world.students[1].pk}, format="json")
    again = owner.post(f"/api/v1/chats/{chat_id}/members/", {"user_id": world.students[1].pk}, format="json")
    muted = owner.post(f"/api/v1/chats/{chat_id}/members/{world.students[1].pk}/mute/", {"minutes": 15}, format="json")
    removed = owner.delete(f"/api/v1/chats/{chat_id}/members/{world.students[1].pk}/")
    left = client_for(world.students[0]).delete(f"/api/v1/chats/{chat_id}/members/{world.students[0].pk}/")
    not_moderator = client_for(world.students[2]).post(
        f"/api/v1/chats/{chat_id}/members/", {"user_id": world.students[2].pk}, format="json"
    )

    assert (added.status_code, again.status_code) == (201, 200)
    assert added.json() == {"user": world.students[1].pk, "role": "member", "muted_until": None}
    assert muted.status_code == 200
    assert muted.json()["muted_until"] is not None
    assert (removed.status_code, left.status_code) == (204, 204)
    assert not_moderator.status_code == 404
    assert active_member_ids(Chat.objects.get(pk=chat_id)) == {world.teacher.pk}


def test_settings_over_rest_by_a_moderator_only():
    world = make_school_with_chats(students=1)
    url = f"/api/v1/chats/{world.students_chat.pk}/settings/"

    changed = client_for(world.teacher).patch(
        url, {"is_announcement_only": True, "opens_at": "08:00", "closes_at": "20:30"}, format="json"
    )
    refused = client_for(world.student).patch(url, {"is_announcement_only": False}, format="json")
    renamed = client_for(world.teacher).patch(url, {"title": "Лучший класс"}, format="json")
    cleared = client_for(world.teacher).patch(url, {"opens_at": None, "closes_at": None}, format="json")

    assert changed.status_code == 200
    body = changed.json()
    assert (body["is_announcement_only"], body["opens_at"], body["closes_at"]) == (True, "08:00", "20:30")
    assert (refused.status_code, refused.json()["code"]) == (403, "not_moderator")
    assert (renamed.status_code, renamed.json()["code"]) == (403, "chat_managed_by_directory")
    assert (cleared.json()["opens_at"], cleared.json()["closes_at"]) == (None, None)


def test_a_class_chat_member_cannot_be_added_by_hand_over_rest():
    world = make_school_with_chats(students=1)
    outsider = make_user()

    response = client_for(world.teacher).post(
        f"/api/v1/chats/{world.students_chat.pk}/members/", {"user_id": outsider.pk}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (403, "chat_managed_by_directory")
    assert not ChatMember.objects.filter(user=outsider).exists()


# --- Office hours --------------------------------------------------------------------------


def test_office_hours_over_rest():
    world = make_school_with_chats(students=1)
    client = client_for(world.teacher)

    empty = client.get("/api/v1/me/office-hours/")
    put = client.put(
        "/api/v1/me/office-hours/",
        {"starts_at": "09:00", "ends_at": "17:00", "weekdays": [1, 2, 3, 4, 5], "time_zone": "Asia/Yekaterinburg"},
        format="json",
    )
    got = client.get("/api/v1/me/office-hours/")
    refused = client_for(world.parent).put(
        "/api/v1/me/office-hours/", {"starts_at": "09:00", "ends_at": "17:00", "weekdays": [1]}, format="json"
    )
    cleared = client.delete("/api/v1/me/office-hours/")

    assert (empty.status_code, empty.json()) == (200, {"office_hours": None})
    expected = {
        "office_hours": {
            "starts_at": "09:00",
            "ends_at": "17:00",
            "weekdays": [1, 2, 3, 4, 5],
            "time_zone": "Asia/Yekaterinburg",
        }
    }
    assert (put.status_code, put.json()) == (200, expected)
    assert got.json() == expected
    assert (refused.status_code, refused.json()["code"]) == (403, "not_an_educator")
    assert cleared.status_code == 204
    assert OfficeHours.objects.count() == 0
