"""Online lessons and meetings (SPEC §7): a meeting is a series of one or
more occurrences (weekly recurrence is materialised as rows, so that the
calendar, reminders, joining and attendance all work on one occurrence);
who is invited is stored as rules (a class's students, a class's guardians,
the staff, single people) and resolved when asked, so that the invitation
follows the directory."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel

TITLE_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 2000
DISPLAY_NAME_MAX_LENGTH = 80


class MeetingKind(models.TextChoices):
    LESSON = "lesson", _("lesson")
    PARENT_MEETING = "parent_meeting", _("parent meeting")
    STAFF_MEETING = "staff_meeting", _("staff meeting")
    CONSULTATION = "consultation", _("consultation")


class Meeting(TimeStampedModel):
    """A lesson, a parent meeting, a staff meeting or a consultation, with
    its schedule in the organisation's time zone."""

    organisation = models.ForeignKey(
        "organisations.Organisation", verbose_name=_("organisation"), related_name="meetings", on_delete=models.CASCADE
    )
    kind = models.CharField(_("kind"), max_length=20, choices=MeetingKind.choices, db_index=True)
    title = models.CharField(_("title"), max_length=TITLE_MAX_LENGTH)
    description = models.TextField(_("description"), max_length=DESCRIPTION_MAX_LENGTH, blank=True)
    host = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("host"),
        null=True,
        related_name="hosted_meetings",
        on_delete=models.SET_NULL,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    # The zone the wall-clock time was given in (the organisation's at the
    # time of scheduling): every weekly occurrence keeps that local time.
    time_zone = models.CharField(_("time zone"), max_length=64)
    starts_at = models.DateTimeField(_("first starts at"))
    duration_minutes = models.PositiveSmallIntegerField(_("duration, minutes"))
    repeats_weekly = models.BooleanField(_("repeats weekly"), default=False)
    repeat_until = models.DateField(_("repeats until"), null=True, blank=True)
    lobby_for_guests = models.BooleanField(_("guests wait in the lobby"), default=True)
    lobby_for_everyone = models.BooleanField(_("everyone waits in the lobby"), default=False)
    is_recording_enabled = models.BooleanField(_("recorded (participants are told)"), default=False)
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    # Bumped by every change invitees are told about; a notification names
    # the revision it is about, so telling twice is impossible.
    revision = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("meeting")
        verbose_name_plural = _("meetings")

    def __str__(self) -> str:
        return self.title

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class AudienceKind(models.TextChoices):
    GROUP_STUDENTS = "group_students", _("students of a class")
    GROUP_GUARDIANS = "group_guardians", _("parents of a class")
    STAFF = "staff", _("staff of the organisation")
    USER = "user", _("a person")


GROUP_AUDIENCE_KINDS = (AudienceKind.GROUP_STUDENTS, AudienceKind.GROUP_GUARDIANS)


class MeetingAudience(models.Model):
    """One rule of who is invited, resolved against the directory when asked."""

    meeting = models.ForeignKey(Meeting, related_name="audience", on_delete=models.CASCADE)
    kind = models.CharField(_("invited"), max_length=20, choices=AudienceKind.choices)
    study_group = models.ForeignKey(
        "organisations.StudyGroup",
        verbose_name=_("class"),
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.CASCADE,
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("person"),
        null=True,
        blank=True,
        related_name="meeting_invitations",
        on_delete=models.CASCADE,
    )

    class Meta:
        verbose_name = _("invitation rule")
        verbose_name_plural = _("invited")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["group_students", "group_guardians"], study_group__isnull=False, user__isnull=True)
                    | Q(kind="staff", study_group__isnull=True, user__isnull=True)
                    | Q(kind="user", study_group__isnull=True, user__isnull=False)
                ),
                name="meeting_audience_shape",
            ),
            models.UniqueConstraint(
                fields=["meeting", "kind", "study_group"],
                condition=Q(study_group__isnull=False),
                name="meeting_audience_unique_group",
            ),
            models.UniqueConstraint(
                fields=["meeting", "user"], condition=Q(user__isnull=False), name="meeting_audience_unique_user"
            ),
            models.UniqueConstraint(
                fields=["meeting"], condition=Q(kind="staff"), name="meeting_audience_unique_staff"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.meeting_id}"


class Occurrence(models.Model):
    """One sitting of a meeting: the only one, or one week of a series."""

    meeting = models.ForeignKey(Meeting, related_name="occurrences", on_delete=models.CASCADE)
    sequence = models.PositiveIntegerField()
    starts_at = models.DateTimeField(_("starts at"), db_index=True)
    ends_at = models.DateTimeField(_("ends at"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the reminder runs last went through the invitees (a shortcut for
    # the beat; exactly-once comes from the Reminder rows). Reset when the
    # time or the invitees change.
    day_before_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)
    soon_reminded_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["starts_at", "id"]
        verbose_name = _("occurrence")
        verbose_name_plural = _("occurrences")
        constraints = [models.UniqueConstraint(fields=["meeting", "sequence"], name="occurrence_unique_sequence")]

    def __str__(self) -> str:
        return f"{self.meeting_id}#{self.sequence} {self.starts_at:%Y-%m-%d %H:%M}"

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None


class JoinLink(TimeStampedModel):
    """A personal link for one guest without an account (a parent on a
    cheap phone). Only the SHA-256 of its token is stored; the link is
    shown once, when made. The first guest to use it gives the name, and
    the link stays theirs: removing them from the meeting closes it."""

    meeting = models.ForeignKey(Meeting, related_name="join_links", on_delete=models.CASCADE)
    token_hash = models.CharField(max_length=64, unique=True)
    label = models.CharField(_("for whom"), max_length=DISPLAY_NAME_MAX_LENGTH, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    expires_at = models.DateTimeField(_("expires at"))
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    guest_name = models.CharField(_("guest's name"), max_length=DISPLAY_NAME_MAX_LENGTH, blank=True)
    # The guest of this link was removed by the host: the token no longer
    # lets anyone in.
    removed_at = models.DateTimeField(_("guest removed at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("join link")
        verbose_name_plural = _("join links")

    def __str__(self) -> str:
        return self.label or self.guest_name or f"link {self.pk}"


class ParticipantRole(models.TextChoices):
    HOST = "host", _("host")
    MEMBER = "member", _("invitee")
    GUEST = "guest", _("guest by link")


class ParticipantStatus(models.TextChoices):
    WAITING = "waiting", _("waiting in the lobby")
    ADMITTED = "admitted", _("admitted")
    DENIED = "denied", _("not admitted")
    REMOVED = "removed", _("removed")


class Participant(models.Model):
    """Someone who asked to join one occurrence, as a member or as the
    guest of a link, and what the lobby decided."""

    occurrence = models.ForeignKey(Occurrence, related_name="participants", on_delete=models.CASCADE)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        related_name="meeting_participations",
        on_delete=models.CASCADE,
    )
    join_link = models.ForeignKey(
        JoinLink, null=True, blank=True, related_name="participants", on_delete=models.CASCADE
    )
    display_name = models.CharField(_("name"), max_length=DISPLAY_NAME_MAX_LENGTH)
    role = models.CharField(_("role"), max_length=10, choices=ParticipantRole.choices)
    status = models.CharField(_("status"), max_length=10, choices=ParticipantStatus.choices, db_index=True)
    requested_at = models.DateTimeField(_("asked to join at"), auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["requested_at", "id"]
        verbose_name = _("participant")
        verbose_name_plural = _("participants")
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, join_link__isnull=True) | Q(user__isnull=True, join_link__isnull=False),
                name="participant_user_or_link",
            ),
            models.UniqueConstraint(
                fields=["occurrence", "user"], condition=Q(user__isnull=False), name="participant_unique_user"
            ),
            models.UniqueConstraint(
                fields=["occurrence", "join_link"],
                condition=Q(join_link__isnull=False),
                name="participant_unique_link",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} in {self.occurrence_id}"

    @property
    def is_guest(self) -> bool:
        return self.join_link_id is not None


class AttendanceSession(models.Model):
    """One stay in the call, from connecting to leaving (reported by the
    signalling side through lessons.services)."""

    participant = models.ForeignKey(Participant, related_name="sessions", on_delete=models.CASCADE)
    joined_at = models.DateTimeField(_("joined at"))
    left_at = models.DateTimeField(_("left at"), null=True, blank=True)

    class Meta:
        ordering = ["joined_at", "id"]
        verbose_name = _("attendance")
        verbose_name_plural = _("attendance")
        indexes = [models.Index(fields=["participant", "left_at"])]

    def __str__(self) -> str:
        return f"{self.participant_id} {self.joined_at:%H:%M}"


class ReminderKind(models.TextChoices):
    DAY_BEFORE = "day_before", _("the day before")
    SOON = "soon", _("15 minutes before")


class SmsStatus(models.TextChoices):
    NOT_WANTED = "not_wanted", _("not wanted")
    PENDING = "pending", _("being sent")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class Reminder(models.Model):
    """The claim on one reminder: its row is inserted before anything is
    sent, and the unique constraint lets exactly one worker insert it."""

    occurrence = models.ForeignKey(Occurrence, related_name="reminders", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    kind = models.CharField(max_length=12, choices=ReminderKind.choices)
    claimed_at = models.DateTimeField()
    claim = models.CharField(max_length=32, db_index=True)
    sms_status = models.CharField(max_length=12, choices=SmsStatus.choices, default=SmsStatus.NOT_WANTED)
    sms_sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [
            models.UniqueConstraint(fields=["occurrence", "user", "kind"], name="reminder_unique_per_occurrence")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.occurrence_id} → {self.user_id}"


class NotificationKind(models.TextChoices):
    INVITED = "invited", _("invited")
    CHANGED = "changed", _("changed")
    CANCELLED = "cancelled", _("cancelled")
    REMINDER_DAY_BEFORE = "reminder_day_before", _("reminder the day before")
    REMINDER_SOON = "reminder_soon", _("reminder 15 minutes before")


class MeetingNotification(models.Model):
    """What a person sees in the portal about a meeting. `key` says what it
    is about ("changed:r3", "reminder_soon:o17"), unique per person and
    meeting, so no change or reminder is shown twice."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="meeting_notifications", on_delete=models.CASCADE)
    meeting = models.ForeignKey(Meeting, related_name="notifications", on_delete=models.CASCADE)
    occurrence = models.ForeignKey(
        Occurrence, null=True, blank=True, related_name="notifications", on_delete=models.CASCADE
    )
    kind = models.CharField(max_length=24, choices=NotificationKind.choices)
    key = models.CharField(max_length=40)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("meeting notification")
        verbose_name_plural = _("meeting notifications")
        constraints = [models.UniqueConstraint(fields=["user", "meeting", "key"], name="meeting_notification_unique")]
        indexes = [models.Index(fields=["user", "read_at"])]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"


class ReminderPreference(models.Model):
    """How a person wants to be reminded of meetings: always in the portal,
    and by SMS if they choose it."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="meeting_reminders", on_delete=models.CASCADE)
    by_sms = models.BooleanField(_("remind me by SMS too"), default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("reminder preference")
        verbose_name_plural = _("reminder preferences")

    def __str__(self) -> str:
        return f"{self.user_id}: sms={self.by_sms}"


class RecordingStatus(models.TextChoices):
    RECORDING = "recording", _("recording")
    READY = "ready", _("ready")
    POSTED = "posted", _("posted to the class chat")
    FAILED = "failed", _("failed")


class Recording(models.Model):
    """One recording of an occurrence's call (when the meeting allows it),
    started and stopped by a host. The media worker writes the file (its
    name is decided here, before it starts); lessons.recordings posts it
    to the class chat afterwards, once (`chat_message`)."""

    occurrence = models.ForeignKey(Occurrence, related_name="recordings", on_delete=models.CASCADE)
    status = models.CharField(_("status"), max_length=12, choices=RecordingStatus.choices)
    file = models.FileField(_("file"), upload_to="recordings/%Y/%m/", blank=True)
    started_at = models.DateTimeField(_("started at"))
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    duration_seconds = models.FloatField(_("duration, seconds"), null=True, blank=True)
    size = models.BigIntegerField(_("size, bytes"), null=True, blank=True)
    chat_message = models.ForeignKey(
        "chats.Message", null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    # The message in the call's own chat, for a meeting without a class or
    # staff chat.
    call_message = models.ForeignKey("CallMessage", null=True, blank=True, related_name="+", on_delete=models.SET_NULL)

    class Meta:
        ordering = ["-started_at", "-id"]
        verbose_name = _("recording")
        verbose_name_plural = _("recordings")
        constraints = [
            models.UniqueConstraint(
                fields=["occurrence"], condition=Q(status="recording"), name="recording_one_running_per_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"recording of {self.occurrence_id}"


# --- The call (signalling side: lessons.consumers, lessons.calls) ---------------------------------------------------


class CallState(models.Model):
    """What the host set for the call of one occurrence: the "safe lesson"
    profile (non-hosts join muted and see only the hosts' video), locked
    microphones with the one participant given the floor, and whether the
    host ended it for everyone."""

    occurrence = models.OneToOneField(Occurrence, related_name="call_state", on_delete=models.CASCADE)
    is_safe_lesson = models.BooleanField(_("safe lesson"), default=False)
    are_microphones_locked = models.BooleanField(_("microphones locked"), default=False)
    floor_participant = models.ForeignKey(
        "Participant", null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("call")
        verbose_name_plural = _("calls")

    def __str__(self) -> str:
        return f"call of {self.occurrence_id}"


class CallPresence(models.Model):
    """A participant who is in the call now, through one signalling
    connection (`channel_name`): a newer connection of the same participant
    takes the row over, and only the connection named here may end it."""

    participant = models.OneToOneField(Participant, related_name="call_presence", on_delete=models.CASCADE)
    occurrence = models.ForeignKey(Occurrence, related_name="call_presences", on_delete=models.CASCADE)
    channel_name = models.CharField(max_length=100)
    joined_at = models.DateTimeField()
    is_audio_muted = models.BooleanField(default=False)
    is_video_muted = models.BooleanField(default=False)
    is_audio_only = models.BooleanField(default=False)
    hand_raised_at = models.DateTimeField(null=True, blank=True)
    # The media section (mid) of the participant's publish connection that
    # carries their shared screen, so that the others can tell it from the
    # camera; empty when they share nothing.
    screen_mid = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["joined_at", "id"]
        verbose_name = _("participant in the call")
        verbose_name_plural = _("participants in the call")

    def __str__(self) -> str:
        return f"{self.participant_id} in the call of {self.occurrence_id}"


CALL_MESSAGE_MAX_LENGTH = 2000


class CallMessage(models.Model):
    """A message of the chat inside a call, kept with its occurrence."""

    occurrence = models.ForeignKey(Occurrence, related_name="call_messages", on_delete=models.CASCADE)
    participant = models.ForeignKey(Participant, related_name="call_messages", on_delete=models.CASCADE)
    author_name = models.CharField(_("author"), max_length=DISPLAY_NAME_MAX_LENGTH)
    body = models.TextField(_("text"), max_length=CALL_MESSAGE_MAX_LENGTH)
    client_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message in a call")
        verbose_name_plural = _("messages in calls")
        constraints = [
            models.UniqueConstraint(
                fields=["participant", "client_id"],
                condition=~Q(client_id=""),
                name="call_message_unique_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.body[:40]}"
