"""Merging two accounts of one person (SPEC §3 "one account").

The person, signed in to the account they keep, names the number of their
other account; a sign-in code goes to each number (the sign-in machinery of
accounts.services, unchanged: hashed codes, expiry, single use, attempts
counted and burned after 5). Once both codes are confirmed, everything that
references the absorbed account moves to the kept one, in one transaction:

1. movers registered by the apps (organisations, chats, lessons) in their
   AppConfig.ready() resolve what cannot simply be re-pointed: duplicates
   under a unique constraint (both accounts in one chat: one membership with
   the better role and the furthest read position);
2. a generic pass re-points every remaining foreign key to User of every
   installed model, so that a model added later moves without anyone
   remembering to write a mover; a unique constraint that still collides
   rolls the whole merge back (ApplicationError "merge_conflict") rather
   than leave a row behind;
3. finishers recompute what derives from the moved rows (badges, the chats
   that follow the directory).

The absorbed account is then closed like a deleted one: its number is freed
(NULL), it cannot sign in, its row stays because the audit log refers to it.
Audit entries and the admin's own log keep naming the account that acted at
the time: history is not rewritten.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import LoginCode, User
from accounts.services import (
    login_code_clean,
    login_code_request,
    login_code_verify,
    name_flags_refresh,
    phone_normalise,
    session_logout_everywhere,
)
from common.errors import ApplicationError
from common.ratelimit import rate_limit_hit
from common.services import audit_record

logger = logging.getLogger(__name__)

# How long a confirmed number stays confirmed while the other code is typed.
MERGE_CONFIRMATION_SECONDS = 600
MERGE_REQUEST_RATE = "10/h"
# Foreign keys that record who did something at the time: never re-pointed.
HISTORY_FIELDS = frozenset({("common.auditevent", "actor"), ("admin.logentry", "user")})

Mover = Callable[..., dict[str, int] | None]
Finisher = Callable[..., None]
Check = Callable[..., None]
_movers: list[Mover] = []
_finishers: list[Finisher] = []
_checks: list[Check] = []


def merge_check_register(check: Check) -> None:
    """`check(*, kept, absorbed)` raises ApplicationError when an app cannot
    let these two accounts merge (a bot's account, say); it runs before
    anything moves, inside the merge's transaction."""
    if check not in _checks:
        _checks.append(check)


def merge_mover_register(mover: Mover) -> None:
    """`mover(*, kept, absorbed)` runs inside the merge's transaction before
    the generic pass and resolves the app's duplicates (rows of both accounts
    under one unique constraint), usually by folding the absorbed row into
    the kept one and deleting it. It returns {what: count} for the audit
    entry, or None. An exception rolls the merge back."""
    if mover not in _movers:
        _movers.append(mover)


def merge_finisher_register(finisher: Finisher) -> None:
    """`finisher(*, kept, absorbed)` runs after every row has moved, in the
    same transaction: recompute what derives from them."""
    if finisher not in _finishers:
        _finishers.append(finisher)


def user_foreign_keys() -> list[tuple[type[models.Model], models.Field]]:
    """Every concrete foreign key (and one-to-one) to User of every installed
    model, the auto-created many-to-many tables included, proxies excluded."""
    found: list[tuple[type[models.Model], models.Field]] = []
    for model in apps.get_models(include_auto_created=True):
        if model._meta.proxy:
            continue
        for field in model._meta.concrete_fields:
            if field.is_relation and field.related_model is User:
                found.append((model, field))
    return found


# --- Codes ---------------------------------------------------------------------------------------------------


def _pending_key(user_id: int) -> str:
    return "accounts:merge:" + str(user_id)


def account_merge_codes_request(*, user: User, other_phone: str, ip: str | None) -> str:
    """Send a sign-in code to the number of `user` and to `other_phone`, the
    number of the person's other account; return `other_phone` normalised.

    Raises ApplicationError "invalid_phone" and "merge_same_account" (field
    "other_phone"); RateLimited "rate_limited" (MERGE_REQUEST_RATE per
    account) and the refusals of login_code_request except
    "resend_too_soon" (a code sent moments ago is still good). Whether
    `other_phone` has an account is not told here: a number without one
    gets no SMS and its code can never be confirmed."""
    other = phone_normalise(other_phone)
    if other == str(user.phone):
        raise ApplicationError(
            _("Enter the number of your other account, not this one."),
            code="merge_same_account",
            extra={"field": "other_phone"},
        )
    rate_limit_hit(scope="account_merge", key=str(user.pk), rate=MERGE_REQUEST_RATE)
    numbers = [str(user.phone)]
    if User.objects.filter(phone=other, deleted_at__isnull=True).exists():
        numbers.append(other)
    for number in numbers:
        try:
            login_code_request(phone=number, ip=ip)
        except ApplicationError as error:
            # Too soon for another SMS: fine while the code sent moments ago
            # can still be typed, not when it was just used to sign in.
            if error.code != "resend_too_soon" or not _code_pending(number):
                raise
    cache.set(_pending_key(user.pk), {"phone": other, "confirmed": []}, MERGE_CONFIRMATION_SECONDS)
    return other


def _code_pending(phone: str) -> bool:
    """Whether the newest sign-in code of `phone` is unused and unexpired."""
    return LoginCode.objects.filter(
        phone=phone, is_superseded=False, used_at__isnull=True, expires_at__gt=timezone.now()
    ).exists()


def account_merge_pending(*, user: User) -> dict[str, Any] | None:
    """The merge `user` asked for and has not finished: {"phone": the other
    number, "confirmed": the numbers already confirmed}, or None."""
    pending = cache.get(_pending_key(user.pk))
    return pending if isinstance(pending, dict) else None


def account_merge_confirm(*, user: User, code: str, other_code: str, ip: str | None) -> User:
    """Check the two codes of the merge `user` asked for and, when both
    numbers are confirmed, merge the other account into `user`.

    A number confirmed once stays confirmed for MERGE_CONFIRMATION_SECONDS,
    so a mistyped second code costs only that code. Raises ApplicationError
    "merge_not_requested" (no codes were asked for, or too long ago), the
    sign-in refusals of login_code_verify with field "code" or "other_code"
    ("invalid_code_format", "code_invalid", "code_expired", "code_wrong",
    "code_burned"), "merge_account_unavailable" (the other number has no
    usable account) and the refusals of account_merge; on any refusal
    nothing moves."""
    pending = account_merge_pending(user=user)
    if pending is None:
        raise ApplicationError(
            _("Ask for the codes first: enter the number of your other account."), code="merge_not_requested"
        )
    other_phone = pending["phone"]
    confirmed: list[str] = list(pending.get("confirmed", []))
    own_phone = str(user.phone)
    absorbed = User.objects.filter(phone=other_phone, deleted_at__isnull=True).first()
    for phone, typed, field in ((own_phone, code, "code"), (other_phone, other_code, "other_code")):
        if phone in confirmed:
            continue
        try:
            cleaned = login_code_clean(typed)
            if phone == other_phone and (absorbed is None or not absorbed.is_active):
                # Verifying would create an account for a number without
                # one (or answer "blocked" after using the code): refuse
                # alike for both, before any code is looked at.
                raise ApplicationError(_("This code is not valid. Request a new code."), code="code_invalid")
            login_code_verify(phone=phone, code=cleaned, ip=ip)
        except ApplicationError as error:
            error.extra = {**error.extra, "field": field}
            raise
        confirmed.append(phone)
        cache.set(_pending_key(user.pk), {"phone": other_phone, "confirmed": confirmed}, MERGE_CONFIRMATION_SECONDS)
    if absorbed is None:
        raise ApplicationError(
            _("The other account cannot be merged."), code="merge_account_unavailable", extra={"field": "other_phone"}
        )
    kept = account_merge(kept=user, absorbed=absorbed)
    cache.delete(_pending_key(user.pk))
    return kept


# --- The merge -----------------------------------------------------------------------------------------------


def account_merge(*, kept: User, absorbed: User) -> User:
    """Move everything of `absorbed` to `kept` and close `absorbed` (the
    numbers must have been confirmed by the caller: account_merge_confirm).

    Raises ApplicationError "merge_same_account", "merge_account_unavailable"
    (either account blocked or deleted) and 409 "merge_conflict" (a row
    could not move: nothing moved). Side effects: the absorbed account's
    sessions and tokens end (its open sockets close after the commit); its
    number is freed; the kept account gets the badges and flags of both
    (safe mode stays on if either had it); two audit entries,
    "account.merge" on the kept account with the counts moved and
    "account.merged_into" on the absorbed one."""
    if kept.pk == absorbed.pk:
        raise ApplicationError(
            _("Enter the number of your other account, not this one."),
            code="merge_same_account",
            extra={"field": "other_phone"},
        )
    try:
        with transaction.atomic():
            return _merge(kept=kept, absorbed=absorbed)
    except IntegrityError as error:
        logger.warning("Account merge refused by a constraint: %s", error)
        raise ApplicationError(
            _("The accounts could not be merged. Nothing was changed; please contact support."),
            code="merge_conflict",
            status_code=409,
        ) from None


def _merge(*, kept: User, absorbed: User) -> User:
    locked = {user.pk: user for user in User.objects.select_for_update().filter(pk__in=[kept.pk, absorbed.pk])}
    for user in locked.values():
        if user.deleted_at is not None or not user.is_active:
            raise ApplicationError(
                _("The other account cannot be merged."),
                code="merge_account_unavailable",
                extra={"field": "other_phone"},
            )
    kept, absorbed = locked[kept.pk], locked[absorbed.pk]
    for check in _checks:
        check(kept=kept, absorbed=absorbed)
    # The absorbed account's sessions end first: nothing may act as it while
    # its rows move.
    session_logout_everywhere(user=absorbed)
    moved: dict[str, int] = {}
    for mover in _movers:
        moved.update(mover(kept=kept, absorbed=absorbed) or {})
    moved.update(_permissions_fold(kept=kept, absorbed=absorbed))
    for model, field in user_foreign_keys():
        if (model._meta.label_lower, field.name) in HISTORY_FIELDS:
            continue
        count = model._base_manager.filter(**{field.attname: absorbed.pk}).update(**{field.attname: kept.pk})
        if count:
            label = model._meta.label_lower + "." + field.name
            moved[label] = moved.get(label, 0) + count
    _profile_fold(kept=kept, absorbed=absorbed)
    absorbed_skeleton = absorbed.name_skeleton
    absorbed_phone = str(absorbed.phone)
    User.objects.filter(pk=absorbed.pk).update(
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
    for finisher in _finishers:
        finisher(kept=kept, absorbed=absorbed)
    name_flags_refresh(skeleton=absorbed_skeleton)
    kept.refresh_from_db()
    absorbed.refresh_from_db()
    audit_record(
        actor=kept,
        action="account.merge",
        target=kept,
        changes={"absorbed_id": absorbed.pk, "moved": dict(sorted(moved.items()))},
    )
    # The number is personal data: the entry on the closed account keeps
    # only its last digits, enough for support to recognise it.
    audit_record(
        actor=kept,
        action="account.merged_into",
        target=absorbed,
        changes={"kept_id": kept.pk, "phone_ending": absorbed_phone[-4:]},
    )
    return kept


def _permissions_fold(*, kept: User, absorbed: User) -> dict[str, int]:
    """Admin groups and permissions of both accounts: the absorbed account's
    that the kept one already has are dropped before the generic pass."""
    dropped = 0
    for relation in (User.groups.through, User.user_permissions.through):
        target = "group_id" if relation is User.groups.through else "permission_id"
        kept_ids = relation.objects.filter(user_id=kept.pk).values_list(target, flat=True)
        dropped += relation.objects.filter(user_id=absorbed.pk, **{target + "__in": list(kept_ids)}).delete()[0]
    return {"accounts.permissions_duplicate": dropped} if dropped else {}


def _profile_fold(*, kept: User, absorbed: User) -> None:
    """The kept profile wins; its blanks are filled from the absorbed one.
    Admin rights and the child-safety flags are the union of both: a child's
    account stays in safe mode whatever the other account was."""
    changes: dict[str, Any] = {}
    for field in ("first_name", "last_name", "middle_name", "time_zone"):
        if not getattr(kept, field) and getattr(absorbed, field):
            changes[field] = getattr(absorbed, field)
    if not kept.photo and absorbed.photo:
        changes["photo"] = absorbed.photo.name
    for flag in ("is_staff", "is_superuser", "is_safe_mode", "is_hidden_from_search"):
        if getattr(absorbed, flag) and not getattr(kept, flag):
            changes[flag] = True
    if absorbed.last_login and (kept.last_login is None or absorbed.last_login > kept.last_login):
        changes["last_login"] = absorbed.last_login
    if absorbed.date_joined < kept.date_joined:
        changes["date_joined"] = absorbed.date_joined
    for field, value in changes.items():
        setattr(kept, field, value)
    if changes:
        kept.save(update_fields=list(changes))
        name_flags_refresh(skeleton=kept.name_skeleton)


def merge_settings_summary() -> dict[str, Any]:
    """What the merge pages tell people about timing."""
    return {
        "confirmation_minutes": MERGE_CONFIRMATION_SECONDS // 60,
        "code_minutes": int(settings.LOGIN_CODE_TTL_SECONDS) // 60,
    }
