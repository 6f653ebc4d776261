import json

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import ApiToken
from accounts.selectors import personal_data_export
from accounts.tests.factories import make_token, make_user

pytestmark = pytest.mark.django_db


def test_the_export_has_the_account_and_its_devices_but_no_keys():
    user = make_user(phone="+79001112266", first_name="Анна", last_name="Петрова", time_zone="Asia/Omsk")
    _user, key = make_token(user=user)
    token = ApiToken.objects.get()

    export = personal_data_export(user=user)

    assert export["format"] == "parta.personal-data-export"
    assert export["version"] == 1
    assert export["account"] == {
        "id": user.pk,
        "phone": "+79001112266",
        "first_name": "Анна",
        "last_name": "Петрова",
        "middle_name": "",
        "display_name": "Анна Петрова",
        "language": "ru",
        "time_zone": "Asia/Omsk",
        "photo_url": None,
        "date_joined": user.date_joined.isoformat(),
        "last_login": None,
        "is_active": True,
        "blocked_at": None,
        "is_staff": False,
        "is_verified_educator": False,
        "is_name_flagged": False,
        "is_safe_mode": False,
        "is_hidden_from_search": False,
    }
    assert export["api_tokens"] == [
        {"device": "test", "created_at": token.created_at.isoformat(), "last_used_at": None}
    ]
    text = json.dumps(export, ensure_ascii=False)
    assert key not in text
    assert token.key_hash not in text


def test_the_export_api_sends_a_json_attachment():
    user, key = make_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.get("/api/v1/me/export/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == f'attachment; filename="parta-export-{user.pk}.json"'
    assert response["Cache-Control"] == "private, no-store"
    body = json.loads(response.content)
    assert body["account"]["id"] == user.pk
    assert {"memberships", "guardianships", "study_groups", "safe_mode_changes"} <= set(body)
    assert key not in response.content.decode()


def test_a_browser_gets_the_file_too_not_the_browsable_api():
    user = make_user()
    browser = Client()
    browser.force_login(user)
    assert 'href="/api/v1/me/export/"' in browser.get("/profile/").content.decode()

    responses = [
        browser.get("/api/v1/me/export/", HTTP_ACCEPT=accept)
        for accept in ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "text/html")
    ]

    assert [response.status_code for response in responses] == [200, 200]
    assert [response["Content-Type"] for response in responses] == ["application/json", "application/json"]
    assert json.loads(responses[0].content)["account"]["id"] == user.pk


def test_the_export_needs_authentication():
    assert APIClient().get("/api/v1/me/export/").status_code == 401
