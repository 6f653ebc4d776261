"""Forms of the lessons pages. They parse what a browser sends and offer
the choices a person has; every rule (who may schedule, whom one may
invite, the time zone) is the services'."""

import datetime
from typing import Any

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from lessons.models import DESCRIPTION_MAX_LENGTH, DISPLAY_NAME_MAX_LENGTH, TITLE_MAX_LENGTH, Meeting, MeetingKind
from lessons.services import DURATION_MAX_MINUTES, DURATION_MIN_MINUTES, AudienceSpec
from organisations.models import (
    Guardianship,
    Membership,
    Organisation,
    StudyGroup,
    StudyGroupStudent,
    StudyGroupTeacher,
)
from organisations.selectors import SCHOOL_STAFF_ROLES, current_academic_year, user_administers

PEOPLE_CHOICES_MAX = 500


class DateInput(forms.DateInput):
    input_type = "date"


class TimeInput(forms.TimeInput):
    input_type = "time"


def group_choices(*, user: User, organisations: list[Organisation]) -> list[tuple[int, str]]:
    """The current classes of the organisations where `user` schedules: all
    of them for the administrators, the ones they teach otherwise."""
    year = current_academic_year()
    groups = StudyGroup.objects.filter(organisation__in=organisations, academic_year__gte=year - 1).select_related(
        "organisation"
    )
    administered = [
        organisation.pk for organisation in organisations if user_administers(user=user, organisation=organisation)
    ]
    groups = groups.filter(
        Q(organisation_id__in=administered)
        | Q(homeroom_teacher=user)
        | Q(pk__in=StudyGroupTeacher.objects.filter(teacher=user).values("group_id"))
    )
    many = len(organisations) > 1
    return [
        (group.pk, f"{group} — {group.organisation.short_name}" if many else str(group))
        for group in groups.order_by("organisation__short_name", "-academic_year", "grade", "name")
    ]


def people_choices(*, user: User, organisations: list[Organisation]) -> list[tuple[int, str]]:
    """People one may invite singly: the staff of those organisations, and
    the students and parents of the classes one may choose."""
    group_ids = [pk for pk, _label in group_choices(user=user, organisations=organisations)]
    students = StudyGroupStudent.objects.filter(group_id__in=group_ids).values("student_id")
    people = User.objects.filter(
        Q(
            pk__in=Membership.objects.active()
            .filter(organisation__in=organisations, role__in=SCHOOL_STAFF_ROLES)
            .values("user_id")
        )
        | Q(pk__in=students)
        | Q(pk__in=Guardianship.objects.filter(student_id__in=students, ended_at__isnull=True).values("parent_id")),
        is_active=True,
        deleted_at__isnull=True,
    ).exclude(pk=user.pk)
    return [
        (person.pk, person.get_full_name() or str(person.display_name))
        for person in people.order_by("last_name", "first_name", "id")[:PEOPLE_CHOICES_MAX]
    ]


class MeetingForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=TITLE_MAX_LENGTH)
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    date = forms.DateField(label=_("Date"), widget=DateInput)
    time = forms.TimeField(label=_("Time"), widget=TimeInput, help_text=_("In the organisation's time zone."))
    duration_minutes = forms.IntegerField(
        label=_("Duration, minutes"), min_value=DURATION_MIN_MINUTES, max_value=DURATION_MAX_MINUTES, initial=45
    )
    repeats_weekly = forms.BooleanField(label=_("Repeat every week"), required=False)
    repeat_until = forms.DateField(label=_("Repeat until"), required=False, widget=DateInput)
    student_groups = forms.TypedMultipleChoiceField(
        label=_("Students of the classes"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    guardian_groups = forms.TypedMultipleChoiceField(
        label=_("Parents of the classes"), coerce=int, required=False, widget=forms.CheckboxSelectMultiple
    )
    invite_staff = forms.BooleanField(label=_("The organisation's staff"), required=False)
    people = forms.TypedMultipleChoiceField(
        label=_("Single people"),
        coerce=int,
        required=False,
        help_text=_("Hold Ctrl (⌘ on a Mac) to choose several."),
        widget=forms.SelectMultiple(attrs={"size": 8}),
    )
    lobby_for_guests = forms.BooleanField(label=_("Guests by link wait in the lobby"), required=False, initial=True)
    lobby_for_everyone = forms.BooleanField(label=_("Everyone waits in the lobby until I let them in"), required=False)
    is_recording_enabled = forms.BooleanField(label=_("Record the meeting (participants are told)"), required=False)

    def __init__(self, *args: Any, user: User, organisations: list[Organisation], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        groups = group_choices(user=user, organisations=organisations)
        self.fields["student_groups"].choices = groups  # type: ignore[attr-defined]
        self.fields["guardian_groups"].choices = groups  # type: ignore[attr-defined]
        self.fields["people"].choices = people_choices(user=user, organisations=organisations)  # type: ignore[attr-defined]

    def starts_at(self) -> datetime.datetime:
        """The naive wall-clock time of the organisation."""
        return datetime.datetime.combine(self.cleaned_data["date"], self.cleaned_data["time"])

    def audience(self) -> AudienceSpec:
        return AudienceSpec(
            student_group_ids=tuple(self.cleaned_data.get("student_groups") or ()),
            guardian_group_ids=tuple(self.cleaned_data.get("guardian_groups") or ()),
            invite_staff=bool(self.cleaned_data.get("invite_staff")),
            user_ids=tuple(self.cleaned_data.get("people") or ()),
        )


class MeetingCreateForm(MeetingForm):
    organisation = forms.TypedChoiceField(label=_("Organisation"), coerce=int)
    kind = forms.ChoiceField(label=_("What is it"), choices=MeetingKind.choices)

    field_order = ["organisation", "kind", "title"]

    def __init__(self, *args: Any, user: User, organisations: list[Organisation], **kwargs: Any) -> None:
        super().__init__(*args, user=user, organisations=organisations, **kwargs)
        self.fields["organisation"].choices = [  # type: ignore[attr-defined]
            (organisation.pk, organisation.short_name) for organisation in organisations
        ]


def meeting_initial(meeting: Meeting, audience: dict[str, Any]) -> dict[str, Any]:
    from lessons import schedule

    local = schedule.utc_to_local(meeting.starts_at, meeting.time_zone)
    return {
        "title": meeting.title,
        "description": meeting.description,
        "date": local.date(),
        "time": local.time().replace(second=0, microsecond=0),
        "duration_minutes": meeting.duration_minutes,
        "repeats_weekly": meeting.repeats_weekly,
        "repeat_until": meeting.repeat_until,
        "student_groups": audience["student_group_ids"],
        "guardian_groups": audience["guardian_group_ids"],
        "invite_staff": audience["invite_staff"],
        "people": audience["user_ids"],
        "lobby_for_guests": meeting.lobby_for_guests,
        "lobby_for_everyone": meeting.lobby_for_everyone,
        "is_recording_enabled": meeting.is_recording_enabled,
    }


class CancelForm(forms.Form):
    occurrence = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)


class LinkForm(forms.Form):
    label = forms.CharField(
        label=_("For whom"),
        required=False,
        max_length=DISPLAY_NAME_MAX_LENGTH,
        help_text=_("So that you know whose link it is, e.g. the parent's name."),
    )


class GuestNameForm(forms.Form):
    display_name = forms.CharField(
        label=_("Your name"),
        max_length=DISPLAY_NAME_MAX_LENGTH,
        help_text=_("The host sees it when you ask to come in."),
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )


class ReminderPreferenceForm(forms.Form):
    by_sms = forms.BooleanField(label=_("Remind me by SMS too"), required=False)


class TermForm(forms.Form):
    date_from = forms.DateField(label=_("From"), widget=DateInput)
    date_to = forms.DateField(label=_("To"), widget=DateInput)
