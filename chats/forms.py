"""Forms of the chat pages. They only parse what a browser sends; every rule
(who may post, who may be written to) is the services'."""

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _

from chats.models import MESSAGE_MAX_LENGTH

MUTE_CHOICES = [("60", _("for an hour")), ("1440", _("for a day")), ("10080", _("for a week")), ("0", _("unmute"))]


def client_id_new() -> str:
    """A fresh id for one rendering of the send form: submitting that form
    twice (a double click, a reload after a lost answer) sends one message."""
    return uuid.uuid4().hex


class MessageForm(forms.Form):
    body = forms.CharField(
        label=_("Message"),
        required=False,
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MESSAGE_MAX_LENGTH}),
    )
    client_id = forms.CharField(max_length=64, widget=forms.HiddenInput)
    reply_to = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)
    attachment = forms.FileField(label=_("File"), required=False)

    def clean(self) -> dict:
        data = super().clean() or {}
        if not (data.get("body") or "").strip() and not data.get("attachment") and "body" not in self.errors:
            self.add_error("body", _("Write a message or attach a file."))
        return data


class PeopleSearchForm(forms.Form):
    q = forms.CharField(
        label=_("Name or phone number"),
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off"}),
    )


class DirectChatForm(forms.Form):
    user_id = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class ReactionForm(forms.Form):
    emoji = forms.CharField(max_length=16)


class PollCreateForm(forms.Form):
    question = forms.CharField(label=_("Question"), max_length=300)
    options = forms.CharField(
        label=_("Options"),
        help_text=_("One option per line, from 2 to 10."),
        widget=forms.Textarea(attrs={"rows": 5}),
    )
    allows_multiple = forms.BooleanField(label=_("Several options may be chosen"), required=False)
    is_anonymous = forms.BooleanField(label=_("Anonymous poll"), required=False)
    client_id = forms.CharField(max_length=64, widget=forms.HiddenInput)

    def options_list(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["options"].splitlines() if line.strip()]


class MuteForm(forms.Form):
    user_id = forms.IntegerField(min_value=1)
    minutes = forms.ChoiceField(label=_("Mute"), choices=MUTE_CHOICES)


class ReportForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), required=False, max_length=500)


class EditForm(forms.Form):
    body = forms.CharField(
        label=_("Message"),
        max_length=MESSAGE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4, "maxlength": MESSAGE_MAX_LENGTH}),
    )
