"""Writes and side effects of the accounts app: sign-in by SMS code, API
tokens, sessions, blocking, the profile and its photo, and deletion of an
account on its owner's request."""

import hmac
import json
import logging
import math
import re
import secrets
import unicodedata
from datetime import timedelta
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import phonenumbers
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone, translation
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _

from accounts.authentication import token_key_hash
from accounts.events import session_revoked_event, user_group_name
from accounts.extensions import account_deletion_hooks_run
from accounts.models import ApiToken, LoginCode, PhoneLock, User
from accounts.names import display_name_skeleton, name_clean
from accounts.photos import PHOTO_MAX_BYTES, photo_reencode, photo_size_check
from accounts.sms import SmsDeliveryError, sms_send
from common import realtime
from common.errors import ApplicationError, RateLimited
from common.ratelimit import rate_limit_hit
from common.services import audit_record, model_changes

logger = logging.getLogger(__name__)

LOGIN_CODE_LENGTH = 6
DAY = timedelta(hours=24)
_PHONE_PUNCTUATION = re.compile(r"[\s\-‐‑‒–—―−().]+")
_CODE_SEPARATORS = re.compile(r"[\s\-‐‑‒–—―−]+")
_ASCII_DIGITS = re.compile(r"[0-9]+")


# --- Phone numbers and codes ---------------------------------------------------------------------------------


def phone_normalise(raw: str) -> str:
    """One E.164 number from what people type: "8 (900) 123-45-67",
    "+7 900 123 45 67", full-width digits, stray spaces. Russian numbers
    by default. Raises ApplicationError code "invalid_phone" (field "phone")."""
    invalid = ApplicationError(
        _("Enter a valid phone number, for example +7 900 123-45-67."),
        code="invalid_phone",
        extra={"field": "phone"},
    )
    if not isinstance(raw, str) or len(raw) > 64:
        raise invalid
    value = _PHONE_PUNCTUATION.sub("", unicodedata.normalize("NFKC", raw))
    value = "".join(character for character in value if unicodedata.category(character) != "Cf")
    has_plus = value.startswith("+")
    digits = value[1:] if has_plus else value
    if not digits or not _ASCII_DIGITS.fullmatch(digits):
        raise invalid
    if has_plus:
        candidate = "+" + digits
    elif len(digits) == 11 and digits[0] in "78":
        candidate = "+7" + digits[1:]
    elif len(digits) == 10 and digits[0] == "9":
        candidate = "+7" + digits
    else:
        candidate = digits
    try:
        number = phonenumbers.parse(candidate, "RU")
    except phonenumbers.NumberParseException:
        raise invalid from None
    if not phonenumbers.is_valid_number(number):
        raise invalid
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def login_code_clean(raw: str) -> str:
    """The six ASCII digits of a typed code ("123 456" and full-width digits
    are accepted). Raises ApplicationError code "invalid_code_format" (field
    "code"); a malformed code never counts as an attempt."""
    value = _CODE_SEPARATORS.sub("", unicodedata.normalize("NFKC", raw)) if isinstance(raw, str) else ""
    if len(value) != LOGIN_CODE_LENGTH or not _ASCII_DIGITS.fullmatch(value):
        raise ApplicationError(
            _("Enter the 6-digit code from the SMS."), code="invalid_code_format", extra={"field": "code"}
        )
    return value


def login_code_hash(*, phone: str, code: str) -> str:
    """HMAC-SHA256 of the phone and the code under a key derived from
    SECRET_KEY: a leaked table does not give the codes away."""
    return salted_hmac("parta.accounts.login_code", phone + ":" + code, algorithm="sha256").hexdigest()


def login_code_text(*, code: str) -> str:
    """The SMS text; the code is its only run of digits."""
    return _("Parta sign-in code: %(code)s. Do not share it with anyone.") % {"code": code}


# --- Sign-in -------------------------------------------------------------------------------------------------


def login_code_request(*, phone: str, ip: str | None) -> int:
    """Send a new sign-in code by SMS to `phone`; return the seconds before
    another may be requested.

    Raises ApplicationError "invalid_phone"; RateLimited "rate_limited" (too
    many requests from `ip`), "resend_too_soon" (a code was sent less than
    LOGIN_CODE_RESEND_SECONDS ago) or "daily_limit" (LOGIN_CODE_DAILY_LIMIT
    codes in 24 h), each with retry_after; ApplicationError 503
    "sms_unavailable" when the SMS backend failed (the code is then deleted).
    Side effects: earlier unused codes of the number are superseded; one SMS.
    """
    phone = phone_normalise(phone)
    if ip:
        rate_limit_hit(scope="login_code_ip", key=ip, rate=settings.LOGIN_IP_CODE_RATE)
    code = "".join(secrets.choice("0123456789") for _position in range(LOGIN_CODE_LENGTH))
    with transaction.atomic():
        # One row per number, locked: parallel requests for one number queue
        # here, so the resend and daily checks below see each other's codes.
        # (SQLite ignores the row lock; its IMMEDIATE transactions already
        # serialise writers.)
        PhoneLock.objects.select_for_update().get_or_create(phone=phone)
        now = timezone.now()
        recent = list(
            LoginCode.objects.filter(phone=phone, created_at__gt=now - DAY)
            .order_by("created_at")
            .values_list("created_at", flat=True)
        )
        if recent:
            resend_at = recent[-1] + timedelta(seconds=settings.LOGIN_CODE_RESEND_SECONDS)
            if resend_at > now:
                wait = math.ceil((resend_at - now).total_seconds())
                raise RateLimited(
                    _("A new code can be requested in %(seconds)s s.") % {"seconds": wait},
                    retry_after=wait,
                    code="resend_too_soon",
                )
        if len(recent) >= settings.LOGIN_CODE_DAILY_LIMIT:
            oldest_counted = recent[-settings.LOGIN_CODE_DAILY_LIMIT]
            wait = math.ceil((oldest_counted + DAY - now).total_seconds())
            raise RateLimited(
                _("Too many codes were requested for this number today. Try again in %(minutes)s min.")
                % {"minutes": math.ceil(wait / 60)},
                retry_after=wait,
                code="daily_limit",
            )
        LoginCode.objects.filter(phone=phone, used_at__isnull=True, is_superseded=False).update(is_superseded=True)
        login_code = LoginCode.objects.create(
            phone=phone,
            code_hash=login_code_hash(phone=phone, code=code),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.LOGIN_CODE_TTL_SECONDS),
            ip_address=ip,
        )
    # Sent after the commit, in this request and not through on_commit or a
    # task, because the client must learn whether the SMS went out.
    language = User.objects.filter(phone=phone).values_list("language", flat=True).first()
    try:
        with translation.override(language or translation.get_language()):
            text = login_code_text(code=code)
        sms_send(to=phone, text=text)
    except SmsDeliveryError:
        LoginCode.objects.filter(pk=login_code.pk).delete()
        raise ApplicationError(
            _("The SMS could not be sent. Please try again in a few minutes."),
            code="sms_unavailable",
            status_code=503,
        ) from None
    return int(settings.LOGIN_CODE_RESEND_SECONDS)


def login_code_verify(*, phone: str, code: str, ip: str | None) -> User:
    """Check `code` against the newest code sent to `phone` and return the
    account of that number, creating it on the first sign-in.

    Raises ApplicationError "invalid_phone" / "invalid_code_format" (field
    errors, no attempt counted); RateLimited "rate_limited" per `ip`;
    ApplicationError 400 "code_invalid" (no code, used or superseded),
    "code_expired", "code_wrong" (with attempts_left), "code_burned" (the
    code had LOGIN_CODE_MAX_ATTEMPTS evaluations: request a new one; 400
    and not 429 because waiting does not help, a new code does); 403
    "account_blocked". Each evaluation is counted before the comparison
    with one conditional UPDATE, so parallel guesses evaluate at most
    LOGIN_CODE_MAX_ATTEMPTS; the matching attempt is given back.
    Side effects: the code is used once; a User may be created (audited).
    """
    phone = phone_normalise(phone)
    code = login_code_clean(code)
    if ip:
        rate_limit_hit(scope="login_token_ip", key=ip, rate=settings.LOGIN_IP_TOKEN_RATE)
    login_code = LoginCode.objects.filter(phone=phone, is_superseded=False).order_by("-created_at", "-id").first()
    if login_code is None or login_code.used_at is not None:
        raise _code_invalid()
    now = timezone.now()
    if login_code.expires_at <= now:
        raise ApplicationError(_("This code has expired. Request a new code."), code="code_expired")
    max_attempts = settings.LOGIN_CODE_MAX_ATTEMPTS
    is_counted = LoginCode.objects.filter(pk=login_code.pk, attempts__lt=max_attempts, used_at__isnull=True).update(
        attempts=F("attempts") + 1
    )
    if not is_counted:
        if LoginCode.objects.filter(pk=login_code.pk, used_at__isnull=False).exists():
            raise _code_invalid()
        raise ApplicationError(_("Too many wrong attempts. Request a new code."), code="code_burned")
    if not hmac.compare_digest(login_code.code_hash, login_code_hash(phone=phone, code=code)):
        attempts = LoginCode.objects.filter(pk=login_code.pk).values_list("attempts", flat=True).first()
        attempts_left = max(0, max_attempts - (attempts if attempts is not None else max_attempts))
        raise ApplicationError(
            _("Wrong code. Attempts left: %(attempts)s.") % {"attempts": attempts_left},
            code="code_wrong",
            extra={"attempts_left": attempts_left},
        )
    # The right code: counted attempts are wrong ones only, so this one is
    # given back; the condition makes the code work once under races.
    is_used_now = LoginCode.objects.filter(pk=login_code.pk, used_at__isnull=True).update(
        used_at=now, attempts=F("attempts") - 1
    )
    if not is_used_now:
        # A parallel request with the same right code won: not a wrong try.
        LoginCode.objects.filter(pk=login_code.pk).update(attempts=F("attempts") - 1)
        raise _code_invalid()
    with transaction.atomic():
        user, is_created = User.objects.get_or_create(phone=phone, defaults={"password": make_password(None)})
        if is_created:
            audit_record(actor=user, action="user_register", target=user)
    if not user.is_active:
        raise ApplicationError(
            _("This account is blocked. Contact your school's administrator."), code="account_blocked", status_code=403
        )
    User.objects.filter(pk=user.pk).update(last_login=now)
    user.last_login = now
    return user


def _code_invalid() -> ApplicationError:
    return ApplicationError(_("This code is not valid. Request a new code."), code="code_invalid")


def login_codes_purge() -> int:
    """Delete sign-in codes older than a day (the daily limit looks back 24
    h) and the number locks left without codes; return codes deleted."""
    cutoff = timezone.now() - DAY
    deleted, _details = LoginCode.objects.filter(created_at__lt=cutoff).delete()
    PhoneLock.objects.exclude(phone__in=LoginCode.objects.values("phone")).delete()
    return deleted


# --- Tokens and sessions -------------------------------------------------------------------------------------


def api_token_create(*, user: User, name: str = "") -> str:
    """A new API token for one device of `user`; returns the key, which is
    shown once (only its SHA-256 is stored)."""
    key = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, key_hash=token_key_hash(key), name=name_clean(name)[:120])
    return key


def api_token_revoke(*, token: ApiToken) -> None:
    """Sign one device out: delete its token and, after commit, close the
    WebSockets opened with it."""
    ApiToken.objects.filter(pk=token.pk).delete()
    event = {"type": "token.revoked", "key_hash": token.key_hash}
    user_id = token.user_id
    transaction.on_commit(lambda: _user_group_notify(user_id, event))


def session_logout_everywhere(*, user: User) -> None:
    """End every browser session and API token of `user` and close their
    open WebSockets.

    Sessions end through the generation in the session hash
    (User.get_session_auth_hash), so the session rows need not be found:
    with database sessions that would mean decoding every row. After the
    commit, the user's real-time topic gets "session.revoked"; a Redis
    failure is logged and swallowed, the logout itself stands (sockets
    check their credentials again when the connection to Redis is back)."""
    with transaction.atomic():
        User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
        ApiToken.objects.filter(user_id=user.pk).delete()
        user_id = user.pk
        transaction.on_commit(lambda: _session_revoked_notify(user_id))
    user.refresh_from_db(fields=["session_generation"])


def _session_revoked_notify(user_id: int) -> None:
    _user_group_notify(user_id, session_revoked_event())


def _user_group_notify(user_id: int, event: dict[str, Any]) -> None:
    try:
        realtime.publish(user_group_name(user_id), json.dumps(event, separators=(",", ":")))
    except Exception as error:
        # Logged without the user: the id and phone are personal data.
        logger.warning("Could not tell open WebSockets that sessions ended: %s", type(error).__name__)


def user_block(*, actor: User | None, user: User, reason: str) -> User:
    """Block `user`: no sign-in, every session and token ended, WebSockets
    closed. Raises ApplicationError "cannot_block_self". Audited with the
    reason."""
    if actor is not None and actor.pk == user.pk:
        raise ApplicationError(_("You cannot block your own account."), code="cannot_block_self")
    reason = name_clean(reason)[:500]
    with transaction.atomic():
        was_active = User.objects.filter(pk=user.pk).values_list("is_active", flat=True).get()
        now = timezone.now()
        User.objects.filter(pk=user.pk).update(is_active=False, blocked_at=now)
        user.is_active = False
        user.blocked_at = now
        session_logout_everywhere(user=user)
        audit_record(
            actor=actor, action="user_block", target=user, changes={"is_active": [was_active, False], "reason": reason}
        )
    return user


def user_unblock(*, actor: User | None, user: User) -> User:
    """Let a blocked `user` sign in again (their old sessions stay ended).
    Raises ApplicationError "account_deleted" for a deleted account, which
    stays inactive for good. Audited."""
    if User.objects.filter(pk=user.pk, deleted_at__isnull=False).exists():
        raise ApplicationError(_("A deleted account cannot be restored."), code="account_deleted")
    with transaction.atomic():
        was_active = User.objects.filter(pk=user.pk).values_list("is_active", flat=True).get()
        User.objects.filter(pk=user.pk).update(is_active=True, blocked_at=None)
        user.is_active = True
        user.blocked_at = None
        audit_record(actor=actor, action="user_unblock", target=user, changes={"is_active": [was_active, True]})
    return user


# --- Profile -------------------------------------------------------------------------------------------------

PROFILE_FIELDS = ["first_name", "last_name", "middle_name", "language", "time_zone"]
NAME_MAX_LENGTH = 80  # the columns of User


@cache
def time_zones_available() -> frozenset[str]:
    return frozenset(available_timezones())


def profile_field_clean(*, field: str, value: Any) -> str:
    """One profile field as stored. Raises ApplicationError with the field
    name in extra["field"]: "name_too_long", "invalid_language",
    "invalid_time_zone"."""
    value = value if isinstance(value, str) else ""
    if field in ("first_name", "last_name", "middle_name"):
        cleaned = name_clean(value)
        limit = NAME_MAX_LENGTH
        if len(cleaned) > limit:
            raise ApplicationError(
                _("At most %(limit)s characters.") % {"limit": limit}, code="name_too_long", extra={"field": field}
            )
        return cleaned
    if field == "language":
        if value not in dict(User._meta.get_field("language").choices or []):
            raise ApplicationError(
                _("Choose a language from the list."), code="invalid_language", extra={"field": "language"}
            )
        return value
    if field == "time_zone":
        value = value.strip()
        if value and value not in time_zones_available():
            raise ApplicationError(_("Unknown time zone."), code="invalid_time_zone", extra={"field": "time_zone"})
        return value
    raise ValueError("Not a profile field: " + field)


def profile_update(
    *, user: User, first_name: str, last_name: str, middle_name: str, language: str, time_zone: str
) -> User:
    """Change the name, language and time zone of `user`. Names lose bidi
    controls and zero-width characters; a name that looks like a verified
    educator's gets flagged. Raises ApplicationError field errors (see
    profile_field_clean). Audited when something changed."""
    values = {
        "first_name": first_name,
        "last_name": last_name,
        "middle_name": middle_name,
        "language": language,
        "time_zone": time_zone,
    }
    cleaned = {field: profile_field_clean(field=field, value=value) for field, value in values.items()}
    with transaction.atomic():
        old = {field: getattr(user, field) for field in PROFILE_FIELDS}
        old_skeleton = display_name_skeleton(user.first_name, user.last_name)
        for field, value in cleaned.items():
            setattr(user, field, value)
        changes = model_changes(user, PROFILE_FIELDS, old)
        if not changes:
            return user
        user.save(update_fields=list(changes))
        new_skeleton = display_name_skeleton(user.first_name, user.last_name)
        for skeleton in {old_skeleton, new_skeleton}:
            name_flags_refresh(skeleton=skeleton)
        user.refresh_from_db(fields=["is_name_flagged"])
        audit_record(actor=user, action="profile_update", target=user, changes=changes)
    return user


def name_flags_refresh(*, skeleton: str) -> int:
    """Re-evaluate the look-alike flag of everyone whose display name has
    `skeleton`: flagged when they are not verified and a verified educator
    has that skeleton. Call it after a name or a verification changes
    (organisations: after granting or removing the badge, with the
    educator's user.name_skeleton). Returns the number of accounts changed."""
    if not skeleton:
        # A person without a name imitates no one.
        return User.objects.filter(name_skeleton="", is_name_flagged=True).update(is_name_flagged=False)
    is_taken = User.objects.filter(is_verified_educator=True, name_skeleton=skeleton).exists()
    changed = (
        User.objects.filter(name_skeleton=skeleton, is_verified_educator=False)
        .exclude(is_name_flagged=is_taken)
        .update(is_name_flagged=is_taken)
    )
    changed += User.objects.filter(name_skeleton=skeleton, is_verified_educator=True, is_name_flagged=True).update(
        is_name_flagged=False
    )
    return changed


# --- Photo ---------------------------------------------------------------------------------------------------


def profile_photo_set(*, user: User, uploaded_file: File) -> User:
    """Make `uploaded_file` the profile photo of `user`: re-encoded by
    accounts.photos.photo_reencode (a JPEG of at most 512 × 512 without
    metadata) and stored under a random name.

    Raises ApplicationError "photo_invalid" (not a JPEG, PNG or WebP
    picture) and 413 "photo_too_large" (over 5 MB or 4096 × 4096 pixels);
    nothing changes then. Side effects: the previous photo's file is deleted
    after the commit. Audited."""
    photo_size_check(size=uploaded_file.size or 0)
    uploaded_file.seek(0)
    # Read one byte past the limit: a size that lied is caught too.
    content = photo_reencode(data=uploaded_file.read(PHOTO_MAX_BYTES + 1))
    # The name is random: it tells nothing about the person and cannot be
    # guessed, even where MEDIA_URL is served by mistake.
    previous_name = user.photo.name
    user.photo.save(secrets.token_hex(16) + ".jpg", ContentFile(content), save=False)
    new_name = user.photo.name
    try:
        with transaction.atomic():
            old_name = User.objects.select_for_update().filter(pk=user.pk).values_list("photo", flat=True).get()
            User.objects.filter(pk=user.pk).update(photo=new_name)
            audit_record(actor=user, action="profile_photo_set", target=user)
            _photo_file_delete_on_commit(old_name)
    except BaseException:
        default_storage.delete(new_name)
        user.photo.name = previous_name
        raise
    return user


def profile_photo_clear(*, user: User) -> User:
    """Remove the profile photo of `user` (nothing happens without one).
    Side effects: the file is deleted after the commit. Audited."""
    with transaction.atomic():
        old_name = User.objects.select_for_update().filter(pk=user.pk).values_list("photo", flat=True).get()
        if not old_name:
            user.photo = ""  # type: ignore[assignment]
            return user
        User.objects.filter(pk=user.pk).update(photo="")
        audit_record(actor=user, action="profile_photo_clear", target=user)
        _photo_file_delete_on_commit(old_name)
    user.photo = ""  # type: ignore[assignment]
    return user


def _photo_file_delete_on_commit(name: str | None) -> None:
    """Delete a photo's file once the row no longer points to it: after the
    commit, so that a rollback keeps a file for the row it restores."""
    if not name:
        return

    def delete() -> None:
        try:
            default_storage.delete(name)
        except OSError as error:
            # An orphan file is harmless: its name is random and it is
            # served by nothing.
            logger.warning("Could not delete a replaced profile photo: %s", type(error).__name__)

    transaction.on_commit(delete)


# --- Deletion on request -------------------------------------------------------------------------------------


def account_delete(*, user: User, code: str, ip: str | None = None) -> None:
    """Delete the account of `user` on their own request (152-FZ), confirmed
    with a fresh sign-in code sent to the account's number (the person asks
    for it as for signing in: POST /api/v1/auth/code/).

    The code is checked by login_code_verify, so every sign-in rule holds
    (expiry, single use, attempts counted and the code burned after 5) and
    so do its refusals: ApplicationError "invalid_code_format",
    "code_invalid", "code_expired", "code_wrong", "code_burned", RateLimited
    "rate_limited"; on a refusal nothing about the account changes. Raises
    ApplicationError "account_deleted" for an account already deleted.

    Then, in one transaction: every session and token ends (open WebSockets
    close after the commit); the hooks registered with
    accounts.extensions.account_deletion_hook_register end what links the
    person to other apps (organisations: memberships, so badges go, and
    guardianships); the account is anonymised: names, time zone and photo
    are cleared, the phone number becomes NULL, admin rights go, the
    password becomes unusable, is_active is False and deleted_at is set.

    Why NULL and not a placeholder number: any syntactically valid number
    may be someone's real one, while NULL is never equal to another NULL
    under the unique index, matches no sign-in (which looks a number up),
    and frees the real number to register a NEW account. The row itself
    stays so that what the person wrote for others keeps an author, shown
    as "Deleted user" (User.display_name). Audited as "account.delete"."""
    if user.deleted_at is not None or user.phone is None:
        raise ApplicationError(_("This account has been deleted."), code="account_deleted")
    confirmed = login_code_verify(phone=str(user.phone), code=code, ip=ip)
    if confirmed.pk != user.pk:
        # Cannot happen while numbers are unique; refuse rather than guess.
        raise _code_invalid()
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.deleted_at is not None:
            # A parallel request with the same code cannot get here (the
            # code works once), but an earlier deletion stands as it is.
            return
        old_skeleton = user.name_skeleton
        old_photo = user.photo.name
        session_logout_everywhere(user=user)
        account_deletion_hooks_run(user=user)
        User.objects.filter(pk=user.pk).update(
            phone=None,
            first_name="",
            last_name="",
            middle_name="",
            name_skeleton="",
            time_zone="",
            photo="",
            password=make_password(None),
            is_active=False,
            is_staff=False,
            is_superuser=False,
            is_verified_educator=False,
            is_name_flagged=False,
            deleted_at=timezone.now(),
        )
        user.groups.clear()
        user.user_permissions.clear()
        user.refresh_from_db()
        # Names that imitated this person's, if a verified educator's, are
        # no longer flagged.
        name_flags_refresh(skeleton=old_skeleton)
        # Recorded after the anonymisation: the entry does not keep the name.
        audit_record(actor=user, action="account.delete", target=user, changes={"is_active": [True, False]})
        _photo_file_delete_on_commit(old_photo)
