"""Reads of the accounts app."""

import math
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from accounts.models import LoginCode, User
from accounts.names import display_name_skeleton, name_skeleton

__all__ = ["login_code_resend_after", "name_skeleton", "user_name_is_lookalike"]


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
