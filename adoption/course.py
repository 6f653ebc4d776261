"""The in-product course on the service's capabilities: a few short steps,
kept in the code (translated like every other text) so that they change
with the features they describe."""

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class CourseStep:
    slug: str
    title: Promise
    paragraphs: tuple[Promise, ...]


COURSE_STEPS: tuple[CourseStep, ...] = (
    CourseStep(
        "chats",
        _("Chats of your classes"),
        (
            _(
                "Every class has two chats made by the school: one with the students, one with the parents. "
                "You do not add anyone: people join and leave with the class list."
            ),
            _("A message can be edited, pinned or turned into a poll. Read receipts show how many people saw it."),
        ),
    ),
    CourseStep(
        "channels",
        _("Channels for announcements"),
        (
            _("A channel is for news from the school: only its editors post, everyone else reads and reacts."),
            _("Ask for an acknowledgement on important posts: parents who have not read them can be reminded by SMS."),
        ),
    ),
    CourseStep(
        "lessons",
        _("Lessons and parent meetings"),
        (
            _("Schedule a lesson or a meeting in the calendar; invitations and reminders go out by themselves."),
            _("Guests join by a link through a waiting room; attendance is recorded for you."),
        ),
    ),
    CourseStep(
        "bots",
        _("Bots and services"),
        (
            _("Bots answer common questions and help move your chats from the old messenger in a few minutes."),
            _("The Education section gathers the school's services: timetable, homework and more."),
        ),
    ),
    CourseStep(
        "safety",
        _("Children's safety"),
        (
            _("Students are in safe mode: only classmates, the school's staff and their parents can write to them."),
            _("Report a message that breaks the rules: the chat's moderators see it at once."),
        ),
    ),
)
