"""Forms of the HTML sign-in and profile pages; every check is the service's."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from accounts.services import login_code_clean, phone_normalise, profile_field_clean
from common.errors import ApplicationError

RUSSIAN_TIME_ZONES = [
    ("Europe/Kaliningrad", _("Kaliningrad (UTC+2)")),
    ("Europe/Moscow", _("Moscow (UTC+3)")),
    ("Europe/Samara", _("Samara (UTC+4)")),
    ("Asia/Yekaterinburg", _("Yekaterinburg (UTC+5)")),
    ("Asia/Omsk", _("Omsk (UTC+6)")),
    ("Asia/Novosibirsk", _("Novosibirsk (UTC+7)")),
    ("Asia/Krasnoyarsk", _("Krasnoyarsk (UTC+7)")),
    ("Asia/Irkutsk", _("Irkutsk (UTC+8)")),
    ("Asia/Yakutsk", _("Yakutsk (UTC+9)")),
    ("Asia/Vladivostok", _("Vladivostok (UTC+10)")),
    ("Asia/Magadan", _("Magadan (UTC+11)")),
    ("Asia/Kamchatka", _("Kamchatka (UTC+12)")),
]


def _checked(clean: Callable[..., str], **kwargs: Any) -> str:
    try:
        return clean(**kwargs)
    except ApplicationError as error:
        raise forms.ValidationError(error.message, code=error.code) from None


class PhoneForm(forms.Form):
    phone = forms.CharField(
        label=_("Phone number"),
        max_length=64,
        help_text=_("For example +7 900 123-45-67. We will send a code by SMS."),
        widget=forms.TextInput(attrs={"type": "tel", "autocomplete": "tel", "inputmode": "tel"}),
    )

    def clean_phone(self) -> str:
        return _checked(phone_normalise, raw=self.cleaned_data["phone"])


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the SMS"),
        max_length=32,
        help_text=_("6 digits."),
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )

    def clean_code(self) -> str:
        return _checked(login_code_clean, raw=self.cleaned_data["code"])


class PhotoForm(forms.Form):
    """The file only; what it really is, the service decides."""

    photo = forms.FileField(
        label=_("New photo"),
        help_text=_("JPEG, PNG or WebP, at most 5 MB."),
        widget=forms.FileInput(attrs={"accept": "image/jpeg,image/png,image/webp"}),
    )


class AccountDeleteCodeForm(forms.Form):
    """The code that confirms deleting one's account. Prefixed, so that its
    field has its own id on the profile page."""

    prefix = "delete"

    code = forms.CharField(
        label=_("Code from the SMS"),
        max_length=32,
        help_text=_("6 digits."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "size": 8}),
    )

    def clean_code(self) -> str:
        return _checked(login_code_clean, raw=self.cleaned_data["code"])


class ProfileForm(forms.Form):
    last_name = forms.CharField(
        label=_("Last name"),
        required=False,
        max_length=200,
        strip=False,
        widget=forms.TextInput({"autocomplete": "family-name"}),
    )
    first_name = forms.CharField(
        label=_("First name"),
        required=False,
        max_length=200,
        strip=False,
        widget=forms.TextInput({"autocomplete": "given-name"}),
    )
    middle_name = forms.CharField(
        label=_("Middle name"),
        required=False,
        max_length=200,
        strip=False,
        widget=forms.TextInput({"autocomplete": "additional-name"}),
    )
    language = forms.ChoiceField(label=_("Language"), choices=User._meta.get_field("language").choices or [])
    time_zone = forms.ChoiceField(label=_("Time zone"), required=False)

    def __init__(self, *args: Any, current_time_zone: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices: list[tuple[str, Any]] = [("", _("As in my organisation")), *RUSSIAN_TIME_ZONES]
        if current_time_zone and current_time_zone not in dict(RUSSIAN_TIME_ZONES):
            choices.append((current_time_zone, current_time_zone))
        self.fields["time_zone"].choices = choices  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        cleaned_data = super().clean() or {}
        for field in ("first_name", "last_name", "middle_name", "language", "time_zone"):
            if field in cleaned_data:
                try:
                    cleaned_data[field] = profile_field_clean(field=field, value=cleaned_data[field])
                except ApplicationError as error:
                    self.add_error(field, forms.ValidationError(error.message, code=error.code))
        return cleaned_data
