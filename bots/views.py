"""HTML pages of the bots app: a bot's page with its "Start" form (and,
for moderators of group chats, "Add to a chat"), and the inline buttons of
bots' messages as plain POST forms, so that all of it works without
JavaScript."""

from typing import cast

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.models import User
from bots import selectors, services
from bots.models import Bot
from common.errors import ApplicationError, NotFound


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _bot_or_404(*, user: User, username: str) -> Bot:
    try:
        return selectors.bot_get_for_page(user=user, username=username)
    except NotFound:
        raise Http404() from None


@login_required
@require_GET
def bot_list_view(request: HttpRequest) -> HttpResponse:
    """The bots the person may start."""
    return render(request, "bots/list.html", {"bots": selectors.bot_showcase_list(user=_user(request))})


@login_required
@require_GET
def bot_detail_view(request: HttpRequest, username: str) -> HttpResponse:
    user = _user(request)
    bot = _bot_or_404(user=user, username=username)
    may_start = selectors.user_may_start(user=user, bot=bot)
    return render(
        request,
        "bots/detail.html",
        {
            "bot": bot,
            "may_start": may_start,
            "chat_id": selectors.bot_direct_chat_id(bot=bot, user=user),
            "group_chats": selectors.group_chats_moderated(user=user) if may_start else [],
        },
    )


@login_required
@require_POST
def bot_start_view(request: HttpRequest, username: str) -> HttpResponse:
    """Start: the direct chat with the bot opens and the bot gets /start."""
    user = _user(request)
    bot = _bot_or_404(user=user, username=username)
    try:
        chat = services.bot_start(user=user, bot=bot)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("bots:detail", username=bot.username)
    return redirect("chats:detail", chat_id=chat.pk)


@login_required
@require_POST
def bot_chat_add_view(request: HttpRequest, username: str) -> HttpResponse:
    user = _user(request)
    bot = _bot_or_404(user=user, username=username)
    chat_id = request.POST.get("chat_id", "")
    if not chat_id.isdigit():
        flash.error(request, _("Choose a chat."))
        return redirect("bots:detail", username=bot.username)
    try:
        services.bot_chat_add(actor=user, bot=bot, chat_id=int(chat_id))
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("bots:detail", username=bot.username)
    flash.success(request, _("The bot was added to the chat."))
    return redirect("chats:detail", chat_id=int(chat_id))


@login_required
@require_POST
def button_press_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    """An inline button of a bot's message (value "row:column")."""
    row, _separator, column = request.POST.get("button", "").partition(":")
    try:
        services.button_press(user=_user(request), chat_id=chat_id, seq=seq, row=row, column=column)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        if "application/json" in request.headers.get("Accept", ""):
            return HttpResponse(status=error.status_code)
        flash.error(request, error.message)
    else:
        if "application/json" in request.headers.get("Accept", ""):
            return HttpResponse(status=204)
        flash.success(request, _("Sent to the bot."))
    return HttpResponseRedirect(reverse("chats:detail", args=[chat_id]) + f"#m{seq}")
