"""Search in the messages of one's own chats.

On PostgreSQL: full-text search with the Russian configuration, so that
"контрольной" finds "Контрольная", ranked, through the GIN expression index
of migration `message_body_search_index` (the expression below must stay
exactly the index's). Elsewhere (SQLite): every word of the query found in
the text, ignoring case — Cyrillic included, and "е" matching "ё" — newest
first.
"""

import re

from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import FloatField, Q, QuerySet, Value
from django.utils.translation import gettext as _

from accounts.models import User
from chats import selectors
from chats.models import ChatMember, Message
from common.errors import ApplicationError

SEARCH_CONFIG = "russian"
QUERY_MAX_LENGTH = 200
QUERY_MAX_WORDS = 10
_WORD = re.compile(r"\w+")


def search_query_clean(query: object) -> str:
    """The query as typed, trimmed: 1..200 characters with at least one
    letter or digit.

    Raises ApplicationError "search_query_invalid".
    """
    text = query.strip() if isinstance(query, str) else ""
    if not _WORD.search(text) or len(text) > QUERY_MAX_LENGTH:
        raise ApplicationError(
            _("Type from 1 to %(limit)d characters to search.") % {"limit": QUERY_MAX_LENGTH},
            code="search_query_invalid",
            extra={"field": "q"},
        )
    return text


_YO_FOLD = str.maketrans({"е": "[её]", "ё": "[её]"})


def _word_pattern(word: str) -> str:
    return re.escape(word.lower()).translate(_YO_FOLD)


def words_filter(*, field: str, text: str) -> Q:
    """Every word of `text` in `field`, ignoring case. `iregex`, not
    `icontains`: SQLite's LIKE folds only ASCII letters; its REGEXP runs
    Python's `re`, which folds Cyrillic (as organisations.selectors does)."""
    condition = Q()
    for word in _WORD.findall(text)[:QUERY_MAX_WORDS]:
        condition &= Q(**{field + "__iregex": _word_pattern(word)})
    return condition


def full_text_filter(messages: QuerySet[Message], *, text: str) -> QuerySet[Message]:
    """PostgreSQL: the messages whose text matches `text` (web-search
    syntax), with their `rank`. The expression is the GIN index's."""
    vector = SearchVector("body", config=SEARCH_CONFIG)
    search_query = SearchQuery(text, config=SEARCH_CONFIG, search_type="websearch")
    return (
        messages.annotate(document=vector).filter(document=search_query).annotate(rank=SearchRank(vector, search_query))
    )


def message_search(*, user: User, query: object, chat_id: int | None = None) -> QuerySet[Message]:
    """Messages matching `query` in the chats the person is an active member
    of (or in one of them), never deleted ones; best match first on
    PostgreSQL (with a `rank`), newest first elsewhere.

    Raises ApplicationError "search_query_invalid", NotFound when `chat_id`
    is a chat the person is not in.
    """
    text = search_query_clean(query)
    found = Message.objects.filter(deleted_at__isnull=True).select_related("author", "reply_to", "chat")
    if chat_id is not None:
        selectors.chat_member_get(user=user, chat_id=chat_id)
        found = found.filter(chat_id=chat_id)
    else:
        found = found.filter(
            chat_id__in=ChatMember.objects.active().filter(user=user, chat__is_archived=False).values("chat_id")
        )
    if connection.vendor == "postgresql":
        return full_text_filter(found, text=text).order_by("-rank", "-created_at", "-id")
    return (
        found.filter(words_filter(field="body", text=text))
        .annotate(rank=Value(0.0, output_field=FloatField()))
        .order_by("-created_at", "-id")
    )
