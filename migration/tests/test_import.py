"""Importing an export: which conversations are migrated, how (members,
roles, history, invitations), the report, dry runs and re-runs."""

import datetime
import json

import pytest
from django.core.management import call_command

from chats.models import Chat, ChatKind, ChatMember, MemberRole, Message, MessageKind
from migration.export import export_parse
from migration.models import Invitation, LegacyChat, LegacyNotice, NoticeStatus
from migration.services import export_import
from migration.tests.factories import (
    School,
    conversation,
    dumps,
    last_year_date,
    message,
    profile,
    state,
    this_year_date,
)
from organisations.models import Role
from organisations.tests.factories import make_member, make_organisation, make_user


def _import(data: dict, **kwargs) -> list[dict]:
    return [result.as_report() for result in export_import(export=export_parse(dumps(data)), **kwargs)]


def test_a_conversation_becomes_a_group_chat_of_the_organisation_with_roles_history_and_invitations(
    db, no_follow_ups, django_capture_on_commit_callbacks
):
    school = School()
    chair = make_member(organisation=school.organisation, role=Role.PARENT)
    profiles = [*school.profiles(), profile(104, phone=str(chair.phone), role="parent")]
    first_date = this_year_date(day=2)  # before the others
    chat_data = conversation(
        2000000001,
        owner_id=101,
        member_ids=[102, 103, 104],
        admin_ids=[101, 104],
        messages=[
            message(7, from_id=102, text="Спасибо!"),
            message(3, from_id=101, text="Добрый вечер!", date=first_date),
            message(5, from_id=103, text="А во сколько собрание?"),
            message(6, from_id=102, text="   "),
        ],
    )

    with django_capture_on_commit_callbacks(execute=True):
        [line] = _import(school.export(chat_data, profiles=profiles))

    chat = Chat.objects.get()
    assert line == {
        "peer_id": 2000000001,
        "status": "migrated",
        "reason": None,
        "chat_id": chat.pk,
        "members": 3,
        "invited": 1,
        "refused": [],
    }
    assert (chat.kind, chat.title, chat.organisation, chat.created_by) == (
        ChatKind.GROUP,
        "7Б — родители",
        school.organisation,
        school.teacher,
    )
    roles = dict(ChatMember.objects.filter(chat=chat).values_list("user_id", "role"))
    assert roles == {school.teacher.pk: MemberRole.OWNER, chair.pk: MemberRole.MODERATOR, school.parent.pk: "member"}
    history = list(Message.objects.filter(chat=chat).order_by("seq"))
    # The original order (date, then id), numbered from 1; a message with no
    # text is left out; the system line comes last.
    assert [(item.seq, item.author_id, item.body, item.kind) for item in history] == [
        (1, school.teacher.pk, "Добрый вечер!", MessageKind.TEXT),
        (2, None, "Ольга Смирнова: А во сколько собрание?", MessageKind.TEXT),
        (3, school.parent.pk, "Спасибо!", MessageKind.TEXT),
        (4, None, "This chat was moved here from the old messenger.", MessageKind.SYSTEM),
    ]
    assert history[0].created_at == datetime.datetime.fromtimestamp(first_date, tz=datetime.UTC)
    assert history[2].created_at == datetime.datetime.fromtimestamp(chat_data["messages"][0]["date"], tz=datetime.UTC)
    chat.refresh_from_db()
    assert chat.last_seq == 4
    # The history starts read; only the system line is new.
    assert set(ChatMember.objects.filter(chat=chat).values_list("last_read_seq", flat=True)) == {3}
    invitation = Invitation.objects.get()
    assert (invitation.chat, invitation.phone, invitation.chat_role, invitation.accepted_at) == (
        chat,
        school.new_parent_phone,
        MemberRole.MEMBER,
        None,
    )
    legacy = LegacyChat.objects.get()
    assert (legacy.peer_id, legacy.chat, legacy.is_read_only, legacy.members_added, legacy.messages_imported) == (
        2000000001,
        chat,
        True,
        3,
        3,
    )
    notice = LegacyNotice.objects.get()
    assert notice.status == NoticeStatus.PENDING
    assert "«7Б — родители»" in notice.text
    assert f"/chats/{chat.pk}/" in notice.text
    assert no_follow_ups == [legacy.pk]


def test_running_the_import_again_changes_nothing(db, no_follow_ups, django_capture_on_commit_callbacks):
    school = School()
    data = school.export(school.chat(2000000001), school.chat(2000000002, messages=[]))
    with django_capture_on_commit_callbacks(execute=True):
        first = _import(data)
    before = state()
    with django_capture_on_commit_callbacks(execute=True):
        second = _import(data)
    assert state() == before
    assert second == [
        {
            "peer_id": 2000000001,
            "status": "unchanged",
            "reason": None,
            "chat_id": first[0]["chat_id"],
            "members": 0,
            "invited": 0,
            "refused": [],
        },
        {
            "peer_id": 2000000002,
            "status": "skipped",
            "reason": "no message in the current academic year",
            "chat_id": None,
            "members": 0,
            "invited": 0,
            "refused": [],
        },
    ]
    assert len(no_follow_ups) == 1


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"role": "parent"}, "the owner is not a confirmed administrator, teacher or staff member"),
        ({"confirmed": False}, "the owner is not a confirmed administrator, teacher or staff member"),
        ({"phone": "+79970000001"}, "the owner has no staff account in the organisation"),
    ],
)
def test_a_conversation_whose_owner_is_not_confirmed_staff_is_skipped(db, no_follow_ups, change, reason):
    school = School()
    profiles = school.profiles()
    profiles[0].update(change)
    before = state()
    assert _import(school.export(profiles=profiles))[0]["reason"] == reason
    assert state() == before


def test_an_owner_who_is_a_parent_of_the_school_only_is_skipped(db, no_follow_ups):
    school = School()
    profiles = school.profiles()
    profiles[0]["phone"] = str(school.parent.phone)
    profiles[1]["phone"] = str(school.teacher.phone)
    [line] = _import(school.export(profiles=profiles))
    assert (line["status"], line["reason"]) == ("skipped", "the owner has no staff account in the organisation")


def test_inactive_and_empty_conversations_are_skipped_with_the_reason(db, no_follow_ups):
    school = School()
    old = school.chat(2000000001, messages=[message(1, from_id=101, text="Прошлый год", date=last_year_date())])
    silent = school.chat(2000000002, messages=[])
    alone = school.chat(2000000003, member_ids=[102], admin_ids=[101, 102])
    before = state()
    report = _import(school.export(old, silent, alone))
    assert [(line["status"], line["reason"], line["chat_id"]) for line in report] == [
        ("skipped", "no message in the current academic year", None),
        ("skipped", "no message in the current academic year", None),
        ("skipped", "no members besides the owner and administrators", None),
    ]
    assert state() == before


def test_members_of_other_organisations_follow_the_contact_rule_and_refused_ones_are_never_added(db, no_follow_ups):
    school = School()
    elsewhere = make_organisation()
    parent_elsewhere = make_member(organisation=elsewhere, role=Role.PARENT)
    other_child = make_member(organisation=elsewhere, role=Role.STUDENT)
    own_child = make_member(organisation=school.organisation, role=Role.STUDENT)
    newcomer = make_user()  # an account with no organisation yet
    blocked = make_user(is_active=False)
    profiles = [
        *school.profiles(),
        profile(104, phone=str(parent_elsewhere.phone)),
        profile(105, phone=str(other_child.phone), role="student"),
        profile(106, phone=str(own_child.phone), role="student"),
        profile(107, phone=None),
        profile(108, phone=str(newcomer.phone)),
        profile(109, phone=str(blocked.phone)),
    ]
    chat_data = school.chat(
        member_ids=[102, 103, 104, 105, 106, 107, 108, 109],
        messages=[message(1, from_id=105, text="Привет!"), message(2, from_id=101, text="Добрый день.")],
    )
    [line] = _import(school.export(chat_data, profiles=profiles))
    assert line["refused"] == [
        {"member_id": 105, "reason": "a child in safe mode who does not count the owner as a contact"},
        {"member_id": 107, "reason": "no phone number to match or invite"},
        {"member_id": 109, "reason": "the account is blocked"},
    ]
    members = set(ChatMember.objects.filter(chat_id=line["chat_id"]).values_list("user_id", flat=True))
    # A parent registered at another school is an adult: the contact rule
    # lets them in; the child of the other school is not the teacher's contact.
    assert members == {school.teacher.pk, school.parent.pk, parent_elsewhere.pk, own_child.pk, newcomer.pk}
    assert line["members"] == 5
    assert list(Invitation.objects.values_list("phone", flat=True)) == [school.new_parent_phone]
    assert LegacyChat.objects.get().members_refused == line["refused"]
    # The refused child's words stay in the history under their name, not as theirs.
    assert list(Message.objects.filter(chat_id=line["chat_id"], seq=1).values_list("author", "body")) == [
        (None, "Анна Петрова105: Привет!")
    ]
    assert not Message.objects.filter(author=other_child).exists()


def test_a_dry_run_reports_the_same_and_changes_nothing(db, no_follow_ups, tmp_path):
    school = School()
    data = school.export(school.chat(2000000001), school.chat(2000000002, messages=[]))
    path = tmp_path / "export.json"
    path.write_text(dumps(data), encoding="utf-8")
    before = state()
    call_command("import_legacy_chats", str(path), "--dry-run", "--no-progress", report=str(tmp_path / "dry.json"))
    assert state() == before
    assert no_follow_ups == []
    dry = json.loads((tmp_path / "dry.json").read_text(encoding="utf-8"))
    assert [(line["peer_id"], line["status"], line["reason"], line["chat_id"], line["invited"]) for line in dry] == [
        (2000000001, "migrated", None, None, 1),
        (2000000002, "skipped", "no message in the current academic year", None, 0),
    ]

    call_command("import_legacy_chats", str(path), "--no-progress", report=str(tmp_path / "real.json"))
    real = json.loads((tmp_path / "real.json").read_text(encoding="utf-8"))
    chat = Chat.objects.get()
    assert real == [
        {
            "peer_id": 2000000001,
            "status": "migrated",
            "reason": None,
            "chat_id": chat.pk,
            "members": 2,
            "invited": 1,
            "refused": [],
        },
        {
            "peer_id": 2000000002,
            "status": "skipped",
            "reason": "no message in the current academic year",
            "chat_id": None,
            "members": 0,
            "invited": 0,
            "refused": [],
        },
    ]


def test_the_command_prints_a_summary(db, no_follow_ups, tmp_path, capsys):
    school = School()
    path = tmp_path / "export.json"
    path.write_text(dumps(school.export()), encoding="utf-8")
    call_command("import_legacy_chats", str(path), "--no-progress")
    assert capsys.readouterr().out.strip() == "1 migrated, 0 unchanged, 0 skipped of 1 conversations."


def test_an_old_chat_migrated_by_another_organisation_is_skipped(db, no_follow_ups):
    first, second = School(), School()
    _import(first.export())
    make_member(organisation=second.organisation, role=Role.TEACHER, user=first.teacher)
    before = state()
    [line] = _import(second.export(profiles=first.profiles()))
    assert (line["status"], line["reason"]) == ("skipped", "already migrated by another organisation")
    assert state() == before


def test_a_broker_that_is_down_slows_the_import_once_and_loses_nothing(
    db, monkeypatch, django_capture_on_commit_callbacks
):
    from migration import tasks

    attempts: list[int] = []

    def broker_down(legacy_chat_id: int) -> None:
        attempts.append(legacy_chat_id)
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks.legacy_notice_send, "delay", broker_down)
    school = School()
    with django_capture_on_commit_callbacks(execute=True):
        report = _import(school.export(school.chat(2000000001), school.chat(2000000002), school.chat(2000000003)))
    assert [line["status"] for line in report] == ["migrated"] * 3
    assert len(attempts) == 1
    # The notices wait, pending, for the periodic resend.
    assert list(LegacyNotice.objects.values_list("status", flat=True)) == [NoticeStatus.PENDING] * 3


def test_only_the_chosen_conversations_are_imported(db, no_follow_ups):
    school = School()
    data = school.export(school.chat(2000000001), school.chat(2000000002))
    results = export_import(export=export_parse(dumps(data)), peer_ids=[2000000002])
    assert [(result.peer_id, result.status) for result in results] == [(2000000002, "migrated")]
    assert list(LegacyChat.objects.values_list("peer_id", flat=True)) == [2000000002]


def test_a_chat_recorded_as_due_that_is_no_longer_eligible_stops_counting(db, no_follow_ups):
    from migration.selectors import migration_counts

    school = School()
    export_import(export=export_parse(dumps(school.export())), dry_run=True, record_eligible=True)
    assert migration_counts(organisation_ids=[school.organisation.pk]) == {school.organisation.pk: (0, 1)}
    # The command's dry run changes nothing, not even that record.
    stale = school.export(school.chat(messages=[message(1, from_id=101, text="…", date=last_year_date())]))
    export_import(export=export_parse(dumps(stale)), dry_run=True)
    assert migration_counts(organisation_ids=[school.organisation.pk]) == {school.organisation.pk: (0, 1)}
    export_import(export=export_parse(dumps(stale)))
    assert migration_counts(organisation_ids=[school.organisation.pk]) == {school.organisation.pk: (0, 0)}


def test_a_migrated_chat_deleted_since_is_not_migrated_again(db, no_follow_ups):
    school = School()
    data = school.export()
    [first] = _import(data)
    Chat.objects.filter(pk=first["chat_id"]).delete()
    before = state()
    [again] = _import(data)
    assert (again["status"], again["chat_id"]) == ("unchanged", None)
    assert state() == before
    assert LegacyNotice.objects.count() == 1
