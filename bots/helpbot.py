"""The help bot: answers a person's question with the best article of its
knowledge base (edited in admin), or hands the question over to a person.

Matching is done here in Python, the same on SQLite and PostgreSQL: a
knowledge base is tens or hundreds of articles, not millions of messages.
Words are folded (case, ё→е) and cut to a crude Russian stem (common
endings removed), so "расписанию", "Расписание" and "расписания" match;
keywords weigh more than the words of the question."""

import logging
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import override

from bots.models import Bot, HelpBotSettings, KnowledgeArticle, Update, UpdateKind

logger = logging.getLogger(__name__)

_WORD = re.compile(r"[0-9a-zа-я]+")
# Longest first: the first ending that leaves a stem of 3+ letters is cut.
_ENDINGS = sorted(
    [
        "иями",
        "ями",
        "ами",
        "ией",
        "ием",
        "иях",
        "ах",
        "ях",
        "ов",
        "ев",
        "ей",
        "ой",
        "ий",
        "ый",
        "ая",
        "яя",
        "ое",
        "ее",
        "ие",
        "ые",
        "ому",
        "ему",
        "ого",
        "его",
        "ую",
        "юю",
        "ом",
        "ем",
        "ам",
        "ям",
        "ию",
        "ия",
        "ья",
        "ье",
        "ьи",
        "ью",
        "ать",
        "ять",
        "ить",
        "еть",
        "уть",
        "ешь",
        "ете",
        "ите",
        "ет",
        "ит",
        "ут",
        "ют",
        "ат",
        "ят",
        "ал",
        "ала",
        "ало",
        "али",
        "ил",
        "ила",
        "ило",
        "или",
        "ся",
        "сь",
        "а",
        "я",
        "о",
        "е",
        "и",
        "ы",
        "у",
        "ю",
        "ь",
    ],
    key=len,
    reverse=True,
)
STOP_WORDS = frozenset(
    [
        "а",
        "в",
        "во",
        "и",
        "к",
        "ко",
        "на",
        "над",
        "о",
        "об",
        "от",
        "по",
        "под",
        "с",
        "со",
        "у",
        "за",
        "из",
        "для",
        "до",
        "не",
        "ни",
        "но",
        "или",
        "ли",
        "же",
        "бы",
        "как",
        "что",
        "кто",
        "где",
        "когда",
        "мне",
        "меня",
        "мой",
        "моя",
        "мое",
        "мои",
        "я",
        "ты",
        "вы",
        "он",
        "она",
        "они",
        "мы",
        "это",
        "этот",
        "эта",
        "эти",
        "то",
        "та",
        "те",
        "так",
        "там",
        "тут",
        "есть",
        "нет",
        "да",
        "можно",
        "нужно",
        "надо",
        "ли",
        "ваш",
        "наш",
        "свой",
        "какой",
        "какая",
        "какие",
        "сколько",
        "почему",
        "зачем",
        "ли",
        "при",
        "без",
    ]
)
MIN_SCORE = 2.0


def normalise(text: str) -> str:
    return text.lower().replace("ё", "е")


def stem(word: str) -> str:
    for ending in _ENDINGS:
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def stems(text: str) -> set[str]:
    return {stem(word) for word in _WORD.findall(normalise(text)) if word not in STOP_WORDS and len(word) > 1}


@dataclass(frozen=True)
class Match:
    article: KnowledgeArticle
    score: float


def article_best_match(*, bot: Bot, question: str) -> Match | None:
    """The published article that fits the question best, or None when no
    article shares enough with it. A keyword found counts 2, a word of the
    article's question 1; ties go to the article with fewer words (the more
    specific one)."""
    wanted = stems(question)
    if not wanted:
        return None
    best: Match | None = None
    best_size = 0
    for article in KnowledgeArticle.objects.filter(bot=bot, is_published=True).order_by("pk"):
        keyword_stems: set[str] = set()
        for keyword in article.keywords.split(","):
            keyword_stems |= stems(keyword)
        question_stems = stems(article.question)
        score = 2.0 * len(wanted & keyword_stems) + 1.0 * len(wanted & (question_stems - keyword_stems))
        size = len(keyword_stems | question_stems)
        if score >= MIN_SCORE and (best is None or score > best.score or (score == best.score and size < best_size)):
            best, best_size = Match(article=article, score=score), size
    return best


def _greeting(bot: Bot) -> str:
    articles = KnowledgeArticle.objects.filter(bot=bot, is_published=True).order_by("pk")
    topics = list(articles.values_list("question", flat=True)[:5])
    text = _("Hello! I am %(name)s. Ask me a question in your own words.") % {"name": bot.name}
    if topics:
        text += "\n" + _("For example:") + "\n" + "\n".join("• " + topic for topic in topics)
    return text


def _hand_over(*, bot: Bot, update: Update, question: str) -> str:
    """Forward the question to the person named in the bot's settings (in
    their direct chat with the bot, if they have one) and say who answers."""
    from bots import selectors, services

    settings_row = HelpBotSettings.objects.filter(bot=bot).select_related("human").first()
    human = settings_row.human if settings_row else None
    if human is None or not human.is_active:
        return _("I did not find an answer. Please ask your school's administration: they will help.")
    asker = update.payload.get("from") or {}
    chat_id = selectors.bot_direct_chat_id(bot=bot, user=human)
    if chat_id is not None:
        services.bot_message_send(
            bot=bot,
            chat_id=chat_id,
            text=_("A question the knowledge base did not answer, from %(name)s (chat %(chat)s):\n%(question)s")
            % {"name": asker.get("display_name", ""), "chat": update.chat_id, "question": question},
        )
    title = settings_row.human_title if settings_row and settings_row.human_title else _("a specialist")
    return _("I did not find an answer, so I passed your question on: %(title)s %(name)s will answer you.") % {
        "title": title,
        "name": human.display_name,
    }


def help_bot_handle(bot: Bot, update: Update) -> None:
    """Built-in handler of help bots: /start greets with example questions,
    a question gets the best article or is handed over to a person."""
    from bots import services

    if update.kind == UpdateKind.CALLBACK_QUERY or update.chat_id is None:
        return
    message = update.payload
    with override("ru"):
        if message.get("command") in ("start", "help"):
            text = _greeting(bot)
        elif message.get("command"):
            return
        else:
            question = str(message.get("text", ""))
            match = article_best_match(bot=bot, question=question)
            text = match.article.answer if match else _hand_over(bot=bot, update=update, question=question)
        services.bot_message_send(bot=bot, chat_id=update.chat_id, text=text, reply_to_seq=message.get("seq"))
