"""Forms of the adoption pages; every rule is the services'."""

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from adoption.models import StageKind
from adoption.selectors import WEEKS_MAX


class DashboardForm(forms.Form):
    region = forms.CharField(label=_("Region"), max_length=3, required=False)
    municipality = forms.CharField(label=_("Municipality"), max_length=200, required=False)
    organisation = forms.IntegerField(label=_("Organisation"), required=False, min_value=1)
    weeks = forms.IntegerField(label=_("Weeks"), required=False, min_value=1, max_value=WEEKS_MAX)


class RoadmapForm(forms.Form):
    target_educators_writing = forms.IntegerField(label=_("Educators writing weekly, %"), min_value=0, max_value=100)
    target_families_reading = forms.IntegerField(
        label=_("Students and parents reading weekly, %"), min_value=0, max_value=100
    )
    target_chats_migrated = forms.IntegerField(label=_("Chats migrated, %"), min_value=0, max_value=100)
    target_course_completed = forms.IntegerField(
        label=_("Educators who completed the course, %"), min_value=0, max_value=100
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for kind, label in StageKind.choices:
            self.fields[kind + "_starts_on"] = forms.DateField(
                label=_("%(stage)s: from") % {"stage": label},
                widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
            )
            self.fields[kind + "_ends_on"] = forms.DateField(
                label=_("%(stage)s: until") % {"stage": label},
                widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
            )

    def stage_fields(self) -> list[tuple[str, forms.BoundField, forms.BoundField]]:
        return [(str(label), self[kind + "_starts_on"], self[kind + "_ends_on"]) for kind, label in StageKind.choices]

    def target_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if name.startswith("target_")]
