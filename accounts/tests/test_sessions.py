import logging

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from accounts.events import user_group_name
from accounts.models import ApiToken, User
from accounts.services import api_token_revoke, session_logout_everywhere, user_block, user_unblock
from accounts.tests.factories import make_login_code, make_token, make_user
from common import realtime
from common.errors import ApplicationError
from common.models import AuditEvent
from common.testing import Inbox

pytestmark = pytest.mark.django_db


def browser_of(user: User) -> Client:
    browser = Client()
    browser.force_login(user)
    assert browser.get("/profile/").status_code == 200
    return browser


def test_user_group_name_is_short_ascii():
    assert user_group_name(42) == "user.42"


def test_logout_everywhere_ends_tokens_and_sessions():
    user, key = make_token()
    other_user, other_key = make_token()
    browser = browser_of(user)
    other_browser = browser_of(other_user)

    session_logout_everywhere(user=user)

    assert user.session_generation == 1
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + key).status_code == 401
    assert browser.get("/profile/").status_code == 302
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + other_key).status_code == 200
    assert other_browser.get("/profile/").status_code == 200
    assert list(ApiToken.objects.values_list("user_id", flat=True)) == [other_user.pk]


def test_api_token_revoke_deletes_one_token():
    user, _key = make_token()
    make_token(user=user)

    api_token_revoke(token=ApiToken.objects.first())

    assert ApiToken.objects.count() == 1


def test_block_ends_tokens_and_sessions_and_is_audited():
    admin = make_user(is_staff=True)
    user, key = make_token()
    browser = browser_of(user)

    user_block(actor=admin, user=user, reason="Spam\u202e in the class chat")

    user.refresh_from_db()
    assert user.is_active is False
    assert user.blocked_at is not None
    assert APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token " + key).status_code == 401
    assert browser.get("/profile/").status_code == 302
    assert ApiToken.objects.count() == 0
    event = AuditEvent.objects.get(action="user_block")
    assert (event.actor, event.object_id) == (admin, str(user.pk))
    assert event.changes == {"is_active": [True, False], "reason": "Spam in the class chat"}


def test_a_blocked_user_cannot_get_a_new_token():
    user = make_user()
    user_block(actor=None, user=user, reason="test")
    make_login_code(phone=str(user.phone), code="123456")

    response = APIClient().post("/api/v1/auth/token/", {"phone": str(user.phone), "code": "123456"}, format="json")

    assert response.status_code == 403
    assert response.json()["code"] == "account_blocked"
    assert ApiToken.objects.count() == 0


def test_nobody_blocks_themselves():
    admin = make_user(is_staff=True)

    with pytest.raises(ApplicationError) as refused:
        user_block(actor=admin, user=admin, reason="oops")

    assert refused.value.code == "cannot_block_self"
    admin.refresh_from_db()
    assert admin.is_active is True
    assert AuditEvent.objects.count() == 0


def test_unblock_lets_the_user_sign_in_again():
    user = make_user()
    user_block(actor=None, user=user, reason="test")

    user_unblock(actor=None, user=user)

    user.refresh_from_db()
    assert (user.is_active, user.blocked_at) == (True, None)
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["user_unblock", "user_block"]
    make_login_code(phone=str(user.phone), code="123456")
    response = APIClient().post("/api/v1/auth/token/", {"phone": str(user.phone), "code": "123456"}, format="json")
    assert response.status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_logout_everywhere_tells_open_websockets_after_commit():
    user = await database_sync_to_async(make_user)()
    inbox = Inbox()
    await realtime.hub().join(inbox, [user_group_name(user.pk)])

    await database_sync_to_async(session_logout_everywhere)(user=user)

    assert await inbox.next() == {"type": "session.revoked"}
    await realtime.hub().close()
    # The ORM ran in an executor thread whose connection would outlive the test.
    await database_sync_to_async(lambda: connection.close())()


@pytest.mark.django_db(transaction=True)
def test_a_redis_failure_does_not_stop_the_logout(monkeypatch, caplog):
    def broken(items):
        raise ConnectionError("redis is down")

    monkeypatch.setattr(realtime, "publish_many", broken)
    user, _key = make_token(user=make_user(first_name="Анна"))
    caplog.set_level(logging.WARNING)

    session_logout_everywhere(user=user)

    assert ApiToken.objects.count() == 0
    assert User.objects.get().session_generation == 1
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [
        ("WARNING", "Could not tell open WebSockets that sessions ended: ConnectionError")
    ]


def test_no_notification_before_the_commit(monkeypatch, django_capture_on_commit_callbacks):
    sent: list = []

    monkeypatch.setattr(realtime, "publish_many", lambda items: sent.extend(items))
    user = make_user()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        session_logout_everywhere(user=user)
        assert sent == []

    assert len(callbacks) == 1
    assert sent == [("user." + str(user.pk), '{"type":"session.revoked"}')]
