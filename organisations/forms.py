"""Forms of the directory pages; the search itself is the selector's."""

from django import forms
from django.utils.translation import gettext_lazy as _

from organisations import selectors
from organisations.models import OrganisationKind


def region_choices() -> list[tuple[str, object]]:
    return [("", _("Any region")), *((region.code, str(region)) for region in selectors.region_list())]


class DirectorySearchForm(forms.Form):
    q = forms.CharField(
        label=_("Organisation name"), required=False, max_length=200, widget=forms.TextInput(attrs={"type": "search"})
    )
    inn = forms.CharField(
        label=_("INN"),
        required=False,
        max_length=12,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    region = forms.ChoiceField(label=_("Region"), required=False, choices=region_choices)
    municipality = forms.CharField(label=_("Municipality"), required=False, max_length=200)
    kind = forms.ChoiceField(label=_("Kind"), required=False, choices=[("", _("Any kind")), *OrganisationKind.choices])
