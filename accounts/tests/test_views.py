import re
from datetime import timedelta

import pytest
from django.test import Client

from accounts.models import LoginCode, User
from accounts.tests.factories import code_in, make_login_code, make_user, next_phone, sms_messages
from common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def browser():
    return Client()


def test_sign_in_end_to_end_without_javascript(browser, sms_outbox):
    page = browser.get("/login/?next=/profile/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'autocomplete="tel"' in html
    assert 'name="next" value="/profile/"' in html

    sent = browser.post("/login/", {"action": "phone", "phone": "8 (900) 555-44-33", "next": "/profile/"})
    assert (sent.status_code, sent["Location"]) == (302, "/login/?next=%2Fprofile%2F")
    code_page = browser.get(sent["Location"]).content.decode()
    assert "+7 900 555-44-33" in code_page
    assert 'autocomplete="one-time-code"' in code_page
    assert 'inputmode="numeric"' in code_page
    (message,) = sms_messages(sms_outbox)
    assert message["to"] == "+79005554433"

    signed_in = browser.post("/login/", {"action": "code", "code": code_in(message["text"]), "next": "/profile/"})

    assert (signed_in.status_code, signed_in["Location"]) == (302, "/profile/")
    user = User.objects.get()
    assert str(user.phone) == "+79005554433"
    assert int(browser.session["_auth_user_id"]) == user.pk
    assert "accounts_login_phone" not in browser.session
    assert browser.get("/profile/").status_code == 200


def test_sign_in_goes_home_without_next_and_ignores_foreign_next(browser, sms_outbox):
    browser.post("/login/", {"action": "phone", "phone": "+79005554433"})
    code = code_in(sms_messages(sms_outbox)[0]["text"])

    response = browser.post("/login/", {"action": "code", "code": code, "next": "https://evil.example/"})

    assert (response.status_code, response["Location"]) == (302, "/")


def test_a_wrong_code_is_shown_next_to_the_field(browser):
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    session = browser.session
    session["accounts_login_phone"] = phone
    session.save()

    response = browser.post("/login/", {"action": "code", "code": "654321"})

    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'<input[^>]*name="code"[^>]*aria-invalid="true"', html)
    assert re.search(r'<input[^>]*aria-describedby="id_code_helptext id_code_error"', html)
    assert 'id="id_code_error"' in html
    assert '<label for="id_code">' in html
    assert User.objects.count() == 0
    assert "_auth_user_id" not in browser.session


def test_an_invalid_phone_is_shown_next_to_the_field(browser, sms_outbox):
    response = browser.post("/login/", {"action": "phone", "phone": "12345"})

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_phone_error"' in html
    assert re.search(r'<input[^>]*name="phone"[^>]*aria-invalid="true"', html)
    assert LoginCode.objects.count() == 0
    assert sms_messages(sms_outbox) == []


def test_send_again_respects_the_pause_and_shows_the_wait(browser, sms_outbox):
    browser.post("/login/", {"action": "phone", "phone": "+79005554433"})

    page = browser.get("/login/").content.decode()
    too_soon = browser.post("/login/", {"action": "resend"})

    assert re.search(r'id="resend-status">[^<]*\b(5\d|60)\b', page)
    assert too_soon.status_code == 429
    assert 55 <= int(too_soon["Retry-After"]) <= 60
    assert 'role="alert"' in too_soon.content.decode()
    assert len(sms_messages(sms_outbox)) == 1

    LoginCode.objects.update(created_at=LoginCode.objects.get().created_at - timedelta(seconds=61))
    sent_again = browser.post("/login/", {"action": "resend"})

    assert sent_again.status_code == 302
    assert len(sms_messages(sms_outbox)) == 2
    assert LoginCode.objects.filter(is_superseded=False).count() == 1


def test_asking_again_for_the_same_number_goes_on_to_the_code(browser, sms_outbox):
    browser.post("/login/", {"action": "phone", "phone": "+79005554433"})
    browser.post("/login/", {"action": "change"})

    response = browser.post("/login/", {"action": "phone", "phone": "+79005554433"})

    assert response.status_code == 302
    assert browser.session["accounts_login_phone"] == "+79005554433"
    assert len(sms_messages(sms_outbox)) == 1


def test_use_another_number_goes_back_to_step_one(browser, sms_outbox):
    browser.post("/login/", {"action": "phone", "phone": "+79005554433"})

    response = browser.post("/login/", {"action": "change"})

    assert response.status_code == 302
    assert "accounts_login_phone" not in browser.session
    assert 'name="phone"' in browser.get("/login/").content.decode()


def test_the_daily_limit_is_shown_on_the_phone_form(browser, sms_outbox):
    phone = next_phone()
    for hours in (20, 16, 12, 8, 4):
        make_login_code(phone=phone, age=timedelta(hours=hours))

    response = browser.post("/login/", {"action": "phone", "phone": phone})

    assert response.status_code == 429
    assert 'id="id_phone_error"' in response.content.decode()
    assert sms_messages(sms_outbox) == []


def test_a_signed_in_visitor_is_sent_on(browser):
    browser.force_login(make_user())

    response = browser.get("/login/?next=/profile/")

    assert (response.status_code, response["Location"]) == (302, "/profile/")


def test_logout_is_post_only(browser):
    browser.force_login(make_user())

    assert browser.get("/logout/").status_code == 405
    assert "_auth_user_id" in browser.session
    response = browser.post("/logout/")

    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert "_auth_user_id" not in browser.session


def test_profile_needs_sign_in(browser):
    response = browser.get("/profile/")

    assert (response.status_code, response["Location"]) == (302, "/login/?next=/profile/")


def test_profile_shows_the_name_with_the_badge_and_the_phone(browser):
    user = make_user(phone="+79001234567", first_name="Мария", last_name="Иванова", is_verified_educator=True)
    browser.force_login(user)

    html = browser.get("/profile/").content.decode()

    assert '<span class="user-name">Мария Иванова</span>' in html
    assert 'class="verified"' in html
    assert "+7 900 123-45-67" in html
    assert 'autocomplete="family-name"' in html


def test_profile_form_saves_and_switches_the_language(browser):
    user = make_user()
    browser.force_login(user)

    form = {"first_name": "\u202eМария", "last_name": "Иванова", "middle_name": "", "language": "en"}

    response = browser.post("/profile/", {**form, "time_zone": "Asia/Omsk"})

    assert (response.status_code, response["Location"]) == (302, "/profile/")
    assert response.cookies["django_language"].value == "en"
    user.refresh_from_db()
    assert (user.first_name, user.last_name, user.language, user.time_zone) == ("Мария", "Иванова", "en", "Asia/Omsk")


def test_profile_form_errors_change_nothing(browser):
    user = make_user(first_name="Мария")
    browser.force_login(user)

    form = {"first_name": "М" * 81, "last_name": "", "middle_name": "", "language": "ru"}

    response = browser.post("/profile/", {**form, "time_zone": "Mars/X"})

    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="id_first_name_error"' in html
    assert 'id="id_time_zone_error"' in html
    user.refresh_from_db()
    assert user.first_name == "Мария"
    assert AuditEvent.objects.count() == 0


def test_sign_out_everywhere_from_the_profile(browser):
    user = make_user()
    other_browser = Client()
    other_browser.force_login(user)
    browser.force_login(user)

    response = browser.post("/profile/logout-everywhere/")

    assert (response.status_code, response["Location"]) == (302, "/login/")
    assert browser.get("/profile/").status_code == 302
    assert other_browser.get("/profile/").status_code == 302
    assert User.objects.get().session_generation == 1


def test_login_page_is_in_russian_by_default(browser):
    html = browser.get("/login/").content.decode()

    assert '<html lang="ru">' in html
