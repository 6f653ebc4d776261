"""What the migration from the old messenger records: which old chat became
which new chat, the notice posted into the old chat, the SMS invitations of
people without an account, and the imports uploaded in admin."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel


class LegacyChat(TimeStampedModel):
    """One conversation of the old messenger (its `peer_id` is unique there).

    A row without `migrated_at` is an eligible conversation seen in a dry
    run uploaded in admin and not migrated yet: it counts towards the
    organisation's "eligible chats" on the adoption dashboard. Once
    migrated, `chat` is the new group chat (until someone deletes it) and
    the old one is recorded read-only."""

    organisation = models.ForeignKey(
        "organisations.Organisation",
        verbose_name=_("organisation"),
        related_name="legacy_chats",
        on_delete=models.CASCADE,
    )
    peer_id = models.BigIntegerField(_("old chat id (peer_id)"), unique=True)
    title = models.CharField(_("title"), max_length=200, blank=True)
    chat = models.OneToOneField(
        "chats.Chat",
        verbose_name=_("new chat"),
        null=True,
        blank=True,
        related_name="legacy_chat",
        on_delete=models.SET_NULL,
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    migrated_at = models.DateTimeField(_("migrated at"), null=True, blank=True, db_index=True)
    # The old chat must not be used any more: the notice tells its members
    # where to go, and this flag is what the migration bot and admin show.
    is_read_only = models.BooleanField(_("old chat read-only"), default=False)
    members_added = models.PositiveIntegerField(_("members added"), default=0)
    members_invited = models.PositiveIntegerField(_("members invited by SMS"), default=0)
    members_refused = models.JSONField(_("members refused"), default=list, blank=True)
    messages_imported = models.PositiveIntegerField(_("messages imported"), default=0)

    class Meta:
        ordering = ["organisation_id", "peer_id"]
        verbose_name = _("old chat")
        verbose_name_plural = _("old chats")

    def __str__(self) -> str:
        return f"{self.peer_id} {self.title}"


class NoticeStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class LegacyNotice(TimeStampedModel):
    """The notice posted into a migrated old chat: exactly one per old chat,
    with the `random_id` chosen before the first attempt so that the old
    messenger drops a retried duplicate."""

    legacy_chat = models.OneToOneField(LegacyChat, related_name="notice", on_delete=models.CASCADE)
    random_id = models.BigIntegerField()
    text = models.TextField(_("text"))
    status = models.CharField(
        _("status"), max_length=10, choices=NoticeStatus.choices, default=NoticeStatus.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    error_code = models.IntegerField(_("error code"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    legacy_message_id = models.BigIntegerField(_("message id in the old messenger"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("notice to an old chat")
        verbose_name_plural = _("notices to old chats")

    def __str__(self) -> str:
        return f"notice to {self.legacy_chat_id}"


class Invitation(TimeStampedModel):
    """An SMS invitation into a migrated chat for someone without an account.
    Only the hash of the token is kept; following the link after signing in
    with the invited number joins the chat, once."""

    legacy_chat = models.ForeignKey(LegacyChat, related_name="invitations", on_delete=models.CASCADE)
    chat = models.ForeignKey("chats.Chat", related_name="migration_invitations", on_delete=models.CASCADE)
    phone = models.CharField(_("phone number"), max_length=20, db_index=True)
    first_name = models.CharField(_("first name"), max_length=80, blank=True)
    last_name = models.CharField(_("last name"), max_length=80, blank=True)
    chat_role = models.CharField(_("role in the chat"), max_length=16)
    # The token in the link is an HMAC of this salt with SECRET_KEY: the task
    # that sends the SMS can rebuild it, and the database alone reveals none.
    token_salt = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    sms_sent_at = models.DateTimeField(_("SMS sent at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        constraints = [models.UniqueConstraint(fields=["chat", "phone"], name="migration_invitation_unique_phone")]

    def __str__(self) -> str:
        return f"{self.phone} → {self.chat_id}"


class ImportStatus(models.TextChoices):
    QUEUED = "queued", _("queued")
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class ImportRun(TimeStampedModel):
    """An export uploaded in admin and imported by a Celery task; the page
    shows `done` of `total` while it runs and the per-chat report after."""

    organisation = models.ForeignKey(
        "organisations.Organisation",
        verbose_name=_("organisation"),
        related_name="legacy_imports",
        on_delete=models.CASCADE,
    )
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("uploaded by"),
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.SET_NULL,
    )
    file_name = models.CharField(_("file"), max_length=255, blank=True)
    # The export itself; it holds phone numbers, so it lives in the database
    # (never under MEDIA_ROOT) and is emptied once the import has finished.
    content = models.TextField(blank=True)
    is_dry_run = models.BooleanField(_("dry run (change nothing)"), default=True)
    status = models.CharField(
        _("status"), max_length=10, choices=ImportStatus.choices, default=ImportStatus.QUEUED, db_index=True
    )
    total = models.PositiveIntegerField(_("conversations"), default=0)
    done = models.PositiveIntegerField(_("processed"), default=0)
    report = models.JSONField(_("report"), default=list, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import of old chats")
        verbose_name_plural = _("imports of old chats")

    def __str__(self) -> str:
        return f"{self.file_name or self.pk} ({self.get_status_display()})"

    @property
    def percent(self) -> int:
        return round(100 * self.done / self.total) if self.total else (100 if self.status == ImportStatus.DONE else 0)


class LegacyExport(TimeStampedModel):
    """The latest checked export of an organisation (admin upload or
    command run), kept for the migration bot: a teacher's old chats are the
    conversations of this export that they own. One per organisation: a new
    import replaces it. It holds phone numbers, so like ImportRun.content it
    lives in the database, never under MEDIA_ROOT."""

    organisation = models.OneToOneField(
        "organisations.Organisation",
        verbose_name=_("organisation"),
        related_name="legacy_export",
        on_delete=models.CASCADE,
    )
    # The export in the format of SPEC §9.1 (JSON), as checked by export_parse.
    content = models.TextField()
    conversations = models.PositiveIntegerField(_("conversations"), default=0)
    uploaded_at = models.DateTimeField(_("uploaded at"))

    class Meta:
        verbose_name = _("kept export of old chats")
        verbose_name_plural = _("kept exports of old chats")

    def __str__(self) -> str:
        return f"export of {self.organisation_id}"
