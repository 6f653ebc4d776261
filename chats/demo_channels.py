"""Demo channels of `manage.py seed_demo` (a step for chats/demo.py's
DEMO_STEPS, after the class chats): the ministry's official channel
"Минпросвещения России" with the weekly "Разговоры о важном" post, and the
channel of school № 1 with a post that asks parents to confirm
("Ознакомлен") and is escalated by SMS after three days. Idempotent: channels
are found by organisation and title, posts by their fixed client ids."""

from django.utils.translation import gettext as _

from accounts.models import User
from chats.models import Chat, ChatKind
from chats.services import channels
from organisations import services as organisation_services
from organisations.demo import DemoData, demo_user
from organisations.models import Organisation, Role

MINISTRY_CHANNEL_TITLE = "Минпросвещения России"
MINISTRY_CHANNEL_DESCRIPTION = (
    "Официальный канал Министерства просвещения Российской Федерации: новости, документы и проекты для "
    "школ, педагогов, родителей и учеников."
)
MINISTRY_POSTS = [
    (
        "demo-ministry-1",
        "Разговоры о важном. Тема этой недели — «Мы вместе». Классные руководители найдут сценарии занятий, "
        "видеоролики и плакаты для всех возрастов на портале «Разговоры о важном». Занятия проходят каждый "
        "понедельник первым уроком.",
    ),
]
SCHOOL_CHANNEL_TITLE = "МБОУ СОШ № 1 — объявления"
SCHOOL_CHANNEL_DESCRIPTION = "Объявления администрации школы для учеников, родителей и педагогов."
SCHOOL_POSTS = [
    (
        "demo-school-1",
        "Уважаемые родители! С 1 декабря вход в школу — только по электронным пропускам. Пропуск можно "
        "получить у дежурного администратора с 8:00 до 16:00. Пожалуйста, подтвердите, что ознакомились.",
        True,
        72,
    ),
    (
        "demo-school-2",
        "В субботу с 10:00 — день открытых дверей для будущих первоклассников. Приглашаем всех желающих!",
        False,
        None,
    ),
]


def _channel(*, actor: User, organisation: Organisation, title: str, description: str, is_public: bool) -> Chat:
    chat = Chat.objects.filter(kind=ChatKind.CHANNEL, organisation=organisation, title=title).order_by("pk").first()
    if chat is None:
        chat = channels.channel_create(
            actor=actor, organisation=organisation, title=title, description=description, is_public=is_public
        )
    return chat


def seed_channels(data: DemoData) -> None:
    ministry = data["ministry"]
    school = data["school_1"]
    official = data.add(
        "ministry_official",
        demo_user(phone="+79000000008", last_name="Орлова", first_name="Наталья", middle_name="Викторовна"),
    )
    organisation_services.membership_create(
        actor=data["superuser"],
        user=official,
        organisation=ministry,
        role=Role.OFFICIAL,
        position="Департамент государственной политики в сфере общего образования",
    )
    ministry_channel = data.add(
        "channel_ministry",
        _channel(
            actor=data["superuser"],
            organisation=ministry,
            title=MINISTRY_CHANNEL_TITLE,
            description=MINISTRY_CHANNEL_DESCRIPTION,
            is_public=True,
        ),
    )
    channels.channel_editor_add(actor=data["superuser"], chat_id=ministry_channel.pk, user_id=official.pk)
    for client_id, body in MINISTRY_POSTS:
        channels.channel_post(user=official, chat_id=ministry_channel.pk, body=body, client_id=client_id)

    administrator = data["administrator"]
    school_channel = data.add(
        "channel_school",
        _channel(
            actor=administrator,
            organisation=school,
            title=SCHOOL_CHANNEL_TITLE,
            description=SCHOOL_CHANNEL_DESCRIPTION,
            is_public=True,
        ),
    )
    channels.channel_editor_add(actor=administrator, chat_id=school_channel.pk, user_id=data["teacher_verified"].pk)
    for client_id, body, requires_acknowledgement, hours in SCHOOL_POSTS:
        channels.channel_post(
            user=administrator,
            chat_id=school_channel.pk,
            body=body,
            client_id=client_id,
            requires_acknowledgement=requires_acknowledgement,
            escalate_after_hours=hours,
        )
    data.add_login(user=official, role=_("official of the ministry, editor of its channel"), organisation=ministry)
