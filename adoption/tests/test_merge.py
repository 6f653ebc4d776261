"""Merging two accounts of one person (SPEC §3, issue 6 part 6).

The full-data comparison dumps every row of every model that references
either account through a foreign key to User (found generically, so a model
added later is covered without touching this test) before and after."""

import datetime
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.merge import HISTORY_FIELDS, account_merge, user_foreign_keys
from accounts.models import ApiToken, LoginCode, User
from accounts.tests.factories import code_in, make_login_code, sms_messages
from chats.models import ChatMember, MemberRole, Reaction
from chats.services.chats import chat_read_mark
from chats.services.content import reaction_toggle
from chats.tests.factories import make_direct_chat, send
from common.errors import ApplicationError
from common.models import AuditEvent
from lessons import services as lesson_services
from lessons.models import AttendanceSession, Participant
from organisations.models import Guardianship, Membership, Role
from tests.test_permission_matrix import World

Row = tuple[str, Any]


def user_rows(user_ids: set[int]) -> dict[Row, dict[str, Any]]:
    """Every row of every model with a foreign key to User pointing at one of
    `user_ids`, keyed by (model label, primary key), as plain values."""
    rows: dict[Row, dict[str, Any]] = {}
    for model, field in user_foreign_keys():
        pk_name = model._meta.pk.attname
        for row in model._base_manager.filter(**{field.attname + "__in": user_ids}).values():
            rows[(model._meta.label_lower, row[pk_name])] = row
    return rows


def re_pointed(rows: dict[Row, dict[str, Any]], *, absorbed: int, kept: int) -> dict[Row, dict[str, Any]]:
    """`rows` as they must look after the merge: every reference to the
    absorbed account now names the kept one, except the history fields."""
    user_fields: dict[str, list[str]] = {}
    for model, field in user_foreign_keys():
        if (model._meta.label_lower, field.name) not in HISTORY_FIELDS:
            user_fields.setdefault(model._meta.label_lower, []).append(field.attname)
    expected = {}
    for (label, pk), row in rows.items():
        row = dict(row)
        for attname in user_fields.get(label, []):
            if row[attname] == absorbed:
                row[attname] = kept
        expected[(label, pk)] = row
    return expected


@pytest.fixture
def world(db) -> World:
    return World()


def _merge_world(world: World) -> dict[str, Any]:
    """The teacher (kept) and the parent (absorbed) are one person: both in the
    parents' chat and the committee chat, a direct chat between them, the
    same reaction on one message, both in one parent meeting with attendance."""
    kept, absorbed = world.users["teacher"], world.users["parent"]
    students_chat_id = int(world.values["students_chat"])
    parents_chat_id = int(world.values["parents_chat"])
    group_chat_id = int(world.values["group_chat"])
    chat_read_mark(user=absorbed, chat_id=parents_chat_id, seq=1)
    message = send(absorbed, ChatMember.objects.get(chat_id=group_chat_id, user=absorbed).chat, "Спасибо за собрание")
    reaction_toggle(user=kept, chat_id=group_chat_id, seq=message.seq, emoji="👍")
    reaction_toggle(user=absorbed, chat_id=group_chat_id, seq=message.seq, emoji="👍")
    reaction_toggle(user=absorbed, chat_id=group_chat_id, seq=message.seq, emoji="🔥")
    make_direct_chat(kept, absorbed)
    meeting_id = int(world.values["meeting"])
    kept_participant = lesson_services.meeting_join(user=kept, meeting_id=meeting_id)
    absorbed_participant = lesson_services.meeting_join(user=absorbed, meeting_id=meeting_id)
    start = timezone.now() - datetime.timedelta(minutes=3)
    lesson_services.attendance_join(participant_id=absorbed_participant.pk, now=start)
    lesson_services.attendance_leave(participant_id=absorbed_participant.pk, now=start + datetime.timedelta(minutes=2))
    ApiToken.objects.create(user=absorbed, key_hash="b" * 64, name="телефон")
    return {
        "kept": kept,
        "absorbed": absorbed,
        "students_chat_id": students_chat_id,
        "parents_chat_id": parents_chat_id,
        "group_chat_id": group_chat_id,
        "message": message,
        "kept_participant": kept_participant,
        "absorbed_participant": absorbed_participant,
    }


def test_merge_moves_every_row_and_folds_duplicates(world):
    case = _merge_world(world)
    kept, absorbed = case["kept"], case["absorbed"]
    before = user_rows({kept.pk, absorbed.pk})
    kept_chat_ids = set(ChatMember.objects.active().filter(user=kept).values_list("chat_id", flat=True))
    # The parents' chat, the committee chat, the school's channel and the
    # direct chat between the two: one membership each after the merge.
    shared_memberships = {
        ("chats.chatmember", pk)
        for pk in ChatMember.objects.active()
        .filter(user=absorbed, chat_id__in=kept_chat_ids)
        .values_list("pk", flat=True)
    }
    assert len(shared_memberships) == 4
    twin_reaction = Reaction.objects.get(user=absorbed, emoji="👍")
    audit_before = AuditEvent.objects.count()

    account_merge(kept=kept, absorbed=absorbed)

    after = user_rows({kept.pk, absorbed.pk})
    expected = re_pointed(before, absorbed=absorbed.pk, kept=kept.pk)
    gone = set(expected) - set(after)
    assert gone == {
        *shared_memberships,
        ("chats.reaction", twin_reaction.pk),
        ("lessons.participant", case["absorbed_participant"].pk),
        ("accounts.apitoken", before_token_pk(before, absorbed.pk)),
    }
    new = set(after) - set(expected)
    assert {label for label, _pk in new} == {"common.auditevent"}
    assert AuditEvent.objects.count() == audit_before + len(new)
    changed = {key for key in expected.keys() & after.keys() if expected[key] != after[key]}
    # Only the kept account's own rows that absorbed a twin changed beyond
    # the re-pointing: its memberships of the shared chats and its
    # participation in the shared lesson.
    assert {key[0] for key in changed} <= {"chats.chatmember", "lessons.participant"}
    parents_member = ChatMember.objects.get(chat_id=case["parents_chat_id"], user=kept, left_at=None)
    assert parents_member.role == MemberRole.MODERATOR
    assert parents_member.last_read_seq == 1
    assert ChatMember.objects.filter(chat_id=case["group_chat_id"], user=kept, left_at=None).count() == 1
    assert ChatMember.objects.filter(user=absorbed).count() == 0
    assert sorted(Reaction.objects.filter(message=case["message"]).values_list("user_id", "emoji")) == sorted(
        [(kept.pk, "👍"), (kept.pk, "🔥")]
    )
    assert case["message"].__class__.objects.get(pk=case["message"].pk).author_id == kept.pk
    participant = Participant.objects.get(pk=case["kept_participant"].pk)
    assert list(AttendanceSession.objects.filter(participant=participant).values_list("participant_id", flat=True)) == [
        participant.pk
    ]
    assert Guardianship.objects.get(student=world.users["student"], ended_at=None).parent_id == kept.pk
    assert set(Membership.objects.active().filter(user=kept).values_list("role", flat=True)) == {
        Role.TEACHER,
        Role.PARENT,
    }
    absorbed.refresh_from_db()
    assert (absorbed.phone, absorbed.is_active, absorbed.first_name) == (None, False, "")
    assert absorbed.deleted_at is not None
    merge_entry = AuditEvent.objects.get(action="account.merge")
    assert merge_entry.object_id == str(kept.pk)
    assert merge_entry.changes["absorbed_id"] == absorbed.pk
    assert merge_entry.changes["moved"]["chats.message.author"] == 1
    assert AuditEvent.objects.get(action="account.merged_into").object_id == str(absorbed.pk)
    # Nothing at all is left pointing at the absorbed account but history.
    assert {key[0] for key in user_rows({absorbed.pk})} <= {"common.auditevent", "admin.logentry"}


def before_token_pk(rows: dict[Row, dict[str, Any]], user_id: int) -> int:
    return next(pk for (label, pk), row in rows.items() if label == "accounts.apitoken" and row["user_id"] == user_id)


def _request_codes(client: APIClient, other_phone: str) -> Any:
    return client.post("/api/v1/me/merge/codes/", {"other_phone": other_phone}, format="json")


def _codes(outbox) -> dict[str, str]:
    return {message["to"]: code_in(message["text"]) for message in sms_messages(outbox)}


def test_merge_over_rest_with_both_codes(world, sms_outbox):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    client = APIClient()
    client.force_authenticate(kept)

    response = _request_codes(client, "8 (990) 100-00-02")

    assert response.status_code == 200, response.content
    assert response.json()["other_phone"] == str(absorbed.phone)
    codes = _codes(sms_outbox)
    assert set(codes) == {str(kept.phone), str(absorbed.phone)}
    response = client.post(
        "/api/v1/me/merge/",
        {"code": codes[str(kept.phone)], "other_code": codes[str(absorbed.phone)]},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["id"] == kept.pk
    assert Guardianship.objects.get(student=world.users["student"], ended_at=None).parent_id == kept.pk
    assert User.objects.get(pk=absorbed.pk).is_active is False


@pytest.mark.parametrize("which", ["code", "other_code"])
def test_a_wrong_code_moves_nothing(world, sms_outbox, which):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    client = APIClient()
    client.force_authenticate(kept)
    _request_codes(client, str(absorbed.phone))
    codes = _codes(sms_outbox)
    body = {"code": codes[str(kept.phone)], "other_code": codes[str(absorbed.phone)]}
    body[which] = "000000" if body[which] != "000000" else "111111"
    before = user_rows({kept.pk, absorbed.pk})

    response = client.post("/api/v1/me/merge/", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "code_wrong"
    assert response.json()["field"] == which
    assert user_rows({kept.pk, absorbed.pk}) == before
    assert User.objects.get(pk=absorbed.pk).is_active is True
    assert not AuditEvent.objects.filter(action="account.merge").exists()


def test_an_expired_code_moves_nothing(world, sms_outbox):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    client = APIClient()
    client.force_authenticate(kept)
    _request_codes(client, str(absorbed.phone))
    codes = _codes(sms_outbox)
    # The other number's code is typed too late.
    LoginCode.objects.filter(phone=str(absorbed.phone)).update(
        expires_at=timezone.now() - datetime.timedelta(seconds=1)
    )
    before = user_rows({kept.pk, absorbed.pk})

    response = client.post(
        "/api/v1/me/merge/",
        {"code": codes[str(kept.phone)], "other_code": codes[str(absorbed.phone)]},
        format="json",
    )

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == ("code_expired", "other_code")
    assert user_rows({kept.pk, absorbed.pk}) == before
    assert User.objects.get(pk=absorbed.pk).phone == absorbed.phone


def test_a_confirmed_number_stays_confirmed_while_the_other_is_retyped(world, sms_outbox):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    client = APIClient()
    client.force_authenticate(kept)
    _request_codes(client, str(absorbed.phone))
    codes = _codes(sms_outbox)
    client.post("/api/v1/me/merge/", {"code": codes[str(kept.phone)], "other_code": "000001"}, format="json")

    response = client.post("/api/v1/me/merge/", {"other_code": codes[str(absorbed.phone)]}, format="json")

    assert response.status_code == 200, response.content
    assert User.objects.get(pk=absorbed.pk).deleted_at is not None


def test_merge_refuses_without_request_own_number_and_unknown_number(world, sms_outbox):
    kept = world.users["teacher"]
    client = APIClient()
    client.force_authenticate(kept)

    assert (
        client.post("/api/v1/me/merge/", {"code": "123456", "other_code": "123456"}, format="json").json()["code"]
        == "merge_not_requested"
    )
    response = _request_codes(client, str(kept.phone))
    assert (response.status_code, response.json()["code"], response.json()["field"]) == (
        400,
        "merge_same_account",
        "other_phone",
    )
    response = _request_codes(client, "+79995554433")
    assert response.status_code == 200
    # No SMS to a number without an account, and no account is created.
    assert set(_codes(sms_outbox)) == {str(kept.phone)}
    response = client.post("/api/v1/me/merge/", {"code": "", "other_code": "123456"}, format="json")
    assert response.status_code == 400
    assert not User.objects.filter(phone="+79995554433").exists()


def test_merge_pages_work_without_javascript(world, client, sms_outbox):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    client.force_login(kept)

    page = client.get("/profile/merge/")
    assert page.status_code == 200
    assert "other_phone" in page.content.decode()
    response = client.post("/profile/merge/", {"other_phone": str(absorbed.phone)})
    assert response.status_code == 302
    codes = _codes(sms_outbox)
    page = client.get("/profile/merge/")
    assert 'name="other_code"' in page.content.decode()
    wrong = client.post("/profile/merge/confirm/", {"code": codes[str(kept.phone)], "other_code": "000000"})
    assert wrong.status_code == 400
    assert User.objects.get(pk=absorbed.pk).is_active is True
    response = client.post("/profile/merge/confirm/", {"other_code": codes[str(absorbed.phone)]})
    assert response.status_code == 302
    assert User.objects.get(pk=absorbed.pk).is_active is False


def test_codes_right_after_signing_in_wait_for_the_resend_delay(world, sms_outbox):
    kept, absorbed = world.users["teacher"], world.users["parent"]
    make_login_code(phone=str(kept.phone), used_at=timezone.now())
    client = APIClient()
    client.force_authenticate(kept)

    response = _request_codes(client, str(absorbed.phone))

    # The code that signed the person in is used: they are told when to ask again.
    assert response.status_code == 429
    assert response.json()["code"] == "resend_too_soon"
    assert int(response["Retry-After"]) > 0


def test_a_bots_account_is_never_merged(world):
    from bots.models import Bot

    kept = world.users["teacher"]
    bot_account = User.objects.create_user("+79995550011", first_name="Помощник")
    Bot.objects.create(user=bot_account, username="helper_test_bot", name="Помощник")
    before = user_rows({kept.pk, bot_account.pk})

    with pytest.raises(ApplicationError) as refusal:
        account_merge(kept=kept, absorbed=bot_account)

    assert refusal.value.code == "merge_account_unavailable"
    assert user_rows({kept.pk, bot_account.pk}) == before
    assert Bot.objects.get(username="helper_test_bot").user_id == bot_account.pk
