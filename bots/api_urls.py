"""The Bot API, under /api/v1/bot/ (token in the Authorization header,
never in the path)."""

from django.urls import path

from bots import apis

urlpatterns = [
    path("bot/getMe/", apis.GetMeApi.as_view(), name="bot-get-me"),
    path("bot/getUpdates/", apis.get_updates_view, name="bot-get-updates"),
    path("bot/sendMessage/", apis.SendMessageApi.as_view(), name="bot-send-message"),
    path("bot/editMessageText/", apis.EditMessageTextApi.as_view(), name="bot-edit-message-text"),
    path("bot/answerCallbackQuery/", apis.AnswerCallbackQueryApi.as_view(), name="bot-answer-callback-query"),
    path("bot/setWebhook/", apis.SetWebhookApi.as_view(), name="bot-set-webhook"),
    path("bot/deleteWebhook/", apis.DeleteWebhookApi.as_view(), name="bot-delete-webhook"),
]
