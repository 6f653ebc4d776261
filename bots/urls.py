"""HTML pages of the bots app."""

from django.urls import path

from bots import views

app_name = "bots"
urlpatterns = [
    path("bots/", views.bot_list_view, name="list"),
    path("bots/<str:username>/", views.bot_detail_view, name="detail"),
    path("bots/<str:username>/start/", views.bot_start_view, name="start"),
    path("bots/<str:username>/add-to-chat/", views.bot_chat_add_view, name="chat_add"),
    path("chats/<int:chat_id>/messages/<int:seq>/button/", views.button_press_view, name="button_press"),
]
