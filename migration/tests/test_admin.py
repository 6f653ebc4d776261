"""The admin upload: checked at once, imported by Celery, with progress and
the per-chat result on the page; scoped to the administrator's schools."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from chats.models import Chat
from migration import tasks
from migration.models import ImportRun, ImportStatus, LegacyChat, LegacyNotice, NoticeStatus
from migration.selectors import migration_counts
from migration.tests.factories import School, dumps, message
from organisations.models import Role
from organisations.tests.factories import make_member

ADD_URL = "/admin/migration/importrun/add/"


@pytest.fixture
def school(db, monkeypatch) -> School:
    monkeypatch.setattr(tasks.legacy_notice_send, "delay", lambda legacy_chat_id: None)
    monkeypatch.setattr(tasks.invitations_sms_send, "delay", lambda legacy_chat_id: None)
    school = School()
    school.administrator = make_member(organisation=school.organisation, role=Role.ADMINISTRATOR)  # type: ignore[attr-defined]
    return school


def _upload(client, data: str, *, dry_run: bool):
    form: dict[str, object] = {
        "export_file": SimpleUploadedFile("export.json", data.encode(), content_type="application/json")
    }
    if dry_run:
        form["is_dry_run"] = "on"
    return client.post(ADD_URL, form)


def test_a_dry_run_upload_is_imported_by_celery_and_shows_the_result_per_chat(
    school, client, eager_celery, django_capture_on_commit_callbacks
):
    client.force_login(school.administrator)
    data = dumps(school.export(school.chat(2000000001), school.chat(2000000002, messages=[])))
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, data, dry_run=True)
    run = ImportRun.objects.get()
    assert response.status_code == 302
    assert (run.status, run.is_dry_run, run.total, run.done, run.organisation, run.uploaded_by) == (
        ImportStatus.DONE,
        True,
        2,
        2,
        school.organisation,
        school.administrator,
    )
    assert run.content == ""  # the phone numbers are not kept
    assert [(line["peer_id"], line["status"], line["chat_id"]) for line in run.report] == [
        (2000000001, "migrated", None),
        (2000000002, "skipped", None),
    ]
    assert Chat.objects.count() == 0
    # The dry run records the eligible chat as due, for the adoption figures.
    assert migration_counts(organisation_ids=[school.organisation.pk]) == {school.organisation.pk: (0, 1)}

    page = client.get(f"/admin/migration/importrun/{run.pk}/change/")
    text = page.content.decode()
    assert page.status_code == 200
    assert 'id="import-progress" value="2" max="2"' in text
    assert "2 / 2 (100%)" in text
    assert "2000000001" in text and "2000000002" in text
    assert 'http-equiv="refresh"' not in text

    with django_capture_on_commit_callbacks(execute=True):
        _upload(client, data, dry_run=False)
    real = ImportRun.objects.order_by("pk").last()
    assert [line["status"] for line in real.report] == ["migrated", "skipped"]
    chat = Chat.objects.get()
    assert real.report[0]["chat_id"] == chat.pk
    assert LegacyChat.objects.get().chat == chat
    assert migration_counts(organisation_ids=[school.organisation.pk]) == {school.organisation.pk: (1, 1)}


def test_a_queued_import_shows_its_progress_and_refreshes(school, client):
    client.force_login(school.administrator)
    run = ImportRun.objects.create(organisation=school.organisation, total=40, done=12, status=ImportStatus.RUNNING)
    text = client.get(f"/admin/migration/importrun/{run.pk}/change/").content.decode()
    assert "12 / 40 (30%)" in text
    assert 'http-equiv="refresh"' in text


def test_a_bad_export_is_refused_in_the_form_naming_the_chat_and_field_and_nothing_is_recorded(
    school, client, django_capture_on_commit_callbacks
):
    client.force_login(school.administrator)
    data = dumps(school.export(school.chat(2000000005, messages=[message(1, from_id=404, text="?")])))
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, data, dry_run=False)
    assert response.status_code == 200
    assert "conversation 2000000005, messages[0].from_id: 404 is not among the profiles" in response.content.decode()
    assert (ImportRun.objects.count(), Chat.objects.count(), LegacyChat.objects.count()) == (0, 0, 0)

    truncated = _upload(client, data[:100], dry_run=True)
    assert "not valid JSON, or cut short" in truncated.content.decode()
    assert ImportRun.objects.count() == 0


def test_an_administrator_cannot_import_for_or_see_another_school(school, client):
    other = School()
    client.force_login(school.administrator)
    response = _upload(client, dumps(other.export()), dry_run=False)
    assert response.status_code == 200
    assert f"No organisation you administer has the INN {other.organisation.inn}" in response.content.decode()
    assert ImportRun.objects.count() == 0

    run = ImportRun.objects.create(organisation=other.organisation, total=1)
    assert client.get(f"/admin/migration/importrun/{run.pk}/change/").status_code == 404
    own = ImportRun.objects.create(organisation=school.organisation, total=1)
    listing = client.get("/admin/migration/importrun/").content.decode()
    assert f"/admin/migration/importrun/{own.pk}/change/" in listing
    assert f"/admin/migration/importrun/{run.pk}/change/" not in listing


def test_a_teacher_cannot_use_the_upload(school, client):
    client.force_login(school.teacher)
    response = _upload(client, dumps(school.export()), dry_run=False)
    assert response.status_code in (302, 403)
    assert ImportRun.objects.count() == 0


def test_failed_notices_are_shown_and_sent_again_on_request(
    school, client, django_capture_on_commit_callbacks, monkeypatch
):
    from migration.export import export_parse
    from migration.services import export_import

    export_import(export=export_parse(dumps(school.export())))
    notice = LegacyNotice.objects.get()
    LegacyNotice.objects.update(status=NoticeStatus.FAILED, error_code=15, last_error="Access denied")
    client.force_login(school.administrator)
    listing = client.get("/admin/migration/legacynotice/").content.decode()
    assert "Access denied" in listing and "15" in listing

    queued: list[int] = []
    monkeypatch.setattr(tasks.legacy_notice_send, "delay", queued.append)
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/admin/migration/legacynotice/", {"action": "send_again", "_selected_action": [str(notice.pk)]})
    notice.refresh_from_db()
    assert notice.status == NoticeStatus.PENDING
    assert queued == [notice.legacy_chat_id]


def test_an_upload_whose_task_was_lost_is_queued_again(school, monkeypatch):
    import datetime

    from django.utils import timezone

    queued: list[int] = []
    monkeypatch.setattr(tasks.import_run_execute, "delay", queued.append)
    run = ImportRun.objects.create(organisation=school.organisation, total=1)
    assert tasks.legacy_notices_resend() == 0
    ImportRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=11))
    assert tasks.legacy_notices_resend() == 1
    assert queued == [run.pk]


def test_an_export_that_no_longer_fits_fails_the_run_with_the_reason(school):
    from migration.services import import_run_execute

    data = dumps(school.export())
    run = ImportRun.objects.create(organisation=school.organisation, total=1, content=data, is_dry_run=False)
    school.organisation.inn = "7700000000"
    school.organisation.save(update_fields=["inn"])
    import_run_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == ImportStatus.FAILED
    assert "no organisation with INN" in run.error
    assert (run.content, Chat.objects.count()) == ("", 0)
    # A second worker taking the same task does nothing.
    import_run_execute(run_id=run.pk)
    assert ImportRun.objects.get(pk=run.pk).status == ImportStatus.FAILED
