"""REST API of broadcast channels."""

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from chats.models import Acknowledgement, Chat, ChatKind, ChatMember, Message
from chats.services import channels
from chats.tests.test_channels import ChannelWorld, make_channel_world
from organisations.models import OrganisationKind, Role
from organisations.tests.factories import make_member, make_organisation, make_school_with_class


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def post(world: ChannelWorld, **fields) -> dict:
    response = client_for(world.editor).post(
        f"/api/v1/channels/{world.channel.pk}/posts/",
        {"body": "Родительское собрание в четверг", "requires_acknowledgement": True, **fields},
        format="json",
    )
    assert response.status_code == 201, response.content
    return response.json()


# --- Channels ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_has_my_channels_and_public_ones_i_may_subscribe_to():
    world = make_channel_world()
    public = make_school_with_class(students=0)
    public_channel = channels.channel_create(
        actor=public.administrator, organisation=public.school, title="Открытый канал", is_public=True
    )
    private = make_school_with_class(students=0)
    channels.channel_create(actor=private.administrator, organisation=private.school, title="Закрытый")
    client = client_for(world.school.parent)

    response = client.get("/api/v1/channels/")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [(item["id"], item["is_subscribed"], item["role"], item["is_automatic"]) for item in results] == [
        (world.channel.pk, True, "member", True),
        (public_channel.pk, False, None, False),
    ]
    assert results[0]["organisation"] == {
        "id": world.school.school.pk,
        "kind": "school",
        "short_name": world.school.school.short_name,
        "is_verified": True,
    }
    assert results[0]["is_verified"] is True
    assert results[0]["may_post"] is False

    filtered = client.get("/api/v1/channels/", {"organisation": public.school.pk}).json()["results"]
    assert [item["id"] for item in filtered] == [public_channel.pk]
    subscribed = client.get("/api/v1/channels/", {"subscribed": "true"}).json()["results"]
    assert [item["id"] for item in subscribed] == [world.channel.pk]


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [1, 10])
def test_the_list_takes_the_same_queries_whatever_the_page_size(limit, django_assert_num_queries):
    world = make_channel_world()
    for _index in range(4):
        school = make_school_with_class(students=0)
        channels.channel_create(actor=school.administrator, organisation=school.school, title="К", is_public=True)
    client = client_for(world.school.parent)

    # The directory's visibility rule (1), the count (1) and the page (1).
    with django_assert_num_queries(3):
        response = client.get("/api/v1/channels/", {"limit": limit})

    assert len(response.json()["results"]) == min(limit, 5)


@pytest.mark.django_db
def test_create_takes_the_badge_from_the_server():
    unverified = make_school_with_class(students=1, is_verified=False)
    client = client_for(unverified.administrator)

    response = client.post(
        "/api/v1/channels/",
        {"organisation": unverified.school.pk, "title": "Минпросвещения России", "is_verified": True},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["is_verified"], body["role"], body["may_post"], body["may_manage"]) == (False, "owner", True, True)
    assert Chat.objects.get(pk=body["id"]).is_verified is False

    verified = make_school_with_class(students=0, is_verified=True)
    response = client_for(verified.administrator).post(
        "/api/v1/channels/", {"organisation": verified.school.pk, "title": "Школа", "is_public": True}, format="json"
    )
    assert (response.status_code, response.json()["is_verified"], response.json()["is_public"]) == (201, True, True)


@pytest.mark.django_db
def test_create_is_refused_to_others():
    school = make_school_with_class(students=1)
    other = make_school_with_class(students=1)

    teacher = client_for(school.teacher).post(
        "/api/v1/channels/", {"organisation": school.school.pk, "title": "Канал"}, format="json"
    )
    # A student of another school does not see this school in the directory.
    student = client_for(other.student).post(
        "/api/v1/channels/", {"organisation": school.school.pk, "title": "Канал"}, format="json"
    )
    invalid = client_for(school.administrator).post(
        "/api/v1/channels/", {"organisation": school.school.pk, "title": ""}, format="json"
    )
    anonymous = APIClient().post("/api/v1/channels/", {"organisation": school.school.pk, "title": "К"}, format="json")

    assert (teacher.status_code, teacher.json()["code"]) == (403, "not_organisation_administrator")
    assert student.status_code == 404
    assert invalid.status_code == 400
    assert anonymous.status_code == 401
    assert not Chat.objects.filter(kind=ChatKind.CHANNEL).exists()


@pytest.mark.django_db
def test_a_private_channel_of_another_organisation_answers_404():
    world = make_channel_world(is_public=False)
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)
    client = client_for(outsider)
    missing = client.get("/api/v1/channels/999999/")
    members_before = ChatMember.objects.count()

    for method, url in [
        ("get", f"/api/v1/channels/{world.channel.pk}/"),
        ("post", f"/api/v1/channels/{world.channel.pk}/subscription/"),
        ("delete", f"/api/v1/channels/{world.channel.pk}/subscription/"),
        ("get", f"/api/v1/channels/{world.channel.pk}/posts/"),
        ("post", f"/api/v1/channels/{world.channel.pk}/posts/"),
    ]:
        response = getattr(client, method)(url, {"body": "Текст"} if method == "post" else None, format="json")
        assert (response.status_code, response.json()) == (404, missing.json()), url

    assert ChatMember.objects.count() == members_before
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_subscribing_and_unsubscribing():
    world = make_channel_world(is_public=True)
    reader = make_member(organisation=make_organisation(), role=Role.TEACHER)
    client = client_for(reader)
    url = f"/api/v1/channels/{world.channel.pk}/subscription/"

    first = client.post(url)
    second = client.post(url)
    detail = client.get(f"/api/v1/channels/{world.channel.pk}/")
    left = client.delete(url)
    again = client.delete(url)
    automatic = client_for(world.school.parent).delete(url)

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == {"chat": world.channel.pk, "is_subscribed": True, "role": "member", "is_automatic": False}
    assert detail.json()["is_subscribed"] is True
    assert (left.status_code, again.status_code) == (204, 404)
    assert (automatic.status_code, automatic.json()["code"]) == (409, "subscription_automatic")
    assert ChatMember.objects.active().filter(chat=world.channel, user=world.school.parent).exists()


@pytest.mark.django_db
def test_adding_editors():
    world = make_channel_world()
    colleague = make_member(organisation=world.school.school, role=Role.TEACHER)
    url = f"/api/v1/channels/{world.channel.pk}/editors/"

    added = client_for(world.school.administrator).post(url, {"user_id": colleague.pk}, format="json")
    again = client_for(world.school.administrator).post(url, {"user_id": colleague.pk}, format="json")
    not_staff = client_for(world.school.administrator).post(url, {"user_id": world.school.parent.pk}, format="json")
    not_manager = client_for(world.editor).post(url, {"user_id": colleague.pk}, format="json")

    assert (added.status_code, again.status_code) == (201, 200)
    assert added.json()["user"]["id"] == colleague.pk
    assert added.json()["role"] == "editor"
    assert (not_staff.status_code, not_staff.json()["code"], not_staff.json()["field"]) == (
        400,
        "editor_not_staff",
        "user_id",
    )
    assert (not_manager.status_code, not_manager.json()["code"]) == (403, "not_channel_manager")


# --- Posts --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_subscribers_cannot_post_and_nothing_is_stored():
    world = make_channel_world()

    response = client_for(world.school.parent).post(
        f"/api/v1/channels/{world.channel.pk}/posts/", {"body": "Можно вопрос?"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (403, "channel_read_only")
    assert Message.objects.count() == 0
    world.channel.refresh_from_db()
    assert world.channel.last_seq == 0


@pytest.mark.django_db
def test_editors_post_and_a_resend_is_the_same_post():
    world = make_channel_world()
    url = f"/api/v1/channels/{world.channel.pk}/posts/"
    body = {"body": "Экскурсия", "client_id": "e-1", "requires_acknowledgement": True, "escalate_after_hours": 24}

    first = client_for(world.editor).post(url, body, format="json")
    second = client_for(world.editor).post(url, body, format="json")
    wrong = client_for(world.editor).post(url, {"body": "Текст", "requires_acknowledgement": "yes"}, format="json")
    no_ack = client_for(world.editor).post(url, {"body": "Текст", "escalate_after_hours": 5}, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert first.json()["seq"] == 1
    assert first.json()["requires_acknowledgement"] is True
    assert first.json()["escalate_at"] is not None
    assert (wrong.status_code, wrong.json()["field"]) == (400, "requires_acknowledgement")
    assert (no_ack.status_code, no_ack.json()["field"]) == (400, "escalate_after_hours")
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_posts_list_with_my_acknowledgements_and_editor_counts():
    world = make_channel_world()
    first = post(world)
    second = post(world, requires_acknowledgement=False)
    parent = world.school.parent
    channels.acknowledgement_create(user=parent, chat_id=world.channel.pk, seq=first["seq"])
    url = f"/api/v1/channels/{world.channel.pk}/posts/"

    as_parent = client_for(parent).get(url).json()
    as_editor = client_for(world.editor).get(url).json()
    older = client_for(parent).get(url, {"before": second["seq"], "limit": 1}).json()

    assert [(item["seq"], item["is_acknowledged"], item["summary"]) for item in as_parent["posts"]] == [
        (1, True, None),
        (2, False, None),
    ]
    assert (as_parent["last_seq"], as_parent["has_more"], as_parent["subscribers"]) == (2, False, None)
    assert as_editor["subscribers"] == 4
    assert [item["summary"] for item in as_editor["posts"]] == [
        {"read": 1, "acknowledged": 1},
        {"read": 0, "acknowledged": 0},
    ]
    assert [item["seq"] for item in older["posts"]] == [1]


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [1, 5])
def test_posts_list_takes_the_same_queries_whatever_the_page_size(limit, django_assert_num_queries):
    world = make_channel_world()
    for _index in range(5):
        post(world)
    client = client_for(world.editor)

    with django_assert_num_queries(5):
        response = client.get(f"/api/v1/channels/{world.channel.pk}/posts/", {"limit": limit})

    assert len(response.json()["posts"]) == limit


@pytest.mark.django_db
def test_acknowledge_is_idempotent():
    world = make_channel_world()
    created = post(world)
    url = f"/api/v1/channels/{world.channel.pk}/posts/{created['seq']}/acknowledge/"
    client = client_for(world.school.student)

    first = client.post(url)
    second = client.post(url)
    missing = client.post(f"/api/v1/channels/{world.channel.pk}/posts/99/acknowledge/")

    assert (first.status_code, second.status_code, missing.status_code) == (201, 200, 404)
    assert first.json()["acknowledged_at"] == second.json()["acknowledged_at"]
    assert Acknowledgement.objects.count() == 1


@pytest.mark.django_db
def test_statistics_for_editors_only():
    world = make_channel_world()
    created = post(world)
    channels.acknowledgement_create(user=world.school.parents[0], chat_id=world.channel.pk, seq=created["seq"])
    url = f"/api/v1/channels/{world.channel.pk}/posts/{created['seq']}/stats/"

    response = client_for(world.editor).get(url, {"limit": 10})
    refused = client_for(world.school.parent).get(url)

    assert response.status_code == 200
    body = response.json()
    assert (body["subscribers"], body["read"], body["acknowledged"], body["not_acknowledged_count"]) == (4, 1, 1, 3)
    assert body["names_shown"] is True
    assert {person["id"] for person in body["not_acknowledged"]} == {
        world.school.students[0].pk,
        world.school.students[1].pk,
        world.school.parents[1].pk,
    }
    assert body["by_class"] == [
        {
            "id": world.school.group.pk,
            "name": "7Б",
            "students": 2,
            "students_acknowledged": 0,
            "parents": 2,
            "parents_acknowledged": 1,
        }
    ]
    assert (refused.status_code, refused.json()["code"]) == (403, "not_channel_editor")


@pytest.mark.django_db
def test_private_reply_opens_one_direct_chat():
    world = make_channel_world()
    created = post(world)
    url = f"/api/v1/channels/{world.channel.pk}/posts/{created['seq']}/private-reply/"
    client = client_for(world.school.parent)

    first = client.post(url, {"body": "Придём", "client_id": "r-1"}, format="json")
    resend = client.post(url, {"body": "Придём", "client_id": "r-1"}, format="json")
    second = client.post(url, {"body": "Вдвоём"}, format="json")

    assert (first.status_code, resend.status_code, second.status_code) == (201, 200, 201)
    assert first.json()["chat"] == resend.json()["chat"] == second.json()["chat"]
    assert first.json()["status"] == "sent"
    assert first.json()["message"]["body"].endswith("\n\nПридём")
    assert Chat.objects.filter(kind=ChatKind.DIRECT).count() == 1
    assert Message.objects.filter(chat_id=first.json()["chat"]).count() == 2


@pytest.mark.django_db
def test_a_child_cannot_reply_privately_to_a_stranger():
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, is_verified=True)
    school = make_school_with_class(parent=ministry, students=1)
    minister = make_member(organisation=ministry, role=Role.ADMINISTRATOR)
    channel = channels.channel_create(actor=minister, organisation=ministry, title="Минпросвещения России")
    message, _created = channels.channel_post(user=minister, chat_id=channel.pk, body="Разговоры о важном")

    response = client_for(school.student).post(
        f"/api/v1/channels/{channel.pk}/posts/{message.seq}/private-reply/", {"body": "Привет"}, format="json"
    )

    assert (response.status_code, response.json()["code"]) == (403, "contact_not_allowed")
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()
    assert Message.objects.count() == 1
