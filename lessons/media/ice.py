"""ICE servers for lesson participants and the media worker, and
time-limited TURN credentials in coturn's REST shared-secret scheme
(coturn's `use-auth-secret` / `static-auth-secret`; the "TURN REST API"
draft): the username is "<expiry unix time>:<id>" and the password is
base64(HMAC-SHA1(secret, username)), so coturn checks it without a database
and refuses it after the expiry."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import re
import time
from collections.abc import Sequence
from typing import Any

_TURN_ID = re.compile(r"^[^:\s]{1,128}$")


@dataclasses.dataclass(frozen=True)
class TurnCredentials:
    username: str
    password: str
    expires_at: int


def turn_credentials(*, secret: str, user_id: str, ttl_seconds: int, now: float) -> TurnCredentials:
    """Credentials valid for `ttl_seconds` from `now` (unix time). `user_id`
    is an opaque id (never a phone number: coturn logs usernames); it may
    not contain ":" or whitespace. Raises ValueError on an empty secret, a
    bad id or a TTL that is not positive."""
    if not secret:
        raise ValueError("the TURN shared secret is empty")
    if not _TURN_ID.match(user_id):
        raise ValueError("a TURN user id is 1-128 characters without ':' or whitespace")
    if ttl_seconds <= 0:
        raise ValueError("the TURN credential lifetime must be positive")
    expires_at = int(now) + ttl_seconds
    username = str(expires_at) + ":" + user_id
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredentials(username=username, password=base64.b64encode(digest).decode(), expires_at=expires_at)


def ice_servers(
    *,
    stun_urls: Sequence[str],
    turn_urls: Sequence[str],
    turn_secret: str,
    ttl_seconds: int,
    user_id: str,
    now: float,
) -> list[dict[str, Any]]:
    """The `iceServers` of an RTCPeerConnection configuration (the browser's
    RTCIceServer shape): STUN as given, TURN with fresh credentials. TURN is
    left out when no URL or no secret is configured."""
    servers: list[dict[str, Any]] = []
    if stun_urls:
        servers.append({"urls": list(stun_urls)})
    if turn_urls and turn_secret:
        credentials = turn_credentials(secret=turn_secret, user_id=user_id, ttl_seconds=ttl_seconds, now=now)
        servers.append({"urls": list(turn_urls), "username": credentials.username, "credential": credentials.password})
    return servers


def client_ice_servers(*, user_id: str) -> list[dict[str, Any]]:
    """ICE servers for one participant's browser from the settings STUN_URLS,
    TURN_URLS, TURN_SHARED_SECRET and TURN_CREDENTIAL_TTL_SECONDS."""
    from django.conf import settings

    return ice_servers(
        stun_urls=settings.STUN_URLS,
        turn_urls=settings.TURN_URLS,
        turn_secret=settings.TURN_SHARED_SECRET,
        ttl_seconds=settings.TURN_CREDENTIAL_TTL_SECONDS,
        user_id=user_id,
        now=time.time(),
    )


def worker_ice_servers() -> list[dict[str, Any]]:
    """ICE servers of the media worker's own peer connections: STUN only
    (STUN_URLS), for a worker behind 1:1 NAT to learn its public address. A
    worker needs no TURN relay of its own: clients behind strict NATs reach
    it through theirs. aiortc gathers every candidate before it answers, so
    an unreachable STUN server delays every join."""
    from django.conf import settings

    return [{"urls": list(settings.STUN_URLS)}] if settings.STUN_URLS else []
