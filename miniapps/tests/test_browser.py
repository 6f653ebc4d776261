"""The showcase, a mini-app and the diary in headless Chromium against a
real daphne. The mini-app is examples/miniapp_verify.py serving on a local
port: it verifies the parameters the portal signed, inside the sandboxed
iframe, and refuses the same launch replayed. The diary is filled and read
with JavaScript switched off."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import User
from miniapps.models import Mark
from miniapps.tests.factories import make_app
from organisations.models import Role
from organisations.tests.factories import make_school_with_class
from tests.browser.test_chats_browser import TIMEOUT_MS, UNLABELLED_CONTROLS, signed_in
from tests.live import free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

TODAY = timezone.localdate()
VERIFIER = Path(settings.BASE_DIR) / "examples" / "miniapp_verify.py"


class VerifierApp:
    def __init__(self, *, secret: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [sys.executable, str(VERIFIER), "--secret=" + secret, "--max-age", "300", "--serve", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline().startswith("serving on")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture
def local_apps_allowed(settings) -> None:
    settings.MINIAPPS_ALLOW_HTTP_LOCALHOST = True


@pytest.fixture
def verifier_app(local_apps_allowed) -> Iterator[tuple]:
    # Registered first with a placeholder, so the app can be given the secret.
    app = make_app(slug="checker", name="Проверка запуска", audience=(Role.STUDENT,), url="http://127.0.0.1:1/")
    server = VerifierApp(secret=app.secret)
    app.url = server.url
    app.save(update_fields=["url"])
    try:
        yield app, server
    finally:
        server.stop()


def problems_of(page) -> list[str]:
    problems: list[str] = []
    page.on(
        "console",
        lambda message: (
            problems.append(message.text + " " + message.location["url"]) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: problems.append(str(error)))
    return problems


def test_the_showcase_launches_a_mini_app_that_verifies_its_parameters(
    live_daphne, browser, verifier_app, artifacts_dir
):
    _app, server = verifier_app
    world = make_school_with_class(students=1)
    make_app(slug="teachers-only", name="Журнал учителя", audience=(Role.TEACHER,))
    context = signed_in(browser, live_daphne, world.student)
    page = context.new_page()
    problems = problems_of(page)

    page.goto(live_daphne.url + "/")
    assert page.url == live_daphne.url + "/education/"
    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.locator("#apps li a").all_inner_texts() == ["Проверка запуска"]
    assert page.evaluate(UNLABELLED_CONTROLS) == []
    page.screenshot(path=str(artifacts_dir / "showcase.png"), full_page=True)
    page.get_by_role("link", name="Проверка запуска").click()

    assert page.url == live_daphne.url + "/apps/checker/"
    frame = page.frame_locator("#miniapp")
    result = frame.locator("#result")
    result.wait_for(timeout=TIMEOUT_MS)
    assert result.inner_text() == f"verified: user {world.student.pk} as student of organisation {world.school.pk}"
    assert page.locator("#miniapp").get_attribute("sandbox") == "allow-scripts allow-forms allow-same-origin"
    page.screenshot(path=str(artifacts_dir / "miniapp-launched.png"), full_page=True)
    # Neither the portal nor the little app has a favicon; nothing else may fail (CSP refusals would show here).
    assert [problem for problem in problems if not problem.endswith("/favicon.ico")] == []

    # The same launch replayed (a copied link) is refused by the app.
    src = page.locator("#miniapp").get_attribute("src")
    assert src is not None and src.startswith(server.url + "?app=checker&")
    replay = context.new_page()
    replay.goto(src)
    assert replay.locator("#result").inner_text() == "rejected: nonce already used"
    # A forged role is refused too.
    forged = context.new_page()
    forged.goto(src.replace("role=student", "role=teacher"))
    assert forged.locator("#result").inner_text() == "rejected: bad signature"
    context.close()


def test_a_person_outside_the_audience_cannot_open_the_app(live_daphne, browser, verifier_app):
    world = make_school_with_class(students=1)
    context = signed_in(browser, live_daphne, world.parent)
    page = context.new_page()

    response = page.goto(live_daphne.url + "/apps/checker/")

    assert response is not None and response.status == 403
    assert page.locator("iframe").count() == 0
    assert page.locator("p.error").inner_text() in (
        "This app is not meant for your role.",
        "Это приложение не предназначено для вашей роли.",
    )
    context.close()


def test_the_diary_works_with_javascript_switched_off(live_daphne, browser, artifacts_dir):
    world = make_school_with_class(students=1)
    make_app(
        slug="my-school",
        name="Моя школа",
        url="/diary/",
        is_builtin=True,
        audience=(Role.STUDENT, Role.TEACHER, Role.PARENT),
    )
    User.objects.filter(pk=world.teacher.pk).update(first_name="Анна", last_name="Кузнецова")
    teacher_context = signed_in(browser, live_daphne, world.teacher, java_script_enabled=False)
    teacher = teacher_context.new_page()

    teacher.goto(live_daphne.url + "/")
    teacher.get_by_role("link", name="Моя школа").click()
    assert teacher.url == live_daphne.url + "/diary/"
    teacher.get_by_role("link", name=world.group.name).click()
    assert teacher.url == live_daphne.url + f"/diary/groups/{world.group.pk}/"
    # <details> needs no JavaScript to open.
    teacher.locator("#mark-form").locator("xpath=..").locator("summary").click()
    teacher.locator("#id_mark-student").select_option(str(world.student.pk))
    teacher.locator("#id_mark-subject").fill("Физика")
    teacher.locator("#id_mark-date").fill(TODAY.isoformat())
    teacher.locator("#id_mark-value").select_option("4")
    teacher.locator("#id_mark-comment").fill("Лабораторная работа")
    teacher.locator("#mark-form button[type=submit]").click()

    assert teacher.url == live_daphne.url + f"/diary/groups/{world.group.pk}/"
    assert teacher.locator("#marks td.mark").all_inner_texts() == ["4"]
    assert list(Mark.objects.values_list("student_id", "subject", "value")) == [(world.student.pk, "Физика", "4")]
    teacher.screenshot(path=str(artifacts_dir / "diary-teacher.png"), full_page=True)

    student_context = signed_in(browser, live_daphne, world.student, java_script_enabled=False)
    student = student_context.new_page()
    student.goto(live_daphne.url + "/diary/")
    assert student.url == live_daphne.url + f"/diary/students/{world.student.pk}/"
    assert student.locator("#marks tbody tr").all_inner_texts() == [
        TODAY.strftime("%d.%m.%Y") + "\tФизика\t4\tЛабораторная работа"
    ]
    assert student.locator("form[action*='/marks/']").count() == 0
    assert re.search("(Мой дневник|My diary)", student.locator("h1").inner_text())
    teacher_context.close()
    student_context.close()
