"""The chats REST API: each area keeps its routes beside its views."""

from chats import apis, apis_channels, apis_content

urlpatterns = [*apis.urlpatterns, *apis_content.urlpatterns, *apis_channels.urlpatterns]
