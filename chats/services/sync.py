"""Class and staff chats kept in step with the directory.

For every study group of the current academic year an organisation has two
chats, "<group> — students" (its teachers and students) and "<group> —
parents" (its teachers and the active guardians of its students), and every
educational organisation has one staff chat. `chats_sync` makes the chats
and their memberships match the directory: it runs after every committed
directory change (registered in ChatsConfig.ready()) and from `manage.py
sync_chats`. It reads and writes in bulk, a fixed number of queries however
many people and classes there are, so an import of thousands of rows costs
one sync; running it again changes nothing.
"""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from chats import events
from chats.models import Chat, ChatKind, ChatMember, MemberRole
from organisations.models import (
    EDUCATIONAL_KINDS,
    Guardianship,
    Membership,
    Organisation,
    Role,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
)
from organisations.selectors import current_academic_year

logger = logging.getLogger(__name__)

CLASS_KINDS = (ChatKind.CLASS_STUDENTS, ChatKind.CLASS_PARENTS)
STAFF_CHAT_ROLES: dict[str, str] = {
    Role.ADMINISTRATOR: MemberRole.MODERATOR,
    Role.TEACHER: MemberRole.MEMBER,
    Role.STAFF: MemberRole.MEMBER,
}
TEACHING_ROLES = (Role.ADMINISTRATOR, Role.TEACHER, Role.STAFF)
# Stronger roles win when a person qualifies twice (a teacher who is also a
# parent of the class).
ROLE_RANK: dict[str, int] = {MemberRole.MEMBER: 0, MemberRole.EDITOR: 1, MemberRole.MODERATOR: 2, MemberRole.OWNER: 3}


@dataclass
class SyncResult:
    chats_created: int = 0
    chats_archived: int = 0
    members_added: int = 0
    members_removed: int = 0
    roles_changed: int = 0

    def __add__(self, other: "SyncResult") -> "SyncResult":
        return SyncResult(
            chats_created=self.chats_created + other.chats_created,
            chats_archived=self.chats_archived + other.chats_archived,
            members_added=self.members_added + other.members_added,
            members_removed=self.members_removed + other.members_removed,
            roles_changed=self.roles_changed + other.roles_changed,
        )

    @property
    def changed(self) -> bool:
        return any(
            (self.chats_created, self.chats_archived, self.members_added, self.members_removed, self.roles_changed)
        )


def class_chat_title(*, group_name: str, kind: str) -> str:
    """The stored title of a class chat, in the portal's language: every
    member sees the same name, like the class's own."""
    with translation.override(settings.LANGUAGE_CODE):
        if kind == ChatKind.CLASS_STUDENTS:
            return _("%(group)s — students") % {"group": group_name}
        return _("%(group)s — parents") % {"group": group_name}


def staff_chat_title(*, organisation_name: str) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return _("%(organisation)s — teachers") % {"organisation": organisation_name}


def _role_merge(roles: dict[int, str], user_id: int, role: str) -> None:
    current = roles.get(user_id)
    if current is None or ROLE_RANK[role] > ROLE_RANK[current]:
        roles[user_id] = role


def chats_sync(*, organisation_ids: Iterable[int]) -> SyncResult:
    """Make the class and staff chats of these organisations match the directory.

    Creates missing chats (and renames them after their class or school),
    archives class chats of earlier years once the organisation has classes
    of the current year, adds the people who qualify (is_synced) with their
    role (teachers and administrators moderate) and removes synced members
    who no longer qualify. Members added by hand stay, and people a
    moderator removed are not brought back.

    Side effects: after commit, {"type": "chat.joined"/"chat.left", "chat"}
    to each person added or removed (so their open sockets follow; sent
    like events.user_event_publish, all in one go), and
    "chat.updated"/"chat.archived" to renamed and archived chats.
    """
    ids = sorted({int(pk) for pk in organisation_ids})
    if not ids:
        return SyncResult()
    with transaction.atomic():
        return _sync(ids)


def _sync(organisation_ids: list[int]) -> SyncResult:
    result = SyncResult()
    now = timezone.now()
    year = current_academic_year()
    # Two syncs of one organisation (two requests at once) take turns.
    organisations = list(
        Organisation.objects.select_for_update()
        .filter(pk__in=organisation_ids)
        .order_by("pk")
        .only("pk", "kind", "short_name")
    )
    if not organisations:
        return result
    educational_ids = [o.pk for o in organisations if o.kind in EDUCATIONAL_KINDS]
    organisation_ids = [o.pk for o in organisations]
    groups = {
        group.pk: group
        for group in StudyGroup.objects.filter(organisation_id__in=organisation_ids, academic_year=year).only(
            "pk", "organisation_id", "name", "homeroom_teacher_id"
        )
    }

    # --- The chats ---------------------------------------------------------
    wanted: dict[tuple[str, int], tuple[int, int | None, str]] = {}
    for group in groups.values():
        for class_kind in CLASS_KINDS:
            wanted[(str(class_kind), group.pk)] = (
                group.organisation_id,
                group.pk,
                class_chat_title(group_name=group.name, kind=class_kind),
            )
    for organisation in organisations:
        if organisation.pk in educational_ids:
            wanted[(str(ChatKind.STAFF), organisation.pk)] = (
                organisation.pk,
                None,
                staff_chat_title(organisation_name=organisation.short_name),
            )

    def chats_query() -> dict[tuple[str, int], Chat]:
        found = Chat.objects.filter(
            Q(kind__in=CLASS_KINDS, study_group_id__in=list(groups))
            | Q(kind=ChatKind.STAFF, organisation_id__in=educational_ids)
        )
        return {(str(chat.kind), int(chat.study_group_id or chat.organisation_id or 0)): chat for chat in found}

    chats = chats_query() if wanted else {}
    missing = [key for key in wanted if key not in chats]
    if missing:
        Chat.objects.bulk_create(
            [
                Chat(
                    kind=kind,
                    organisation_id=wanted[(kind, key)][0],
                    study_group_id=wanted[(kind, key)][1],
                    title=wanted[(kind, key)][2],
                )
                for kind, key in missing
            ],
            ignore_conflicts=True,
        )
        before = len(chats)
        chats = chats_query()
        result.chats_created = len(chats) - before
    renamed = []
    for chat_key, chat in chats.items():
        title = wanted[chat_key][2]
        if chat.title != title or chat.is_archived:
            chat.title = title
            chat.is_archived = False
            renamed.append(chat)
    if renamed:
        Chat.objects.bulk_update(renamed, ["title", "is_archived"])
        for chat in renamed:
            events.event_publish(chat=chat, event={"type": "chat.updated", "chat": chat.pk, "title": chat.title})

    # Last year's class chats are archived once this year's classes exist.
    organisations_with_classes = {group.organisation_id for group in groups.values()}
    archived_ids = list(
        Chat.objects.filter(
            organisation_id__in=organisations_with_classes,
            kind__in=CLASS_KINDS,
            is_archived=False,
            study_group__academic_year__lt=year,
        ).values_list("pk", flat=True)
    )
    if archived_ids:
        Chat.objects.filter(pk__in=archived_ids).update(is_archived=True)
        result.chats_archived = len(archived_ids)
        for chat_id in archived_ids:
            events.event_publish(chat=chat_id, event={"type": "chat.archived", "chat": chat_id})

    # --- Who qualifies -----------------------------------------------------
    staff_roles: dict[int, dict[int, str]] = {}  # organisation -> user -> role in the staff chat
    teaching: set[tuple[int, int]] = set()  # (organisation, user) on the staff
    students: set[tuple[int, int]] = set()  # (organisation, user) studying
    for organisation_id, user_id, role in (
        Membership.objects.active()
        .filter(organisation_id__in=organisation_ids, role__in=(*TEACHING_ROLES, Role.STUDENT))
        .values_list("organisation_id", "user_id", "role")
    ):
        if role == Role.STUDENT:
            students.add((organisation_id, user_id))
            continue
        teaching.add((organisation_id, user_id))
        _role_merge(staff_roles.setdefault(organisation_id, {}), user_id, STAFF_CHAT_ROLES[role])

    group_teachers: dict[int, set[int]] = {group_id: set() for group_id in groups}
    for group in groups.values():
        if group.homeroom_teacher_id:
            group_teachers[group.pk].add(group.homeroom_teacher_id)
    for group_id, teacher_id in StudyGroupTeacher.objects.filter(group_id__in=list(groups)).values_list(
        "group_id", "teacher_id"
    ):
        group_teachers[group_id].add(teacher_id)
    group_students: dict[int, set[int]] = {group_id: set() for group_id in groups}
    for group_id, student_id in StudyGroupStudent.objects.filter(group_id__in=list(groups)).values_list(
        "group_id", "student_id"
    ):
        if (groups[group_id].organisation_id, student_id) in students:
            group_students[group_id].add(student_id)
    guardians: dict[int, set[int]] = {}
    for student_id, parent_id in Guardianship.objects.filter(
        ended_at__isnull=True,
        student_id__in=StudyGroupStudent.objects.filter(group_id__in=list(groups)).values("student_id"),
    ).values_list("student_id", "parent_id"):
        guardians.setdefault(student_id, set()).add(parent_id)

    desired: dict[int, dict[int, str]] = {}
    for (chat_kind, key), chat in chats.items():
        roles: dict[int, str] = {}
        if chat_kind == ChatKind.STAFF:
            roles.update(staff_roles.get(key, {}))
        else:
            organisation_id = groups[key].organisation_id
            if chat_kind == ChatKind.CLASS_STUDENTS:
                for student_id in group_students[key]:
                    _role_merge(roles, student_id, MemberRole.MEMBER)
            else:
                for student_id in group_students[key]:
                    for parent_id in guardians.get(student_id, ()):
                        _role_merge(roles, parent_id, MemberRole.MEMBER)
            for teacher_id in group_teachers[key]:
                if (organisation_id, teacher_id) in teaching:
                    _role_merge(roles, teacher_id, MemberRole.MODERATOR)
        desired[chat.pk] = roles

    # --- Members: add, remove, change roles ---------------------------------
    chats_by_id = {chat.pk: chat for chat in chats.values()}
    active: dict[tuple[int, int], tuple[int, str, bool]] = {}
    removed_by_moderator: set[tuple[int, int]] = set()
    for pk, chat_id, user_id, role, is_synced, left_at in ChatMember.objects.filter(
        Q(left_at__isnull=True) | Q(is_removed=True), chat_id__in=list(chats_by_id)
    ).values_list("pk", "chat_id", "user_id", "role", "is_synced", "left_at"):
        if left_at is None:
            active[(chat_id, user_id)] = (pk, role, is_synced)
        else:
            removed_by_moderator.add((chat_id, user_id))

    additions: list[ChatMember] = []
    role_changes: dict[str, list[int]] = {}
    for chat_id, roles in desired.items():
        for user_id, role in roles.items():
            current = active.get((chat_id, user_id))
            if current is None:
                if (chat_id, user_id) not in removed_by_moderator:
                    additions.append(
                        ChatMember(
                            chat_id=chat_id,
                            user_id=user_id,
                            role=role,
                            is_synced=True,
                            # History is there to read, but not unread.
                            last_read_seq=chats_by_id[chat_id].last_seq,
                        )
                    )
            elif current[1] != role or not current[2]:
                role_changes.setdefault(role, []).append(current[0])
    removals = [
        (pk, chat_id, user_id)
        for (chat_id, user_id), (pk, _role, is_synced) in active.items()
        if is_synced and user_id not in desired.get(chat_id, {})
    ]

    if additions:
        ChatMember.objects.bulk_create(additions, ignore_conflicts=True, batch_size=500)
        result.members_added = len(additions)
    if removals:
        ChatMember.objects.filter(pk__in=[pk for pk, _chat, _user in removals], left_at__isnull=True).update(
            left_at=now
        )
        result.members_removed = len(removals)
    for role, pks in role_changes.items():
        ChatMember.objects.filter(pk__in=pks).update(role=role, is_synced=True)
        result.roles_changed += len(pks)

    _user_events_publish(
        [(member.user_id, {"type": "chat.joined", "chat": member.chat_id}) for member in additions]
        + [(user_id, {"type": "chat.left", "chat": chat_id}) for _pk, chat_id, user_id in removals]
    )
    if result.changed:
        logger.info(
            "chats synced for %d organisations: %d chats created, %d archived, %d members added, %d removed",
            len(organisation_ids),
            result.chats_created,
            result.chats_archived,
            result.members_added,
            result.members_removed,
        )
    return result


def _user_events_publish(items: list[tuple[int, dict[str, Any]]]) -> None:
    """events.user_event_publish for many people at once (an import adds
    thousands of members)."""
    events.user_events_publish(items, what="membership events")


def directory_changed_hook(organisation_ids: set[int]) -> None:
    """Registered with organisations.extensions: runs after the directory's
    transaction has committed. A failure here must not undo or hide the
    directory change that caused it (nor stop other hooks); it is logged,
    and `manage.py sync_chats` repairs."""
    try:
        chats_sync(organisation_ids=organisation_ids)
    except Exception:
        logger.exception("class and staff chats not synced; run `manage.py sync_chats`")


def chats_sync_all(*, batch_size: int = 50) -> SyncResult:
    """Sync every organisation (repairs), a batch of organisations per transaction."""
    result = SyncResult()
    ids = list(Organisation.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(ids), batch_size):
        result = result + chats_sync(organisation_ids=ids[start : start + batch_size])
    return result
