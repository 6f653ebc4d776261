from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from portal import pwa, views

api_v1 = [
    path("", include("accounts.api_urls")),
    path("", include("organisations.api_urls")),
    path("", include("chats.api_urls")),
    path("", include("lessons.api_urls")),
    path("", include("bots.api_urls")),
    path("", include("miniapps.api_urls")),
    path("", include("migration.api_urls")),
    path("", include("adoption.api_urls")),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("manifest.webmanifest", pwa.manifest, name="manifest"),
    path("sw.js", pwa.service_worker, name="service_worker"),
    path("offline/", pwa.offline, name="offline"),
    path("favicon.ico", pwa.favicon, name="favicon"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="api-docs"),
    path("", include("accounts.urls")),
    path("", include("organisations.urls")),
    path("", include("chats.urls")),
    path("", include("lessons.urls")),
    path("", include("bots.urls")),
    path("", include("miniapps.urls")),
    path("", include("migration.urls")),
    path("", include("adoption.urls")),
]
