"""Demo chats of `manage.py seed_demo`: after the organisations' steps, the
class and staff chats of the demo schools are synced, and the homeroom
teacher of 7Б has written to the class and to its parents. Idempotent: the
messages carry fixed client ids, so a second run finds them."""

from chats.demo_channels import seed_channels
from chats.models import Chat, ChatKind
from chats.services.messages import message_send
from chats.services.sync import chats_sync
from organisations.demo import DemoData, DemoStep

TEACHER_MESSAGES = [
    (
        ChatKind.CLASS_PARENTS,
        "demo-7b-parents-1",
        "Уважаемые родители! В четверг, 18:30, в кабинете 204 пройдёт родительское собрание. "
        "Обсудим итоги четверти и экскурсию в Коломенское.",
    ),
    (
        ChatKind.CLASS_PARENTS,
        "demo-7b-parents-2",
        "Напоминаю: до пятницы нужно сдать согласия на экскурсию. Бланк можно взять у меня или у классного "
        "руководителя.",
    ),
    (
        ChatKind.CLASS_STUDENTS,
        "demo-7b-students-1",
        "Ребята, доброе утро! Завтра после шестого урока классный час в кабинете 204, приходите все.",
    ),
    (
        ChatKind.CLASS_STUDENTS,
        "demo-7b-students-2",
        "Дежурные на этой неделе: Иван Петров и Мария Соколова.",
    ),
]


def seed_chats(data: DemoData) -> None:
    organisation_ids = [data[key].pk for key in ("school_1", "school_2", "kindergarten") if key in data]
    chats_sync(organisation_ids=organisation_ids)
    class_7b = data["class_7b"]
    chats = {chat.kind: chat for chat in Chat.objects.filter(study_group=class_7b)}
    data.add("chat_7b_students", chats[ChatKind.CLASS_STUDENTS])
    data.add("chat_7b_parents", chats[ChatKind.CLASS_PARENTS])
    data.add("chat_staff", Chat.objects.get(organisation=data["school_1"], kind=ChatKind.STAFF))
    teacher = data["teacher_verified"]
    for kind, client_id, body in TEACHER_MESSAGES:
        message_send(user=teacher, chat_id=chats[kind].pk, body=body, client_id=client_id)


DEMO_STEPS: list[DemoStep] = [seed_chats, seed_channels]
