"""Signed launch parameters: what the portal signs verifies with the
documented algorithm — the portal's own check and the standalone example
verifier run as a program — and forged or stale ones are refused by both."""

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.conf import settings

from miniapps import services, signing
from miniapps.models import MiniApp
from miniapps.tests.factories import make_app
from organisations.models import Role
from organisations.tests.factories import make_school_with_class

pytestmark = pytest.mark.django_db

VERIFIER = Path(settings.BASE_DIR) / "examples" / "miniapp_verify.py"
NOW = 1_800_000_000


def run_verifier(url: str, *, secret: str, now: float, max_age: int = 300) -> tuple[int, str]:
    completed = subprocess.run(
        [sys.executable, str(VERIFIER), "--secret=" + secret, "--max-age", str(max_age), "--now", str(now), url],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed.returncode, completed.stdout.strip()


def with_param(url: str, name: str, value: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    params[name] = value
    return parts._replace(query=urlencode(params)).geturl()


@pytest.fixture
def launched():
    world = make_school_with_class(students=1)
    app = make_app(slug="pushkin", audience=(Role.STUDENT,), max_launch_age_seconds=300)
    launch = services.miniapp_launch(user=world.student, slug="pushkin", now=NOW)
    return world, app, launch


def test_the_launch_names_the_person_role_organisation_and_times(launched):
    world, _app, launch = launched

    assert set(launch.params) == {*signing.SIGNED_FIELDS, "signature"}
    assert launch.params["app"] == "pushkin"
    assert launch.params["user_id"] == str(world.student.pk)
    assert launch.params["role"] == "student"
    assert launch.params["organisation_id"] == str(world.school.pk)
    assert launch.params["issued_at"] == str(NOW)
    assert launch.params["expires_at"] == str(NOW + 300)
    assert len(launch.params["nonce"]) == 32
    assert launch.url.startswith("https://pushkin.example.org/launch?app=pushkin&expires_at=")
    assert launch.url.endswith("&signature=" + launch.params["signature"])
    assert launch.origin == "https://pushkin.example.org"


def test_two_launches_have_different_nonces_and_signatures(launched):
    world, _app, first = launched
    second = services.miniapp_launch(user=world.student, slug="pushkin", now=NOW)

    assert first.params["nonce"] != second.params["nonce"]
    assert first.params["signature"] != second.params["signature"]


def test_the_documented_worked_example_holds():
    params = {
        "app": "pushkin-card",
        "user_id": "42",
        "role": "student",
        "organisation_id": "7",
        "issued_at": "1767225600",
        "expires_at": "1767225900",
        "nonce": "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    documentation = (Path(settings.BASE_DIR) / "docs" / "miniapps.md").read_text()
    signature = signing.signature_compute(params=params, secret="example-secret-do-not-use")

    assert signature == "2abf85b4f68bdf927dbf42ff33ce9c3ed8223fef99d0a4a966a249a283d7044c"
    assert signing.canonical_query(params) in documentation
    assert signature in documentation


def test_values_are_encoded_as_rfc_3986_before_signing():
    assert signing.canonical_query({"b": "a b+ё~", "a": "x/y", "signature": "ignored"}) == "a=x%2Fy&b=a%20b%2B%D1%91~"


def test_the_example_verifier_accepts_what_the_server_signed(launched):
    _world, app, launch = launched

    status, output = run_verifier(launch.url, secret=app.secret, now=NOW + 10)

    assert status == 0
    assert json.loads(output) == {name: launch.params[name] for name in signing.SIGNED_FIELDS}
    assert signing.launch_params_verify(
        query=urlsplit(launch.url).query, secret=app.secret, max_age_seconds=300, now=NOW + 10
    ) == {name: launch.params[name] for name in signing.SIGNED_FIELDS}


@pytest.mark.parametrize(
    ("change", "reason", "code"),
    [
        (("role", "teacher"), "bad signature", "signature"),
        (("user_id", "1"), "bad signature", "signature"),
        (("organisation_id", "999"), "bad signature", "signature"),
        (("issued_at", str(NOW + 200)), "bad signature", "signature"),
        (("signature", "0" * 64), "bad signature", "signature"),
        (("extra", "1"), "bad signature", "signature"),
    ],
)
def test_forged_parameters_are_rejected(launched, change, reason, code):
    _world, app, launch = launched
    forged = with_param(launch.url, *change)

    status, output = run_verifier(forged, secret=app.secret, now=NOW + 10)

    assert (status, output) == (1, "rejected: " + reason)
    with pytest.raises(signing.LaunchInvalid) as refused:
        signing.launch_params_verify(query=urlsplit(forged).query, secret=app.secret, max_age_seconds=300, now=NOW)
    assert refused.value.reason == code


def test_another_apps_secret_does_not_verify(launched):
    _world, _app, launch = launched
    other = make_app(slug="other")

    assert run_verifier(launch.url, secret=other.secret, now=NOW + 10) == (1, "rejected: bad signature")


def test_a_rotated_secret_no_longer_verifies_old_launches(launched):
    _world, app, launch = launched
    old_secret = app.secret

    new_secret = services.miniapp_secret_rotate(app=app)

    assert new_secret != old_secret
    assert run_verifier(launch.url, secret=new_secret, now=NOW + 10) == (1, "rejected: bad signature")


def test_a_missing_or_repeated_parameter_is_rejected(launched):
    _world, app, launch = launched
    without_nonce = "&".join(part for part in urlsplit(launch.url).query.split("&") if not part.startswith("nonce="))
    repeated = launch.url + "&role=teacher"

    assert run_verifier(without_nonce, secret=app.secret, now=NOW) == (1, "rejected: missing nonce")
    assert run_verifier(repeated, secret=app.secret, now=NOW) == (1, "rejected: duplicate parameter role")


def test_stale_parameters_are_rejected(launched):
    _world, app, launch = launched

    assert run_verifier(launch.url, secret=app.secret, now=NOW + 300)[0] == 0
    assert run_verifier(launch.url, secret=app.secret, now=NOW + 301) == (1, "rejected: too old")
    # The app may be stricter than the portal's setting.
    assert run_verifier(launch.url, secret=app.secret, now=NOW + 61, max_age=60) == (1, "rejected: too old")
    # A launch "from the future" (a clock far behind) is not accepted either.
    assert run_verifier(launch.url, secret=app.secret, now=NOW - 61) == (1, "rejected: issued in the future")
    with pytest.raises(signing.LaunchInvalid) as refused:
        signing.launch_params_verify(
            query=urlsplit(launch.url).query, secret=app.secret, max_age_seconds=300, now=NOW + 301
        )
    assert refused.value.reason == "too_old"


def test_the_expiry_the_portal_signed_is_enforced_even_with_a_lax_app_setting(launched):
    _world, app, launch = launched

    assert run_verifier(launch.url, secret=app.secret, now=NOW + 301, max_age=3600) == (1, "rejected: expired")


def test_a_secret_beginning_with_a_dash_works_on_the_verifiers_command_line():
    world = make_school_with_class(students=1)
    app = make_app(slug="dash", audience=(Role.STUDENT,))
    MiniApp.objects.filter(pk=app.pk).update(secret="-starts-with-a-dash-0123456789abcdefghijklmno")
    app.refresh_from_db()
    launch = services.miniapp_launch(user=world.student, slug="dash", now=NOW)

    assert run_verifier(launch.url, secret=app.secret, now=NOW)[0] == 0
