"""REST of edits, history, reactions, pins, polls, attachments and search
(chats.apis_content): shapes, refusals with their codes, 404 for chats one
is not in exactly as for chats that do not exist, and query counts that do
not depend on the page size."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from chats.models import Message, MessageRevision, Pin, Poll, PollOption, PollVote, Reaction
from chats.services import content
from chats.services.messages import message_send
from chats.tests.content_helpers import events_recorded, image_bytes, make_chat
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return events_recorded(monkeypatch)


MISSING_ID = 10**9


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def people():
    teacher, student, other = make_user(), make_user(), make_user()
    chat = make_chat(moderators=(teacher,), members=(student, other))
    return chat, teacher, student, other


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def send(user, chat, body="Контрольная работа в пятницу"):
    return message_send(user=user, chat_id=chat.pk, body=body)[0]


def assert_hidden_like_missing(user, method, path_of_chat, body=None, **extra):
    """The answer for a chat the user is not in equals the one for no chat."""
    client = client_for(user)
    hidden = getattr(client, method)(path_of_chat("real"), body, format="json", **extra)
    missing = getattr(client, method)(path_of_chat("missing"), body, format="json", **extra)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    return hidden


# --- Edit and history ---------------------------------------------------------------------


def test_edit_answers_the_edited_message(people, published, django_capture_on_commit_callbacks):
    chat, _teacher, student, _other = people
    message = send(student, chat, "Было")

    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(student).patch(
            f"/api/v1/chats/{chat.pk}/messages/{message.seq}/", {"body": "Стало"}, format="json"
        )

    assert response.status_code == 200
    body = response.json()
    assert (body["seq"], body["body"], body["is_deleted"], body["attachments"]) == (1, "Стало", False, [])
    assert body["edited_at"] is not None
    assert published.types() == ["message.updated"]


def test_edit_refusals(people):
    chat, _teacher, student, other = people
    message = send(student, chat, "Было")
    path = f"/api/v1/chats/{chat.pk}/messages/{message.seq}/"

    someone_else = client_for(other).patch(path, {"body": "Чужое"}, format="json")
    too_long = client_for(student).patch(path, {"body": "я" * 4001}, format="json")
    anonymous = client_for(None).patch(path, {"body": "Аноним"}, format="json")
    hidden = assert_hidden_like_missing(
        make_user(),
        "patch",
        lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/messages/{message.seq}/",
        {"body": "Чужак"},
    )

    assert (someone_else.status_code, someone_else.json()["code"]) == (403, "not_author")
    assert (too_long.status_code, too_long.json()["code"], too_long.json()["field"]) == (
        400,
        "message_too_long",
        "body",
    )
    assert anonymous.status_code == 401
    assert hidden.json()["code"] == "not_found"
    message.refresh_from_db()
    assert (message.body, message.edited_at, MessageRevision.objects.count()) == ("Было", None, 0)


def test_history(people):
    chat, teacher, student, _other = people
    message = send(student, chat, "Первый")
    content.message_edit(user=student, chat_id=chat.pk, seq=message.seq, body="Второй")

    response = client_for(teacher).get(f"/api/v1/chats/{chat.pk}/messages/{message.seq}/history/")

    assert response.status_code == 200
    assert response.json()["message"]["body"] == "Второй"
    assert [revision["body"] for revision in response.json()["revisions"]] == ["Первый"]
    assert client_for(teacher).get(f"/api/v1/chats/{chat.pk}/messages/99/history/").status_code == 404
    assert_hidden_like_missing(
        make_user(),
        "get",
        lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/messages/1/history/",
    )


# --- Reactions ------------------------------------------------------------------------------


def test_reaction_toggle(people):
    chat, teacher, student, _other = people
    message = send(teacher, chat)
    path = f"/api/v1/chats/{chat.pk}/messages/{message.seq}/reactions/"

    added = client_for(student).post(path, {"emoji": "👍"}, format="json")
    removed = client_for(student).post(path, {"emoji": "👍"}, format="json")
    refused = client_for(student).post(path, {"emoji": "💩"}, format="json")

    assert (added.status_code, added.json()) == (200, {"added": True, "reactions": {"👍": 1}})
    assert (removed.status_code, removed.json()) == (200, {"added": False, "reactions": {}})
    assert (refused.status_code, refused.json()["code"]) == (400, "reaction_not_allowed")
    assert_hidden_like_missing(
        make_user(),
        "post",
        lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/messages/1/reactions/",
        {"emoji": "👍"},
    )
    assert Reaction.objects.count() == 0


# --- Pins ---------------------------------------------------------------------------------


def test_pins_create_list_delete(people):
    chat, teacher, student, _other = people
    message = send(student, chat, "Важное")
    path = f"/api/v1/chats/{chat.pk}/pins/"

    created = client_for(teacher).post(path, {"seq": message.seq}, format="json")
    again = client_for(teacher).post(path, {"seq": message.seq}, format="json")
    listed = client_for(student).get(path)

    assert created.status_code == 201
    assert again.status_code == 200
    assert created.json()["seq"] == message.seq
    assert created.json()["pinned_by"]["id"] == teacher.pk
    assert created.json()["message"]["body"] == "Важное"
    assert listed.status_code == 200
    assert listed.json()["count"] == 1
    assert listed.json()["results"] == [created.json()]

    deleted = client_for(teacher).delete(f"{path}{message.seq}/")
    assert deleted.status_code == 204
    assert Pin.objects.count() == 0
    assert client_for(teacher).delete(f"{path}{message.seq}/").status_code == 404


def test_pin_refusals(people):
    chat, teacher, student, _other = people
    message = send(student, chat)
    path = f"/api/v1/chats/{chat.pk}/pins/"

    by_member = client_for(student).post(path, {"seq": message.seq}, format="json")
    not_a_number = client_for(teacher).post(path, {"seq": "первое"}, format="json")
    no_message = client_for(teacher).post(path, {"seq": 99}, format="json")
    assert_hidden_like_missing(
        make_user(),
        "post",
        lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/pins/",
        {"seq": message.seq},
    )
    assert_hidden_like_missing(
        make_user(), "get", lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/pins/"
    )

    assert (by_member.status_code, by_member.json()["code"]) == (403, "not_moderator")
    assert (not_a_number.status_code, not_a_number.json()["code"]) == (400, "invalid")
    assert no_message.status_code == 404
    assert Pin.objects.count() == 0


@pytest.mark.parametrize("limit", [1, 10])
def test_pins_query_count_does_not_depend_on_page_size(people, django_assert_num_queries, limit):
    chat, teacher, student, _other = people
    for number in range(10):
        message = send(student, chat, f"Сообщение {number}")
        content.pin_add(user=teacher, chat_id=chat.pk, seq=message.seq)
    client = client_for(student)

    # membership, count, page, attachments of the page
    with django_assert_num_queries(4):
        response = client.get(f"/api/v1/chats/{chat.pk}/pins/", {"limit": limit})

    assert len(response.json()["results"]) == limit


# --- Polls ----------------------------------------------------------------------------------


def test_poll_lifecycle(people):
    chat, teacher, student, _other = people
    path = f"/api/v1/chats/{chat.pk}/polls/"
    request = {"question": "Когда собрание?", "options": ["Пн", "Вт"], "client_id": "poll-1"}

    created = client_for(teacher).post(path, request, format="json")
    again = client_for(teacher).post(path, request, format="json")

    assert (created.status_code, again.status_code) == (201, 200)
    poll = created.json()
    assert again.json()["id"] == poll["id"]
    assert (poll["chat"], poll["seq"], poll["author"], poll["question"], poll["is_closed"]) == (
        chat.pk,
        1,
        teacher.pk,
        "Когда собрание?",
        False,
    )
    monday, tuesday = (option["id"] for option in poll["options"])

    voted = client_for(student).post(f"{path}{poll['id']}/votes/", {"option_ids": [tuesday]}, format="json")
    assert voted.status_code == 200
    assert [option["votes"] for option in voted.json()["options"]] == [0, 1]
    assert voted.json()["my_votes"] == [tuesday]
    assert "voters" not in voted.json()["options"][1]

    seen_by_teacher = client_for(teacher).get(f"{path}{poll['id']}/")
    assert [voter["id"] for voter in seen_by_teacher.json()["options"][1]["voters"]] == [student.pk]

    closed_by_student = client_for(student).post(f"{path}{poll['id']}/close/")
    closed = client_for(teacher).post(f"{path}{poll['id']}/close/")
    late = client_for(student).post(f"{path}{poll['id']}/votes/", {"option_ids": [monday]}, format="json")

    assert (closed_by_student.status_code, closed_by_student.json()["code"]) == (403, "not_author")
    assert (closed.status_code, closed.json()["is_closed"]) == (200, True)
    assert (late.status_code, late.json()["code"]) == (400, "poll_closed")
    assert list(PollVote.objects.values_list("option_id", flat=True)) == [tuesday]


def test_poll_refusals(people):
    chat, teacher, student, _other = people
    path = f"/api/v1/chats/{chat.pk}/polls/"

    by_student = client_for(student).post(path, {"question": "?", "options": ["А", "Б"]}, format="json")
    one_option = client_for(teacher).post(path, {"question": "?", "options": ["А"]}, format="json")
    assert_hidden_like_missing(
        make_user(),
        "post",
        lambda which: f"/api/v1/chats/{chat.pk if which == 'real' else MISSING_ID}/polls/",
        {"question": "?", "options": ["А", "Б"]},
    )

    assert (by_student.status_code, by_student.json()["code"]) == (403, "poll_staff_only")
    assert (one_option.status_code, one_option.json()["code"], one_option.json()["field"]) == (
        400,
        "poll_options_invalid",
        "options",
    )
    assert (Message.objects.count(), Poll.objects.count(), PollOption.objects.count()) == (0, 0, 0)


def test_a_poll_is_not_reachable_through_another_chat(people):
    chat, teacher, student, _other = people
    poll, _created = content.poll_create(user=teacher, chat_id=chat.pk, question="?", options=["А", "Б"])
    mine = make_chat(members=(student,))

    response = client_for(student).get(f"/api/v1/chats/{mine.pk}/polls/{poll.pk}/")

    assert response.status_code == 404
    assert_hidden_like_missing(
        make_user(), "get", lambda which: f"/api/v1/chats/{chat.pk}/polls/{poll.pk if which == 'real' else MISSING_ID}/"
    )


def test_a_poll_from_a_plain_form(people):
    chat, teacher, _student, _other = people

    response = client_for(teacher).post(
        f"/api/v1/chats/{chat.pk}/polls/",
        {"question": "Что принести?", "options": ["Мяч", "Сок"], "allows_multiple": "true"},
        format="multipart",
    )

    assert response.status_code == 201
    assert response.json()["allows_multiple"] is True
    assert [option["text"] for option in response.json()["options"]] == ["Мяч", "Сок"]


# --- Attachments -------------------------------------------------------------------------------


def test_upload_an_image(people):
    chat, _teacher, student, _other = people
    upload = SimpleUploadedFile("доска.jpg", image_bytes(exif=True), content_type="image/jpeg")

    response = client_for(student).post(f"/api/v1/chats/{chat.pk}/attachments/", {"file": upload}, format="multipart")

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["content_type"], body["width"], body["height"]) == ("доска.jpg", "image/jpeg", 600, 800)
    assert body["url"] == f"/chats/files/{body['id']}/"
    assert body["thumbnail_url"] == f"/chats/files/{body['id']}/thumbnail/"


@pytest.mark.parametrize(
    ("data", "name", "status", "code"),
    [
        (
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "a.svg",
            415,
            "file_type_not_allowed",
        ),
        (b"<!doctype html><script>alert(1)</script>", "a.html", 415, "file_type_not_allowed"),
        (b"MZ\x90\x00\x03" + bytes(500), "photo.jpg", 415, "file_type_not_allowed"),
        (b"a" * 2000, "big.txt", 413, "file_too_large"),
    ],
)
def test_upload_refusals_store_nothing(people, settings, media, data, name, status, code):
    chat, _teacher, student, _other = people
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000
    upload = SimpleUploadedFile(name, data, content_type="image/jpeg")

    response = client_for(student).post(f"/api/v1/chats/{chat.pk}/attachments/", {"file": upload}, format="multipart")

    assert (response.status_code, response.json()["code"]) == (status, code)
    assert list(media.iterdir()) == []


def test_upload_needs_a_file_and_a_membership(people, media):
    chat, _teacher, student, _other = people

    no_file = client_for(student).post(f"/api/v1/chats/{chat.pk}/attachments/", {}, format="multipart")
    as_json = client_for(student).post(f"/api/v1/chats/{chat.pk}/attachments/", {"file": "x"}, format="json")
    stranger = make_user()
    hidden = client_for(stranger).post(
        f"/api/v1/chats/{chat.pk}/attachments/",
        {"file": SimpleUploadedFile("a.txt", b"text")},
        format="multipart",
    )
    missing = client_for(stranger).post(
        f"/api/v1/chats/{MISSING_ID}/attachments/",
        {"file": SimpleUploadedFile("a.txt", b"text")},
        format="multipart",
    )

    as_json_by_stranger = client_for(make_user()).post(
        f"/api/v1/chats/{chat.pk}/attachments/", {"file": "x"}, format="json"
    )

    assert (no_file.status_code, no_file.json()["code"]) == (400, "file_required")
    assert as_json_by_stranger.status_code == 404
    assert as_json.status_code == 415
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert list(media.iterdir()) == []


# --- Search -----------------------------------------------------------------------------------


def test_search_answers_messages_of_ones_chats_only(people):
    chat, teacher, student, _other = people
    message = send(teacher, chat, "Контрольная работа в пятницу")
    outsider = make_user()
    elsewhere = make_chat(moderators=(outsider,), title="8А")
    send(outsider, elsewhere, "Контрольная 8А")

    response = client_for(student).get("/api/v1/search/messages/", {"q": "Контрольная"})

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["message"]["id"] == message.pk
    assert body["results"][0]["message"]["body"] == "Контрольная работа в пятницу"
    assert (body["results"][0]["chat_title"], body["results"][0]["chat_kind"]) == ("7Б — ученики", "group")


def test_search_refusals(people):
    chat, _teacher, student, _other = people

    no_query = client_for(student).get("/api/v1/search/messages/")
    bad_chat = client_for(student).get("/api/v1/search/messages/", {"q": "тест", "chat": "семь"})
    anonymous = client_for(None).get("/api/v1/search/messages/", {"q": "тест"})
    hidden = client_for(make_user()).get("/api/v1/search/messages/", {"q": "тест", "chat": chat.pk})
    missing = client_for(make_user()).get("/api/v1/search/messages/", {"q": "тест", "chat": MISSING_ID})

    assert (no_query.status_code, no_query.json()["code"], no_query.json()["field"]) == (
        400,
        "search_query_invalid",
        "q",
    )
    assert (bad_chat.status_code, bad_chat.json()["field"]) == (400, "chat")
    assert anonymous.status_code == 401
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


@pytest.mark.parametrize("limit", [1, 10])
def test_search_query_count_does_not_depend_on_page_size(people, django_assert_num_queries, limit):
    chat, teacher, student, _other = people
    for number in range(10):
        send(teacher, chat, f"Домашнее задание № {number}")
    client = client_for(student)

    # count, page, attachments of the page
    with django_assert_num_queries(3):
        response = client.get("/api/v1/search/messages/", {"q": "домашнее задание", "limit": limit})

    assert response.json()["count"] == 10
    assert len(response.json()["results"]) == limit


# --- Schema -----------------------------------------------------------------------------------------


def test_every_content_operation_is_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {
        (path, method, operation["operationId"])
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in {"get", "post", "patch", "delete"}
    }

    assert {
        ("/api/v1/chats/{chat_id}/messages/{seq}/history/", "get", "chat_message_history"),
        ("/api/v1/chats/{chat_id}/messages/{seq}/reactions/", "post", "chat_message_reaction_toggle"),
        ("/api/v1/chats/{chat_id}/pins/", "get", "chat_pins_list"),
        ("/api/v1/chats/{chat_id}/pins/", "post", "chat_pin_create"),
        ("/api/v1/chats/{chat_id}/pins/{seq}/", "delete", "chat_pin_delete"),
        ("/api/v1/chats/{chat_id}/polls/", "post", "chat_poll_create"),
        ("/api/v1/chats/{chat_id}/polls/{poll_id}/", "get", "chat_poll_get"),
        ("/api/v1/chats/{chat_id}/polls/{poll_id}/votes/", "post", "chat_poll_vote"),
        ("/api/v1/chats/{chat_id}/polls/{poll_id}/close/", "post", "chat_poll_close"),
        ("/api/v1/chats/{chat_id}/attachments/", "post", "chat_attachment_upload"),
        ("/api/v1/search/messages/", "get", "messages_search"),
    } <= operations
    assert any(
        path == "/api/v1/chats/{chat_id}/messages/{seq}/" and method == "patch" for path, method, _id in operations
    )


# --- Rate limits ----------------------------------------------------------------------------------


def test_reactions_votes_and_pins_share_a_rate_limit(people, settings):
    chat, teacher, _student, _other = people
    settings.CHAT_ACTION_RATE = "2/minute"
    message = send(teacher, chat)
    path = f"/api/v1/chats/{chat.pk}/messages/{message.seq}/reactions/"
    client = client_for(teacher)
    client.post(path, {"emoji": "👍"}, format="json")
    client.post(f"/api/v1/chats/{chat.pk}/pins/", {"seq": message.seq}, format="json")

    refused = client.post(path, {"emoji": "🔥"}, format="json")

    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
    assert int(refused["Retry-After"]) >= 1
    assert list(Reaction.objects.values_list("emoji", flat=True)) == ["👍"]


def test_search_has_a_rate_limit(people, settings):
    _chat, _teacher, student, _other = people
    settings.CHAT_SEARCH_RATE = "1/minute"
    client = client_for(student)
    client.get("/api/v1/search/messages/", {"q": "тест"})

    refused = client.get("/api/v1/search/messages/", {"q": "тест"})

    assert (refused.status_code, refused.json()["code"]) == (429, "rate_limited")
