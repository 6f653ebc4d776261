"""HTML pages of broadcast channels: the list (subscriptions and the public
channels one may subscribe to), creating a channel, a channel with its posts
("Ознакомлен" buttons, statistics for editors, the editors' post form, a
private reply to the author) and a post's statistics. Plain forms and links:
everything works without JavaScript.

Views are interfaces: they parse a form, call one service or selector and
render or redirect. A refusal comes back as an ApplicationError whose message
is shown on the page."""

from typing import Any, cast

from django import forms
from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from chats import selectors
from chats.forms import client_id_new
from chats.models import MESSAGE_MAX_LENGTH, Chat, Message, MessageKind, ScheduledMessage
from chats.services import channels
from chats.services import chats as chat_services
from chats.services.messages import message_send_rate_check
from chats.views import NAME_SAMPLES, PROTOTYPE_SEQ
from common.errors import ApplicationError, NotFound
from organisations.models import Membership, Organisation, Role
from organisations.selectors import contact_is_allowed

CHANNELS_PAGE_SIZE = 20
POSTS_PAGE_SIZE = 20
STATISTICS_PAGE_SIZE = 50
# A channel has a few editors; safe mode is checked for at most this many.
EDITORS_CHECKED = 50


# --- Forms -------------------------------------------------------------------------------


class PlainForm(forms.Form):
    """Labels without a trailing colon (a checkbox's label follows the box)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ChannelCreateForm(PlainForm):
    organisation = forms.ModelChoiceField(queryset=Organisation.objects.none(), label=gettext_lazy("Organisation"))
    title = forms.CharField(label=gettext_lazy("Title"), max_length=channels.CHANNEL_TITLE_MAX_LENGTH)
    description = forms.CharField(
        label=gettext_lazy("Description"),
        required=False,
        max_length=channels.CHANNEL_DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    is_public = forms.BooleanField(
        label=gettext_lazy("Anyone may subscribe from the directory"),
        required=False,
        help_text=gettext_lazy("Members of the organisation are subscribed in any case."),
    )

    def __init__(self, *args: Any, organisations: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = cast(forms.ModelChoiceField, self.fields["organisation"])
        field.queryset = organisations


class ChannelPostForm(PlainForm):
    body = forms.CharField(
        label=gettext_lazy("Post"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MESSAGE_MAX_LENGTH}),
    )
    client_id = forms.CharField(max_length=64, widget=forms.HiddenInput)
    requires_acknowledgement = forms.BooleanField(
        label=gettext_lazy("Ask readers to confirm they have read it"), required=False
    )
    escalate_after_hours = forms.IntegerField(
        label=gettext_lazy("SMS to parents of students who have not confirmed after, hours"),
        required=False,
        min_value=1,
        max_value=channels.ESCALATE_AFTER_HOURS_MAX,
        help_text=gettext_lazy("Leave empty for no SMS."),
    )


class PrivateReplyForm(PlainForm):
    body = forms.CharField(
        label=gettext_lazy("Private reply to the author"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": MESSAGE_MAX_LENGTH}),
    )
    client_id = forms.CharField(max_length=64, widget=forms.HiddenInput)


# --- Helpers --------------------------------------------------------------------------------


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _int_param(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 18:
        return None
    return int(value)


def _channel_or_404(*, user: User, chat_id: int) -> Chat:
    try:
        return channels.channel_get(user=user, chat_id=chat_id)
    except NotFound:
        raise Http404() from None


def _detail_url(chat_id: int, *, anchor: str = "") -> str:
    return reverse("chats:channel_detail", args=[chat_id]) + (f"#{anchor}" if anchor else "")


def _organisations_to_create_in(user: User) -> Any:
    """Organisations where the person is an administrator themselves: the
    choice of the create form (an authority's administrators create the
    channels of schools below it through the API)."""
    return Organisation.objects.filter(
        pk__in=Membership.objects.active().filter(user=user, role=Role.ADMINISTRATOR).values("organisation_id")
    ).order_by("short_name", "id")


# --- The list and creating ---------------------------------------------------------------


@login_required
@require_GET
def channel_list_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    organisation_id = _int_param(request.GET.get("organisation"))
    chats = channels.channel_list(user=user, organisation_id=organisation_id)
    page = Paginator(chats, CHANNELS_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "chats/channel_list.html",
        {
            "page": page,
            "items": [
                {
                    "chat": chat,
                    "is_verified": channels.channel_is_verified(chat),
                    "awaiting": channels.awaiting_acknowledgement_count(chat),
                }
                for chat in page
            ],
            "query_string": query.urlencode(),
            "organisation_id": organisation_id,
            "may_create": _organisations_to_create_in(user).exists(),
        },
    )


@login_required
@require_http_methods(["GET", "POST"])
def channel_create_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    organisations = _organisations_to_create_in(user)
    form = ChannelCreateForm(request.POST or None, organisations=organisations)
    if request.method == "POST" and form.is_valid():
        try:
            chat = channels.channel_create(
                actor=user,
                organisation=form.cleaned_data["organisation"],
                title=form.cleaned_data["title"],
                description=form.cleaned_data["description"],
                is_public=form.cleaned_data["is_public"],
            )
        except ApplicationError as error:
            form.add_error(None, error.message)
        else:
            flash.success(request, _("The channel is created."))
            return redirect("chats:channel_detail", chat_id=chat.pk)
    return render(request, "chats/channel_form.html", {"form": form, "has_organisations": organisations.exists()})


# --- One channel ---------------------------------------------------------------------------


def _detail_page(
    request: HttpRequest, *, chat: Chat, post_form: ChannelPostForm | None = None, status: int = 200
) -> HttpResponse:
    user = _user(request)
    context: dict[str, Any] = {
        "chat": chat,
        "is_verified": channels.channel_is_verified(chat),
        "time_zone": selectors.chat_time_zone(user=user, chat=chat),
        "may_manage": channels.channel_may_manage(user=user, chat=chat),
    }
    if not getattr(chat, "is_subscribed", False):
        return render(request, "chats/channel_detail.html", context, status=status)
    member = channels.channel_member_get(user=user, chat_id=chat.pk)
    before = _int_param(request.GET.get("before"))
    posts, has_older = channels.channel_posts_page(member=member, before_seq=before, limit=POSTS_PAGE_SIZE)
    state = channels.channel_posts_state(member=member, posts=posts)
    if posts:
        # Opening the channel reads what it shows (never moves the position back).
        chat_services.chat_read_mark(user=user, chat_id=chat.pk, seq=posts[-1].seq)
    is_editor = member.role in channels.EDITOR_ROLES
    # A child in safe mode sees the private reply only under posts of its
    # contacts (the service refuses the others): one check per author shown,
    # and per editor for the posts that arrive while the page is open.
    repliable: dict[int, bool] = {}
    authors = [post.author for post in posts if post.author is not None]
    for author in [*authors, *channels.channel_editors(chat_id=chat.pk, limit=EDITORS_CHECKED)]:
        if author.pk == user.pk or author.pk in repliable:
            continue
        repliable[author.pk] = not user.is_safe_mode or contact_is_allowed(actor=author, child=user)
    if is_editor and post_form is None:
        post_form = ChannelPostForm(initial={"client_id": client_id_new()})
    context.update(
        {
            "member": member,
            "is_editor": is_editor,
            "rows": [
                {
                    "post": post,
                    "is_acknowledged": post.pk in state.acknowledged_ids,
                    "summary": state.summaries.get(post.pk),
                    "may_reply": repliable.get(post.author_id or 0, False),
                    "reply_client_id": client_id_new(),
                }
                for post in posts
            ],
            "subscribers": state.subscribers,
            "has_older": has_older,
            "first_seq": posts[0].seq if posts else None,
            "before": before,
            "post_form": post_form if is_editor else None,
            "last_seq": posts[-1].seq if posts else 0,
            **_live_context(
                chat=chat,
                member=member,
                subscribers=state.subscribers,
                repliable=sorted(pk for pk, allowed in repliable.items() if allowed),
            ),
        }
    )
    return render(request, "chats/channel_detail.html", context, status=status)


def _live_context(*, chat: Chat, member: Any, subscribers: int | None, repliable: list[int]) -> dict[str, Any]:
    """The prototype and texts static/js/chats.js needs to add the posts that
    arrive over the socket with the page's own markup and wording."""
    post = Message(
        chat=chat,
        seq=PROTOTYPE_SEQ,
        kind=MessageKind.TEXT,
        body="",
        created_at=timezone.now(),
        requires_acknowledgement=True,
    )
    is_editor = member.role in channels.EDITOR_ROLES
    return {
        "prototype_post": {
            "post": post,
            "is_acknowledged": False,
            "summary": channels.PostSummary(read=0, acknowledged=0) if is_editor else None,
            "may_reply": True,
            "reply_client_id": "",
        },
        **NAME_SAMPLES,
        "live": {
            "page": "channel",
            "placeholders": {"seq": PROTOTYPE_SEQ},
            "isEditor": is_editor,
            "subscribers": subscribers,
            # Authors a private reply may go to (a child in safe mode: its
            # contacts only); the service checks again.
            "repliable": repliable,
            "texts": {
                "deleted": _("Message deleted"),
                "edited": _("(edited)"),
                "parta": _("Parta"),
                "confirmed": _("You have confirmed"),
                "archived": _("This channel has been closed."),
                "left": _("You are no longer subscribed to this channel."),
            },
        },
    }


@login_required
@require_http_methods(["GET", "POST"])
def channel_detail_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    """The channel; a POST is an editor's new post (the form comes back with
    the text and the error when it is refused)."""
    user = _user(request)
    chat = _channel_or_404(user=user, chat_id=chat_id)
    if request.method == "GET":
        return _detail_page(request, chat=chat)
    form = ChannelPostForm(request.POST)
    if form.is_valid():
        try:
            message_send_rate_check(user=user)
            message, _created = channels.channel_post(
                user=user,
                chat_id=chat_id,
                body=form.cleaned_data["body"],
                client_id=form.cleaned_data["client_id"],
                requires_acknowledgement=form.cleaned_data["requires_acknowledgement"],
                escalate_after_hours=form.cleaned_data["escalate_after_hours"],
            )
        except NotFound:
            raise Http404() from None
        except ApplicationError as error:
            field = error.extra.get("field")
            form.add_error(field if field in form.fields else None, error.message)
        else:
            return redirect(_detail_url(chat_id, anchor=f"p{message.seq}"))
    return _detail_page(request, chat=chat, post_form=form, status=400)


@login_required
@require_POST
def channel_subscribe_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    try:
        _member, created = channels.channel_subscribe(user=_user(request), chat_id=chat_id)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
    else:
        if created:
            flash.success(request, _("You are subscribed to the channel."))
    return redirect("chats:channel_detail", chat_id=chat_id)


@login_required
@require_POST
def channel_unsubscribe_view(request: HttpRequest, chat_id: int) -> HttpResponse:
    try:
        channels.channel_unsubscribe(user=_user(request), chat_id=chat_id)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("chats:channel_detail", chat_id=chat_id)
    flash.success(request, _("You have unsubscribed from the channel."))
    return redirect("chats:channel_list")


@login_required
@require_POST
def channel_acknowledge_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    try:
        channels.acknowledgement_create(user=_user(request), chat_id=chat_id, seq=seq)
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
    before = _int_param(request.POST.get("before"))
    url = reverse("chats:channel_detail", args=[chat_id]) + (f"?before={before}" if before else "")
    return redirect(url + f"#p{seq}")


@login_required
@require_POST
def channel_reply_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    form = PrivateReplyForm(request.POST)
    if not form.is_valid():
        flash.error(request, _("Write a reply."))
        return redirect(_detail_url(chat_id, anchor=f"p{seq}"))
    try:
        message_send_rate_check(user=_user(request))
        reply = channels.private_reply_send(
            user=_user(request),
            chat_id=chat_id,
            seq=seq,
            body=form.cleaned_data["body"],
            client_id=form.cleaned_data["client_id"],
        )
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect(_detail_url(chat_id, anchor=f"p{seq}"))
    if isinstance(reply.message, ScheduledMessage):
        flash.info(request, _("The author takes messages during office hours; your reply will be delivered then."))
    else:
        flash.success(request, _("Your reply is sent privately to the author."))
    return redirect("chats:detail", chat_id=reply.chat.pk)


@login_required
@require_GET
def channel_statistics_view(request: HttpRequest, chat_id: int, seq: int) -> HttpResponse:
    user = _user(request)
    page_number = max(1, _int_param(request.GET.get("page")) or 1)
    try:
        statistics = channels.post_statistics_get(
            user=user,
            chat_id=chat_id,
            seq=seq,
            offset=(page_number - 1) * STATISTICS_PAGE_SIZE,
            limit=STATISTICS_PAGE_SIZE,
        )
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("chats:channel_detail", chat_id=chat_id)
    pages = max(1, -(-statistics.not_acknowledged_count // STATISTICS_PAGE_SIZE))
    return render(
        request,
        "chats/channel_statistics.html",
        {
            "chat": statistics.post.chat,
            "statistics": statistics,
            "page_number": page_number,
            "pages": pages,
            "previous_page": page_number - 1 if page_number > 1 else None,
            "next_page": page_number + 1 if page_number < pages and statistics.names_shown else None,
            "time_zone": selectors.chat_time_zone(user=user, chat=statistics.post.chat),
        },
    )


urlpatterns = [
    path("channels/", channel_list_view, name="channel_list"),
    path("channels/new/", channel_create_view, name="channel_create"),
    path("channels/<int:chat_id>/", channel_detail_view, name="channel_detail"),
    path("channels/<int:chat_id>/subscribe/", channel_subscribe_view, name="channel_subscribe"),
    path("channels/<int:chat_id>/unsubscribe/", channel_unsubscribe_view, name="channel_unsubscribe"),
    path(
        "channels/<int:chat_id>/posts/<int:seq>/acknowledge/",
        channel_acknowledge_view,
        name="channel_acknowledge",
    ),
    path("channels/<int:chat_id>/posts/<int:seq>/reply/", channel_reply_view, name="channel_reply"),
    path("channels/<int:chat_id>/posts/<int:seq>/stats/", channel_statistics_view, name="channel_statistics"),
]
