"""A big channel's members are subscribed by a Celery task queued after the
channel's commit, a batch per run, not within the request that creates it.
Celery runs eagerly here (unit tests only); everything else is real."""

from collections.abc import Iterator

import pytest
from django.utils import timezone

from chats import tasks_channels
from chats.models import Chat, ChatMember, MemberRole
from chats.services import channels
from chats.tests.factories import directory_changes_forget
from organisations.models import OrganisationKind, Role
from organisations.tests.factories import make_member, make_organisation, make_school_with_class
from portal.celery import app as celery_app

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _forget_directory_changes() -> Iterator[None]:
    directory_changes_forget()
    yield
    directory_changes_forget()


@pytest.fixture
def eager_celery() -> Iterator[None]:
    previous = (celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates)
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = previous


@pytest.fixture
def small_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A "big" channel is one of more than 3 people, subscribed 2 at a time."""
    monkeypatch.setattr(channels, "SUBSCRIPTION_INLINE_MAX", 3)
    monkeypatch.setattr(channels, "SUBSCRIPTION_INSERT_BATCH", 2)


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """What would go to the broker, instead of running it."""
    calls: list[tuple[int, ...]] = []
    monkeypatch.setattr(tasks_channels.channel_subscriptions_fill, "delay", lambda *args: calls.append(args))
    return calls


def region_with_schools():
    """A regional authority with two schools below it: 2 + 2×(administrator,
    teacher, 2 students, 2 parents) = 14 people."""
    region = make_organisation(kind=OrganisationKind.REGIONAL_AUTHORITY, is_verified=True)
    schools = [make_school_with_class(parent=region, students=2) for _index in range(2)]
    administrator = make_member(organisation=region, role=Role.ADMINISTRATOR)
    official = make_member(organisation=region, role=Role.OFFICIAL)
    people = {administrator.pk, official.pk}
    for school in schools:
        people |= {school.administrator.pk, school.teacher.pk, *(u.pk for u in school.students + school.parents)}
    return region, administrator, people


def subscriptions(chat: Chat) -> dict[int, tuple[str, bool]]:
    return {member.user_id: (member.role, member.is_synced) for member in ChatMember.objects.active().filter(chat=chat)}


def test_creating_a_big_channel_subscribes_nobody_in_the_request_and_queues_the_task_after_commit(
    small_limits, queued, django_capture_on_commit_callbacks
):
    region, administrator, _people = region_with_schools()

    with django_capture_on_commit_callbacks() as callbacks:
        chat = channels.channel_create(actor=administrator, organisation=region, title="Регион")
        # Nothing is queued inside the transaction, and only the owner is in.
        assert queued == []
        assert subscriptions(chat) == {administrator.pk: (MemberRole.OWNER, False)}

    for callback in callbacks:
        callback()
    assert queued == [(chat.pk,)]


def test_the_task_subscribes_the_whole_audience_in_batches(
    small_limits, eager_celery, django_capture_on_commit_callbacks
):
    region, administrator, people = region_with_schools()
    outsider = make_school_with_class(students=1)
    runs: list[int] = []
    fill = channels.channel_subscriptions_fill

    def counted(**arguments):
        runs.append(arguments["after_user_id"])
        return fill(**arguments)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(channels, "channel_subscriptions_fill", counted)
        with django_capture_on_commit_callbacks(execute=True):
            chat = channels.channel_create(actor=administrator, organisation=region, title="Регион")

    found = subscriptions(chat)
    assert set(found) == people
    assert found[administrator.pk] == (MemberRole.OWNER, True)
    assert {found[pk] for pk in people - {administrator.pk}} == {(MemberRole.MEMBER, True)}
    assert outsider.student.pk not in found
    # 14 people, 2 a run: 7 runs, and an 8th that finds the audience done.
    assert len(runs) == 8
    assert runs[0] == 0 and runs == sorted(runs)


def test_a_batch_run_again_changes_nothing_and_keeps_removed_and_hand_subscribed_people_right(small_limits):
    region, administrator, people = region_with_schools()
    chat = channels.channel_create(actor=administrator, organisation=region, title="Регион")
    first, second, *_others = sorted(people - {administrator.pk})
    # One person subscribed by hand (not automatic), one a moderator removed.
    ChatMember.objects.create(chat=chat, user_id=first, role=MemberRole.MEMBER, is_synced=False)
    ChatMember.objects.create(chat=chat, user_id=second, left_at=timezone.now(), is_removed=True)

    cursor: int | None = 0
    while cursor is not None:
        cursor = channels.channel_subscriptions_fill(chat_id=chat.pk, after_user_id=cursor)
    once = sorted(ChatMember.objects.filter(chat=chat).values_list("user_id", "role", "is_synced", "left_at"))
    # A retry of every batch, as after a lost worker.
    cursor = 0
    while cursor is not None:
        cursor = channels.channel_subscriptions_fill(chat_id=chat.pk, after_user_id=cursor)
    twice = sorted(ChatMember.objects.filter(chat=chat).values_list("user_id", "role", "is_synced", "left_at"))

    assert once == twice
    found = subscriptions(chat)
    assert found[first] == (MemberRole.MEMBER, True)  # membership wins: now automatic
    assert second not in found
    assert set(found) == people - {second}
    assert ChatMember.objects.filter(chat=chat, user_id=first).count() == 1


def test_a_small_channel_is_complete_at_once_and_queues_nothing(queued, django_capture_on_commit_callbacks):
    school = make_school_with_class(students=2)

    with django_capture_on_commit_callbacks(execute=True):
        chat = channels.channel_create(actor=school.administrator, organisation=school.school, title="Школа")

    assert queued == []
    assert set(subscriptions(chat)) == {
        school.administrator.pk,
        school.teacher.pk,
        *(user.pk for user in school.students + school.parents),
    }


def test_the_task_returns_quietly_for_a_channel_that_is_gone(eager_celery):
    school = make_school_with_class(students=1)
    chat = channels.channel_create(actor=school.administrator, organisation=school.school, title="Школа")
    Chat.objects.filter(pk=chat.pk).update(is_archived=True)
    members = subscriptions(chat)

    tasks_channels.channel_subscriptions_fill.delay(chat.pk)
    tasks_channels.channel_subscriptions_fill.delay(10**9)

    assert subscriptions(chat) == members


def test_a_broker_that_is_down_loses_nothing_the_nightly_resync_repairs(
    small_limits, monkeypatch, django_capture_on_commit_callbacks, caplog
):
    region, administrator, people = region_with_schools()

    def refuse(*args: int) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks_channels.channel_subscriptions_fill, "delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        chat = channels.channel_create(actor=administrator, organisation=region, title="Регион")

    assert Chat.objects.filter(pk=chat.pk).exists()
    assert set(subscriptions(chat)) == {administrator.pk}
    assert "subscription task not queued" in caplog.text
    tasks_channels.channel_subscriptions_resync()
    assert set(subscriptions(chat)) == people
