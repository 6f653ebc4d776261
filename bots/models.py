"""Chat-bots: a bot is a program with its own account (so that it is a chat
member and writes messages like anyone), reached over the Bot API with a
token. What happens in its chats is queued for it as updates, which it
fetches by long polling or receives by webhook."""

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel

USERNAME_PATTERN = r"^[a-z][a-z0-9_]{2,30}bot$"


class Bot(TimeStampedModel):
    """A bot of an organisation, or of the platform (no organisation)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, related_name="bot", on_delete=models.PROTECT, verbose_name=_("account")
    )
    username = models.CharField(
        _("username"),
        max_length=40,
        unique=True,
        validators=[
            RegexValidator(
                USERNAME_PATTERN,
                _("Latin lower-case letters, digits and _, 5 to 40 characters, ending with 'bot'."),
            )
        ],
    )
    name = models.CharField(_("name"), max_length=80)
    description = models.TextField(_("description"), max_length=1000, blank=True)
    organisation = models.ForeignKey(
        "organisations.Organisation",
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        related_name="bots",
        on_delete=models.CASCADE,
        help_text=_("Empty for a platform bot."),
    )
    is_verified = models.BooleanField(_("verified"), default=False)
    is_staff_only = models.BooleanField(_("only verified staff may start it"), default=False)
    is_listed = models.BooleanField(_("shown in the services showcase"), default=True)
    is_active = models.BooleanField(_("active"), default=True)
    webhook_url = models.URLField(_("webhook URL"), max_length=500, blank=True)
    webhook_secret = models.CharField(_("webhook secret"), max_length=128, blank=True)
    # Set only by a superuser in admin: a webhook on the organisation's own
    # network (a bot running next to the portal) is refused otherwise.
    allow_internal_webhook = models.BooleanField(_("may use an internal webhook address"), default=False)
    # The update_id of its newest update; taken with a row update, so that
    # ids are given out in commit order within one bot.
    last_update_id = models.BigIntegerField(default=0, editable=False)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("bot")
        verbose_name_plural = _("bots")

    def __str__(self) -> str:
        return "@" + self.username

    def get_absolute_url(self) -> str:
        from django.urls import reverse

        return reverse("bots:detail", kwargs={"username": self.username})

    @property
    def is_platform(self) -> bool:
        return self.organisation_id is None

    @property
    def has_help_settings(self) -> bool:
        return HelpBotSettings.objects.filter(bot_id=self.pk).exists()


class BotToken(models.Model):
    """A token of the Bot API. Only its SHA-256 is kept; the token itself is
    shown once, when it is issued."""

    bot = models.ForeignKey(Bot, related_name="tokens", on_delete=models.CASCADE)
    key_hash = models.CharField(max_length=64, unique=True)
    # The first characters, so that an administrator can tell tokens apart.
    prefix = models.CharField(_("begins with"), max_length=16)
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bot token")
        verbose_name_plural = _("bot tokens")

    def __str__(self) -> str:
        return self.prefix + "…"


class UpdateKind(models.TextChoices):
    MESSAGE = "message", _("message")
    COMMAND = "command", _("command")
    CALLBACK_QUERY = "callback_query", _("button press")


class Update(models.Model):
    """Something for the bot: a message, a command or a button press in one
    of its chats. Confirmed (`confirmed_at`) when the bot asks for updates
    past it, or when its webhook took it."""

    bot = models.ForeignKey(Bot, related_name="updates", on_delete=models.CASCADE)
    update_id = models.BigIntegerField()
    kind = models.CharField(max_length=20, choices=UpdateKind.choices)
    chat = models.ForeignKey("chats.Chat", null=True, blank=True, related_name="+", on_delete=models.CASCADE)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # A button press the bot has answered (answerCallbackQuery).
    answered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["bot_id", "update_id"]
        verbose_name = _("update")
        verbose_name_plural = _("updates")
        constraints = [models.UniqueConstraint(fields=["bot", "update_id"], name="bot_update_unique_id")]
        indexes = [
            models.Index(fields=["bot", "update_id"], condition=Q(confirmed_at__isnull=True), name="bot_update_pending")
        ]

    def __str__(self) -> str:
        return f"{self.bot_id}/{self.update_id} {self.kind}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("pending")
    DELIVERED = "delivered", _("delivered")
    PARKED = "parked", _("parked after repeated failures")


class WebhookDelivery(models.Model):
    """The delivery of one update to the bot's webhook: retried with
    exponential backoff, parked after BOT_WEBHOOK_MAX_ATTEMPTS failures (the
    update stays; an administrator retries it from admin)."""

    update = models.OneToOneField(Update, related_name="delivery", on_delete=models.CASCADE)
    bot = models.ForeignKey(Bot, related_name="deliveries", on_delete=models.CASCADE)
    state = models.CharField(
        _("state"), max_length=12, choices=DeliveryState.choices, default=DeliveryState.PENDING, db_index=True
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt at"), null=True, blank=True, db_index=True)
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=500, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"delivery of {self.update_id}"


class KnowledgeArticle(TimeStampedModel):
    """An answer of a help bot: matched against a person's question by its
    question and keywords (Russian, case, ё and word endings ignored)."""

    bot = models.ForeignKey(Bot, verbose_name=_("bot"), related_name="articles", on_delete=models.CASCADE)
    question = models.CharField(_("question"), max_length=300)
    keywords = models.CharField(
        _("keywords"), max_length=500, blank=True, help_text=_("Words people use when they ask this, comma-separated.")
    )
    answer = models.TextField(_("answer"), max_length=4000)
    is_published = models.BooleanField(_("published"), default=True)

    class Meta:
        ordering = ["bot_id", "question"]
        verbose_name = _("knowledge base article")
        verbose_name_plural = _("knowledge base")

    def __str__(self) -> str:
        return self.question


class HelpBotSettings(models.Model):
    """Who answers when the help bot finds nothing: a person the question is
    forwarded to, named to the asker."""

    bot = models.OneToOneField(Bot, related_name="help_settings", on_delete=models.CASCADE)
    human = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("who answers when nothing is found"),
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.SET_NULL,
    )
    human_title = models.CharField(_("their title, as told to the asker"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("help bot settings")
        verbose_name_plural = _("help bot settings")

    def __str__(self) -> str:
        return f"settings of {self.bot_id}"
