"""Texts people read about meetings (the portal's notification lines, CSV
headers), in the active language, with times in a given zone."""

from django.utils.formats import date_format
from django.utils.translation import gettext as _

from lessons import schedule
from lessons.models import MeetingKind, MeetingNotification, NotificationKind, Occurrence


def when_text(occurrence_or_none: Occurrence | None, *, starts_at: object = None, time_zone: str) -> str:
    moment = occurrence_or_none.starts_at if occurrence_or_none is not None else starts_at
    if moment is None:
        return ""
    local = schedule.utc_to_local(moment, time_zone)  # type: ignore[arg-type]
    return date_format(local, "j E, l, H:i")


def notification_text(notification: MeetingNotification, *, time_zone: str) -> str:
    """One line: what happened to which meeting, and when it is."""
    meeting = notification.meeting
    when = when_text(notification.occurrence, starts_at=meeting.starts_at, time_zone=time_zone)
    values = {"title": meeting.title, "when": when}
    kind = notification.kind
    if kind == NotificationKind.INVITED:
        return _("You are invited: «%(title)s», %(when)s.") % values
    if kind == NotificationKind.CHANGED:
        return _("Changed: «%(title)s», now %(when)s.") % values
    if kind == NotificationKind.CANCELLED:
        if notification.occurrence is not None:
            return _("Cancelled: «%(title)s» on %(when)s.") % values
        return _("Cancelled: «%(title)s».") % values
    if kind == NotificationKind.REMINDER_DAY_BEFORE:
        return _("Reminder: «%(title)s», %(when)s.") % values
    return _("Starts in 15 minutes: «%(title)s», %(when)s.") % values


def kind_label(kind: str) -> str:
    return str(MeetingKind(kind).label) if kind in MeetingKind.values else kind
