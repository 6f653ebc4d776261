"""The migration bot «Перенос чатов», end to end through the real services:
the admin's upload keeps the export, a verified teacher starts the bot,
sees their old chats, presses a button and the chat moves with its members
and history; the summary of the presentation follows. Texts are asserted in
English (the msgids; see conftest.py)."""

import datetime
import io
import json
import zoneinfo
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from bots import services as bot_services
from bots.models import Bot, Update, UpdateKind
from chats.models import Chat, ChatMember, Message, MessageKind
from common.errors import PermissionDenied
from migration import bot as migration_bot
from migration.export import export_parse
from migration.models import ImportRun, Invitation, LegacyChat, LegacyExport, LegacyNotice
from migration.services import export_dump, export_import, import_run_create, import_run_execute
from migration.tests.factories import School, conversation, dumps, last_year_date, message, profile
from organisations.models import Membership, Role, VerificationStatus
from organisations.tests.factories import make_member
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db

PEER = 2000000001
PEER_SECOND = 2000000002
PEER_OTHER_TEACHER = 2000000003
PEER_INACTIVE = 2000000004


@pytest.fixture
def eager() -> Iterator[None]:
    """The bot's Celery task runs in the test, and its errors fail the test."""
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture(autouse=True)
def public_url(settings) -> None:
    settings.PUBLIC_URL = "https://parta.example"


def verify(user, organisation) -> None:
    Membership.objects.filter(user=user, organisation=organisation).update(
        verification_status=VerificationStatus.VERIFIED
    )


class World(School):
    """The School of the factories (teacher 101 owns the chats; parent 102
    has an account, 103 has not), with the teacher verified, a second
    verified teacher (104) owning a chat of their own, and an
    administrator who uploads the export in admin (a dry run)."""

    def __init__(self) -> None:
        super().__init__()
        verify(self.teacher, self.organisation)
        self.other_teacher = make_member(organisation=self.organisation, role=Role.TEACHER)
        verify(self.other_teacher, self.organisation)
        self.administrator = make_member(organisation=self.organisation, role=Role.ADMINISTRATOR)
        self.bot = migration_bot.migration_bot_ensure()

    def profiles(self) -> list[dict]:
        return [
            *super().profiles(),
            profile(104, phone=str(self.other_teacher.phone), role="teacher", confirmed=True, first_name="Пётр"),
        ]

    def full_export(self) -> dict:
        return self.export(
            self.chat(PEER, title="7Б — родители"),
            self.chat(
                PEER_SECOND,
                title="Кружок робототехники",
                member_ids=[102],
                messages=[message(3, from_id=101, text="В среду собираемся.")],
            ),
            conversation(
                PEER_OTHER_TEACHER,
                owner_id=104,
                member_ids=[102],
                title="5А — родители",
                messages=[message(4, from_id=104, text="Здравствуйте!")],
            ),
            self.chat(
                PEER_INACTIVE,
                title="Экскурсия",
                messages=[message(5, from_id=101, text="Сбор в 9:00.", date=last_year_date())],
            ),
        )

    def upload(self, data: dict | None = None) -> None:
        """The administrator's dry run in admin, as the Celery task runs it."""
        run = import_run_create(
            actor=self.administrator,
            organisation=self.organisation,
            file_name="export.json",
            content=dumps(data or self.full_export()),
            is_dry_run=True,
            total=4,
        )
        import_run_execute(run_id=run.pk)


@pytest.fixture
def world(no_follow_ups) -> World:
    world = World()
    world.upload()
    return world


def start(user, bot: Bot, capture) -> Chat:
    with capture(execute=True):
        return bot_services.bot_start(user=user, bot=bot)


def bot_messages(chat: Chat, bot: Bot) -> list[Message]:
    return list(Message.objects.filter(chat=chat, author=bot.user).order_by("seq"))


def press(user, chat: Chat, button_text: str, capture) -> Update:
    """Press the button with this text on the bot's newest message that has it."""
    for found in reversed(list(Message.objects.filter(chat=chat).exclude(buttons=[]).order_by("seq"))):
        for row_number, row in enumerate(found.buttons):
            for column, button in enumerate(row):
                if button["text"] == button_text:
                    with capture(execute=True):
                        return bot_services.button_press(
                            user=user, chat_id=chat.pk, seq=found.seq, row=row_number, column=column
                        )
    raise AssertionError(f"no button {button_text!r}")


def forged_press(user, chat: Chat, bot: Bot, data: str, capture) -> Update:
    """A callback update with data no button of the person's chat carries."""
    with capture(execute=True):
        return bot_services.update_create(
            bot=bot,
            kind=UpdateKind.CALLBACK_QUERY,
            chat_id=chat.pk,
            payload={"id": f"{bot.pk}-forged", "from": bot_services.person_json(user), "data": data},
        )


def date_of(timestamp: int, organisation) -> str:
    zone = zoneinfo.ZoneInfo(organisation.effective_time_zone)
    return datetime.datetime.fromtimestamp(timestamp, tz=zone).strftime("%d.%m.%Y")


def chat_url(chat: Chat) -> str:
    return f"https://parta.example/chats/{chat.pk}/"


# --- The kept export ------------------------------------------------------------------------------------------------


def test_the_admin_upload_keeps_the_checked_export_for_the_bot(no_follow_ups):
    world = World()
    world.upload()

    kept = LegacyExport.objects.get(organisation=world.organisation)
    assert kept.conversations == 4
    assert export_parse(kept.content) == export_parse(dumps(world.full_export()))
    assert ImportRun.objects.get().content == ""  # the upload itself is emptied as before


def test_a_newer_upload_replaces_the_kept_export_and_a_command_dry_run_keeps_nothing(world, tmp_path):
    world.upload(world.export(world.chat(PEER, title="7Б — родители")))
    assert LegacyExport.objects.get(organisation=world.organisation).conversations == 1

    path = tmp_path / "export.json"
    path.write_text(dumps(world.full_export()), encoding="utf-8")
    call_command("import_legacy_chats", str(path), "--dry-run", "--no-progress", stdout=io.StringIO())
    assert LegacyExport.objects.get(organisation=world.organisation).conversations == 1


def test_the_dump_reads_back_as_the_same_export():
    data = School()
    parsed = export_parse(dumps(data.export(data.chat(PEER), data.chat(PEER_SECOND, admin_ids=[101, 102]))))
    assert export_parse(export_dump(parsed)) == parsed


# --- The whole flow -------------------------------------------------------------------------------------------------


def test_a_verified_teacher_moves_a_chat_with_its_members_and_history(
    world, eager, django_capture_on_commit_callbacks, no_follow_ups, settings
):
    chat = start(world.teacher, world.bot, django_capture_on_commit_callbacks)

    [listing] = bot_messages(chat, world.bot)
    newest = world.full_export()["conversations"]
    first_date = date_of(max(item["date"] for item in newest[0]["messages"]), world.organisation)
    second_date = date_of(newest[1]["messages"][0]["date"], world.organisation)
    assert listing.body == (
        f"Hello, {world.teacher.first_name}! I move your chats from the old messenger here, with their members "
        "and history.\n\n"
        "Your old chats to move:\n"
        f"1. «7Б — родители»: 3 members, last message {first_date}\n"
        f"2. «Кружок робототехники»: 2 members, last message {second_date}\n"
        "Press «Move» under a chat, or «Move all».\n\n"
        "Cannot be moved:\n"
        "• «Экскурсия»: no message in the current academic year"
    )
    assert listing.buttons == [
        [{"text": "Move «7Б — родители»", "callback_data": f"migrate:{PEER}"}],
        [{"text": "Move «Кружок робототехники»", "callback_data": f"migrate:{PEER_SECOND}"}],
        [{"text": "Move all", "callback_data": "migrate:all"}],
    ]
    assert "5А" not in listing.body  # another teacher's chat

    update = press(world.teacher, chat, "Move «7Б — родители»", django_capture_on_commit_callbacks)

    legacy = LegacyChat.objects.get(peer_id=PEER)
    new_chat = legacy.chat
    assert new_chat is not None
    assert (new_chat.title, new_chat.organisation, new_chat.created_by) == (
        "7Б — родители",
        world.organisation,
        world.teacher,
    )
    members = {member.user_id: member.role for member in ChatMember.objects.active().filter(chat=new_chat)}
    assert members == {world.teacher.pk: "owner", world.parent.pk: "member"}
    history = list(
        Message.objects.filter(chat=new_chat, kind=MessageKind.TEXT).order_by("seq").values_list("author_id", "body")
    )
    assert history == [(world.teacher.pk, "Добрый вечер!"), (world.parent.pk, "Спасибо!")]
    assert list(Invitation.objects.filter(chat=new_chat).values_list("phone", flat=True)) == [world.new_parent_phone]
    assert legacy.is_read_only
    # The notice to the old chat: one, queued once.
    assert LegacyNotice.objects.filter(legacy_chat=legacy).count() == 1
    assert no_follow_ups == [legacy.pk]
    assert not LegacyChat.objects.filter(peer_id=PEER_SECOND, migrated_at__isnull=False).exists()

    _listing, result, summary = bot_messages(chat, world.bot)
    assert result.body == f"✓ «7Б — родители» moved: 2 members, 1 invited by SMS: {chat_url(new_chat)}"
    assert summary.body == (
        "Done! What has changed:\n"
        f"• Your role is kept: teacher (verified), {world.organisation.short_name}\n"
        "• Your chats have moved:\n"
        f"  • «7Б — родители»: {chat_url(new_chat)}\n"
        "• The directory of organisations: https://parta.example/directory/\n"
        "• All services for education are here: https://parta.example/education/\n"
        "• A notice about the move is posted in your old chats, with the link to the new chat."
    )
    # The button press was answered, and the list offers what is left.
    assert Update.objects.get(pk=update.pk).answered_at is not None
    listing.refresh_from_db()
    assert listing.buttons == [
        [{"text": "Move «Кружок робототехники»", "callback_data": f"migrate:{PEER_SECOND}"}],
        [{"text": "Move all", "callback_data": "migrate:all"}],
    ]

    # Pressing again (a second press of a stale button, or the task run
    # twice) moves nothing more.
    chats_before, messages_before = Chat.objects.count(), Message.objects.filter(chat=new_chat).count()
    forged_press(world.teacher, chat, world.bot, f"migrate:{PEER}", django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        migration_bot.migration_bot_handle(world.bot, update)
    assert Chat.objects.count() == chats_before
    assert Message.objects.filter(chat=new_chat).count() == messages_before
    assert LegacyNotice.objects.filter(legacy_chat=legacy).count() == 1
    assert no_follow_ups == [legacy.pk]
    assert bot_messages(chat, world.bot)[3].body == (f"✓ «7Б — родители» was moved earlier: {chat_url(new_chat)}")

    # /start again: the moved chat is listed with its link.
    with django_capture_on_commit_callbacks(execute=True):
        bot_services.bot_start(user=world.teacher, bot=world.bot)
    newest_listing = bot_messages(chat, world.bot)[-1]
    assert f"Already moved:\n• «7Б — родители»: {chat_url(new_chat)}" in newest_listing.body


def test_move_all_moves_every_eligible_chat_of_the_teacher_only(
    world, eager, django_capture_on_commit_callbacks, no_follow_ups
):
    chat = start(world.teacher, world.bot, django_capture_on_commit_callbacks)

    press(world.teacher, chat, "Move all", django_capture_on_commit_callbacks)

    moved = dict(LegacyChat.objects.filter(migrated_at__isnull=False).values_list("peer_id", "chat_id"))
    assert set(moved) == {PEER, PEER_SECOND}
    assert sorted(no_follow_ups) == sorted(LegacyChat.objects.filter(peer_id__in=moved).values_list("pk", flat=True))
    first, second = Chat.objects.get(pk=moved[PEER]), Chat.objects.get(pk=moved[PEER_SECOND])
    result, summary = bot_messages(chat, world.bot)[1:]
    assert result.body == (
        f"✓ «7Б — родители» moved: 2 members, 1 invited by SMS: {chat_url(first)}\n"
        f"✓ «Кружок робототехники» moved: 2 members, 0 invited by SMS: {chat_url(second)}"
    )
    assert f"  • «7Б — родители»: {chat_url(first)}\n  • «Кружок робототехники»: {chat_url(second)}" in summary.body
    assert bot_messages(chat, world.bot)[0].buttons == []

    # Nothing is left: "Move all" again changes nothing.
    chats_before = Chat.objects.count()
    forged_press(world.teacher, chat, world.bot, "migrate:all", django_capture_on_commit_callbacks)
    assert Chat.objects.count() == chats_before
    assert "All your old chats have been moved." in bot_messages(chat, world.bot)[-1].body


def test_another_teachers_chat_is_never_moved_by_a_forged_button(
    world, eager, django_capture_on_commit_callbacks, no_follow_ups
):
    chat = start(world.teacher, world.bot, django_capture_on_commit_callbacks)

    forged_press(world.teacher, chat, world.bot, f"migrate:{PEER_OTHER_TEACHER}", django_capture_on_commit_callbacks)
    forged_press(world.teacher, chat, world.bot, "migrate:not-a-number", django_capture_on_commit_callbacks)
    forged_press(world.teacher, chat, world.bot, f"migrate:{PEER_INACTIVE}", django_capture_on_commit_callbacks)

    assert not LegacyChat.objects.filter(migrated_at__isnull=False).exists()
    assert Chat.objects.filter(organisation=world.organisation, kind="group").count() == 0
    assert no_follow_ups == []
    answers = [message.body for message in bot_messages(chat, world.bot)[1:]]
    assert answers == [
        "This chat is not among your old chats: nothing was moved.",
        "This chat is not among your old chats: nothing was moved.",
        "✗ «Экскурсия» not moved: no message in the current academic year",
    ]

    # The other teacher sees and moves their own.
    other_chat = start(world.other_teacher, world.bot, django_capture_on_commit_callbacks)
    assert bot_messages(other_chat, world.bot)[0].buttons[0] == [
        {"text": "Move «5А — родители»", "callback_data": f"migrate:{PEER_OTHER_TEACHER}"}
    ]

    # A press forged into the other teacher's chat with the bot moves
    # nothing and says nothing there.
    forged_press(world.teacher, other_chat, world.bot, "migrate:all", django_capture_on_commit_callbacks)
    assert not LegacyChat.objects.filter(migrated_at__isnull=False).exists()
    assert len(bot_messages(other_chat, world.bot)) == 1


@pytest.mark.parametrize("who", ["unverified_teacher", "parent"])
def test_only_verified_staff_may_start_the_bot(world, eager, django_capture_on_commit_callbacks, who):
    person = world.parent
    if who == "unverified_teacher":
        person = make_member(organisation=world.organisation, role=Role.TEACHER)
    chats_before, updates_before = Chat.objects.count(), Update.objects.count()

    with pytest.raises(PermissionDenied) as refused:
        start(person, world.bot, django_capture_on_commit_callbacks)

    assert refused.value.code == "bot_staff_only"
    assert (Chat.objects.count(), Update.objects.count()) == (chats_before, updates_before)
    assert not LegacyChat.objects.filter(migrated_at__isnull=False).exists()


def test_a_teacher_whose_verification_is_withdrawn_is_refused_politely(
    world, eager, django_capture_on_commit_callbacks, no_follow_ups
):
    chat = start(world.teacher, world.bot, django_capture_on_commit_callbacks)
    Membership.objects.filter(user=world.teacher).update(verification_status=VerificationStatus.REJECTED)

    update = press(world.teacher, chat, "Move all", django_capture_on_commit_callbacks)

    assert not LegacyChat.objects.filter(migrated_at__isnull=False).exists()
    assert no_follow_ups == []
    assert bot_messages(chat, world.bot)[-1].body.startswith(
        "Sorry, only verified teachers and staff of a school can move chats."
    )
    assert Update.objects.get(pk=update.pk).answered_at is not None


def test_a_verified_teacher_with_no_old_chats_is_told_where_to_get_help(
    world, eager, django_capture_on_commit_callbacks
):
    newcomer = make_member(organisation=world.organisation, role=Role.TEACHER)
    verify(newcomer, world.organisation)

    chat = start(newcomer, world.bot, django_capture_on_commit_callbacks)

    [answer] = bot_messages(chat, world.bot)
    assert "I found no old chats of yours to move." in answer.body
    assert f"Your organisation's contacts: https://parta.example/directory/{world.organisation.pk}/" in answer.body
    assert answer.buttons == []


def test_the_bot_moves_with_the_same_rules_as_the_admin_import(
    world, eager, django_capture_on_commit_callbacks, no_follow_ups
):
    """A chat the administrator already imported is listed as moved."""
    export_import(export=export_parse(dumps(world.full_export())), peer_ids=[PEER])
    legacy = LegacyChat.objects.get(peer_id=PEER)

    chat = start(world.teacher, world.bot, django_capture_on_commit_callbacks)

    [listing] = bot_messages(chat, world.bot)
    assert f"Already moved:\n• «7Б — родители»: {chat_url(legacy.chat)}" in listing.body
    assert [row[0]["callback_data"] for row in listing.buttons] == [f"migrate:{PEER_SECOND}", "migrate:all"]


# --- The demo -------------------------------------------------------------------------------------------------------


def test_the_demo_has_the_bot_and_old_chats_of_the_demo_teacher(db):
    from migration.demo import seed_migration_bot
    from organisations.demo import DemoData, seed_directory, seed_verification

    data = DemoData()
    seed_directory(data)
    seed_verification(data)
    seed_migration_bot(data)
    seed_migration_bot(data)  # idempotent

    bot = Bot.objects.get(username="chat_migration_bot")
    assert (bot.name, bot.is_verified, bot.is_staff_only, bot.is_platform) == ("Перенос чатов", True, True, True)
    assert LegacyExport.objects.count() == 1
    chats = migration_bot.old_chats_of(user=data["teacher_verified"])
    assert [(old.title, old.status) for old in chats] == [
        ("7Б — родители (ВКМ)", "migrated"),
        ("Кружок робототехники", "migrated"),
        ("Экскурсия в Коломенское", "skipped"),
    ]
    assert json.loads(LegacyExport.objects.get().content)["organisation"]["inn"] == data["school_1"].inn
