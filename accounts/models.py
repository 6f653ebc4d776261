from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField

from accounts.names import display_name_skeleton


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, phone: str, password: str | None = None, **extra: Any) -> "User":
        user = self.model(phone=phone, **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_superuser(self, phone: str, password: str | None = None, **extra: Any) -> "User":
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(phone, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """One person, one account, identified by a phone number. Roles live in
    organisation memberships, not here."""

    # Null only for a deleted account (see accounts.services.account_delete):
    # the number is personal data and goes with the account, NULLs never
    # collide under the unique index, and nothing signs in to a NULL number,
    # so the same real number can register a new account afterwards.
    phone = PhoneNumberField(_("phone number"), unique=True, null=True)
    first_name = models.CharField(_("first name"), max_length=80, blank=True)
    last_name = models.CharField(_("last name"), max_length=80, blank=True)
    middle_name = models.CharField(_("middle name"), max_length=80, blank=True)
    photo = models.ImageField(_("photo"), upload_to="photos/%Y/%m/", blank=True)
    language = models.CharField(
        _("language"), max_length=8, default="ru", choices=[("ru", "Русский"), ("en", "English")]
    )
    time_zone = models.CharField(_("time zone"), max_length=64, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("admin site access"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    # Maintained by the organisations services from verified memberships;
    # never set from user input.
    is_verified_educator = models.BooleanField(_("verified educator"), default=False)
    # Set when the display name imitates a verified educator's.
    is_name_flagged = models.BooleanField(_("name looks like a verified educator's"), default=False)
    # What the display name looks like (accounts.names.name_skeleton), kept
    # by save() so that look-alikes are found with one indexed query.
    name_skeleton = models.CharField(max_length=200, blank=True, db_index=True, editable=False)
    # Safe mode: on for every student account from the moment it becomes one.
    is_safe_mode = models.BooleanField(_("safe mode"), default=False)
    is_hidden_from_search = models.BooleanField(_("hidden from search"), default=False)
    # Bumped to end every browser session of the account at once.
    session_generation = models.PositiveIntegerField(default=0, editable=False)
    blocked_at = models.DateTimeField(_("blocked at"), null=True, blank=True)
    # Set once, by account_delete: the person asked for their account to go.
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "phone"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["last_name", "first_name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(phone__isnull=False) | models.Q(deleted_at__isnull=False),
                name="user_phone_unless_deleted",
            )
        ]

    def __str__(self) -> str:
        return self.display_name

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.name_skeleton = display_name_skeleton(self.first_name, self.last_name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and {"first_name", "last_name"} & set(update_fields):
            kwargs["update_fields"] = {*update_fields, "name_skeleton"}
        super().save(*args, **kwargs)

    @property
    def display_name(self) -> str:
        if self.deleted_at is not None:
            # Messages a deleted person wrote stay, under this name.
            return str(_("Deleted user"))
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or _("User %(id)s") % {"id": self.pk}

    def get_full_name(self) -> str:
        return " ".join(part for part in (self.last_name, self.first_name, self.middle_name) if part)

    def get_short_name(self) -> str:
        return self.first_name

    def get_session_auth_hash(self) -> str:
        # Sessions carry this hash; changing the generation ends them all.
        return salted_hmac(
            "parta.accounts.session",
            f"{self.password}:{self.session_generation}",
            algorithm="sha256",
        ).hexdigest()


class LoginCode(models.Model):
    """A one-time sign-in code sent by SMS. Only an HMAC of the code is kept."""

    phone = PhoneNumberField(_("phone number"), db_index=True)
    code_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(_("expires at"))
    attempts = models.PositiveSmallIntegerField(_("wrong attempts"), default=0)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)
    is_superseded = models.BooleanField(default=False)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        verbose_name = _("sign-in code")
        verbose_name_plural = _("sign-in codes")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.phone} {self.created_at:%Y-%m-%d %H:%M}"


class PhoneLock(models.Model):
    """One row per phone number, locked while codes for it are issued so that
    parallel requests cannot both pass the resend and daily checks."""

    phone = PhoneNumberField(unique=True)

    def __str__(self) -> str:
        return str(self.phone)


class ApiToken(models.Model):
    """An API token of one device. Only the SHA-256 of the key is stored."""

    user = models.ForeignKey(User, related_name="api_tokens", on_delete=models.CASCADE)
    key_hash = models.CharField(max_length=64, unique=True)
    name = models.CharField(_("device"), max_length=120, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key_hash[:8]}"
