"""The chat pages without JavaScript: every page and form through Django's
test client, as a browser with scripts off would use them."""

import datetime
import io
import re
import zoneinfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import escape
from PIL import Image

from accounts.models import User
from chats.models import (
    Attachment,
    Chat,
    ChatKind,
    ChatMember,
    Message,
    MessageReport,
    Pin,
    Poll,
    PollVote,
    Reaction,
    ScheduledMessage,
)
from chats.services import moderation
from chats.tests.factories import directory_changes_forget, make_direct_chat, make_school_with_chats, send
from organisations.models import Role
from organisations.tests.factories import make_member

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_directory_changes():
    directory_changes_forget()
    yield
    directory_changes_forget()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


def ru(text: str) -> str:
    """A page string as the Russian interface shows it (escaped, as in HTML)."""
    with translation.override("ru"):
        return escape(translation.gettext(text))


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def page_of(response) -> str:
    return response.content.decode()


def client_id_of(html: str) -> str:
    (value,) = re.findall(r'name="client_id" value="([0-9a-f]{32})"', html)
    return value


def png_bytes() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 30)).save(output, format="PNG")
    return output.getvalue()


# --- Sign-in and the home page ---------------------------------------------------------------


def test_the_chat_pages_need_a_signed_in_user():
    world = make_school_with_chats(students=1)

    for url in ("/chats/", f"/chats/{world.parents_chat.pk}/"):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"] == "/login/?next=" + url


def test_the_home_page_opens_the_chat_list_and_the_header_links_to_it():
    world = make_school_with_chats(students=1)
    client = client_for(world.teacher)

    response = client.get("/")

    # Home is the services showcase (miniapps); the header links to the chats.
    assert (response.status_code, response["Location"]) == (302, "/education/")
    assert f'<a href="/chats/">{ru("Chats")}</a>' in page_of(client.get("/chats/"))


# --- The chat list ---------------------------------------------------------------------------


def test_the_chat_list_shows_the_persons_chats_with_unread_counts_and_the_last_message():
    world = make_school_with_chats(students=1)
    parent = world.parents[0]
    send(world.teacher, world.parents_chat, "Завтра собрание в 18:00")
    send(world.teacher, world.parents_chat, "Приходите, пожалуйста")

    response = client_for(parent).get("/chats/")

    assert response.status_code == 200
    html = page_of(response)
    chats = response.context["chats"]
    assert [(item.chat.pk, item.unread_count) for item in chats] == [(world.parents_chat.pk, 2)]
    assert f'<a href="/chats/{world.parents_chat.pk}/" class="chat-title">{world.parents_chat.title}</a>' in html
    assert "<span data-count>2</span>" in html
    assert f"<span>{world.teacher.display_name}: </span><span data-preview-body>Приходите, пожалуйста</span>" in html
    # The students' and the staff chat are not the parent's.
    assert f"/chats/{world.students_chat.pk}/" not in html
    assert f"/chats/{world.staff_chat.pk}/" not in html
    assert '<a href="/channels/">' in html


def test_a_direct_chat_is_named_after_the_other_person_with_the_verified_cap():
    world = make_school_with_chats(students=1)
    User.objects.filter(pk=world.teacher.pk).update(is_verified_educator=True)
    chat = make_direct_chat(world.parents[0], world.teacher)

    html = page_of(client_for(world.parents[0]).get("/chats/"))

    link = re.search(rf'<a href="/chats/{chat.pk}/" class="chat-title">(.*?)</a>', html, re.S)
    assert link is not None
    assert f'<span class="user-name">{world.teacher.display_name}</span>' in link.group(1)
    assert 'class="cap"' in link.group(1)


def test_people_search_offers_a_direct_chat_and_the_form_opens_it():
    world = make_school_with_chats(students=1)
    teacher = world.teacher
    client = client_for(world.parents[0])

    html = page_of(client.get("/chats/", {"q": teacher.last_name}))

    assert f'<input type="hidden" name="user_id" value="{teacher.pk}">' in html
    response = client.post("/chats/direct/", {"user_id": teacher.pk})
    chat = Chat.objects.get(kind=ChatKind.DIRECT)
    assert (response.status_code, response["Location"]) == (302, f"/chats/{chat.pk}/")
    assert set(ChatMember.objects.filter(chat=chat).values_list("user_id", flat=True)) == {
        teacher.pk,
        world.parents[0].pk,
    }
    # The same form again opens the same chat.
    assert client.post("/chats/direct/", {"user_id": teacher.pk})["Location"] == f"/chats/{chat.pk}/"
    assert Chat.objects.filter(kind=ChatKind.DIRECT).count() == 1


def test_a_stranger_cannot_open_a_direct_chat_with_a_child_in_safe_mode():
    world = make_school_with_chats(students=1)
    child = world.students[0]
    User.objects.filter(pk=child.pk).update(is_safe_mode=True)
    stranger = make_member(organisation=make_school_with_chats(students=0).school, role=Role.TEACHER)
    client = client_for(stranger)

    assert 'name="user_id"' not in page_of(client.get("/chats/", {"q": child.last_name}))
    response = client.post("/chats/direct/", {"user_id": child.pk}, follow=True)

    assert response.redirect_chain == [("/chats/", 302)]
    assert "Этот пользователь принимает сообщения только от своих контактов." in page_of(response)
    assert Chat.objects.filter(kind=ChatKind.DIRECT).count() == 0
    assert not ChatMember.objects.filter(user=child, chat__kind=ChatKind.DIRECT).exists()


# --- A chat ----------------------------------------------------------------------------------


def test_the_chat_page_shows_messages_oldest_first_and_marks_the_chat_read():
    world = make_school_with_chats(students=1)
    parent = world.parents[0]
    send(world.teacher, world.parents_chat, "Первое")
    send(world.teacher, world.parents_chat, "Второе")

    response = client_for(parent).get(f"/chats/{world.parents_chat.pk}/")

    assert response.status_code == 200
    html = page_of(response)
    assert html.index(">Первое</p>") < html.index(">Второе</p>")
    assert '<li id="m1"' in html and '<li id="m2"' in html
    assert f'<span class="user-name">{world.teacher.display_name}</span>' in html
    assert ChatMember.objects.get(chat=world.parents_chat, user=parent).last_read_seq == 2
    assert '<textarea name="body"' in html
    assert f'<label for="id_body">{ru("Message")}</label>' in html
    assert 'maxlength="4000"' in html


def test_sending_by_the_plain_form_stores_the_message_and_comes_back_to_it():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"
    client_id = client_id_of(page_of(client.get(url)))

    response = client.post(url, {"body": "  Спасибо, будем!  ", "client_id": client_id})

    message = Message.objects.get()
    assert (response.status_code, response["Location"]) == (302, f"{url}#m1")
    assert (message.chat_id, message.seq, message.author_id, message.body, message.client_id) == (
        world.parents_chat.pk,
        1,
        world.parents[0].pk,
        "Спасибо, будем!",
        client_id,
    )
    assert ">Спасибо, будем!</p>" in page_of(client.get(url))


def test_each_rendering_of_the_form_has_its_own_client_id():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    assert client_id_of(page_of(client.get(url))) != client_id_of(page_of(client.get(url)))


def test_a_double_submit_of_one_form_sends_one_message():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"
    form = {"body": "Спасибо!", "client_id": client_id_of(page_of(client.get(url)))}

    first = client.post(url, form)
    second = client.post(url, form)

    assert Message.objects.count() == 1
    assert first["Location"] == second["Location"] == f"{url}#m1"


def test_a_submit_with_a_used_client_id_and_another_text_asks_again_with_a_fresh_form():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"
    client_id = client_id_of(page_of(client.get(url)))
    client.post(url, {"body": "Первый текст", "client_id": client_id})

    response = client.post(url, {"body": "Другой текст", "client_id": client_id})

    assert response.status_code == 400
    html = page_of(response)
    assert ru("This client_id was already used for a different message.") in html
    assert client_id_of(html) != client_id
    assert ">\nДругой текст</textarea>" in html
    assert list(Message.objects.values_list("body", flat=True)) == ["Первый текст"]


def test_an_empty_or_too_long_message_is_refused_next_to_the_form():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    empty = client.post(url, {"body": "   ", "client_id": "a" * 32})
    too_long = client.post(url, {"body": "я" * 4001, "client_id": "b" * 32})

    assert (empty.status_code, too_long.status_code) == (400, 400)
    assert ru("Write a message or attach a file.") in page_of(empty)
    assert too_long.context["form"].errors["body"]
    assert Message.objects.count() == 0


def test_older_messages_are_paged_by_seq():
    world = make_school_with_chats(students=1)
    for number in range(1, 36):
        send(world.teacher, world.parents_chat, f"Сообщение {number}")
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    newest = client.get(url)
    older = client.get(url, {"before": 6})

    assert [row.message.seq for row in newest.context["rows"]] == list(range(6, 36))
    assert f'<a href="?before=6" rel="prev">{ru("Earlier messages")}</a>' in page_of(newest)
    assert [row.message.seq for row in older.context["rows"]] == [1, 2, 3, 4, 5]
    older_html = page_of(older)
    assert 'rel="prev"' not in older_html
    assert f'<a href="?after=5" rel="next">{ru("Later messages")}</a>' in older_html
    assert 'data-live="0"' in older_html
    forward = client.get(url, {"after": 5})
    assert [row.message.seq for row in forward.context["rows"]] == list(range(6, 36))
    assert 'data-live="1"' in page_of(forward)


def test_a_reply_quotes_the_message_replied_to():
    world = make_school_with_chats(students=1)
    question = send(world.teacher, world.parents_chat, "Кто придёт на собрание?")
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    html = page_of(client.get(url, {"reply": question.seq}))

    assert '<input type="hidden" name="reply_to" value="1" id="id_reply_to">' in html
    assert "«Кто придёт на собрание?»" in html
    client.post(url, {"body": "Я приду", "client_id": client_id_of(html), "reply_to": "1"})
    reply = Message.objects.get(seq=2)
    assert reply.reply_to_id == question.pk
    after = page_of(client.get(url))
    quote = re.search(r'<blockquote class="quote" data-reply-to="1"><a href="#m1">(.*?)</a></blockquote>', after, re.S)
    assert quote is not None
    assert f"{world.teacher.display_name}: <span data-quote-text>Кто придёт на собрание?</span>" in quote.group(1)


def test_a_moderator_deletes_a_message_and_it_shows_as_deleted():
    world = make_school_with_chats(students=1)
    message = send(world.parents[0], world.parents_chat, "Продаю гараж недорого")
    teacher_client = client_for(world.teacher)
    url = f"/chats/{world.parents_chat.pk}/"
    assert f'action="{url}messages/1/delete/"' in page_of(teacher_client.get(url))

    response = teacher_client.post(f"{url}messages/1/delete/")

    assert (response.status_code, response["Location"]) == (302, f"{url}#m1")
    message.refresh_from_db()
    assert message.deleted_by_id == world.teacher.pk
    html = page_of(client_for(world.parents[0]).get(url))
    assert f'<p class="body deleted">{ru("Message deleted")}</p>' in html
    assert "Продаю гараж" not in html


def test_a_member_cannot_delete_someone_elses_message():
    world = make_school_with_chats(students=2)
    message = send(world.parents[0], world.parents_chat, "Моё сообщение")
    client = client_for(world.parents[1])
    url = f"/chats/{world.parents_chat.pk}/"
    assert f'action="{url}messages/1/delete/"' not in page_of(client.get(url))

    response = client.post(f"{url}messages/1/delete/", follow=True)

    message.refresh_from_db()
    assert message.deleted_at is None
    assert ru("Only the author or a moderator may delete a message.") in page_of(response)


def test_a_refused_post_shows_the_reason_and_stores_nothing():
    world = make_school_with_chats(students=1)
    moderation.chat_announcement_mode_set(actor=world.teacher, chat_id=world.parents_chat.pk, is_on=True)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    page = page_of(client.get(url))
    response = client.post(url, {"body": "Можно вопрос?", "client_id": "c" * 32})

    # The page says so instead of offering the form; a form sent anyway is refused.
    assert '<p class="notice" id="send">Сейчас в этом чате могут писать только педагоги.</p>' in page
    assert '<textarea name="body"' not in page
    assert response.status_code == 403
    assert (
        '<p class="error" role="alert" id="send-error">Сейчас в этом чате могут писать только педагоги.</p>'
        in page_of(response)
    )
    assert ">\nМожно вопрос?</textarea>" in page_of(response)
    assert Message.objects.count() == 0


def test_another_class_chat_answers_404_and_stores_nothing():
    world = make_school_with_chats(students=1)
    other = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{other.parents_chat.pk}/"
    send(other.teacher, other.parents_chat, "Секретное объявление")

    assert client.get(url).status_code == 404
    assert client.get("/chats/999999/").status_code == 404
    assert client.post(url, {"body": "Привет", "client_id": "d" * 32}).status_code == 404
    assert client.post(f"{url}messages/1/delete/").status_code == 404
    assert client.post(f"{url}messages/1/react/", {"emoji": "👍"}).status_code == 404
    assert client.get(f"{url}messages/1/report/").status_code == 404
    assert "Секретное" not in page_of(client.get(url))
    assert list(Message.objects.values_list("body", flat=True)) == ["Секретное объявление"]
    assert Reaction.objects.count() == 0


def test_html_and_script_in_a_message_are_shown_as_text():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"
    body = '<script>alert("x")</script><img src=x onerror=alert(1)>\nвторая строка'
    client.post(url, {"body": body, "client_id": "e" * 32})

    html = page_of(client.get(url))

    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;<br>вторая строка" in html
    )


def test_times_are_shown_in_the_persons_time_zone():
    world = make_school_with_chats(students=1)
    message = send(world.teacher, world.parents_chat, "Доброе утро")
    moment = datetime.datetime(2026, 3, 2, 5, 7, tzinfo=datetime.UTC)
    Message.objects.filter(pk=message.pk).update(created_at=moment)
    parent = world.parents[0]
    User.objects.filter(pk=parent.pk).update(time_zone="Asia/Vladivostok")

    html = page_of(client_for(parent).get(f"/chats/{world.parents_chat.pk}/"))

    assert '<time datetime="2026-03-02T15:07:00+10:00">15:07</time>' in html
    assert 'data-time-zone="Asia/Vladivostok"' in html


def test_an_image_is_sent_with_the_form_and_shown_as_a_protected_thumbnail():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"
    upload = io.BytesIO(png_bytes())
    upload.name = "справка.png"

    response = client.post(url, {"body": "Справка", "client_id": "f" * 32, "attachment": upload})

    assert response.status_code == 302
    attachment = Attachment.objects.get()
    assert attachment.message == Message.objects.get(body="Справка")
    html = page_of(client.get(url))
    assert (
        f'<a href="/chats/files/{attachment.pk}/"><img src="/chats/files/{attachment.pk}/thumbnail/" alt="справка.png"'
        in html
    )
    assert client.get(f"/chats/files/{attachment.pk}/thumbnail/").status_code == 200
    stranger = make_school_with_chats(students=1).parents[0]
    assert client_for(stranger).get(f"/chats/files/{attachment.pk}/").status_code == 404


def test_a_file_sent_twice_with_one_form_is_stored_once():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    for _attempt in range(2):
        upload = io.BytesIO(png_bytes())
        upload.name = "photo.png"
        response = client.post(url, {"body": "", "client_id": "9" * 32, "attachment": upload})
        assert response["Location"] == f"{url}#m1"

    assert list(Message.objects.values_list("body", flat=True)) == ["photo.png"]
    assert Attachment.objects.count() == 1


def test_a_file_of_a_refused_type_is_refused_next_to_the_form():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    upload = io.BytesIO(b"MZ\x90\x00 not a document")
    upload.name = "homework.exe"

    response = client.post(
        f"/chats/{world.parents_chat.pk}/", {"body": "Домашка", "client_id": "8" * 32, "attachment": upload}
    )

    assert response.status_code == 415
    assert 'role="alert" id="send-error">' in page_of(response)
    assert (Message.objects.count(), Attachment.objects.count()) == (0, 0)


def test_reactions_are_toggled_by_a_form_and_counted():
    world = make_school_with_chats(students=2)
    send(world.teacher, world.parents_chat, "Собрание в пятницу")
    url = f"/chats/{world.parents_chat.pk}/"
    client_for(world.parents[1]).post(f"{url}messages/1/react/", {"emoji": "👍"})
    client = client_for(world.parents[0])

    response = client.post(f"{url}messages/1/react/", {"emoji": "👍"})

    assert response["Location"] == f"{url}#m1"
    html = page_of(client.get(url))
    assert '<button name="emoji" value="👍" aria-pressed="true">👍 2</button>' in html
    client.post(f"{url}messages/1/react/", {"emoji": "👍"})
    assert Reaction.objects.count() == 1


def test_a_moderator_pins_and_unpins_a_message():
    world = make_school_with_chats(students=1)
    send(world.teacher, world.parents_chat, "Расписание на четверть")
    client = client_for(world.teacher)
    url = f"/chats/{world.parents_chat.pk}/"

    client.post(f"{url}messages/1/pin/")

    assert Pin.objects.filter(chat=world.parents_chat).count() == 1
    html = page_of(client_for(world.parents[0]).get(url))
    assert f'<h2 id="pins-title">{ru("Pinned")}</h2>' in html
    assert f'<a href="{url}?before=2#m1">' in html
    assert client_for(world.parents[0]).post(f"{url}messages/1/pin/").status_code == 302
    assert Pin.objects.count() == 1
    client.post(f"{url}messages/1/pin/", {"action": "unpin"})
    assert Pin.objects.count() == 0


def test_a_teacher_creates_a_poll_and_a_parent_votes_with_the_form():
    world = make_school_with_chats(students=1)
    teacher_client = client_for(world.teacher)
    url = f"/chats/{world.parents_chat.pk}/"
    form_page = page_of(teacher_client.get(f"{url}polls/new/"))

    response = teacher_client.post(
        f"{url}polls/new/",
        {"question": "Когда удобно?", "options": "Пятница\n\nСуббота\n", "client_id": client_id_of(form_page)},
    )

    poll = Poll.objects.get()
    assert response["Location"] == f"{url}#m1"
    assert list(poll.options.values_list("text", flat=True)) == ["Пятница", "Суббота"]
    saturday = poll.options.get(text="Суббота")
    parent_client = client_for(world.parents[0])
    html = page_of(parent_client.get(url))
    assert f'action="{url}messages/1/polls/{poll.pk}/vote/"' in html
    assert f'<input type="radio" name="option" value="{saturday.pk}">' in html
    parent_client.post(f"{url}messages/1/polls/{poll.pk}/vote/", {"option": str(saturday.pk)})
    assert list(PollVote.objects.values_list("user_id", "option_id")) == [(world.parents[0].pk, saturday.pk)]
    assert f'value="{saturday.pk}" checked> Суббота <span class="help">— 1</span>' in page_of(parent_client.get(url))


def test_a_parent_cannot_create_a_poll():
    world = make_school_with_chats(students=1)
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    response = client.post(f"{url}polls/new/", {"question": "?", "options": "а\nб", "client_id": "1" * 32})

    assert response.status_code == 403
    assert (Poll.objects.count(), Message.objects.count()) == (0, 0)


def test_a_moderator_mutes_a_member_whose_page_then_says_so():
    world = make_school_with_chats(students=1)
    parent = world.parents[0]
    url = f"/chats/{world.parents_chat.pk}/"
    teacher_client = client_for(world.teacher)
    assert 'id="mute-' + str(parent.pk) + '"' in page_of(teacher_client.get(url))

    response = teacher_client.post(f"{url}mute/", {"user_id": parent.pk, "minutes": "60"})

    assert response["Location"] == f"{url}#members"
    member = ChatMember.objects.get(chat=world.parents_chat, user=parent)
    assert member.muted_until is not None
    parent_page = page_of(client_for(parent).get(url))
    assert '<p class="notice" id="send">Вам временно запрещено писать в этом чате.</p>' in parent_page
    assert client_for(parent).post(url, {"body": "А я всё равно", "client_id": "2" * 32}).status_code == 403
    assert Message.objects.count() == 0


def test_a_member_cannot_mute():
    world = make_school_with_chats(students=2)
    client = client_for(world.parents[0])

    client.post(f"/chats/{world.parents_chat.pk}/mute/", {"user_id": world.parents[1].pk, "minutes": "60"})

    assert ChatMember.objects.get(chat=world.parents_chat, user=world.parents[1]).muted_until is None


def test_the_author_edits_a_message_and_it_is_marked_edited():
    world = make_school_with_chats(students=1)
    send(world.parents[0], world.parents_chat, "Опечатка")
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    assert ">\nОпечатка</textarea>" in page_of(client.get(f"{url}messages/1/edit/"))
    response = client.post(f"{url}messages/1/edit/", {"body": "Без опечатки"})

    assert response["Location"] == f"{url}#m1"
    html = page_of(client.get(url))
    assert ">Без опечатки</p>" in html
    assert f'<span class="edited">{ru("(edited)")}</span>' in html
    other = client_for(world.teacher).post(f"{url}messages/1/edit/", {"body": "Чужое"})
    assert other.status_code == 403
    assert Message.objects.get().body == "Без опечатки"


def test_a_member_reports_a_message():
    world = make_school_with_chats(students=2)
    send(world.parents[1], world.parents_chat, "Грубость")
    client = client_for(world.parents[0])
    url = f"/chats/{world.parents_chat.pk}/"

    assert client.get(f"{url}messages/1/report/").status_code == 200
    response = client.post(f"{url}messages/1/report/", {"reason": "Оскорбление"})

    assert response["Location"] == f"{url}#m1"
    report = MessageReport.objects.get()
    assert (report.reporter_id, report.reason) == (world.parents[0].pk, "Оскорбление")


def test_the_page_of_a_chat_takes_as_many_queries_for_a_few_messages_as_for_many():
    world = make_school_with_chats(students=2)
    url = f"/chats/{world.parents_chat.pk}/"
    client = client_for(world.teacher)
    reacting = client_for(world.parents[0])

    def add_messages(count: int) -> None:
        for number in range(count):
            message = send(world.parents[number % 2], world.parents_chat, f"Сообщение {number}", reply_to_seq=1)
            reacting.post(f"{url}messages/{message.seq}/react/", {"emoji": "👍"})

    send(world.teacher, world.parents_chat, "Первое")
    add_messages(2)
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    add_messages(40)
    with CaptureQueriesContext(connection) as many:
        client.get(url)

    assert len(many) == len(few)


def test_channels_are_listed_on_their_own_page_and_opened_there():
    world = make_school_with_chats(students=1)
    parent = world.parents[0]
    channel = Chat.objects.create(kind=ChatKind.CHANNEL, title="Новости школы", organisation=world.school)
    ChatMember.objects.create(chat=channel, user=parent)
    client = client_for(parent)

    listed = client.get("/chats/")
    opened = client.get(f"/chats/{channel.pk}/")

    assert channel.pk not in [item.chat.pk for item in listed.context["chats"]]
    assert '<a href="/channels/">' in page_of(listed)
    assert (opened.status_code, opened["Location"]) == (302, f"/channels/{channel.pk}/")


def test_the_chat_list_takes_as_many_queries_for_a_few_chats_as_for_many():
    world = make_school_with_chats(students=1)
    teacher = world.teacher
    client = client_for(teacher)

    def add_direct_chats(count: int) -> None:
        for _number in range(count):
            other = make_member(organisation=world.school, role=Role.TEACHER)
            send(other, make_direct_chat(teacher, other), "Коллеги, добрый день")

    add_direct_chats(1)
    with CaptureQueriesContext(connection) as few:
        client.get("/chats/")
    add_direct_chats(10)
    with CaptureQueriesContext(connection) as many:
        response = client.get("/chats/")

    assert len(response.context["chats"]) == 14
    assert len(many) == len(few)


def test_a_message_to_a_teacher_after_office_hours_is_held_and_the_page_says_when_it_arrives():
    world = make_school_with_chats(students=1)
    parent, teacher = world.parents[0], world.teacher
    now = timezone.localtime(timezone.now(), zoneinfo.ZoneInfo("Europe/Moscow"))
    opens = (now + datetime.timedelta(hours=2)).time().replace(second=0, microsecond=0)
    closes = (now + datetime.timedelta(hours=3)).time().replace(second=0, microsecond=0)
    moderation.office_hours_set(
        user=teacher, starts_at=opens, ends_at=closes, weekdays="1234567", time_zone="Europe/Moscow"
    )
    chat = make_direct_chat(parent, teacher)
    client = client_for(parent)
    url = f"/chats/{chat.pk}/"

    response = client.post(url, {"body": "Вопрос по домашнему заданию", "client_id": "7" * 32}, follow=True)

    assert response.redirect_chain == [(url, 302)]
    held = ScheduledMessage.objects.get()
    assert (held.body, held.delivered_message) == ("Вопрос по домашнему заданию", None)
    assert Message.objects.count() == 0
    with translation.override("ru"):
        expected = date_format(timezone.localtime(held.deliver_at, zoneinfo.ZoneInfo("Europe/Moscow")), "j E, H:i")
        notice = translation.gettext(
            "The teacher takes messages during office hours. Your message will be delivered on %(when)s."
        ) % {"when": expected}
    assert escape(notice) in page_of(response)
