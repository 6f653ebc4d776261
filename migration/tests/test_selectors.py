from django.utils import timezone

from migration.models import LegacyChat, LegacyNotice
from migration.selectors import (
    import_runs_visible_to,
    legacy_chats_visible_to,
    migration_counts,
    notices_visible_to,
)
from organisations.models import Role
from organisations.tests.factories import make_member, make_organisation, make_user


def test_migration_counts_maps_each_organisation_to_migrated_and_eligible_in_one_query(db, django_assert_num_queries):
    school, other, empty = make_organisation(), make_organisation(), make_organisation()
    from chats.models import Chat, ChatKind

    for peer_id in (2000000001, 2000000002):
        chat = Chat.objects.create(kind=ChatKind.GROUP, title="7Б", organisation=school)
        LegacyChat.objects.create(organisation=school, peer_id=peer_id, chat=chat, migrated_at=timezone.now())
    LegacyChat.objects.create(organisation=school, peer_id=2000000003)
    LegacyChat.objects.create(organisation=other, peer_id=2000000004)

    with django_assert_num_queries(1):
        counts = migration_counts(organisation_ids=iter([school.pk, other.pk, empty.pk]))

    assert counts == {school.pk: (2, 3), other.pk: (0, 1), empty.pk: (0, 0)}


def test_migration_counts_of_no_organisations_asks_nothing(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert migration_counts(organisation_ids=[]) == {}


def test_administrators_see_their_organisations_old_chats_and_notices_and_a_superuser_all(db):
    school, other = make_organisation(), make_organisation()
    administrator = make_member(organisation=school, role=Role.ADMINISTRATOR)
    chats = [
        LegacyChat.objects.create(organisation=organisation, peer_id=2000000001 + number, title="7Б")
        for number, organisation in enumerate((school, other))
    ]
    notices = [
        LegacyNotice.objects.create(legacy_chat=chat, random_id=number, text="…") for number, chat in enumerate(chats)
    ]
    superuser = make_user(is_superuser=True)

    assert list(legacy_chats_visible_to(user=administrator)) == [chats[0]]
    assert list(notices_visible_to(user=administrator)) == [notices[0]]
    assert list(import_runs_visible_to(user=administrator)) == []
    assert set(legacy_chats_visible_to(user=superuser)) == set(chats)
    assert set(notices_visible_to(user=superuser)) == set(notices)
    assert list(legacy_chats_visible_to(user=make_user())) == []
    assert list(notices_visible_to(user=make_member(organisation=school, role=Role.TEACHER))) == []
