from datetime import timedelta

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken, LoginCode, User
from accounts.services import account_delete, profile_photo_set, user_unblock
from accounts.tests.factories import (
    code_in,
    image_bytes,
    make_login_code,
    make_token,
    make_user,
    sms_messages,
    uploaded,
)
from common.errors import ApplicationError
from common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)
    return client


def account_state(user: User) -> dict:
    user = User.objects.get(pk=user.pk)
    return {
        "phone": str(user.phone),
        "names": (user.first_name, user.last_name, user.middle_name),
        "is_active": user.is_active,
        "deleted_at": user.deleted_at,
        "session_generation": user.session_generation,
        "photo": user.photo.name,
        "tokens": ApiToken.objects.filter(user=user).count(),
    }


def sign_in(client: APIClient, outbox, phone: str) -> dict:
    assert client.post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code == 200
    code = code_in(sms_messages(outbox)[-1]["text"])
    response = client.post("/api/v1/auth/token/", {"phone": phone, "code": code}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_deleting_with_the_code_from_the_sms(sms_outbox, django_capture_on_commit_callbacks):
    phone = "+79001112233"
    body = sign_in(APIClient(), sms_outbox, phone)
    user = User.objects.get(phone=phone)
    User.objects.filter(pk=user.pk).update(first_name="Анна", last_name="Петрова", time_zone="Asia/Omsk")
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    _other, other_key = make_token(user=user)
    browser = APIClient()
    browser.force_login(user)
    client = token_client(body["token"])
    assert client.post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code == 429  # resend pause
    LoginCode.objects.update(created_at=LoginCode.objects.get().created_at - timedelta(minutes=2))
    assert client.post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code == 200
    code = code_in(sms_messages(sms_outbox)[-1]["text"])

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/v1/me/delete/", {"code": code}, format="json")

    assert response.status_code == 204
    deleted = User.objects.get(pk=user.pk)
    assert deleted.phone is None
    assert (deleted.first_name, deleted.last_name, deleted.middle_name, deleted.time_zone) == ("", "", "", "")
    assert deleted.photo.name == ""
    assert deleted.is_active is False
    assert deleted.deleted_at is not None
    assert deleted.has_usable_password() is False
    assert deleted.display_name == "Удалённый пользователь"
    assert str(deleted) == "Удалённый пользователь"
    assert ApiToken.objects.count() == 0
    assert client.get("/api/v1/me/").status_code == 401
    assert token_client(other_key).get("/api/v1/me/").status_code == 401
    assert browser.get("/api/v1/me/").status_code == 401
    event = AuditEvent.objects.get(action="account.delete")
    assert (event.actor_id, event.object_id, event.object_repr) == (user.pk, str(user.pk), "Удалённый пользователь")
    assert "Анна" not in str(event.changes) and phone not in str(event.changes)


def test_after_deletion_the_number_signs_up_as_a_new_account(sms_outbox):
    phone = "+79001112244"
    user, _key = make_token(user=make_user(phone=phone, first_name="Анна"))
    # Sent two minutes ago: past the resend pause for the new sign-up.
    make_login_code(phone=phone, code="654321", age=timedelta(minutes=2))
    account_delete(user=user, code="654321")

    body = sign_in(APIClient(), sms_outbox, phone)

    new_user = User.objects.get(phone=phone)
    assert new_user.pk != user.pk
    assert body["user"]["id"] == new_user.pk
    assert body["user"]["first_name"] == ""
    assert User.objects.get(pk=user.pk).is_active is False
    assert User.objects.get(pk=user.pk).phone is None
    assert list(User.objects.filter(phone__isnull=True).values_list("pk", flat=True)) == [user.pk]
    assert AuditEvent.objects.filter(action="user_register", object_id=str(new_user.pk)).count() == 1


def test_two_deleted_accounts_do_not_collide():
    first, second = make_user(), make_user()
    for user in (first, second):
        make_login_code(phone=str(user.phone), code="111111")
        account_delete(user=user, code="111111")

    assert User.objects.filter(phone__isnull=True, deleted_at__isnull=False).count() == 2


@pytest.mark.parametrize(
    ("code_fields", "typed", "expected_code"),
    [
        ({}, "000000", "code_wrong"),
        ({"age": timedelta(minutes=6)}, "123456", "code_expired"),
        ({"attempts": 5}, "123456", "code_burned"),
        ({"is_superseded": True}, "123456", "code_invalid"),
    ],
)
def test_a_refused_code_changes_nothing(code_fields, typed, expected_code):
    user, key = make_token(user=make_user(first_name="Анна", last_name="Петрова"))
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    make_login_code(phone=str(user.phone), code="123456", **code_fields)
    before = account_state(user)
    audit_before = list(AuditEvent.objects.values_list("id", flat=True))

    response = token_client(key).post("/api/v1/me/delete/", {"code": typed}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == expected_code
    assert account_state(user) == before
    assert list(AuditEvent.objects.values_list("id", flat=True)) == audit_before
    assert token_client(key).get("/api/v1/me/").status_code == 200


def test_a_wrong_code_counts_as_an_attempt_like_at_sign_in():
    user, key = make_token()
    make_login_code(phone=str(user.phone), code="123456")

    response = token_client(key).post("/api/v1/me/delete/", {"code": "000000"}, format="json")

    assert response.json() == {
        "detail": "Неверный код. Осталось попыток: 4.",
        "code": "code_wrong",
        "attempts_left": 4,
    }
    assert LoginCode.objects.get().attempts == 1


def test_another_numbers_code_does_not_delete():
    user, key = make_token()
    other = make_user()
    make_login_code(phone=str(other.phone), code="123456")
    before = account_state(user)

    response = token_client(key).post("/api/v1/me/delete/", {"code": "123456"}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, "code_invalid")
    assert account_state(user) == before
    assert LoginCode.objects.get().used_at is None


def test_a_malformed_code_is_a_field_error_that_costs_no_attempt():
    user, key = make_token()
    make_login_code(phone=str(user.phone), code="123456")

    response = token_client(key).post("/api/v1/me/delete/", {"code": "12ab"}, format="json")

    assert response.status_code == 400
    assert sorted(response.json()) == ["code"]
    assert LoginCode.objects.get().attempts == 0
    assert User.objects.get(pk=user.pk).is_active is True


def test_delete_needs_authentication():
    response = APIClient().post("/api/v1/me/delete/", {"code": "123456"}, format="json")

    assert response.status_code == 401


def test_a_used_code_cannot_delete_twice():
    user = make_user()
    make_login_code(phone=str(user.phone), code="123456")
    account_delete(user=user, code="123456")

    with pytest.raises(ApplicationError) as refusal:
        account_delete(user=User.objects.get(pk=user.pk), code="123456")

    assert refusal.value.code == "account_deleted"
    assert AuditEvent.objects.filter(action="account.delete").count() == 1


def test_admin_rights_go_with_the_account():
    user = make_user(is_staff=True, is_superuser=True)
    make_login_code(phone=str(user.phone), code="123456")

    account_delete(user=user, code="123456")

    deleted = User.objects.get(pk=user.pk)
    assert (deleted.is_staff, deleted.is_superuser) == (False, False)


def test_a_deleted_account_cannot_be_unblocked():
    user = make_user()
    make_login_code(phone=str(user.phone), code="123456")
    account_delete(user=user, code="123456")

    with pytest.raises(ApplicationError) as refusal:
        user_unblock(actor=None, user=User.objects.get(pk=user.pk))

    assert refusal.value.code == "account_deleted"
    assert User.objects.get(pk=user.pk).is_active is False


def test_the_export_and_photo_of_a_deleted_account_are_gone(media_root, django_capture_on_commit_callbacks):
    user, key = make_token()
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    make_login_code(phone=str(user.phone), code="123456")

    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=user, code="123456")

    assert [path for path in media_root.rglob("*") if path.is_file()] == []
    assert token_client(key).get("/api/v1/me/export/").status_code == 401


# --- The profile page --------------------------------------------------------------


def test_deleting_on_the_profile_page_in_two_steps_without_javascript(sms_outbox):
    user = make_user(phone="+79001112255")
    browser = Client()
    browser.force_login(user)
    page = browser.get("/profile/").content.decode()
    assert "Удалить аккаунт" in page
    assert 'action="/profile/delete/code/"' in page
    assert 'action="/profile/delete/"' not in page

    sent = browser.post("/profile/delete/code/")

    assert (sent.status_code, sent["Location"]) == (302, "/profile/#delete-account")
    (message,) = sms_messages(sms_outbox)
    assert message["to"] == "+79001112255"
    page = browser.get("/profile/").content.decode()
    assert 'action="/profile/delete/"' in page
    assert 'name="delete-code"' in page

    code = code_in(message["text"])
    wrong = browser.post("/profile/delete/", {"delete-code": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400
    assert User.objects.get(pk=user.pk).is_active is True

    deleted = browser.post("/profile/delete/", {"delete-code": code})

    assert (deleted.status_code, deleted["Location"]) == (302, "/login/")
    assert User.objects.get(pk=user.pk).deleted_at is not None
    assert "_auth_user_id" not in browser.session
    assert browser.get("/profile/").status_code == 302


def test_the_profile_page_shows_a_wrong_code_next_to_the_field():
    user = make_user()
    make_login_code(phone=str(user.phone), code="123456")
    browser = Client()
    browser.force_login(user)
    before = account_state(user)

    response = browser.post("/profile/delete/", {"delete-code": "000000"})

    assert response.status_code == 400
    assert "Неверный код. Осталось попыток: 4." in response.content.decode()
    assert account_state(user) == before
    assert browser.get("/profile/").status_code == 200


def test_the_admins_unblock_action_skips_a_deleted_account():
    superuser = make_user(is_staff=True, is_superuser=True)
    user = make_user()
    make_login_code(phone=str(user.phone), code="123456")
    account_delete(user=user, code="123456")
    browser = Client()
    browser.force_login(superuser)

    response = browser.post("/admin/accounts/user/", {"action": "unblock", "_selected_action": [user.pk]})

    assert response.status_code == 302
    assert User.objects.get(pk=user.pk).is_active is False
    assert AuditEvent.objects.filter(action="user_unblock").count() == 0
    assert browser.get(f"/admin/accounts/user/{user.pk}/change/").status_code == 200
