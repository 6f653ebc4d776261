"""Channel pages: plain forms and links, no JavaScript needed."""

import re

import pytest
from django.test import Client

from accounts.models import User
from chats.models import Acknowledgement, Chat, ChatKind, Message
from chats.services import channels
from chats.tests.test_channels import make_channel_world
from organisations.models import OrganisationKind, Role
from organisations.tests.factories import make_member, make_organisation, make_school_with_class


def browser_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text_of(response) -> str:
    return response.content.decode()


@pytest.mark.django_db
def test_the_list_shows_my_channels_with_the_official_badge_and_public_ones():
    world = make_channel_world()
    other = make_school_with_class(students=0, is_verified=False)
    public = channels.channel_create(
        actor=other.administrator, organisation=other.school, title="Открытый канал", is_public=True
    )
    channels.channel_post(user=world.editor, chat_id=world.channel.pk, body="Прочтите", requires_acknowledgement=True)

    response = browser_for(world.school.parent).get("/channels/")

    page = text_of(response)
    assert response.status_code == 200
    assert f'href="/channels/{world.channel.pk}/"' in page
    assert f'href="/channels/{public.pk}/"' in page
    assert page.count('class="badge verified"') == 1
    assert f'action="/channels/{public.pk}/subscribe/"' in page
    assert f'action="/channels/{world.channel.pk}/subscribe/"' not in page
    assert '<span class="unread"' in page
    # The page is plain HTML: the only script is the site-wide pwa.js (the
    # service worker and notifications), nothing of the channel list.
    assert re.findall(r"<script[^>]*>", page) == [re.search(r"<script[^>]*pwa\.js[^>]*>", page).group(0)]


@pytest.mark.django_db
def test_acknowledging_from_the_page():
    world = make_channel_world()
    message, _created = channels.channel_post(
        user=world.editor, chat_id=world.channel.pk, body="Собрание <b>в четверг</b>", requires_acknowledgement=True
    )
    browser = browser_for(world.school.parent)
    action = f'action="/channels/{world.channel.pk}/posts/{message.seq}/acknowledge/"'

    before = text_of(browser.get(f"/channels/{world.channel.pk}/"))
    response = browser.post(f"/channels/{world.channel.pk}/posts/{message.seq}/acknowledge/")
    after = text_of(browser.get(f"/channels/{world.channel.pk}/"))

    assert action in before
    assert "Собрание &lt;b&gt;в четверг&lt;/b&gt;" in before
    assert (response.status_code, response["Location"]) == (302, f"/channels/{world.channel.pk}/#p{message.seq}")
    assert action not in after
    assert Acknowledgement.objects.filter(message=message, user=world.school.parent).count() == 1


@pytest.mark.django_db
def test_editors_post_from_the_page_and_subscribers_cannot():
    world = make_channel_world()
    url = f"/channels/{world.channel.pk}/"

    editor_page = text_of(browser_for(world.editor).get(url))
    client_id = re.search(r'name="client_id" value="([0-9a-f]+)"', editor_page).group(1)
    form = {"body": "Каникулы с понедельника", "client_id": client_id, "requires_acknowledgement": "on"}
    posted = browser_for(world.editor).post(url, form)
    resent = browser_for(world.editor).post(url, form)
    refused = browser_for(world.school.parent).post(url, {"body": "Я тоже", "client_id": "x"})
    invalid = browser_for(world.editor).post(url, {"body": "Текст", "client_id": "y", "escalate_after_hours": "3"})

    assert 'id="post"' in editor_page
    assert (posted.status_code, resent.status_code) == (302, 302)
    assert posted["Location"] == resent["Location"] == f"{url}#p1"
    assert refused.status_code == 400
    assert invalid.status_code == 400
    assert "Текст" in text_of(invalid)
    assert list(Message.objects.values_list("body", "requires_acknowledgement")) == [("Каникулы с понедельника", True)]
    assert 'id="post"' not in text_of(browser_for(world.school.parent).get(url))


@pytest.mark.django_db
def test_statistics_page_for_editors():
    world = make_channel_world()
    message, _created = channels.channel_post(
        user=world.editor, chat_id=world.channel.pk, body="Справка", requires_acknowledgement=True
    )
    url = f"/channels/{world.channel.pk}/posts/{message.seq}/stats/"

    page = browser_for(world.editor).get(url)
    refused = browser_for(world.school.parent).get(url)

    assert page.status_code == 200
    assert world.school.students[0].last_name in text_of(page)
    assert "7Б" in text_of(page)
    assert (refused.status_code, refused["Location"]) == (302, f"/channels/{world.channel.pk}/")


@pytest.mark.django_db
def test_private_reply_from_the_page_leads_to_the_direct_chat():
    world = make_channel_world()
    message, _created = channels.channel_post(user=world.editor, chat_id=world.channel.pk, body="Вопросы?")

    response = browser_for(world.school.parent).post(
        f"/channels/{world.channel.pk}/posts/{message.seq}/reply/", {"body": "Есть вопрос", "client_id": "r1"}
    )

    direct = Chat.objects.get(kind=ChatKind.DIRECT)
    assert (response.status_code, response["Location"]) == (302, f"/chats/{direct.pk}/")


@pytest.mark.django_db
def test_subscribing_from_the_page():
    world = make_channel_world(is_public=True)
    reader = make_member(organisation=make_organisation(), role=Role.TEACHER)
    browser = browser_for(reader)
    url = f"/channels/{world.channel.pk}/"

    preview = text_of(browser.get(url))
    subscribed = browser.post(f"{url}subscribe/")
    unsubscribed = browser.post(f"{url}unsubscribe/")

    assert f'action="{url}subscribe/"' in preview
    assert 'class="chat-messages"' not in preview
    assert (subscribed.status_code, subscribed["Location"]) == (302, url)
    assert (unsubscribed.status_code, unsubscribed["Location"]) == (302, "/channels/")


@pytest.mark.django_db
def test_a_private_channel_of_another_organisation_is_404():
    world = make_channel_world()
    outsider = browser_for(make_member(organisation=make_organisation(), role=Role.TEACHER))

    assert outsider.get(f"/channels/{world.channel.pk}/").status_code == 404
    assert outsider.post(f"/channels/{world.channel.pk}/subscribe/").status_code == 404
    assert outsider.post(f"/channels/{world.channel.pk}/", {"body": "x", "client_id": "x"}).status_code == 404


@pytest.mark.django_db
def test_creating_a_channel_from_the_page():
    school = make_school_with_class(students=1, is_verified=True)

    form_page = browser_for(school.administrator).get("/channels/new/")
    response = browser_for(school.administrator).post(
        "/channels/new/", {"organisation": school.school.pk, "title": "Новости школы", "is_public": "on"}
    )
    teacher_page = browser_for(school.teacher).get("/channels/new/")

    chat = Chat.objects.get(kind=ChatKind.CHANNEL)
    assert form_page.status_code == 200
    assert (response.status_code, response["Location"]) == (302, f"/channels/{chat.pk}/")
    assert (chat.title, chat.is_public, chat.is_verified) == ("Новости школы", True, True)
    assert 'name="organisation"' not in text_of(teacher_page)


@pytest.mark.django_db
def test_a_child_sees_no_private_reply_under_a_strangers_post():
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, is_verified=True)
    school = make_school_with_class(parent=ministry, students=1)
    minister = make_member(organisation=ministry, role=Role.ADMINISTRATOR)
    channel = channels.channel_create(actor=minister, organisation=ministry, title="Минпросвещения России")
    message, _created = channels.channel_post(user=minister, chat_id=channel.pk, body="Разговоры о важном")
    reply_action = f'action="/channels/{channel.pk}/posts/{message.seq}/reply/"'

    child_page = text_of(browser_for(school.student).get(f"/channels/{channel.pk}/"))
    parent_page = text_of(browser_for(school.parent).get(f"/channels/{channel.pk}/"))

    assert "Разговоры о важном" in child_page
    assert 'class="badge verified"' in child_page
    assert reply_action not in child_page
    assert reply_action in parent_page
