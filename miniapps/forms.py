"""Forms of the diary pages: they parse what a browser sends and offer the
class's students and teachers as choices; every rule is the services'."""

from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from miniapps.models import MarkValue, Weekday


class DateInput(forms.DateInput):
    input_type = "date"


def _people(users: Any) -> list[tuple[str, str]]:
    return [(str(user.pk), user.display_name) for user in users]


class TimetableForm(forms.Form):
    weekday = forms.TypedChoiceField(label=_("Weekday"), choices=Weekday.choices, coerce=int)
    period = forms.IntegerField(label=_("Period"), min_value=1, max_value=12, help_text=_("1 to 12."))
    subject = forms.CharField(label=_("Subject"), max_length=120)
    teacher = forms.ChoiceField(label=_("Teacher"), required=False)
    room = forms.CharField(label=_("Room"), max_length=40, required=False)

    def __init__(self, *args: Any, teachers: list[User], **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "timetable")
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["teacher"]).choices = [("", "—"), *_people(teachers)]


class HomeworkForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=120)
    due_date = forms.DateField(label=_("Due date"), widget=DateInput)
    text = forms.CharField(label=_("Assignment"), max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))
    attachment = forms.FileField(label=_("Attachment"), required=False, help_text=_("Optional, at most 10 MB."))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "homework")
        super().__init__(*args, **kwargs)


class MarkForm(forms.Form):
    student = forms.ChoiceField(label=_("Student"))
    subject = forms.CharField(label=_("Subject"), max_length=120)
    date = forms.DateField(label=_("Date"), widget=DateInput)
    value = forms.ChoiceField(label=_("Mark"), choices=MarkValue.choices)
    comment = forms.CharField(label=_("Comment"), max_length=500, required=False)

    def __init__(self, *args: Any, students: list[User], **kwargs: Any) -> None:
        kwargs.setdefault("prefix", "mark")
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["student"]).choices = _people(students)


# Fields the services name, as the forms call them.
FIELD_NAMES = {"teacher_id": "teacher", "student_id": "student"}
