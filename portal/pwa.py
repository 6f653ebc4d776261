"""The installable web app: the manifest, the service worker, the offline
page and the favicon (issue 7, item 5; README "Installing Parta on a phone").

The service worker keeps only what anyone may see — the offline page and the
static files it needs — and never a personal page or an API answer: phones
at school and at home are shared, and whatever sits in Cache Storage stays
after signing out. Its cache is named after a hash of everything it keeps,
so a deployment that changes any of it installs a new worker, which drops
the old cache."""

import hashlib
import json
from pathlib import Path

from django.conf import settings
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.shortcuts import render
from django.template import engines
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control, patch_vary_headers
from django.utils.translation import gettext
from django.views.decorators.http import require_safe

# The colours of static/css/parta.css: --accent (the browser's bars) and --bg.
THEME_COLOR = "#0b57a4"
BACKGROUND_COLOR = "#fff"

# What the offline page needs besides itself (static paths). pwa.js is
# there only so that the offline page loads without an error.
OFFLINE_ASSETS = ["css/parta.css", "js/pwa.js", "icons/icon.svg", "icons/icon-192.png"]


@require_safe
def manifest(request: HttpRequest) -> JsonResponse:
    # Browsers fetch the manifest without cookies, so the page names its
    # language in the link (?lang=); the request's language otherwise.
    language = request.GET.get("lang", "")
    if language not in dict(settings.LANGUAGES):
        language = translation.get_language() or settings.LANGUAGE_CODE
    with translation.override(language):
        data = {
            "id": "/",
            "name": gettext("Parta"),
            "short_name": gettext("Parta"),
            "description": gettext("School chats, channels, lessons and the diary"),
            "lang": language,
            "dir": "ltr",
            # The services showcase is a signed-in person's home (SPEC §8).
            "start_url": reverse("miniapps:showcase"),
            "scope": "/",
            "display": "standalone",
            "background_color": BACKGROUND_COLOR,
            "theme_color": THEME_COLOR,
            "categories": ["education"],
            "icons": [
                {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png", "purpose": "any"},
                {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png", "purpose": "any"},
                {
                    "src": static("icons/icon-maskable-512.png"),
                    "sizes": "512x512",
                    "type": "image/png",
                    "purpose": "maskable",
                },
                {"src": static("icons/icon.svg"), "sizes": "any", "type": "image/svg+xml", "purpose": "any"},
            ],
        }
    response = JsonResponse(data, content_type="application/manifest+json", json_dumps_params={"ensure_ascii": False})
    patch_cache_control(response, public=True, max_age=86400)
    patch_vary_headers(response, ["Accept-Language"])
    return response


def _static_file(path: str) -> Path:
    found = finders.find(path)
    if not isinstance(found, str):
        raise Http404(path)
    return Path(found)


def _worker_version() -> str:
    """A hash of everything the worker and its cache hold: the worker's own
    code, the offline page (its templates and the translations) and the
    static files it keeps."""
    digest = hashlib.sha256()
    templates = ("portal/sw.js", "portal/offline.html", "base.html")
    engine = engines["django"].engine  # type: ignore[attr-defined]
    sources = [Path(str(engine.get_template(name).origin.name)) for name in templates]
    sources += sorted(Path(settings.BASE_DIR, "locale").glob("*/LC_MESSAGES/django.mo"))
    sources += [_static_file(path) for path in OFFLINE_ASSETS]
    for source in sources:
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    version = _worker_version()
    etag = '"' + version + '"'
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        offline_url = reverse("offline")
        config = {
            "cache": "parta-offline-" + version,
            "offline": offline_url,
            "keep": [offline_url, *(static(path) for path in OFFLINE_ASSETS)],
        }
        body = render_to_string("portal/sw.js", {"config": json.dumps(config)})
        response = HttpResponse(body, content_type="text/javascript; charset=utf-8")
    response["ETag"] = etag
    # Browsers look for a new worker on every visit: the proxy and the
    # browser must ask the server each time (docs/deployment.md).
    patch_cache_control(response, no_cache=True)
    return response


@require_safe
def offline(request: HttpRequest) -> HttpResponse:
    response = render(request, "portal/offline.html")
    patch_cache_control(response, no_cache=True)
    return response


@require_safe
def favicon(request: HttpRequest) -> FileResponse:
    # Browsers ask for /favicon.ico where a page names no icon (JSON, files).
    response = FileResponse(_static_file("icons/favicon.ico").open("rb"), content_type="image/x-icon")
    patch_cache_control(response, public=True, max_age=7 * 86400)
    return response
