#!/usr/bin/env python3
"""Verify the launch parameters Parta gives a mini-app.

Written from docs/miniapps.md only, with nothing but the standard library:
copy it into your app. Three ways to use it:

    # a function
    from miniapp_verify import verify, Rejected
    params = verify(query_string, secret="...", max_age=300)

    # the command line: prints the parameters as JSON, or "rejected: <reason>" (exit status 1)
    python miniapp_verify.py --secret=SECRET --max-age 300 'https://app.example/?app=...&signature=...'

    # a tiny mini-app: answers GET /?<launch parameters> with a page greeting
    # the person, or 403 with the reason; each nonce is accepted once
    python miniapp_verify.py --secret=SECRET --serve 8765

(write --secret=SECRET with "=": a secret may begin with "-").
"""

import argparse
import hashlib
import hmac
import html
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, urlsplit

REQUIRED = ("app", "user_id", "role", "organisation_id", "issued_at", "expires_at", "nonce", "signature")
CLOCK_SKEW = 60


class Rejected(Exception):
    """The launch must be refused; str(error) is the reason."""


def canonical(params: dict) -> str:
    # Step 3 of the documentation: every parameter but "signature", sorted by
    # name, names and values percent-encoded (RFC 3986), joined with "&".
    return "&".join(
        quote(name, safe="") + "=" + quote(value, safe="")
        for name, value in sorted(params.items())
        if name != "signature"
    )


def verify(query: str, *, secret: str, max_age: int, now: float | None = None) -> dict:
    """The launch parameters of `query` (a query string or a whole URL) if
    they are genuine and fresh. Raises Rejected otherwise."""
    if "://" in query:
        query = urlsplit(query).query
    params: dict = {}
    # Step 1: decode the query string; a repeated name is a forgery.
    for name, value in parse_qsl(query, keep_blank_values=True):
        if name in params:
            raise Rejected("duplicate parameter " + name)
        params[name] = value
    # Step 2: every parameter must be there.
    for name in REQUIRED:
        if name not in params:
            raise Rejected("missing " + name)
    # Steps 3-4: recompute the signature and compare in constant time.
    expected = hmac.new(secret.encode("utf-8"), canonical(params).encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, params["signature"].lower()):
        raise Rejected("bad signature")
    # Step 5: fresh enough.
    try:
        issued_at = int(params["issued_at"])
        expires_at = int(params["expires_at"])
    except ValueError:
        raise Rejected("malformed time") from None
    now = time.time() if now is None else now
    if issued_at > now + CLOCK_SKEW:
        raise Rejected("issued in the future")
    if now - issued_at > max_age:
        raise Rejected("too old")
    if now > expires_at:
        raise Rejected("expired")
    del params["signature"]
    return params


class NonceMemory:
    """Step 6: each nonce once, remembered as long as it could be fresh."""

    def __init__(self, max_age: int) -> None:
        self.max_age = max_age
        self.seen: dict = {}
        self.lock = threading.Lock()

    def use(self, nonce: str) -> None:
        now = time.time()
        with self.lock:
            self.seen = {key: at for key, at in self.seen.items() if now - at <= self.max_age + CLOCK_SKEW}
            if nonce in self.seen:
                raise Rejected("nonce already used")
            self.seen[nonce] = now


def serve(port: int, *, secret: str, max_age: int) -> None:
    nonces = NonceMemory(max_age)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = urlsplit(self.path).query
            try:
                params = verify(query, secret=secret, max_age=max_age)
                nonces.use(params["nonce"])
            except Rejected as error:
                self._answer(403, "<p id=result>rejected: " + html.escape(str(error)) + "</p>")
                return
            self._answer(
                200,
                "<p id=result>verified: user {} as {} of organisation {}</p>".format(
                    html.escape(params["user_id"]), html.escape(params["role"]), html.escape(params["organisation_id"])
                ),
            )

        def _answer(self, status: int, body: str) -> None:
            page = ("<!doctype html><html lang=en><meta charset=utf-8><title>Mini-app</title>" + body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write("miniapp: " + (format % args) + "\n")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"serving on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description="Verify Parta mini-app launch parameters.")
    parser.add_argument("--secret", required=True, help="the app's launch secret from the portal's admin")
    parser.add_argument("--max-age", type=int, default=300, help="seconds a launch stays valid (default 300)")
    parser.add_argument("--now", type=float, default=None, help="the current Unix time (for testing)")
    parser.add_argument("--serve", type=int, metavar="PORT", help="run as a tiny mini-app on this port")
    parser.add_argument("launch", nargs="?", help="the launch URL or its query string")
    arguments = parser.parse_args()
    if arguments.serve is not None:
        serve(arguments.serve, secret=arguments.secret, max_age=arguments.max_age)
        return 0
    if not arguments.launch:
        parser.error("give the launch URL (or --serve PORT)")
    try:
        params = verify(arguments.launch, secret=arguments.secret, max_age=arguments.max_age, now=arguments.now)
    except Rejected as error:
        print("rejected: " + str(error))
        return 1
    print(json.dumps(params, ensure_ascii=False, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
