"""This app's entries of the permission matrix (tests/test_permission_matrix.py).

The Bot API takes bot tokens only (`Authorization: Bot <token>`): no person
holds one, so every role of the matrix — signed in by token or session, or
not at all — is refused (401). The bot tokens' own permissions (invalid,
revoked, another organisation's chats) are tested in bots/tests/test_apis.py.
"""

MATRIX: dict[str, dict[str, tuple[set[str], dict[str, str], dict]]] = {
    "/api/v1/bot/getMe/": {"get": (set(), {}, {})},
    "/api/v1/bot/getUpdates/": {"post": (set(), {}, {"timeout": 0})},
    "/api/v1/bot/sendMessage/": {"post": (set(), {}, {"chat_id": 1, "text": "Здравствуйте"})},
    "/api/v1/bot/editMessageText/": {"post": (set(), {}, {"chat_id": 1, "seq": 1, "text": "Здравствуйте"})},
    "/api/v1/bot/answerCallbackQuery/": {"post": (set(), {}, {"callback_query_id": "1-abc"})},
    "/api/v1/bot/setWebhook/": {"post": (set(), {}, {"url": "https://example.org/hook"})},
    "/api/v1/bot/deleteWebhook/": {"post": (set(), {}, {})},
}


def world_extend(world) -> None:
    """Nothing: no role of the world holds a bot token."""
