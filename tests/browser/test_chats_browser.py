"""Chats in headless Chromium against a real daphne: two people with the same
chat open see each other's messages arrive live, and the same chat works
with JavaScript switched off."""

import json
import re

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from chats.models import ChatMember, Message
from chats.tests.factories import make_school_with_chats
from tests.live import problems_watch

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TIMEOUT_MS = 10_000
MESSAGE_LABEL = re.compile("^(Сообщение|Message)$")


def signed_in(browser, server, user: User, *, java_script_enabled: bool = True):
    """A browser context signed in as `user`: a session made in the test
    database (as `Client.force_login` does) and its cookie handed over."""
    client = Client()
    client.force_login(user)
    context = browser.new_context(
        locale="ru-RU", viewport={"width": 1024, "height": 900}, java_script_enabled=java_script_enabled
    )
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "value": session, "url": server.url}])
    return context


def open_live(context, url: str, problems: list[str] | None = None):
    page = context.new_page()
    if problems is not None:
        problems_watch(page, problems)
    page.goto(url)
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    return page


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll("input:not([type=hidden]), select, textarea, button")]
  .filter((control) => !(control.labels && control.labels.length) && !control.getAttribute("aria-label")
    && !control.textContent.trim())
  .map((control) => control.outerHTML)"""


def test_a_message_sent_by_one_appears_live_for_the_other(live_daphne, browser, artifacts_dir):
    world = make_school_with_chats(students=1)
    User.objects.filter(pk=world.teacher.pk).update(is_verified_educator=True)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    teacher_context = signed_in(browser, live_daphne, teacher)
    parent_context = signed_in(browser, live_daphne, parent)
    problems: list[str] = []
    teacher_page = open_live(teacher_context, url, problems)
    teacher_list = open_live(teacher_context, f"{live_daphne.url}/chats/", problems)
    parent_page = open_live(parent_context, url, problems)
    # A mark that a reload would wipe out.
    teacher_page.evaluate("window.notReloaded = true")
    parent_page.evaluate("window.notReloaded = true")

    parent_page.get_by_label(MESSAGE_LABEL).first.type("Добрый вечер! <b>Вопрос</b> про собрание")
    teacher_page.wait_for_selector("#typing:not(:empty)", timeout=TIMEOUT_MS)
    assert parent.display_name in teacher_page.locator("#typing").inner_text()
    parent_page.locator("#send button[type=submit]").click()

    teacher_page.wait_for_selector("#m1", timeout=TIMEOUT_MS)
    parent_page.wait_for_selector("#m1", timeout=TIMEOUT_MS)
    assert teacher_page.locator("#m1 .body").inner_text() == "Добрый вечер! <b>Вопрос</b> про собрание"
    assert teacher_page.locator("#m1 .author").inner_text() == parent.display_name
    assert teacher_page.locator("#m1 b").count() == 0
    assert parent_page.locator("#id_body").input_value() == ""
    assert teacher_page.evaluate("window.notReloaded") is True
    assert parent_page.evaluate("window.notReloaded") is True
    teacher_list.wait_for_selector(f"[data-chat='{chat.pk}'] [data-count]:has-text('1')", timeout=TIMEOUT_MS)
    assert "Вопрос" in teacher_list.locator(f"[data-chat='{chat.pk}'] [data-preview]").inner_text()

    # The answer, a reply, goes the other way; the verified cap comes with the name.
    teacher_page.goto(url + "?reply=1")
    teacher_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    teacher_page.get_by_label(MESSAGE_LABEL).first.fill("Собрание в 18:00, кабинет 21")
    teacher_page.locator("#send button[type=submit]").click()
    parent_page.wait_for_selector("#m2", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m2 .body").inner_text() == "Собрание в 18:00, кабинет 21"
    # The quote as the server draws it: who wrote what.
    quote = parent_page.locator("#m2 .quote").inner_text()
    assert quote.endswith(f"{parent.display_name}: Добрый вечер! <b>Вопрос</b> про собрание")
    assert parent_page.locator("#m2 .author svg.cap").count() == 1
    assert parent_page.evaluate("window.notReloaded") is True
    parent_page.screenshot(path=str(artifacts_dir / "chat-live-parent.png"), full_page=True)
    teacher_page.screenshot(path=str(artifacts_dir / "chat-live-teacher.png"), full_page=True)

    messages = list(Message.objects.filter(chat=chat).order_by("seq").values_list("seq", "author_id", "reply_to__seq"))
    assert messages == [(1, parent.pk, None), (2, teacher.pk, 1)]
    assert problems == []
    for page in (teacher_page, parent_page, teacher_list):
        assert page.evaluate(UNLABELLED_CONTROLS) == []
        assert page.locator("html").get_attribute("lang") == "ru"
    teacher_context.close()
    parent_context.close()


def test_the_chat_works_with_javascript_switched_off(live_daphne, browser, artifacts_dir):
    world = make_school_with_chats(students=1)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    teacher_context = signed_in(browser, live_daphne, teacher)
    teacher_page = open_live(teacher_context, url)
    plain_context = signed_in(browser, live_daphne, parent, java_script_enabled=False)
    plain = plain_context.new_page()

    plain.goto(live_daphne.url + "/")
    assert plain.url == live_daphne.url + "/education/"
    plain.get_by_role("link", name=re.compile("^(Чаты|Chats)$")).click()
    assert plain.url == live_daphne.url + "/chats/"
    plain.get_by_role("link", name=chat.title).click()
    plain.get_by_label(MESSAGE_LABEL).first.fill("Пишу без JavaScript")
    plain.locator("#send button[type=submit]").click()

    assert plain.url == url + "#m1"
    assert plain.locator("#m1 .body").inner_text() == "Пишу без JavaScript"
    # Someone with JavaScript on sees it arrive.
    teacher_page.wait_for_selector("#m1", timeout=TIMEOUT_MS)
    assert teacher_page.locator("#m1 .body").inner_text() == "Пишу без JavaScript"

    # A reply by link and form, then the teacher's answer read after a reload.
    plain.locator("#m1 .reply-link").click()
    assert re.search(r"\?reply=1#send$", plain.url)
    plain.get_by_label(MESSAGE_LABEL).first.fill("И ещё вопрос")
    plain.locator("#send button[type=submit]").click()
    assert plain.locator("#m2 .quote").inner_text().endswith("Пишу без JavaScript")
    teacher_page.get_by_label(MESSAGE_LABEL).first.fill("Отвечаю")
    teacher_page.locator("#send button[type=submit]").click()
    teacher_page.wait_for_selector("#m3", timeout=TIMEOUT_MS)
    plain.reload()
    assert plain.locator("#m3 .body").inner_text() == "Отвечаю"
    plain.screenshot(path=str(artifacts_dir / "chat-without-javascript.png"), full_page=True)

    assert list(Message.objects.filter(chat=chat).order_by("seq").values_list("body", flat=True)) == [
        "Пишу без JavaScript",
        "И ещё вопрос",
        "Отвечаю",
    ]
    assert ChatMember.objects.get(chat=chat, user=parent).last_read_seq == 3
    teacher_context.close()
    plain_context.close()


def test_when_the_socket_does_not_answer_the_form_is_posted_the_plain_way(live_daphne, browser):
    world = make_school_with_chats(students=1)
    chat, parent = world.parents_chat, world.parents[0]
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    context = signed_in(browser, live_daphne, parent)
    page = context.new_page()
    frames: list[str] = []

    def silent_server(socket) -> None:
        # Says hello, then swallows every frame: no ack ever comes.
        socket.on_message(lambda frame: frames.append(frame))
        socket.send(json.dumps({"type": "hello", "user": {"id": parent.pk}, "chats": [], "limits": {}}))

    page.route_web_socket(re.compile(r"/ws/$"), silent_server)
    page.goto(url)
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)

    page.get_by_label(MESSAGE_LABEL).first.fill("Сообщение без ответа сокета")
    page.locator("#send button[type=submit]").click()
    page.wait_for_url(url + "#m1", timeout=15_000)

    assert page.locator("#m1 .body").inner_text() == "Сообщение без ответа сокета"
    sent = [frame for frame in frames if '"type":"send"' in frame]
    assert len(sent) == 1
    # The socket's frame and the posted form carried one client_id: one message.
    message = Message.objects.get(chat=chat)
    assert f'"client_id":"{message.client_id}"' in sent[0]
    context.close()
