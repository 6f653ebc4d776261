"""The built-in help bot: Russian questions matched against its knowledge
base, hand-over to a person, and the registry of built-in handlers that the
migration bot will use."""

import pytest

from bots import builtin, helpbot, services
from bots.demo import ROSOBRNADZOR_USERNAME, STUDENT_HELPER_USERNAME, seed_bots
from bots.models import Bot, HelpBotSettings, KnowledgeArticle, Update, UpdateKind
from bots.tests.factories import make_bot
from chats.models import Message
from chats.tests.factories import send
from organisations.demo import DemoData
from organisations.tests.factories import make_school_with_class, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def help_bot():
    bot = make_bot(name="Помощник ученика", username="helper_test_bot", is_verified=True)
    HelpBotSettings.objects.create(bot=bot)
    for question, keywords, answer in [
        ("Где посмотреть расписание уроков?", "расписание, уроки", "В разделе «Расписание»."),
        ("Где найти домашнее задание?", "домашнее задание, домашка, дз", "В разделе «Домашние задания»."),
        ("Как посмотреть оценки?", "оценки, отметки, успеваемость", "В разделе «Оценки»."),
    ]:
        KnowledgeArticle.objects.create(bot=bot, question=question, keywords=keywords, answer=answer)
    KnowledgeArticle.objects.create(
        bot=bot, question="Черновик про расписание", keywords="расписание", answer="—", is_published=False
    )
    return bot


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Где расписание?", "В разделе «Расписание»."),
        ("РАСПИСАНИЯ уроков на завтра нет", "В разделе «Расписание»."),
        ("где моя домашка", "В разделе «Домашние задания»."),
        ("Что задали? Домашнее задание не вижу", "В разделе «Домашние задания»."),
        ("Как узнать отметки за четверть", "В разделе «Оценки»."),
        ("Оценку поставили?", "В разделе «Оценки»."),
    ],
)
def test_questions_in_russian_find_their_article(help_bot, question, answer):
    match = helpbot.article_best_match(bot=help_bot, question=question)

    assert match is not None
    assert match.article.answer == answer


@pytest.mark.parametrize("question", ["Привет", "Какая погода в Москве?", "", "!!!"])
def test_unrelated_questions_find_nothing(help_bot, question):
    assert helpbot.article_best_match(bot=help_bot, question=question) is None


def test_the_normalisation_folds_case_and_yo():
    assert helpbot.stems("ЁЛКА ёлки Елке") == {"елк"}


def test_the_help_bot_answers_in_the_chat_through_the_same_path_as_any_bot(
    help_bot, eager_celery, django_capture_on_commit_callbacks
):
    world = make_school_with_class()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=help_bot)
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Где найти домашку по математике?")

    messages = list(Message.objects.filter(chat=chat).order_by("seq").values_list("author_id", "body", "reply_to__seq"))
    assert messages[0] == (world.parent.pk, "/start", None)
    assert messages[1][0] == help_bot.user_id
    assert messages[1][1].startswith("Hello! I am Помощник ученика.") or messages[1][1].startswith("Здравствуйте")
    assert "Где посмотреть расписание уроков?" in messages[1][1]
    assert messages[2] == (world.parent.pk, "Где найти домашку по математике?", None)
    assert messages[3] == (help_bot.user_id, "В разделе «Домашние задания».", 3)
    # Both updates were handled and confirmed.
    assert Update.objects.filter(bot=help_bot).count() == 2
    assert Update.objects.filter(bot=help_bot, confirmed_at__isnull=True).count() == 0


def test_an_unanswered_question_is_handed_over_to_a_person(help_bot, eager_celery, django_capture_on_commit_callbacks):
    world = make_school_with_class()
    specialist = make_user(first_name="Анна", last_name="Смирнова")
    HelpBotSettings.objects.filter(bot=help_bot).update(human=specialist, human_title="методист")
    with django_capture_on_commit_callbacks(execute=True):
        specialist_chat = services.bot_start(user=specialist, bot=help_bot)
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=help_bot)
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Можно ли перевестись в другую школу посреди года?")

    answer = Message.objects.filter(chat=chat, author=help_bot.user).order_by("-seq").first()
    assert "Анна Смирнова" in answer.body
    assert "методист" in answer.body
    forwarded = Message.objects.filter(chat=specialist_chat, author=help_bot.user).order_by("-seq").first()
    assert "Можно ли перевестись в другую школу посреди года?" in forwarded.body
    assert world.parent.display_name in forwarded.body


def test_without_a_person_the_help_bot_says_where_to_ask(help_bot, eager_celery, django_capture_on_commit_callbacks):
    world = make_school_with_class()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.parent, bot=help_bot)
    with django_capture_on_commit_callbacks(execute=True):
        send(world.parent, chat, "Сколько стоит обед?")

    answer = Message.objects.filter(chat=chat, author=help_bot.user).order_by("-seq").first()
    assert answer.body in (
        "I did not find an answer. Please ask your school's administration: they will help.",
        "Я не нашёл ответа. Пожалуйста, обратитесь к администрации вашей школы: там помогут.",
    )


def test_a_registered_builtin_handler_gets_the_updates_of_its_bot(eager_celery, django_capture_on_commit_callbacks):
    """The hook the migration bot uses: its handler is called with each of
    its updates, queued exactly like an external bot's."""
    bot = make_bot(username="chat_migration_test_bot", name="Перенос чатов")
    seen: list[tuple[int, str, str]] = []

    def handle(handled_bot: Bot, update: Update) -> None:
        seen.append((update.update_id, update.kind, update.payload.get("command", "")))
        if update.kind == UpdateKind.COMMAND:
            services.bot_message_send(
                bot=handled_bot,
                chat_id=update.chat_id,
                text="Пришлите файл выгрузки",
                buttons=[[{"text": "Как выгрузить?", "callback_data": "how"}]],
            )

    builtin.builtin_handler_register(bot.username, handle)
    world = make_school_with_class()
    with django_capture_on_commit_callbacks(execute=True):
        chat = services.bot_start(user=world.teacher, bot=bot)
    prompt = Message.objects.get(chat=chat, author=bot.user)
    with django_capture_on_commit_callbacks(execute=True):
        services.button_press(user=world.teacher, chat_id=chat.pk, seq=prompt.seq, row=0, column=0)

    assert seen == [(1, "command", "start"), (2, "callback_query", "")]
    assert Update.objects.filter(bot=bot, confirmed_at__isnull=True).count() == 0


def test_a_failing_handler_leaves_its_update_to_be_retried(django_capture_on_commit_callbacks):
    bot = make_bot(username="failing_test_bot")
    calls = []

    def handle(handled_bot: Bot, update: Update) -> None:
        calls.append(update.update_id)
        if len(calls) == 1:
            raise RuntimeError("temporary")

    builtin.builtin_handler_register(bot.username, handle)
    world = make_school_with_class()
    with django_capture_on_commit_callbacks(execute=False):
        services.bot_start(user=world.parent, bot=bot)
    update = services.update_create(bot=bot, kind=UpdateKind.MESSAGE, chat_id=None, payload={"text": "x"})

    with pytest.raises(RuntimeError):
        services.builtin_update_process(update_pk=update.pk)
    update.refresh_from_db()
    assert update.confirmed_at is None
    assert services.builtin_update_process(update_pk=update.pk) is True
    assert services.builtin_update_process(update_pk=update.pk) is False
    assert calls == [update.update_id, update.update_id]


def test_the_demo_bots_are_made_once():
    first = DemoData()
    seed_bots(first)
    second = DemoData()
    seed_bots(second)

    assert set(Bot.objects.values_list("username", flat=True)) == {ROSOBRNADZOR_USERNAME, STUDENT_HELPER_USERNAME}
    assert Bot.objects.get(username=ROSOBRNADZOR_USERNAME).name == "Рособрнадзор: помощник"
    assert all(bot.is_verified and bot.organisation_id is None for bot in Bot.objects.all())
    assert KnowledgeArticle.objects.count() == 8
    assert first["bot_" + STUDENT_HELPER_USERNAME] == second["bot_" + STUDENT_HELPER_USERNAME]
    match = helpbot.article_best_match(
        bot=first["bot_" + ROSOBRNADZOR_USERNAME], question="Как подать апелляцию, если не согласен с баллами?"
    )
    assert match is not None
    assert match.article.question == "Как подать апелляцию по результатам экзамена?"
