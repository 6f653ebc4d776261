"""Channel layer group names and event payloads of the accounts app."""

from typing import Any

SESSION_REVOKED = "session.revoked"


def user_group_name(user_id: int) -> str:
    """The group every open WebSocket of one user joins ("user.42")."""
    return "user." + str(int(user_id))


def session_revoked_event() -> dict[str, Any]:
    """Sent to the user's group when their sessions end: consumers close."""
    return {"type": SESSION_REVOKED}
