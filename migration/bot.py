"""The migration bot «Перенос чатов» (SPEC §9; the presentation's "download,
start the bot, talk"): a verified teacher starts it, sees their old chats
and moves them, one by one or all at once.

It is a built-in bot (bots.builtin): its updates are queued like an
external bot's and a Celery task hands each one to `migration_bot_handle`,
which answers through the bots services, so a long import runs in the
worker, never in a request.

A person's old chats are the conversations they own (the export's owner
has their phone number) in the latest export kept for each organisation
where they are verified school staff (LegacyExport, kept by every admin
upload and command run). Only owned chats: a co-administrator of the old
chat moving it would act on the owner's behalf, and the owner keeps the
owner's role in the new chat. Moving uses migration.services.export_import
with the chat's peer_id and the teacher as actor, so the rules of the admin
import hold (eligibility, members, safe mode, the notice once) and pressing
twice moves once.

Buttons carry `migrate:<peer_id>` or `migrate:all`; the handler never
trusts them: a peer_id that is not among the presser's own old chats is
refused and changes nothing."""

import dataclasses
import datetime
import logging
import zoneinfo
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from accounts.models import User
from bots import selectors as bot_selectors
from bots import services as bot_services
from bots.models import Bot, Update, UpdateKind
from common.errors import ApplicationError
from migration.export import Conversation, Export, ExportInvalid, export_parse
from migration.models import LegacyExport
from migration.services import ChatResult, Status, export_import, public_url
from organisations.models import Membership, Organisation, VerificationStatus
from organisations.selectors import SCHOOL_STAFF_ROLES

logger = logging.getLogger(__name__)

USERNAME = "chat_migration_bot"
NAME = "Перенос чатов"
DESCRIPTION = (
    "Переносит ваши чаты из старого мессенджера вместе с участниками и историей. "
    "Для подтверждённых педагогов и сотрудников."
)
CALLBACK_PREFIX = "migrate:"
CALLBACK_ALL = CALLBACK_PREFIX + "all"
# One row is kept for "Move all".
CHAT_BUTTONS_MAX = bot_services.BUTTON_ROWS_MAX - 1
LIST_LINES_MAX = 40


def migration_bot_ensure() -> Bot:
    """The platform's migration bot, created once (verified; only verified
    staff may start it). Idempotent: found by its username."""
    bot = Bot.objects.filter(username=USERNAME).first()
    if bot is None:
        bot = bot_services.bot_create(
            username=USERNAME, name=NAME, description=DESCRIPTION, is_verified=True, is_staff_only=True
        )
    return bot


# --- The person's old chats -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class OldChat:
    """One old chat the person owns, and what moving it does (or did)."""

    organisation: Organisation
    conversation: Conversation
    # Status.MIGRATED: it can be moved now; UNCHANGED: moved already
    # (chat_id is the new chat, None if deleted since); SKIPPED: `reason`.
    status: str
    reason: str | None
    chat_id: int | None

    @property
    def peer_id(self) -> int:
        return self.conversation.peer_id

    @property
    def title(self) -> str:
        return self.conversation.title


@dataclasses.dataclass
class _Source:
    organisation: Organisation
    export: Export
    peer_ids: list[int]


def _staff_memberships(user: User) -> QuerySet[Membership]:
    return (
        Membership.objects.active()
        .filter(user=user, role__in=SCHOOL_STAFF_ROLES, verification_status=VerificationStatus.VERIFIED)
        .select_related("organisation")
        .order_by("organisation__short_name", "organisation_id")
    )


def _sources(user: User) -> list[_Source]:
    """The kept exports of the organisations where `user` is verified school
    staff, with the peer_ids of the conversations they own there."""
    organisations = {membership.organisation_id: membership.organisation for membership in _staff_memberships(user)}
    sources = []
    kept = LegacyExport.objects.filter(organisation_id__in=organisations).order_by("organisation_id")
    for row in kept:
        try:
            export = export_parse(row.content)
        except ExportInvalid:
            logger.exception("kept export of organisation %s does not parse", row.organisation_id)
            continue
        phone = str(user.phone)
        mine = [
            conversation.peer_id
            for conversation in export.conversations
            if export.profiles[conversation.owner_id].phone == phone
        ]
        if mine:
            sources.append(_Source(organisation=organisations[row.organisation_id], export=export, peer_ids=mine))
    return sources


def _old_chats(sources: list[_Source]) -> list[OldChat]:
    """What moving each of the person's chats would do: the import's own
    dry run (it changes nothing), so the list says what pressing will do."""
    chats = []
    for source in sources:
        by_peer = {conversation.peer_id: conversation for conversation in source.export.conversations}
        try:
            results = export_import(
                export=source.export, dry_run=True, organisation=source.organisation, peer_ids=source.peer_ids
            )
        except ExportInvalid:
            # The organisation's INN changed since the upload.
            continue
        for result in results:
            chats.append(
                OldChat(
                    organisation=source.organisation,
                    conversation=by_peer[result.peer_id],
                    status=result.status,
                    reason=result.reason,
                    chat_id=result.chat_id,
                )
            )
    return chats


def old_chats_of(*, user: User) -> list[OldChat]:
    """The old chats `user` owns in their organisations' kept exports,
    each with what moving it does. Empty for anyone who is not verified
    school staff."""
    return _old_chats(_sources(user))


# --- Texts ----------------------------------------------------------------------------------------------------------


def _chat_url(chat_id: int) -> str:
    return public_url(reverse("chats:detail", args=[chat_id]))


def _last_activity(old: OldChat) -> str:
    newest = old.conversation.newest_message_date
    if newest is None:
        return _("no messages")
    zone = zoneinfo.ZoneInfo(old.organisation.effective_time_zone)
    return datetime.datetime.fromtimestamp(newest, tz=zone).strftime("%d.%m.%Y")


def _movable_line(number: int, old: OldChat) -> str:
    return _("%(number)d. «%(title)s»: %(members)d members, last message %(date)s") % {
        "number": number,
        "title": old.title,
        "members": len(old.conversation.members),
        "date": _last_activity(old),
    }


def _moved_line(old: OldChat) -> str:
    if old.chat_id is None:
        return _("• «%(title)s»: moved earlier; the new chat was deleted since") % {"title": old.title}
    return _("• «%(title)s»: %(url)s") % {"title": old.title, "url": _chat_url(old.chat_id)}


def _skipped_line(old: OldChat) -> str:
    return _("• «%(title)s»: %(reason)s") % {"title": old.title, "reason": _(old.reason or "")}


def _buttons(chats: list[OldChat]) -> list[list[dict[str, str]]]:
    movable = [old for old in chats if old.status == Status.MIGRATED]
    rows = []
    for old in movable[:CHAT_BUTTONS_MAX]:
        text = _("Move «%(title)s»") % {"title": old.title}
        if len(text) > bot_services.BUTTON_TEXT_MAX:
            text = text[: bot_services.BUTTON_TEXT_MAX - 2] + "…»"
        rows.append([{"text": text, "callback_data": f"{CALLBACK_PREFIX}{old.peer_id}"}])
    if movable:
        rows.append([{"text": _("Move all"), "callback_data": CALLBACK_ALL}])
    return rows


def _lines_cut(lines: list[str]) -> list[str]:
    if len(lines) <= LIST_LINES_MAX:
        return lines
    return [*lines[:LIST_LINES_MAX], _("…and %(count)d more") % {"count": len(lines) - LIST_LINES_MAX}]


def _help_text(user: User) -> str:
    membership = _staff_memberships(user).first()
    text = _(
        "I found no old chats of yours to move. Your chats come from the export of the old messenger that your "
        "organisation's administrator uploads; if it is not uploaded yet, or a chat is missing, ask them."
    )
    if membership is not None:
        url = public_url(reverse("organisations:detail", args=[membership.organisation_id]))
        text += "\n" + _("Your organisation's contacts: %(url)s") % {"url": url}
    return text


def list_text(*, user: User, chats: list[OldChat]) -> str:
    """The answer to /start: the chats to move, those moved (with links)
    and those that cannot be moved (with the reason)."""
    movable = [old for old in chats if old.status == Status.MIGRATED]
    moved = [old for old in chats if old.status == Status.UNCHANGED]
    skipped = [old for old in chats if old.status == Status.SKIPPED]
    parts = [
        _("Hello, %(name)s! I move your chats from the old messenger here, with their members and history.")
        % {"name": user.first_name or user.display_name}
    ]
    if not chats:
        parts.append(_help_text(user))
        return "\n\n".join(parts)
    if movable:
        lines = [_movable_line(number, old) for number, old in enumerate(movable, start=1)]
        parts.append(
            _("Your old chats to move:")
            + "\n"
            + "\n".join(_lines_cut(lines))
            + "\n"
            + _("Press «Move» under a chat, or «Move all».")
        )
    else:
        parts.append(_("All your old chats have been moved."))
    if moved:
        parts.append(_("Already moved:") + "\n" + "\n".join(_lines_cut([_moved_line(old) for old in moved])))
    if skipped:
        parts.append(_("Cannot be moved:") + "\n" + "\n".join(_lines_cut([_skipped_line(old) for old in skipped])))
    return "\n\n".join(parts)


def _result_line(old: OldChat, result: ChatResult) -> str:
    if result.status == Status.MIGRATED:
        line = _("✓ «%(title)s» moved: %(members)d members, %(invited)d invited by SMS: %(url)s") % {
            "title": old.title,
            "members": result.members,
            "invited": result.invited,
            "url": _chat_url(result.chat_id or 0),
        }
        if result.refused:
            line += "\n  " + _(
                "Not added: %(count)d (no phone number, a blocked account, or a child who accepts messages only "
                "from contacts)."
            ) % {"count": len(result.refused)}
        return line
    if result.status == Status.UNCHANGED:
        if result.chat_id is None:
            return _("✓ «%(title)s» was moved earlier; the new chat was deleted since") % {"title": old.title}
        return _("✓ «%(title)s» was moved earlier: %(url)s") % {"title": old.title, "url": _chat_url(result.chat_id)}
    return _("✗ «%(title)s» not moved: %(reason)s") % {"title": old.title, "reason": _(result.reason or "")}


def summary_text(*, user: User, moved: list[tuple[OldChat, ChatResult]]) -> str:
    """The closing summary of the presentation: role kept, chats moved,
    the directory, all services, the notice in the old chats."""
    organisation_ids = {old.organisation.pk for old, _result in moved}
    roles = [
        _("%(role)s (verified), %(organisation)s")
        % {"role": membership.get_role_display(), "organisation": membership.organisation.short_name}
        for membership in _staff_memberships(user)
        if membership.organisation_id in organisation_ids
    ]
    links = [
        _moved_line(dataclasses.replace(old, chat_id=result.chat_id))
        for old, result in moved
        if result.status in (Status.MIGRATED, Status.UNCHANGED)
    ]
    lines = [
        _("Done! What has changed:"),
        _("• Your role is kept: %(roles)s") % {"roles": "; ".join(roles)},
        _("• Your chats have moved:") + "\n" + "\n".join("  " + line for line in _lines_cut(links)),
        _("• The directory of organisations: %(url)s") % {"url": public_url(reverse("organisations:directory"))},
        _("• All services for education are here: %(url)s") % {"url": public_url(reverse("miniapps:showcase"))},
        _("• A notice about the move is posted in your old chats, with the link to the new chat."),
    ]
    return "\n".join(lines)


# --- The handler ----------------------------------------------------------------------------------------------------


def _send(*, bot: Bot, update: Update, text: str, buttons: Any = None) -> None:
    try:
        bot_services.bot_message_send(bot=bot, chat_id=update.chat_id, text=text, buttons=buttons)
    except ApplicationError as error:
        # The person left the chat, or sends too fast: nothing to answer to.
        logger.info("migration bot: no answer in chat %s (%s)", update.chat_id, error.code)


def _answer(*, bot: Bot, update: Update, text: str) -> None:
    callback_id = update.payload.get("id")
    if callback_id:
        bot_services.callback_answer(bot=bot, callback_query_id=str(callback_id), text=text[:200])


def _refusal_text() -> str:
    return _(
        "Sorry, only verified teachers and staff of a school can move chats. Ask your school's administrator to "
        "confirm your role in Parta, then start me again."
    )


def migration_bot_handle(bot: Bot, update: Update) -> None:
    """Built-in handler: /start (or any message) lists the person's old
    chats with buttons; a button moves one chat or all of them and answers
    with the result and the summary. Safe to run twice for one update: the
    import moves a chat once, and a second run reports it as moved."""
    if update.chat_id is None:
        return
    sender_id = (update.payload.get("from") or {}).get("id")
    user = User.objects.filter(pk=sender_id, is_active=True).first() if isinstance(sender_id, int) else None
    with translation.override(settings.LANGUAGE_CODE):
        if user is None or bot_selectors.bot_direct_chat_id(bot=bot, user=user) != update.chat_id:
            # Not the person's own chat with the bot (a group the bot was
            # added to, a forged update): nothing is said there.
            if update.kind == UpdateKind.CALLBACK_QUERY:
                _answer(bot=bot, update=update, text=_("This chat is not among your old chats."))
            return
        # The start rule keeps others out; this holds for a role withdrawn
        # since the person started the bot.
        if not bot_selectors.user_may_start(user=user, bot=bot):
            if update.kind == UpdateKind.CALLBACK_QUERY:
                _answer(bot=bot, update=update, text=_("Only verified teachers and staff can move chats."))
            _send(bot=bot, update=update, text=_refusal_text())
            return
        if update.kind == UpdateKind.CALLBACK_QUERY:
            _press(bot=bot, update=update, user=user)
            return
        chats = old_chats_of(user=user)
        _send(bot=bot, update=update, text=list_text(user=user, chats=chats), buttons=_buttons(chats) or None)


def _press(*, bot: Bot, update: Update, user: User) -> None:
    data = str(update.payload.get("data", ""))
    sources = _sources(user)
    chats = _old_chats(sources)
    if data == CALLBACK_ALL:
        chosen = [old for old in chats if old.status == Status.MIGRATED]
        if not chosen:
            _answer(bot=bot, update=update, text=_("Nothing left to move."))
            _send(bot=bot, update=update, text=list_text(user=user, chats=chats))
            return
    else:
        peer = data.removeprefix(CALLBACK_PREFIX)
        chosen = [old for old in chats if data.startswith(CALLBACK_PREFIX) and str(old.peer_id) == peer]
        if not chosen:
            # Not one of the presser's own old chats: a forged or stale button.
            _answer(bot=bot, update=update, text=_("This chat is not among your old chats."))
            _send(bot=bot, update=update, text=_("This chat is not among your old chats: nothing was moved."))
            return
    _answer(bot=bot, update=update, text=_("Moving…"))
    results = _move(user=user, sources=sources, chosen=chosen)
    lines = [_result_line(old, result) for old, result in results]
    _send(bot=bot, update=update, text="\n".join(_lines_cut(lines)))
    done = [(old, result) for old, result in results if result.status in (Status.MIGRATED, Status.UNCHANGED)]
    if done:
        _send(bot=bot, update=update, text=summary_text(user=user, moved=done))
    _buttons_refresh(bot=bot, update=update, user=user, sources=sources)


def _move(*, user: User, sources: list[_Source], chosen: list[OldChat]) -> list[tuple[OldChat, ChatResult]]:
    """Move the chosen chats, each organisation's through its kept export,
    with the same rules as the admin import."""
    wanted: dict[int, list[int]] = defaultdict(list)
    for old in chosen:
        wanted[old.organisation.pk].append(old.peer_id)
    by_peer = {old.peer_id: old for old in chosen}
    results: list[tuple[OldChat, ChatResult]] = []
    for source in sources:
        peer_ids = wanted.get(source.organisation.pk)
        if not peer_ids:
            continue
        for result in export_import(
            export=source.export, actor=user, organisation=source.organisation, peer_ids=peer_ids
        ):
            results.append((by_peer[result.peer_id], result))
    return results


def _buttons_refresh(*, bot: Bot, update: Update, user: User, sources: list[_Source]) -> None:
    """The list's buttons now offer only the chats still to move."""
    message = update.payload.get("message") or {}
    seq = message.get("seq")
    if not isinstance(seq, int) or message.get("from", {}).get("id") != bot.user_id:
        return
    try:
        bot_services.bot_message_edit(bot=bot, chat_id=update.chat_id, seq=seq, buttons=_buttons(_old_chats(sources)))
    except ApplicationError as error:
        logger.info("migration bot: buttons of %s/%s not refreshed (%s)", update.chat_id, seq, error.code)
