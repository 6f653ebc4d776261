from typing import Any


class ApplicationError(Exception):
    """A refusal by the service layer that the interfaces turn into a clear
    answer: an HTTP status with `code` and `message`, a form error, or a
    WebSocket error frame."""

    status_code = 400

    def __init__(
        self,
        message: str,
        *,
        code: str = "invalid",
        status_code: int | None = None,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        if status_code is not None:
            self.status_code = status_code
        self.retry_after = retry_after
        self.extra = extra or {}


class RateLimited(ApplicationError):
    status_code = 429

    def __init__(self, message: str, *, retry_after: int, code: str = "rate_limited") -> None:
        super().__init__(message, code=code, retry_after=max(1, int(retry_after)))


class NotFound(ApplicationError):
    status_code = 404

    def __init__(self, message: str = "Not found.", *, code: str = "not_found") -> None:
        super().__init__(message, code=code)


class PermissionDenied(ApplicationError):
    status_code = 403

    def __init__(self, message: str = "Permission denied.", *, code: str = "permission_denied") -> None:
        super().__init__(message, code=code)
