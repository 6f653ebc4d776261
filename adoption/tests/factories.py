"""A small country for the adoption tests: a ministry; region 50 with its
regional authority, a municipal authority of Химки and two schools (one in
Химки, one in Королёв); region 77 with its authority and one school."""

from dataclasses import dataclass

from accounts.models import User
from organisations import services
from organisations.models import Organisation, OrganisationKind, Region, Role
from organisations.tests.factories import make_member, make_organisation


@dataclass
class Country:
    ministry: Organisation
    regional: Organisation
    municipal: Organisation
    school: Organisation
    other_school: Organisation
    far_authority: Organisation
    far_school: Organisation
    minister: User
    regional_official: User
    municipal_official: User
    far_official: User


def make_country() -> Country:
    services.regions_ensure()
    moscow_oblast = Region.objects.get(code="50")
    moscow = Region.objects.get(code="77")
    ministry = make_organisation(kind=OrganisationKind.MINISTRY, short_name="Минпросвещения", region=None)
    regional = make_organisation(
        kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="Минобр МО", parent=ministry, region=moscow_oblast
    )
    municipal = make_organisation(
        kind=OrganisationKind.MUNICIPAL_AUTHORITY,
        short_name="Управление образования Химок",
        parent=regional,
        region=moscow_oblast,
        municipality="Химки",
    )
    school = make_organisation(
        short_name="Школа № 1 Химки", parent=municipal, region=moscow_oblast, municipality="Химки"
    )
    other_school = make_organisation(
        short_name="Школа № 2 Королёв", parent=regional, region=moscow_oblast, municipality="Королёв"
    )
    far_authority = make_organisation(
        kind=OrganisationKind.REGIONAL_AUTHORITY, short_name="ДОгМ", parent=ministry, region=moscow
    )
    far_school = make_organisation(
        short_name="Школа № 3 Москва", parent=far_authority, region=moscow, municipality="Москва"
    )
    return Country(
        ministry=ministry,
        regional=regional,
        municipal=municipal,
        school=school,
        other_school=other_school,
        far_authority=far_authority,
        far_school=far_school,
        minister=make_member(organisation=ministry, role=Role.OFFICIAL),
        regional_official=make_member(organisation=regional, role=Role.OFFICIAL),
        municipal_official=make_member(organisation=municipal, role=Role.OFFICIAL),
        far_official=make_member(organisation=far_authority, role=Role.OFFICIAL),
    )


def make_people(organisation: Organisation, role: str, count: int) -> list[User]:
    return [make_member(organisation=organisation, role=role) for _index in range(count)]
