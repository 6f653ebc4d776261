"""Demo bots of `manage.py seed_demo`: two verified platform help bots of
the presentation — the Rosobrnadzor help bot and "Помощник ученика" — with
a few knowledge base articles each. Idempotent: bots are found by username,
articles by question."""

from bots import services
from bots.models import Bot, HelpBotSettings, KnowledgeArticle
from organisations.demo import DemoData, DemoStep

ROSOBRNADZOR_USERNAME = "rosobrnadzor_help_bot"
STUDENT_HELPER_USERNAME = "student_helper_bot"

BOTS = [
    (
        ROSOBRNADZOR_USERNAME,
        "Рособрнадзор: помощник",
        "Ответы на частые вопросы об экзаменах (ОГЭ и ЕГЭ), аттестации и правах участников "
        "образовательных отношений. Если ответа нет в базе знаний, вопрос передаётся специалисту.",
    ),
    (
        STUDENT_HELPER_USERNAME,
        "Помощник ученика",
        "Подскажет, где посмотреть расписание, домашние задания и оценки, и как связаться с классным руководителем.",
    ),
]

ARTICLES = {
    ROSOBRNADZOR_USERNAME: [
        (
            "Когда проходит ЕГЭ?",
            "егэ, единый государственный экзамен, расписание экзаменов, даты экзаменов",
            "Расписание ЕГЭ утверждается ежегодно совместным приказом Минпросвещения России и Рособрнадзора. "
            "Основной период обычно начинается в конце мая. Точные даты — на сайте obrnadzor.gov.ru.",
        ),
        (
            "Как подать апелляцию по результатам экзамена?",
            "апелляция, несогласие с баллами, результаты экзамена, пересмотр",
            "Апелляцию о несогласии с выставленными баллами подают в течение двух рабочих дней после "
            "официального объявления результатов: выпускники текущего года — в своей школе, остальные — "
            "в месте регистрации на экзамен.",
        ),
        (
            "Сколько раз можно пересдать ОГЭ?",
            "огэ, пересдача, неудовлетворительный результат, двойка",
            "При неудовлетворительном результате по одному или двум предметам ОГЭ можно пересдать в "
            "резервные сроки текущего года; не более двух предметов.",
        ),
        (
            "Что нельзя брать с собой на экзамен?",
            "запрещено, телефон, шпаргалка, что взять на экзамен, средства связи",
            "Запрещены средства связи, фото- и видеоаппаратура, справочные материалы и письменные заметки. "
            "Можно взять паспорт, гелевую чёрную ручку и разрешённые для предмета средства.",
        ),
    ],
    STUDENT_HELPER_USERNAME: [
        (
            "Где посмотреть расписание уроков?",
            "расписание, уроки, сколько уроков завтра",
            "Расписание — в мини-приложении «Моя школа» (папка «Образование»), раздел «Расписание».",
        ),
        (
            "Где найти домашнее задание?",
            "домашнее задание, домашка, дз, что задали",
            "Домашние задания — в «Моей школе», раздел «Домашние задания». Накануне срока придёт напоминание.",
        ),
        (
            "Как посмотреть оценки?",
            "оценки, отметки, дневник, успеваемость",
            "Оценки видны в «Моей школе», раздел «Оценки»; родители видят оценки своих детей.",
        ),
        (
            "Как написать классному руководителю?",
            "классный руководитель, написать учителю, связаться с учителем",
            "Откройте чат класса или найдите учителя в справочнике школы и нажмите «Написать». "
            "Учитель может отвечать только в свои часы приёма.",
        ),
    ],
}


def seed_bots(data: DemoData) -> None:
    for username, name, description in BOTS:
        bot = Bot.objects.filter(username=username).first()
        if bot is None:
            bot = services.bot_create(username=username, name=name, description=description, is_verified=True)
        HelpBotSettings.objects.get_or_create(bot=bot)
        for question, keywords, answer in ARTICLES[username]:
            KnowledgeArticle.objects.get_or_create(
                bot=bot, question=question, defaults={"keywords": keywords, "answer": answer}
            )
        data.add("bot_" + username, bot)
    # Questions the Rosobrnadzor bot cannot answer go to the authority's
    # official, if the directory demo has one.
    settings_row = HelpBotSettings.objects.get(bot=data["bot_" + ROSOBRNADZOR_USERNAME])
    official = data.objects.get("regional_official")
    if settings_row.human_id is None and official is not None:
        settings_row.human = official
        settings_row.human_title = "Специалист регионального органа управления образованием"
        settings_row.save(update_fields=["human", "human_title"])


DEMO_STEPS: list[DemoStep] = [seed_bots]
