from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from accounts.models import ApiToken, LoginCode, User
from accounts.tests.factories import code_in, make_login_code, make_token, make_user, next_phone, sms_messages
from common.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def client():
    return APIClient()


def sign_in(client: APIClient, outbox, phone: str) -> dict:
    assert client.post("/api/v1/auth/code/", {"phone": phone}, format="json").status_code == 200
    code = code_in(sms_messages(outbox)[-1]["text"])
    response = client.post("/api/v1/auth/token/", {"phone": phone, "code": code}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_code_request_answers_resend_after_and_sends_one_sms(client, sms_outbox):
    response = client.post("/api/v1/auth/code/", {"phone": "8 (900) 123-45-67"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"resend_after": 60}
    (message,) = sms_messages(sms_outbox)
    assert message["to"] == "+79001234567"
    code_in(message["text"])


def test_the_code_gives_a_token_that_works_on_me(client, sms_outbox):
    phone = next_phone()

    body = sign_in(client, sms_outbox, phone)

    user = User.objects.get()
    assert sorted(body) == ["token", "user"]
    assert len(body["token"]) >= 40
    assert body["user"] == {
        "id": user.pk,
        "phone": phone,
        "first_name": "",
        "last_name": "",
        "middle_name": "",
        "display_name": "Пользователь " + str(user.pk),
        "photo_url": None,
        "language": "ru",
        "time_zone": "",
        "is_verified_educator": False,
        "is_name_flagged": False,
        "is_safe_mode": False,
        "memberships": [],
        "guardianships": [],
    }
    token = ApiToken.objects.get()
    assert token.user == user
    assert body["token"] not in token.key_hash
    me = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + body["token"])
    assert me.status_code == 200
    assert me.json() == body["user"]


@pytest.mark.parametrize("phone", ["12345", "", "+7 900 123 45 6", "телефон"])
def test_an_invalid_phone_is_a_field_error(client, sms_outbox, phone):
    response = client.post("/api/v1/auth/code/", {"phone": phone}, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["phone"]
    assert len(response.json()["phone"]) == 1
    assert LoginCode.objects.count() == 0
    assert sms_messages(sms_outbox) == []


def test_malformed_json_is_a_400_and_changes_nothing(client, sms_outbox):
    response = client.post("/api/v1/auth/code/", '{"phone": "+7900', content_type="application/json")
    token_response = client.post("/api/v1/auth/token/", "[1, 2", content_type="application/json")

    assert response.status_code == 400
    assert "detail" in response.json()
    assert token_response.status_code == 400
    assert LoginCode.objects.count() == 0
    assert sms_messages(sms_outbox) == []


def test_a_json_list_instead_of_an_object_is_a_400(client, sms_outbox):
    response = client.post("/api/v1/auth/code/", [1, 2], format="json")

    assert response.status_code == 400
    assert LoginCode.objects.count() == 0


def test_resend_within_60_seconds_is_429_with_retry_after_and_no_second_sms(client, sms_outbox):
    phone = next_phone()
    client.post("/api/v1/auth/code/", {"phone": phone}, format="json")

    response = client.post("/api/v1/auth/code/", {"phone": phone}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "resend_too_soon"
    assert response.json()["detail"]
    assert 55 <= int(response["Retry-After"]) <= 60
    assert len(sms_messages(sms_outbox)) == 1
    assert LoginCode.objects.count() == 1


def test_the_sixth_code_in_a_day_is_429(client, sms_outbox):
    phone = next_phone()
    for hours in (20, 16, 12, 8, 4):
        make_login_code(phone=phone, age=timedelta(hours=hours))

    response = client.post("/api/v1/auth/code/", {"phone": phone}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "daily_limit"
    assert 4 * 3600 - 10 <= int(response["Retry-After"]) <= 4 * 3600
    assert sms_messages(sms_outbox) == []
    assert LoginCode.objects.count() == 5


def test_the_per_ip_limit_is_429(client, sms_outbox, settings):
    settings.LOGIN_IP_CODE_RATE = "3/hour"
    for _ in range(3):
        assert client.post("/api/v1/auth/code/", {"phone": next_phone()}, format="json").status_code == 200

    response = client.post("/api/v1/auth/code/", {"phone": next_phone()}, format="json")
    other_address = client.post("/api/v1/auth/code/", {"phone": next_phone()}, format="json", REMOTE_ADDR="10.1.1.1")

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert other_address.status_code == 200
    assert len(sms_messages(sms_outbox)) == 4


def test_the_per_ip_token_limit_is_429(client, settings):
    settings.LOGIN_IP_TOKEN_RATE = "2/hour"
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    for _ in range(2):
        client.post("/api/v1/auth/token/", {"phone": phone, "code": "000000"}, format="json")

    response = client.post("/api/v1/auth/token/", {"phone": phone, "code": "123456"}, format="json")

    assert response.status_code == 429
    assert response.json()["code"] == "rate_limited"
    assert "Retry-After" in response
    assert ApiToken.objects.count() == 0


def token_refusal(client, phone: str, code: str):
    response = client.post("/api/v1/auth/token/", {"phone": phone, "code": code}, format="json")
    assert ApiToken.objects.count() == 0
    return response.status_code, response.json()


def test_a_wrong_code_is_refused(client):
    phone = next_phone()
    make_login_code(phone=phone, code="123456")

    status, body = token_refusal(client, phone, "123450")

    assert status == 400
    assert body["code"] == "code_wrong"
    assert body["attempts_left"] == 4
    assert User.objects.count() == 0


def test_an_expired_code_is_refused(client):
    phone = next_phone()
    login_code = make_login_code(phone=phone, code="123456")
    LoginCode.objects.filter(pk=login_code.pk).update(
        created_at=login_code.created_at - timedelta(minutes=6), expires_at=login_code.expires_at - timedelta(minutes=6)
    )

    status, body = token_refusal(client, phone, "123456")

    assert (status, body["code"]) == (400, "code_expired")
    assert User.objects.count() == 0


def test_a_reused_code_is_refused(client, sms_outbox):
    phone = next_phone()
    sign_in(client, sms_outbox, phone)
    code = code_in(sms_messages(sms_outbox)[-1]["text"])
    ApiToken.objects.all().delete()

    status, body = token_refusal(client, phone, code)

    assert (status, body["code"]) == (400, "code_invalid")


def test_another_numbers_code_is_refused(client):
    phone, other = next_phone(), next_phone()
    make_login_code(phone=other, code="123456")

    status, body = token_refusal(client, phone, "123456")

    assert (status, body["code"]) == (400, "code_invalid")
    assert User.objects.count() == 0


def test_the_code_is_burned_after_five_wrong_tries(client):
    phone = next_phone()
    make_login_code(phone=phone, code="123456")
    answers = [token_refusal(client, phone, "00000" + str(index))[1]["code"] for index in range(5)]

    status, body = token_refusal(client, phone, "123456")

    assert answers == ["code_wrong"] * 5
    assert (status, body["code"]) == (400, "code_burned")
    assert User.objects.count() == 0


@pytest.mark.parametrize("code", ["12345", "1234567", "abcdef", ""])
def test_a_malformed_code_is_a_field_error_that_costs_no_attempt(client, code):
    phone = next_phone()
    make_login_code(phone=phone, code="123456")

    status, body = token_refusal(client, phone, code)

    assert status == 400
    assert list(body) == ["code"]
    assert LoginCode.objects.get().attempts == 0


def test_a_blocked_account_gets_403(client):
    user = make_user(is_active=False)
    make_login_code(phone=str(user.phone), code="123456")

    status, body = token_refusal(client, str(user.phone), "123456")

    assert (status, body["code"]) == (403, "account_blocked")


def test_sms_failure_is_503(client, settings):
    settings.SMS_BACKEND = "http"
    settings.SMS_GATEWAY_URL = "http://127.0.0.1:9/"  # the discard port: nothing listens
    settings.SMS_GATEWAY_TIMEOUT = 2

    response = client.post("/api/v1/auth/code/", {"phone": next_phone()}, format="json")

    assert response.status_code == 503
    assert response.json()["code"] == "sms_unavailable"
    assert LoginCode.objects.count() == 0


def test_me_needs_authentication(client):
    response = client.get("/api/v1/me/")

    assert response.status_code == 401


def test_me_patch_updates_the_profile(client):
    user, key = make_token()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.patch(
        "/api/v1/me/", {"first_name": " Анна\u200f ", "last_name": "Петрова", "time_zone": "Asia/Omsk"}, format="json"
    )

    assert response.status_code == 200
    body = response.json()
    assert (body["first_name"], body["last_name"], body["display_name"]) == ("Анна", "Петрова", "Анна Петрова")
    assert (body["language"], body["time_zone"]) == ("ru", "Asia/Omsk")
    user.refresh_from_db()
    assert (user.first_name, user.time_zone) == ("Анна", "Asia/Omsk")
    assert AuditEvent.objects.filter(action="profile_update", object_id=str(user.pk)).count() == 1


def test_me_patch_refuses_bad_fields_and_changes_nothing(client):
    user, key = make_token()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.patch(
        "/api/v1/me/", {"first_name": "А" * 81, "time_zone": "Mars/Olympus", "language": "xx"}, format="json"
    )

    assert response.status_code == 400
    assert sorted(response.json()) == ["first_name", "language", "time_zone"]
    user.refresh_from_db()
    assert (user.first_name, user.time_zone, user.language) == ("", "", "ru")
    assert AuditEvent.objects.count() == 0


def test_me_patch_cannot_grant_the_badge(client):
    user, key = make_token()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.patch("/api/v1/me/", {"is_verified_educator": True, "is_safe_mode": False}, format="json")

    assert response.status_code == 200
    assert response.json()["is_verified_educator"] is False
    user.refresh_from_db()
    assert user.is_verified_educator is False


def test_me_lists_memberships_from_organisations(client):
    from organisations.services import membership_create
    from organisations.tests.factories import make_organisation

    user, key = make_token()
    school = make_organisation(short_name="Школа № 1", kind="school")
    membership_create(actor=None, user=user, organisation=school, role="teacher")
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    body = client.get("/api/v1/me/").json()

    assert [membership["organisation"]["short_name"] for membership in body["memberships"]] == ["Школа № 1"]
    assert body["guardianships"] == []


def test_logout_revokes_only_this_token(client):
    user, key = make_token()
    _, other_key = make_token(user=user)
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.post("/api/v1/auth/logout/")

    assert response.status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + other_key).status_code == 200


def test_logout_all_ends_every_token_and_browser_session(client):
    user, key = make_token()
    _, other_key = make_token(user=user)
    browser = APIClient()
    browser.force_login(user)
    assert browser.get("/api/v1/me/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.post("/api/v1/auth/logout-all/")

    assert response.status_code == 204
    assert client.get("/api/v1/me/").status_code == 401
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + other_key).status_code == 401
    assert browser.get("/api/v1/me/").status_code == 401
    assert ApiToken.objects.count() == 0


def test_every_accounts_operation_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    paths = schema["paths"]
    assert sorted(method for method in paths["/api/v1/auth/code/"]) == ["post"]
    assert sorted(paths["/api/v1/auth/code/"]["post"]["responses"]) == ["200", "400", "429", "503"]
    assert sorted(paths["/api/v1/auth/token/"]["post"]["responses"]) == ["200", "400", "403", "429"]
    assert sorted(paths["/api/v1/auth/logout/"]["post"]["responses"]) == ["204", "401"]
    assert sorted(paths["/api/v1/auth/logout-all/"]["post"]["responses"]) == ["204", "401"]
    assert sorted(paths["/api/v1/me/"]) == ["get", "patch"]
    assert paths["/api/v1/auth/code/"]["post"].get("security") in (None, [])
    me = schema["components"]["schemas"]["Me"]["properties"]
    assert {"id", "phone", "display_name", "is_verified_educator", "memberships", "guardianships"} <= set(me)


def test_the_photo_export_and_deletion_operations_document_their_refusals(client):
    paths = client.get("/api/schema/", {"format": "json"}).json()["paths"]

    assert sorted(paths["/api/v1/me/photo/"]) == ["delete", "put"]
    assert sorted(paths["/api/v1/me/photo/"]["put"]["responses"]) == ["200", "400", "401", "413", "415"]
    assert sorted(paths["/api/v1/me/photo/"]["put"]["requestBody"]["content"]) == ["multipart/form-data"]
    assert sorted(paths["/api/v1/me/photo/"]["delete"]["responses"]) == ["204", "401"]
    assert sorted(paths["/api/v1/me/export/"]["get"]["responses"]) == ["200", "401"]
    assert sorted(paths["/api/v1/me/delete/"]["post"]["responses"]) == ["204", "400", "401", "429"]
