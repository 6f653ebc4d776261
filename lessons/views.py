"""HTML pages of lessons and meetings: the week calendar, scheduling,
a meeting's page with the join button (and, for the host, the lobby, the
guest links and attendance), the guest's page of a link. They work as plain
forms and links without JavaScript; static/js/lessons.js only refreshes the
lobby. The in-call page fills `{% block call %}` of lessons/room.html.

Views are interfaces: parse a form, call one service or selector, render or
redirect; a refusal (ApplicationError) is shown next to what caused it."""

import datetime
from collections.abc import Callable
from typing import Any, cast

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import User
from accounts.network import client_ip
from common.errors import ApplicationError, NotFound, PermissionDenied
from lessons import apis, recordings, schedule, selectors, services
from lessons.forms import (
    CancelForm,
    GuestNameForm,
    LinkForm,
    MeetingCreateForm,
    MeetingForm,
    ReminderPreferenceForm,
    TermForm,
    meeting_initial,
)
from lessons.models import Meeting, Participant, ParticipantRole, ParticipantStatus
from lessons.texts import notification_text

NOTIFICATIONS_SHOWN = 10


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _form_error(form: Any, error: ApplicationError) -> None:
    """A service's refusal next to the field it names, or above the form."""
    field = error.extra.get("field") if error.extra else None
    field_map = {"starts_at": "time", "user_ids": "people", "audience": None, "display_name": "display_name"}
    name = field_map.get(field, field) if field else None
    if name and name in form.fields:
        form.add_error(name, error.message)
    else:
        form.add_error(None, error.message)


def _meeting_or_404(*, user: User, meeting_id: int) -> tuple[Meeting, str]:
    try:
        return selectors.meeting_get(user=user, meeting_id=meeting_id)
    except NotFound:
        raise Http404() from None


def _manage_or_404(*, user: User, meeting_id: int) -> Meeting:
    meeting, role = _meeting_or_404(user=user, meeting_id=meeting_id)
    if role != ParticipantRole.HOST:
        raise Http404()
    return meeting


# --- Calendar ----------------------------------------------------------------------------------------------------


@login_required
@require_GET
def calendar_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    time_zone = selectors.user_time_zone(user=user)
    week_name = request.GET.get("week", "")
    error = ""
    monday = schedule.week_monday(schedule.utc_to_local(timezone.now(), time_zone).date())
    if week_name:
        try:
            monday = schedule.iso_week_parse(week_name)
        except ApplicationError as refusal:
            error = refusal.message
    week = selectors.calendar_week(user=user, monday=monday, time_zone=time_zone)
    notifications = list(selectors.notifications_of_user(user=user, unread_only=True)[:NOTIFICATIONS_SHOWN])
    today = schedule.utc_to_local(timezone.now(), time_zone).date()
    return render(
        request,
        "lessons/calendar.html",
        {
            "week": week,
            "week_error": error,
            "today": today,
            "this_week": schedule.iso_week_name(today),
            "may_schedule": selectors.user_may_schedule_anywhere(user=user),
            "notifications": [
                (notification, notification_text(notification, time_zone=time_zone)) for notification in notifications
            ],
            "reminder_form": ReminderPreferenceForm(initial={"by_sms": selectors.reminder_preference_of(user=user)}),
            "has_phone": bool(user.phone),
        },
    )


@login_required
@require_POST
def reminder_preference_view(request: HttpRequest) -> HttpResponse:
    form = ReminderPreferenceForm(request.POST)
    if form.is_valid():
        try:
            services.reminder_preference_update(user=_user(request), by_sms=form.cleaned_data["by_sms"])
        except ApplicationError as error:
            flash.error(request, error.message)
        else:
            flash.success(request, _("Your reminder choice is saved."))
    return redirect("lessons:calendar")


@login_required
@require_POST
def notifications_read_view(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_read(user=_user(request))
    return redirect("lessons:calendar")


# --- Scheduling and changing ---------------------------------------------------------------------------------------


def _meeting_fields(form: MeetingForm) -> dict[str, Any]:
    """What the scheduling and the editing form give the services alike."""
    data = form.cleaned_data
    return {
        "title": data["title"],
        "description": data["description"],
        "starts_at": form.starts_at(),
        "duration_minutes": data["duration_minutes"],
        "repeats_weekly": data["repeats_weekly"],
        "repeat_until": data["repeat_until"],
        "audience": form.audience(),
        "lobby_for_guests": data["lobby_for_guests"],
        "lobby_for_everyone": data["lobby_for_everyone"],
        "is_recording_enabled": data["is_recording_enabled"],
    }


def _form_submit(
    request: HttpRequest, form: MeetingForm, save: Callable[[], Meeting], *, done: str
) -> HttpResponse | None:
    """The shape both meeting forms share: on a valid POST run the service;
    its refusal goes next to the field it names (None: show the form
    again), success says `done` and goes to the meeting's page."""
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        meeting = save()
    except ApplicationError as error:
        _form_error(form, error)
        return None
    flash.success(request, done)
    return redirect("lessons:detail", meeting_id=meeting.pk)


@login_required
@require_http_methods(["GET", "POST"])
def meeting_create_view(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    organisations = list(selectors.organisations_user_may_schedule_in(user=user))
    if not organisations:
        raise Http404()
    form = MeetingCreateForm(request.POST or None, user=user, organisations=organisations)
    response = _form_submit(
        request,
        form,
        lambda: services.meeting_create(
            actor=user,
            organisation_id=form.cleaned_data["organisation"],
            kind=form.cleaned_data["kind"],
            **_meeting_fields(form),
        ),
        done=_("The meeting is scheduled; the invitees have been told."),
    )
    return response or render(request, "lessons/meeting_form.html", {"form": form, "meeting": None})


@login_required
@require_http_methods(["GET", "POST"])
def meeting_edit_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    meeting = _manage_or_404(user=user, meeting_id=meeting_id)
    organisations = [meeting.organisation]
    audience = selectors.meeting_audience_summary(meeting=meeting)
    form = MeetingForm(
        request.POST or None, user=user, organisations=organisations, initial=meeting_initial(meeting, audience)
    )
    response = _form_submit(
        request,
        form,
        lambda: services.meeting_update(actor=user, meeting_id=meeting.pk, **_meeting_fields(form)),
        done=_("The meeting is changed."),
    )
    return response or render(request, "lessons/meeting_form.html", {"form": form, "meeting": meeting})


@login_required
@require_POST
def meeting_cancel_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    _manage_or_404(user=user, meeting_id=meeting_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        raise Http404()
    try:
        services.meeting_cancel(actor=user, meeting_id=meeting_id, occurrence_id=form.cleaned_data["occurrence"])
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
    else:
        flash.success(request, _("Cancelled; the invitees have been told."))
    return redirect("lessons:detail", meeting_id=meeting_id)


# --- A meeting's page ------------------------------------------------------------------------------------------------


@login_required
@require_GET
def meeting_detail_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    meeting, role = _meeting_or_404(user=user, meeting_id=meeting_id)
    verdict = selectors.join_verdict(meeting=meeting, user=user)
    is_host = role == ParticipantRole.HOST
    context: dict[str, Any] = {
        "meeting": meeting,
        "role": role,
        "is_host": is_host,
        "verdict": verdict,
        "upcoming": selectors.occurrences_upcoming(meeting=meeting),
        "groups": selectors.meeting_audience_groups(meeting=meeting),
        "time_zone": meeting.time_zone,
    }
    if is_host:
        occurrence = selectors.lobby_occurrence(meeting=meeting)
        participants = selectors.participants_of_occurrence(occurrence=occurrence) if occurrence else []
        now = timezone.now()
        context.update(
            {
                "lobby_occurrence": occurrence,
                "waiting": [item for item in participants if item.status == ParticipantStatus.WAITING],
                "present": [item for item in participants if item.status == ParticipantStatus.ADMITTED],
                "links": [
                    (link, apis.link_payload(link, now=now)["state"])
                    for link in selectors.join_links_of_meeting(meeting=meeting)
                ],
                "may_have_guests": not selectors.meeting_has_children(meeting=meeting),
                "link_form": LinkForm(),
            }
        )
    return render(request, "lessons/meeting_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
@never_cache
def meeting_join_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    """POST asks to come in; GET shows where one is (the lobby, or the call)."""
    user = _user(request)
    meeting, _role = _meeting_or_404(user=user, meeting_id=meeting_id)
    if request.method == "POST":
        try:
            services.meeting_join(user=user, meeting_id=meeting.pk)
        except NotFound:
            raise Http404() from None
        except ApplicationError as error:
            flash.error(request, error.message)
            return redirect("lessons:detail", meeting_id=meeting.pk)
        return redirect("lessons:join", meeting_id=meeting.pk)
    verdict = selectors.join_verdict(meeting=meeting, user=user)
    participant = verdict.participant
    if not verdict.is_allowed or participant is None:
        if verdict.message:
            flash.error(request, verdict.message)
        return redirect("lessons:detail", meeting_id=meeting.pk)
    return _room(
        request, meeting=meeting, participant=participant, status_url=reverse("meetings-join", args=[meeting.pk])
    )


def _room(
    request: HttpRequest, *, meeting: Meeting, participant: Participant, status_url: str, token: str = ""
) -> HttpResponse:
    return render(
        request,
        "lessons/room.html",
        {
            "meeting": meeting,
            "participant": participant,
            "is_waiting": participant.status == ParticipantStatus.WAITING,
            "is_admitted": participant.status == ParticipantStatus.ADMITTED,
            "status_url": status_url,
            "guest_token": token,
            # Those waiting in the lobby see it too (the page reloads when
            # they are let in).
            "recording": recordings.recording_running(occurrence_id=participant.occurrence_id),
        },
    )


# --- The host's controls ---------------------------------------------------------------------------------------------


@login_required
@require_POST
def link_create_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    meeting = _manage_or_404(user=user, meeting_id=meeting_id)
    form = LinkForm(request.POST)
    label = form.cleaned_data["label"] if form.is_valid() else ""
    try:
        link, token = services.join_link_create(actor=user, meeting_id=meeting.pk, label=label)
    except ApplicationError as error:
        flash.error(request, error.message)
        return redirect("lessons:detail", meeting_id=meeting.pk)
    url = request.build_absolute_uri(reverse("lessons:guest_join", args=[token]))
    # The link is shown once, on this page: only its hash is kept.
    response = render(request, "lessons/link_created.html", {"meeting": meeting, "link": link, "url": url})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def link_revoke_view(request: HttpRequest, meeting_id: int, link_id: int) -> HttpResponse:
    user = _user(request)
    _manage_or_404(user=user, meeting_id=meeting_id)
    try:
        services.join_link_revoke(actor=user, meeting_id=meeting_id, link_id=link_id)
    except NotFound:
        raise Http404() from None
    flash.success(request, _("The link is revoked."))
    return redirect("lessons:detail", meeting_id=meeting_id)


@login_required
@require_POST
def participant_decide_view(request: HttpRequest, meeting_id: int, participant_id: int) -> HttpResponse:
    user = _user(request)
    _manage_or_404(user=user, meeting_id=meeting_id)
    action = request.POST.get("action")
    try:
        if action in ("admit", "deny"):
            services.lobby_decide(
                actor=user, meeting_id=meeting_id, participant_id=participant_id, admit=action == "admit"
            )
        elif action == "remove":
            services.participant_remove(actor=user, meeting_id=meeting_id, participant_id=participant_id)
        else:
            raise Http404()
    except NotFound:
        raise Http404() from None
    except ApplicationError as error:
        flash.error(request, error.message)
    return redirect(reverse("lessons:detail", args=[meeting_id]) + "#lobby")


@login_required
@require_POST
def lobby_admit_all_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    _manage_or_404(user=user, meeting_id=meeting_id)
    services.lobby_admit_all(actor=user, meeting_id=meeting_id)
    return redirect(reverse("lessons:detail", args=[meeting_id]) + "#lobby")


# --- Attendance ------------------------------------------------------------------------------------------------------


def _occurrence_id(request: HttpRequest) -> int | None:
    value = request.GET.get("occurrence", "")
    return int(value) if value.isdigit() and len(value) < 18 else None


@login_required
@require_GET
def attendance_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    meeting = _manage_or_404(user=user, meeting_id=meeting_id)
    try:
        occurrence = selectors.occurrence_for_report(meeting=meeting, occurrence_id=_occurrence_id(request))
    except NotFound:
        raise Http404() from None
    rows = selectors.occurrence_attendance(occurrence=occurrence)
    return render(
        request,
        "lessons/attendance.html",
        {
            "meeting": meeting,
            "occurrence": occurrence,
            "occurrences": list(meeting.occurrences.filter(starts_at__lte=timezone.now()).order_by("-starts_at")[:60]),
            "rows": rows,
            "came": sum(1 for row in rows if row.has_come),
            "never_came": sum(1 for row in rows if row.status == "never_came"),
            "time_zone": meeting.time_zone,
        },
    )


@login_required
@require_GET
def attendance_csv_view(request: HttpRequest, meeting_id: int) -> HttpResponse:
    user = _user(request)
    meeting = _manage_or_404(user=user, meeting_id=meeting_id)
    try:
        occurrence = selectors.occurrence_for_report(meeting=meeting, occurrence_id=_occurrence_id(request))
    except NotFound:
        raise Http404() from None
    day = schedule.utc_to_local(occurrence.starts_at, meeting.time_zone).strftime("%Y-%m-%d")
    return apis.attendance_csv(
        rows=selectors.occurrence_attendance(occurrence=occurrence),
        time_zone=meeting.time_zone,
        filename=f"attendance-{meeting.pk}-{day}.csv",
    )


def _group_report(request: HttpRequest, group_id: int) -> tuple[selectors.GroupAttendance, TermForm]:
    user = _user(request)
    try:
        group = selectors.study_group_attendance_get(user=user, group_id=group_id)
    except NotFound:
        raise Http404() from None
    today = schedule.utc_to_local(timezone.now(), group.organisation.effective_time_zone).date()
    default_from, default_to = selectors.term_default(today=today)
    form = TermForm(
        request.GET if "date_from" in request.GET else None, initial={"date_from": default_from, "date_to": default_to}
    )
    date_from, date_to = default_from, default_to
    if form.is_bound and form.is_valid():
        date_from, date_to = form.cleaned_data["date_from"], form.cleaned_data["date_to"]
        if date_to < date_from or (date_to - date_from) > datetime.timedelta(days=400):
            form.add_error("date_to", _("Choose a term of at most a year."))
            date_from, date_to = default_from, default_to
    return selectors.group_attendance(group=group, date_from=date_from, date_to=date_to), form


@login_required
@require_GET
def group_attendance_view(request: HttpRequest, group_id: int) -> HttpResponse:
    report, form = _group_report(request, group_id)
    return render(
        request, "lessons/group_attendance.html", {"report": report, "form": form, "query": request.GET.urlencode()}
    )


@login_required
@require_GET
def group_attendance_csv_view(request: HttpRequest, group_id: int) -> HttpResponse:
    report, _form = _group_report(request, group_id)
    return apis.group_attendance_csv(report)


# --- Guests by link --------------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@never_cache
def guest_join_view(request: HttpRequest, token: str) -> HttpResponse:
    """The page a personal link opens: what the meeting is, a name to give,
    then the lobby. Needs no account."""
    ip = client_ip(request)
    user = _user(request) if request.user.is_authenticated else None
    try:
        link = services.join_link_find(token=token, ip=ip)
    except ApplicationError as error:
        return render(request, "lessons/guest_refused.html", {"message": error.message}, status=error.status_code)
    form = GuestNameForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.guest_join(token=token, display_name=form.cleaned_data["display_name"], ip=ip, user=user)
        except (NotFound, PermissionDenied) as error:
            return render(request, "lessons/guest_refused.html", {"message": error.message}, status=error.status_code)
        except ApplicationError as error:
            if error.status_code == 410:
                return render(request, "lessons/guest_refused.html", {"message": error.message}, status=410)
            _form_error(form, error)
        else:
            return redirect("lessons:guest_join", token=token)
    verdict = selectors.join_verdict(meeting=link.meeting, link=link, user=user)
    if not verdict.is_allowed and verdict.code != "not_open":
        return render(request, "lessons/guest_refused.html", {"message": verdict.message}, status=verdict.status_code)
    if (
        request.method == "GET"
        and verdict.participant is not None
        and verdict.participant.status != ParticipantStatus.DENIED
    ):
        return _room(
            request,
            meeting=link.meeting,
            participant=verdict.participant,
            status_url=reverse("join-link", args=[token]),
            token=token,
        )
    return render(
        request,
        "lessons/guest_join.html",
        {
            "meeting": link.meeting,
            "verdict": verdict,
            "form": form,
            "participant": verdict.participant,
            "name": link.guest_name,
            "time_zone": link.meeting.time_zone,
        },
    )


# --- Recordings ------------------------------------------------------------------------------------------------------


@login_required
@require_GET
def recording_file_view(request: HttpRequest, recording_id: int) -> HttpResponseBase:
    """The file of a recording posted to the call's own chat (a meeting
    without a class chat), for the meeting's host and invitees. Anyone else
    gets the same 404 as for a recording that does not exist. Recordings
    posted to a chat are served by the chat (chats.files), to its members."""
    try:
        recording = recordings.recording_for_download(user=_user(request), recording_id=recording_id)
        handle = recording.file.open("rb")
    except (NotFound, FileNotFoundError):
        raise Http404() from None
    response = FileResponse(
        handle, content_type=recordings.CONTENT_TYPE, as_attachment=True, filename=recordings.file_name(recording)
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=3600"
    return response
