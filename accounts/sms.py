"""Sending text messages. The backend is read from settings.SMS_BACKEND at
each call, so tests and management commands can switch it.

No backend writes the number or the text to the application logs: a login
SMS carries a secret. The console backend prints both to standard output on
purpose, as a development tool."""

import base64
import fcntl
import json
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

logger = logging.getLogger(__name__)


class SmsDeliveryError(Exception):
    """The message could not be handed over to the gateway."""


def sms_send(*, to: str, text: str) -> None:
    """Send `text` to the E.164 number `to` through the configured backend.
    Raises SmsDeliveryError when the backend could not take the message."""
    backend_name = settings.SMS_BACKEND
    backend = SMS_BACKENDS.get(backend_name)
    if backend is None:
        raise ImproperlyConfigured("Unknown SMS_BACKEND " + repr(backend_name) + "; use console, file or http.")
    backend(to=to, text=text)


def _console_send(*, to: str, text: str) -> None:
    sys.stdout.write("SMS to " + to + ": " + text + "\n")
    sys.stdout.flush()


def _file_send(*, to: str, text: str) -> None:
    path = Path(settings.SMS_OUTBOX)
    line = json.dumps({"to": to, "text": text, "sent_at": timezone.now().isoformat()}, ensure_ascii=False) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as outbox:
            # Several daphne processes and workers append to one file: the
            # lock keeps each line whole.
            fcntl.flock(outbox.fileno(), fcntl.LOCK_EX)
            try:
                outbox.write(line)
                outbox.flush()
                os.fsync(outbox.fileno())
            finally:
                fcntl.flock(outbox.fileno(), fcntl.LOCK_UN)
    except OSError as error:
        logger.error("SMS outbox is not writable: %s", error.strerror)
        raise SmsDeliveryError("SMS outbox is not writable") from error


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirected POST would silently turn into a GET; a gateway that
    # redirects is misconfigured and should be reported as a failure.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def _http_send(*, to: str, text: str) -> None:
    url = settings.SMS_GATEWAY_URL
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        logger.error("SMS_GATEWAY_URL is not an http(s) URL")
        raise SmsDeliveryError("SMS gateway is not configured")
    body = json.dumps({"to": to, "text": text, "sender": settings.SMS_GATEWAY_SENDER}).encode()
    credentials = (settings.SMS_GATEWAY_LOGIN + ":" + settings.SMS_GATEWAY_PASSWORD).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "Authorization": "Basic " + base64.b64encode(credentials).decode("ascii"),
        },
    )
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=settings.SMS_GATEWAY_TIMEOUT) as response:
            status = response.status
            response.read()
    except urllib.error.HTTPError as error:
        error.close()
        logger.warning("SMS gateway answered HTTP %s", error.code)
        raise SmsDeliveryError("SMS gateway answered HTTP " + str(error.code)) from error
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        logger.warning("SMS gateway unreachable: %s", type(reason).__name__)
        raise SmsDeliveryError("SMS gateway unreachable") from error
    if not 200 <= status < 300:
        logger.warning("SMS gateway answered HTTP %s", status)
        raise SmsDeliveryError("SMS gateway answered HTTP " + str(status))


SMS_BACKENDS: dict[str, Callable[..., None]] = {
    "console": _console_send,
    "file": _file_send,
    "http": _http_send,
}
