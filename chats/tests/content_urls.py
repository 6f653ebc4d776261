"""The portal's URLs for the content tests, with the routes the lead mounts
elsewhere: the file views (chats.files.file_urlpatterns, in the "chats"
namespace) and the message edit (PATCH), which the chat API's view of
/chats/{id}/messages/{seq}/ takes by inheritance."""

from django.urls import URLResolver, include, path

from chats import apis_content, files
from chats import urls as chats_urls
from portal import urls as portal_urls

_chats_patterns = list(chats_urls.urlpatterns)
if not any(getattr(pattern, "name", None) == "attachment_file" for pattern in _chats_patterns):
    _chats_patterns += files.file_urlpatterns

urlpatterns = [
    path("api/v1/chats/<int:chat_id>/messages/<int:seq>/", apis_content.MessageEditApi.as_view()),
    *[
        pattern
        for pattern in portal_urls.urlpatterns
        if not (isinstance(pattern, URLResolver) and pattern.namespace == "chats")
    ],
    path("", include((_chats_patterns, "chats"))),
]
