import base64
import json
import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from accounts.sms import SmsDeliveryError, sms_send
from accounts.tests.factories import sms_messages


class Gateway:
    """A real HTTP server on a free local port that records what it gets."""

    def __init__(self, status: int = 200, delay: float = 0.0) -> None:
        self.status = status
        self.delay = delay
        self.requests: list[dict] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                gateway.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers["Authorization"],
                        "content_type": self.headers["Content-Type"],
                        "body": json.loads(self.rfile.read(length)),
                    }
                )
                if gateway.delay:
                    time.sleep(gateway.delay)
                body = b'{"status": "queued"}'
                try:
                    self.send_response(gateway.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:" + str(self.server.server_port) + "/send"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway(settings):
    gateway = Gateway()
    settings.SMS_BACKEND = "http"
    settings.SMS_GATEWAY_URL = gateway.url
    settings.SMS_GATEWAY_LOGIN = "parta"
    settings.SMS_GATEWAY_PASSWORD = "s3cret:pass"
    settings.SMS_GATEWAY_SENDER = "Parta"
    settings.SMS_GATEWAY_TIMEOUT = 2
    yield gateway
    gateway.close()


def test_file_backend_appends_one_json_object_per_line(sms_outbox):
    sms_send(to="+79001234567", text="Код: 123456")
    sms_send(to="+79007654321", text="Второе")

    messages = sms_messages(sms_outbox)
    assert [(message["to"], message["text"]) for message in messages] == [
        ("+79001234567", "Код: 123456"),
        ("+79007654321", "Второе"),
    ]
    assert [sorted(message) for message in messages] == [["sent_at", "text", "to"]] * 2
    assert datetime.fromisoformat(messages[0]["sent_at"]).tzinfo is not None


def test_file_backend_creates_the_directory(settings, tmp_path):
    settings.SMS_BACKEND = "file"
    settings.SMS_OUTBOX = str(tmp_path / "deep" / "er" / "outbox.jsonl")

    sms_send(to="+79001234567", text="x")

    assert [message["to"] for message in sms_messages(tmp_path / "deep" / "er" / "outbox.jsonl")] == ["+79001234567"]


def test_file_backend_keeps_lines_whole_under_parallel_writers(sms_outbox):
    text = "длинный текст " * 400

    def write(number: int) -> None:
        for index in range(20):
            sms_send(to="+7900000" + str(1000 + number), text=text + str(index))

    threads = [threading.Thread(target=write, args=(number,)) for number in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    messages = sms_messages(sms_outbox)
    assert len(messages) == 160
    assert {message["text"][: len(text)] for message in messages} == {text}


def test_file_backend_failure_is_a_delivery_error(settings, tmp_path):
    (tmp_path / "blocker").write_text("a file, not a directory")
    settings.SMS_BACKEND = "file"
    settings.SMS_OUTBOX = str(tmp_path / "blocker" / "outbox.jsonl")

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")


def test_console_backend_prints_to_stdout_and_logs_nothing(settings, capsys, caplog):
    settings.SMS_BACKEND = "console"

    sms_send(to="+79001234567", text="Код 654321")

    assert capsys.readouterr().out == "SMS to +79001234567: Код 654321\n"
    assert caplog.records == []


def test_the_backend_is_read_at_call_time(settings, sms_outbox, capsys):
    settings.SMS_BACKEND = "console"
    sms_send(to="+79001234567", text="one")
    settings.SMS_BACKEND = "file"
    sms_send(to="+79001234567", text="two")

    assert capsys.readouterr().out == "SMS to +79001234567: one\n"
    assert [message["text"] for message in sms_messages(sms_outbox)] == ["two"]


def test_unknown_backend_is_a_configuration_error(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.SMS_BACKEND = "pigeon"

    with pytest.raises(ImproperlyConfigured):
        sms_send(to="+79001234567", text="x")


def test_http_backend_posts_json_with_basic_auth(gateway):
    sms_send(to="+79001234567", text="Код для входа: 123456")

    assert gateway.requests == [
        {
            "path": "/send",
            "authorization": "Basic " + base64.b64encode(b"parta:s3cret:pass").decode(),
            "content_type": "application/json; charset=utf-8",
            "body": {"to": "+79001234567", "text": "Код для входа: 123456", "sender": "Parta"},
        }
    ]


def test_http_backend_raises_on_a_server_error_without_logging_the_message(gateway, caplog):
    gateway.status = 500

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="Код 123456")

    assert len(gateway.requests) == 1
    assert "+79001234567" not in caplog.text
    assert "123456" not in caplog.text
    assert "HTTP 500" in caplog.text


def test_http_backend_raises_on_a_client_error(gateway):
    gateway.status = 401

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")


def test_http_backend_raises_on_a_redirect(gateway):
    gateway.status = 302

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")

    assert len(gateway.requests) == 1


def test_http_backend_raises_on_a_timeout(gateway, settings):
    gateway.delay = 1.5
    settings.SMS_GATEWAY_TIMEOUT = 0.3

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")

    assert len(gateway.requests) == 1


def test_http_backend_raises_when_nothing_listens(gateway, settings):
    gateway.close()

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")


def test_http_backend_refuses_a_url_that_is_not_http(gateway, settings):
    settings.SMS_GATEWAY_URL = "file:///etc/passwd"

    with pytest.raises(SmsDeliveryError):
        sms_send(to="+79001234567", text="x")

    assert gateway.requests == []
