"""Mini-apps (a registry of web apps launched in a sandboxed iframe with
signed launch parameters) and the school diary, the built-in model mini-app:
timetable, homework and marks per study group."""

import secrets
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import FileExtensionValidator, MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel
from organisations.models import Organisation, StudyGroup

ICON_MAX_BYTES = 256 * 1024
LAUNCH_MAX_AGE_DEFAULT = 300


def secret_generate() -> str:
    """A new launch secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def icon_size_validate(value: Any) -> None:
    if value and value.size > ICON_MAX_BYTES:
        raise ValidationError(_("The icon must be at most 256 KB."), code="icon_too_large")


class MiniApp(TimeStampedModel):
    """A web app in the registry. An external app is opened at `url` inside
    a sandboxed iframe; a built-in one (the diary) is a page of the portal
    itself, `url` being its path."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    description = models.TextField(_("description"), blank=True)
    icon = models.ImageField(
        _("icon"),
        upload_to="miniapps/icons/",
        blank=True,
        validators=[FileExtensionValidator(["png", "jpg", "jpeg", "webp"]), icon_size_validate],
        help_text=_("PNG, JPEG or WebP, at most 256 KB."),
    )
    icon_static = models.CharField(
        _("icon from the portal's static files"),
        max_length=200,
        blank=True,
        help_text=_('A path under static/, e.g. "miniapps/diary.svg"; used when no icon is uploaded.'),
    )
    url = models.CharField(
        _("URL"),
        max_length=500,
        help_text=_("https:// address of the app; a path of the portal for a built-in app."),
    )
    is_builtin = models.BooleanField(_("built into the portal"), default=False)
    # Role values of organisations.models.Role.
    audience = models.JSONField(_("audience (roles)"), default=list, blank=True)
    organisation = models.ForeignKey(
        Organisation,
        verbose_name=_("organisation"),
        null=True,
        blank=True,
        related_name="miniapps",
        on_delete=models.CASCADE,
        help_text=_("Empty: a platform app."),
    )
    is_verified = models.BooleanField(_("verified"), default=False)
    is_active = models.BooleanField(_("shown and launchable"), default=True)
    position = models.PositiveSmallIntegerField(_("position in the showcase"), default=100)
    # Kept in plain text: the portal must sign with it. Shown once in admin.
    secret = models.CharField(max_length=100, default=secret_generate, editable=False)
    secret_rotated_at = models.DateTimeField(_("secret issued at"), null=True, blank=True, editable=False)
    max_launch_age_seconds = models.PositiveIntegerField(
        _("launch parameters valid for (seconds)"),
        default=LAUNCH_MAX_AGE_DEFAULT,
        validators=[MinValueValidator(10), MaxValueValidator(3600)],
    )

    class Meta:
        ordering = ["position", "name", "id"]
        verbose_name = _("mini-app")
        verbose_name_plural = _("mini-apps")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from miniapps.validation import audience_validate, url_validate

        errors: dict[str, Any] = {}
        try:
            url_validate(url=self.url, is_builtin=self.is_builtin)
        except ValidationError as error:
            errors["url"] = error.messages
        try:
            audience_validate(self.audience)
        except ValidationError as error:
            errors["audience"] = error.messages
        if errors:
            raise ValidationError(errors)


class Weekday(models.IntegerChoices):
    MONDAY = 1, _("Monday")
    TUESDAY = 2, _("Tuesday")
    WEDNESDAY = 3, _("Wednesday")
    THURSDAY = 4, _("Thursday")
    FRIDAY = 5, _("Friday")
    SATURDAY = 6, _("Saturday")


class TimetableEntry(TimeStampedModel):
    """One lesson of a class's weekly timetable (the group's academic year)."""

    group = models.ForeignKey(StudyGroup, related_name="timetable", on_delete=models.CASCADE)
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    period = models.PositiveSmallIntegerField(
        _("period"), validators=[MinValueValidator(1), MaxValueValidator(12)], help_text=_("1 to 12.")
    )
    subject = models.CharField(_("subject"), max_length=120)
    teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("teacher"),
        null=True,
        blank=True,
        related_name="+",
        on_delete=models.SET_NULL,
    )
    room = models.CharField(_("room"), max_length=40, blank=True)

    class Meta:
        ordering = ["group_id", "weekday", "period"]
        verbose_name = _("timetable entry")
        verbose_name_plural = _("timetable")
        constraints = [
            models.UniqueConstraint(fields=["group", "weekday", "period"], name="timetable_unique_slot"),
            models.CheckConstraint(condition=Q(period__gte=1, period__lte=12), name="timetable_period_range"),
            models.CheckConstraint(condition=Q(weekday__gte=1, weekday__lte=6), name="timetable_weekday_range"),
        ]

    def __str__(self) -> str:
        return f"{self.group} {self.get_weekday_display()} {self.period}: {self.subject}"


class Homework(TimeStampedModel):
    group = models.ForeignKey(StudyGroup, related_name="homework", on_delete=models.CASCADE)
    subject = models.CharField(_("subject"), max_length=120)
    due_date = models.DateField(_("due date"), db_index=True)
    text = models.TextField(_("assignment"), max_length=5000)
    attachment = models.FileField(_("attachment"), upload_to="miniapps/homework/%Y/%m/", blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    # The claim on the evening-before reminder: set by the one run that sends
    # it, in the same transaction as the reminder itself.
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["due_date", "subject", "id"]
        verbose_name = _("homework")
        verbose_name_plural = _("homework")

    def __str__(self) -> str:
        return f"{self.group} {self.subject} {self.due_date:%Y-%m-%d}"


class MarkValue(models.TextChoices):
    ONE = "1", "1"
    TWO = "2", "2"
    THREE = "3", "3"
    FOUR = "4", "4"
    FIVE = "5", "5"
    PASS = "pass", _("pass")
    FAIL = "fail", _("fail")


class Mark(TimeStampedModel):
    group = models.ForeignKey(StudyGroup, related_name="marks", on_delete=models.CASCADE)
    student = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="marks", on_delete=models.CASCADE)
    subject = models.CharField(_("subject"), max_length=120)
    date = models.DateField(_("date"), db_index=True)
    value = models.CharField(_("mark"), max_length=4, choices=MarkValue.choices)
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-date", "subject", "id"]
        verbose_name = _("mark")
        verbose_name_plural = _("marks")

    def __str__(self) -> str:
        return f"{self.student} {self.subject} {self.date:%Y-%m-%d}: {self.value}"
