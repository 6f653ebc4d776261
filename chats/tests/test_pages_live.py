"""What the chat, channel and organisation pages give static/js/chats.js to
go live with: prototypes of what arrives over the socket rendered with the
pages' own markup and wording, the texts and ids it needs, and plain answers
to the forms it posts in the background. The browser side is in
tests/browser/test_pages_live_browser.py."""

import json
import re
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.html import escape
from django.utils.text import capfirst

from accounts.models import User
from chats import views
from chats.models import Chat, ChatKind, ChatMember, Pin, Poll, PollVote
from chats.services import channels, content, moderation
from chats.tests.factories import directory_changes_forget, make_school_with_chats, send
from chats.tests.test_channels import make_channel_world
from organisations.extensions import OrganisationChannel, organisation_channels
from organisations.models import OrganisationKind, Role
from organisations.tests.factories import make_member, make_organisation, make_school_with_class

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_directory_changes():
    directory_changes_forget()
    yield
    directory_changes_forget()


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_of(response) -> str:
    return response.content.decode()


def live_config(html: str) -> dict[str, Any]:
    (text,) = re.findall(r'<script id="chat-live" type="application/json">(.*?)</script>', html, re.S)
    return json.loads(text)


def template_of(html: str, template_id: str) -> str:
    (markup,) = re.findall(rf'<template id="{template_id}">(.*?)</template>', html, re.S)
    return markup


SEQ = views.PROTOTYPE_SEQ


# --- The chat page ---------------------------------------------------------------------------------------


def test_the_chat_page_gives_the_script_its_messages_own_markup_for_live_ones():
    world = make_school_with_chats(students=1)
    send(world.teacher, world.parents_chat, "Собрание в четверг")
    url = f"/chats/{world.parents_chat.pk}/"

    teacher_html = page_of(client_for(world.teacher).get(url))
    parent_html = page_of(client_for(world.parents[0]).get(url))

    own = template_of(parent_html, "message-own")
    other = template_of(parent_html, "message-other")
    assert f'<li id="m{SEQ}" class="msg own" data-seq="{SEQ}">' in own
    assert f'<li id="m{SEQ}" class="msg" data-seq="{SEQ}">' in other
    # Everyone's reactions; one's own messages to edit and delete; others' to report.
    for markup in (own, other):
        assert f'action="{url}messages/{SEQ}/react/" class="reactions" data-reactions hidden>' in markup
        assert f'<a href="?reply={SEQ}#send" class="reply-link">Ответить</a>' in markup
        assert 'name="csrfmiddlewaretoken"' in markup
    assert f'href="{url}messages/{SEQ}/edit/"' in own and f'action="{url}messages/{SEQ}/delete/"' in own
    assert f'href="{url}messages/{SEQ}/report/"' in other and f"messages/{SEQ}/delete/" not in other
    # Only a moderator's copies can pin, and only theirs delete others' messages.
    assert f"messages/{SEQ}/pin/" not in own + other
    assert f'action="{url}messages/{SEQ}/pin/"' in template_of(teacher_html, "message-other")
    assert f'action="{url}messages/{SEQ}/delete/"' in template_of(teacher_html, "message-other")
    poll = template_of(parent_html, "poll-template")
    assert f'action="{url}messages/{SEQ}/polls/{views.PROTOTYPE_POLL}/vote/"' in poll
    assert f'action="{url}messages/{SEQ}/polls/{views.PROTOTYPE_POLL}/close/"' in poll
    member = template_of(teacher_html, "member-template")
    assert f'<li data-user="{views.PROTOTYPE_USER}">' in member
    assert f'id="mute-{views.PROTOTYPE_USER}"' in member
    assert 'id="mute-' not in template_of(parent_html, "member-template")


def test_the_chat_page_gives_the_script_the_servers_own_wording_and_state():
    world = make_school_with_chats(students=1)
    moderation.chat_announcement_mode_set(actor=world.teacher, chat_id=world.parents_chat.pk, is_on=True)
    url = f"/chats/{world.parents_chat.pk}/"

    parent = live_config(page_of(client_for(world.parents[0]).get(url)))
    teacher = live_config(page_of(client_for(world.teacher).get(url)))

    members = ChatMember.objects.active().filter(chat=world.parents_chat).count()
    assert parent["page"] == "chat"
    assert parent["placeholders"] == {
        "seq": SEQ,
        "poll": views.PROTOTYPE_POLL,
        "user": views.PROTOTYPE_USER,
    }
    assert (parent["isStaff"], parent["mayModerate"], parent["postingRefusal"]) == (False, False, "announcement_only")
    assert (teacher["isStaff"], teacher["mayModerate"], teacher["postingRefusal"]) == (True, True, "")
    assert parent["membersCount"] == members
    assert parent["texts"]["deleted"] == "Сообщение удалено"
    assert parent["texts"]["voted"] == "Проголосовали: %(count)s"
    assert parent["texts"]["members"] == "Участников: %(count)s"
    assert parent["texts"]["announcementOnly"] == "Сейчас в этом чате могут писать только педагоги."
    assert parent["texts"]["sizes"]["KB"] == "%(size)s\xa0КБ"
    assert parent["texts"]["sizes"]["bytes"]["few"] == "%(size)s\xa0байта"


def test_the_chat_page_in_english_gives_english_texts():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    client.cookies["django_language"] = "en"

    config = live_config(page_of(client.get(f"/chats/{world.parents_chat.pk}/")))

    assert config["texts"]["deleted"] == "Message deleted"
    assert config["texts"]["typing"] == "%(name)s is typing…"
    assert config["texts"]["sizes"]["bytes"] == {
        "one": "%(size)s\xa0byte",
        "few": "%(size)s\xa0bytes",
        "many": "%(size)s\xa0bytes",
        "other": "%(size)s\xa0bytes",
    }


def test_the_pins_list_is_always_there_to_fill_and_leaves_out_deleted_messages():
    world = make_school_with_chats(students=1)
    kept = send(world.teacher, world.parents_chat, "Расписание на четверть")
    gone = send(world.teacher, world.parents_chat, "Устаревшее")
    url = f"/chats/{world.parents_chat.pk}/"
    client = client_for(world.parents[0])

    empty = page_of(client.get(url))
    content.pin_add(user=world.teacher, chat_id=world.parents_chat.pk, seq=kept.seq)
    content.pin_add(user=world.teacher, chat_id=world.parents_chat.pk, seq=gone.seq)
    moderation.message_delete(actor=world.teacher, chat_id=world.parents_chat.pk, seq=gone.seq)
    pinned = page_of(client.get(url))

    assert '<section class="pins" id="pins" aria-labelledby="pins-title" hidden>' in empty
    assert '<section class="pins" id="pins" aria-labelledby="pins-title">' in pinned
    assert f'<li data-seq="{kept.seq}"><a href="{url}?before=2#m1">' in pinned
    assert f'<li data-seq="{gone.seq}">' not in pinned
    assert '<span class="badge" data-pinned>Закреплённые</span>' in pinned


def test_message_text_never_reaches_the_script_config_or_prototypes_as_html():
    world = make_school_with_chats(students=1)
    send(world.parents[0], world.parents_chat, "</script><script>alert(1)</script>")

    html = page_of(client_for(world.teacher).get(f"/chats/{world.parents_chat.pk}/"))

    assert "<script>alert(1)" not in html
    assert escape("</script><script>alert(1)</script>") in html
    # The config (JSON, not run), chats.js and the site-wide pwa.js.
    assert html.count("<script") == 3


# --- Forms posted in the background -----------------------------------------------------------------------


def test_a_pin_posted_in_the_background_answers_json_and_leaves_no_flash_message():
    world = make_school_with_chats(students=1)
    send(world.parents[0], world.parents_chat, "Вопрос о собрании")
    url = f"/chats/{world.parents_chat.pk}/"
    client = client_for(world.teacher)

    response = client.post(f"{url}messages/1/pin/", HTTP_ACCEPT="application/json")

    assert (response.status_code, response.json()) == (200, {"ok": True})
    assert list(Pin.objects.values_list("message__seq", flat=True)) == [1]
    assert 'class="messages"' not in page_of(client.get(url))
    response = client.post(f"{url}messages/1/pin/", {"action": "unpin"}, HTTP_ACCEPT="application/json")
    assert (response.status_code, Pin.objects.count()) == (200, 0)


def test_a_refused_background_action_says_why_and_changes_nothing():
    world = make_school_with_chats(students=1)
    send(world.teacher, world.parents_chat, "Объявление")
    url = f"/chats/{world.parents_chat.pk}/"
    client = client_for(world.parents[0])

    pin = client.post(f"{url}messages/1/pin/", HTTP_ACCEPT="application/json")
    mute = client.post(f"{url}mute/", {"user_id": world.teacher.pk, "minutes": "60"}, HTTP_ACCEPT="application/json")
    mode = client.post(f"{url}announcement-mode/", {"is_on": "1"}, HTTP_ACCEPT="application/json")

    assert pin.status_code == 403
    assert pin.json() == {"detail": "Закреплять сообщения могут только модераторы чата.", "code": "not_moderator"}
    assert (mute.status_code, mute.json()["code"]) == (403, "not_moderator")
    assert (mode.status_code, mode.json()["code"]) == (403, "not_moderator")
    assert Pin.objects.count() == 0
    assert ChatMember.objects.get(chat=world.parents_chat, user=world.teacher).muted_until is None
    assert Chat.objects.get(pk=world.parents_chat.pk).is_announcement_only is False
    assert 'class="messages"' not in page_of(client.get(url))


def test_votes_muting_and_announcement_mode_posted_in_the_background():
    world = make_school_with_chats(students=1)
    parent = world.parents[0]
    chat_id = world.parents_chat.pk
    poll, _created = content.poll_create(
        user=world.teacher, chat_id=chat_id, question="Когда?", options=["Утром", "Вечером"], client_id="p"
    )
    evening = poll.options.get(text="Вечером")
    url = f"/chats/{chat_id}/"
    teacher = client_for(world.teacher)

    vote = client_for(parent).post(
        f"{url}messages/1/polls/{poll.pk}/vote/", {"option": str(evening.pk)}, HTTP_ACCEPT="application/json"
    )
    close = teacher.post(f"{url}messages/1/polls/{poll.pk}/close/", HTTP_ACCEPT="application/json")
    late = client_for(world.parents[0]).post(
        f"{url}messages/1/polls/{poll.pk}/vote/", {"option": []}, HTTP_ACCEPT="application/json"
    )
    mute = teacher.post(f"{url}mute/", {"user_id": parent.pk, "minutes": "60"}, HTTP_ACCEPT="application/json")
    mode = teacher.post(f"{url}announcement-mode/", {"is_on": "1"}, HTTP_ACCEPT="application/json")

    assert [answer.status_code for answer in (vote, close, mute, mode)] == [200, 200, 200, 200]
    assert (late.status_code, late.json()["code"]) == (400, "poll_closed")
    assert list(PollVote.objects.values_list("user_id", "option_id")) == [(parent.pk, evening.pk)]
    assert Poll.objects.get().closed_at is not None
    assert ChatMember.objects.get(chat_id=chat_id, user=parent).muted_until > timezone.now()
    assert Chat.objects.get(pk=chat_id).is_announcement_only is True


# --- The chat list -------------------------------------------------------------------------------------------


def test_the_chat_list_gives_the_script_a_chat_entry_to_copy_and_the_kinds():
    world = make_school_with_chats(students=1)

    html = page_of(client_for(world.parents[0]).get("/chats/"))

    entry = template_of(html, "chat-item-template")
    assert f'<li data-chat="{views.PROTOTYPE_CHAT}" data-last-seq="0">' in entry
    assert f'<a href="/chats/{views.PROTOTYPE_CHAT}/" class="chat-title">' in entry
    config = live_config(html)
    assert config["placeholders"] == {"chat": views.PROTOTYPE_CHAT}
    assert config["texts"]["kinds"][ChatKind.CLASS_PARENTS] == capfirst(world.parents_chat.get_kind_display())
    assert f'data-user="{world.parents[0].pk}"' in html


# --- The channel page ----------------------------------------------------------------------------------------


def test_the_channel_page_gives_the_script_a_post_to_copy_for_its_reader():
    world = make_channel_world()
    url = f"/channels/{world.channel.pk}/"

    reader = page_of(client_for(world.school.parent).get(url))
    editor = page_of(client_for(world.editor).get(url))

    post = template_of(reader, "post-template")
    assert f'<li id="p{SEQ}" class="msg" data-seq="{SEQ}">' in post
    assert f'action="{url}posts/{SEQ}/acknowledge/" class="inline" data-acknowledge>' in post
    assert f'action="{url}posts/{SEQ}/reply/"' in post
    assert "data-summary" not in post
    editor_post = template_of(editor, "post-template")
    subscribers = ChatMember.objects.active().filter(chat=world.channel, role="member").count()
    assert f"Прочитали 0 из {subscribers}" in editor_post
    assert "data-acknowledge>" not in editor_post
    assert "data-asks-acknowledgement" in editor_post
    # An empty channel still tells its editors its audience.
    assert f"Подписчиков: {subscribers}" in editor
    config = live_config(reader)
    assert (config["page"], config["isEditor"], config["subscribers"]) == ("channel", False, None)
    assert config["repliable"] == sorted([world.school.administrator.pk, world.editor.pk])
    assert live_config(editor)["subscribers"] == subscribers
    assert 'data-live="1"' in reader and f'data-chat="{world.channel.pk}"' in reader


def test_a_child_in_safe_mode_may_reply_privately_only_to_its_contacts_posts_that_arrive_live():
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, is_verified=True)
    school = make_school_with_class(parent=ministry, students=1)
    minister = make_member(organisation=ministry, role=Role.ADMINISTRATOR)
    channel = channels.channel_create(actor=minister, organisation=ministry, title="Минпросвещения России")

    child = live_config(page_of(client_for(school.student).get(f"/channels/{channel.pk}/")))
    parent = live_config(page_of(client_for(school.parent).get(f"/channels/{channel.pk}/")))

    assert child["repliable"] == []
    assert parent["repliable"] == [minister.pk]


# --- The organisation's page lists its channels -----------------------------------------------------------------


def test_the_organisation_page_lists_its_channels_with_badge_subscribers_and_links():
    world = make_channel_world()
    school = world.school.school
    public = channels.channel_create(
        actor=world.school.administrator, organisation=school, title="Открытые новости", is_public=True
    )
    Chat.objects.filter(pk=public.pk).update(is_verified=False)
    private = channels.channel_create(actor=world.school.administrator, organisation=school, title="Только свои")
    Chat.objects.filter(pk=private.pk).update(is_verified=False)
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)
    url = f"/directory/{school.pk}/"

    member_html = page_of(client_for(world.school.parent).get(url))
    outsider_html = page_of(client_for(outsider).get(url))

    subscribers = ChatMember.objects.active().filter(chat=world.channel).count()
    assert '<h2 id="channels-title">Каналы</h2>' in member_html
    assert (
        f'<li><a href="/channels/{world.channel.pk}/">Объявления школы</a> '
        f'<span class="badge verified">Официальный канал</span><br><span class="help">Подписчиков: {subscribers}</span>'
    ) in member_html
    assert f'<a href="/channels/{public.pk}/">Открытые новости</a>' in member_html
    assert f'<a href="/channels/{private.pk}/">Только свои</a>' in member_html
    # Someone from elsewhere: the official channel by name, the public one to open, not the private one.
    assert '<li>Объявления школы <span class="badge verified">' in outsider_html
    assert f'href="/channels/{world.channel.pk}/"' not in outsider_html
    assert f'<a href="/channels/{public.pk}/">Открытые новости</a>' in outsider_html
    assert "Только свои" not in outsider_html


def test_the_organisation_page_provider_is_registered_by_chats():
    world = make_channel_world()
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)

    found = organisation_channels(user=outsider, organisation=world.school.school)

    subscribers = ChatMember.objects.active().filter(chat=world.channel).count()
    assert found == [OrganisationChannel(title="Объявления школы", is_verified=True, subscribers=subscribers, url=None)]


def test_an_archived_channel_or_an_organisation_without_channels_lists_none():
    world = make_channel_world()
    Chat.objects.filter(pk=world.channel.pk).update(is_archived=True)
    client = client_for(world.school.parent)

    html = page_of(client.get(f"/directory/{world.school.school.pk}/"))

    assert 'id="channels-title"' not in html
    assert organisation_channels(user=world.school.parent, organisation=world.school.school) == []


def test_the_organisation_page_takes_as_many_queries_for_many_channels_as_for_one():
    world = make_channel_world()
    client = client_for(world.school.parent)
    url = f"/directory/{world.school.school.pk}/"
    client.get(url)

    with CaptureQueriesContext(connection) as one:
        client.get(url)
    for number in range(5):
        channels.channel_create(
            actor=world.school.administrator, organisation=world.school.school, title=f"Канал {number}", is_public=True
        )
    with CaptureQueriesContext(connection) as many:
        html = page_of(client.get(url))

    assert len(re.findall(r'href="/channels/\d+/"', html)) == 6
    assert len(many) == len(one)
