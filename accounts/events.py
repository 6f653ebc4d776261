"""Real-time topic names and event payloads of the accounts app (common.realtime)."""

from typing import Any

SESSION_REVOKED = "session.revoked"


def user_group_name(user_id: int) -> str:
    """The topic every open WebSocket of one user listens to ("user.42")."""
    return "user." + str(int(user_id))


def session_revoked_event() -> dict[str, Any]:
    """Sent to the user's topic when their sessions end: sockets close."""
    return {"type": SESSION_REVOKED}
