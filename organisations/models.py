from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from common.models import TimeStampedModel

if TYPE_CHECKING:
    from accounts.models import User


class Region(models.Model):
    """A federal subject of Russia, shipped as data (organisations/data/regions.json)."""

    code = models.CharField(_("code"), max_length=3, unique=True)
    name = models.CharField(_("name"), max_length=120)
    name_en = models.CharField(_("name in English"), max_length=120, blank=True)
    time_zone = models.CharField(_("time zone"), max_length=64)

    class Meta:
        ordering = ["code"]
        verbose_name = _("region")
        verbose_name_plural = _("regions")

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class OrganisationKind(models.TextChoices):
    KINDERGARTEN = "kindergarten", _("kindergarten")
    SCHOOL = "school", _("school")
    COLLEGE = "college", _("college")
    MUNICIPAL_AUTHORITY = "municipal_authority", _("municipal education authority")
    REGIONAL_AUTHORITY = "regional_authority", _("regional education authority")
    MINISTRY = "ministry", _("ministry")


AUTHORITY_KINDS = (
    OrganisationKind.MUNICIPAL_AUTHORITY,
    OrganisationKind.REGIONAL_AUTHORITY,
    OrganisationKind.MINISTRY,
)
EDUCATIONAL_KINDS = (OrganisationKind.KINDERGARTEN, OrganisationKind.SCHOOL, OrganisationKind.COLLEGE)


class Organisation(TimeStampedModel):
    kind = models.CharField(_("kind"), max_length=32, choices=OrganisationKind.choices, db_index=True)
    full_name = models.CharField(_("full name"), max_length=500)
    short_name = models.CharField(_("short name"), max_length=200)
    inn = models.CharField(_("INN"), max_length=12, blank=True, db_index=True)
    ogrn = models.CharField(_("OGRN"), max_length=15, blank=True)
    address = models.CharField(_("address"), max_length=500, blank=True)
    region = models.ForeignKey(Region, verbose_name=_("region"), null=True, blank=True, on_delete=models.PROTECT)
    municipality = models.CharField(_("municipality"), max_length=200, blank=True, db_index=True)
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent organisation"),
        null=True,
        blank=True,
        related_name="children",
        on_delete=models.PROTECT,
    )
    # Materialised path of ids, "/1/5/9/", kept by the services: subtree
    # queries are one indexed prefix match.
    path = models.CharField(max_length=255, db_index=True, editable=False, default="/")
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    website = models.URLField(_("website"), blank=True)
    is_verified = models.BooleanField(_("verified"), default=False)
    logo = models.ImageField(_("logo"), upload_to="logos/", blank=True)

    class Meta:
        ordering = ["short_name", "id"]
        verbose_name = _("organisation")
        verbose_name_plural = _("organisations")

    def __str__(self) -> str:
        return self.short_name

    @property
    def effective_time_zone(self) -> str:
        if self.time_zone:
            return self.time_zone
        if self.region is not None:
            return self.region.time_zone
        return settings.TIME_ZONE

    @property
    def is_authority(self) -> bool:
        return self.kind in AUTHORITY_KINDS


class Role(models.TextChoices):
    ADMINISTRATOR = "administrator", _("administrator")
    TEACHER = "teacher", _("teacher")
    STAFF = "staff", _("staff")
    STUDENT = "student", _("student")
    PARENT = "parent", _("parent")
    OFFICIAL = "official", _("official")


STAFF_ROLES = (Role.ADMINISTRATOR, Role.TEACHER, Role.STAFF, Role.OFFICIAL)


class VerificationStatus(models.TextChoices):
    NOT_REQUESTED = "not_requested", _("not requested")
    REQUESTED = "requested", _("requested")
    VERIFIED = "verified", _("verified")
    REJECTED = "rejected", _("rejected")


class MembershipQuerySet(models.QuerySet["Membership"]):
    def active(self) -> "MembershipQuerySet":
        return self.filter(ended_at__isnull=True)


class Membership(TimeStampedModel):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="memberships", on_delete=models.CASCADE)
    organisation = models.ForeignKey(Organisation, related_name="memberships", on_delete=models.CASCADE)
    role = models.CharField(_("role"), max_length=32, choices=Role.choices, db_index=True)
    position = models.CharField(_("position"), max_length=200, blank=True)
    started_at = models.DateTimeField(_("started at"), auto_now_add=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True, db_index=True)
    verification_status = models.CharField(
        _("verification"), max_length=20, choices=VerificationStatus.choices, default=VerificationStatus.NOT_REQUESTED
    )
    verification_requested_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    verified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    objects = MembershipQuerySet.as_manager()

    class Meta:
        ordering = ["organisation_id", "role", "id"]
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "organisation", "role"],
                condition=Q(ended_at__isnull=True),
                name="membership_unique_active_role",
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} — {self.get_role_display()} — {self.organisation}"

    @property
    def is_active(self) -> bool:
        return self.ended_at is None


class VerificationRequest(Membership):
    """The educator verification queue in admin."""

    class Meta:
        proxy = True
        verbose_name = _("verification request")
        verbose_name_plural = _("verification queue")


class StudyGroup(TimeStampedModel):
    """A class ("7Б") of one academic year; academic_year is the year it starts."""

    organisation = models.ForeignKey(Organisation, related_name="study_groups", on_delete=models.CASCADE)
    name = models.CharField(_("name"), max_length=40)
    grade = models.PositiveSmallIntegerField(_("grade"), null=True, blank=True)
    academic_year = models.PositiveSmallIntegerField(_("academic year"), db_index=True)
    homeroom_teacher = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("homeroom teacher"),
        null=True,
        blank=True,
        related_name="homeroom_groups",
        on_delete=models.SET_NULL,
    )
    students: "models.ManyToManyField[User, StudyGroupStudent]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="StudyGroupStudent", related_name="study_groups", blank=True
    )
    teachers: "models.ManyToManyField[User, StudyGroupTeacher]" = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="StudyGroupTeacher", related_name="teaching_groups", blank=True
    )
    next_group = models.OneToOneField(
        "self", null=True, blank=True, related_name="previous_group", on_delete=models.SET_NULL
    )

    class Meta:
        ordering = ["-academic_year", "grade", "name"]
        verbose_name = _("study group")
        verbose_name_plural = _("study groups")
        constraints = [
            models.UniqueConstraint(fields=["organisation", "name", "academic_year"], name="study_group_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.academic_year}/{(self.academic_year + 1) % 100:02d})"


class StudyGroupStudent(models.Model):
    group = models.ForeignKey(StudyGroup, on_delete=models.CASCADE)
    student = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("student of a group")
        verbose_name_plural = _("students of a group")
        constraints = [models.UniqueConstraint(fields=["group", "student"], name="study_group_student_unique")]

    def __str__(self) -> str:
        return f"{self.student} in {self.group}"


class StudyGroupTeacher(models.Model):
    group = models.ForeignKey(StudyGroup, on_delete=models.CASCADE)
    teacher = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    subject = models.CharField(_("subject"), max_length=120, blank=True)

    class Meta:
        verbose_name = _("teacher of a group")
        verbose_name_plural = _("teachers of a group")
        constraints = [models.UniqueConstraint(fields=["group", "teacher"], name="study_group_teacher_unique")]

    def __str__(self) -> str:
        return f"{self.teacher} teaches {self.group}"


class GuardianshipSource(models.TextChoices):
    SCHOOL = "school", _("linked by the school")
    CODE = "code", _("by a code from the school")


class Guardianship(TimeStampedModel):
    """A parent (legal guardian) linked to a student, visible to the school."""

    parent = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="guardianships", on_delete=models.CASCADE)
    student = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="guardians_links", on_delete=models.CASCADE)
    organisation = models.ForeignKey(Organisation, related_name="guardianships", on_delete=models.CASCADE)
    source = models.CharField(_("source"), max_length=16, choices=GuardianshipSource.choices)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        verbose_name = _("guardianship")
        verbose_name_plural = _("guardianships")
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "student"], condition=Q(ended_at__isnull=True), name="guardianship_unique_active"
            )
        ]

    def __str__(self) -> str:
        return f"{self.parent} → {self.student}"


class GuardianshipCode(TimeStampedModel):
    """A single-use code the school hands to a parent to link to a student.
    Only its HMAC is stored; the plain code is shown once when created."""

    student = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="+", on_delete=models.CASCADE)
    organisation = models.ForeignKey(Organisation, related_name="guardianship_codes", on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )
    expires_at = models.DateTimeField(_("expires at"))
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, related_name="+", on_delete=models.SET_NULL
    )

    class Meta:
        verbose_name = _("guardianship code")
        verbose_name_plural = _("guardianship codes")

    def __str__(self) -> str:
        return f"code for {self.student} ({self.organisation})"


class ImportJob(TimeStampedModel):
    """A bulk import of classes and members from CSV or XLSX, with its report."""

    class Status(models.TextChoices):
        FAILED = "failed", _("failed: nothing imported")
        DONE = "done", _("imported")

    organisation = models.ForeignKey(Organisation, related_name="import_jobs", on_delete=models.CASCADE)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, related_name="+", on_delete=models.SET_NULL)
    file_name = models.CharField(_("file"), max_length=255)
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_imported = models.PositiveIntegerField(_("rows imported"), default=0)
    errors = models.JSONField(_("errors"), default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return f"{self.file_name} ({self.get_status_display()})"
