"""Reads of the bots app and its visibility rules: which bots a person may
see and start, which chats a bot is in (kept in the cache for the chat send
path), and a bot's pending updates."""

import contextlib
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from django.core.cache import cache
from django.db.models import Q, QuerySet

from accounts.models import User
from bots.models import Bot, Update, UpdateKind
from chats.models import Chat, ChatKind, ChatMember
from chats.selectors import MODERATOR_ROLES
from common.errors import NotFound
from organisations.models import STAFF_ROLES, Membership, VerificationStatus

logger = logging.getLogger(__name__)

# --- Bots people see --------------------------------------------------------------------------------------------


def _organisation_ids(user: User) -> set[int]:
    return set(Membership.objects.active().filter(user=user).values_list("organisation_id", flat=True))


def _verified_staff_organisation_ids(user: User) -> set[int]:
    return set(
        Membership.objects.active()
        .filter(user=user, role__in=STAFF_ROLES, verification_status=VerificationStatus.VERIFIED)
        .values_list("organisation_id", flat=True)
    )


def _visible_filter(*, organisation_ids: set[int], staff_organisation_ids: set[int]) -> Q:
    """Bots of the platform and of the person's organisations; bots that only
    verified staff start, only for verified staff (of the bot's
    organisation, or of any organisation for a platform bot)."""
    open_bots = Q(is_staff_only=False) & (Q(organisation__isnull=True) | Q(organisation_id__in=organisation_ids))
    staff_bots = Q(is_staff_only=True) & (
        Q(organisation_id__in=staff_organisation_ids)
        | (Q(organisation__isnull=True) if staff_organisation_ids else Q(pk__in=[]))
    )
    return open_bots | staff_bots


def bots_startable_by(*, user: User) -> QuerySet[Bot]:
    """Every active bot `user` may start (listed or not)."""
    if not user.is_authenticated or not user.is_active:
        return Bot.objects.none()
    condition = _visible_filter(
        organisation_ids=_organisation_ids(user), staff_organisation_ids=_verified_staff_organisation_ids(user)
    )
    return Bot.objects.filter(condition, is_active=True).select_related("organisation")


def bot_showcase_list(*, user: User) -> list[Bot]:
    """The bots `user` may start, for the services showcase: platform bots
    and their organisations' bots, verified ones first. Each has name,
    username, description, is_verified and organisation (selected)."""
    return list(bots_startable_by(user=user).filter(is_listed=True).order_by("-is_verified", "name", "pk"))


def user_may_start(*, user: User, bot: Bot) -> bool:
    return bots_startable_by(user=user).filter(pk=bot.pk).exists()


def bot_get_for_page(*, user: User, username: str) -> Bot:
    """A bot's page: any active bot the person may start, or one whose
    chat they are already in.

    Raises NotFound otherwise (an unknown bot and a hidden one alike)."""
    bot = Bot.objects.select_related("organisation", "user").filter(username=username, is_active=True).first()
    if bot is None:
        raise NotFound()
    if user_may_start(user=user, bot=bot) or bot_direct_chat_id(bot=bot, user=user) is not None:
        return bot
    raise NotFound()


def bot_direct_chat_id(*, bot: Bot, user: User) -> int | None:
    """The direct chat of `user` with the bot, if they are both in it."""
    low, high = sorted((user.pk, bot.user_id))
    member = (
        ChatMember.objects.active()
        .filter(user=user, chat__direct_key=f"{low}:{high}")
        .values_list("chat_id", flat=True)
        .first()
    )
    return member


def bot_get_by_user_id(user_id: int) -> Bot | None:
    return Bot.objects.filter(user_id=user_id).first()


def group_chats_moderated(*, user: User) -> list[ChatMember]:
    """The person's memberships of group chats they may add a bot to (the
    roles bot_chat_add accepts), by title."""
    return list(
        ChatMember.objects.active()
        .filter(user=user, chat__kind=ChatKind.GROUP, chat__is_archived=False, role__in=MODERATOR_ROLES)
        .select_related("chat")
        .order_by("chat__title")
    )


# --- Which chats have bots: the chat send path asks for every message -------------------------------------------
#
# Every new message reaches bots.services.message_hook. Most chats have no
# bot, and the send path is benchmarked, so the answer "no bot here" must
# cost no database query: the cache holds, per chat with a bot, the ids of
# its bots, and a marker that says the map is complete. Without the marker
# (Redis emptied) the map is rebuilt with one query.

_READY_KEY = "bots:chat-bots:ready"
# {account id: Bot.pk} of every bot: a direct chat's key names its two
# accounts, so a direct chat with a bot is known however it was opened.
_BOT_ACCOUNTS_KEY = "bots:bot-accounts"


def _chat_key(chat_id: int) -> str:
    return "bots:chat-bots:" + str(chat_id)


def bot_accounts_forget() -> None:
    """After a bot was created (call after commit)."""
    with _cache_quietly():
        cache.delete(_BOT_ACCOUNTS_KEY)


@contextlib.contextmanager
def _cache_quietly() -> Iterator[None]:
    """Keeping the map runs after a commit: the cache being down must not
    turn a done write into an error (seed_demo without `make run`'s Redis,
    an admin edit during an outage). A Redis that comes back empty has no
    "ready" marker and the map is rebuilt from the database."""
    try:
        yield
    except Exception as error:
        logger.warning("bots: the map of chats with bots was not updated (cache unavailable: %s)", error)


def _bot_accounts_rebuild() -> dict[int, int]:
    accounts = dict(Bot.objects.values_list("user_id", "pk"))
    cache.set(_BOT_ACCOUNTS_KEY, accounts, timeout=None)
    return accounts


def chat_bot_ids(chat: Chat) -> list[int]:
    """The ids of the bots (Bot.pk) in the chat: for a direct chat, the bot
    named by its key; otherwise the active bot members. One cache round trip,
    no query, while the cache holds its maps."""
    is_direct = chat.kind == ChatKind.DIRECT and bool(chat.direct_key)
    keys = [_BOT_ACCOUNTS_KEY] if is_direct else [_READY_KEY, _chat_key(chat.pk)]
    found = cache.get_many(keys)
    if is_direct:
        accounts = found.get(_BOT_ACCOUNTS_KEY)
        if accounts is None:
            accounts = _bot_accounts_rebuild()
        user_ids = [int(part) for part in (chat.direct_key or "").split(":") if part.isdigit()]
        return [accounts[user_id] for user_id in user_ids if user_id in accounts]
    if _READY_KEY not in found:
        chat_bots_rebuild()
        found = cache.get_many([_chat_key(chat.pk)])
    return list(found.get(_chat_key(chat.pk)) or [])


def _chat_bots_from_database(chat_ids: Iterable[int] | None = None) -> dict[int, list[int]]:
    members = ChatMember.objects.active().filter(user__bot__isnull=False)
    if chat_ids is not None:
        members = members.filter(chat_id__in=list(chat_ids))
    mapping: dict[int, list[int]] = {}
    for chat_id, bot_id in members.values_list("chat_id", "user__bot__id").order_by("chat_id", "user__bot__id"):
        mapping.setdefault(chat_id, []).append(bot_id)
    return mapping


def chat_bots_rebuild() -> None:
    """Fill the cache's map of chats with bots from the database."""
    mapping = _chat_bots_from_database()
    if mapping:
        cache.set_many({_chat_key(chat_id): ids for chat_id, ids in mapping.items()}, timeout=None)
    cache.set(_READY_KEY, True, timeout=None)


def chat_bots_refresh(chat_id: int) -> None:
    """After a bot joined or left a chat (call after commit)."""
    with _cache_quietly():
        if cache.get(_READY_KEY) is None:
            chat_bots_rebuild()
            return
        ids = _chat_bots_from_database([chat_id]).get(chat_id)
        if ids:
            cache.set(_chat_key(chat_id), ids, timeout=None)
        else:
            cache.delete(_chat_key(chat_id))


# --- Updates ----------------------------------------------------------------------------------------------------


def updates_pending(*, bot: Bot, offset: int | None, limit: int) -> list[Update]:
    """The bot's unconfirmed updates from `offset` on, oldest first."""
    updates = Update.objects.filter(bot=bot, confirmed_at__isnull=True)
    if offset is not None:
        updates = updates.filter(update_id__gte=offset)
    return list(updates.order_by("update_id")[:limit])


def update_as_json(update: Update) -> dict[str, Any]:
    """An update as the Bot API shows it (Telegram's shape): a command is a
    message with `command` and `command_args`."""
    key = "callback_query" if update.kind == UpdateKind.CALLBACK_QUERY else "message"
    return {"update_id": update.update_id, key: update.payload}
