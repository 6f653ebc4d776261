"""Attachments: type decided by content, images re-encoded without EXIF with
a thumbnail, size limit, binding to a sent message, and files served only to
members of the chat."""

import io
import os
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from openpyxl import Workbook
from PIL import Image

from accounts.services import api_token_create
from chats import files
from chats.models import Attachment, ChatMember, Message, ScheduledMessage
from chats.services import content
from chats.tests.content_helpers import events_recorded, image_bytes, make_chat
from common.errors import ApplicationError, NotFound, PermissionDenied
from organisations.tests.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def published(monkeypatch):
    return events_recorded(monkeypatch)


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


@pytest.fixture
def people():
    teacher, student, other = make_user(), make_user(), make_user()
    chat = make_chat(moderators=(teacher,), members=(student, other))
    return chat, teacher, student, other


def office_file(main_type: str, main_part: str, *, extra_parts: tuple[str, ...] = ()) -> bytes:
    output = io.BytesIO()
    with zipfile.ZipFile(output, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            f'<Override PartName="/{main_part}" ContentType="{main_type}"/></Types>',
        )
        archive.writestr(main_part, "<document/>")
        for part in extra_parts:
            archive.writestr(part, b"\x00")
    return output.getvalue()


DOCX_MAIN = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
PPTX_MAIN = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
MP3_FRAME = bytes([0xFF, 0xFB, 0x90, 0x64]) + bytes(413)
M4A = b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A mp42isom" + b"\x00\x00\x00\x08free"


def xlsx_bytes() -> bytes:
    workbook = Workbook()
    workbook.active["A1"] = "Оценки"
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


# --- What a file is --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "name", "content_type", "stored_name"),
    [
        (b"%PDF-1.7\n1 0 obj\n%%EOF", "Расписание.pdf", "application/pdf", "Расписание.pdf"),
        (office_file(DOCX_MAIN, "word/document.xml"), "план.docx", files.DOCX, "план.docx"),
        (xlsx_bytes(), "оценки.xlsx", files.XLSX, "оценки.xlsx"),
        (office_file(PPTX_MAIN, "ppt/presentation.xml"), "урок", files.PPTX, "урок.pptx"),
        ("Домашнее задание: №5, №7\n".encode(), "дз.txt", "text/plain; charset=utf-8", "дз.txt"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x05" + bytes(5) + MP3_FRAME, "песня.mp3", "audio/mpeg", "песня.mp3"),
        (MP3_FRAME, "запись", "audio/mpeg", "запись.mp3"),
        (M4A, "голос.m4a", "audio/mp4", "голос.m4a"),
        (b"OggS\x00\x02" + bytes(40), "голос.ogg", "audio/ogg", "голос.ogg"),
        # The content decides, not the name: a PDF named .html downloads as .pdf.
        (b"%PDF-1.4 x", "report.html", "application/pdf", "report.pdf"),
    ],
)
def test_allowed_kinds_are_recognised_by_content(data, name, content_type, stored_name):
    inspected = files.file_inspect(data=data, name=name)

    assert (inspected.content_type, inspected.name, inspected.thumbnail) == (content_type, stored_name, None)
    assert inspected.content == data


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image.svg"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image.txt"),
        (b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>", "page.txt"),
        (b"  <HTML><body>x</body></HTML>", "notes.txt"),
        (b"<script>alert(1)</script>", "a.txt"),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(100), "photo.jpg"),
        (b"\x7fELF\x02\x01\x01" + bytes(100), "song.mp3"),
        (b"\xff\xd8\xff\xe0 definitely not a jpeg", "photo.jpg"),
        (b"\x89PNG\r\n\x1a\n broken", "photo.png"),
        (office_file("application/vnd.ms-word.document.macroEnabled.main+xml", "word/document.xml"), "m.docm"),
        (office_file(DOCX_MAIN, "word/document.xml", extra_parts=("word/vbaProject.bin",)), "macro.docx"),
        (office_file(DOCX_MAIN, "xl/workbook.xml"), "wrong-part.docx"),
        (b"PK\x03\x04 not really a zip", "archive.zip"),
        (b"text with a \x00 NUL byte", "binary.txt"),
        (b"\xff\xfe\x00\x00 latin-1 \xe9", "notes.txt"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x05" + bytes(5) + b"<html>", "fake.mp3"),
        (b"\x00\x00\x00\x18ftypqt  \x00\x00\x00\x00qt  ", "movie.mov"),
    ],
)
def test_everything_else_is_refused(data, name):
    with pytest.raises(ApplicationError) as refused:
        files.file_inspect(data=data, name=name)

    assert (refused.value.code, refused.value.status_code) == ("file_type_not_allowed", 415)


def test_an_empty_file_is_refused():
    with pytest.raises(ApplicationError) as refused:
        files.file_inspect(data=b"", name="empty.txt")

    assert refused.value.code == "file_empty"


def test_a_photo_is_re_encoded_upright_without_exif_with_a_thumbnail():
    original = image_bytes(size=(800, 600), exif=True)
    assert Image.open(io.BytesIO(original)).getexif()[0x0112] == 6

    inspected = files.file_inspect(data=original, name="IMG_0001.JPG")

    stored = Image.open(io.BytesIO(inspected.content))
    assert (stored.format, stored.size) == ("JPEG", (600, 800))  # turned as the camera meant
    assert dict(stored.getexif()) == {}
    assert b"PhoneMaker" not in inspected.content
    assert "exif" not in stored.info
    assert (inspected.content_type, inspected.name, inspected.width, inspected.height) == (
        "image/jpeg",
        "IMG_0001.jpg",
        600,
        800,
    )
    thumbnail = Image.open(io.BytesIO(inspected.thumbnail))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (240, 320))
    assert dict(thumbnail.getexif()) == {}


def test_comments_and_xmp_of_a_jpeg_are_dropped():
    output = io.BytesIO()
    Image.new("RGB", (50, 50)).save(
        output, format="JPEG", comment=b"Secret comment", xmp=b"<x:xmpmeta>Secret</x:xmpmeta>"
    )
    assert b"Secret" in output.getvalue()

    inspected = files.file_inspect(data=output.getvalue(), name="a.jpg")

    assert b"Secret" not in inspected.content
    assert b"Secret" not in inspected.thumbnail


@pytest.mark.parametrize(
    ("image_format", "mode", "content_type"),
    [("PNG", "RGBA", "image/png"), ("WEBP", "RGB", "image/webp"), ("GIF", "RGB", "image/gif")],
)
def test_other_image_formats_keep_their_format_and_get_a_jpeg_thumbnail(image_format, mode, content_type):
    inspected = files.file_inspect(data=image_bytes(size=(1000, 500), image_format=image_format, mode=mode), name="x")

    assert inspected.content_type == content_type
    assert Image.open(io.BytesIO(inspected.content)).format == image_format
    thumbnail = Image.open(io.BytesIO(inspected.thumbnail))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (320, 160))


def test_an_animated_gif_keeps_its_frames():
    frames = [Image.new("RGB", (64, 64), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    output = io.BytesIO()
    frames[0].save(
        output, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0, comment=b"secret note"
    )
    assert Image.open(io.BytesIO(output.getvalue())).info["comment"] == b"secret note"

    inspected = files.file_inspect(data=output.getvalue(), name="anim.gif")

    stored = Image.open(io.BytesIO(inspected.content))
    assert (stored.format, stored.n_frames) == ("GIF", 3)
    assert "comment" not in stored.info
    assert b"secret note" not in inspected.content


def test_a_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(files, "IMAGE_MAX_PIXELS", 100 * 100)

    with pytest.raises(ApplicationError) as refused:
        files.file_inspect(data=image_bytes(size=(101, 100), image_format="PNG"), name="bomb.png")

    assert (refused.value.code, refused.value.status_code) == ("image_too_large", 413)


def test_original_names_are_cleaned():
    assert files.original_name_clean("../../etc/passwd", files.TEXT) == "passwd.txt"
    assert files.original_name_clean("C:\\Users\\Мария\\фото.exe", files.JPEG) == "фото.jpg"
    assert files.original_name_clean("a\u202egpj.exe", files.PDF) == "agpj.pdf"
    assert files.original_name_clean("", files.PNG) == "file.png"
    assert files.original_name_clean(".hidden", files.PNG) == "hidden.png"


# --- Upload --------------------------------------------------------------------------------


def upload(data: bytes, name: str = "photo.jpg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")


def test_upload_stores_a_clean_image_and_its_thumbnail(people, media):
    chat, _teacher, student, _other = people

    attachment = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(image_bytes(exif=True)))

    attachment.refresh_from_db()
    assert (attachment.chat_id, attachment.message_id, attachment.uploaded_by_id) == (chat.pk, None, student.pk)
    assert (attachment.content_type, attachment.original_name, attachment.width, attachment.height) == (
        "image/jpeg",
        "photo.jpg",
        600,
        800,
    )
    stored = attachment.file.read()
    assert attachment.size == len(stored)
    assert dict(Image.open(io.BytesIO(stored)).getexif()) == {}
    assert attachment.file.name.startswith("attachments/") and attachment.file.name.endswith(".jpg")
    assert "photo" not in attachment.file.name  # random names: nothing to guess
    assert attachment.thumbnail.name.startswith("thumbnails/")
    assert max(Image.open(attachment.thumbnail.path).size) == 320


def test_upload_over_the_size_limit_is_refused(people, settings, media):
    chat, _teacher, student, _other = people
    settings.CHAT_ATTACHMENT_MAX_BYTES = 1000

    with pytest.raises(ApplicationError) as refused:
        content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"a" * 1001, "big.txt"))

    assert (refused.value.code, refused.value.status_code, refused.value.extra) == (
        "file_too_large",
        413,
        {"max_bytes": 1000},
    )
    assert Attachment.objects.count() == 0
    assert list(media.iterdir()) == []


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "cat.svg"),
        (b"<html><script>alert(document.cookie)</script></html>", "page.html"),
        (b"MZ\x90\x00" + bytes(200), "homework.pdf"),
    ],
)
def test_refused_uploads_store_nothing(people, media, data, name):
    chat, _teacher, student, _other = people

    with pytest.raises(ApplicationError) as refused:
        content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(data, name))

    assert refused.value.code == "file_type_not_allowed"
    assert Attachment.objects.count() == 0
    assert list(media.iterdir()) == []


def test_upload_follows_membership_and_posting_rules(people, media):
    chat, _teacher, student, _other = people
    type(chat).objects.filter(pk=chat.pk).update(is_announcement_only=True)

    with pytest.raises(NotFound):
        content.attachment_upload(user=make_user(), chat_id=chat.pk, upload=upload(image_bytes()))
    with pytest.raises(PermissionDenied) as refused:
        content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(image_bytes()))

    assert refused.value.code == "announcement_only"
    assert Attachment.objects.count() == 0


def test_uploads_are_rate_limited(people, settings, media):
    chat, _teacher, student, _other = people
    settings.CHAT_ATTACHMENT_UPLOAD_RATE = "2/hour"
    for _number in range(2):
        content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"text", "a.txt"))

    with pytest.raises(ApplicationError) as refused:
        content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"text", "a.txt"))

    assert (refused.value.code, refused.value.status_code) == ("rate_limited", 429)
    assert Attachment.objects.count() == 2


# --- Sending with attachments ---------------------------------------------------------------


def test_sending_binds_uploads_in_the_same_transaction(people, published, django_capture_on_commit_callbacks):
    chat, _teacher, student, _other = people
    photo = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(image_bytes()))
    text = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"notes", "notes.txt"))

    with django_capture_on_commit_callbacks(execute=True):
        message, created = content.message_send_with_attachments(
            user=student, chat_id=chat.pk, body="Фото доски", attachment_ids=[photo.pk, text.pk], client_id="m-1"
        )

    assert created
    assert set(Attachment.objects.filter(message=message).values_list("pk", flat=True)) == {photo.pk, text.pk}
    assert published.types() == ["message", "message.updated"]
    shown = published.events[1]["message"]["attachments"]
    assert [item["id"] for item in shown] == [photo.pk, text.pk]
    assert shown[0] == {
        "id": photo.pk,
        "name": "photo.jpg",
        "content_type": "image/jpeg",
        "size": photo.size,
        "width": 800,
        "height": 600,
        "url": f"/chats/files/{photo.pk}/",
        "thumbnail_url": f"/chats/files/{photo.pk}/thumbnail/",
    }
    assert shown[1]["thumbnail_url"] is None

    again, created_again = content.message_send_with_attachments(
        user=student, chat_id=chat.pk, body="Фото доски", attachment_ids=[text.pk, photo.pk], client_id="m-1"
    )
    assert (again.pk, created_again) == (message.pk, False)


@pytest.mark.parametrize("case", ["someone_elses", "other_chat", "already_sent", "missing", "not_a_list"])
def test_sending_with_a_wrong_attachment_stores_no_message(people, published, django_capture_on_commit_callbacks, case):
    chat, _teacher, student, other = people
    other_chat = make_chat(members=(student,))
    mine = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"notes", "a.txt"))
    ids: object = [mine.pk]
    if case == "someone_elses":
        ids = [content.attachment_upload(user=other, chat_id=chat.pk, upload=upload(b"x", "b.txt")).pk]
    elif case == "other_chat":
        ids = [content.attachment_upload(user=student, chat_id=other_chat.pk, upload=upload(b"x", "c.txt")).pk]
    elif case == "already_sent":
        content.message_send_with_attachments(user=student, chat_id=chat.pk, body="Первое", attachment_ids=[mine.pk])
        published.sent.clear()
    elif case == "missing":
        ids = [10**9]
    elif case == "not_a_list":
        ids = str(mine.pk)
    messages_before = Message.objects.count()

    with pytest.raises(ApplicationError) as refused, django_capture_on_commit_callbacks(execute=True) as callbacks:
        content.message_send_with_attachments(user=student, chat_id=chat.pk, body="Второе", attachment_ids=ids)

    assert refused.value.code == ("invalid" if case == "not_a_list" else "attachment_invalid")
    assert Message.objects.count() == messages_before
    assert callbacks == []
    assert published.sent == []


def test_a_message_held_for_office_hours_cannot_carry_files(people, monkeypatch, media):
    chat, _teacher, student, _other = people
    attachment = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"notes", "a.txt"))
    held = ScheduledMessage(chat=chat, author=student, body="Позже", deliver_at=timezone.now())

    def held_send(**kwargs):
        held.save()
        return held, True

    monkeypatch.setattr(content.messages, "message_send", held_send)

    with pytest.raises(ApplicationError) as refused:
        content.message_send_with_attachments(
            user=student, chat_id=chat.pk, body="Позже", attachment_ids=[attachment.pk]
        )

    assert refused.value.code == "attachments_held"
    assert ScheduledMessage.objects.count() == 0
    attachment.refresh_from_db()
    assert attachment.message_id is None


def test_unsent_uploads_are_purged_after_a_day(people, media):
    chat, _teacher, student, _other = people
    stale = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(image_bytes()))
    fresh = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"x", "x.txt"))
    sent = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(b"y", "y.txt"))
    content.message_send_with_attachments(user=student, chat_id=chat.pk, body="С файлом", attachment_ids=[sent.pk])
    Attachment.objects.filter(pk__in=[stale.pk, sent.pk]).update(created_at=timezone.now() - timezone.timedelta(days=2))
    stale_paths = [stale.file.path, stale.thumbnail.path]

    assert content.attachments_unbound_purge() == 1

    assert set(Attachment.objects.values_list("pk", flat=True)) == {fresh.pk, sent.pk}
    assert [path for path in stale_paths if os.path.exists(path)] == []


# --- Serving ---------------------------------------------------------------------------------


def sent_attachment(chat, author, data=None, name="photo.jpg"):
    attachment = content.attachment_upload(
        user=author, chat_id=chat.pk, upload=upload(data if data is not None else image_bytes(), name)
    )
    message, _created = content.message_send_with_attachments(
        user=author, chat_id=chat.pk, body="Файл", attachment_ids=[attachment.pk]
    )
    return attachment, message


def client_for(user=None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def body_of(response) -> bytes:
    return b"".join(response.streaming_content)


def test_members_get_an_image_inline_with_safe_headers(people):
    chat, teacher, student, _other = people
    attachment, _message = sent_attachment(chat, student)

    response = client_for(teacher).get(f"/chats/files/{attachment.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == 'inline; filename="photo.jpg"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "private, max-age=3600"
    assert body_of(response) == attachment.file.open("rb").read()

    thumbnail = client_for(teacher).get(f"/chats/files/{attachment.pk}/thumbnail/")
    assert thumbnail.status_code == 200
    assert thumbnail["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(body_of(thumbnail))).size) == 320


def test_documents_are_downloaded_not_shown(people):
    chat, teacher, student, _other = people
    attachment, _message = sent_attachment(chat, student, b"%PDF-1.7 test", "Справка.pdf")

    response = client_for(teacher).get(f"/chats/files/{attachment.pk}/")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"] == "attachment; filename*=utf-8''%D0%A1%D0%BF%D1%80%D0%B0%D0%B2%D0%BA%D0%B0.pdf"
    )
    assert response["X-Content-Type-Options"] == "nosniff"
    assert client_for(teacher).get(f"/chats/files/{attachment.pk}/thumbnail/").status_code == 404


def test_api_clients_download_with_their_token(people):
    chat, teacher, student, _other = people
    attachment, _message = sent_attachment(chat, student)
    token = api_token_create(user=teacher, name="phone")

    response = Client().get(f"/chats/files/{attachment.pk}/", HTTP_AUTHORIZATION="Token " + token)
    wrong = Client().get(f"/chats/files/{attachment.pk}/", HTTP_AUTHORIZATION="Token wrong")

    assert response.status_code == 200
    assert wrong.status_code == 404


def test_non_members_get_the_same_404_as_for_a_missing_file(people):
    chat, _teacher, student, _other = people
    attachment, _message = sent_attachment(chat, student)
    stranger = make_user()

    answers = [
        client_for(stranger).get(f"/chats/files/{attachment.pk}/"),
        client_for(stranger).get(f"/chats/files/{attachment.pk}/thumbnail/"),
        client_for(None).get(f"/chats/files/{attachment.pk}/"),
        client_for(stranger).get("/chats/files/999999999/"),
    ]

    assert [answer.status_code for answer in answers] == [404, 404, 404, 404]
    assert len({answer.content for answer in answers}) == 1


def test_a_member_who_left_and_files_of_deleted_messages_are_not_served(people):
    chat, teacher, student, other = people
    attachment, message = sent_attachment(chat, student)
    ChatMember.objects.filter(user=other).update(left_at=timezone.now())

    assert client_for(other).get(f"/chats/files/{attachment.pk}/").status_code == 404

    Message.objects.filter(pk=message.pk).update(deleted_at=timezone.now())
    assert client_for(teacher).get(f"/chats/files/{attachment.pk}/").status_code == 404


def test_an_unsent_upload_is_served_to_its_uploader_only(people):
    chat, teacher, student, _other = people
    attachment = content.attachment_upload(user=student, chat_id=chat.pk, upload=upload(image_bytes()))

    assert client_for(student).get(f"/chats/files/{attachment.pk}/").status_code == 200
    assert client_for(teacher).get(f"/chats/files/{attachment.pk}/").status_code == 404


def test_files_are_only_read(people):
    chat, _teacher, student, _other = people
    attachment, _message = sent_attachment(chat, student)

    assert client_for(student).post(f"/chats/files/{attachment.pk}/").status_code == 405
    assert client_for(student).head(f"/chats/files/{attachment.pk}/").status_code == 200
