"""The chat and channel pages go live: in headless Chromium against a real
daphne, what one person does (a reaction, a pin, a poll, an edit, a
deletion, announcement mode, an acknowledgement) appears on the other
person's open page without a reload, in the page's own wording."""

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection, transaction

from accounts.models import User
from chats import events
from chats.models import Acknowledgement, Chat, ChatMember, Pin, PollVote, Reaction
from chats.services import channels, content, moderation
from chats.services import chats as chat_services
from chats.tests.factories import make_school_with_chats, send
from tests.browser.test_chats_browser import TIMEOUT_MS, UNLABELLED_CONTROLS, open_live, signed_in

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def elsewhere(call: Callable[[], Any]) -> Any:
    """Run a service as another person would, off this thread: Playwright
    keeps an event loop here, where the services' after-commit events
    (published with async_to_sync) cannot be sent."""

    def run() -> Any:
        try:
            return call()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(run).result()


def no_problems(problems: list[str]) -> list[str]:
    return problems


def test_reactions_pins_polls_edits_and_deletions_appear_live_for_the_other(live_daphne, browser, artifacts_dir):
    world = make_school_with_chats(students=1)
    User.objects.filter(pk=world.teacher.pk).update(is_verified_educator=True)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    send(teacher, chat, "Собрание в четверг в 18:00")
    send(parent, chat, "Спасибо, <i>будем</i>!")
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    teacher_context = signed_in(browser, live_daphne, teacher)
    parent_context = signed_in(browser, live_daphne, parent)
    problems: list[str] = []
    teacher_page = open_live(teacher_context, url, problems)
    parent_page = open_live(parent_context, url, problems)
    parent_list = open_live(parent_context, f"{live_daphne.url}/chats/", problems)
    for page in (teacher_page, parent_page, parent_list):
        page.evaluate("window.notReloaded = true")

    # The parent reacts from the menu of the teacher's message.
    parent_page.locator("#m1 .actions summary").click()
    parent_page.locator("#m1 .actions .reactions button[value='👍']").click()
    teacher_page.wait_for_selector("#m1 [data-reactions] button[value='👍']", timeout=TIMEOUT_MS)
    assert teacher_page.locator("#m1 [data-reactions] button").inner_text() == "👍 1"
    assert teacher_page.locator("#m1 [data-reactions] button").get_attribute("aria-pressed") == "false"
    parent_page.wait_for_selector("#m1 [data-reactions] button[aria-pressed=true]", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m1 [data-reactions] button").inner_text() == "👍 1"
    assert list(Reaction.objects.values_list("user_id", "emoji")) == [(parent.pk, "👍")]

    # The teacher, a moderator, pins the parent's message.
    teacher_page.locator("#m2 .actions summary").click()
    teacher_page.locator("#m2 [data-pin]").click()
    parent_page.wait_for_selector("#pins li[data-seq='2']", timeout=TIMEOUT_MS)
    assert parent_page.locator("#pins h2").inner_text() == "Закреплённые"
    assert parent_page.locator("#pins li").inner_text() == f"{parent.display_name}: Спасибо, <i>будем</i>!"
    assert parent_page.locator("#pins i").count() == 0
    assert parent_page.locator("#m2 [data-pinned]").is_visible()
    # In the teacher's menu (closed after the click) "Pin" became "Unpin".
    teacher_page.wait_for_selector("#m2 [data-unpin]:not([hidden])", state="attached", timeout=TIMEOUT_MS)
    assert teacher_page.locator("#m2 [data-pin]").get_attribute("hidden") == ""
    assert Pin.objects.filter(chat=chat, message__seq=2).count() == 1

    # A poll arrives, the parent votes with its form, the teacher sees the count.
    poll, _created = elsewhere(
        lambda: content.poll_create(
            user=teacher, chat_id=chat.pk, question="Когда удобнее?", options=["Четверг", "Пятница"], client_id="p1"
        )
    )
    parent_page.wait_for_selector("#m3 form.poll", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m3 legend").inner_text() == "Когда удобнее?"
    parent_page.get_by_label("Пятница").check()
    parent_page.locator("#m3 [data-vote]").click()
    teacher_page.wait_for_selector("#m3 [data-voted]:has-text('Проголосовали: 1')", timeout=TIMEOUT_MS)
    friday = poll.options.get(text="Пятница")
    assert teacher_page.locator("#m3 label.option").nth(1).inner_text().strip() == "Пятница — 1"
    assert list(PollVote.objects.values_list("user_id", "option_id")) == [(parent.pk, friday.pk)]
    # The teacher, its author, closes it: the parent's form closes.
    teacher_page.locator("#m3 [data-poll-close] button").click()
    parent_page.wait_for_selector("#m3 [data-closed]:not([hidden])", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m3 [data-vote]").is_hidden()
    assert parent_page.locator("#m3 input[name=option]").first.is_disabled()

    # An edit and a deletion.
    elsewhere(lambda: content.message_edit(user=teacher, chat_id=chat.pk, seq=1, body="Собрание в пятницу в 18:00"))
    parent_page.wait_for_selector("#m1 .body:has-text('в пятницу')", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m1 .edited").inner_text() == "(изменено)"
    teacher_page.locator("#m2 .actions summary").click()
    teacher_page.locator("#m2 [data-delete] button").click()
    parent_page.wait_for_selector("#m2 .body.deleted", timeout=TIMEOUT_MS)
    assert parent_page.locator("#m2 .body").inner_text() == "Сообщение удалено"
    assert parent_page.locator("#m2 .foot").count() == 0
    assert parent_page.locator("#pins").is_hidden()

    # Announcement mode: the parent's form gives way to the server's refusal.
    parent_page.get_by_label(re.compile("^(Сообщение|Message)$")).first.fill("Набираю вопрос")
    teacher_page.locator("#members summary").click()
    teacher_page.locator("[data-announcement-form] button[value='1']").click()
    parent_page.wait_for_selector("#posting-refusal", timeout=TIMEOUT_MS)
    assert parent_page.locator("#posting-refusal").inner_text() == "Сейчас в этом чате могут писать только педагоги."
    assert parent_page.locator("#send").is_hidden()
    assert parent_page.locator("[data-announcement]").is_visible()
    teacher_page.wait_for_selector("[data-announcement-form] button[value='0']:not([hidden])", timeout=TIMEOUT_MS)
    elsewhere(lambda: moderation.chat_announcement_mode_set(actor=teacher, chat_id=chat.pk, is_on=False))
    parent_page.wait_for_selector("#send:not([hidden])", timeout=TIMEOUT_MS)
    assert parent_page.locator("#id_body").input_value() == "Набираю вопрос"

    # A new chat appears in the parent's list; a renamed one changes its name.
    group = elsewhere(
        lambda: chat_services.group_chat_create(user=teacher, title="Поездка в музей", member_ids=[parent.pk])
    )
    parent_list.wait_for_selector(f"[data-chat='{group.pk}']", timeout=TIMEOUT_MS)
    assert parent_list.locator(f"[data-chat='{group.pk}'] .chat-title").inner_text() == "Поездка в музей"
    elsewhere(lambda: chat_services.chat_rename(actor=teacher, chat_id=group.pk, title="Поездка в Эрмитаж"))
    parent_list.wait_for_selector(f"[data-chat='{group.pk}'] .chat-title:has-text('Эрмитаж')", timeout=TIMEOUT_MS)

    for page in (teacher_page, parent_page, parent_list):
        assert page.evaluate("window.notReloaded") is True
        assert page.evaluate(UNLABELLED_CONTROLS) == []
    parent_page.screenshot(path=str(artifacts_dir / "chat-live-events-parent.png"), full_page=True)
    teacher_page.screenshot(path=str(artifacts_dir / "chat-live-events-teacher.png"), full_page=True)
    assert no_problems(problems) == []
    teacher_context.close()
    parent_context.close()


def test_a_post_appears_in_the_channel_and_is_confirmed_without_a_reload(live_daphne, browser, artifacts_dir):
    world = make_school_with_chats(students=1)
    school, parent, teacher = world.school, world.parents[0], world.teacher
    channel = channels.channel_create(actor=world.administrator, organisation=school, title="Объявления школы")
    channels.channel_editor_add(actor=world.administrator, chat_id=channel.pk, user_id=teacher.pk)
    url = f"{live_daphne.url}/channels/{channel.pk}/"
    teacher_context = signed_in(browser, live_daphne, teacher)
    parent_context = signed_in(browser, live_daphne, parent)
    problems: list[str] = []
    teacher_page = open_live(teacher_context, url, problems)
    parent_page = open_live(parent_context, url, problems)
    for page in (teacher_page, parent_page):
        page.evaluate("window.notReloaded = true")

    elsewhere(
        lambda: channels.channel_post(
            user=teacher,
            chat_id=channel.pk,
            body="Родительское собрание <b>в четверг</b>",
            client_id="c1",
            requires_acknowledgement=True,
        )
    )

    parent_page.wait_for_selector("#p1", timeout=TIMEOUT_MS)
    assert parent_page.locator("#p1 .body").inner_text() == "Родительское собрание <b>в четверг</b>"
    assert parent_page.locator("#p1 .author").inner_text() == teacher.display_name
    assert parent_page.locator("#p1 [data-private-reply]").count() == 1
    teacher_page.wait_for_selector("#p1 [data-summary]", timeout=TIMEOUT_MS)
    subscribers = ChatMember.objects.active().filter(chat=channel, role="member").count()
    assert teacher_page.locator("#p1 [data-summary]").inner_text() == f"Прочитали 0 из {subscribers} · ознакомились: 0"
    assert teacher_page.locator("#p1 [data-asks-acknowledgement]").count() == 1
    assert teacher_page.locator("#p1 [data-private-reply]").count() == 0

    parent_page.locator("#p1 [data-acknowledge] button").click()
    parent_page.wait_for_selector("#p1 [data-acknowledged]", timeout=TIMEOUT_MS)
    assert parent_page.locator("#p1 [data-acknowledged]").inner_text() == "Вы ознакомились"
    assert list(Acknowledgement.objects.values_list("user_id", "message__seq")) == [(parent.pk, 1)]

    elsewhere(
        lambda: content.message_edit(user=teacher, chat_id=channel.pk, seq=1, body="Родительское собрание в пятницу")
    )
    parent_page.wait_for_selector("#p1 .body:has-text('в пятницу')", timeout=TIMEOUT_MS)
    assert parent_page.locator("#p1 .edited").inner_text() == "(изменено)"
    elsewhere(
        lambda: chat_services.chat_rename(actor=world.administrator, chat_id=channel.pk, title="Новости школы №1")
    )
    parent_page.wait_for_selector("#chat-title:has-text('Новости школы №1')", timeout=TIMEOUT_MS)

    for page in (teacher_page, parent_page):
        assert page.evaluate("window.notReloaded") is True
        assert page.evaluate(UNLABELLED_CONTROLS) == []
    parent_page.screenshot(path=str(artifacts_dir / "channel-live-parent.png"), full_page=True)
    assert no_problems(problems) == []
    teacher_context.close()
    parent_context.close()


def test_muting_and_removing_a_member_show_live_on_both_pages(live_daphne, browser):
    world = make_school_with_chats(students=2)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    send(teacher, chat, "Добрый день!")
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    teacher_context = signed_in(browser, live_daphne, teacher)
    parent_context = signed_in(browser, live_daphne, parent)
    problems: list[str] = []
    teacher_page = open_live(teacher_context, url, problems)
    parent_page = open_live(parent_context, url, problems)
    for page in (teacher_page, parent_page):
        page.evaluate("window.notReloaded = true")
    members = ChatMember.objects.active().filter(chat=chat).count()

    # The teacher mutes the parent with the members' form.
    teacher_page.locator("#members summary").click()
    teacher_page.locator(f"#mute-{parent.pk}").select_option("60")
    teacher_page.locator(f"#member-list li[data-user='{parent.pk}'] .mute button").click()
    parent_page.wait_for_selector("#posting-refusal", timeout=TIMEOUT_MS)
    assert parent_page.locator("#posting-refusal").inner_text() == "Вам временно запрещено писать в этом чате."
    assert parent_page.locator("#send").is_hidden()
    teacher_page.wait_for_selector(f"li[data-user='{parent.pk}'] [data-muted]:not([hidden])", timeout=TIMEOUT_MS)
    assert teacher_page.locator(f"li[data-user='{parent.pk}'] [data-muted]").inner_text() == "не может писать"
    elsewhere(lambda: moderation.chat_member_mute(actor=teacher, chat_id=chat.pk, user_id=parent.pk, minutes=0))
    parent_page.wait_for_selector("#send:not([hidden])", timeout=TIMEOUT_MS)
    teacher_page.wait_for_selector(f"li[data-user='{parent.pk}'] [data-muted][hidden]", state="attached")

    # The other parent is removed: the list and the counts follow; their page says so.
    other = world.parents[1]
    other_page = open_live(signed_in(browser, live_daphne, other), url, problems)
    elsewhere(lambda: moderation.chat_member_remove(actor=teacher, chat_id=chat.pk, user_id=other.pk))
    other_page.wait_for_selector("#chat-gone:not([hidden])", timeout=TIMEOUT_MS)
    assert other_page.locator("#chat-gone").inner_text() == "Вы больше не участник этого чата."
    assert other_page.locator("#send").is_hidden()
    teacher_page.wait_for_selector(f"#member-list li[data-user='{other.pk}']", state="detached", timeout=TIMEOUT_MS)
    assert teacher_page.locator("[data-members-summary]").inner_text() == f"Участники ({members - 1})"
    assert parent_page.locator("[data-members-count]").inner_text() == f"Участников: {members - 1}"

    # The chat is closed for good (as the directory does at the end of a year).
    def archive() -> None:
        with transaction.atomic():
            Chat.objects.filter(pk=chat.pk).update(is_archived=True)
            events.event_publish(chat=chat.pk, event={"type": "chat.archived", "chat": chat.pk})

    elsewhere(archive)
    parent_page.wait_for_selector("#chat-gone:not([hidden])", timeout=TIMEOUT_MS)
    assert parent_page.locator("#chat-gone").inner_text() == "Этот чат закрыт."
    assert parent_page.locator("#send").is_hidden()

    for page in (teacher_page, parent_page):
        assert page.evaluate("window.notReloaded") is True
    assert no_problems(problems) == []
    teacher_context.close()
    parent_context.close()
