"""The installable web app over HTTP: the manifest, the service worker, the
offline page, the favicon and what every page's <head> links to. The same
in Chromium: portal/tests/test_pwa_browser.py."""

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client
from PIL import Image

from accounts.tests.factories import make_user

pytestmark = pytest.mark.django_db

CSS = Path(settings.BASE_DIR, "static", "css", "parta.css").read_text()


def css_variable(name: str) -> str:
    match = re.search(r"--" + name + r":\s*(#[0-9a-fA-F]{3,6})", CSS)
    assert match is not None
    return match.group(1)


def static_file(url: str) -> Path:
    assert url.startswith(settings.STATIC_URL)
    found = finders.find(url.removeprefix(settings.STATIC_URL))
    assert isinstance(found, str), url
    return Path(found)


def worker_config(body: str) -> dict:
    match = re.search(r"^const CONFIG = (\{.*\});$", body, re.MULTILINE)
    assert match is not None
    return json.loads(match.group(1))


class Head(HTMLParser):
    """The <link>, <meta> and <script> tags of a page's <head>, and its inline scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in {"link", "meta", "script"}:
            self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def find(self, tag: str, **attributes: str) -> list[dict]:
        return [attrs for name, attrs in self.tags if name == tag and attributes.items() <= attrs.items()]


def head_of(html: str) -> Head:
    parser = Head()
    parser.feed(html)
    return parser


@pytest.mark.parametrize(("language", "name", "description"), [
    ("ru", "Парта", "Школьные чаты, каналы, уроки и дневник"),
    ("en", "Parta", "School chats, channels, lessons and the diary"),
])  # fmt: skip
def test_the_manifest_names_the_app_in_the_page_language(language, name, description):
    response = Client().get("/manifest.webmanifest", {"lang": language})

    assert response.status_code == 200
    assert response["Content-Type"] == "application/manifest+json"
    manifest = json.loads(response.content)
    assert manifest["name"] == name
    assert manifest["short_name"] == name
    if language == "en":
        assert manifest["description"] == description
    assert manifest["lang"] == language
    assert manifest["start_url"] == "/education/"
    assert manifest["scope"] == "/"
    assert manifest["display"] == "standalone"
    assert manifest["theme_color"] == css_variable("accent")
    assert manifest["background_color"] == css_variable("bg")


def test_the_manifest_without_lang_follows_the_browser_and_ignores_unknown_languages():
    response = Client().get("/manifest.webmanifest?lang=xx", HTTP_ACCEPT_LANGUAGE="en")

    assert json.loads(response.content)["lang"] == "en"
    assert "Accept-Language" in response["Vary"]
    assert json.loads(Client().get("/manifest.webmanifest", HTTP_ACCEPT_LANGUAGE="ru").content)["lang"] == "ru"


def test_every_icon_of_the_manifest_has_its_declared_size():
    manifest = json.loads(Client().get("/manifest.webmanifest").content)
    icons = {(icon["sizes"], icon["type"], icon["purpose"]): icon["src"] for icon in manifest["icons"]}

    assert set(icons) == {
        ("192x192", "image/png", "any"),
        ("512x512", "image/png", "any"),
        ("512x512", "image/png", "maskable"),
        ("any", "image/svg+xml", "any"),
    }
    for (sizes, kind, _purpose), url in icons.items():
        path = static_file(url)
        if kind == "image/png":
            with Image.open(path) as image:
                assert image.format == "PNG"
                assert "x".join(map(str, image.size)) == sizes
        else:
            assert path.read_text().startswith('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 512 512">')


def test_the_maskable_icon_fills_its_square_and_the_others_have_round_corners():
    with Image.open(static_file("/static/icons/icon-maskable-512.png")) as maskable:
        assert maskable.convert("RGBA").getpixel((0, 0))[3] == 255
    with Image.open(static_file("/static/icons/icon-512.png")) as rounded:
        assert rounded.convert("RGBA").getpixel((0, 0))[3] == 0


def test_the_service_worker_is_served_fresh_from_the_root_and_keeps_only_public_files():
    client = Client()

    response = client.get("/sw.js")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript; charset=utf-8"
    assert "no-cache" in response["Cache-Control"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    config = worker_config(response.content.decode())
    assert config["offline"] == "/offline/"
    assert config["keep"] == [
        "/offline/",
        "/static/css/parta.css",
        "/static/js/pwa.js",
        "/static/icons/icon.svg",
        "/static/icons/icon-192.png",
    ]
    version = response["ETag"].strip('"')
    assert config["cache"] == "parta-offline-" + version
    # Unchanged since the browser's last look: nothing to download.
    assert client.get("/sw.js", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    assert client.get("/sw.js", HTTP_IF_NONE_MATCH='"another"').status_code == 200
    assert client.post("/sw.js").status_code == 405


def test_the_service_worker_version_follows_what_it_keeps(monkeypatch):
    first = Client().get("/sw.js")
    monkeypatch.setattr("portal.pwa.OFFLINE_ASSETS", ["css/parta.css", "icons/icon.svg"])

    second = Client().get("/sw.js")

    assert first["ETag"] != second["ETag"]
    kept = worker_config(second.content.decode())["keep"]
    assert kept == ["/offline/", "/static/css/parta.css", "/static/icons/icon.svg"]


def test_the_offline_page_says_there_is_no_connection_and_offers_to_try_again():
    response = Client().get("/offline/", HTTP_ACCEPT_LANGUAGE="ru")

    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="ru">' in html
    assert "<h1>Нет соединения с интернетом</h1>" in html
    # An empty link is the address of the page the worker answered for.
    assert '<a href="" class="button" data-offline>' in html
    assert head_of(html).inline_scripts == 0
    # Anyone's page: the worker fetches it without cookies.
    assert "Выйти" not in html
    assert len(response.content) < 10_000


def test_the_offline_page_in_english():
    html = Client().get("/offline/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert "<h1>No internet connection</h1>" in html
    assert ">Try again</a>" in html


def test_the_favicon_is_served_at_the_root():
    response = Client().get("/favicon.ico")

    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as icon:
        assert icon.format == "ICO"
        assert icon.info["sizes"] == {(16, 16), (32, 32), (48, 48)}


def test_every_page_links_the_manifest_icons_and_the_deferred_script():
    head = head_of(Client().get("/login/", HTTP_ACCEPT_LANGUAGE="ru").content.decode())

    assert head.find("link", rel="manifest") == [{"rel": "manifest", "href": "/manifest.webmanifest?lang=ru"}]
    assert head.find("meta", name="theme-color") == [{"name": "theme-color", "content": css_variable("accent")}]
    assert [link["href"] for link in head.find("link", rel="icon")] == ["/static/icons/icon.svg"]
    [apple] = head.find("link", rel="apple-touch-icon")
    assert apple["href"] == "/static/icons/apple-touch-icon.png"
    with Image.open(static_file("/static/icons/apple-touch-icon.png")) as image:
        assert image.size == (180, 180)
    [script] = head.find("script", src="/static/js/pwa.js")
    assert script == {"src": "/static/js/pwa.js", "defer": None, "data-new-message": "Новое сообщение"}
    assert head.inline_scripts == 0


def test_only_a_safe_mode_account_gets_private_notifications():
    child, adult = make_user(is_safe_mode=True), make_user()
    scripts = {}
    for user in (child, adult):
        client = Client(HTTP_ACCEPT_LANGUAGE="ru")
        client.force_login(user)
        [scripts[user.pk]] = head_of(client.get("/profile/").content.decode()).find("script", src="/static/js/pwa.js")

    assert "data-private" in scripts[child.pk]
    assert "data-private" not in scripts[adult.pk]


def test_the_profile_has_the_notifications_switch_hidden_until_the_script_shows_it():
    client = Client(HTTP_ACCEPT_LANGUAGE="ru")
    client.force_login(make_user())

    html = client.get("/profile/").content.decode()

    assert "<div data-browser-notifications hidden>" in html
    assert '<button type="button" hidden>Включить уведомления в браузере</button>' in html
    for state in ("default", "granted", "denied", "unsupported"):
        assert f'<span data-state="{state}" hidden>' in html
