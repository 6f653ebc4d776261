"""HTML pages of chats: the list and one chat. They work as plain forms and
links without JavaScript; static/js/chats.js adds live updates on top.

Views are interfaces: they parse a form, call one service or selector and
render or redirect. Every rule (membership, posting, moderation, safe mode)
is the services'; a refusal comes back as an ApplicationError whose message
is shown next to the form that caused it."""

import datetime
import zoneinfo
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.db.models import prefetch_related_objects
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from chats import selectors
from chats.forms import (
    DirectChatForm,
    EditForm,
    MessageForm,
    MuteForm,
    PeopleSearchForm,
    PollCreateForm,
    ReactionForm,
    ReportForm,
    client_id_new,
)
from chats.models import ChatKind, MemberRole, Message, MessageKind, ScheduledMessage
from chats.services import chats as chat_services
from chats.services import content, messages, moderation
from common.errors import ApplicationError, NotFound
from organisations.selectors import people_search

MESSAGES_PAGE_SIZE = 30
CHATS_PAGE_SIZE = 50
PEOPLE_SHOWN = 20
# What chats.js copies when it adds a message, a poll, a member or a chat
# that arrived over the socket: the page's own includes rendered once for
# placeholder ids that the script replaces.
PROTOTYPE_SEQ = 987654321
PROTOTYPE_POLL = 987654322
PROTOTYPE_USER = 987654323
PROTOTYPE_CHAT = 987654324
# The names chats.js copies: {% user_name %} with the cap and with the
# look-alike warning.
NAME_SAMPLES = {
    "verified_sample": SimpleNamespace(display_name="", is_verified_educator=True),
    "flagged_sample": SimpleNamespace(display_name="", is_verified_educator=False, is_name_flagged=True),
}
SCHEDULED_TEXT = gettext_lazy(
    "The teacher takes messages during office hours. Your message will be delivered on %(when)s."
)


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _member_or_404(*, user: User, chat_id: int) -> Any:
    try:
        return selectors.chat_member_get(user=user, chat_id=chat_id)
    except NotFound:
        raise Http404() from None


def _int_param(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


# --- The chat list ---------------------------------------------------------------------------


@login_required
@require_GET
def chat_list_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    offset = _int_param(request.GET.get("offset")) or 0
    items = selectors.chat_list(user=user, offset=offset, limit=CHATS_PAGE_SIZE + 1)
    has_more = len(items) > CHATS_PAGE_SIZE
    # Channels have their own page; the list links to it.
    chats = [item for item in items[:CHATS_PAGE_SIZE] if item.chat.kind != ChatKind.CHANNEL]
    search_form = PeopleSearchForm(request.GET if "q" in request.GET else None)
    time_zone = selectors.chat_time_zone(user=user)
    people: list[User] = []
    if search_form.is_bound and search_form.is_valid():
        people = list(people_search(user=user, query=search_form.cleaned_data["q"])[:PEOPLE_SHOWN])
    return render(
        request,
        "chats/list.html",
        {
            "chats": chats,
            "next_offset": offset + CHATS_PAGE_SIZE if has_more else None,
            "previous_offset": max(0, offset - CHATS_PAGE_SIZE) if offset else None,
            "search_form": search_form,
            "people": people,
            "channels_url": reverse("chats:channel_list"),
            "time_zone": time_zone,
            # What chats.js needs to add the chats one joins while the list is open.
            **NAME_SAMPLES,
            "prototype_chat": SimpleNamespace(
                chat=SimpleNamespace(pk=PROTOTYPE_CHAT, last_seq=0, is_verified=True, get_kind_display=""),
                title="",
                unread_count=0,
                last_message=None,
                other_user=None,
            ),
            "live": {
                "page": "list",
                "placeholders": {"chat": PROTOTYPE_CHAT},
                "texts": {
                    "deleted": _("Message deleted"),
                    "parta": _("Parta"),
                    "kinds": {str(value): capfirst(str(label)) for value, label in ChatKind.choices},
                },
            },
        },
    )


@login_required
@require_POST
def direct_chat_start_view(request: HttpRequest) -> HttpResponse:
    """Open (creating on first use) the direct chat with a person found in
    the search; a child in safe mode is reached only by their contacts."""
    form = DirectChatForm(request.POST)
    if not form.is_valid():
        raise Http404()
    try:
        chat, _created = chat_services.direct_chat_get_or_create(
            user=_user(request), other=form.cleaned_data["user_id"]
        )
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("chats:list")
    return redirect("chats:detail", chat_id=chat.pk)


# --- One chat --------------------------------------------------------------------------------


@dataclass
class MessageRow:
    """A message with what the page shows around it."""

    message: Message
    attachments: list[dict[str, Any]] = field(default_factory=list)
    reactions: list[tuple[str, int, bool]] = field(default_factory=list)
    poll: dict[str, Any] | None = None
    seen: tuple[int, int] | None = None
    day: str = ""
    is_own: bool = False
    may_edit: bool = False
    may_delete: bool = False
    is_pinned: bool = False


def _message_rows(
    *, user: User, member: Any, page: list[Message], time_zone: str, pinned: set[int]
) -> list[MessageRow]:
    """Rows for a page of messages in a fixed number of queries, whatever
    its size: authors come with the messages, replied-to authors in one
    query, content (files, reactions, polls) in a few, receipts in two."""
    prefetch_related_objects(page, "reply_to__author")
    shown = content.messages_content(user=user, messages_shown=page)
    may_moderate = selectors.member_may_moderate(member)
    seen: dict[int, tuple[int, int]] = {}
    if selectors.member_may_see_receipts(member):
        seen = selectors.message_seen_counts(
            chat=member.chat, seqs=[message.seq for message in page if message.author_id == user.pk]
        )
    zone = zoneinfo.ZoneInfo(time_zone)
    now = timezone.now()
    rows = []
    previous_day: datetime.date | None = None
    for message in page:
        extra = shown.get(message.pk, {})
        day = message.created_at.astimezone(zone).date()
        is_own = message.author_id == user.pk
        is_live = message.deleted_at is None
        mine = set(extra.get("my_reactions", []))
        rows.append(
            MessageRow(
                message=message,
                attachments=extra.get("attachments", []),
                reactions=[(emoji, count, emoji in mine) for emoji, count in extra.get("reactions", {}).items()],
                poll=extra.get("poll"),
                seen=seen.get(message.seq),
                day=date_format(day, "j E Y") if day != previous_day else "",
                is_own=is_own,
                may_edit=is_own
                and is_live
                and message.kind == MessageKind.TEXT
                and now - message.created_at <= content.EDIT_WINDOW,
                may_delete=is_live and message.kind != MessageKind.SYSTEM and (is_own or may_moderate),
                is_pinned=message.pk in pinned,
            )
        )
        previous_day = day
    return rows


def _posting_refusal(member: Any) -> tuple[str, str]:
    """Why the person may not post now, and the refusal's code (both "" when
    they may), so that the page says so instead of offering a form that
    would be refused."""
    try:
        messages.posting_check(member=member, now=timezone.now())
    except ApplicationError as error:
        return error.message, error.code
    return "", ""


def _detail_context(
    request: HttpRequest, *, chat_id: int, form: MessageForm | None = None, form_error: str = ""
) -> dict[str, Any]:
    user = _user(request)
    try:
        detail = selectors.chat_detail_get(user=user, chat_id=chat_id)
    except NotFound:
        raise Http404() from None
    member, chat = detail.member, detail.chat
    before = _int_param(request.GET.get("before"))
    after = _int_param(request.GET.get("after"))
    if after is not None:
        page, has_newer = selectors.message_history(chat_id=chat_id, after=after, limit=MESSAGES_PAGE_SIZE)
        has_older = after > 0
        if not page:
            # Nothing after: the newest page.
            page, has_older = selectors.message_history(chat_id=chat_id, limit=MESSAGES_PAGE_SIZE)
            has_newer = False
    else:
        page, has_older = selectors.message_history(chat_id=chat_id, before=before, limit=MESSAGES_PAGE_SIZE)
        has_newer = bool(page) and page[-1].seq < chat.last_seq
    is_latest = not has_newer
    time_zone = selectors.chat_time_zone(user=user, chat=chat)
    pinned = {pin.message_id for pin in detail.pins}
    rows = _message_rows(user=user, member=member, page=page, time_zone=time_zone, pinned=pinned)
    if page:
        # Opening a chat reads what it shows (never moves the position back).
        chat_services.chat_read_mark(user=user, chat_id=chat_id, seq=page[-1].seq)
    reply_message = None
    reply_seq = _int_param(request.POST.get("reply_to") if form is not None else request.GET.get("reply"))
    if reply_seq is not None:
        try:
            reply_message = selectors.message_get(chat_id=chat_id, seq=reply_seq)
        except NotFound:
            reply_message = None
    if reply_message is not None and reply_message.deleted_at is not None:
        reply_message = None
    if form is None:
        form = MessageForm(
            initial={"client_id": client_id_new(), "reply_to": reply_message.seq if reply_message else None}
        )
    may_moderate = selectors.member_may_moderate(member)
    is_staff = selectors.member_is_staff(member)
    posting_refusal, posting_refusal_code = _posting_refusal(member)
    return {
        "chat": chat,
        "detail": detail,
        "member": member,
        "rows": rows,
        "has_older": has_older,
        "has_newer": has_newer,
        "is_latest": is_latest,
        "first_seq": page[0].seq if page else 0,
        "last_seq": page[-1].seq if page else 0,
        "form": form,
        "form_error": form_error,
        "reply_message": reply_message,
        "posting_refusal": posting_refusal,
        "may_moderate": may_moderate,
        "is_staff": is_staff,
        "pins": [pin for pin in detail.pins if pin.message.deleted_at is None],
        "reactions_available": content.REACTIONS,
        "time_zone": time_zone,
        "mute_form": MuteForm() if may_moderate else None,
        "channels_url": reverse("chats:channel_list"),
        "now": timezone.now(),
        **_live_context(
            chat=chat,
            member=member,
            members_count=detail.members_count,
            posting_refusal_code=posting_refusal_code,
            may_moderate=may_moderate,
            is_staff=is_staff,
        ),
    }


def _size_texts() -> dict[str, Any]:
    """filesizeformat's wording with a "%(size)s" for the number, taken from
    filesizeformat itself (for files that arrive live)."""
    one = number_format(1.0, 1)
    return {
        "KB": filesizeformat(1024).replace(one, "%(size)s"),
        "MB": filesizeformat(1024**2).replace(one, "%(size)s"),
        "GB": filesizeformat(1024**3).replace(one, "%(size)s"),
        # Plural forms of "N bytes", by the CLDR category chats.js asks for.
        "bytes": {
            category: filesizeformat(count).replace(str(count), "%(size)s", 1)
            for category, count in (("one", 1), ("few", 2), ("many", 5), ("other", 5))
        },
    }


def _live_context(
    *, chat: Any, member: Any, members_count: int, posting_refusal_code: str, may_moderate: bool, is_staff: bool
) -> dict[str, Any]:
    """The prototypes and texts static/js/chats.js needs to apply the socket's
    events with the page's own markup and wording."""
    now = timezone.now()
    message = Message(chat=chat, seq=PROTOTYPE_SEQ, kind=MessageKind.TEXT, body="", created_at=now)
    nobody = SimpleNamespace(display_name="", is_verified_educator=False, is_name_flagged=False, pk=PROTOTYPE_USER)
    return {
        "prototype_own": MessageRow(message=message, is_own=True, may_edit=True, may_delete=True),
        "prototype_other": MessageRow(message=message, may_delete=may_moderate),
        "prototype_poll": {
            "id": PROTOTYPE_POLL,
            "question": "",
            "options": [{"id": 0, "text": "", "votes": 0}],
            "my_votes": [],
            "voters_count": 0,
            "allows_multiple": False,
            "is_anonymous": False,
            "is_closed": False,
        },
        "prototype_member": SimpleNamespace(
            user=nobody,
            user_id=PROTOTYPE_USER,
            role=MemberRole.MEMBER,
            muted_until=None,
            get_role_display=lambda: "",
        ),
        **NAME_SAMPLES,
        "live": {
            "page": "chat",
            "placeholders": {"seq": PROTOTYPE_SEQ, "poll": PROTOTYPE_POLL, "user": PROTOTYPE_USER},
            "isStaff": is_staff,
            "mayModerate": may_moderate,
            "membersCount": members_count,
            "mutedUntil": member.muted_until.isoformat() if member.muted_until else None,
            "postingRefusal": posting_refusal_code,
            # Texts with placeholders that chats.js fills in, the same
            # messages as the page's (a template's {% translate %} would
            # double the "%").
            "texts": {
                "deleted": _("Message deleted"),
                "edited": _("(edited)"),
                "replyTo": _("In reply to"),
                "parta": _("Parta"),
                "typing": _("%(name)s is typing…"),
                "scheduled": str(SCHEDULED_TEXT),
                "voted": _("Voted: %(count)s"),
                "members": _("Members: %(count)s"),
                "membersSummary": _("Members (%(count)s)"),
                "hours": _("students post from %(opens)s to %(closes)s"),
                "announcementOnly": _("Only teachers post in this chat now."),
                "muted": _("You are muted in this chat."),
                "archived": _("This chat has been closed."),
                "left": _("You are no longer a member of this chat."),
                "seen": _("Seen by %(seen)s of %(total)s"),
                "sizes": _size_texts(),
            },
        },
    }


def _send(request: HttpRequest, *, chat_id: int) -> HttpResponse:
    """The send form: a message with an optional file. The hidden client_id
    makes a repeated submit (a double click, a reload) one message."""
    user = _user(request)
    form = MessageForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "chats/detail.html", _detail_context(request, chat_id=chat_id, form=form), status=400)
    data = form.cleaned_data
    upload = data.get("attachment")
    try:
        attachment = None
        if upload is not None:
            sent = _message_by_client_id(user=user, chat_id=chat_id, client_id=data["client_id"])
            if sent is not None:
                return HttpResponseRedirect(_message_url(chat_id=chat_id, seq=sent))
        messages.message_send_rate_check(user=user)
        if upload is not None:
            attachment = content.attachment_upload(user=user, chat_id=chat_id, upload=upload)
        message, _created = content.message_send_with_attachments(
            user=user,
            chat_id=chat_id,
            # A file alone is sent under its name.
            body=data["body"] or (attachment.original_name if attachment is not None else ""),
            attachment_ids=[attachment.pk] if attachment is not None else [],
            client_id=data["client_id"],
            reply_to_seq=data.get("reply_to"),
        )
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        if error.code == "client_id_conflict":
            # The same form sent again with another text: a new message.
            fresh = request.POST.copy()
            fresh["client_id"] = client_id_new()
            form = MessageForm(fresh)
        context = _detail_context(request, chat_id=chat_id, form=form, form_error=error.message)
        response = render(request, "chats/detail.html", context, status=error.status_code)
        if error.retry_after:
            response["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(message, ScheduledMessage):
        local = timezone.localtime(message.deliver_at, zoneinfo.ZoneInfo(selectors.chat_time_zone(user=user)))
        flash.info(request, str(SCHEDULED_TEXT) % {"when": date_format(local, "j E, H:i")})
        return redirect("chats:detail", chat_id=chat_id)
    return HttpResponseRedirect(reverse("chats:detail", args=[chat_id]) + f"#m{message.seq}")


def _message_by_client_id(*, user: User, chat_id: int, client_id: str) -> int | None:
    """The seq of the person's message already sent with this client_id: a
    form with a file sent twice must not upload the file twice."""
    return (
        Message.objects.filter(chat_id=chat_id, author=user, client_id=client_id).values_list("seq", flat=True).first()
    )


@login_required
@require_http_methods(["GET", "POST"])
def chat_detail_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    user = _user(request)
    member = _member_or_404(user=user, chat_id=chat_id)
    if member.chat.kind == ChatKind.CHANNEL:
        return redirect("chats:channel_detail", chat_id=chat_id)
    if request.method == "POST":
        return _send(request, chat_id=chat_id)
    return render(request, "chats/detail.html", _detail_context(request, chat_id=chat_id))


def _message_url(*, chat_id: int, seq: int) -> str:
    """The chat's page showing message `seq`: the newest page when it is on
    it, else the older page that ends with it."""
    url = reverse("chats:detail", args=[chat_id])
    newest, _has_older = selectors.message_history(chat_id=chat_id, limit=MESSAGES_PAGE_SIZE)
    if newest and seq < newest[0].seq:
        url += f"?before={seq + 1}"
    return url + f"#m{seq}"


def _wants_json(request: HttpRequest) -> bool:
    """A form sent by chats.js (fetch, asking for JSON): the page stays and
    the socket's event shows the result, so the answer is only whether it
    worked."""
    return "application/json" in request.headers.get("Accept", "")


def _live_answer(error: ApplicationError | None = None) -> JsonResponse:
    if error is None:
        return JsonResponse({"ok": True})
    return JsonResponse({"detail": error.message, "code": error.code}, status=error.status_code)


def _action(request: HttpRequest, *, chat_id: int, seq: int, done: str, call: Any) -> HttpResponse:
    """Run a POST action on a message and go back to it; a refusal is shown
    at the top of the page."""
    _member_or_404(user=_user(request), chat_id=chat_id)
    try:
        call()
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        if _wants_json(request):
            return _live_answer(error)
        flash.error(request, error.message)
    else:
        if _wants_json(request):
            return _live_answer()
        if done:
            flash.success(request, done)
    return HttpResponseRedirect(_message_url(chat_id=chat_id, seq=seq))


@login_required
@require_POST
def message_delete_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    return _action(
        request,
        chat_id=chat_id,
        seq=seq,
        done=_("The message was deleted."),
        call=lambda: moderation.message_delete(actor=user, chat_id=chat_id, seq=seq),
    )


@login_required
@require_POST
def message_pin_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    if request.POST.get("action") == "unpin":
        return _action(
            request,
            chat_id=chat_id,
            seq=seq,
            done=_("The message was unpinned."),
            call=lambda: content.pin_remove(user=user, chat_id=chat_id, seq=seq),
        )
    return _action(
        request,
        chat_id=chat_id,
        seq=seq,
        done=_("The message was pinned."),
        call=lambda: content.pin_add(user=user, chat_id=chat_id, seq=seq),
    )


@login_required
@require_POST
def message_react_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    form = ReactionForm(request.POST)
    emoji = form.cleaned_data["emoji"] if form.is_valid() else ""
    return _action(
        request,
        chat_id=chat_id,
        seq=seq,
        done="",
        call=lambda: content.reaction_toggle(user=user, chat_id=chat_id, seq=seq, emoji=emoji),
    )


@login_required
@require_POST
def poll_vote_view(request: HttpRequest, chat_id: int, seq: int, poll_id: int) -> HttpResponse:
    user = _user(request)
    option_ids = [int(value) for value in request.POST.getlist("option") if value.isdigit() and len(value) < 18]
    return _action(
        request,
        chat_id=chat_id,
        seq=seq,
        done=_("Your vote was counted.") if option_ids else _("Your vote was withdrawn."),
        call=lambda: content.poll_vote(user=user, chat_id=chat_id, poll_id=poll_id, option_ids=option_ids),
    )


@login_required
@require_POST
def poll_close_view(request: HttpRequest, chat_id: int, seq: int, poll_id: int) -> HttpResponse:
    user = _user(request)
    return _action(
        request,
        chat_id=chat_id,
        seq=seq,
        done=_("The poll was closed."),
        call=lambda: content.poll_close(user=user, chat_id=chat_id, poll_id=poll_id),
    )


@login_required
@require_http_methods(["GET", "POST"])
def message_edit_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    member = _member_or_404(user=user, chat_id=chat_id)
    try:
        message = selectors.message_get(chat_id=chat_id, seq=seq)
    except NotFound:
        raise Http404() from None
    error = ""
    status = 200
    if request.method == "POST":
        form = EditForm(request.POST)
        if form.is_valid():
            try:
                content.message_edit(user=user, chat_id=chat_id, seq=seq, body=form.cleaned_data["body"])
            except NotFound:
                raise Http404() from None
            except ApplicationError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                return HttpResponseRedirect(_message_url(chat_id=chat_id, seq=seq))
        else:
            status = 400
    else:
        form = EditForm(initial={"body": message.body})
    return render(
        request,
        "chats/message_edit.html",
        {"chat": member.chat, "message": message, "form": form, "form_error": error},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def message_report_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    member = _member_or_404(user=user, chat_id=chat_id)
    try:
        message = selectors.message_get(chat_id=chat_id, seq=seq)
    except NotFound:
        raise Http404() from None
    error = ""
    status = 200
    form = ReportForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                moderation.message_report(user=user, chat_id=chat_id, seq=seq, reason=form.cleaned_data["reason"])
            except NotFound:
                raise Http404() from None
            except ApplicationError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                flash.success(request, _("Thank you. The chat's moderators will look at the message."))
                return HttpResponseRedirect(_message_url(chat_id=chat_id, seq=seq))
        else:
            status = 400
    return render(
        request,
        "chats/message_report.html",
        {"chat": member.chat, "message": message, "form": form, "form_error": error},
        status=status,
    )


@login_required
@require_http_methods(["GET", "POST"])
def poll_create_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    """A teacher's poll: a question and up to ten options, one per field."""
    user = _user(request)
    member = _member_or_404(user=user, chat_id=chat_id)
    error = ""
    status = 200
    if request.method == "POST":
        form = PollCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                poll, _created = content.poll_create(
                    user=user,
                    chat_id=chat_id,
                    question=data["question"],
                    options=form.options_list(),
                    allows_multiple=data["allows_multiple"],
                    is_anonymous=data["is_anonymous"],
                    client_id=data["client_id"],
                )
            except NotFound:
                raise Http404() from None
            except ApplicationError as refusal:
                error, status = refusal.message, refusal.status_code
            else:
                return HttpResponseRedirect(reverse("chats:detail", args=[chat_id]) + f"#m{poll.message.seq}")
        else:
            status = 400
    else:
        form = PollCreateForm(initial={"client_id": client_id_new()})
    return render(
        request,
        "chats/poll_create.html",
        {"chat": member.chat, "form": form, "form_error": error},
        status=status,
    )


@login_required
@require_POST
def member_mute_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    user = _user(request)
    _member_or_404(user=user, chat_id=chat_id)
    form = MuteForm(request.POST)
    url = reverse("chats:detail", args=[chat_id]) + "#members"
    if not form.is_valid():
        flash.error(request, _("Choose whom to mute and for how long."))
        return HttpResponseRedirect(url)
    minutes = int(form.cleaned_data["minutes"])
    try:
        moderation.chat_member_mute(actor=user, chat_id=chat_id, user_id=form.cleaned_data["user_id"], minutes=minutes)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        if _wants_json(request):
            return _live_answer(error)
        flash.error(request, error.message)
    else:
        if _wants_json(request):
            return _live_answer()
        flash.success(request, _("The member was muted.") if minutes else _("The member may post again."))
    return HttpResponseRedirect(url)


@login_required
@require_POST
def announcement_mode_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    user = _user(request)
    _member_or_404(user=user, chat_id=chat_id)
    is_on = request.POST.get("is_on") == "1"
    try:
        moderation.chat_announcement_mode_set(actor=user, chat_id=chat_id, is_on=is_on)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        if _wants_json(request):
            return _live_answer(error)
        flash.error(request, error.message)
    else:
        if _wants_json(request):
            return _live_answer()
        flash.success(
            request,
            _("Announcement mode is on: only teachers post.") if is_on else _("Announcement mode is off."),
        )
    return redirect("chats:detail", chat_id=chat_id)
