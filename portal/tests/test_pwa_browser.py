"""The installable web app in headless Chromium against a real daphne: the
service worker answers a page that cannot load with the offline page and
keeps nothing personal, and a new message shows a browser notification
while the tab is hidden (only "New message" in a child's account)."""

import io
import re

import pytest
from PIL import Image

from accounts.models import User
from chats.tests.factories import make_school_with_chats
from tests.core_pages import session_cookie
from tests.live import problems_watch

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TIMEOUT_MS = 10_000
MESSAGE_LABEL = re.compile("^(Сообщение|Message)$")
KEPT = {"/offline/", "/static/css/parta.css", "/static/js/pwa.js"} | {
    "/static/icons/icon.svg",
    "/static/icons/icon-192.png",
}

# Every entry of every cache of the site, as paths.
CACHED_PATHS = """async () => {
  const paths = [];
  for (const name of await caches.keys()) {
    for (const request of await (await caches.open(name)).keys()) paths.push(new URL(request.url).pathname);
  }
  return paths;
}"""

# What the page would show: each notification recorded, none shown. Through
# the worker's registration (`via: "worker"`) or the page's own Notification.
RECORD_NOTIFICATIONS = """() => {
  window.shown = [];
  ServiceWorkerRegistration.prototype.showNotification = function (title, options) {
    window.shown.push({ via: "worker", title, ...options });
    return Promise.resolve();
  };
  const permission = Notification.permission;
  window.Notification = function (title, options) {
    window.shown.push({ via: "page", title, ...options });
    window.lastNotification = this;
  };
  window.Notification.permission = permission;
}"""

HIDE_TAB = """(state) => Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state })"""


def signed_in(browser, server, user: User, **options):
    context = browser.new_context(locale="ru-RU", viewport={"width": 1024, "height": 900}, **options)
    context.add_cookies([session_cookie(user, url=server.url)])
    return context


def open_page(context, url: str, problems: list[str]):
    page = context.new_page()
    problems_watch(page, problems)
    page.goto(url)
    return page


def wait_for_worker(page) -> None:
    """Until the service worker is active and controls the page."""
    page.wait_for_function("() => navigator.serviceWorker && !!navigator.serviceWorker.controller", timeout=TIMEOUT_MS)


def send_from(page, text: str) -> None:
    page.get_by_label(MESSAGE_LABEL).first.fill(text)
    page.locator("#send button[type=submit]").click()


def test_the_manifest_and_its_icons_answer_with_their_declared_sizes(live_daphne, browser):
    context = browser.new_context(locale="ru-RU")
    problems: list[str] = []
    page = open_page(context, live_daphne.url + "/login/", problems)
    href = page.locator("link[rel=manifest]").get_attribute("href")

    response = context.request.get(live_daphne.url + href)

    assert response.status == 200
    assert response.headers["content-type"] == "application/manifest+json"
    manifest = response.json()
    assert (manifest["name"], manifest["start_url"], manifest["display"]) == ("Парта", "/education/", "standalone")
    for icon in manifest["icons"]:
        answer = context.request.get(live_daphne.url + icon["src"])
        assert answer.status == 200, icon["src"]
        assert answer.headers["content-type"] == icon["type"]
        if icon["type"] == "image/png":
            with Image.open(io.BytesIO(answer.body())) as image:
                assert "x".join(map(str, image.size)) == icon["sizes"]
    favicon = context.request.get(live_daphne.url + "/favicon.ico")
    assert (favicon.status, favicon.headers["content-type"]) == (200, "image/x-icon")
    wait_for_worker(page)
    assert problems == []
    context.close()


def test_offline_a_page_shows_the_offline_page_and_no_personal_page_is_cached(live_daphne, browser, artifacts_dir):
    world = make_school_with_chats(students=1)
    chat, parent = world.parents_chat, world.parents[0]
    context = signed_in(browser, live_daphne, parent)
    problems: list[str] = []
    page = open_page(context, live_daphne.url + "/chats/", problems)
    wait_for_worker(page)
    page.goto(f"{live_daphne.url}/chats/{chat.pk}/")
    page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    # Online, nothing fails: not the favicon either.
    assert problems == []

    context.set_offline(True)
    page.goto(f"{live_daphne.url}/lessons/")

    assert page.url == f"{live_daphne.url}/lessons/"
    assert page.locator("h1").inner_text() in {"Нет соединения с интернетом", "No internet connection"}
    # Its stylesheet came from the cache too.
    button = page.locator("a[data-offline]")
    assert button.evaluate("(link) => getComputedStyle(link).backgroundColor") == "rgb(11, 87, 164)"
    # Anyone's page, kept without cookies: not the person's menu.
    assert page.locator("a[href='/profile/']").count() == 0
    assert set(page.evaluate(CACHED_PATHS)) == KEPT
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    page.screenshot(path=str(artifacts_dir / "offline-320.png"), full_page=True)

    # "Try again" is the page asked for; back online, it comes by itself.
    assert button.evaluate("(link) => link.href") == f"{live_daphne.url}/lessons/"
    context.set_offline(False)
    page.locator("a[data-offline]").wait_for(state="detached", timeout=TIMEOUT_MS)
    assert page.url == f"{live_daphne.url}/lessons/"
    page.wait_for_selector("main h1", timeout=TIMEOUT_MS)

    # Signed out, the caches still hold only what anyone may see.
    page.goto(live_daphne.url + "/profile/")
    page.locator("header form[action='/logout/'] button").click()
    page.wait_for_url(re.compile(r"/login/"), timeout=TIMEOUT_MS)
    assert set(page.evaluate(CACHED_PATHS)) == KEPT
    context.close()


def test_a_new_message_in_a_hidden_tab_shows_a_notification(live_daphne, browser):
    world = make_school_with_chats(students=1)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    parent_context = signed_in(browser, live_daphne, parent)
    parent_context.grant_permissions(["notifications"], origin=live_daphne.url)
    teacher_context = signed_in(browser, live_daphne, teacher)
    problems: list[str] = []
    parent_page = open_page(parent_context, url, problems)
    wait_for_worker(parent_page)
    parent_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    teacher_page = open_page(teacher_context, url, problems)
    teacher_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    parent_page.evaluate(RECORD_NOTIFICATIONS)
    parent_page.evaluate(HIDE_TAB, "hidden")

    send_from(teacher_page, "Завтра собрание в 18:00, кабинет 21. Приходите, пожалуйста, без опозданий: " + "о" * 60)
    parent_page.wait_for_function("() => window.shown.length === 1", timeout=TIMEOUT_MS)

    [shown] = parent_page.evaluate("window.shown")
    assert shown["via"] == "worker"
    assert shown["title"] == chat.title
    body = f"{teacher.display_name}: Завтра собрание в 18:00, кабинет 21. Приходите, пожалуйста, без опозданий: "
    assert shown["body"] == body + "о" * (99 - len(body) + len(teacher.display_name) + 2) + "…"
    assert shown["tag"] == f"parta-chat-{chat.pk}"
    assert shown["data"] == {"url": f"/chats/{chat.pk}/"}
    assert shown["icon"] == live_daphne.url + "/static/icons/icon-192.png"

    # One's own message: no notification; the next one of someone else: one.
    send_from(parent_page, "Спасибо, будем")
    parent_page.wait_for_selector("#m2", timeout=TIMEOUT_MS)
    send_from(teacher_page, "Ждём вас")
    parent_page.wait_for_selector("#m3", timeout=TIMEOUT_MS)
    parent_page.wait_for_function("() => window.shown.length >= 2", timeout=TIMEOUT_MS)
    assert [note["body"] for note in parent_page.evaluate("window.shown")][1:] == [f"{teacher.display_name}: Ждём вас"]

    # The tab in view: the message is on the screen, no notification.
    parent_page.evaluate(HIDE_TAB, "visible")
    send_from(teacher_page, "До встречи")
    parent_page.wait_for_selector("#m4", timeout=TIMEOUT_MS)
    assert len(parent_page.evaluate("window.shown")) == 2
    assert problems == []
    parent_context.close()
    teacher_context.close()


def test_a_child_s_notification_says_only_new_message(live_daphne, browser):
    world = make_school_with_chats(students=1)
    chat, student, teacher = world.students_chat, world.students[0], world.teacher
    student.refresh_from_db()
    assert student.is_safe_mode
    url = f"{live_daphne.url}/chats/{chat.pk}/"
    student_context = signed_in(browser, live_daphne, student)
    student_context.grant_permissions(["notifications"], origin=live_daphne.url)
    teacher_context = signed_in(browser, live_daphne, teacher)
    problems: list[str] = []
    student_page = open_page(student_context, url, problems)
    wait_for_worker(student_page)
    student_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    teacher_page = open_page(teacher_context, url, problems)
    teacher_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    student_page.evaluate(RECORD_NOTIFICATIONS)
    student_page.evaluate(HIDE_TAB, "hidden")

    send_from(teacher_page, "Контрольная перенесена на пятницу")
    student_page.wait_for_function("() => window.shown.length === 1", timeout=TIMEOUT_MS)

    [shown] = student_page.evaluate("window.shown")
    assert shown["title"] == "Новое сообщение"
    assert "body" not in shown
    assert "Контрольная" not in str(shown)
    assert teacher.display_name not in str(shown)
    assert chat.title not in str(shown)
    assert shown["data"] == {"url": f"/chats/{chat.pk}/"}
    assert problems == []
    student_context.close()
    teacher_context.close()


def test_without_a_worker_the_page_s_own_notification_opens_the_chat(live_daphne, browser):
    world = make_school_with_chats(students=1)
    chat, parent, teacher = world.parents_chat, world.parents[0], world.teacher
    parent_context = signed_in(browser, live_daphne, parent, service_workers="block")
    parent_context.grant_permissions(["notifications"], origin=live_daphne.url)
    teacher_context = signed_in(browser, live_daphne, teacher)
    problems: list[str] = []
    chat_list = open_page(parent_context, live_daphne.url + "/chats/", problems)
    chat_list.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    teacher_page = open_page(teacher_context, f"{live_daphne.url}/chats/{chat.pk}/", problems)
    teacher_page.wait_for_selector("body[data-socket=open]", timeout=TIMEOUT_MS)
    chat_list.evaluate(RECORD_NOTIFICATIONS)
    chat_list.evaluate(HIDE_TAB, "hidden")

    send_from(teacher_page, "Родительское собрание в четверг")
    chat_list.wait_for_function("() => window.shown.length === 1", timeout=TIMEOUT_MS)

    [shown] = chat_list.evaluate("window.shown")
    assert shown["via"] == "page"
    # The chat list knows every chat's title.
    assert shown["title"] == chat.title
    assert shown["body"] == f"{teacher.display_name}: Родительское собрание в четверг"
    chat_list.evaluate("window.lastNotification.close = () => {}; window.lastNotification.onclick()")
    chat_list.wait_for_url(f"{live_daphne.url}/chats/{chat.pk}/", timeout=TIMEOUT_MS)
    assert problems == []
    parent_context.close()
    teacher_context.close()


def test_the_profile_asks_the_browser_on_a_click_and_tells_the_state(live_daphne, browser):
    world = make_school_with_chats(students=1)
    context = signed_in(browser, live_daphne, world.parents[0])
    problems: list[str] = []
    page = open_page(context, live_daphne.url + "/profile/", problems)
    box = page.locator("[data-browser-notifications]")
    box.wait_for(state="visible", timeout=TIMEOUT_MS)
    button = box.get_by_role("button")
    assert button.is_visible()
    assert box.locator("[data-state=default]").is_visible()

    # Headless Chromium answers the question itself: no window to click.
    context.grant_permissions(["notifications"], origin=live_daphne.url)
    button.click()
    box.locator("[data-state=granted]").wait_for(state="visible", timeout=TIMEOUT_MS)
    assert not button.is_visible()
    assert box.locator("[data-state]:visible").count() == 1
    assert problems == []

    plain = signed_in(browser, live_daphne, world.parents[0], java_script_enabled=False).new_page()
    plain.goto(live_daphne.url + "/profile/")
    assert not plain.locator("[data-browser-notifications]").is_visible()
    plain.context.close()
    context.close()
