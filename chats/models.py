from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel

MESSAGE_MAX_LENGTH = 4000


class ChatKind(models.TextChoices):
    DIRECT = "direct", _("direct chat")
    GROUP = "group", _("group chat")
    CLASS_STUDENTS = "class_students", _("class chat: students")
    CLASS_PARENTS = "class_parents", _("class chat: parents")
    STAFF = "staff", _("staff chat")
    CHANNEL = "channel", _("channel")


AUTO_KINDS = (ChatKind.CLASS_STUDENTS, ChatKind.CLASS_PARENTS, ChatKind.STAFF)


class Chat(TimeStampedModel):
    """A conversation: direct, group, a class or staff chat kept in sync with
    the directory, or a broadcast channel. `last_seq` is the sequence number
    of its newest message; every message gets the next one."""

    kind = models.CharField(_("kind"), max_length=20, choices=ChatKind.choices, db_index=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    description = models.TextField(_("description"), max_length=2000, blank=True)
    organisation = models.ForeignKey(
        "organisations.Organisation", null=True, blank=True, related_name="chats", on_delete=models.CASCADE
    )
    study_group = models.ForeignKey(
        "organisations.StudyGroup", null=True, blank=True, related_name="chats", on_delete=models.CASCADE
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    # "min_id:max_id" of a direct chat's two people, so that there is one.
    direct_key = models.CharField(max_length=64, null=True, blank=True, unique=True)
    last_seq = models.BigIntegerField(default=0)
    is_announcement_only = models.BooleanField(_("announcement mode (only staff post)"), default=False)
    # Students may post only between these times (the organisation's time zone).
    opens_at = models.TimeField(_("students may post from"), null=True, blank=True)
    closes_at = models.TimeField(_("students may post until"), null=True, blank=True)
    is_verified = models.BooleanField(_("official (verified) channel"), default=False)
    is_public = models.BooleanField(_("anyone may subscribe from the directory"), default=False)
    is_archived = models.BooleanField(_("archived"), default=False)

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("chat")
        verbose_name_plural = _("chats")
        constraints = [
            models.UniqueConstraint(
                fields=["study_group", "kind"], condition=Q(study_group__isnull=False), name="chat_unique_per_group"
            ),
            models.UniqueConstraint(
                fields=["organisation", "kind"], condition=Q(kind="staff"), name="chat_unique_staff_per_organisation"
            ),
        ]

    def __str__(self) -> str:
        return self.title or f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_channel(self) -> bool:
        return self.kind == ChatKind.CHANNEL


class MemberRole(models.TextChoices):
    OWNER = "owner", _("owner")
    MODERATOR = "moderator", _("moderator")
    EDITOR = "editor", _("channel editor")
    MEMBER = "member", _("member")


class ChatMemberQuerySet(models.QuerySet["ChatMember"]):
    def active(self) -> "ChatMemberQuerySet":
        return self.filter(left_at__isnull=True)


class ChatMember(models.Model):
    chat = models.ForeignKey(Chat, related_name="members", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="chat_memberships", on_delete=models.CASCADE)
    role = models.CharField(_("role"), max_length=16, choices=MemberRole.choices, default=MemberRole.MEMBER)
    joined_at = models.DateTimeField(_("joined at"), auto_now_add=True)
    left_at = models.DateTimeField(_("left at"), null=True, blank=True, db_index=True)
    muted_until = models.DateTimeField(_("muted until"), null=True, blank=True)
    last_read_seq = models.BigIntegerField(default=0)
    # Kept by the directory sync (class and staff chats, organisation channels).
    is_synced = models.BooleanField(default=False)
    # Removed by a moderator: the directory sync does not bring them back
    # until a moderator lets them in again.
    is_removed = models.BooleanField(_("removed by a moderator"), default=False)

    objects = ChatMemberQuerySet.as_manager()

    class Meta:
        verbose_name = _("chat member")
        verbose_name_plural = _("chat members")
        constraints = [
            models.UniqueConstraint(
                fields=["chat", "user"], condition=Q(left_at__isnull=True), name="chat_member_unique_active"
            )
        ]
        indexes = [models.Index(fields=["user", "left_at"])]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.chat_id}"


class MessageKind(models.TextChoices):
    TEXT = "text", _("text")
    POLL = "poll", _("poll")
    SYSTEM = "system", _("system")


class Message(models.Model):
    """A message, committed before anyone is told of it. (chat, seq) orders
    a chat; (chat, author, client_id) makes a client's resend idempotent.

    Every index is written by every message sent: the chat's own index is
    (chat, seq), and the columns that are empty on almost every message
    (reply, deleter, escalation time) have partial indexes of the rows that
    have them, which an ordinary message does not touch."""

    chat = models.ForeignKey(Chat, related_name="messages", on_delete=models.CASCADE, db_index=False)
    seq = models.BigIntegerField()
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="chat_messages", on_delete=models.SET_NULL
    )
    kind = models.CharField(max_length=10, choices=MessageKind.choices, default=MessageKind.TEXT)
    client_id = models.CharField(max_length=64, blank=True)
    body = models.TextField(max_length=MESSAGE_MAX_LENGTH, blank=True)
    body_hash = models.CharField(max_length=64, blank=True)
    reply_to = models.ForeignKey(
        "self", null=True, blank=True, related_name="replies", on_delete=models.SET_NULL, db_index=False
    )
    # Inline buttons of a bot's message: rows of {"text", "callback_data"}
    # (bots.services keeps their shape); pressing one queues an update for
    # the bot.
    buttons = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(_("sent at"), auto_now_add=True, db_index=True)
    edited_at = models.DateTimeField(_("edited at"), null=True, blank=True)
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL, db_index=False
    )
    # Channel posts: readers confirm with "Ознакомлен"; unacknowledged ones
    # may be escalated to parents by SMS at `escalate_at`.
    requires_acknowledgement = models.BooleanField(default=False)
    escalate_at = models.DateTimeField(null=True, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["chat_id", "seq"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [
            models.Index(fields=["reply_to"], condition=Q(reply_to__isnull=False), name="message_reply_to"),
            models.Index(fields=["deleted_by"], condition=Q(deleted_by__isnull=False), name="message_deleted_by"),
            models.Index(fields=["escalate_at"], condition=Q(escalate_at__isnull=False), name="message_escalate_at"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["chat", "seq"], name="message_unique_seq"),
            models.UniqueConstraint(
                fields=["chat", "author", "client_id"], condition=~Q(client_id=""), name="message_unique_client_id"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.chat_id}#{self.seq}"

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class MessageRevision(models.Model):
    """The text a message had before an edit."""

    message = models.ForeignKey(Message, related_name="revisions", on_delete=models.CASCADE)
    body = models.TextField()
    replaced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["replaced_at", "id"]

    def __str__(self) -> str:
        return f"revision of {self.message_id}"


class Reaction(models.Model):
    message = models.ForeignKey(Message, related_name="reactions", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    emoji = models.CharField(max_length=16)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user", "emoji"], name="reaction_unique")]

    def __str__(self) -> str:
        return f"{self.emoji} on {self.message_id}"


class Mention(models.Model):
    message = models.ForeignKey(Message, related_name="mentions", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_unique")]

    def __str__(self) -> str:
        return f"@{self.user_id} in {self.message_id}"


class Pin(models.Model):
    chat = models.ForeignKey(Chat, related_name="pins", on_delete=models.CASCADE)
    message = models.ForeignKey(Message, related_name="pins", on_delete=models.CASCADE)
    pinned_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    pinned_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pinned_at"]
        constraints = [models.UniqueConstraint(fields=["chat", "message"], name="pin_unique")]

    def __str__(self) -> str:
        return f"pin {self.message_id}"


class Attachment(models.Model):
    """A file sent with a message; served only to members of its chat."""

    chat = models.ForeignKey(Chat, related_name="attachments", on_delete=models.CASCADE)
    message = models.ForeignKey(Message, null=True, blank=True, related_name="attachments", on_delete=models.CASCADE)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    file = models.FileField(upload_to="attachments/%Y/%m/")
    thumbnail = models.FileField(upload_to="thumbnails/%Y/%m/", blank=True)
    original_name = models.CharField(max_length=255)
    content_type = models.CharField(max_length=100)
    size = models.PositiveIntegerField()
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.original_name


class Poll(models.Model):
    message = models.OneToOneField(Message, related_name="poll", on_delete=models.CASCADE)
    question = models.CharField(max_length=300)
    allows_multiple = models.BooleanField(default=False)
    is_anonymous = models.BooleanField(default=False)
    closed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.question


class PollOption(models.Model):
    poll = models.ForeignKey(Poll, related_name="options", on_delete=models.CASCADE)
    text = models.CharField(max_length=200)
    position = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["position"]

    def __str__(self) -> str:
        return self.text


class PollVote(models.Model):
    option = models.ForeignKey(PollOption, related_name="votes", on_delete=models.CASCADE)
    poll = models.ForeignKey(Poll, related_name="votes", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["option", "user"], name="poll_vote_unique")]

    def __str__(self) -> str:
        return f"vote {self.option_id}"


class MessageReport(models.Model):
    message = models.ForeignKey(Message, related_name="reports", on_delete=models.CASCADE)
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "reporter"], name="report_unique")]

    def __str__(self) -> str:
        return f"report on {self.message_id}"


class Acknowledgement(models.Model):
    """A reader's "Ознакомлен" on a channel post."""

    message = models.ForeignKey(Message, related_name="acknowledgements", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="acknowledgement_unique")]

    def __str__(self) -> str:
        return f"ack {self.message_id} by {self.user_id}"


class ScheduledMessage(models.Model):
    """A message to a teacher written outside their office hours: held and
    sent (becoming a Message with the next seq) at `deliver_at`."""

    chat = models.ForeignKey(Chat, related_name="scheduled_messages", on_delete=models.CASCADE)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    client_id = models.CharField(max_length=64, blank=True)
    body = models.TextField(max_length=MESSAGE_MAX_LENGTH)
    body_hash = models.CharField(max_length=64, blank=True)
    reply_to = models.ForeignKey(Message, null=True, blank=True, related_name="+", on_delete=models.SET_NULL)
    deliver_at = models.DateTimeField(db_index=True)
    delivered_message = models.OneToOneField(
        Message, null=True, blank=True, related_name="scheduled_from", on_delete=models.SET_NULL
    )
    # Not delivered because the author may no longer post there (left the
    # chat, lost the contact with a child…).
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chat", "author", "client_id"],
                condition=~Q(client_id=""),
                name="scheduled_message_unique_client_id",
            )
        ]

    def __str__(self) -> str:
        return f"scheduled for {self.deliver_at:%Y-%m-%d %H:%M}"


class OfficeHours(models.Model):
    """When a teacher takes messages; others wait until the next opening."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="office_hours", on_delete=models.CASCADE)
    starts_at = models.TimeField(_("from"))
    ends_at = models.TimeField(_("until"))
    # ISO weekdays 1..7 as a string, e.g. "12345".
    weekdays = models.CharField(_("weekdays"), max_length=7, default="12345")
    time_zone = models.CharField(_("time zone"), max_length=64, default="Europe/Moscow")

    def __str__(self) -> str:
        return f"{self.starts_at}-{self.ends_at}"


class Notification(models.Model):
    """Something a person should see: a mention, a post to acknowledge, a
    report for a chat's moderators."""

    class Kind(models.TextChoices):
        MENTION = "mention", _("mention")
        ACKNOWLEDGEMENT = "acknowledgement", _("acknowledgement requested")
        REPLY = "reply", _("reply")
        REPORT = "report", _("message reported")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="notifications", on_delete=models.CASCADE)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    chat = models.ForeignKey(Chat, related_name="+", on_delete=models.CASCADE)
    message = models.ForeignKey(Message, related_name="+", on_delete=models.CASCADE)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["user", "kind", "message"], name="notification_unique")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"
