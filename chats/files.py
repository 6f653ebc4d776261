"""Attachments' files: what an upload really is (judged by its content, never
by its name or the browser's word), the re-encoded image without its
metadata, its thumbnail, and the view that hands a file only to members of
its chat.

Files live under MEDIA_ROOT with random names, but are never meant to be
reached through MEDIA_URL: `attachment_file` below is the only door.
"""

import io
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass
from struct import error as struct_error
from typing import Any

from django.http import FileResponse, Http404, HttpRequest, HttpResponseBase
from django.urls import path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe
from PIL import Image, ImageOps, ImageSequence, UnidentifiedImageError
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import TokenAuthentication
from common.errors import ApplicationError, NotFound

THUMBNAIL_MAX_SIDE = 320
# A photo from a 48-megapixel phone fits; a decompression bomb does not.
IMAGE_MAX_PIXELS = 50_000_000
# Animations: all frames together, so that a small GIF cannot expand to gigabytes.
ANIMATION_MAX_PIXELS = 200_000_000
ANIMATION_MAX_FRAMES = 500
OFFICE_MAX_ENTRIES = 10_000
OFFICE_CONTENT_TYPES_MAX_BYTES = 1024 * 1024
ORIGINAL_NAME_MAX_LENGTH = 200

JPEG = "image/jpeg"
PNG = "image/png"
WEBP = "image/webp"
GIF = "image/gif"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
TEXT = "text/plain; charset=utf-8"
MP3 = "audio/mpeg"
M4A = "audio/mp4"
OGG = "audio/ogg"

IMAGE_CONTENT_TYPES = (JPEG, PNG, WEBP, GIF)
EXTENSIONS = {
    JPEG: ".jpg",
    PNG: ".png",
    WEBP: ".webp",
    GIF: ".gif",
    PDF: ".pdf",
    DOCX: ".docx",
    XLSX: ".xlsx",
    PPTX: ".pptx",
    TEXT: ".txt",
    MP3: ".mp3",
    M4A: ".m4a",
    OGG: ".ogg",
}
_PILLOW_FORMATS = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP, "GIF": GIF}

# (main part's content type in [Content_Types].xml, a part that must exist, our content type)
_OFFICE_KINDS = (
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml", "word/document.xml", DOCX),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml", "xl/workbook.xml", XLSX),
    (
        "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
        "ppt/presentation.xml",
        PPTX,
    ),
)
_M4A_BRANDS = {b"M4A ", b"M4B ", b"mp42", b"mp41", b"isom", b"iso2"}
# What browsers take for markup when sniffing (WHATWG MIME Sniffing §7.1),
# plus SVG and XML: a "text" file that starts like this is refused.
_MARKUP_START = re.compile(
    rb"^\s*<(?:!doctype\s+html|html|head|script|iframe|h1|div|font|table|a|style|title|b|body|br|p|!--|\?xml|svg)"
    rb"(?:[\s>/]|$)",
    re.IGNORECASE,
)
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class InspectedFile:
    """An upload that passed: the bytes to store (images re-encoded), what
    they are, and for images their size and a JPEG thumbnail."""

    content: bytes
    content_type: str
    name: str
    width: int | None = None
    height: int | None = None
    thumbnail: bytes | None = None

    @property
    def is_image(self) -> bool:
        return self.content_type in IMAGE_CONTENT_TYPES


def _refused() -> ApplicationError:
    return ApplicationError(
        _(
            "This type of file cannot be sent. Allowed: photos (JPEG, PNG, WebP, GIF), PDF, Word, Excel and "
            "PowerPoint documents, text files and audio (MP3, M4A, OGG)."
        ),
        code="file_type_not_allowed",
        status_code=415,
    )


def file_inspect(*, data: bytes, name: str) -> InspectedFile:
    """Decide what an uploaded file is from its bytes and make it safe to store.

    Images are decoded and re-encoded by Pillow (metadata such as EXIF and
    GPS position dropped, orientation applied) and get a thumbnail; other
    kinds are checked by their structure. The stored name keeps the
    uploader's stem with the extension of what the file really is.

    Raises ApplicationError "file_empty" (400), "file_type_not_allowed" (415)
    and "image_too_large" (413).
    """
    if not data:
        raise ApplicationError(_("The file is empty."), code="file_empty")
    content_type = _sniff(data)
    if content_type is None:
        raise _refused()
    if content_type in IMAGE_CONTENT_TYPES:
        return _image_inspect(data=data, name=name)
    return InspectedFile(content=data, content_type=content_type, name=original_name_clean(name, content_type))


def _sniff(data: bytes) -> str | None:
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return _office_kind(data)
    if head.startswith(b"OggS"):
        return OGG
    if head[4:8] == b"ftyp":
        return M4A if _is_m4a(data) else None
    if _is_mp3(data):
        return MP3
    if _is_text(data):
        return TEXT
    return None


def _office_kind(data: bytes) -> str | None:
    """DOCX, XLSX or PPTX: a zip whose [Content_Types].xml names the main
    part of that kind, without macros. Nothing else is decompressed."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            entries = archive.infolist()
            if len(entries) > OFFICE_MAX_ENTRIES:
                return None
            names = {entry.filename for entry in entries}
            if any(name.lower().endswith("vbaproject.bin") for name in names):
                return None
            manifest = archive.getinfo("[Content_Types].xml")
            if manifest.file_size > OFFICE_CONTENT_TYPES_MAX_BYTES:
                return None
            content_types = archive.read(manifest).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError, ValueError, EOFError):
        return None
    if "macroenabled" in content_types.lower():
        return None
    for main_type, main_part, kind in _OFFICE_KINDS:
        if '"' + main_type + '"' in content_types and main_part in names:
            return kind
    return None


def _is_m4a(data: bytes) -> bool:
    box_size = int.from_bytes(data[0:4], "big")
    if box_size < 16 or box_size > len(data) or box_size > 4096:
        return False
    brands = {data[8:12]} | {data[offset : offset + 4] for offset in range(16, box_size, 4)}
    return bool(brands & _M4A_BRANDS)


def _is_mpeg_audio_frame(header: bytes) -> bool:
    """An MPEG-1/2/2.5 Layer III frame header with valid rates."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return False
    version = (header[1] >> 3) & 0b11
    layer = (header[1] >> 1) & 0b11
    bitrate = header[2] >> 4
    sample_rate = (header[2] >> 2) & 0b11
    return version != 0b01 and layer == 0b01 and bitrate not in (0, 15) and sample_rate != 0b11


def _is_mp3(data: bytes) -> bool:
    if data.startswith(b"ID3") and len(data) >= 10 and data[3] in (2, 3, 4):
        # The tag's size is a "syncsafe" integer: 7 bits per byte. Audio frames follow it.
        size = 0
        for byte in data[6:10]:
            if byte & 0x80:
                return False
            size = (size << 7) | byte
        offset = 10 + size + (10 if data[5] & 0x10 else 0)
        # Some encoders pad the tag with zeros.
        while offset < len(data) and data[offset] == 0 and offset < 10 + size + 4096:
            offset += 1
        return _is_mpeg_audio_frame(data[offset : offset + 4])
    return _is_mpeg_audio_frame(data[:4])


def _is_text(data: bytes) -> bool:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    text = text.removeprefix("\ufeff")
    if _TEXT_CONTROL.search(text):
        return False
    return _MARKUP_START.match(text.encode()) is None


def _image_inspect(*, data: bytes, name: str) -> InspectedFile:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                probe_format = probe.format
                probe.verify()
            image = Image.open(io.BytesIO(data))
            content_type = _PILLOW_FORMATS.get(image.format or "")
            if content_type is None or image.format != probe_format:
                raise _refused()
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
            if (
                width * height > IMAGE_MAX_PIXELS
                or frames > ANIMATION_MAX_FRAMES
                or width * height * frames > ANIMATION_MAX_PIXELS
            ):
                raise ApplicationError(
                    _("The picture is too large (at most %(megapixels)d megapixels).")
                    % {"megapixels": IMAGE_MAX_PIXELS // 1_000_000},
                    code="image_too_large",
                    status_code=413,
                )
            image.load()
            content, first_frame = _image_reencode(image=image, content_type=content_type, frames=frames)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _refused() from None
    except (OSError, SyntaxError, ValueError, EOFError, struct_error):
        # Truncated or corrupt data that only looks like an image (Pillow
        # raises struct.error on some).
        raise _refused() from None
    return InspectedFile(
        content=content,
        content_type=content_type,
        name=original_name_clean(name, content_type),
        width=first_frame.width,
        height=first_frame.height,
        thumbnail=_thumbnail(first_frame),
    )


# What survives re-encoding: what the pixels need to look right. Everything
# else (EXIF with the GPS position, XMP, comments, text chunks) is dropped.
_KEPT_INFO = ("transparency", "icc_profile", "background")


def _clean(frame: Image.Image) -> Image.Image:
    kept = {key: frame.info[key] for key in _KEPT_INFO if key in frame.info}
    frame.info.clear()
    frame.info.update(kept)
    return frame


def _image_reencode(*, image: Image.Image, content_type: str, frames: int) -> tuple[bytes, Image.Image]:
    """The image saved anew by Pillow with no metadata beyond what the pixels
    need; returns the bytes and the (upright) first frame."""
    output = io.BytesIO()
    pillow_format = {JPEG: "JPEG", PNG: "PNG", WEBP: "WEBP", GIF: "GIF"}[content_type]
    if frames > 1:
        durations = []
        sequence = []
        for frame in ImageSequence.Iterator(image):
            durations.append(frame.info.get("duration", 100))
            sequence.append(_clean(frame.copy()))
        loop = image.info.get("loop", 0)
        first = sequence[0]
        first.save(
            output,
            format=pillow_format,
            save_all=True,
            append_images=sequence[1:],
            duration=durations,
            loop=loop,
        )
        return output.getvalue(), first
    upright = ImageOps.exif_transpose(image) or image
    upright = _clean(upright.copy() if upright is image else upright)
    options: dict[str, Any] = {}
    if content_type == JPEG:
        if upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        options = {"quality": 90, "optimize": True}
    elif content_type == WEBP:
        options = {"quality": 90}
    if "icc_profile" in upright.info:
        options["icc_profile"] = upright.info["icc_profile"]
    upright.save(output, format=pillow_format, **options)
    return output.getvalue(), upright


def _thumbnail(frame: Image.Image) -> bytes:
    """A JPEG of at most THUMBNAIL_MAX_SIDE on its longer side; transparency
    becomes white."""
    picture = frame.copy()
    picture.thumbnail((THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE))
    if picture.mode in ("RGBA", "LA", "P", "PA"):
        picture = picture.convert("RGBA")
        background = Image.new("RGB", picture.size, (255, 255, 255))
        background.paste(picture, mask=picture.getchannel("A"))
        picture = background
    elif picture.mode != "RGB":
        picture = picture.convert("RGB")
    picture.info.clear()
    output = io.BytesIO()
    picture.save(output, format="JPEG", quality=80, optimize=True)
    return output.getvalue()


def original_name_clean(name: str, content_type: str) -> str:
    """The uploader's file name, reduced to a safe single line, with the
    extension of what the file really is (so a "photo.exe" JPEG downloads as
    "photo.jpg" and a text file never as ".html")."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(char for char in unicodedata.normalize("NFC", base) if unicodedata.category(char)[0] != "C")
    stem = base.rsplit(".", 1)[0] if "." in base.strip(".") else base
    stem = stem.strip(" .")[:ORIGINAL_NAME_MAX_LENGTH] or "file"
    return stem + EXTENSIONS[content_type]


# --- Serving -----------------------------------------------------------------------


def _request_user(request: HttpRequest) -> Any:
    """The browser's session user, or an API client's token user."""
    if request.user.is_authenticated:
        return request.user
    try:
        authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return None
    return authenticated[0] if authenticated else None


def _file_response(request: HttpRequest, attachment_id: int, *, thumbnail: bool) -> HttpResponseBase:
    from chats.services import content

    user = _request_user(request)
    try:
        if user is None:
            raise NotFound()
        attachment = content.attachment_for_download(user=user, attachment_id=attachment_id)
    except NotFound:
        raise Http404() from None
    stored = attachment.thumbnail if thumbnail else attachment.file
    if not stored:
        raise Http404()
    try:
        handle = stored.open("rb")
    except FileNotFoundError:
        raise Http404() from None
    is_image = thumbnail or attachment.content_type in IMAGE_CONTENT_TYPES
    response = FileResponse(
        handle,
        content_type=JPEG if thumbnail else attachment.content_type,
        as_attachment=not is_image,
        filename=attachment.original_name,
    )
    response["X-Content-Type-Options"] = "nosniff"
    # Even if a browser were fooled into rendering a file as a page, it
    # would run in a sandbox with no script and no access to the portal.
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; media-src 'self'; sandbox"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = "private, max-age=3600"
    response["Vary"] = "Cookie, Authorization"
    return response


@require_safe
def attachment_file(request: HttpRequest, attachment_id: int) -> HttpResponseBase:
    """The file of an attachment, for members of its chat (and, before it is
    sent, for its uploader). Anyone else gets the same 404 as for a file
    that does not exist."""
    return _file_response(request, attachment_id, thumbnail=False)


@require_safe
def attachment_thumbnail(request: HttpRequest, attachment_id: int) -> HttpResponseBase:
    """The JPEG thumbnail of an image attachment, on the same terms."""
    return _file_response(request, attachment_id, thumbnail=True)


file_urlpatterns = [
    path("chats/files/<int:attachment_id>/", attachment_file, name="attachment_file"),
    path("chats/files/<int:attachment_id>/thumbnail/", attachment_thumbnail, name="attachment_thumbnail"),
]
