"""Bad exports: each is refused as a whole, naming the conversation and the
field, and nothing changes (the command exits non-zero)."""

import json

import pytest
from django.core.management import CommandError, call_command

from migration.export import ExportInvalid, export_parse
from migration.tests.factories import School, conversation, dumps, message, profile, state


def _problems(data: object) -> list[str]:
    with pytest.raises(ExportInvalid) as caught:
        export_parse(dumps(data) if not isinstance(data, str) else data)
    return caught.value.message.splitlines()


def test_a_valid_export_is_read_into_profiles_and_conversations(db):
    school = School()
    export = export_parse(dumps(school.export()).encode())
    assert export.inn == school.organisation.inn
    assert sorted(export.profiles) == [101, 102, 103]
    assert export.profiles[101].phone == str(school.teacher.phone)
    [chat] = export.conversations
    assert (chat.peer_id, chat.title, chat.owner_id, chat.admin_ids) == (2000000001, "7Б — родители", 101, [101])
    assert [member.member_id for member in chat.members] == [101, 102, 103]
    assert [item.text for item in chat.messages] == ["Добрый вечер!", "Спасибо!"]


def test_a_truncated_file_is_reported_with_its_position(db):
    school = School()
    text = dumps(school.export())
    problems = _problems(text[: len(text) // 2])
    assert len(problems) == 1
    assert problems[0].startswith("file: not valid JSON, or cut short:")
    assert "line 1, column" in problems[0]


def test_not_utf8_and_not_an_object_are_refused(db):
    with pytest.raises(ExportInvalid) as caught:
        export_parse("{}".encode("utf-16"))
    assert caught.value.message.startswith("file: not UTF-8 text")
    assert _problems("[1, 2]") == ["file: must be a JSON object"]


def test_every_wrong_type_is_named_with_its_conversation_and_field(db):
    school = School()
    data = school.export(
        school.chat(2000000001, messages=[{"id": "1", "date": "yesterday", "from_id": 101, "text": 5}]),
        school.chat(2000000002),
    )
    data["conversations"][1]["chat_settings"]["title"] = ""
    data["conversations"][1]["members"][1]["is_admin"] = "yes"
    data["profiles"][0]["confirmed"] = "true"
    data["exported_at"] = "today"
    problems = _problems(data)
    assert problems == [
        "exported_at: must be a date in Unix seconds",
        "profiles[0] (id 101).confirmed: must be true or false",
        # The owner's profile was refused, so every reference to it is unknown.
        "conversation 2000000001, chat_settings.owner_id: 101 is not among the profiles",
        "conversation 2000000001, chat_settings.admin_ids[0]: 101 is not among the profiles",
        "conversation 2000000001, members[0].member_id: 101 is not among the profiles",
        "conversation 2000000001, messages[0].id: must be a whole number",
        "conversation 2000000001, messages[0].date: must be a date in Unix seconds",
        "conversation 2000000001, messages[0].text: must be text",
        "conversation 2000000001, messages[0].from_id: 101 is not among the profiles",
        "conversation 2000000002, chat_settings.title: must be non-empty text",
        "conversation 2000000002, chat_settings.owner_id: 101 is not among the profiles",
        "conversation 2000000002, chat_settings.admin_ids[0]: 101 is not among the profiles",
        "conversation 2000000002, members[0].member_id: 101 is not among the profiles",
        "conversation 2000000002, members[1].is_admin: must be true or false",
        "conversation 2000000002, messages[0].from_id: 101 is not among the profiles",
    ]


def test_duplicate_phone_numbers_name_both_profiles(db):
    school = School()
    profiles = school.profiles()
    # The same number written differently is the same number.
    digits = str(school.parent.phone)[2:]
    profiles.append(profile(104, phone=f"8 ({digits[:3]}) {digits[3:6]}-{digits[6:8]}-{digits[8:]}"))
    assert _problems(school.export(profiles=profiles)) == [
        "profiles[3] (id 104).phone: the same phone number as profile 102"
    ]


def test_unknown_author_member_and_duplicates_are_refused(db):
    school = School()
    first = school.chat(2000000001, messages=[message(1, from_id=999, text="Кто я?")])
    second = school.chat(2000000002, member_ids=[102, 555])
    again = school.chat(2000000001)
    profiles = [*school.profiles(), profile(102, phone=None)]
    assert _problems(school.export(first, second, again, profiles=profiles)) == [
        "profiles[3] (id 102).id: the same id appears twice",
        "conversation 2000000001, messages[0].from_id: 999 is not among the profiles",
        "conversation 2000000002, members[2].member_id: 555 is not among the profiles",
        "conversation 2000000001, peer_id: the same conversation appears twice",
    ]


def test_bad_inn_role_and_phone(db):
    school = School()
    profiles = school.profiles()
    profiles[1]["role"] = "director"
    profiles[2]["phone"] = "позвоните мне"
    data = school.export(profiles=profiles)
    data["organisation"] = {"inn": 7701234567}
    assert _problems(data) == [
        "organisation.inn: must be a string of 10 or 12 digits",
        "profiles[1] (id 102).role: must be one of: admin, teacher, staff, student, parent",
        "profiles[2] (id 103).phone: not a valid phone number",
        "conversation 2000000001, members[1].member_id: 102 is not among the profiles",
        "conversation 2000000001, members[2].member_id: 103 is not among the profiles",
        "conversation 2000000001, messages[1].from_id: 102 is not among the profiles",
    ]


def test_messages_may_be_absent_and_phone_may_be_missing(db):
    school = School()
    profiles = [*school.profiles(), profile(104, phone=None)]
    chat = conversation(2000000001, owner_id=101, member_ids=[104])
    export = export_parse(dumps(school.export(chat, profiles=profiles)))
    assert export.conversations[0].messages == []
    assert export.profiles[104].phone is None


def test_the_command_exits_non_zero_naming_the_conversation_and_field_and_changes_nothing(db, tmp_path):
    school = School()
    good = school.chat(2000000001)
    bad = school.chat(2000000002, messages=[message(1, from_id=777, text="…")])
    path = tmp_path / "export.json"
    path.write_text(dumps(school.export(good, bad)), encoding="utf-8")
    before = state()
    with pytest.raises(CommandError) as caught:
        call_command("import_legacy_chats", str(path), "--no-progress", report=str(tmp_path / "report.json"))
    assert "nothing was changed" in str(caught.value)
    assert "conversation 2000000002, messages[0].from_id: 777 is not among the profiles" in str(caught.value)
    assert state() == before
    assert not (tmp_path / "report.json").exists()


def test_the_command_refuses_an_export_of_an_unknown_organisation(db, tmp_path):
    school = School()
    data = school.export()
    data["organisation"]["inn"] = "7700000000"
    path = tmp_path / "export.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    before = state()
    with pytest.raises(CommandError, match=r"organisation\.inn: no organisation with INN 7700000000"):
        call_command("import_legacy_chats", str(path), "--no-progress")
    assert state() == before


def test_the_command_reports_a_missing_file(db, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("import_legacy_chats", str(tmp_path / "missing.json"))
