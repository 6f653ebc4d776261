"""Broadcast channels (SPEC §6): creation and the verified badge, automatic
subscriptions, editors-only posting, acknowledgements and their statistics,
private replies."""

from contextlib import contextmanager
from dataclasses import dataclass

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from chats.models import Acknowledgement, Chat, ChatKind, ChatMember, MemberRole, Message, Notification
from chats.services import channels
from common.errors import ApplicationError, NotFound, PermissionDenied
from common.models import AuditEvent
from organisations import services as organisation_services
from organisations.extensions import directory_hook_register
from organisations.models import Membership, Organisation, OrganisationKind, Role
from organisations.tests.factories import (
    SchoolWithClass,
    make_member,
    make_organisation,
    make_school_with_class,
    make_user,
)


@pytest.fixture(autouse=True)
def _channels_hook():
    """The hook ChatsConfig.ready() registers; a rolled-back test may leave
    the directory's pending changes behind on the connection."""
    directory_hook_register(channels.channels_directory_hook)
    connection.__dict__.pop("_parta_directory_changes", None)
    yield
    connection.__dict__.pop("_parta_directory_changes", None)


@contextmanager
def directory_change(capture):
    """Run the directory hooks of the changes made inside, as after a commit.
    Inside the test's transaction, the changes made before (which never
    commit) would otherwise keep the new ones pending."""
    connection.__dict__.pop("_parta_directory_changes", None)
    with capture(execute=True):
        yield


@dataclass
class ChannelWorld:
    authority: Organisation
    school: SchoolWithClass
    channel: Chat

    @property
    def editor(self) -> User:
        return self.school.teacher


def make_channel_world(*, is_public: bool = False, students: int = 2) -> ChannelWorld:
    """A verified authority with a verified school under it (administrator,
    homeroom teacher, students and one parent each) and the school's
    channel, created by the administrator, with the teacher as its editor."""
    authority = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, is_verified=True)
    school = make_school_with_class(parent=authority, students=students, is_verified=True)
    channel = channels.channel_create(
        actor=school.administrator, organisation=school.school, title="Объявления школы", is_public=is_public
    )
    channels.channel_editor_add(actor=school.administrator, chat_id=channel.pk, user_id=school.teacher.pk)
    return ChannelWorld(authority=authority, school=school, channel=channel)


def active_members(chat: Chat) -> dict[int, tuple[str, bool]]:
    return {member.user_id: (member.role, member.is_synced) for member in ChatMember.objects.active().filter(chat=chat)}


def post(world: ChannelWorld, *, requires_acknowledgement: bool = True, body: str = "Собрание в четверг") -> Message:
    message, created = channels.channel_post(
        user=world.editor,
        chat_id=world.channel.pk,
        body=body,
        client_id=f"c-{Message.objects.count()}",
        requires_acknowledgement=requires_acknowledgement,
    )
    assert created
    return message


# --- Creation and the badge -------------------------------------------------------


@pytest.mark.django_db
def test_channel_of_a_school_subscribes_its_members_automatically():
    world = make_channel_world()
    school = world.school

    assert world.channel.kind == ChatKind.CHANNEL
    assert world.channel.organisation_id == school.school.pk
    assert active_members(world.channel) == {
        school.administrator.pk: (MemberRole.OWNER, True),
        school.teacher.pk: (MemberRole.EDITOR, True),
        school.students[0].pk: (MemberRole.MEMBER, True),
        school.students[1].pk: (MemberRole.MEMBER, True),
        school.parents[0].pk: (MemberRole.MEMBER, True),
        school.parents[1].pk: (MemberRole.MEMBER, True),
    }
    event = AuditEvent.objects.get(action="channel.create")
    assert event.object_id == str(world.channel.pk)
    assert event.changes == {"title": "Объявления школы", "is_public": False, "is_verified": True}


@pytest.mark.django_db
def test_only_administrators_of_the_organisation_create_channels():
    school = make_school_with_class(students=1)
    other_admin = make_member(organisation=make_organisation(), role=Role.ADMINISTRATOR)

    for actor in (school.teacher, school.student, school.parent, other_admin):
        with pytest.raises(PermissionDenied) as refusal:
            channels.channel_create(actor=actor, organisation=school.school, title="Канал")
        assert refusal.value.code == "not_organisation_administrator"

    assert Chat.objects.filter(kind=ChatKind.CHANNEL).count() == 0
    assert not AuditEvent.objects.filter(action="channel.create").exists()


@pytest.mark.django_db
def test_an_authority_administrator_creates_channels_of_its_schools():
    authority = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY)
    official = make_member(organisation=authority, role=Role.ADMINISTRATOR)
    school = make_organisation(parent=authority)

    channel = channels.channel_create(actor=official, organisation=school, title="Канал школы")

    assert channel.organisation_id == school.pk


@pytest.mark.django_db
def test_the_verified_badge_comes_only_from_a_verified_organisation():
    verified = make_school_with_class(students=0, is_verified=True)
    unverified = make_school_with_class(students=0, is_verified=False)

    official = channels.channel_create(actor=verified.administrator, organisation=verified.school, title="Официально")
    unofficial = channels.channel_create(
        actor=unverified.administrator, organisation=unverified.school, title="Минпросвещения России"
    )

    assert official.is_verified is True
    assert channels.channel_is_verified(official) is True
    assert unofficial.is_verified is False
    assert channels.channel_is_verified(unofficial) is False

    # The badge goes when the organisation loses its verification.
    organisation_services.organisation_update(actor=None, organisation=verified.school, is_verified=False)
    official.refresh_from_db()
    assert channels.channel_is_verified(Chat.objects.select_related("organisation").get(pk=official.pk)) is False


@pytest.mark.django_db
def test_invalid_titles_are_refused():
    school = make_school_with_class(students=0)
    for title in ("", "   ", "Я" * 201, None, 5):
        with pytest.raises(ApplicationError) as refusal:
            channels.channel_create(actor=school.administrator, organisation=school.school, title=title)
        assert refusal.value.extra == {"field": "title"}
    assert not Chat.objects.filter(kind=ChatKind.CHANNEL).exists()


# --- Automatic subscriptions --------------------------------------------------------


@pytest.mark.django_db
def test_an_authority_channel_subscribes_the_members_of_its_whole_subtree():
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, is_verified=True)
    region = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, parent=ministry)
    municipality = make_organisation(kind=OrganisationKind.MUNICIPAL_AUTHORITY, parent=region)
    inside = make_school_with_class(parent=municipality, students=1)
    outside = make_school_with_class(students=1)
    minister = make_member(organisation=ministry, role=Role.ADMINISTRATOR)
    regional_official = make_member(organisation=region, role=Role.OFFICIAL)
    regional_admin = make_member(organisation=region, role=Role.ADMINISTRATOR)

    regional_channel = channels.channel_create(actor=regional_admin, organisation=region, title="Регион")
    ministry_channel = channels.channel_create(actor=minister, organisation=ministry, title="Минпросвещения России")

    in_subtree = {
        regional_official.pk,
        regional_admin.pk,
        inside.administrator.pk,
        inside.teacher.pk,
        inside.student.pk,
        inside.parent.pk,
    }
    outsiders = {outside.administrator.pk, outside.teacher.pk, outside.student.pk, outside.parent.pk}
    ministry_members = set(active_members(ministry_channel))
    assert in_subtree | {minister.pk} == ministry_members
    assert not outsiders & ministry_members
    regional_members = set(active_members(regional_channel))
    assert in_subtree <= regional_members
    assert minister.pk not in regional_members
    assert ministry_channel.is_verified is True


@pytest.mark.django_db
def test_the_directory_hook_keeps_automatic_subscriptions_in_step(django_capture_on_commit_callbacks):
    world = make_channel_world()
    outsider = make_member(organisation=make_organisation(), role=Role.TEACHER)
    channel = world.channel
    newcomer = make_user()

    with directory_change(django_capture_on_commit_callbacks):
        organisation_services.membership_create(
            actor=None, user=newcomer, organisation=world.school.school, role=Role.STAFF
        )
    assert active_members(channel)[newcomer.pk] == (MemberRole.MEMBER, True)

    # Someone who subscribed by hand and then joins the organisation is kept
    # by the sync from then on ("membership wins").
    world.channel.is_public = True
    world.channel.save()
    channels.channel_subscribe(user=outsider, chat_id=channel.pk)
    assert active_members(channel)[outsider.pk] == (MemberRole.MEMBER, False)
    with directory_change(django_capture_on_commit_callbacks):
        membership = organisation_services.membership_create(
            actor=None, user=outsider, organisation=world.school.school, role=Role.TEACHER
        )
    assert active_members(channel)[outsider.pk] == (MemberRole.MEMBER, True)

    with directory_change(django_capture_on_commit_callbacks):
        organisation_services.membership_end(
            actor=None, membership=Membership.objects.active().get(user=newcomer, organisation=world.school.school)
        )
        organisation_services.membership_end(actor=None, membership=membership)
    members = active_members(channel)
    assert newcomer.pk not in members
    assert outsider.pk not in members
    assert world.school.student.pk in members


@pytest.mark.django_db
def test_the_hook_reaches_an_authority_channel_from_a_school_below(django_capture_on_commit_callbacks):
    world = make_channel_world()
    authority_admin = make_member(organisation=world.authority, role=Role.ADMINISTRATOR)
    authority_channel = channels.channel_create(actor=authority_admin, organisation=world.authority, title="Регион")
    pupil = make_user()

    with directory_change(django_capture_on_commit_callbacks):
        organisation_services.study_group_student_add(actor=None, group=world.school.group, student=pupil)

    assert active_members(authority_channel)[pupil.pk] == (MemberRole.MEMBER, True)
    assert active_members(world.channel)[pupil.pk] == (MemberRole.MEMBER, True)


@pytest.mark.django_db
def test_the_sync_does_not_bring_back_someone_a_moderator_removed():
    world = make_channel_world()
    student = world.school.student
    ChatMember.objects.filter(chat=world.channel, user=student).update(left_at=timezone.now(), is_removed=True)

    channels.channel_subscriptions_sync(chat=world.channel)

    assert student.pk not in active_members(world.channel)


@pytest.mark.django_db
def test_directory_subscription_to_public_channels():
    world = make_channel_world(is_public=True)
    reader = make_member(organisation=make_organisation(), role=Role.TEACHER)

    member, created = channels.channel_subscribe(user=reader, chat_id=world.channel.pk)
    again, created_again = channels.channel_subscribe(user=reader, chat_id=world.channel.pk)

    assert (created, created_again) == (True, False)
    assert member.pk == again.pk
    assert (member.role, member.is_synced) == (MemberRole.MEMBER, False)

    channels.channel_unsubscribe(user=reader, chat_id=world.channel.pk)
    assert reader.pk not in active_members(world.channel)


@pytest.mark.django_db
def test_a_private_channel_of_another_organisation_is_not_found():
    world = make_channel_world(is_public=False)
    reader = make_member(organisation=make_organisation(), role=Role.TEACHER)
    members_before = ChatMember.objects.count()

    with pytest.raises(NotFound):
        channels.channel_subscribe(user=reader, chat_id=world.channel.pk)
    with pytest.raises(NotFound):
        channels.channel_get(user=reader, chat_id=world.channel.pk)

    assert ChatMember.objects.count() == members_before
    assert list(channels.channel_list(user=reader)) == []


@pytest.mark.django_db
def test_students_see_public_channels_of_their_own_organisations_only():
    world = make_channel_world(is_public=True)
    other = make_school_with_class(students=1)
    other_channel = channels.channel_create(
        actor=other.administrator, organisation=other.school, title="Чужая школа", is_public=True
    )

    assert [chat.pk for chat in channels.channel_list(user=world.school.student)] == [world.channel.pk]
    with pytest.raises(NotFound):
        channels.channel_subscribe(user=world.school.student, chat_id=other_channel.pk)


@pytest.mark.django_db
def test_an_automatic_subscription_cannot_be_left():
    world = make_channel_world()
    parent = world.school.parent

    with pytest.raises(ApplicationError) as refusal:
        channels.channel_unsubscribe(user=parent, chat_id=world.channel.pk)

    assert (refusal.value.code, refusal.value.status_code) == ("subscription_automatic", 409)
    assert parent.pk in active_members(world.channel)


# --- Editors -------------------------------------------------------------------------


@pytest.mark.django_db
def test_editors_are_added_by_the_owner_from_the_staff():
    world = make_channel_world()
    school = world.school
    colleague = make_member(organisation=school.school, role=Role.TEACHER)

    member, changed = channels.channel_editor_add(
        actor=school.administrator, chat_id=world.channel.pk, user_id=colleague.pk
    )
    _same, changed_again = channels.channel_editor_add(
        actor=school.administrator, chat_id=world.channel.pk, user_id=colleague.pk
    )

    assert (member.role, changed, changed_again) == (MemberRole.EDITOR, True, False)
    assert AuditEvent.objects.filter(action="channel.editor_add", changes={"user": colleague.pk}).count() == 1


@pytest.mark.django_db
def test_editors_must_be_staff_and_only_managers_add_them():
    world = make_channel_world()
    school = world.school
    stranger = make_user()

    for user_id in (school.parent.pk, school.student.pk, stranger.pk, 10**9, "1", None):
        with pytest.raises(ApplicationError) as refusal:
            channels.channel_editor_add(actor=school.administrator, chat_id=world.channel.pk, user_id=user_id)
        assert refusal.value.code == "editor_not_staff"
    for actor in (school.teacher, school.parent):
        with pytest.raises(PermissionDenied) as denied:
            channels.channel_editor_add(actor=actor, chat_id=world.channel.pk, user_id=school.teacher.pk)
        assert denied.value.code == "not_channel_manager"
    with pytest.raises(NotFound):
        channels.channel_editor_add(actor=stranger, chat_id=world.channel.pk, user_id=school.teacher.pk)

    assert active_members(world.channel)[school.parent.pk] == (MemberRole.MEMBER, True)
    assert AuditEvent.objects.filter(action="channel.editor_add").count() == 1


# --- Posting ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_editors_post_and_a_refusal_stores_nothing():
    world = make_channel_world()
    for reader in (world.school.student, world.school.parent):
        with pytest.raises(PermissionDenied) as refusal:
            channels.channel_post(user=reader, chat_id=world.channel.pk, body="Привет", client_id="x")
        assert refusal.value.code == "channel_read_only"

    world.channel.refresh_from_db()
    assert world.channel.last_seq == 0
    assert Message.objects.count() == 0
    assert Notification.objects.count() == 0

    message = post(world)
    assert (message.seq, message.author_id, message.requires_acknowledgement) == (1, world.editor.pk, True)
    assert message.escalate_at is None


@pytest.mark.django_db
def test_a_post_may_be_escalated_after_hours():
    world = make_channel_world()

    message, _created = channels.channel_post(
        user=world.editor,
        chat_id=world.channel.pk,
        body="Справка до пятницы",
        client_id="a",
        requires_acknowledgement=True,
        escalate_after_hours=24,
    )
    again, created = channels.channel_post(
        user=world.editor,
        chat_id=world.channel.pk,
        body="Справка до пятницы",
        client_id="a",
        requires_acknowledgement=True,
        escalate_after_hours=48,
    )

    message.refresh_from_db()
    assert (message.escalate_at - message.created_at).total_seconds() == 24 * 3600
    assert (again.pk, created) == (message.pk, False)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("hours", "requires_acknowledgement"), [(0, True), (24 * 7 + 1, True), ("5", True), (True, True), (5, False)]
)
def test_invalid_escalation_is_refused_before_anything_is_stored(hours, requires_acknowledgement):
    world = make_channel_world()

    with pytest.raises(ApplicationError) as refusal:
        channels.channel_post(
            user=world.editor,
            chat_id=world.channel.pk,
            body="Текст",
            requires_acknowledgement=requires_acknowledgement,
            escalate_after_hours=hours,
        )

    assert refusal.value.extra == {"field": "escalate_after_hours"}
    assert Message.objects.count() == 0


@pytest.mark.django_db
def test_posting_costs_the_same_whatever_the_number_of_subscribers():
    small = make_channel_world(students=1)
    large = make_channel_world(students=12)

    def queries_of_a_post(world: ChannelWorld) -> int:
        with CaptureQueriesContext(connection) as context:
            post(world)
        return len(context.captured_queries)

    assert queries_of_a_post(small) == queries_of_a_post(large)
    assert Notification.objects.count() == 0
    assert Acknowledgement.objects.count() == 0


# --- Acknowledgements and statistics -------------------------------------------------


@pytest.mark.django_db
def test_acknowledging_is_idempotent_and_marks_the_post_read():
    world = make_channel_world()
    message = post(world)
    parent = world.school.parent

    first, created = channels.acknowledgement_create(user=parent, chat_id=world.channel.pk, seq=message.seq)
    second, created_again = channels.acknowledgement_create(user=parent, chat_id=world.channel.pk, seq=message.seq)

    assert (created, created_again, first.pk) == (True, False, second.pk)
    assert Acknowledgement.objects.filter(message=message).count() == 1
    assert ChatMember.objects.active().get(chat=world.channel, user=parent).last_read_seq == message.seq


@pytest.mark.django_db
def test_acknowledging_what_needs_none_or_is_not_there_is_refused():
    world = make_channel_world()
    plain = post(world, requires_acknowledgement=False)
    stranger = make_member(organisation=make_organisation(), role=Role.TEACHER)

    with pytest.raises(ApplicationError) as refusal:
        channels.acknowledgement_create(user=world.school.parent, chat_id=world.channel.pk, seq=plain.seq)
    assert refusal.value.code == "acknowledgement_not_required"
    with pytest.raises(NotFound):
        channels.acknowledgement_create(user=world.school.parent, chat_id=world.channel.pk, seq=99)
    with pytest.raises(NotFound):
        channels.acknowledgement_create(user=stranger, chat_id=world.channel.pk, seq=plain.seq)
    assert Acknowledgement.objects.count() == 0


@pytest.mark.django_db
def test_awaiting_acknowledgement_is_counted_when_asked():
    world = make_channel_world()
    first = post(world)
    post(world)
    post(world, requires_acknowledgement=False)
    student = world.school.student

    def awaiting(user: User) -> int:
        return channels.awaiting_acknowledgement_count(channels.channel_get(user=user, chat_id=world.channel.pk))

    assert awaiting(student) == 2
    channels.acknowledgement_create(user=student, chat_id=world.channel.pk, seq=first.seq)
    assert awaiting(student) == 1
    assert awaiting(world.editor) == 0


@pytest.mark.django_db
def test_statistics_are_exact(django_assert_num_queries):
    world = make_channel_world(students=3)
    school = world.school
    message = post(world)
    later = post(world)
    channel = world.channel
    # Student 0 and parent 1 acknowledge; parent 2 has read past the post.
    channels.acknowledgement_create(user=school.students[0], chat_id=channel.pk, seq=message.seq)
    channels.acknowledgement_create(user=school.parents[1], chat_id=channel.pk, seq=message.seq)
    ChatMember.objects.filter(chat=channel, user=school.parents[2]).update(last_read_seq=later.seq)

    with django_assert_num_queries(9):
        statistics = channels.post_statistics_get(user=world.editor, chat_id=channel.pk, seq=message.seq, limit=2)

    assert (statistics.subscribers, statistics.read, statistics.acknowledged) == (6, 3, 2)
    assert statistics.not_acknowledged_count == 4
    expected = sorted(
        [school.students[1], school.students[2], school.parents[0], school.parents[2]],
        key=lambda user: (user.last_name, user.first_name, user.pk),
    )
    assert [user.pk for user in statistics.not_acknowledged] == [user.pk for user in expected[:2]]
    rest = channels.post_statistics_get(user=world.editor, chat_id=channel.pk, seq=message.seq, offset=2, limit=2)
    assert [user.pk for user in rest.not_acknowledged] == [user.pk for user in expected[2:]]
    [by_class] = statistics.by_class
    assert (by_class.name, by_class.students, by_class.students_acknowledged) == ("7Б", 3, 1)
    assert (by_class.parents, by_class.parents_acknowledged) == (3, 1)
    [by_organisation] = statistics.by_organisation
    assert (by_organisation.id, by_organisation.subscribers, by_organisation.read, by_organisation.acknowledged) == (
        school.school.pk,
        6,
        3,
        2,
    )


@pytest.mark.django_db
def test_statistics_cost_the_same_whatever_the_number_of_subscribers():
    small = make_channel_world(students=1)
    large = make_channel_world(students=10)

    def queries(world: ChannelWorld) -> int:
        message = post(world)
        with CaptureQueriesContext(connection) as context:
            channels.post_statistics_get(user=world.editor, chat_id=world.channel.pk, seq=message.seq)
        return len(context.captured_queries)

    assert queries(small) == queries(large)


@pytest.mark.django_db
def test_statistics_are_for_editors_only():
    world = make_channel_world()
    message = post(world)

    for reader in (world.school.student, world.school.parent):
        with pytest.raises(PermissionDenied) as refusal:
            channels.post_statistics_get(user=reader, chat_id=world.channel.pk, seq=message.seq)
        assert refusal.value.code == "not_channel_editor"
    with pytest.raises(NotFound):
        channels.post_statistics_get(user=make_user(), chat_id=world.channel.pk, seq=message.seq)


@pytest.mark.django_db
def test_an_authority_channel_shows_counts_not_names():
    world = make_channel_world()
    admin = make_member(organisation=world.authority, role=Role.ADMINISTRATOR)
    regional = channels.channel_create(actor=admin, organisation=world.authority, title="Регион")
    message, _created = channels.channel_post(
        user=admin, chat_id=regional.pk, body="Всем школам", requires_acknowledgement=True
    )

    statistics = channels.post_statistics_get(user=admin, chat_id=regional.pk, seq=message.seq)

    assert statistics.names_shown is False
    assert statistics.not_acknowledged == []
    assert statistics.not_acknowledged_count == statistics.subscribers == 6
    assert [(row.id, row.subscribers) for row in statistics.by_organisation] == [(world.school.school.pk, 6)]
    assert statistics.by_class == []


# --- Private replies -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_private_reply_opens_exactly_one_direct_chat_with_the_author():
    world = make_channel_world()
    message = post(world, body="Завтра субботник. Возьмите перчатки.")
    parent = world.school.parent

    first = channels.private_reply_send(user=parent, chat_id=world.channel.pk, seq=message.seq, body="Мы придём")
    second = channels.private_reply_send(user=parent, chat_id=world.channel.pk, seq=message.seq, body="Вдвоём")

    direct_chats = Chat.objects.filter(kind=ChatKind.DIRECT)
    assert list(direct_chats) == [first.chat]
    assert second.chat.pk == first.chat.pk
    assert set(active_members(first.chat)) == {parent.pk, world.editor.pk}
    bodies = list(Message.objects.filter(chat=first.chat).order_by("seq").values_list("body", flat=True))
    assert [body.split("\n\n", 1)[1] for body in bodies] == ["Мы придём", "Вдвоём"]
    for body in bodies:
        quote = body.split("\n\n", 1)[0]
        assert "«Объявления школы»" in quote
        assert "«Завтра субботник. Возьмите перчатки.»" in quote
    assert Notification.objects.filter(user=world.editor, kind=Notification.Kind.REPLY).count() == 2


@pytest.mark.django_db
def test_a_private_reply_to_ones_own_post_is_refused():
    world = make_channel_world()
    message = post(world)

    with pytest.raises(ApplicationError) as refusal:
        channels.private_reply_send(user=world.editor, chat_id=world.channel.pk, seq=message.seq, body="Я")

    assert refusal.value.code == "private_reply_unavailable"
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()


@pytest.mark.django_db
def test_a_child_replies_privately_only_to_contacts():
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, is_verified=True)
    school = make_school_with_class(parent=ministry, students=1)
    minister = make_member(organisation=ministry, role=Role.ADMINISTRATOR)
    channel = channels.channel_create(actor=minister, organisation=ministry, title="Минпросвещения России")
    message, _created = channels.channel_post(user=minister, chat_id=channel.pk, body="Разговоры о важном")
    messages_before = Message.objects.count()

    with pytest.raises(PermissionDenied) as refusal:
        channels.private_reply_send(user=school.student, chat_id=channel.pk, seq=message.seq, body="Здравствуйте")

    assert refusal.value.code == "contact_not_allowed"
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()
    assert Message.objects.count() == messages_before
    assert Notification.objects.count() == 0

    # A parent (not in safe mode) may; and a child may answer its own school's staff.
    reply = channels.private_reply_send(user=school.parent, chat_id=channel.pk, seq=message.seq, body="Спасибо")
    assert reply.created is True
    school_channel = channels.channel_create(actor=school.administrator, organisation=school.school, title="Школа")
    school_post, _created = channels.channel_post(user=school.administrator, chat_id=school_channel.pk, body="Урок")
    reply = channels.private_reply_send(
        user=school.student, chat_id=school_channel.pk, seq=school_post.seq, body="Понял"
    )
    assert set(active_members(reply.chat)) == {school.student.pk, school.administrator.pk}


@pytest.mark.django_db
def test_a_reply_too_long_with_its_quote_is_refused():
    world = make_channel_world()
    message = post(world)

    with pytest.raises(ApplicationError) as refusal:
        channels.private_reply_send(
            user=world.school.parent, chat_id=world.channel.pk, seq=message.seq, body="я" * 3990
        )

    assert refusal.value.code == "message_too_long"
    assert not Chat.objects.filter(kind=ChatKind.DIRECT).exists()


@pytest.mark.django_db
def test_non_channels_are_not_channels():
    world = make_channel_world()
    parent = world.school.parent
    message = post(world)
    reply = channels.private_reply_send(user=parent, chat_id=world.channel.pk, seq=message.seq, body="Да")

    with pytest.raises(NotFound):
        channels.channel_get(user=parent, chat_id=reply.chat.pk)
    with pytest.raises(NotFound):
        channels.channel_post(user=parent, chat_id=reply.chat.pk, body="Текст")


# --- Demo ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_demo_channels_are_seeded_once():
    from chats.demo_channels import seed_channels
    from organisations.demo import seed_demo_data

    data = seed_demo_data()
    seed_channels(data)
    counts = (Chat.objects.filter(kind=ChatKind.CHANNEL).count(), Message.objects.count(), ChatMember.objects.count())
    seed_channels(data)

    assert (
        Chat.objects.filter(kind=ChatKind.CHANNEL).count(),
        Message.objects.count(),
        ChatMember.objects.count(),
    ) == counts
    ministry = data["channel_ministry"]
    school = data["channel_school"]
    assert (ministry.title, ministry.is_verified, school.is_verified) == ("Минпросвещения России", True, True)
    assert data["student"].pk in active_members(ministry)
    assert data["parent"].pk in active_members(school)
    posts = Message.objects.filter(chat=school).order_by("seq")
    assert [(post.requires_acknowledgement, post.escalate_at is not None) for post in posts] == [
        (True, True),
        (False, False),
    ]
    assert "Разговоры о важном" in Message.objects.get(chat=ministry).body
