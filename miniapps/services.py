"""Writes of mini-apps and the diary: the registry, launches (signed
parameters), timetable, homework and marks, and the evening-before homework
reminders."""

import datetime
import logging
import zoneinfo
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import User
from common.errors import ApplicationError, NotFound
from miniapps import selectors, signing
from miniapps.models import Homework, Mark, MarkValue, MiniApp, TimetableEntry, Weekday, secret_generate
from miniapps.validation import url_origin
from organisations.models import Organisation, StudyGroupStudent

logger = logging.getLogger(__name__)

SUBJECT_MAX = 120
HOMEWORK_TEXT_MAX = 5000
ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
# The evening before a deadline starts at this hour of the school's clock.
REMINDER_EVENING_HOUR = 18
REMINDER_TEXT_MAX = 300


def field_error(field: str, message: str) -> ApplicationError:
    return ApplicationError(message, code="invalid", extra={"field": field})


# --- The registry ----------------------------------------------------------------------------------------


def miniapp_create(
    *,
    name: str,
    slug: str,
    url: str,
    audience: list[str],
    organisation: Organisation | None = None,
    description: str = "",
    icon_static: str = "",
    is_builtin: bool = False,
    is_verified: bool = False,
    position: int = 100,
    max_launch_age_seconds: int = 300,
) -> MiniApp:
    """Register an app (or update the one with this slug: idempotent, for
    the demo). Its secret is generated once and kept on updates.

    Raises ValidationError for a bad address or audience.
    """
    app = MiniApp.objects.filter(slug=slug).first() or MiniApp(slug=slug)
    app.name = name
    app.url = url
    app.audience = list(audience)
    app.organisation = organisation
    app.description = description
    app.icon_static = icon_static
    app.is_builtin = is_builtin
    app.is_verified = is_verified
    app.position = position
    app.max_launch_age_seconds = max_launch_age_seconds
    app.full_clean(exclude=["icon"] if not app.icon else None)
    if app.secret_rotated_at is None:
        app.secret_rotated_at = timezone.now()
    app.save()
    return app


def miniapp_secret_rotate(*, app: MiniApp) -> str:
    """Give the app a new secret and return it (shown once in admin);
    launches signed with the old one stop verifying at once."""
    app.secret = secret_generate()
    app.secret_rotated_at = timezone.now()
    app.save(update_fields=["secret", "secret_rotated_at", "updated_at"])
    return app.secret


@dataclass(frozen=True)
class Launch:
    app: MiniApp
    # The iframe's src (an external app) or the portal page (a built-in one).
    url: str
    params: dict[str, str]
    # The app's origin for the page's CSP frame-src; None for a built-in app.
    origin: str | None


def miniapp_launch(*, user: User, slug: str, now: float | None = None) -> Launch:
    """Sign a launch of app `slug` for `user`: user id, role, organisation,
    issue and expiry times and a nonce, HMAC-SHA256 with the app's secret.
    A built-in app is the portal's own page and needs no parameters.

    Raises what selectors.miniapp_launch_access raises (404, 403).
    """
    launchable = selectors.miniapp_launch_access(user=user, slug=slug)
    app = launchable.app
    if app.is_builtin:
        return Launch(app=app, url=app.url, params={}, origin=None)
    params = signing.launch_params_make(
        app_slug=app.slug,
        user_id=user.pk,
        role=launchable.role,
        organisation_id=launchable.organisation_id,
        secret=app.secret,
        max_age_seconds=app.max_launch_age_seconds,
        now=now,
    )
    return Launch(app=app, url=app.url + "?" + signing.launch_query(params), params=params, origin=url_origin(app.url))


# --- The diary: input ------------------------------------------------------------------------------------


def _text(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise field_error(field, _("Enter text."))
    if required and not text:
        raise field_error(field, _("This field is required."))
    if len(text) > max_length:
        raise field_error(field, _("At most %(count)d characters.") % {"count": max_length})
    return text


def _integer(value: Any, *, field: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise field_error(
            field, _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high}
        ) from None
    if isinstance(value, bool) or not low <= number <= high:
        raise field_error(field, _("Enter a whole number from %(low)d to %(high)d.") % {"low": low, "high": high})
    return number


def _date(value: Any, *, field: str) -> datetime.date:
    if isinstance(value, datetime.date):
        return value
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise field_error(field, _("Enter a date as YYYY-MM-DD.")) from None


# --- The diary: timetable --------------------------------------------------------------------------------


@transaction.atomic
def timetable_entry_set(
    *,
    actor: User,
    group_id: int,
    weekday: Any,
    period: Any,
    subject: Any,
    teacher_id: Any = None,
    room: Any = "",
) -> TimetableEntry:
    """Put a lesson into a class's timetable slot (replacing what was there).

    Raises NotFound / PermissionDenied "not_group_teacher" (see
    selectors.diary_group_edit_access) or a field error naming the field.
    """
    group = selectors.diary_group_edit_access(user=actor, group_id=group_id)
    weekday_number = _integer(weekday, field="weekday", low=Weekday.MONDAY, high=Weekday.SATURDAY)
    period_number = _integer(period, field="period", low=1, high=12)
    subject_text = _text(subject, field="subject", max_length=SUBJECT_MAX)
    room_text = _text(room, field="room", max_length=40, required=False)
    teacher = None
    if teacher_id not in (None, ""):
        teacher_pk = _integer(teacher_id, field="teacher_id", low=1, high=2**62)
        teacher = selectors.group_teachers(group=group).filter(pk=teacher_pk).first()
        if teacher is None:
            raise field_error("teacher_id", _("Choose one of the class's teachers."))
    entry, _created = TimetableEntry.objects.update_or_create(
        group=group,
        weekday=weekday_number,
        period=period_number,
        defaults={"subject": subject_text, "teacher": teacher, "room": room_text},
    )
    return entry


def timetable_entry_delete(*, actor: User, entry_id: int) -> None:
    entry = TimetableEntry.objects.filter(pk=entry_id).first()
    if entry is None:
        raise NotFound(_("Not found."))
    selectors.diary_group_edit_access(user=actor, group_id=entry.group_id)
    entry.delete()


# --- The diary: homework ---------------------------------------------------------------------------------


@transaction.atomic
def homework_create(
    *,
    actor: User,
    group_id: int,
    subject: Any,
    due_date: Any,
    text: Any,
    attachment: UploadedFile | None = None,
) -> Homework:
    """Set homework for a class. Raises like `timetable_entry_set`; a due
    date in the past or an attachment over 10 MB is a field error."""
    group = selectors.diary_group_edit_access(user=actor, group_id=group_id)
    subject_text = _text(subject, field="subject", max_length=SUBJECT_MAX)
    due = _date(due_date, field="due_date")
    if due < timezone.localdate():
        raise field_error("due_date", _("The due date cannot be in the past."))
    body = _text(text, field="text", max_length=HOMEWORK_TEXT_MAX)
    if attachment is not None and attachment.size is not None and attachment.size > ATTACHMENT_MAX_BYTES:
        raise field_error("attachment", _("The attachment must be at most 10 MB."))
    homework = Homework(group=group, subject=subject_text, due_date=due, text=body, created_by=actor)
    if attachment is not None:
        homework.attachment.save(attachment.name or "attachment", attachment, save=False)
    homework.save()
    return homework


def homework_delete(*, actor: User, homework_id: int) -> None:
    homework = Homework.objects.filter(pk=homework_id).first()
    if homework is None:
        raise NotFound(_("Not found."))
    selectors.diary_group_edit_access(user=actor, group_id=homework.group_id)
    if homework.attachment:
        homework.attachment.delete(save=False)
    homework.delete()


# --- The diary: marks ------------------------------------------------------------------------------------


@transaction.atomic
def mark_create(
    *,
    actor: User,
    group_id: int,
    student_id: Any,
    subject: Any,
    date: Any,
    value: Any,
    comment: Any = "",
) -> Mark:
    """Give a student of the class a mark (1–5, pass or fail). Raises like
    `timetable_entry_set`; a student of another class or a date in the
    future is a field error."""
    group = selectors.diary_group_edit_access(user=actor, group_id=group_id)
    student_pk = _integer(student_id, field="student_id", low=1, high=2**62)
    if not StudyGroupStudent.objects.filter(group=group, student_id=student_pk).exists():
        raise field_error("student_id", _("Choose a student of this class."))
    subject_text = _text(subject, field="subject", max_length=SUBJECT_MAX)
    day = _date(date, field="date")
    if day > timezone.localdate():
        raise field_error("date", _("A mark cannot be given for a future date."))
    if not datetime.date(group.academic_year, 9, 1) <= day <= datetime.date(group.academic_year + 1, 8, 31):
        raise field_error("date", _("The date must be within the class's academic year."))
    if value not in MarkValue.values:
        raise field_error("value", _("A mark is 1 to 5, pass or fail."))
    comment_text = _text(comment, field="comment", max_length=500, required=False)
    return Mark.objects.create(
        group=group,
        student_id=student_pk,
        subject=subject_text,
        date=day,
        value=value,
        comment=comment_text,
        created_by=actor,
    )


def mark_delete(*, actor: User, mark_id: int) -> None:
    mark = Mark.objects.filter(pk=mark_id).first()
    if mark is None:
        raise NotFound(_("Not found."))
    access = selectors.diary_group_access(user=actor, group_id=mark.group_id)
    if not access.sees_marks_of(mark.student_id):
        raise NotFound(_("Not found."))
    if not access.may_edit:
        raise selectors.not_group_teacher()
    mark.delete()


# --- Reminders -------------------------------------------------------------------------------------------


def _is_evening_before(*, due_date: datetime.date, time_zone: str, now: datetime.datetime) -> bool:
    try:
        zone = zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local = now.astimezone(zone)
    return local.date() == due_date - datetime.timedelta(days=1) and local.hour >= REMINDER_EVENING_HOUR


def reminder_text(homework: Homework) -> str:
    """The reminder, in the portal's language (it goes to a shared chat)."""
    with translation.override(settings.LANGUAGE_CODE):
        text = _("Reminder: homework in %(subject)s is due tomorrow, %(date)s: %(text)s") % {
            "subject": homework.subject,
            "date": homework.due_date.strftime("%d.%m.%Y"),
            "text": homework.text,
        }
    if len(text) > REMINDER_TEXT_MAX:
        text = text[: REMINDER_TEXT_MAX - 1] + "…"
    return text


def homework_reminders_send(*, now: datetime.datetime | None = None) -> int:
    """Remind a class of homework due tomorrow, from 18:00 of the evening
    before on the school's clock (Celery beat, every 10 minutes): a system
    message in the class's students' and parents' chats. Returns how many
    homework items were reminded of.

    Exactly once, however many runs overlap or retry: the homework row is
    claimed (reminded_at set where it was empty) in the same transaction as
    the messages, so a crash before commit leaves it to the next run, and a
    second run finds it claimed."""
    from chats.models import Chat, ChatKind
    from chats.services.messages import message_system_post

    now = now or timezone.now()
    # Every time zone of Russia is within a day of UTC: due tomorrow or the
    # day after in UTC covers "tomorrow" everywhere.
    today = now.date()
    candidates = (
        Homework.objects.filter(
            reminded_at__isnull=True,
            due_date__gte=today,
            due_date__lte=today + datetime.timedelta(days=2),
        )
        .select_related("group__organisation__region")
        .order_by("due_date", "id")
    )
    sent = 0
    for homework in candidates:
        time_zone = homework.group.organisation.effective_time_zone
        if not _is_evening_before(due_date=homework.due_date, time_zone=time_zone, now=now):
            continue
        with transaction.atomic():
            claimed = Homework.objects.filter(pk=homework.pk, reminded_at__isnull=True).update(reminded_at=now)
            if not claimed:
                continue
            text = reminder_text(homework)
            chats = Chat.objects.filter(
                study_group_id=homework.group_id,
                kind__in=(ChatKind.CLASS_STUDENTS, ChatKind.CLASS_PARENTS),
                is_archived=False,
            ).order_by("kind")
            for chat in chats:
                message_system_post(chat=chat, text=text)
        sent += 1
    if sent:
        logger.info("homework reminders: %d sent", sent)
    return sent
