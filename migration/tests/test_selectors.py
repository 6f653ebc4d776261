from django.utils import timezone

from migration.models import LegacyChat
from migration.selectors import migration_counts
from organisations.tests.factories import make_organisation


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
