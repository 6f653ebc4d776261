"""A real local HTTP server that plays the old messenger's API (SPEC §9.1):
`POST /method/messages.send` answers from a script of behaviours, one per
request, and records every request's form fields."""

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LegacyApi:
    def __init__(self) -> None:
        # ("ok", message_id) | ("error", code) | ("http", status) | ("slow", seconds) | ("garbage", None)
        self.script: list[tuple[str, Any]] = []
        self.requests: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.next_message_id = 5000
        self.lock = threading.Lock()
        self.url = ""

    def answer(self) -> tuple[str, Any]:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            self.next_message_id += 1
            return ("ok", self.next_message_id)


@contextmanager
def legacy_api_server() -> Iterator[LegacyApi]:
    api = LegacyApi()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            form = {key: values[0] for key, values in urllib.parse.parse_qs(self.rfile.read(length).decode()).items()}
            with api.lock:
                api.requests.append(form)
                api.paths.append(self.path)
            kind, value = api.answer()
            if kind == "slow":
                time.sleep(value)
                kind, value = ("ok", 1)
            if kind == "http":
                self._send(value, b"Bad Gateway")
                return
            if kind == "garbage":
                self._send(200, b"<html>maintenance</html>")
                return
            body = (
                {"response": value} if kind == "ok" else {"error": {"error_code": value, "error_msg": f"error {value}"}}
            )
            self._send(200, json.dumps(body).encode())

        def _send(self, status: int, body: bytes) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout test)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
