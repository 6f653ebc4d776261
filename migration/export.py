"""Reading an export of the old messenger (SPEC §9.1) into plain objects.

The whole file is checked before anything is imported: the first problem is
not enough to fix a file by hand, so every problem found (up to a limit) is
reported, each naming the conversation (its peer_id) and the field."""

import dataclasses
import json
from collections.abc import Iterator
from typing import Any, cast

from django.utils.translation import gettext as _
from typing_extensions import TypeIs

from accounts.services import phone_normalise
from common.errors import ApplicationError

PROFILE_ROLES = ("admin", "teacher", "staff", "student", "parent")
STAFF_PROFILE_ROLES = ("admin", "teacher", "staff")
ERRORS_MAX = 50
TEXT_MAX = 100_000


@dataclasses.dataclass(frozen=True)
class Profile:
    id: int
    first_name: str
    last_name: str
    phone: str | None
    role: str
    is_confirmed: bool

    @property
    def name(self) -> str:
        return " ".join(part for part in (self.first_name, self.last_name) if part) or str(self.id)


@dataclasses.dataclass(frozen=True)
class Member:
    member_id: int
    is_owner: bool
    is_admin: bool


@dataclasses.dataclass(frozen=True)
class LegacyMessage:
    id: int
    date: int
    from_id: int
    text: str


@dataclasses.dataclass
class Conversation:
    peer_id: int
    title: str
    owner_id: int
    admin_ids: list[int]
    members: list[Member]
    messages: list[LegacyMessage]

    @property
    def moderator_ids(self) -> set[int]:
        return set(self.admin_ids) | {member.member_id for member in self.members if member.is_admin}

    @property
    def newest_message_date(self) -> int | None:
        return max((message.date for message in self.messages), default=None)


@dataclasses.dataclass
class Export:
    inn: str
    exported_at: int
    profiles: dict[int, Profile]
    conversations: list[Conversation]


class ExportInvalid(ApplicationError):
    """The export cannot be imported; `problems` lists every problem found
    as (peer_id or None, field, message)."""

    def __init__(self, problems: list[tuple[int | None, str, str]]) -> None:
        self.problems = problems
        super().__init__(
            "\n".join(problem_text(*problem) for problem in problems), code="invalid_export", extra={"field": "file"}
        )


def problem_text(peer_id: int | None, field: str, message: str) -> str:
    if peer_id is None:
        return _("%(field)s: %(message)s") % {"field": field, "message": message}
    return _("conversation %(peer_id)s, %(field)s: %(message)s") % {
        "peer_id": peer_id,
        "field": field,
        "message": message,
    }


class _Problems:
    def __init__(self) -> None:
        self.items: list[tuple[int | None, str, str]] = []

    def add(self, peer_id: int | None, field: str, message: str) -> None:
        if len(self.items) < ERRORS_MAX:
            self.items.append((peer_id, field, message))

    def objects(self, peer_id: int | None, name: str, raw: Any) -> Iterator[tuple[str, dict[str, Any]]]:
        """The objects of the list `raw` (the export's `name`), each with its
        field name, `name[index]`. A `raw` that is not a list, and an item
        that is not an object, is a problem and is passed over."""
        if not isinstance(raw, list):
            self.add(peer_id, name, _("must be a list"))
            return
        for index, item in enumerate(raw):
            field = f"{name}[{index}]"
            if isinstance(item, dict):
                yield field, item
            else:
                self.add(peer_id, field, _("must be an object"))

    def raise_if_any(self) -> None:
        if self.items:
            raise ExportInvalid(self.items)


def _is_int(value: Any) -> TypeIs[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def export_parse(raw: bytes | str) -> Export:
    """The export in `raw` (JSON, UTF-8), fully checked.

    Raises ExportInvalid naming every problem (up to ERRORS_MAX): not JSON or
    cut short, a missing or mistyped field, an unknown role, a duplicate
    profile id, phone number or peer_id, a member or author who is not among
    the profiles."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as error:
        raise ExportInvalid(
            [(None, "file", _("not UTF-8 text (byte %(position)d)") % {"position": error.start})]
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ExportInvalid(
            [
                (
                    None,
                    "file",
                    _("not valid JSON, or cut short: %(error)s at line %(line)d, column %(column)d")
                    % {"error": error.msg, "line": error.lineno, "column": error.colno},
                )
            ]
        ) from None
    problems = _Problems()
    if not isinstance(data, dict):
        problems.add(None, "file", _("must be a JSON object"))
        problems.raise_if_any()
    organisation = data.get("organisation")
    inn = organisation.get("inn") if isinstance(organisation, dict) else None
    if not isinstance(inn, str) or not inn.isdigit() or len(inn) not in (10, 12):
        problems.add(None, "organisation.inn", _("must be a string of 10 or 12 digits"))
    exported_at = data.get("exported_at")
    if not _is_int(exported_at):
        problems.add(None, "exported_at", _("must be a date in Unix seconds"))
    profiles = _profiles_parse(data.get("profiles"), problems)
    conversations = _conversations_parse(data.get("conversations"), profiles, problems)
    problems.raise_if_any()
    return Export(inn=str(inn), exported_at=int(exported_at), profiles=profiles, conversations=conversations)


def _profiles_parse(raw: Any, problems: _Problems) -> dict[int, Profile]:
    profiles: dict[int, Profile] = {}
    phones: dict[str, int] = {}
    for field, item in problems.objects(None, "profiles", raw):
        profile_id = item.get("id")
        if not _is_int(profile_id):
            problems.add(None, field + ".id", _("must be a whole number"))
            continue
        field = f"{field} (id {profile_id})"
        if profile_id in profiles:
            problems.add(None, field + ".id", _("the same id appears twice"))
            continue
        names = {}
        for name_field in ("first_name", "last_name"):
            value = item.get(name_field, "")
            if not isinstance(value, str):
                problems.add(None, f"{field}.{name_field}", _("must be text"))
                value = ""
            names[name_field] = " ".join(value.split())[:80]
        role = item.get("role")
        if role not in PROFILE_ROLES:
            problems.add(None, field + ".role", _("must be one of: %(roles)s") % {"roles": ", ".join(PROFILE_ROLES)})
            continue
        confirmed = item.get("confirmed", False)
        if not isinstance(confirmed, bool):
            problems.add(None, field + ".confirmed", _("must be true or false"))
            continue
        phone = item.get("phone")
        if phone is not None:
            try:
                phone = phone_normalise(phone)
            except ApplicationError:
                problems.add(None, field + ".phone", _("not a valid phone number"))
                continue
            if phone in phones:
                problems.add(
                    None,
                    field + ".phone",
                    _("the same phone number as profile %(other)s") % {"other": phones[phone]},
                )
                continue
            phones[phone] = profile_id
        profiles[profile_id] = Profile(
            id=profile_id,
            first_name=names["first_name"],
            last_name=names["last_name"],
            phone=phone,
            role=role,
            is_confirmed=confirmed,
        )
    return profiles


def _conversations_parse(raw: Any, profiles: dict[int, Profile], problems: _Problems) -> list[Conversation]:
    conversations: list[Conversation] = []
    seen: set[int] = set()
    for field, item in problems.objects(None, "conversations", raw):
        peer_id = item.get("peer_id")
        if not _is_int(peer_id):
            problems.add(None, field + ".peer_id", _("must be a whole number"))
            continue
        if peer_id in seen:
            problems.add(peer_id, "peer_id", _("the same conversation appears twice"))
            continue
        seen.add(peer_id)
        conversation = _conversation_parse(peer_id, item, profiles, problems)
        if conversation is not None:
            conversations.append(conversation)
    return conversations


def _known(peer_id: int, field: str, value: Any, profiles: dict[int, Profile], problems: _Problems) -> bool:
    if not _is_int(value):
        problems.add(peer_id, field, _("must be a whole number"))
        return False
    if value not in profiles:
        problems.add(peer_id, field, _("%(id)s is not among the profiles") % {"id": value})
        return False
    return True


def _conversation_parse(
    peer_id: int, item: dict[str, Any], profiles: dict[int, Profile], problems: _Problems
) -> Conversation | None:
    before = len(problems.items)
    settings = item.get("chat_settings")
    if not isinstance(settings, dict):
        problems.add(peer_id, "chat_settings", _("must be an object"))
        return None
    title = settings.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.add(peer_id, "chat_settings.title", _("must be non-empty text"))
    owner_id = settings.get("owner_id")
    _known(peer_id, "chat_settings.owner_id", owner_id, profiles, problems)
    admin_ids = settings.get("admin_ids", [])
    if not isinstance(admin_ids, list):
        problems.add(peer_id, "chat_settings.admin_ids", _("must be a list"))
        admin_ids = []
    for position, admin_id in enumerate(admin_ids):
        _known(peer_id, f"chat_settings.admin_ids[{position}]", admin_id, profiles, problems)
    members = _members_parse(peer_id, item.get("members"), profiles, problems)
    messages = _messages_parse(peer_id, item.get("messages"), profiles, problems)
    if len(problems.items) > before:
        return None
    return Conversation(
        peer_id=peer_id,
        title=" ".join(str(title).split())[:200],
        owner_id=cast(int, owner_id),
        admin_ids=[int(admin_id) for admin_id in admin_ids],
        members=members,
        messages=messages,
    )


def _members_parse(peer_id: int, raw: Any, profiles: dict[int, Profile], problems: _Problems) -> list[Member]:
    members: dict[int, Member] = {}
    for field, item in problems.objects(peer_id, "members", raw):
        member_id = item.get("member_id")
        if not _known(peer_id, field + ".member_id", member_id, profiles, problems):
            continue
        flags = {}
        for flag in ("is_owner", "is_admin"):
            value = item.get(flag, False)
            if not isinstance(value, bool):
                problems.add(peer_id, f"{field}.{flag}", _("must be true or false"))
                value = False
            flags[flag] = value
        join_date = item.get("join_date")
        if join_date is not None and not _is_int(join_date):
            problems.add(peer_id, field + ".join_date", _("must be a date in Unix seconds"))
        # A member listed twice is one member: old exports repeat people
        # who left and came back.
        members.setdefault(cast(int, member_id), Member(member_id=cast(int, member_id), **flags))
    return list(members.values())


def _messages_parse(peer_id: int, raw: Any, profiles: dict[int, Profile], problems: _Problems) -> list[LegacyMessage]:
    if raw is None:
        return []
    messages: list[LegacyMessage] = []
    for field, item in problems.objects(peer_id, "messages", raw):
        message_id, date, text = item.get("id"), item.get("date"), item.get("text", "")
        ok = True
        if not _is_int(message_id):
            problems.add(peer_id, field + ".id", _("must be a whole number"))
            ok = False
        if not _is_int(date) or date < 0:
            problems.add(peer_id, field + ".date", _("must be a date in Unix seconds"))
            ok = False
        if not isinstance(text, str) or len(text) > TEXT_MAX:
            problems.add(peer_id, field + ".text", _("must be text"))
            ok = False
        if not _known(peer_id, field + ".from_id", item.get("from_id"), profiles, problems):
            ok = False
        if ok:
            messages.append(
                LegacyMessage(id=cast(int, message_id), date=cast(int, date), from_id=item["from_id"], text=text)
            )
    return messages
