"""The adapter for the old messenger's HTTP API (SPEC §9.1): posting a
message with `messages.send`. It tells a temporary failure (retry) from a
permanent one and never raises for what the network or the API does."""

import dataclasses
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

from django.conf import settings

API_VERSION = "5.199"
TEMPORARY_ERROR_CODES = frozenset({6, 9, 10})


@dataclasses.dataclass(frozen=True)
class Answer:
    message_id: int | None = None
    error_code: int | None = None
    error: str = ""
    is_temporary: bool = False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def message_send(*, peer_id: int, message: str, random_id: int) -> Answer:
    """POST {LEGACY_API_URL}/method/messages.send with the form fields of
    SPEC §9.1. Success: Answer(message_id=…). HTTP 5xx, a timeout, no
    connection and error codes 6, 9, 10 are temporary; other errors (and a
    missing LEGACY_API_URL) permanent."""
    base = settings.LEGACY_API_URL.rstrip("/")
    if not base.startswith(("http://", "https://")):
        return Answer(error="LEGACY_API_URL is not set to an http(s) address", is_temporary=False)
    body = urllib.parse.urlencode(
        {
            "peer_id": str(peer_id),
            "message": message,
            "random_id": str(random_id),
            "access_token": settings.LEGACY_API_TOKEN,
            "v": API_VERSION,
        }
    ).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        base + "/method/messages.send",
        data=body,
        method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=settings.LEGACY_API_TIMEOUT) as response:
            raw = response.read(1_000_000)
    except urllib.error.HTTPError as error:
        return Answer(error=f"HTTP {error.code}", is_temporary=error.code >= 500)
    except TimeoutError:
        return Answer(error="timeout", is_temporary=True)
    except (urllib.error.URLError, ConnectionError, OSError) as error:
        reason = getattr(error, "reason", error)
        if isinstance(reason, (TimeoutError, socket.timeout)):
            return Answer(error="timeout", is_temporary=True)
        return Answer(error="connection failed: " + type(reason).__name__, is_temporary=True)
    try:
        data = json.loads(raw)
    except ValueError:
        return Answer(error="not JSON", is_temporary=True)
    if isinstance(data, dict) and isinstance(data.get("response"), int) and not isinstance(data["response"], bool):
        return Answer(message_id=data["response"])
    failure = data.get("error") if isinstance(data, dict) else None
    if isinstance(failure, dict) and isinstance(failure.get("error_code"), int):
        code = failure["error_code"]
        return Answer(
            error_code=code, error=str(failure.get("error_msg", ""))[:400], is_temporary=code in TEMPORARY_ERROR_CODES
        )
    return Answer(error="unexpected answer", is_temporary=True)
