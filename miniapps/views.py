"""HTML pages: the services showcase (the system folder "Education", where
signed-in people land), a mini-app's launch page with its sandboxed iframe,
and the diary. They work as plain links and forms without JavaScript.

Views are interfaces: parse a form, call one service or selector, render or
redirect; a refusal (ApplicationError) is shown next to what caused it."""

from typing import Any, cast

from django.contrib import messages as flash
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST, require_safe
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import TokenAuthentication
from accounts.models import User
from common.errors import ApplicationError, NotFound, PermissionDenied
from miniapps import selectors, services
from miniapps.apis import icon_url
from miniapps.forms import FIELD_NAMES, HomeworkForm, MarkForm, TimetableForm
from miniapps.models import Weekday

# The iframe's sandbox. allow-scripts and allow-forms: an app is a web app
# with forms. allow-same-origin: the app keeps its own origin (its cookies
# and storage); safe only because the app's origin is never the portal's
# (built-in apps are not framed, and an external app cannot be registered
# on the portal's address without an administrator). Not allowed: top
# navigation, popups, modals, downloads, pointer lock, payment.
IFRAME_SANDBOX = "allow-scripts allow-forms allow-same-origin"


def _user(request: HttpRequest) -> User:
    return cast(User, request.user)


def _refused(request: HttpRequest, error: PermissionDenied) -> HttpResponse:
    """A rule's refusal as a page: its message, status 403."""
    return render(request, "miniapps/refused.html", {"message": error.message}, status=403)


# --- The showcase ------------------------------------------------------------------------------------------


@login_required
@require_GET
def showcase_view(request: HttpRequest) -> HttpResponse:
    showcase = selectors.showcase(user=_user(request))
    apps = [{"item": item, "icon_url": icon_url(item.app)} for item in showcase.apps]
    return render(
        request, "miniapps/showcase.html", {"apps": apps, "bots": showcase.bots, "channels": showcase.channels}
    )


@login_required
@require_GET
def launch_view(request: HttpRequest, slug: str) -> HttpResponse:
    try:
        launch = services.miniapp_launch(user=_user(request), slug=slug)
    except NotFound:
        raise Http404() from None
    except PermissionDenied as error:
        return _refused(request, error)
    if launch.origin is None:
        return redirect(launch.url)
    response = render(
        request, "miniapps/launch.html", {"app": launch.app, "src": launch.url, "sandbox": IFRAME_SANDBOX}
    )
    # Only this page may frame the app, and only the app's origin.
    response._csp_update = {"frame-src": [launch.origin]}  # type: ignore[attr-defined]
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


# --- The diary ---------------------------------------------------------------------------------------------


@login_required
@require_GET
def diary_home_view(request: HttpRequest) -> HttpResponse:
    home = selectors.diary_home(user=_user(request))
    if home.own is not None and not home.children and not home.groups:
        return redirect("miniapps:diary_student", student_id=home.own.pk)
    return render(request, "miniapps/diary_home.html", {"home": home})


@login_required
@require_GET
def diary_student_view(request: HttpRequest, student_id: int) -> HttpResponse:
    try:
        student = selectors.diary_student_access(user=_user(request), student_id=student_id)
    except NotFound:
        raise Http404() from None
    diary = selectors.student_diary(student=student)
    return render(
        request,
        "miniapps/diary_student.html",
        {"diary": diary, "days": _days(diary.timetable), "is_own": student.pk == request.user.pk},
    )


def _days(entries: list[Any]) -> list[tuple[str, list[Any]]]:
    """The timetable by weekday, the days with lessons only."""
    days = []
    for weekday in Weekday:
        lessons = [entry for entry in entries if entry.weekday == weekday.value]
        if lessons:
            days.append((str(weekday.label), lessons))
    return days


def _group_page(
    request: HttpRequest,
    *,
    group_id: int,
    forms: dict[str, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    try:
        access = selectors.diary_group_access(user=_user(request), group_id=group_id)
    except NotFound:
        raise Http404() from None
    group = access.group
    context: dict[str, Any] = {
        "group": group,
        "access": access,
        "days": _days(list(selectors.group_timetable(group=group))),
        "homework": list(selectors.group_homework(group=group)),
        "marks": list(selectors.group_marks(access=access)),
    }
    if access.may_edit:
        students = list(selectors.group_students(group=group))
        teachers = list(selectors.group_teachers(group=group))
        forms = forms or {}
        context["timetable_form"] = forms.get("timetable") or TimetableForm(teachers=teachers)
        context["homework_form"] = forms.get("homework") or HomeworkForm()
        context["mark_form"] = forms.get("mark") or MarkForm(students=students)
    return render(request, "miniapps/diary_group.html", context, status=status)


@login_required
@require_GET
def diary_group_view(request: HttpRequest, group_id: int) -> HttpResponse:
    return _group_page(request, group_id=group_id)


def _edit_access_or_refuse(request: HttpRequest, group_id: int) -> HttpResponse | None:
    """None when the person may enter the class's diary; otherwise the answer."""
    try:
        selectors.diary_group_edit_access(user=_user(request), group_id=group_id)
    except NotFound:
        raise Http404() from None
    except PermissionDenied as error:
        return _refused(request, error)
    return None


def _form_error(form: Any, error: ApplicationError) -> None:
    field = error.extra.get("field") if error.extra else None
    name = FIELD_NAMES.get(field, field) if field else None
    form.add_error(name if name in form.fields else None, error.message)


def _diary_post(request: HttpRequest, *, group_id: int, key: str, form: Any, save: Any, done: str) -> HttpResponse:
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ApplicationError as error:
            _form_error(form, error)
        else:
            flash.success(request, done)
            return redirect("miniapps:diary_group", group_id=group_id)
    return _group_page(request, group_id=group_id, forms={key: form}, status=400)


@login_required
@require_POST
def timetable_add_view(request: HttpRequest, group_id: int) -> HttpResponse:
    refused = _edit_access_or_refuse(request, group_id)
    if refused is not None:
        return refused
    access = selectors.diary_group_access(user=_user(request), group_id=group_id)
    form = TimetableForm(request.POST, teachers=list(selectors.group_teachers(group=access.group)))

    def save(data: dict[str, Any]) -> None:
        services.timetable_entry_set(
            actor=_user(request),
            group_id=group_id,
            weekday=data["weekday"],
            period=data["period"],
            subject=data["subject"],
            teacher_id=data["teacher"] or None,
            room=data["room"],
        )

    return _diary_post(request, group_id=group_id, key="timetable", form=form, save=save, done=_("Timetable saved."))


@login_required
@require_POST
def homework_add_view(request: HttpRequest, group_id: int) -> HttpResponse:
    refused = _edit_access_or_refuse(request, group_id)
    if refused is not None:
        return refused
    form = HomeworkForm(request.POST, request.FILES)

    def save(data: dict[str, Any]) -> None:
        services.homework_create(
            actor=_user(request),
            group_id=group_id,
            subject=data["subject"],
            due_date=data["due_date"],
            text=data["text"],
            attachment=data.get("attachment"),
        )

    return _diary_post(request, group_id=group_id, key="homework", form=form, save=save, done=_("Homework set."))


@login_required
@require_POST
def mark_add_view(request: HttpRequest, group_id: int) -> HttpResponse:
    refused = _edit_access_or_refuse(request, group_id)
    if refused is not None:
        return refused
    access = selectors.diary_group_access(user=_user(request), group_id=group_id)
    form = MarkForm(request.POST, students=list(selectors.group_students(group=access.group)))

    def save(data: dict[str, Any]) -> None:
        services.mark_create(
            actor=_user(request),
            group_id=group_id,
            student_id=data["student"],
            subject=data["subject"],
            date=data["date"],
            value=data["value"],
            comment=data["comment"],
        )

    return _diary_post(request, group_id=group_id, key="mark", form=form, save=save, done=_("Mark saved."))


def _delete(request: HttpRequest, *, group_id: int, delete: Any, done: str) -> HttpResponse:
    try:
        delete()
    except NotFound:
        raise Http404() from None
    except PermissionDenied as error:
        return _refused(request, error)
    flash.success(request, done)
    return redirect("miniapps:diary_group", group_id=group_id)


@login_required
@require_POST
def timetable_delete_view(request: HttpRequest, group_id: int, entry_id: int) -> HttpResponse:
    return _delete(
        request,
        group_id=group_id,
        delete=lambda: services.timetable_entry_delete(actor=_user(request), entry_id=entry_id),
        done=_("Removed from the timetable."),
    )


@login_required
@require_POST
def homework_delete_view(request: HttpRequest, group_id: int, homework_id: int) -> HttpResponse:
    return _delete(
        request,
        group_id=group_id,
        delete=lambda: services.homework_delete(actor=_user(request), homework_id=homework_id),
        done=_("Homework removed."),
    )


@login_required
@require_POST
def mark_delete_view(request: HttpRequest, group_id: int, mark_id: int) -> HttpResponse:
    return _delete(
        request,
        group_id=group_id,
        delete=lambda: services.mark_delete(actor=_user(request), mark_id=mark_id),
        done=_("Mark removed."),
    )


def _request_user(request: HttpRequest) -> User | None:
    """The browser's session user, or an API client's token user."""
    if request.user.is_authenticated:
        return _user(request)
    try:
        authenticated = TokenAuthentication().authenticate(request)  # type: ignore[arg-type]
    except AuthenticationFailed:
        return None
    return cast(User, authenticated[0]) if authenticated else None


@require_safe
def homework_attachment_view(request: HttpRequest, homework_id: int) -> HttpResponseBase:
    """The attachment of homework, for the people who see the class's diary
    (a session or an API token); anyone else gets the 404 of a missing file."""
    user = _request_user(request)
    try:
        if user is None:
            raise NotFound()
        homework = selectors.homework_for_download(user=user, homework_id=homework_id)
        handle = homework.attachment.open("rb")
    except (NotFound, FileNotFoundError):
        raise Http404() from None
    response = FileResponse(handle, as_attachment=True, filename=homework.attachment.name.rsplit("/", 1)[-1])
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    response["Vary"] = "Cookie, Authorization"
    return response
