"""Signed launch parameters of a mini-app (docs/miniapps.md is the
specification a third party implements; examples/miniapp_verify.py follows
it without importing anything of the portal).

The parameters are strings. The canonical form is every parameter except
`signature`, sorted by name, each name and value percent-encoded as RFC 3986
(everything but A-Z a-z 0-9 - . _ ~), joined as name=value with "&". The
signature is the lowercase hex HMAC-SHA256 of that string (UTF-8) with the
app's secret (its UTF-8 bytes as the key)."""

import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping
from urllib.parse import parse_qsl, quote

SIGNED_FIELDS = ("app", "user_id", "role", "organisation_id", "issued_at", "expires_at", "nonce")
# Clocks differ: a launch "issued" up to this many seconds in the future is accepted.
CLOCK_SKEW_SECONDS = 60


class LaunchInvalid(Exception):
    """Launch parameters that must be refused; `reason` is a stable code:
    missing, duplicate, malformed, signature, expired, too_old, future."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def canonical_query(params: Mapping[str, str]) -> str:
    """The string that is signed: sorted, RFC 3986 encoded, without `signature`."""
    return "&".join(
        f"{quote(name, safe='')}={quote(value, safe='')}"
        for name, value in sorted(params.items())
        if name != "signature"
    )


def signature_compute(*, params: Mapping[str, str], secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), canonical_query(params).encode("utf-8"), hashlib.sha256).hexdigest()


def launch_params_make(
    *,
    app_slug: str,
    user_id: int,
    role: str,
    organisation_id: int | None,
    secret: str,
    max_age_seconds: int,
    now: float | None = None,
) -> dict[str, str]:
    """The signed parameters of one launch, `signature` included."""
    issued_at = int(time.time() if now is None else now)
    params = {
        "app": app_slug,
        "user_id": str(user_id),
        "role": role,
        "organisation_id": "" if organisation_id is None else str(organisation_id),
        "issued_at": str(issued_at),
        "expires_at": str(issued_at + max_age_seconds),
        "nonce": secrets.token_hex(16),
    }
    params["signature"] = signature_compute(params=params, secret=secret)
    return params


def launch_query(params: Mapping[str, str]) -> str:
    """The query string the app receives: the canonical form plus the signature."""
    return canonical_query(params) + "&signature=" + quote(params["signature"], safe="")


def launch_params_verify(*, query: str, secret: str, max_age_seconds: int, now: float | None = None) -> dict[str, str]:
    """The parameters of a launch query string when they are genuine and
    fresh; raises LaunchInvalid otherwise (the portal's own check, the same
    algorithm as the documented one)."""
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False)
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise LaunchInvalid("duplicate")
        params[name] = value
    if "signature" not in params or any(name not in params for name in SIGNED_FIELDS):
        raise LaunchInvalid("missing")
    expected = signature_compute(params=params, secret=secret)
    if not hmac.compare_digest(expected, params["signature"].lower()):
        raise LaunchInvalid("signature")
    try:
        issued_at = int(params["issued_at"])
        expires_at = int(params["expires_at"])
    except ValueError:
        raise LaunchInvalid("malformed") from None
    moment = time.time() if now is None else now
    if issued_at > moment + CLOCK_SKEW_SECONDS:
        raise LaunchInvalid("future")
    if moment - issued_at > max_age_seconds:
        raise LaunchInvalid("too_old")
    if moment > expires_at:
        raise LaunchInvalid("expired")
    return {name: value for name, value in params.items() if name != "signature"}
