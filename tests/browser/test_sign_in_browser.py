"""A person signs in by phone in headless Chromium, reading the code from the
SMS outbox as they would from their phone, and opens the directory."""

import json
import re

import pytest

from organisations.tests.factories import make_organisation

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def last_code(outbox, phone: str) -> str:
    lines = [json.loads(line) for line in outbox.read_text().splitlines() if line.strip()]
    texts = [line["text"] for line in lines if line["to"] == phone]
    assert texts, "no SMS to " + phone
    (code,) = re.findall(r"(?<!\d)\d{6}(?!\d)", texts[-1])
    return code


def test_sign_in_by_phone_then_open_the_directory(live_daphne, page, sms_outbox, artifacts_dir):
    from accounts.models import User
    from organisations.services import membership_create

    school = make_organisation(short_name="МБОУ СОШ № 7", kind="school", is_verified=True)
    teacher = User.objects.create_user("+79001112233", first_name="Мария", last_name="Иванова")
    membership_create(actor=None, user=teacher, organisation=school, role="teacher")

    page.goto(live_daphne.url + "/login/")
    page.get_by_label(re.compile("Номер телефона|Phone", re.I)).fill("8 (900) 111-22-33")
    page.locator("main form button[type=submit]").first.click()
    page.get_by_label(re.compile("Код|Code", re.I)).fill(last_code(sms_outbox, "+79001112233"))
    page.locator("main form button[type=submit]").first.click()

    page.goto(live_daphne.url + "/directory/")
    page.get_by_label(re.compile("Название|Name", re.I)).first.fill("СОШ № 7")
    page.locator("main form button[type=submit]").first.click()

    assert page.locator("html").get_attribute("lang") == "ru"
    assert page.get_by_role("link", name=re.compile("МБОУ СОШ № 7")).count() == 1
    page.screenshot(path=str(artifacts_dir / "directory-after-sign-in.png"), full_page=True)
