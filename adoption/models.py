"""Regional roadmaps, the in-product course, activity days and the weekly
figures of the adoption dashboard (SPEC §9)."""

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel


class Roadmap(TimeStampedModel):
    """The plan of one region for one academic year: its stages and targets
    (percentages), edited by the region's officials."""

    region = models.ForeignKey(
        "organisations.Region", verbose_name=_("region"), related_name="roadmaps", on_delete=models.CASCADE
    )
    academic_year = models.PositiveSmallIntegerField(_("academic year"))
    target_educators_writing = models.PositiveSmallIntegerField(_("educators writing weekly, %"), default=75)
    target_families_reading = models.PositiveSmallIntegerField(_("students and parents reading weekly, %"), default=30)
    target_chats_migrated = models.PositiveSmallIntegerField(_("chats migrated, %"), default=100)
    target_course_completed = models.PositiveSmallIntegerField(_("educators who completed the course, %"), default=90)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["region__code", "-academic_year"]
        verbose_name = _("roadmap")
        verbose_name_plural = _("roadmaps")
        constraints = [
            models.UniqueConstraint(fields=["region", "academic_year"], name="roadmap_unique_region_year"),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.academic_year}/{(self.academic_year + 1) % 100:02d}"


class StageKind(models.TextChoices):
    PREPARATION = "preparation", _("summer preparation")
    ACTIVE_MIGRATION = "active_migration", _("active migration")
    COMPLETION = "completion", _("completion")


class RoadmapStage(models.Model):
    roadmap = models.ForeignKey(Roadmap, related_name="stages", on_delete=models.CASCADE)
    kind = models.CharField(_("stage"), max_length=20, choices=StageKind.choices)
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on"))

    class Meta:
        ordering = ["roadmap_id", "starts_on", "id"]
        verbose_name = _("roadmap stage")
        verbose_name_plural = _("roadmap stages")
        constraints = [
            models.UniqueConstraint(fields=["roadmap", "kind"], name="roadmap_stage_unique_kind"),
            models.CheckConstraint(condition=models.Q(ends_on__gte=models.F("starts_on")), name="roadmap_stage_dates"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.starts_on} – {self.ends_on}"


class CourseProgress(models.Model):
    """How far one person went through the in-product course; completed_at
    is set once, when the last step is reached."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, related_name="course_progress", on_delete=models.CASCADE)
    steps_seen = models.PositiveSmallIntegerField(_("steps seen"), default=0)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = _("course progress")
        verbose_name_plural = _("course progress")

    def __str__(self) -> str:
        return f"{self.user_id}: {self.steps_seen}"


class ActivityKind(models.TextChoices):
    READ = "read", _("read")
    WRITE = "write", _("wrote")
    VISIT = "visit", _("opened the dashboard or roadmap")


class ActivityDay(models.Model):
    """One person was active in one way on one day (the portal's time zone).
    At most one row per (person, day, kind): bursts collapse into one."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    day = models.DateField()
    kind = models.CharField(max_length=8, choices=ActivityKind.choices)

    class Meta:
        verbose_name = _("activity day")
        verbose_name_plural = _("activity days")
        constraints = [models.UniqueConstraint(fields=["user", "day", "kind"], name="activity_day_unique")]
        # Covers the weekly build's read (user and kind of one week's
        # days): an index-only scan.
        indexes = [models.Index(fields=["day", "kind", "user"], name="activity_day_week_scan")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day} {self.kind}"


class WeeklyFigures(models.Model):
    """The figures of one organisation for one week (Monday to Sunday), built
    by adoption.services.weekly_figures_build. Each pair is (people counted,
    of how many)."""

    organisation = models.ForeignKey(
        "organisations.Organisation", related_name="weekly_figures", on_delete=models.CASCADE
    )
    week = models.DateField(_("week starting"))
    educators = models.PositiveIntegerField(default=0)
    educators_writing = models.PositiveIntegerField(default=0)
    educators_course_completed = models.PositiveIntegerField(default=0)
    families = models.PositiveIntegerField(default=0)
    families_reading = models.PositiveIntegerField(default=0)
    officials = models.PositiveIntegerField(default=0)
    officials_active = models.PositiveIntegerField(default=0)
    chats_eligible = models.PositiveIntegerField(default=0)
    chats_migrated = models.PositiveIntegerField(default=0)
    built_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["week", "organisation_id"]
        verbose_name = _("weekly figures")
        verbose_name_plural = _("weekly figures")
        constraints = [models.UniqueConstraint(fields=["organisation", "week"], name="weekly_figures_unique")]
        indexes = [models.Index(fields=["week", "organisation"])]

    def __str__(self) -> str:
        return f"{self.organisation_id} {self.week}"
