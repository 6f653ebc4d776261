"""Reads of the accounts app."""

import hashlib
import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from accounts.extensions import personal_data_sections
from accounts.models import ApiToken, LoginCode, User
from accounts.names import display_name_skeleton, name_skeleton

__all__ = [
    "login_code_resend_after",
    "name_skeleton",
    "personal_data_export",
    "user_name_is_lookalike",
    "user_photo_path",
]

PERSONAL_DATA_EXPORT_FORMAT = "parta.personal-data-export"
PERSONAL_DATA_EXPORT_VERSION = 1


def user_name_is_lookalike(*, user: User) -> bool:
    """True when `user` is not a verified educator and their display name
    looks like (has the skeleton of) a verified educator's name."""
    if user.is_verified_educator:
        return False
    skeleton = display_name_skeleton(user.first_name, user.last_name)
    if not skeleton:
        return False
    return User.objects.filter(is_verified_educator=True, name_skeleton=skeleton).exclude(pk=user.pk).exists()


def login_code_resend_after(*, phone: str) -> int:
    """Seconds until a new sign-in code may be requested for the E.164
    `phone` (0: now). Only the resend pause; the daily limit shows when
    the request is made."""
    last_created_at = (
        LoginCode.objects.filter(phone=phone).order_by("-created_at").values_list("created_at", flat=True).first()
    )
    if last_created_at is None:
        return 0
    available_at = last_created_at + timedelta(seconds=settings.LOGIN_CODE_RESEND_SECONDS)
    return max(0, math.ceil((available_at - timezone.now()).total_seconds()))


def user_photo_path(*, user: User) -> str | None:
    """Where the profile photo of `user` is served, or None without one.

    Never a MEDIA_URL address: the page (organisations.views.user_photo_view,
    by its URL name, as accounts does not import organisations) hands the
    photo only to people who may see the profile. The query string changes
    with the photo, so browsers may cache each version."""
    if not user.photo:
        return None
    version = hashlib.sha256(user.photo.name.encode()).hexdigest()[:12]
    return reverse("organisations:user_photo", kwargs={"user_id": user.pk}) + "?v=" + version


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def personal_data_export(*, user: User) -> dict[str, Any]:
    """Everything Parta keeps about `user`, for the person themselves
    (152-FZ, the data subject's right of access), as plain JSON values.

    The account ("account"), its API tokens by device and dates, never a
    key or its hash ("api_tokens"), and the sections of every provider
    registered with accounts.extensions.personal_data_provider_register
    (organisations: memberships, guardianships, study groups, safe mode
    changes; chats: messages written). Raises ValueError when a provider
    returns a section that another already gave."""
    account = {
        "id": user.pk,
        "phone": str(user.phone) if user.phone else None,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "middle_name": user.middle_name,
        "display_name": user.display_name,
        "language": user.language,
        "time_zone": user.time_zone,
        "photo_url": user_photo_path(user=user),
        "date_joined": _iso(user.date_joined),
        "last_login": _iso(user.last_login),
        "is_active": user.is_active,
        "blocked_at": _iso(user.blocked_at),
        "is_staff": user.is_staff,
        "is_verified_educator": user.is_verified_educator,
        "is_name_flagged": user.is_name_flagged,
        "is_safe_mode": user.is_safe_mode,
        "is_hidden_from_search": user.is_hidden_from_search,
    }
    api_tokens = [
        {"device": token.name, "created_at": _iso(token.created_at), "last_used_at": _iso(token.last_used_at)}
        for token in ApiToken.objects.filter(user=user).order_by("created_at", "id")
    ]
    export: dict[str, Any] = {
        "format": PERSONAL_DATA_EXPORT_FORMAT,
        "version": PERSONAL_DATA_EXPORT_VERSION,
        "exported_at": _iso(timezone.now()),
        "account": account,
        "api_tokens": api_tokens,
    }
    for section, value in personal_data_sections(user=user).items():
        if section in export:
            raise ValueError("Two personal data providers give the section " + section)
        export[section] = value
    return export
