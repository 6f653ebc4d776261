"""HTML pages of the migration: following an SMS invitation into a migrated chat."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from common.errors import ApplicationError
from migration import services


@login_required
@require_http_methods(["GET", "POST"])
def invitation_view(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows the chat the link invites to; POST joins it. A signed-out
    visitor signs in first (login_required brings them back here)."""
    try:
        invitation = services.invitation_get(token=token)
        if request.method == "POST":
            chat = services.invitation_accept(user=request.user, token=token)  # type: ignore[arg-type]
            return redirect("chats:detail", chat_id=chat.pk)
    except ApplicationError as error:
        return render(
            request, "migration/invitation_refused.html", {"message": error.message}, status=error.status_code
        )
    return render(request, "migration/invitation.html", {"invitation": invitation, "chat": invitation.chat})
