"""Who is on the other end of a WebSocket, and whether the page that opened
it may talk to us.

Two rules, applied to every WebSocket route of the project (portal/asgi.py):

- Origin: a browser always sends `Origin`, and it must name one of
  ALLOWED_HOSTS (the rule of channels' AllowedHostsOriginValidator); a
  foreign page is refused at the handshake (HTTP 403). A handshake WITHOUT
  `Origin` comes from a program, not a browser: it is let through, but only
  a token can sign it in — a session cookie alone could be a victim's,
  replayed by something that is not a browser.
- Credentials: `Authorization: Token <key>` (the API token of the REST API)
  wins over the session cookie; clients that cannot set headers send the
  token in their first frame instead (chats.consumers).
"""

from collections.abc import Awaitable, Callable, MutableMapping
from importlib import import_module
from typing import Any
from urllib.parse import ParseResult

from channels.db import database_sync_to_async
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.contrib import auth
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from rest_framework import exceptions

from accounts.authentication import TokenAuthentication
from accounts.models import User

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]

# scope["auth_method"]: how the socket was signed in at the handshake.
AUTH_SESSION = "session"
AUTH_TOKEN = "token"  # noqa: S105 - a name, not a secret

TOKEN_KEY_MAX_LENGTH = 200


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header of the handshake (names are
    lower-case in ASGI)."""
    for header_name, value in scope.get("headers", []):
        if header_name == name:
            return bytes(value)
    return None


def user_by_token(key: Any) -> User | None:
    """The active user owning API token `key`, or None. The same rule as the
    REST API's (accounts.authentication.TokenAuthentication): keys are looked
    up by their hash, blocked or logged-out users have none."""
    if not isinstance(key, str) or not key or len(key) > TOKEN_KEY_MAX_LENGTH:
        return None
    try:
        user, _token = TokenAuthentication().authenticate_credentials(key)
    except exceptions.AuthenticationFailed:
        return None
    return user if user.is_active else None


def token_from_header(value: bytes | None) -> str | None:
    """The key of an `Authorization: Token <key>` header ("" when the header
    is there but malformed, None when there is none)."""
    if value is None:
        return None
    try:
        text = value.decode("latin1")
    except UnicodeDecodeError:  # pragma: no cover - latin1 decodes any byte
        return ""
    scheme, _space, key = text.strip().partition(" ")
    if scheme.lower() != "token":
        return ""
    return key.strip()


class BrowserOriginValidator(OriginValidator):
    """AllowedHostsOriginValidator, except that a handshake without Origin
    passes on to SocketAuthMiddleware, which then admits it by token only."""

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return bool(self.validate_origin(parsed_origin))


def handshake_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of the handshake (every Cookie header)."""
    values = [value.decode("latin1") for name, value in scope.get("headers", []) if name == b"cookie"]
    return parse_cookie("; ".join(values)) if values else {}


@database_sync_to_async
def session_user(session_key: str | None) -> User | AnonymousUser:
    """The person signed in by this session cookie, with the checks of
    Django's own request authentication (the session's auth hash, which
    signing out everywhere changes; an inactive user is nobody)."""
    if not session_key:
        return AnonymousUser()
    engine = import_module(settings.SESSION_ENGINE)
    request = HttpRequest()
    request.session = engine.SessionStore(session_key)
    user = auth.get_user(request)
    return user if user.is_authenticated and user.is_active else AnonymousUser()


class SocketAuthMiddleware:
    """Sets scope["user"], scope["auth_method"] ("session", "token" or
    None), scope["auth_token"] (the key, so that the consumer can check
    later that it still works) and scope["cookies"]. An `Authorization`
    header that names no valid token sets scope["auth_failed"], and the
    consumer closes with 4001; without `Origin`, the session cookie is
    ignored.

    One layer instead of channels' AuthMiddlewareStack (cookies, session,
    user: three scope copies, a session store and two lazy objects kept for
    the life of every socket, about a tenth of an idle socket's memory):
    the session is read once, at the handshake, and not kept. Nothing here
    needs it later; signing out reaches open sockets as an event
    (accounts.events)."""

    def __init__(self, application: ASGIApplication) -> None:
        self.application = application

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The scope is filled in place, not copied as middleware usually
        # does: daphne makes one per connection and nothing outside this
        # stack reads it, and a copy would stay alive as long as the socket.
        cookies = handshake_cookies(scope)
        key = token_from_header(scope_header(scope, b"authorization"))
        has_origin = scope_header(scope, b"origin") is not None
        user: User | AnonymousUser | None = None
        scope["cookies"] = cookies
        scope["auth_failed"] = False
        scope["auth_token"] = None
        scope["auth_method"] = None
        if key is not None:
            user = await database_sync_to_async(user_by_token)(key) if key else None
            scope["auth_method"] = AUTH_TOKEN if user else None
            scope["auth_failed"] = user is None
            scope["auth_token"] = key if user else None
        elif has_origin:
            user = await session_user(cookies.get(settings.SESSION_COOKIE_NAME))
            scope["auth_method"] = AUTH_SESSION if user.is_authenticated else None
        scope["user"] = user if user is not None and user.is_authenticated else AnonymousUser()
        await self.application(scope, receive, send)


def websocket_stack(application: ASGIApplication) -> ASGIApplication:
    """Origin rule, then token or session cookie: the stack every WebSocket
    route of the project sits behind."""
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return BrowserOriginValidator(SocketAuthMiddleware(application), allowed_hosts)  # type: ignore[no-any-return]
