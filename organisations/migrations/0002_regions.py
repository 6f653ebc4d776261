"""Load Russia's federal subjects from organisations/data/regions.json.

Re-running it (or a later migration calling `load_regions`) updates names and
time zones in place by code, so the file stays the single source of truth."""

import json
from pathlib import Path

from django.db import migrations

REGIONS_FILE = Path(__file__).resolve().parent.parent / "data" / "regions.json"


def read_regions():
    with REGIONS_FILE.open(encoding="utf-8") as file:
        return json.load(file)


def load_regions(apps, schema_editor):
    from organisations.services import regions_sync

    regions_sync(region_model=apps.get_model("organisations", "Region"))


def unload_regions(apps, schema_editor):
    # Regions referenced by organisations are protected: reversing fails
    # loudly instead of orphaning them.
    Region = apps.get_model("organisations", "Region")
    Region.objects.filter(code__in=[row["code"] for row in read_regions()]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("organisations", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(load_regions, unload_regions),
    ]
