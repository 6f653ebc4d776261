"""Webhook requests to the bots' own servers, without letting a bot point
the portal at its internal network (SSRF): every address a host name
resolves to must be public, checked when the webhook is set and again at
every delivery, and the connection goes to the very address that was
checked (a DNS answer that changes in between — rebinding — is not
followed)."""

import http.client
import ipaddress
import socket
import ssl
import urllib.parse
from dataclasses import dataclass

# 169.254.169.254 (cloud metadata) is link-local; the rest: loopback, RFC 1918
# and unique-local, carrier-grade NAT, multicast, reserved, unspecified.
_EXTRA_BLOCKED = [ipaddress.ip_network("100.64.0.0/10"), ipaddress.ip_network("192.0.0.0/24")]


class WebhookUrlError(ValueError):
    """The URL cannot be used as a webhook; `code` says why."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.code = code


def address_is_internal(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
        or any(ip in network for network in _EXTRA_BLOCKED if ip.version == network.version)
    )


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def url_parse(url: str) -> urllib.parse.SplitResult:
    """Raises WebhookUrlError "webhook_url_invalid"."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise WebhookUrlError("Not a valid URL.", code="webhook_url_invalid") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise WebhookUrlError("An http:// or https:// URL without credentials is required.", code="webhook_url_invalid")
    return parts


def target_resolve(url: str, *, allow_internal: bool) -> Target:
    """Resolve the URL's host now and check every address.

    Raises WebhookUrlError "webhook_url_invalid", "webhook_host_unknown"
    (no such host) or "webhook_url_internal" (an internal address, unless
    `allow_internal`)."""
    parts = url_parse(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise WebhookUrlError("The webhook's host name does not resolve.", code="webhook_host_unknown") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise WebhookUrlError("The webhook's host name does not resolve.", code="webhook_host_unknown")
    if not allow_internal and any(address_is_internal(address) for address in addresses):
        raise WebhookUrlError(
            "The webhook's address is on an internal network (loopback, private, link-local or metadata).",
            code="webhook_url_internal",
        )
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, addresses=addresses)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        # The certificate is checked against the host name, not the address.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PostResult:
    status: int
    body: bytes


def post(target: Target, *, body: bytes, headers: dict[str, str], timeout: float) -> PostResult:
    """POST `body` to the first checked address of `target` (no redirects
    are followed). Raises OSError / http.client.HTTPException on network
    failures."""
    connection_class = _PinnedHTTPSConnection if target.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(target.host, target.port, address=target.addresses[0], timeout=timeout)
    try:
        connection.request("POST", target.path, body=body, headers=headers)
        response = connection.getresponse()
        return PostResult(status=response.status, body=response.read(4096))
    finally:
        connection.close()
