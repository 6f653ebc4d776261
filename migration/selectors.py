"""Reads of the migration app."""

from collections.abc import Iterable
from typing import TypeVar

from django.db.models import Count, Model, Q, QuerySet

from accounts.models import User
from migration.models import ImportRun, Invitation, LegacyChat, LegacyNotice
from organisations.models import Organisation
from organisations.selectors import administered_organisations

Row = TypeVar("Row", bound=Model)


def migration_counts(*, organisation_ids: Iterable[int]) -> dict[int, tuple[int, int]]:
    """Organisation id -> (chats migrated, eligible chats), in one query.

    Eligible chats are the old conversations known to qualify (migrated, or
    seen in a dry run uploaded in admin and not migrated yet); a migrated
    chat counts as migrated even if it was deleted since. Organisations with
    none map to (0, 0)."""
    ids = list(dict.fromkeys(int(pk) for pk in organisation_ids))
    counts = dict.fromkeys(ids, (0, 0))
    if not ids:
        return counts
    rows = (
        LegacyChat.objects.filter(organisation_id__in=ids)
        .values("organisation_id")
        .annotate(migrated=Count("id", filter=Q(migrated_at__isnull=False)), eligible=Count("id"))
        .order_by()
    )
    for row in rows:
        counts[row["organisation_id"]] = (row["migrated"], row["eligible"])
    return counts


def _of_administered(rows: QuerySet[Row], *, user: User, organisation: str) -> QuerySet[Row]:
    """All `rows` for a superuser; otherwise those whose `organisation` (a
    lookup) is one the person administers."""
    if user.is_superuser:
        return rows
    return rows.filter(**{organisation + "__in": administered_organisations(user=user)})


def import_runs_visible_to(*, user: User) -> QuerySet[ImportRun]:
    """The imports of the organisations `user` administers (all for a superuser)."""
    runs = ImportRun.objects.select_related("organisation", "uploaded_by")
    return _of_administered(runs, user=user, organisation="organisation")


def legacy_chats_visible_to(*, user: User) -> QuerySet[LegacyChat]:
    chats = LegacyChat.objects.select_related("organisation", "chat", "notice")
    return _of_administered(chats, user=user, organisation="organisation")


def notices_visible_to(*, user: User) -> QuerySet[LegacyNotice]:
    notices = LegacyNotice.objects.select_related("legacy_chat", "legacy_chat__organisation")
    return _of_administered(notices, user=user, organisation="legacy_chat__organisation")


def organisation_by_inn(*, inn: str) -> Organisation | None:
    """The one organisation with this INN (an authority and a school never
    share one; if two rows do, the oldest)."""
    return Organisation.objects.filter(inn=inn).order_by("id").first()


def invitation_by_token_hash(*, token_hash: str) -> Invitation | None:
    return Invitation.objects.select_related("chat", "legacy_chat").filter(token_hash=token_hash).first()
