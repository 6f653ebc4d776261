import importlib
import json
import zoneinfo
from pathlib import Path

import pytest
from django.apps import apps

from organisations.models import Region

pytestmark = pytest.mark.django_db

regions_migration = importlib.import_module("organisations.migrations.0002_regions")
REGIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "regions.json"


def test_all_89_federal_subjects_exist_with_unique_codes_and_valid_time_zones():
    regions = list(Region.objects.all())

    assert len(regions) == 89
    assert len({region.code for region in regions}) == 89
    for region in regions:
        assert len(region.code) == 2 and region.code.isdigit(), region.code
        assert region.name and region.name_en
        assert zoneinfo.ZoneInfo(region.time_zone).key == region.time_zone


def test_codes_are_the_tax_service_codes():
    names = dict(Region.objects.values_list("code", "name"))

    assert names["01"] == "Республика Адыгея"
    assert names["20"] == "Чеченская Республика"
    assert names["50"] == "Московская область"
    assert names["77"] == "Москва"
    assert names["90"] == "Запорожская область"
    assert names["91"] == "Республика Крым"
    assert names["92"] == "Севастополь"
    assert names["93"] == "Донецкая Народная Республика"
    assert names["94"] == "Луганская Народная Республика"
    assert names["95"] == "Херсонская область"
    assert not {"80", "81", "82", "84", "85", "88"} & set(names)


def test_time_zones_follow_the_regions():
    zones = dict(Region.objects.values_list("code", "time_zone"))

    assert zones["39"] == "Europe/Kaliningrad"
    assert zones["50"] == "Europe/Moscow"
    assert zones["66"] == "Asia/Yekaterinburg"
    assert zones["25"] == "Asia/Vladivostok"
    assert zones["41"] == "Asia/Kamchatka"
    assert zones["87"] == "Asia/Anadyr"
    assert zones["91"] == "Europe/Simferopol"


def test_the_migration_is_the_data_file():
    rows = json.loads(REGIONS_FILE.read_text(encoding="utf-8"))

    assert sorted(Region.objects.values_list("code", "name", "name_en", "time_zone")) == sorted(
        (row["code"], row["name"], row["name_en"], row["time_zone"]) for row in rows
    )


def test_loading_again_updates_in_place_and_unloading_reverses():
    Region.objects.filter(code="50").update(name="Подмосковье", time_zone="UTC")
    region_id = Region.objects.get(code="50").pk

    regions_migration.load_regions(apps, None)

    region = Region.objects.get(code="50")
    assert (region.pk, region.name, region.time_zone) == (region_id, "Московская область", "Europe/Moscow")
    assert Region.objects.count() == 89

    regions_migration.unload_regions(apps, None)
    assert Region.objects.count() == 0

    regions_migration.load_regions(apps, None)
    assert Region.objects.count() == 89
