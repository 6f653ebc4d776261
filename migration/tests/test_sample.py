"""The sample export generator: valid, realistic, importable."""

import json

from django.core.management import call_command

from chats.models import Chat, ChatMember, Message
from migration.export import export_parse
from migration.models import Invitation
from migration.sample import sample_export
from organisations.tests.factories import make_organisation


def test_a_sample_export_passes_the_checks_and_looks_like_a_school(db):
    data = sample_export(inn="7701234567", chats=4, members=6, messages=5, seed=3)
    export = export_parse(json.dumps(data, ensure_ascii=False))
    assert [conversation.title for conversation in export.conversations] == [
        "1А — родители",
        "1А — ученики",
        "2А — родители",
        "2А — ученики",
    ]
    assert {profile.role for profile in export.profiles.values()} == {"teacher", "parent", "student"}
    assert all(len(conversation.members) == 6 for conversation in export.conversations)
    assert all(len(conversation.messages) == 5 for conversation in export.conversations)
    # A teacher owns both chats of their class.
    assert export.conversations[0].owner_id == export.conversations[1].owner_id
    assert sample_export(inn="7701234567", chats=4, members=6, messages=5, seed=3) == data


def test_the_command_writes_a_sample_that_imports_with_a_progress_bar(db, tmp_path, capsys, no_follow_ups):
    school = make_organisation()
    path = tmp_path / "sample.json"
    call_command(
        "legacy_export_sample",
        str(path),
        inn=school.inn,
        chats=3,
        members=5,
        messages=4,
        create_accounts=True,
    )
    output = capsys.readouterr().out
    assert f"{path}: 3 conversations." in output
    call_command("import_legacy_chats", str(path), report=str(tmp_path / "report.json"))
    captured = capsys.readouterr()
    assert captured.out.strip() == "3 migrated, 0 unchanged, 0 skipped of 3 conversations."
    assert "3/3" in captured.err  # the progress bar
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert [line["status"] for line in report] == ["migrated"] * 3
    assert Chat.objects.filter(organisation=school).count() == 3
    assert Message.objects.count() == 3 * (4 + 1)
    # Every member is either in the chat or invited by SMS.
    assert ChatMember.objects.count() + Invitation.objects.count() == 3 * 5
