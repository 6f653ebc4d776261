"""Plain factory functions for the accounts tests."""

import io
import itertools
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import LoginCode, User
from accounts.services import api_token_create, login_code_hash

_phone_numbers = itertools.count(1)


def next_phone() -> str:
    """A valid Russian mobile number not used before in this run."""
    return "+7900" + str(1000000 + next(_phone_numbers))


def make_user(*, phone: str | None = None, **fields: Any) -> User:
    return User.objects.create_user(phone or next_phone(), **fields)


def make_token(*, user: User | None = None) -> tuple[User, str]:
    user = user or make_user()
    return user, api_token_create(user=user, name="test")


def make_login_code(
    *,
    phone: str,
    code: str = "123456",
    age: timedelta = timedelta(0),
    ttl: timedelta = timedelta(minutes=5),
    **fields: Any,
) -> LoginCode:
    created_at = timezone.now() - age
    return LoginCode.objects.create(
        phone=phone,
        code_hash=login_code_hash(phone=phone, code=code),
        created_at=created_at,
        expires_at=created_at + ttl,
        **fields,
    )


def sms_messages(outbox: Path) -> list[dict[str, str]]:
    if not outbox.exists():
        return []
    return [json.loads(line) for line in outbox.read_text(encoding="utf-8").splitlines() if line.strip()]


def code_in(text: str) -> str:
    """The code of a login SMS: its only run of digits, six of them."""
    runs = re.findall(r"\d+", text)
    assert len(runs) == 1 and len(runs[0]) == 6, text
    return runs[0]


def image_bytes(
    *, image_format: str = "JPEG", size: tuple[int, int] = (800, 600), mode: str = "RGB", **save_options: Any
) -> bytes:
    """A picture made by Pillow in memory."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, "red" if mode != "L" else 128).save(buffer, format=image_format, **save_options)
    return buffer.getvalue()


def uploaded(data: bytes, *, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)
