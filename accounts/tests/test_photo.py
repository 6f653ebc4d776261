import io
import struct
import zlib

import pytest
from django.test import Client
from PIL import ExifTags, Image
from rest_framework.test import APIClient

from accounts.models import User
from accounts.photos import PHOTO_MAX_BYTES
from accounts.services import profile_photo_clear, profile_photo_set
from accounts.tests.factories import image_bytes, make_token, make_user, uploaded
from common.errors import ApplicationError
from common.models import AuditEvent

pytestmark = pytest.mark.django_db

GPS_POSITION = {
    ExifTags.GPS.GPSLatitudeRef: "N",
    ExifTags.GPS.GPSLatitude: (55.0, 45.0, 21.0),
    ExifTags.GPS.GPSLongitudeRef: "E",
    ExifTags.GPS.GPSLongitude: (37.0, 37.0, 4.0),
}


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def stored_files(media_root) -> list[str]:
    if not media_root.exists():
        return []
    return sorted(str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file())


def jpeg_with_gps_exif(*, size=(800, 600), orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyPhone"
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.GPSInfo] = GPS_POSITION
    data = image_bytes(size=size, exif=exif)
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo) == GPS_POSITION
    return data


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header that claims a huge picture, with almost no
    pixel data: what a decompression bomb looks like before decoding."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + png_chunk(b"IEND", b"")
    )


# --- The service -----------------------------------------------------------------


def test_a_photo_is_stored_as_a_small_jpeg_without_exif_or_gps(media_root):
    user = make_user()

    profile_photo_set(user=user, uploaded_file=uploaded(jpeg_with_gps_exif(size=(1600, 1200), orientation=6)))

    user.refresh_from_db()
    with user.photo.open("rb") as handle:
        data = handle.read()
    stored = Image.open(io.BytesIO(data))
    assert stored.format == "JPEG"
    # Orientation 6 means "turn right": the upright picture is portrait.
    assert stored.size == (384, 512)
    assert dict(stored.getexif()) == {}
    assert "exif" not in stored.info
    assert b"SpyPhone" not in data
    assert b"Exif" not in data
    assert user.photo.name.startswith("photos/")
    assert user.photo.name.endswith(".jpg")
    assert len(user.photo.name.rsplit("/", 1)[1]) == len("0123456789abcdef0123456789abcdef.jpg")
    assert stored_files(media_root) == [user.photo.name]
    assert list(AuditEvent.objects.values_list("action", "object_id")) == [("profile_photo_set", str(user.pk))]


def test_a_transparent_png_becomes_a_jpeg_on_white():
    user = make_user()
    transparent = Image.new("RGBA", (100, 50), (0, 0, 0, 0))
    buffer = io.BytesIO()
    transparent.save(buffer, format="PNG")

    profile_photo_set(user=user, uploaded_file=uploaded(buffer.getvalue(), name="a.png", content_type="image/png"))

    stored = Image.open(user.photo.open("rb"))
    assert (stored.format, stored.size, stored.mode) == ("JPEG", (100, 50), "RGB")
    assert stored.getpixel((50, 25)) == (255, 255, 255)


def test_webp_is_accepted():
    user = make_user()

    profile_photo_set(
        user=user,
        uploaded_file=uploaded(
            image_bytes(image_format="WEBP", size=(64, 64)), name="a.webp", content_type="image/webp"
        ),
    )

    assert Image.open(user.photo.open("rb")).size == (64, 64)


def test_a_new_photo_replaces_the_old_file(media_root, django_capture_on_commit_callbacks):
    user = make_user()
    with django_capture_on_commit_callbacks(execute=True):
        profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    first = user.photo.name

    with django_capture_on_commit_callbacks(execute=True):
        profile_photo_set(user=user, uploaded_file=uploaded(image_bytes(size=(300, 300))))

    user.refresh_from_db()
    assert user.photo.name != first
    assert stored_files(media_root) == [user.photo.name]


REFUSED_UPLOADS = [
    pytest.param(
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        "photo.svg",
        "image/svg+xml",
        id="svg",
    ),
    pytest.param(b"<!doctype html><html><script>alert(1)</script></html>", "photo.jpg", "image/jpeg", id="html"),
    pytest.param("Просто текст, а не фото\n".encode(), "photo.png", "image/png", id="renamed-text"),
    pytest.param(image_bytes(image_format="GIF", size=(10, 10)), "photo.gif", "image/gif", id="gif"),
    pytest.param(image_bytes(image_format="BMP", size=(10, 10)), "photo.jpg", "image/jpeg", id="bmp"),
    pytest.param(image_bytes()[:300], "photo.jpg", "image/jpeg", id="truncated-jpeg"),
    pytest.param(b"", "photo.jpg", "image/jpeg", id="empty"),
]


@pytest.mark.parametrize(("data", "name", "content_type"), REFUSED_UPLOADS)
def test_what_is_not_a_jpeg_png_or_webp_is_refused_and_nothing_changes(media_root, data, name, content_type):
    user = make_user()

    with pytest.raises(ApplicationError) as refusal:
        profile_photo_set(user=user, uploaded_file=uploaded(data, name=name, content_type=content_type))

    assert (refusal.value.code, refusal.value.status_code) == ("photo_invalid", 400)
    assert refusal.value.extra == {"field": "photo"}
    assert User.objects.get(pk=user.pk).photo.name == ""
    assert stored_files(media_root) == []
    assert AuditEvent.objects.count() == 0


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(image_bytes(image_format="PNG", size=(6000, 6000), mode="L"), id="6000x6000"),
        pytest.param(image_bytes(image_format="PNG", size=(4097, 10), mode="L"), id="4097-wide"),
        pytest.param(png_claiming(50_000, 50_000), id="decompression-bomb"),
        pytest.param(png_claiming(10_000, 10_000), id="above-pillows-warning"),
    ],
)
def test_too_many_pixels_are_refused_before_decoding(media_root, data):
    user = make_user()

    with pytest.raises(ApplicationError) as refusal:
        profile_photo_set(user=user, uploaded_file=uploaded(data, name="big.png", content_type="image/png"))

    assert (refusal.value.code, refusal.value.status_code) == ("photo_too_large", 413)
    assert User.objects.get(pk=user.pk).photo.name == ""
    assert stored_files(media_root) == []


def test_a_file_over_5_mb_is_refused(media_root):
    user = make_user()
    data = image_bytes() + b"\0" * PHOTO_MAX_BYTES

    with pytest.raises(ApplicationError) as refusal:
        profile_photo_set(user=user, uploaded_file=uploaded(data))

    assert (refusal.value.code, refusal.value.status_code) == ("photo_too_large", 413)
    assert stored_files(media_root) == []


def test_4096_square_is_accepted():
    user = make_user()

    profile_photo_set(
        user=user,
        uploaded_file=uploaded(
            image_bytes(image_format="PNG", size=(4096, 4096), mode="L"), name="a.png", content_type="image/png"
        ),
    )

    assert Image.open(user.photo.open("rb")).size == (512, 512)


def test_clearing_the_photo_deletes_its_file(media_root, django_capture_on_commit_callbacks):
    user = make_user()
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))

    with django_capture_on_commit_callbacks(execute=True):
        profile_photo_clear(user=user)
        profile_photo_clear(user=user)

    assert User.objects.get(pk=user.pk).photo.name == ""
    assert stored_files(media_root) == []
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "profile_photo_set",
        "profile_photo_clear",
    ]


# --- The API -----------------------------------------------------------------------


def test_put_photo_answers_the_user_with_the_photo_url():
    user, key = make_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    response = client.put("/api/v1/me/photo/", {"photo": uploaded(jpeg_with_gps_exif())}, format="multipart")

    assert response.status_code == 200, response.content
    user.refresh_from_db()
    photo_url = response.json()["photo_url"]
    assert photo_url.startswith(f"http://testserver/users/{user.pk}/photo/?v=")
    assert "/media/" not in photo_url
    assert client.get("/api/v1/me/").json()["photo_url"] == photo_url
    own = client.get(photo_url)
    assert own.status_code == 200
    assert own["Content-Type"] == "image/jpeg"
    assert own["Cache-Control"] == "private, max-age=3600"
    assert b"SpyPhone" not in b"".join(own.streaming_content)


def test_put_photo_refuses_an_svg_and_nothing_changes(media_root):
    user, key = make_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

    response = client.put(
        "/api/v1/me/photo/", {"photo": uploaded(svg, name="a.jpg", content_type="image/jpeg")}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json() == {
        "detail": "Загрузите фотографию в формате JPEG, PNG или WebP.",
        "code": "photo_invalid",
        "field": "photo",
    }
    assert User.objects.get(pk=user.pk).photo.name == ""
    assert stored_files(media_root) == []


def test_put_photo_refuses_6000_by_6000_with_413():
    user, key = make_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)
    big = image_bytes(image_format="PNG", size=(6000, 6000), mode="L")

    response = client.put(
        "/api/v1/me/photo/", {"photo": uploaded(big, name="a.png", content_type="image/png")}, format="multipart"
    )

    assert response.status_code == 413
    assert response.json()["code"] == "photo_too_large"
    assert User.objects.get(pk=user.pk).photo.name == ""


def test_put_photo_without_a_file_is_a_field_error():
    _user, key = make_token()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    missing = client.put("/api/v1/me/photo/", {}, format="multipart")
    as_json = client.put("/api/v1/me/photo/", {"photo": "x"}, format="json")

    assert missing.status_code == 400
    assert sorted(missing.json()) == ["photo"]
    assert as_json.status_code == 415


def test_delete_photo_is_204_and_idempotent(media_root, django_capture_on_commit_callbacks):
    user, key = make_token()
    profile_photo_set(user=user, uploaded_file=uploaded(image_bytes()))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + key)

    with django_capture_on_commit_callbacks(execute=True):
        first = client.delete("/api/v1/me/photo/")
    second = client.delete("/api/v1/me/photo/")

    assert (first.status_code, second.status_code) == (204, 204)
    assert client.get("/api/v1/me/").json()["photo_url"] is None
    assert stored_files(media_root) == []


def test_photo_api_needs_authentication():
    client = APIClient()

    assert client.put("/api/v1/me/photo/", {"photo": uploaded(image_bytes())}, format="multipart").status_code == 401
    assert client.delete("/api/v1/me/photo/").status_code == 401


# --- The profile page --------------------------------------------------------------


def test_the_profile_page_uploads_and_removes_the_photo_without_javascript(media_root):
    user = make_user()
    browser = Client()
    browser.force_login(user)
    page = browser.get("/profile/").content.decode()
    assert 'enctype="multipart/form-data"' in page
    assert 'action="/profile/photo/"' in page
    assert 'action="/profile/photo/remove/"' not in page

    uploaded_page = browser.post("/profile/photo/", {"photo": uploaded(image_bytes())})

    assert (uploaded_page.status_code, uploaded_page["Location"]) == (302, "/profile/")
    user.refresh_from_db()
    page = browser.get("/profile/").content.decode()
    assert f'src="/users/{user.pk}/photo/?v=' in page
    assert 'action="/profile/photo/remove/"' in page

    removed = browser.post("/profile/photo/remove/")

    assert (removed.status_code, removed["Location"]) == (302, "/profile/")
    assert User.objects.get(pk=user.pk).photo.name == ""


def test_the_profile_page_shows_why_a_photo_was_refused(media_root):
    user = make_user()
    browser = Client()
    browser.force_login(user)

    response = browser.post("/profile/photo/", {"photo": uploaded(b"not a picture", name="a.jpg")})

    assert response.status_code == 400
    assert "Загрузите фотографию в формате JPEG, PNG или WebP." in response.content.decode()
    assert User.objects.get(pk=user.pk).photo.name == ""
    assert stored_files(media_root) == []
