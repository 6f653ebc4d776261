"""The notice posted into every migrated old chat, against a real local
HTTP server playing the old messenger's API: one random_id per notice,
retries on temporary errors, permanent errors recorded, exactly once."""

from collections.abc import Iterator

import pytest

from migration import tasks
from migration.export import export_parse
from migration.models import LegacyChat, LegacyNotice, NoticeStatus
from migration.services import export_import, legacy_notice_retry
from migration.tests.factories import School, dumps
from migration.tests.legacy_server import LegacyApi, legacy_api_server


@pytest.fixture
def legacy_api(settings) -> Iterator[LegacyApi]:
    with legacy_api_server() as api:
        settings.LEGACY_API_URL = api.url + "/"
        settings.LEGACY_API_TOKEN = "secret-token"
        settings.LEGACY_API_TIMEOUT = 0.5
        yield api


@pytest.fixture
def no_sms(monkeypatch):
    monkeypatch.setattr(tasks.invitations_sms_send, "delay", lambda legacy_chat_id: None)


def _migrate(school: School, capture, *conversations: dict) -> LegacyChat:
    with capture(execute=True):
        export_import(export=export_parse(dumps(school.export(*conversations))))
    return LegacyChat.objects.order_by("pk").last()  # type: ignore[return-value]


def test_the_notice_is_posted_once_with_the_fields_of_the_old_api(
    db, legacy_api, eager_celery, no_sms, django_capture_on_commit_callbacks
):
    school = School()
    legacy = _migrate(school, django_capture_on_commit_callbacks)
    notice = LegacyNotice.objects.get()
    assert (notice.status, notice.attempts, notice.legacy_message_id, notice.last_error) == (
        NoticeStatus.SENT,
        1,
        5001,
        "",
    )
    assert notice.sent_at is not None
    assert legacy_api.paths == ["/method/messages.send"]
    assert legacy_api.requests == [
        {
            "peer_id": "2000000001",
            "message": notice.text,
            "random_id": str(notice.random_id),
            "access_token": "secret-token",
            "v": "5.199",
        }
    ]
    assert f"/chats/{legacy.chat_id}/" in notice.text

    # Re-running the import, or the task, posts nothing more.
    _migrate(school, django_capture_on_commit_callbacks)
    tasks.legacy_notice_send.delay(legacy.pk)
    assert len(legacy_api.requests) == 1


@pytest.mark.parametrize(
    "temporary",
    [("http", 502), ("http", 503), ("error", 6), ("error", 9), ("error", 10), ("slow", 2.0), ("garbage", None)],
)
def test_temporary_failures_are_retried_with_the_same_random_id(
    db, legacy_api, eager_celery, no_sms, django_capture_on_commit_callbacks, temporary
):
    legacy_api.script = [temporary, temporary, ("ok", 777)]
    school = School()
    _migrate(school, django_capture_on_commit_callbacks)
    notice = LegacyNotice.objects.get()
    assert (notice.status, notice.attempts, notice.legacy_message_id, notice.error_code) == (
        NoticeStatus.SENT,
        3,
        777,
        None,
    )
    assert [request["random_id"] for request in legacy_api.requests] == [str(notice.random_id)] * 3


def test_the_backoff_grows_and_is_capped():
    assert [tasks.notice_backoff(retries) for retries in (0, 1, 2, 3, 10)] == [30, 60, 120, 240, 3600]


def test_a_permanent_error_is_recorded_and_not_retried_until_an_administrator_asks(
    db, legacy_api, eager_celery, no_sms, django_capture_on_commit_callbacks
):
    legacy_api.script = [("error", 917)]
    school = School()
    legacy = _migrate(school, django_capture_on_commit_callbacks)
    notice = LegacyNotice.objects.get()
    assert (notice.status, notice.attempts, notice.error_code, notice.last_error) == (
        NoticeStatus.FAILED,
        1,
        917,
        "error 917",
    )
    tasks.legacy_notice_send.delay(legacy.pk)
    assert len(legacy_api.requests) == 1

    with django_capture_on_commit_callbacks(execute=True):
        legacy_notice_retry(notice_id=notice.pk, actor=school.teacher)
    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.error_code, notice.last_error) == (NoticeStatus.SENT, 2, None, "")
    assert legacy_api.requests[0]["random_id"] == legacy_api.requests[1]["random_id"]


def test_a_notice_still_failing_after_every_retry_is_marked_failed_with_the_last_error(
    db, legacy_api, eager_celery, no_sms, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(tasks, "NOTICE_RETRIES", 2)
    legacy_api.script = [("http", 500)] * 5
    _migrate(School(), django_capture_on_commit_callbacks)
    notice = LegacyNotice.objects.get()
    assert (notice.status, notice.attempts, notice.error_code, notice.last_error) == (
        NoticeStatus.FAILED,
        3,
        None,
        "HTTP 500",
    )


def test_a_temporary_failure_stays_visible_as_pending_with_its_error(
    db, legacy_api, no_sms, django_capture_on_commit_callbacks, monkeypatch
):
    from migration.services import NoticeOutcome, legacy_notice_attempt

    monkeypatch.setattr(tasks.legacy_notice_send, "delay", lambda legacy_chat_id: None)
    legacy = _migrate(School(), django_capture_on_commit_callbacks)
    legacy_api.script = [("slow", 2.0)]
    assert legacy_notice_attempt(legacy_chat_id=legacy.pk) == NoticeOutcome.RETRY
    notice = LegacyNotice.objects.get()
    assert (notice.status, notice.attempts, notice.last_error) == (NoticeStatus.PENDING, 1, "timeout")


def test_no_server_at_all_is_temporary(db, settings, no_sms, django_capture_on_commit_callbacks, monkeypatch):
    from migration.services import NoticeOutcome, legacy_notice_attempt

    monkeypatch.setattr(tasks.legacy_notice_send, "delay", lambda legacy_chat_id: None)
    with legacy_api_server() as api:
        closed_url = api.url
    settings.LEGACY_API_URL = closed_url
    legacy = _migrate(School(), django_capture_on_commit_callbacks)
    assert legacy_notice_attempt(legacy_chat_id=legacy.pk) == NoticeOutcome.RETRY
    assert LegacyNotice.objects.get().last_error == "connection failed: ConnectionRefusedError"


def test_lost_tasks_are_queued_again_by_the_periodic_resend(
    db, no_sms, django_capture_on_commit_callbacks, monkeypatch
):
    import datetime

    from django.utils import timezone

    queued: list[int] = []
    monkeypatch.setattr(tasks.legacy_notice_send, "delay", queued.append)
    legacy = _migrate(School(), django_capture_on_commit_callbacks)
    assert queued == [legacy.pk]
    assert tasks.legacy_notices_resend() == 0  # touched just now: its task may still be on its way
    LegacyNotice.objects.update(updated_at=timezone.now() - datetime.timedelta(hours=3))
    monkeypatch.setattr(tasks.invitations_sms_send, "delay", lambda legacy_chat_id: None)
    from migration.models import Invitation

    Invitation.objects.update(sms_sent_at=timezone.now())
    assert tasks.legacy_notices_resend() == 1
    assert queued == [legacy.pk, legacy.pk]
