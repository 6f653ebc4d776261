"""Checks of a mini-app's registry entry, shared by the admin form and the
services: where an app may live and whom it may be for."""

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from organisations.models import Role

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def local_http_allowed() -> bool:
    """http://localhost apps are for development (DEBUG) and the tests
    (MINIAPPS_ALLOW_HTTP_LOCALHOST); production apps are https only."""
    return bool(settings.DEBUG or getattr(settings, "MINIAPPS_ALLOW_HTTP_LOCALHOST", False))


def url_validate(*, url: str, is_builtin: bool) -> None:
    """Raises ValidationError unless `url` is a portal path (built-in apps)
    or an https:// address without credentials, query or fragment."""
    url = (url or "").strip()
    if is_builtin:
        if not url.startswith("/") or url.startswith("//"):
            raise ValidationError(_("A built-in app's address is a path of the portal, starting with /."))
        return
    try:
        parts = urlsplit(url)
        hostname = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ValidationError(_("Enter a valid https:// address.")) from None
    if not hostname or parts.username or parts.password:
        raise ValidationError(_("Enter a valid https:// address."))
    if parts.query or parts.fragment:
        raise ValidationError(_("The address must not have a query string or a fragment: the portal adds them."))
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and hostname in LOCAL_HOSTS and local_http_allowed():
        return
    raise ValidationError(_("Only https:// addresses are allowed."))


def url_origin(url: str) -> str:
    """scheme://host[:port] of an app's address, for the CSP frame-src."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def audience_validate(audience: Any) -> None:
    if not isinstance(audience, list) or not audience:
        raise ValidationError(_("Choose at least one role."))
    unknown = [item for item in audience if item not in Role.values]
    if unknown:
        raise ValidationError(_("Unknown roles: %(roles)s.") % {"roles": ", ".join(map(str, unknown))})
