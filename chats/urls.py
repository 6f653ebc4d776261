"""HTML pages of chats and channels, and the protected attachment files."""

from django.urls import path

from chats import views
from chats.files import file_urlpatterns
from chats.views_channels import urlpatterns as channel_urlpatterns

app_name = "chats"
urlpatterns: list = [
    path("chats/", views.chat_list_view, name="list"),
    path("chats/direct/", views.direct_chat_start_view, name="direct_start"),
    path("chats/<int:chat_id>/", views.chat_detail_view, name="detail"),
    path("chats/<int:chat_id>/polls/new/", views.poll_create_view, name="poll_create"),
    path("chats/<int:chat_id>/mute/", views.member_mute_view, name="member_mute"),
    path("chats/<int:chat_id>/announcement-mode/", views.announcement_mode_view, name="announcement_mode"),
    path("chats/<int:chat_id>/messages/<int:seq>/delete/", views.message_delete_view, name="message_delete"),
    path("chats/<int:chat_id>/messages/<int:seq>/pin/", views.message_pin_view, name="message_pin"),
    path("chats/<int:chat_id>/messages/<int:seq>/react/", views.message_react_view, name="message_react"),
    path("chats/<int:chat_id>/messages/<int:seq>/edit/", views.message_edit_view, name="message_edit"),
    path("chats/<int:chat_id>/messages/<int:seq>/report/", views.message_report_view, name="message_report"),
    path("chats/<int:chat_id>/messages/<int:seq>/polls/<int:poll_id>/vote/", views.poll_vote_view, name="poll_vote"),
    path(
        "chats/<int:chat_id>/messages/<int:seq>/polls/<int:poll_id>/close/",
        views.poll_close_view,
        name="poll_close",
    ),
    # The channel pages and the protected attachment files live beside their code.
    *channel_urlpatterns,
    *file_urlpatterns,
]
